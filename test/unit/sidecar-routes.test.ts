// The sidecar's replies: status codes and JSON bodies per endpoint and mode, from a given state.
import { describe, expect, it } from 'vitest';
import type { LivenessMode, ReadinessMode } from '../../src/config/schema.js';
import type { RoundResult } from '../../src/health/round.js';
import { sidecarRoute } from '../../src/sidecar/routes.js';
import {
  applyRound,
  initialSidecarState,
  type RoundEvidence,
  type SidecarModes,
} from '../../src/sidecar/verdict.js';

const T = 'http://example.test/';
const AT = Date.parse('2026-11-25T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const thresholds = { rise: 1, fall: 1 };
/** A sidecar's modes: liveness as given, readiness deep unless given. */
const live = (liveness: LivenessMode, readiness: ReadinessMode = 'deep'): SidecarModes => ({
  liveness,
  readiness,
});

const round = (ok: boolean, reason: string, status?: number): RoundResult => ({
  ok,
  reason,
  targets: [{ target: T, ok, reason, ...(status ? { status } : {}), latencyMs: 12 }],
  latencyMs: 14,
  at: AT + 500,
});

const stateAfter = (...rounds: RoundEvidence[]) =>
  rounds.reduce(
    (s, ev, i) => applyRound(s, ev, AT + (i + 1) * 1000, thresholds).state,
    initialSidecarState(AT),
  );

const cut: RoundEvidence = {
  proxy: round(false, 'squid_error=ERR_CONNECT_FAIL status=503', 503),
  direct: round(true, 'ok', 200),
  shallow: { ok: true, reason: 'ok', latencyMs: 2, at: AT + 400 },
};
const outsideDown: RoundEvidence = {
  proxy: round(false, 'status=500', 500),
  direct: round(false, 'status=500', 500),
  shallow: { ok: true, reason: 'ok', latencyMs: 2, at: AT + 400 },
};

describe('sidecarRoute', () => {
  it('answers 404 territory (undefined) for other paths', () => {
    expect(sidecarRoute('/metrics', initialSidecarState(AT), live('deep'), thresholds)).toBeUndefined();
    expect(sidecarRoute('/', initialSidecarState(AT), live('deep'), thresholds)).toBeUndefined();
  });

  it('before the first round: /readyz 503, /livez and /health 200, all pending', () => {
    const state = initialSidecarState(AT);
    const readyz = sidecarRoute('/readyz', state, live('deep'), thresholds);
    expect(readyz).toEqual({
      status: 503,
      body: {
        status: 'error',
        reason: 'pending: no check has finished yet',
        since: iso(AT),
        mode: 'deep',
        fault: null,
        lastCheck: null,
        latency_ms: null,
        targets: [],
        evidence: { proxy: null, direct: null, answers: null, directEverSucceeded: null, fault: null },
      },
    });
    expect(sidecarRoute('/livez', state, live('deep'), thresholds)?.status).toBe(200);
    expect(sidecarRoute('/health', state, live('deep'), thresholds)?.body).toMatchObject({
      status: 'ok',
      mode: 'deep',
      evidence: { proxy: null, direct: null, answers: null, directEverSucceeded: null, fault: null },
    });
  });

  it('/readyz carries mode, reason, since, lastCheck, latency and the targets', () => {
    const reply = sidecarRoute('/readyz', stateAfter(cut), live('deep'), thresholds);
    expect(reply).toMatchObject({
      status: 503,
      body: {
        status: 'error',
        mode: 'deep',
        fault: null,
        reason: 'squid_error=ERR_CONNECT_FAIL status=503',
        since: iso(AT + 1000),
        lastCheck: iso(AT + 500),
        latency_ms: 14,
        targets: [
          {
            target: T,
            ok: false,
            reason: 'squid_error=ERR_CONNECT_FAIL status=503',
            status: 503,
            latency_ms: 12,
          },
        ],
      },
    });
  });

  it('/livez reports the shallow check only', () => {
    const reply = sidecarRoute('/livez', stateAfter(cut), live('deep'), thresholds);
    expect(reply).toEqual({
      status: 200,
      body: {
        status: 'ok',
        reason: 'ok',
        since: iso(AT + 1000),
        lastCheck: iso(AT + 400),
        latency_ms: 2,
        targets: [],
      },
    });
  });

  it('/health in attributed mode names the mode, the verdict and the evidence', () => {
    const reply = sidecarRoute('/health', stateAfter(cut), live('attributed'), thresholds);
    expect(reply?.status).toBe(503);
    expect(reply?.body).toMatchObject({
      status: 'error',
      mode: 'attributed',
      reason: 'squid_error=ERR_CONNECT_FAIL status=503 direct=ok',
      evidence: {
        proxy: { ok: false, reason: 'squid_error=ERR_CONNECT_FAIL status=503', latency_ms: 14 },
        direct: { ok: true, reason: 'ok', targets: [{ target: T, ok: true, status: 200 }] },
        answers: { ok: true, reason: 'ok', latency_ms: 2 },
        directEverSucceeded: true,
        fault: 'proxy',
      },
    });
  });

  it('/health attributed stays 200 on an outside outage while /readyz is 503', () => {
    const state = stateAfter(cut, outsideDown);
    expect(sidecarRoute('/readyz', state, live('attributed'), thresholds)?.status).toBe(503);
    const health = sidecarRoute('/health', state, live('attributed'), thresholds);
    expect(health?.status).toBe(200);
    expect(health?.body.evidence?.fault).toBe('outside');
    expect(sidecarRoute('/health', state, live('deep'), thresholds)?.status).toBe(503);
  });

  it('/health in shallow mode is /livez with the mode and evidence added', () => {
    const state = stateAfter(cut);
    const livez = sidecarRoute('/livez', state, live('shallow'), thresholds);
    const health = sidecarRoute('/health', state, live('shallow'), thresholds);
    expect(health?.status).toBe(livez?.status);
    expect(health?.body).toMatchObject({ ...livez?.body, mode: 'shallow' });
    expect(health?.body.evidence?.fault).toBeNull();
  });

  it('/readyz in attributed mode names the mode and the party at fault', () => {
    const outside = sidecarRoute(
      '/readyz',
      stateAfter(cut, outsideDown),
      live('deep', 'attributed'),
      thresholds,
    );
    expect(outside?.status).toBe(200);
    expect(outside?.body).toMatchObject({
      status: 'ok',
      mode: 'attributed',
      fault: 'outside',
      reason: 'outside_at_fault proxy: status=500; direct: status=500',
      evidence: { direct: { ok: false }, directEverSucceeded: true, fault: 'outside' },
    });
    const proxy = sidecarRoute('/readyz', stateAfter(cut), live('deep', 'attributed'), thresholds);
    expect(proxy).toMatchObject({ status: 503, body: { mode: 'attributed', fault: 'proxy' } });
    // /health in deep mode says null, although the same sidecar attributes for /readyz.
    const health = sidecarRoute('/health', stateAfter(cut), live('deep', 'attributed'), thresholds);
    expect(health?.body).toMatchObject({
      mode: 'deep',
      fault: null,
      evidence: { directEverSucceeded: true },
    });
  });

  it('a local error: lastCheck moves, the verdict and its fault stay, the reason says it did not count', () => {
    const emfile = 'probe_error=local:EMFILE';
    const local: RoundEvidence = {
      proxy: { ...round(false, `${emfile} target=${T}`), local: true },
      direct: { ...round(false, `${emfile} target=${T}`), local: true },
      shallow: { ok: false, reason: emfile, latencyMs: 0, at: AT + 2400 },
    };
    const state = stateAfter(outsideDown, local);
    const readyz = sidecarRoute('/readyz', state, live('attributed', 'attributed'), thresholds);
    expect(readyz).toMatchObject({
      status: 200,
      body: {
        fault: 'outside',
        reason: `outside_at_fault proxy: status=500; direct: status=500; not counted: ${emfile} target=${T}`,
      },
    });
    const livez = sidecarRoute('/livez', state, live('shallow'), thresholds);
    expect(livez).toMatchObject({
      status: 200,
      body: { reason: `ok; not counted: ${emfile}`, lastCheck: iso(AT + 2400), since: iso(AT + 1000) },
    });
  });
});
