// The monitor with a pool read from its pods (`sidecars`) beside a pool probed directly, on fake
// timers with scripted rounds: the pods in the view, a pods round never excused as an outside outage,
// and what the pods' sidecars report about the outside serving the other pool's attribution.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PoolConfig, ProbeSettings } from '../../src/config/schema.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { type PodAnswer, podsVerdict } from '../../src/health/pods-verdict.js';
import type { RoundResult } from '../../src/health/round.js';
import { probeSettings } from '../helpers/probe-settings.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const SITE = 'http://site.test/';

const probe: ProbeSettings = probeSettings({ targets: [SITE] });

const direct: PoolConfig = {
  name: 'primary',
  proxy: 'http://primary.test:3128',
  addresses: ['10.0.0.1'],
  probe,
};
const fromPods: PoolConfig = {
  name: 'secondary',
  proxy: 'http://secondary.test:3128',
  addresses: ['10.0.0.2'],
  probe: { ...probe, targets: [] },
  sidecars: { url: 'http://secondary-pods.test:8081/readyz', minReady: 1 },
};

/** What the secondary's two pods' sidecars say: ready or not, and whether their Squid reaches SITE. */
type Pods = 'ready' | 'site-down';

function world(initial: { primary: 'pass' | 'site-down'; secondary: Pods }) {
  const behaviour = { ...initial };
  const runRound = (pool: PoolConfig): Promise<RoundResult> =>
    new Promise((resolve) =>
      setTimeout(() => {
        const at = Date.now();
        if (pool.sidecars) {
          const ok = behaviour.secondary === 'ready';
          const body = JSON.stringify({
            reason: ok ? 'ok' : `status=500 target=${SITE}`,
            targets: [{ target: SITE, ok }],
          });
          const pod = (address: string): PodAnswer => ({
            address,
            status: ok ? 200 : 503,
            body,
            reason: 'ok',
            latencyMs: 2,
          });
          resolve(podsVerdict([pod('10.1.0.1'), pod('10.1.0.2')], 1, 3, at));
          return;
        }
        const ok = behaviour.primary === 'pass';
        resolve({
          ok,
          reason: ok ? 'ok' : `status=500 target=${SITE}`,
          targets: [
            { target: SITE, ok, reason: ok ? 'ok' : 'status=500', status: ok ? 200 : 500, latencyMs: 5 },
          ],
          latencyMs: 5,
          at,
          proxyAnswers: true,
        });
      }, 10),
    );
  return { behaviour, runRound };
}

const noop = () => undefined;
let running: HealthMonitor[] = [];

function start(w: ReturnType<typeof world>) {
  const m = new HealthMonitor({
    services: [{ name: 'proxy', onAllDown: 'servfail', pools: [direct, fromPods] }],
    runRound: w.runRound,
    logger: { info: noop, warn: noop },
    random: () => 0.5,
  });
  running.push(m);
  m.start();
  const service = () => m.current().services[0];
  const poolOf = (name: string) => service()?.pools.find((p) => p.name === name);
  return { selected: () => service()?.selection.selected, outage: () => service()?.outage, poolOf };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(async () => {
  await Promise.all(running.map((m) => m.stop()));
  running = [];
  vi.useRealTimers();
});

describe('a pool read from its pods, beside a pool probed directly', () => {
  it('shows its pods, and none for the direct pool', async () => {
    const s = start(world({ primary: 'pass', secondary: 'ready' }));
    expect(s.poolOf('secondary')?.pods).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.poolOf('secondary')?.pods?.map((p) => [p.address, p.ready])).toEqual([
      ['10.1.0.1', true],
      ['10.1.0.2', true],
    ]);
    expect(s.poolOf('primary')?.pods).toBeUndefined();
  });

  it('blames the direct pool for a target that the pods report passing: the answer moves', async () => {
    const w = world({ primary: 'pass', secondary: 'ready' });
    const s = start(w);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.selected()).toBe('primary');
    w.behaviour.primary = 'site-down';
    await vi.advanceTimersByTimeAsync(3_000);
    expect(s.poolOf('primary')?.state).toBe('unhealthy');
    expect(s.poolOf('primary')?.lastRound?.excused).toBeUndefined();
    expect(s.selected()).toBe('secondary');
    expect(s.outage()).toBeUndefined();
  });

  it('never excuses the pods pool: with the pods reporting the site down too, it falls, and the direct pool is excused', async () => {
    const w = world({ primary: 'pass', secondary: 'ready' });
    const s = start(w);
    await vi.advanceTimersByTimeAsync(1_000);
    w.behaviour.primary = 'site-down';
    w.behaviour.secondary = 'site-down';
    await vi.advanceTimersByTimeAsync(3_000);
    // The pods round carries no proxy answer of its own: too few ready pods is always its fault.
    expect(s.poolOf('secondary')?.state).toBe('unhealthy');
    expect(s.poolOf('secondary')?.lastRound?.reason).toBe(
      `status=500 target=${SITE} pod=10.1.0.1 ready=0/2 min_ready=1`,
    );
    expect(s.poolOf('secondary')?.pods?.every((p) => !p.ready)).toBe(true);
    // No answering pool passes the site: the direct pool's failure is the outside's.
    expect(s.poolOf('primary')?.state).toBe('healthy');
    expect(s.poolOf('primary')?.lastRound?.excused).toBe('outside');
    expect(s.selected()).toBe('primary');
  });

  it('asks the pods once per round, even when its proxy host resolves to several addresses', async () => {
    const w = world({ primary: 'pass', secondary: 'ready' });
    const asked: string[] = [];
    const m = new HealthMonitor({
      services: [{ name: 'proxy', onAllDown: 'servfail', pools: [{ ...fromPods, addresses: undefined }] }],
      runRound: (pool) => {
        asked.push(pool.proxy);
        return w.runRound(pool);
      },
      logger: { info: noop, warn: noop },
      lookup: async () => ['10.0.0.7', '10.0.0.8'],
      random: () => 0.5,
    });
    running.push(m);
    m.start();
    await vi.advanceTimersByTimeAsync(2_000);
    // Nothing goes through the proxy, so its addresses are nothing to probe one by one.
    expect(new Set(asked)).toEqual(new Set([fromPods.proxy]));
    const pool = m.current().services[0]?.pools[0];
    expect(pool?.pods?.map((p) => p.address)).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(pool?.addresses).toEqual(['10.0.0.7', '10.0.0.8']);
  });
});
