// pods-verdict: what each pod's sidecar answered -> ready or not with its reason, the round's verdict
// against minReady, the outside targets the pods report, and the pods as /status shows them.
// Table tests; no sockets, no timers.
import { describe, expect, it } from 'vitest';
import {
  MAX_POD_REASON,
  type PodAnswer,
  podResult,
  podStatuses,
  podsVerdict,
} from '../../src/health/pods-verdict.js';
import { roundVerdict } from '../../src/health/round.js';

const AT = 1_700_000_000_000;
const sidecarBody = (
  status: 'ok' | 'error',
  reason: string,
  targets: { target: string; ok: boolean }[] = [],
) =>
  JSON.stringify({
    status,
    reason,
    since: '2026-11-25T10:00:00.000Z',
    lastCheck: null,
    latency_ms: 3,
    targets,
  });
const ready = (address: string, targets: { target: string; ok: boolean }[] = []): PodAnswer => ({
  address,
  status: 200,
  body: sidecarBody('ok', 'ok', targets),
  reason: 'ok',
  latencyMs: 2,
});
const unready = (
  address: string,
  reason: string,
  targets: { target: string; ok: boolean }[] = [],
): PodAnswer => ({
  address,
  status: 503,
  body: sidecarBody('error', reason, targets),
  reason: 'ok',
  latencyMs: 3,
});
const silent = (address: string, reason: string): PodAnswer => ({ address, reason, latencyMs: 1000 });
const answered = (address: string, status: number, body: string): PodAnswer => ({
  address,
  status,
  body,
  reason: 'ok',
  latencyMs: 5,
});

const EGRESS_LOST = 'squid_error=ERR_CONNECT_FAIL status=503 target=http://origin.test/';

describe('podResult: one pod', () => {
  it.each<[string, PodAnswer, boolean, string]>([
    ['200 is ready, whatever its body says', answered('10.0.1.1', 200, 'not json'), true, 'ok'],
    ["503 with the sidecar's JSON: its reason", unready('10.0.1.1', EGRESS_LOST), false, EGRESS_LOST],
    ['503 with garbage: the status', answered('10.0.1.1', 503, '<html>oops'), false, 'status=503'],
    [
      '503 with JSON but no reason: the status',
      answered('10.0.1.1', 503, '{"status":"error"}'),
      false,
      'status=503',
    ],
    [
      '503 with an empty reason: the status',
      answered('10.0.1.1', 503, '{"reason":"  "}'),
      false,
      'status=503',
    ],
    ['503 with JSON that is not an object', answered('10.0.1.1', 503, '"down"'), false, 'status=503'],
    [
      '500 (not a sidecar verdict): the status, body ignored',
      answered('10.0.1.1', 500, sidecarBody('error', 'x')),
      false,
      'status=500',
    ],
    ['301 is not ready', answered('10.0.1.1', 301, ''), false, 'status=301'],
    ['no answer: the reason it did not', silent('10.0.1.1', 'timeout=1s'), false, 'timeout=1s'],
    ['refused', silent('10.0.1.1', 'connection_refused'), false, 'connection_refused'],
  ])('%s', (_what, answer, ok, reason) => {
    const pod = podResult(answer);
    expect({ target: pod.target, ok: pod.ok, reason: pod.reason }).toEqual({
      target: '10.0.1.1',
      ok,
      reason,
    });
  });

  it("keeps a sidecar's reason printable and bounded", () => {
    const long = `bad\u0000\u001b[31m ${'x'.repeat(500)}`;
    const pod = podResult(answered('10.0.1.1', 503, JSON.stringify({ reason: long })));
    expect(pod.reason.length).toBe(MAX_POD_REASON);
    expect(pod.reason).toMatch(/^bad\?\?\[31m x+$/);
  });
});

describe('podsVerdict: the round', () => {
  it.each<[string, PodAnswer[], number, boolean, string]>([
    ['both ready', [ready('10.0.1.1'), ready('10.0.1.2')], 1, true, 'ok'],
    ['one of two ready, minReady 1', [unready('10.0.1.1', EGRESS_LOST), ready('10.0.1.2')], 1, true, 'ok'],
    [
      'one of two ready, minReady 2: the unready pod named, with the count',
      [ready('10.0.1.1'), unready('10.0.1.2', EGRESS_LOST)],
      2,
      false,
      `${EGRESS_LOST} pod=10.0.1.2 ready=1/2 min_ready=2`,
    ],
    [
      'none ready: the first unready pod',
      [silent('10.0.1.1', 'timeout=1s'), unready('10.0.1.2', EGRESS_LOST)],
      1,
      false,
      'timeout=1s pod=10.0.1.1 ready=0/2 min_ready=1',
    ],
    ['fewer pods than minReady, all ready', [ready('10.0.1.1')], 2, false, 'ready=1/1 min_ready=2'],
    ['no pods: the count', [], 1, false, 'no_pods ready=0/0 min_ready=1'],
  ])('%s', (_what, answers, minReady, ok, reason) => {
    const round = podsVerdict(answers, minReady, 12, AT);
    expect({ ok: round.ok, reason: round.reason, pods: round.pods, local: round.local }).toEqual({
      ok,
      reason,
      pods: true,
      local: undefined,
    });
    expect(round.targets.map((t) => t.target)).toEqual(answers.map((a) => a.address));
    // Never the proxy's shallow check: nobody asked the proxy.
    expect(round.proxyAnswers).toBeUndefined();
  });

  it('says why there are no pods when the name did not resolve', () => {
    const round = podsVerdict([], 1, 5, AT, 'resolve_error=ENOTFOUND host=squid-pods.test');
    expect(round.reason).toBe('resolve_error=ENOTFOUND host=squid-pods.test ready=0/0 min_ready=1');
    expect(round.ok).toBe(false);
  });

  it('does not hold pods this process could not ask against the pool (local errors)', () => {
    const round = podsVerdict([ready('10.0.1.1'), silent('10.0.1.2', 'probe_error=local:EMFILE')], 2, 5, AT);
    expect(round).toMatchObject({ ok: false, local: true });
    const counted = podsVerdict(
      [silent('10.0.1.1', 'timeout=1s'), silent('10.0.1.2', 'probe_error=local:EMFILE')],
      2,
      5,
      AT,
    );
    expect(counted.local).toBeUndefined();
  });

  it('reads the outside targets the pods report: passed where any pod passed it', () => {
    const A = 'http://a.test/';
    const B = 'http://b.test/';
    const round = podsVerdict(
      [
        unready('10.0.1.1', EGRESS_LOST, [
          { target: A, ok: false },
          { target: B, ok: false },
        ]),
        ready('10.0.1.2', [
          { target: A, ok: true },
          { target: B, ok: false },
        ]),
        answered('10.0.1.3', 200, '{"targets":[{"target":7},{"ok":true},null]}'),
        silent('10.0.1.4', 'timeout=1s'),
      ],
      1,
      5,
      AT,
    );
    expect(round.outsideTargets).toEqual([
      { target: A, ok: true },
      { target: B, ok: false },
    ]);
  });

  it('is unlike a probe round only in its words: the same pass/fail as roundVerdict with quorum = minReady', () => {
    const answers = [ready('10.0.1.1'), unready('10.0.1.2', EGRESS_LOST), silent('10.0.1.3', 'timeout=1s')];
    for (const minReady of [1, 2, 3]) {
      const pods = podsVerdict(answers, minReady, 5, AT);
      expect(pods.ok).toBe(roundVerdict(pods.targets, minReady, 5, AT).ok);
    }
  });
});

describe('podStatuses', () => {
  it('lists each pod with its readiness, reason and the time of its round', () => {
    const round = podsVerdict([ready('10.0.1.1'), unready('10.0.1.2', EGRESS_LOST)], 1, 7, AT);
    expect(podStatuses(round)).toEqual([
      { address: '10.0.1.1', ready: true, reason: 'ok', at: AT, latencyMs: 2 },
      { address: '10.0.1.2', ready: false, reason: EGRESS_LOST, at: AT, latencyMs: 3 },
    ]);
  });

  it('has none for a probe round', () => {
    expect(podStatuses(roundVerdict([], 1, 1, AT))).toEqual([]);
  });
});
