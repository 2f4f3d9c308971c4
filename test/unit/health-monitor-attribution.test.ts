// The monitor's cross-pool attribution, local errors and flap damping, on fake timers with scripted
// rounds: who is blamed, when another pool is asked to confirm, and what the view shows.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PoolConfig, ProbeSettings } from '../../src/config/schema.js';
import { type FlapEvent, HealthMonitor, type RoundEvent } from '../../src/health/monitor.js';
import type { RoundResult } from '../../src/health/round.js';
import { probeSettings } from '../helpers/probe-settings.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const SITE = 'http://site.test/';

const probe: ProbeSettings = probeSettings({ targets: [SITE] });

/** What a pool's proxy does now: passes, fails the site while answering, does not answer, or EMFILE. */
type Behaviour = 'pass' | 'site-down' | 'dead' | 'local';

function world(initial: Record<string, Behaviour>) {
  const behaviour = { ...initial };
  const calls: { pool: string; at: number }[] = [];
  const runRound = (pool: PoolConfig): Promise<RoundResult> => {
    calls.push({ pool: pool.name, at: Date.now() - T0 });
    const now = behaviour[pool.name] ?? 'pass';
    return new Promise((resolve) =>
      setTimeout(() => {
        const at = Date.now();
        const fail = (
          reason: string,
          proxyAnswers: boolean,
          extra: Partial<RoundResult> = {},
        ): RoundResult => ({
          ok: false,
          reason: `${reason} target=${SITE}`,
          targets: [{ target: SITE, ok: false, reason, latencyMs: 10 }],
          latencyMs: 10,
          at,
          proxyAnswers,
          ...extra,
        });
        if (now === 'pass') {
          resolve({
            ok: true,
            reason: 'ok',
            targets: [{ target: SITE, ok: true, reason: 'ok', status: 200, latencyMs: 10 }],
            latencyMs: 10,
            at,
            proxyAnswers: true,
          });
        } else if (now === 'site-down') resolve(fail('status=500', true));
        else if (now === 'dead') resolve(fail('connection_refused', false));
        else resolve(fail('probe_error=local:EMFILE', false, { local: true }));
      }, 10),
    );
  };
  return { behaviour, calls, runRound };
}

function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
    warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
  };
}

function pool(name: string, over: Partial<ProbeSettings> = {}): PoolConfig {
  return {
    name,
    proxy: `http://${name}.test:3128`,
    addresses: [`10.0.0.${name.length}`],
    probe: { ...probe, ...over },
  };
}

let running: HealthMonitor[] = [];
function start(w: ReturnType<typeof world>, pools: PoolConfig[], extra: Record<string, unknown> = {}) {
  const log = logger();
  const flaps: FlapEvent[] = [];
  const locals: RoundEvent[] = [];
  const m = new HealthMonitor({
    services: [{ name: 'proxy', onAllDown: 'servfail', pools }],
    runRound: w.runRound,
    logger: log,
    random: () => 0.5,
    onFlap: (event) => flaps.push(event),
    onLocalError: (event) => locals.push(event),
    ...extra,
  });
  running.push(m);
  m.start();
  const service = () => m.current().services[0];
  return {
    m,
    log,
    flaps,
    locals,
    selected: () => service()?.selection.selected,
    mode: () => service()?.selection.mode,
    outage: () => service()?.outage,
    state: (name: string) => service()?.pools.find((p) => p.name === name)?.state,
    transitions: () =>
      log.lines.filter((l) => l.msg === 'pool state changed').map((l) => `${l.obj.pool}:${l.obj.to}`),
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(async () => {
  await Promise.all(running.map((m) => m.stop()));
  running = [];
  vi.useRealTimers();
});

describe('attribution across pools', () => {
  it('an outside outage moves nothing: no transition, no SERVFAIL, outage=outside, and it ends', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const s = start(w, [pool('primary'), pool('secondary')]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.selected()).toBe('primary');
    w.behaviour.primary = 'site-down';
    w.behaviour.secondary = 'site-down';
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.transitions()).toEqual(['primary:healthy', 'secondary:healthy']);
    expect(s.selected()).toBe('primary');
    expect(s.mode()).toBe('healthy');
    expect(s.outage()).toBe('outside');
    const began = s.log.lines.filter((l) => l.msg.startsWith('outside outage:'));
    expect(began).toHaveLength(1);

    w.behaviour.primary = 'pass';
    w.behaviour.secondary = 'pass';
    await vi.advanceTimersByTimeAsync(1_500);
    expect(s.outage()).toBeUndefined();
    expect(s.log.lines.filter((l) => l.msg === 'outside outage over')).toHaveLength(1);
  });

  it('a pool that fails what another passes is at fault: the answer moves (lost egress)', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const s = start(w, [pool('primary'), pool('secondary')]);
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'site-down';
    await vi.advanceTimersByTimeAsync(2_000);
    expect(s.selected()).toBe('secondary');
    expect(s.outage()).toBeUndefined();
  });

  it('asks a pool with no recent round to confirm at once, instead of trusting an old pass', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    // The secondary's own schedule would not come round for 20 s.
    const s = start(w, [pool('primary'), pool('secondary', { intervalMs: 20_000, timeoutMs: 400 })]);
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'site-down';
    w.behaviour.secondary = 'site-down';
    const before = w.calls.filter((c) => c.pool === 'secondary').length;
    await vi.advanceTimersByTimeAsync(1_000);
    const asked = w.calls.filter((c) => c.pool === 'secondary').slice(before);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    // ...and since the secondary fails the same target, it is an outside outage: nothing moves.
    expect(s.selected()).toBe('primary');
    expect(s.outage()).toBe('outside');
  });

  it('never blames a pool on a pass the other pool made before the outage began, whatever the timing', async () => {
    // fall 1: a single wrong blame would flip the answer. The onset moves through the rounds' phase.
    for (let offset = 0; offset < 500; offset += 37) {
      const w = world({ primary: 'pass', secondary: 'pass' });
      const s = start(w, [pool('primary', { fall: 1, rise: 1 }), pool('secondary', { fall: 1, rise: 1 })]);
      await vi.advanceTimersByTimeAsync(1_000 + offset);
      w.behaviour.primary = 'site-down';
      w.behaviour.secondary = 'site-down';
      await vi.advanceTimersByTimeAsync(3_000);
      expect(s.transitions(), `onset ${offset} ms into the rounds`).toEqual([
        'primary:healthy',
        'secondary:healthy',
      ]);
      expect(s.outage()).toBe('outside');
      await s.m.stop();
    }
  });

  it('a proxy that stops answering during an outside outage is still at fault: the answer moves', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const s = start(w, [pool('primary'), pool('secondary')]);
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'site-down';
    w.behaviour.secondary = 'site-down';
    await vi.advanceTimersByTimeAsync(3_000);
    expect(s.selected()).toBe('primary');
    w.behaviour.primary = 'dead';
    await vi.advanceTimersByTimeAsync(2_000);
    expect(s.state('primary')).toBe('unhealthy');
    expect(s.selected()).toBe('secondary');
  });

  it('starting during an outside outage: every pool gets a healthy verdict, the first is answered', async () => {
    const w = world({ primary: 'site-down', secondary: 'site-down' });
    const s = start(w, [pool('primary'), pool('secondary')]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.mode()).toBe('healthy');
    expect(s.selected()).toBe('primary');
    expect(s.outage()).toBe('outside');
  });

  it('a single pool has no one to compare with: its target failures are never held against it', async () => {
    const w = world({ only: 'site-down' });
    const s = start(w, [pool('only')]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.state('only')).toBe('healthy');
    expect(s.outage()).toBe('outside');
  });

  it('rounds without proxyAnswers (no shallow check) count as before', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const plain = (p: PoolConfig) =>
      w.runRound(p).then(({ proxyAnswers: _dropped, ...round }): RoundResult => round);
    const s = start(w, [pool('primary'), pool('secondary')], { runRound: plain });
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'site-down';
    w.behaviour.secondary = 'site-down';
    await vi.advanceTimersByTimeAsync(3_000);
    expect(s.mode()).toBe('all-down-servfail');
  });
});

describe('local errors', () => {
  it('are never held against the pool; counted; one warning per burst', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const s = start(w, [pool('primary'), pool('secondary')]);
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'local';
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.state('primary')).toBe('healthy');
    expect(s.selected()).toBe('primary');
    expect(s.locals.length).toBeGreaterThan(3);
    const warnings = s.log.lines.filter((l) => l.msg.startsWith('probe failed for a local reason'));
    expect(warnings).toHaveLength(1);
    w.behaviour.primary = 'pass';
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.log.lines.filter((l) => l.msg === 'probes no longer fail for local reasons')).toHaveLength(1);
  });
});

describe('flap damping', () => {
  it('holds a flapping pool down and says so; the answer stays on the stable pool meanwhile', async () => {
    const w = world({ primary: 'pass', secondary: 'pass' });
    const damped = { flapThreshold: 2, holdDownMs: 30_000, maxHoldDownMs: 60_000 };
    const s = start(w, [pool('primary', damped), pool('secondary', damped)]);
    await vi.advanceTimersByTimeAsync(1_000);
    // Lost egress and back, every 2 s: it fails (1), recovers (2), fails (3), and its next recovery is held.
    for (let i = 0; i < 4; i++) {
      w.behaviour.primary = i % 2 === 0 ? 'site-down' : 'pass';
      await vi.advanceTimersByTimeAsync(2_000);
    }
    expect(s.flaps).toHaveLength(1);
    expect(s.state('primary')).toBe('unhealthy');
    expect(s.selected()).toBe('secondary');
    const pool0 = s.m.current().services[0]?.pools[0];
    expect(pool0?.flaps.heldUntil).toBeGreaterThan(Date.now());
    // When the hold-down ends it comes back.
    await vi.advanceTimersByTimeAsync(31_000);
    expect(s.selected()).toBe('primary');
  });
});
