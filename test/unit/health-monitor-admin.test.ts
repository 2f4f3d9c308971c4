// The monitor and operator controls, on fake timers with a scripted round function: a control moves
// the answer without touching the pool's health, a control-only reload keeps the health it carries,
// `until` republishes by itself, and state changes and controls land in the pool's history.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AdminControl, PoolConfig, ProbeSettings } from '../../src/config/schema.js';
import { HealthMonitor, type MonitorOptions } from '../../src/health/monitor.js';
import type { RoundResult } from '../../src/health/round.js';
import type { HealthSnapshot } from '../../src/health/snapshot.js';
import { probeSettings } from '../helpers/probe-settings.js';

const T0 = Date.parse('2026-12-02T14:00:00Z');

const probe: ProbeSettings = probeSettings({ intervalMs: 1_000, timeoutMs: 500, fastIntervalMs: 100 });

const pool = (name: string, address: string, admin?: AdminControl): PoolConfig => ({
  name,
  proxy: `http://${name}.test:3128`,
  addresses: [address],
  probe,
  admin,
});

/** Every round passes, except those of the pools in `failing`. */
const failing = new Set<string>();
const runRound: MonitorOptions['runRound'] = async (config) => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  const ok = !failing.has(config.name);
  return { ok, reason: ok ? 'ok' : 'status=503', targets: [], latencyMs: 10, at: Date.now() } as RoundResult;
};

let lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
const logger = {
  info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
  warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
};

let monitors: HealthMonitor[] = [];
function monitor(primary?: AdminControl, previous?: HealthMonitor): HealthMonitor {
  const m = new HealthMonitor({
    services: [
      {
        name: 'proxy',
        onAllDown: 'servfail',
        pools: [pool('primary', '10.0.0.1', primary), pool('secondary', '10.0.0.2')],
      },
    ],
    runRound,
    logger,
    random: () => 0.5,
    ...(previous ? { previous: previous.carryOver() } : {}),
  });
  monitors.push(m);
  m.start();
  return m;
}

const service = (m: HealthMonitor) => m.current().services[0] as HealthSnapshot['services'][number];
const primaryOf = (m: HealthMonitor) => service(m).pools[0];

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  lines = [];
  failing.clear();
});

afterEach(async () => {
  await Promise.all(monitors.map((m) => m.stop()));
  monitors = [];
  vi.useRealTimers();
});

describe('HealthMonitor with operator controls', () => {
  it('a control-only reload moves the answer at once and keeps the health it carries', async () => {
    const first = monitor();
    await vi.advanceTimersByTimeAsync(200);
    expect(service(first).selection.selected).toBe('primary');
    const health = primaryOf(first);
    await first.stop();

    const drained = monitor({ state: 'drain', reason: 'node pool upgrade', until: undefined }, first);
    // Before any round of the new monitor: the carried health decides, the control moves the answer.
    expect(service(drained).selection).toMatchObject({ ready: true, selected: 'secondary' });
    expect(primaryOf(drained)).toMatchObject({
      state: 'healthy',
      since: health?.since,
      transitions: health?.transitions,
      admin: { state: 'drain', reason: 'node pool upgrade' },
    });
    expect(lines.filter((l) => l.msg === 'pool state changed')).toHaveLength(2); // the two first verdicts
  });

  it('ends a control at its until and republishes, with no reload', async () => {
    const m = monitor({ state: 'down', reason: 'short', until: T0 + 5_000 });
    const published: (string | undefined)[] = [];
    m.onSnapshot((snapshot) => published.push(snapshot.services[0]?.selection.selected));
    await vi.advanceTimersByTimeAsync(4_900);
    expect(service(m).selection.selected).toBe('secondary');
    await vi.advanceTimersByTimeAsync(100);
    expect(service(m).selection.selected).toBe('primary');
    expect(published.at(-1)).toBe('primary');
    expect(primaryOf(m)?.admin).toBeUndefined();
    expect(primaryOf(m)?.history?.map((e) => `${e.kind} ${e.from}->${e.to}`)).toEqual([
      'admin none->down',
      'health unknown->healthy',
      'admin down->none',
    ]);
  });

  it('up answers a failing pool; the probes go on, and their state changes are history, not the control', async () => {
    failing.add('primary');
    const m = monitor({ state: 'up', reason: 'pinned', until: undefined });
    await vi.advanceTimersByTimeAsync(200);
    expect(primaryOf(m)?.state).toBe('unhealthy');
    expect(service(m).selection.selected).toBe('primary');
    failing.clear();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(primaryOf(m)?.state).toBe('healthy');
    expect(primaryOf(m)?.history?.map((e) => `${e.kind} ${e.from}->${e.to}`)).toEqual([
      'admin none->up',
      'health unknown->unhealthy',
      'health unhealthy->healthy',
    ]);
  });
});
