// The sidecar's pure decisions: who is at fault in a round, both rise/fall machines, and what each
// endpoint says in each liveness mode. Table tests; no sockets, no timers.
import { describe, expect, it } from 'vitest';
import type { LivenessMode } from '../../src/config/schema.js';
import type { RoundResult } from '../../src/health/round.js';
import {
  applyRound,
  attributeRound,
  carryOver,
  healthVerdict,
  initialSidecarState,
  livezVerdict,
  localFailures,
  nextRoundDelayMs,
  type RoundEvidence,
  readyzVerdict,
  type ShallowResult,
  type SidecarModes,
  type SidecarState,
  sidecarReadings,
} from '../../src/sidecar/verdict.js';

const T = 'http://example.test/';
/** The modes of a sidecar with `liveness: mode` and the default readiness. */
const liveness = (mode: LivenessMode): SidecarModes => ({ liveness: mode, readiness: 'deep' });
const round = (ok: boolean, reason = ok ? 'ok' : 'squid_error=ERR_CONNECT_FAIL status=503'): RoundResult => ({
  ok,
  reason,
  targets: [{ target: T, ok, reason, latencyMs: 3 }],
  latencyMs: 3,
  at: 0,
});
const shallow = (ok: boolean): ShallowResult => ({
  ok,
  reason: ok ? 'ok' : 'connection_refused',
  latencyMs: 1,
  at: 0,
});
const evidence = (proxy: boolean, direct: boolean | undefined, answers = true): RoundEvidence => ({
  proxy: round(proxy),
  direct: direct === undefined ? undefined : round(direct, direct ? 'ok' : 'status=500'),
  shallow: shallow(answers),
});

describe('attributeRound: is the proxy at fault?', () => {
  // proxy = deep check through the proxy, direct = same targets without it, answers = /livez.
  it.each([
    { proxy: true, direct: true, answers: true, ok: true, fault: 'none', reason: 'ok' },
    { proxy: true, direct: false, answers: true, ok: true, fault: 'none', reason: 'ok' },
    {
      proxy: false,
      direct: true,
      answers: true,
      ok: false,
      fault: 'proxy',
      reason: 'squid_error=ERR_CONNECT_FAIL status=503 direct=ok',
    },
    {
      proxy: false,
      direct: false,
      answers: true,
      ok: true,
      fault: 'outside',
      reason: 'outside_at_fault proxy: squid_error=ERR_CONNECT_FAIL status=503; direct: status=500',
    },
    // Not answering at all is the proxy's fault whatever the outside does.
    {
      proxy: false,
      direct: false,
      answers: false,
      ok: false,
      fault: 'proxy',
      reason: 'proxy_not_answering connection_refused',
    },
    {
      proxy: false,
      direct: true,
      answers: false,
      ok: false,
      fault: 'proxy',
      reason: 'proxy_not_answering connection_refused',
    },
    // Without a comparison, a deep failure is never excused.
    {
      proxy: false,
      direct: undefined,
      answers: true,
      ok: false,
      fault: 'proxy',
      reason: 'squid_error=ERR_CONNECT_FAIL status=503 direct=not_checked',
    },
  ] as const)('proxy=$proxy direct=$direct answers=$answers -> ok=$ok fault=$fault', (row) => {
    const result = attributeRound(evidence(row.proxy, row.direct, row.answers));
    expect(result).toMatchObject({ ok: row.ok, fault: row.fault, reason: row.reason });
  });
});

const thresholds = { rise: 2, fall: 3 };
const run = (rows: readonly RoundEvidence[], start = initialSidecarState(0)): SidecarState =>
  rows.reduce((state, ev, i) => applyRound(state, ev, (i + 1) * 1000, thresholds).state, start);
const repeat = (n: number, ev: RoundEvidence) => Array.from({ length: n }, () => ev);

const HEALTHY = evidence(true, true);
const PROXY_FAULT = evidence(false, true);
const OUTSIDE_DOWN = evidence(false, false);
const KILLED = evidence(false, true, false);
const KILLED_OUTSIDE_DOWN = evidence(false, false, false);

describe('endpoints per liveness mode after a sequence of rounds', () => {
  const modes: LivenessMode[] = ['deep', 'attributed', 'shallow'];
  it.each([
    // name, rounds, /livez, /readyz, /health by mode [deep, attributed, shallow]
    { name: 'no round yet', rounds: [], livez: true, readyz: false, health: [true, true, true] },
    { name: 'healthy', rounds: [HEALTHY], livez: true, readyz: true, health: [true, true, true] },
    {
      name: 'egress cut, confirmed',
      rounds: [HEALTHY, ...repeat(3, PROXY_FAULT)],
      livez: true,
      readyz: false,
      health: [false, false, true],
    },
    {
      name: 'egress cut, not yet confirmed (2 of fall 3)',
      rounds: [HEALTHY, ...repeat(2, PROXY_FAULT)],
      livez: true,
      readyz: true,
      health: [true, true, true],
    },
    {
      name: 'outside down: readiness drops, attributed liveness stays',
      rounds: [HEALTHY, ...repeat(5, OUTSIDE_DOWN)],
      livez: true,
      readyz: false,
      health: [false, true, true],
    },
    {
      name: 'squid killed',
      rounds: [HEALTHY, ...repeat(3, KILLED)],
      livez: false,
      readyz: false,
      health: [false, false, false],
    },
    {
      name: 'squid killed while the outside is down too',
      rounds: [HEALTHY, ...repeat(3, KILLED_OUTSIDE_DOWN)],
      livez: false,
      readyz: false,
      health: [false, false, false],
    },
    {
      name: 'restored: 1 of rise 2 is not enough',
      rounds: [HEALTHY, ...repeat(3, PROXY_FAULT), HEALTHY],
      livez: true,
      readyz: false,
      health: [false, false, true],
    },
    {
      name: 'restored after rise',
      rounds: [HEALTHY, ...repeat(3, PROXY_FAULT), HEALTHY, HEALTHY],
      livez: true,
      readyz: true,
      health: [true, true, true],
    },
    {
      name: 'first round failing decides at once',
      rounds: [PROXY_FAULT],
      livez: true,
      readyz: false,
      health: [false, false, true],
    },
  ])('$name', ({ rounds, livez, readyz, health }) => {
    const state = run(rounds);
    expect(livezVerdict(state).ok).toBe(livez);
    expect(readyzVerdict(state, 'deep', thresholds).ok).toBe(readyz);
    expect(modes.map((mode) => healthVerdict(state, mode, thresholds).ok)).toEqual(health);
  });
});

describe('reasons and since', () => {
  it('names the squid error once confirmed, since the transition', () => {
    const state = run([HEALTHY, ...repeat(3, PROXY_FAULT)]);
    const verdict = readyzVerdict(state, 'deep', thresholds);
    expect(verdict).toEqual({ ok: false, reason: 'squid_error=ERR_CONNECT_FAIL status=503', since: 4000 });
    expect(healthVerdict(state, 'attributed', thresholds).reason).toBe(
      'squid_error=ERR_CONNECT_FAIL status=503 direct=ok',
    );
  });

  it('says a failure is brewing while still healthy', () => {
    const state = run([HEALTHY, PROXY_FAULT]);
    expect(readyzVerdict(state, 'deep', thresholds)).toEqual({
      ok: true,
      reason: 'ok, but failing 1/3: squid_error=ERR_CONNECT_FAIL status=503',
      since: 1000,
    });
  });

  it('says a recovery is under way, naming the last failure', () => {
    const state = run([HEALTHY, ...repeat(3, PROXY_FAULT), HEALTHY]);
    expect(readyzVerdict(state, 'deep', thresholds).reason).toBe(
      'recovering 1/2, last failure: squid_error=ERR_CONNECT_FAIL status=503',
    );
  });

  it('keeps the outside fault visible in the attributed reason while /health is ok', () => {
    const state = run([HEALTHY, ...repeat(3, OUTSIDE_DOWN)]);
    expect(healthVerdict(state, 'attributed', thresholds)).toEqual({
      ok: true,
      reason: 'outside_at_fault proxy: squid_error=ERR_CONNECT_FAIL status=503; direct: status=500',
      since: 1000,
    });
  });

  it('moves /livez since only when its answer changes', () => {
    const state = run([HEALTHY, HEALTHY, KILLED, KILLED]);
    expect(livezVerdict(state)).toEqual({ ok: false, reason: 'connection_refused', since: 3000 });
  });
});

describe('directEverOk', () => {
  it.each([
    { rounds: [OUTSIDE_DOWN, OUTSIDE_DOWN], ever: false },
    { rounds: [evidence(true, undefined)], ever: false },
    { rounds: [HEALTHY, OUTSIDE_DOWN], ever: true },
  ])('$#', ({ rounds, ever }) => {
    expect(run(rounds).directEverOk).toBe(ever);
  });
});

describe('nextRoundDelayMs', () => {
  const settings = { intervalMs: 5000, fastIntervalMs: 500 };
  it.each([
    { name: 'steady healthy', rounds: [HEALTHY, HEALTHY], delay: 5000 },
    { name: 'deep failing on a healthy proxy', rounds: [HEALTHY, PROXY_FAULT], delay: 500 },
    { name: 'steady unhealthy', rounds: [HEALTHY, ...repeat(4, PROXY_FAULT)], delay: 5000 },
    // Deep steady unhealthy, the attributed machine blamed the proxy and now blames the outside.
    {
      name: 'attributed changing while deep is steady',
      rounds: [HEALTHY, ...repeat(3, PROXY_FAULT), OUTSIDE_DOWN],
      delay: 500,
    },
  ])('$name -> $delay', ({ rounds, delay }) => {
    expect(nextRoundDelayMs(run(rounds), settings)).toBe(delay);
  });
});

describe('applyRound transitions', () => {
  it('reports each machine and /livez change once', () => {
    let state = initialSidecarState(0);
    const first = applyRound(state, HEALTHY, 1, thresholds);
    expect(first.deepTransition).toMatchObject({ from: 'unknown', to: 'healthy' });
    expect(first.attributedTransition).toMatchObject({ from: 'unknown', to: 'healthy' });
    expect(first.shallowChanged).toBe(true);
    state = first.state;
    const second = applyRound(state, HEALTHY, 2, thresholds);
    expect(second.deepTransition).toBeUndefined();
    expect(second.attributedTransition).toBeUndefined();
    expect(second.shallowChanged).toBe(false);
  });
});

describe('sidecarReadings: what the gauges show, per mode in force', () => {
  // Rounds as the loop makes them outside attributed mode: no direct fetch.
  const DEEP_HEALTHY = evidence(true, undefined);
  const DEEP_OUTSIDE_DOWN = evidence(false, undefined);

  // Regression: in deep mode the audit found egress_sidecar_state{check="attributed",state="healthy"}
  // at 1 and egress_sidecar_direct_ever_succeeded at 0 (so "no direct route") on every pod, while
  // /health said directEverSucceeded: null.
  it.each(['deep', 'shallow'] as const)('%s: only the deep machine, and no direct-route reading', (mode) => {
    const state = run([DEEP_HEALTHY, DEEP_HEALTHY]);
    expect(sidecarReadings(state, liveness(mode), thresholds)).toEqual({
      machines: [{ check: 'deep', state: 'healthy' }],
      endpoints: { livez: true, readyz: true, health: true },
      directEverSucceeded: undefined,
    });
  });

  it('attributed: both machines and whether a direct fetch ever passed', () => {
    expect(
      sidecarReadings(run([OUTSIDE_DOWN, ...repeat(3, OUTSIDE_DOWN)]), liveness('attributed'), thresholds),
    ).toEqual({
      machines: [
        { check: 'deep', state: 'unhealthy' },
        { check: 'attributed', state: 'healthy' },
      ],
      endpoints: { livez: true, readyz: false, health: true },
      directEverSucceeded: false,
    });
    expect(
      sidecarReadings(run([HEALTHY, OUTSIDE_DOWN]), liveness('attributed'), thresholds).directEverSucceeded,
    ).toBe(true);
  });

  it('attributed before the first round: both machines unknown, no direct fetch passed yet', () => {
    expect(sidecarReadings(initialSidecarState(0), liveness('attributed'), thresholds)).toEqual({
      machines: [
        { check: 'deep', state: 'unknown' },
        { check: 'attributed', state: 'unknown' },
      ],
      endpoints: { livez: true, readyz: false, health: true },
      directEverSucceeded: false,
    });
  });

  it('follows a reload that changes liveness on the carried state, both ways', () => {
    const state = run([DEEP_HEALTHY, ...repeat(3, DEEP_OUTSIDE_DOWN)]);
    const deep = sidecarReadings(state, liveness('deep'), thresholds);
    const attributed = sidecarReadings(state, liveness('attributed'), thresholds);
    expect(deep.machines.map((m) => m.check)).toEqual(['deep']);
    expect(deep.directEverSucceeded).toBeUndefined();
    expect(attributed.machines.map((m) => m.check)).toEqual(['deep', 'attributed']);
    expect(attributed.directEverSucceeded).toBe(false);
    expect(sidecarReadings(state, liveness('deep'), thresholds)).toEqual(deep);
  });

  it('endpoint readings are what the endpoints answer, in every mode and state', () => {
    const states = [
      initialSidecarState(0),
      run([HEALTHY]),
      run([HEALTHY, ...repeat(3, PROXY_FAULT)]),
      run([HEALTHY, ...repeat(5, OUTSIDE_DOWN)]),
      run([HEALTHY, ...repeat(3, KILLED)]),
      run([HEALTHY, ...repeat(3, PROXY_FAULT), HEALTHY]),
    ];
    for (const state of states) {
      for (const mode of ['deep', 'attributed', 'shallow'] as const) {
        expect(sidecarReadings(state, liveness(mode), thresholds).endpoints).toEqual({
          livez: livezVerdict(state).ok,
          readyz: readyzVerdict(state, 'deep', thresholds).ok,
          health: healthVerdict(state, mode, thresholds).ok,
        });
      }
    }
  });
});

describe('carryOver: the state a reloaded loop starts from', () => {
  // In deep mode no direct fetch is made, so an outside outage counts against the proxy.
  const deepDuringOutage = run(repeat(4, evidence(false, undefined)));

  it('keeps every verdict when the mode stays or leaves attributed', () => {
    for (const [from, to] of [
      ['deep', 'deep'],
      ['attributed', 'attributed'],
      ['attributed', 'deep'],
      ['shallow', 'deep'],
    ] as const)
      expect(carryOver(deepDuringOutage, liveness(from), liveness(to), 9_000)).toBe(deepDuringOutage);
  });

  it('turning attributed on starts its machine afresh, not from blame it could not check', () => {
    expect(healthVerdict(deepDuringOutage, 'attributed', thresholds).ok).toBe(false);
    const carried = carryOver(deepDuringOutage, liveness('deep'), liveness('attributed'), 9_000);
    expect(healthVerdict(carried, 'attributed', thresholds)).toMatchObject({ ok: true, since: 9_000 });
    // The deep verdict (/readyz) is kept as it was.
    expect(carried.deep).toBe(deepDuringOutage.deep);
    expect(readyzVerdict(carried, 'deep', thresholds).ok).toBe(false);
    // The next round with a direct fetch decides: the outside is down, the proxy is not at fault.
    const next = applyRound(carried, OUTSIDE_DOWN, 10_000, thresholds).state;
    expect(healthVerdict(next, 'attributed', thresholds).ok).toBe(true);
  });
});

describe('readiness: attributed', () => {
  const attributedReadiness: SidecarModes = { liveness: 'deep', readiness: 'attributed' };
  it.each([
    { name: 'no round yet: no proof of egress', rounds: [], deep: false, attributed: false },
    { name: 'healthy', rounds: [HEALTHY], deep: true, attributed: true },
    {
      name: 'egress cut, confirmed',
      rounds: [HEALTHY, ...repeat(3, PROXY_FAULT)],
      deep: false,
      attributed: false,
    },
    {
      name: 'egress cut, 2 of fall 3',
      rounds: [HEALTHY, ...repeat(2, PROXY_FAULT)],
      deep: true,
      attributed: true,
    },
    {
      name: 'outside down: stays ready',
      rounds: [HEALTHY, ...repeat(5, OUTSIDE_DOWN)],
      deep: false,
      attributed: true,
    },
    { name: 'squid killed', rounds: [HEALTHY, ...repeat(3, KILLED)], deep: false, attributed: false },
    {
      name: 'killed while the outside is down',
      rounds: [HEALTHY, ...repeat(3, KILLED_OUTSIDE_DOWN)],
      deep: false,
      attributed: false,
    },
    { name: 'first round an outside outage', rounds: [OUTSIDE_DOWN], deep: false, attributed: true },
  ])('$name', ({ rounds, deep, attributed }) => {
    const state = run(rounds);
    expect(readyzVerdict(state, 'deep', thresholds).ok).toBe(deep);
    expect(readyzVerdict(state, 'attributed', thresholds).ok).toBe(attributed);
    expect(sidecarReadings(state, attributedReadiness, thresholds).endpoints.readyz).toBe(attributed);
  });

  it('either endpoint attributed brings the attributed machine and the direct route into the readings', () => {
    const readings = sidecarReadings(run([HEALTHY]), attributedReadiness, thresholds);
    expect(readings.machines.map((m) => m.check)).toEqual(['deep', 'attributed']);
    expect(readings.directEverSucceeded).toBe(true);
  });

  it('a reload turning attribution on keeps /readyz on the deep verdict until the first attributed round', () => {
    const before = run([HEALTHY, ...repeat(4, evidence(false, undefined))]);
    const carried = carryOver(before, liveness('deep'), attributedReadiness, 9_000);
    expect(carried.attributed.state).toBe('unknown');
    // As before the reload: 503, and the body says the attributed verdict has not formed yet.
    expect(readyzVerdict(carried, 'attributed', thresholds)).toMatchObject({
      ok: false,
      reason: 'squid_error=ERR_CONNECT_FAIL status=503 (attributed verdict pending)',
    });
    const healthyBefore = carryOver(run([HEALTHY]), liveness('deep'), attributedReadiness, 9_000);
    expect(readyzVerdict(healthyBefore, 'attributed', thresholds).ok).toBe(true);
    // The first round with a direct fetch decides.
    const next = applyRound(carried, OUTSIDE_DOWN, 10_000, thresholds).state;
    expect(readyzVerdict(next, 'attributed', thresholds)).toMatchObject({
      ok: true,
      reason: expect.stringContaining('outside_at_fault'),
    });
  });

  it('liveness already attributed: turning readiness attributed carries the verdict', () => {
    const state = run([HEALTHY, ...repeat(3, OUTSIDE_DOWN)]);
    expect(
      carryOver(state, liveness('attributed'), { liveness: 'attributed', readiness: 'attributed' }, 9_000),
    ).toBe(state);
  });
});

describe("local errors: never the proxy's fault", () => {
  const EMFILE = 'probe_error=local:EMFILE';
  const localRound = (): RoundResult => ({
    ...round(false, `${EMFILE} target=${T}`),
    targets: [{ target: T, ok: false, reason: EMFILE, latencyMs: 0 }],
    local: true,
  });
  const localShallow: ShallowResult = { ok: false, reason: EMFILE, latencyMs: 0, at: 0 };
  /** Every check failed locally: the sidecar is out of descriptors. */
  const EXHAUSTED: RoundEvidence = { proxy: localRound(), direct: localRound(), shallow: localShallow };

  it.each([
    { name: 'all three local', ev: EXHAUSTED, reason: `${EMFILE} target=${T}` },
    { name: 'shallow local, the rest fine', ev: { ...HEALTHY, shallow: localShallow }, fault: 'none' },
    {
      name: 'shallow local, proxy fails, direct passes: still the proxy',
      ev: { ...PROXY_FAULT, shallow: localShallow },
      fault: 'proxy',
    },
    {
      name: 'shallow local, both paths fail: a hung proxy would look the same',
      ev: { ...OUTSIDE_DOWN, shallow: localShallow },
      reason: `answers: ${EMFILE}`,
    },
    {
      name: 'direct local, proxy fails',
      ev: { ...PROXY_FAULT, direct: localRound() },
      reason: `direct: ${EMFILE} target=${T}`,
    },
    { name: 'proxy local', ev: { ...HEALTHY, proxy: localRound() }, reason: `${EMFILE} target=${T}` },
  ] as { name: string; ev: RoundEvidence; fault?: string; reason?: string }[])(
    '$name',
    ({ ev, fault, reason }) => {
      const result = attributeRound(ev);
      if (fault) expect(result).toMatchObject({ fault });
      else expect(result).toMatchObject({ ok: false, fault: undefined, local: true, reason });
    },
  );

  it('a burst of local rounds changes no verdict in any mode, and every reason says it did not count', () => {
    const before = run([HEALTHY]);
    const state = run(repeat(10, EXHAUSTED), before);
    for (const mode of ['deep', 'attributed', 'shallow'] as const) {
      expect(healthVerdict(state, mode, thresholds).ok).toBe(true);
    }
    expect(readyzVerdict(state, 'deep', thresholds)).toEqual({
      ok: true,
      reason: `ok; not counted: ${EMFILE} target=${T}`,
      since: 1000,
    });
    expect(readyzVerdict(state, 'attributed', thresholds).ok).toBe(true);
    expect(livezVerdict(state)).toEqual({ ok: true, reason: `ok; not counted: ${EMFILE}`, since: 1000 });
    expect(state.fault).toBe('none');
    // Without the excuse the same rounds would have taken the pod down and restarted Squid.
    const blamed = run(repeat(10, evidence(false, true, false)), before);
    expect(healthVerdict(blamed, 'attributed', thresholds).ok).toBe(false);
  });

  it('keeps a failure already counting: an unhealthy verdict stays unhealthy, counts unchanged', () => {
    const state = run([HEALTHY, ...repeat(3, PROXY_FAULT), HEALTHY, EXHAUSTED]);
    expect(readyzVerdict(state, 'deep', thresholds)).toMatchObject({
      ok: false,
      reason: `recovering 1/2, last failure: squid_error=ERR_CONNECT_FAIL status=503; not counted: ${EMFILE} target=${T}`,
    });
    // The next passing round completes the rise the local round did not interrupt.
    expect(readyzVerdict(run([HEALTHY], state), 'deep', thresholds).ok).toBe(true);
  });

  it('before any verdict: still pending (readiness 503, liveness 200)', () => {
    const state = run([EXHAUSTED]);
    expect(readyzVerdict(state, 'attributed', thresholds)).toMatchObject({
      ok: false,
      reason: `pending: no check has finished yet; not counted: ${EMFILE} target=${T}`,
    });
    expect(healthVerdict(state, 'attributed', thresholds).ok).toBe(true);
    expect(livezVerdict(state).ok).toBe(true);
  });

  it('localFailures names each check that failed locally', () => {
    expect(localFailures(EXHAUSTED).map((f) => f.check)).toEqual(['deep', 'direct', 'shallow']);
    expect(localFailures(HEALTHY)).toEqual([]);
    expect(localFailures({ ...KILLED, shallow: localShallow })).toEqual([
      { check: 'shallow', reason: EMFILE },
    ]);
  });
});
