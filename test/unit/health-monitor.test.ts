// Scheduling of the monitor, on fake timers with a scripted round function: no sockets, no sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PoolConfig, ProbeSettings, ServiceConfig } from '../../src/config/schema.js';
import {
  HealthMonitor,
  type MonitorOptions,
  type RoundEvent,
  type TransitionEvent,
} from '../../src/health/monitor.js';
import type { RoundResult } from '../../src/health/round.js';
import type { HealthSnapshot } from '../../src/health/snapshot.js';
import { probeSettings } from '../helpers/probe-settings.js';

const T0 = Date.parse('2026-11-25T10:00:00Z');

const probe: ProbeSettings = probeSettings({ intervalMs: 1_000, timeoutMs: 500, fastIntervalMs: 100 });

function poolConfig(name: string, over: Partial<PoolConfig> = {}): PoolConfig {
  return { name, proxy: `http://${name}.test:3128`, addresses: [`10.0.0.${name.length}`], probe, ...over };
}

/** pass / fail after `ms`; `hang` never settles and ignores its signal; `honour` settles on abort. */
type Step = { ok: boolean; ms?: number; reason?: string } | 'hang' | 'honour';

interface Call {
  readonly pool: string;
  readonly startedAt: number;
  endedAt: number | undefined;
  readonly signal: AbortSignal;
}

function scripted(scripts: Record<string, Step[]>) {
  const calls: Call[] = [];
  let running = new Map<string, number>();
  let maxOverlap = 0;
  const runRound: MonitorOptions['runRound'] = (pool, signal) => {
    const step = scripts[pool.name]?.shift() ?? { ok: true };
    const call: Call = { pool: pool.name, startedAt: Date.now(), endedAt: undefined, signal };
    calls.push(call);
    const inFlight = (running.get(pool.name) ?? 0) + 1;
    running.set(pool.name, inFlight);
    maxOverlap = Math.max(maxOverlap, inFlight);
    const end = () => {
      if (call.endedAt !== undefined) return;
      call.endedAt = Date.now();
      running.set(pool.name, (running.get(pool.name) ?? 1) - 1);
    };
    // A round the monitor gave up on counts as over when its signal fires.
    signal.addEventListener('abort', end, { once: true });
    return new Promise<RoundResult>((resolve, reject) => {
      if (step === 'hang') return;
      if (step === 'honour') {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        return;
      }
      const ms = step.ms ?? 10;
      setTimeout(() => {
        end();
        const reason = step.reason ?? (step.ok ? 'ok' : 'status=500');
        resolve({ ok: step.ok, reason, targets: [], latencyMs: ms, at: Date.now() });
      }, ms);
    });
  };
  return {
    runRound,
    calls,
    starts: (pool: string) => calls.filter((c) => c.pool === pool).map((c) => c.startedAt - T0),
    maxOverlap: () => maxOverlap,
    reset: () => {
      running = new Map();
    },
  };
}

function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
    warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
  };
}

function service(name: string, pools: PoolConfig[], onAllDown: ServiceConfig['onAllDown'] = 'servfail') {
  return { name, onAllDown, pools };
}

let monitors: HealthMonitor[] = [];
function monitor(options: Partial<MonitorOptions> & Pick<MonitorOptions, 'services' | 'runRound'>) {
  const m = new HealthMonitor({ logger: logger(), random: () => 0.5, ...options });
  monitors.push(m);
  return m;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(async () => {
  await Promise.all(monitors.map((m) => m.stop()));
  monitors = [];
  vi.useRealTimers();
});

describe('HealthMonitor', () => {
  it('starts every first round promptly and is ready once they are in', async () => {
    const script = scripted({ primary: [{ ok: false, ms: 30 }], secondary: [{ ok: true, ms: 30 }] });
    const m = monitor({
      services: [service('proxy', [poolConfig('primary'), poolConfig('secondary')])],
      runRound: script.runRound,
      random: Math.random,
    });
    expect(m.current().ready).toBe(false);
    m.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(script.starts('primary')).toHaveLength(1);
    expect(script.starts('secondary')).toHaveLength(1);
    for (const c of script.calls) expect(c.startedAt - T0).toBeLessThanOrEqual(100);
    await vi.advanceTimersByTimeAsync(40);
    const view = m.current();
    expect(view.ready).toBe(true);
    expect(view.services[0]?.selection).toMatchObject({ mode: 'healthy', selected: 'secondary' });
  });

  it('waits `interval` from the end of a round, `fastInterval` while in transition', async () => {
    // pass, fail (in transition), fail (unhealthy), pass (in transition), pass (healthy), pass
    const steps: Step[] = [true, false, false, true, true, true].map((ok) => ({ ok, ms: 10 }));
    const script = scripted({ primary: steps });
    monitor({ services: [service('proxy', [poolConfig('primary')])], runRound: script.runRound }).start();
    await vi.advanceTimersByTimeAsync(3_500);
    // random 0.5: first round at 50 ms, no jitter on interval; each round takes 10 ms.
    expect(script.starts('primary')).toEqual([50, 1_060, 1_170, 2_180, 2_290, 3_300]);
  });

  it('never overlaps rounds of a pool, and gives up on a hung one at timeout + slack', async () => {
    const script = scripted({ primary: [{ ok: true }, 'hang', 'honour', { ok: true }] });
    const rounds: RoundEvent[] = [];
    const m = monitor({
      services: [service('proxy', [poolConfig('primary')])],
      runRound: script.runRound,
      abortSlackMs: 100,
      onRound: (event) => rounds.push(event),
    });
    m.start();
    await vi.advanceTimersByTimeAsync(4_000);
    expect(script.maxOverlap()).toBe(1);
    const [first, hung, honoured, after] = script.calls;
    expect(hung?.signal.aborted).toBe(true);
    expect(hung && hung.endedAt !== undefined && hung.endedAt - hung.startedAt).toBe(600);
    expect(honoured && honoured.endedAt !== undefined && honoured.endedAt - honoured.startedAt).toBe(600);
    // Failing rounds on a healthy pool are a transition: the next one follows after fastInterval.
    expect(hung && honoured && honoured.startedAt - (hung.endedAt ?? 0)).toBe(100);
    expect(after && honoured && after.startedAt - (honoured.endedAt ?? 0)).toBeGreaterThanOrEqual(950);
    expect(first?.signal.aborted).toBe(false);
    expect(rounds.map((r) => r.result.reason).slice(0, 3)).toEqual([
      'ok',
      'round_timeout=600ms',
      'round_timeout=600ms',
    ]);
  });

  it('turns a round function that throws into a failed round, and keeps going', async () => {
    let n = 0;
    const log = logger();
    const m = monitor({
      services: [service('proxy', [poolConfig('primary')])],
      logger: log,
      runRound: async () => {
        n += 1;
        throw new Error('boom');
      },
    });
    m.start();
    await vi.advanceTimersByTimeAsync(1_200);
    expect(n).toBe(2);
    expect(m.current().services[0]?.pools[0]?.lastRound?.reason).toBe('probe_error=boom');
    expect(log.lines.some((l) => l.level === 'warn' && l.msg === 'probe round threw')).toBe(true);
  });

  it('logs each transition once with service, pool, from, to and reason, and calls the hook', async () => {
    const script = scripted({
      primary: [{ ok: true }, { ok: false, reason: 'squid_error=ERR_CONNECT_FAIL' }, { ok: false }],
    });
    const log = logger();
    const transitions: TransitionEvent[] = [];
    monitor({
      services: [service('proxy', [poolConfig('primary')])],
      runRound: script.runRound,
      logger: log,
      onTransition: (event) => transitions.push(event),
    }).start();
    await vi.advanceTimersByTimeAsync(1_300);
    const changes = log.lines.filter((l) => l.msg === 'pool state changed').map((l) => l.obj);
    expect(changes).toEqual([
      { service: 'proxy', pool: 'primary', from: 'unknown', to: 'healthy', reason: 'ok' },
      { service: 'proxy', pool: 'primary', from: 'healthy', to: 'unhealthy', reason: 'status=500' },
    ]);
    expect(transitions.map((t) => [t.pool, t.transition.to])).toEqual([
      ['primary', 'healthy'],
      ['primary', 'unhealthy'],
    ]);
  });

  it('publishes frozen snapshots: failover, failback, redacted proxy, last failure kept', async () => {
    const fail = { ok: false, reason: 'squid_error=ERR_CONNECT_FAIL' };
    const script = scripted({ primary: [{ ok: true }, fail, fail, { ok: true }, { ok: true }] });
    const m = monitor({
      services: [
        service('proxy', [
          poolConfig('primary', { proxy: 'http://user:s3cret@primary.test:3128' }),
          poolConfig('secondary'),
        ]),
      ],
      runRound: script.runRound,
    });
    const seen: HealthSnapshot[] = [];
    m.onSnapshot((s) => seen.push(s));
    m.start();
    await vi.advanceTimersByTimeAsync(3_000);
    const selected = seen.map((s) => s.services[0]?.selection.selected);
    const changes = selected.filter((name, i) => i === 0 || name !== selected[i - 1]);
    expect(changes).toEqual([undefined, 'primary', 'secondary', 'primary']);
    const view = m.current();
    expect(Object.isFrozen(view)).toBe(true);
    expect(Object.isFrozen(view.services[0]?.pools[0])).toBe(true);
    const primary = view.services[0]?.pools[0];
    expect(primary).toMatchObject({
      proxy: 'http://***@primary.test:3128',
      state: 'healthy',
      addressSource: 'config',
      transitions: 3,
      lastFailure: { reason: 'squid_error=ERR_CONNECT_FAIL' },
    });
    expect(JSON.stringify(view)).not.toContain('s3cret');
  });

  it('stop() clears every timer, aborts the round in flight and resolves when idle', async () => {
    const script = scripted({ primary: [{ ok: true }, 'hang'], secondary: [] });
    const m = monitor({
      services: [service('proxy', [poolConfig('primary'), poolConfig('secondary')])],
      runRound: script.runRound,
    });
    const seen: HealthSnapshot[] = [];
    m.onSnapshot((s) => seen.push(s));
    m.start();
    await vi.advanceTimersByTimeAsync(1_100);
    const hung = script.calls.filter((c) => c.pool === 'primary').at(-1);
    expect(hung?.startedAt).toBe(T0 + 1_060);
    expect(hung?.signal.aborted).toBe(false);
    const count = seen.length;
    await m.stop();
    expect(hung?.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    const calls = script.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(script.calls.length).toBe(calls);
    expect(seen.length).toBe(count);
  });

  it('serves a proxy host’s resolved addresses and keeps the last good ones on failure', async () => {
    const answers: (string[] | Error)[] = [['fd00::9', '10.0.0.9', '10.0.0.9'], new Error('EAI_AGAIN')];
    const lookup = vi.fn(async (_host: string) => {
      const answer = answers.shift() ?? ['10.0.0.10'];
      if (answer instanceof Error) throw Object.assign(answer, { code: answer.message });
      return answer;
    });
    const log = logger();
    const m = monitor({
      services: [service('proxy', [poolConfig('primary', { addresses: undefined })])],
      runRound: scripted({}).runRound,
      logger: log,
      lookup,
      resolveRefreshMs: 30_000,
    });
    m.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(lookup).toHaveBeenCalledWith('primary.test');
    let pool = m.current().services[0]?.pools[0];
    expect(pool).toMatchObject({ addresses: ['10.0.0.9', 'fd00::9'], addressSource: 'dns' });
    expect(m.current().services[0]?.selection.addresses).toEqual(['10.0.0.9', 'fd00::9']);

    await vi.advanceTimersByTimeAsync(30_000);
    pool = m.current().services[0]?.pools[0];
    expect(pool?.addresses).toEqual(['10.0.0.9', 'fd00::9']);
    expect(pool?.resolveError?.reason).toBe('resolve_error=EAI_AGAIN host=primary.test');
    expect(log.lines.some((l) => l.level === 'warn' && l.obj.reason === pool?.resolveError?.reason)).toBe(
      true,
    );

    await vi.advanceTimersByTimeAsync(30_000);
    pool = m.current().services[0]?.pools[0];
    expect(pool).toMatchObject({ addresses: ['10.0.0.10'], resolveError: undefined });
  });

  it('needs no resolution for an IP-literal proxy host', async () => {
    const lookup = vi.fn(async () => ['10.9.9.9']);
    const m = monitor({
      services: [
        service('proxy', [poolConfig('primary', { proxy: 'http://[fd00::1]:3128', addresses: undefined })]),
      ],
      runRound: scripted({}).runRound,
      lookup,
    });
    m.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(lookup).not.toHaveBeenCalled();
    expect(m.current().services[0]?.pools[0]).toMatchObject({
      addresses: ['fd00::1'],
      addressSource: 'config',
    });
    expect(m.current().services[0]?.selection.addresses).toEqual(['fd00::1']);
  });

  it('holds the first verdict until the first resolution is in, so it never answers empty', async () => {
    let release: (addresses: string[]) => void = () => {};
    const lookup = () => new Promise<string[]>((resolve) => (release = resolve));
    const m = monitor({
      services: [
        service('proxy', [poolConfig('primary', { addresses: undefined }), poolConfig('secondary')]),
      ],
      runRound: scripted({}).runRound,
      lookup,
    });
    m.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(m.current().ready).toBe(false);
    release(['10.0.0.7']);
    // The resolution and the verdict both publish: the second within the state gap (10 ms).
    await vi.advanceTimersByTimeAsync(10);
    expect(m.current().services[0]?.selection).toMatchObject({
      selected: 'primary',
      addresses: ['10.0.0.7'],
    });
  });

  it('lets a reloaded monitor keep unchanged pools’ state and the service’s readiness', async () => {
    const primary = poolConfig('primary');
    const first = monitor({
      services: [service('proxy', [primary, poolConfig('secondary')])],
      runRound: scripted({ primary: [{ ok: false }], secondary: [{ ok: true }] }).runRound,
    });
    first.start();
    await vi.advanceTimersByTimeAsync(100);
    await first.stop();
    const changed = poolConfig('secondary', { probe: { ...probe, rise: 5 } });
    const second = monitor({
      services: [service('proxy', [primary, changed])],
      runRound: scripted({}).runRound,
      previous: first.carryOver(),
    });
    const view = second.current();
    expect(view.services[0]?.pools.map((p) => p.state)).toEqual(['unhealthy', 'unknown']);
    // Ready from the start: a reload must not leave a moment of SERVFAIL.
    expect(view.ready).toBe(true);
    // The changed pool was the answer; it stays the answer until its first round says otherwise.
    expect(view.services[0]?.selection).toMatchObject({ mode: 'healthy', selected: 'secondary' });
  });

  it('stays ready when a reload adds a service; only the new name waits for its verdict', async () => {
    const proxy = service('proxy', [poolConfig('primary')]);
    const first = monitor({ services: [proxy], runRound: scripted({}).runRound });
    first.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(first.current().ready).toBe(true);
    await first.stop();
    const added = service('added', [poolConfig('other')]);
    const slow = () => ({ other: [{ ok: true, ms: 5_000 }] });
    const second = monitor({
      services: [proxy, added],
      runRound: scripted(slow()).runRound,
      previous: first.carryOver(),
    });
    second.start();
    // The new pool's first round is still running (abandoned only at timeout + slack, 750 ms).
    await vi.advanceTimersByTimeAsync(300);
    const view = second.current();
    // Every replica reloads the same ConfigMap at once: none may drop out of the Service for it.
    expect(view.ready).toBe(true);
    expect(view.services.map((s) => [s.name, s.selection.ready])).toEqual([
      ['proxy', true],
      ['added', false],
    ]);
    // A process that starts with the same config waits for every service, as before.
    const cold = monitor({ services: [proxy, added], runRound: scripted(slow()).runRound });
    cold.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(cold.current().ready).toBe(false);
  });

  it('publishes a burst of first verdicts together, not one publication per verdict', async () => {
    // 200 services whose first rounds end a millisecond apart: each verdict is a state change.
    const services = Array.from({ length: 200 }, (_, i) =>
      service(`s${i}`, [poolConfig(`p${i}`, { addresses: [`10.1.${Math.floor(i / 250)}.${i % 250}`] })]),
    );
    const runRound: MonitorOptions['runRound'] = (pool) => {
      const ms = 10 + Number(pool.name.slice(1));
      return new Promise((resolve) =>
        setTimeout(() => resolve({ ok: true, reason: 'ok', targets: [], latencyMs: ms, at: Date.now() }), ms),
      );
    };
    const m = monitor({ services, runRound, firstRoundSpreadMs: 0 });
    let publications = 0;
    m.onSnapshot(() => {
      publications += 1;
    });
    m.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(m.current().ready).toBe(true);
    // 200 verdicts over 200 ms, at most one publication per 10 ms: about 20, not 200.
    expect(publications).toBeLessThanOrEqual(25);
    expect(publications).toBeGreaterThan(1);
  });

  it('after a costly publication, waits four times its cost before the next', async () => {
    // Two services whose first verdicts come 10 ms apart; publishing the first takes 30 ms (the
    // monitor's clock says so), so the second waits until 120 ms after the first began.
    const services = [0, 1].map((i) => service(`s${i}`, [poolConfig(`p${i}`)]));
    const runRound: MonitorOptions['runRound'] = (pool) => {
      const ms = pool.name === 'p0' ? 10 : 20;
      return new Promise((resolve) =>
        setTimeout(() => resolve({ ok: true, reason: 'ok', targets: [], latencyMs: ms, at: Date.now() }), ms),
      );
    };
    let spent = 0;
    const m = monitor({ services, runRound, firstRoundSpreadMs: 0, now: () => Date.now() + spent });
    const publishedAt: number[] = [];
    m.onSnapshot((snapshot) => {
      if (!snapshot.services.some((s) => s.selection.ready)) return;
      publishedAt.push(Date.now() - T0);
      spent += 30;
    });
    m.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(publishedAt[0]).toBe(10);
    // Without the cost rule, 10 ms after the first (stateGapMs): at 20.
    expect(publishedAt[1]).toBeGreaterThanOrEqual(100);
    expect(m.current().services.every((s) => s.selection.ready)).toBe(true);
  });

  it('assemble builds what the constructor builds, serving the event loop meanwhile', async () => {
    vi.useRealTimers();
    const services = Array.from({ length: 3_000 }, (_, i) =>
      service(`s${i}`, [poolConfig(`p${i}`, { addresses: [`10.2.${i >> 8}.${i & 255}`] })]),
    );
    const options = { services, runRound: scripted({}).runRound, logger: logger(), now: () => T0 };
    let assembled = false;
    let servedBeforeTheEnd = false;
    // Stands for a DNS query arriving during a reload: it must not wait for the whole build.
    setImmediate(() => {
      servedBeforeTheEnd = !assembled;
    });
    const sliced = await HealthMonitor.assemble(options, 1);
    assembled = true;
    expect(servedBeforeTheEnd).toBe(true);
    expect(sliced.current()).toEqual(new HealthMonitor(options).current());
    expect(sliced.current().services).toHaveLength(3_000);
  });

  it('spreads rounds: first ones within 100 ms, regular intervals within +-5%', async () => {
    const script = scripted({});
    const values = [0.999, 0, 0.999, 0];
    let r = 0;
    const spread = monitor({
      services: [service('proxy', [poolConfig('primary'), poolConfig('secondary')])],
      runRound: script.runRound,
      random: () => values[r++ % values.length] ?? 0.5,
    });
    spread.start();
    await vi.advanceTimersByTimeAsync(1_200);
    const first = script.starts('primary');
    const second = script.starts('secondary');
    expect([first[0], second[0]]).toEqual([100, 0]);
    // Rounds take 10 ms. secondary ends first (10) and draws 0.999: 1050 ms later; primary ends at
    // 110 and draws 0: 950 ms later.
    expect([first[1], second[1]]).toEqual([1_060, 1_060]);
  });
});
