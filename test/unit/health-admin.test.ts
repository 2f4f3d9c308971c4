// Operator controls over time: which control is in force, the warning for an expired one, the
// history /status keeps, and the edge that ends a control at its `until` (fake timers, no sockets).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AdminControl, ServiceConfig } from '../../src/config/schema.js';
import { activeControl, expiredControls, HISTORY_LENGTH, withEntry } from '../../src/health/admin.js';
import { AdminControls } from '../../src/health/admin-controls.js';

const T0 = Date.parse('2026-12-02T14:00:00Z');

function services(admin: Record<string, AdminControl | undefined>): ServiceConfig[] {
  const pool = (name: string) => ({
    name,
    proxy: `http://squid-${name}:3128`,
    addresses: undefined,
    probe: {} as ServiceConfig['pools'][number]['probe'],
    admin: admin[name],
  });
  return [{ name: 'proxy', onAllDown: 'servfail', pools: [pool('primary'), pool('secondary')] }];
}

const drain = (until?: number): AdminControl => ({ state: 'drain', reason: 'node pool upgrade', until });

describe('admin, pure', () => {
  it('a control is in force until its `until`, not at it', () => {
    expect(activeControl(drain(T0 + 1), T0)).toEqual(drain(T0 + 1));
    expect(activeControl(drain(T0), T0)).toBeUndefined();
    expect(activeControl(drain(), T0 + 1e12)).toEqual(drain());
    expect(activeControl(undefined, T0)).toBeUndefined();
  });

  it('names each expired control by its path, in the one line the log and check-config print', () => {
    const config = services({ secondary: drain(T0 - 1), primary: drain(T0 + 1) });
    expect(expiredControls(config, T0)).toEqual([
      {
        service: 'proxy',
        pool: 'secondary',
        path: 'services[0].pools[1].admin.until',
        control: drain(T0 - 1),
        message:
          'services[0].pools[1].admin.until: 2026-12-02T13:59:59Z has passed; the drain of pool secondary ("node pool upgrade") is ignored',
      },
    ]);
  });

  it(`keeps the last ${HISTORY_LENGTH} entries, oldest first`, () => {
    let history: ReturnType<typeof withEntry> = [];
    for (let i = 0; i < 25; i++) {
      history = withEntry(history, { at: i, kind: 'health', from: 'a', to: 'b', reason: String(i) });
    }
    expect(history.map((e) => e.at)).toEqual(Array.from({ length: 20 }, (_, i) => i + 5));
  });
});

describe('AdminControls', () => {
  let lines: { level: string; obj: Record<string, unknown>; msg: string }[];
  const logger = {
    info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
    warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
  };
  beforeEach(() => {
    lines = [];
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => vi.useRealTimers());

  const controls = (admin: Record<string, AdminControl | undefined>, previous?: AdminControls) => {
    const changed: string[] = [];
    const made = new AdminControls({
      services: services(admin),
      previous: previous?.carryOver(),
      logger,
      now: Date.now,
      onChange: (_service, pool) => changed.push(pool),
    });
    made.start();
    return { made, changed };
  };

  it('logs a control starting, records it, and ends it at `until` by itself, once', () => {
    const { made, changed } = controls({ primary: drain(T0 + 60_000) });
    expect(lines.map((l) => [l.msg, l.obj.pool, l.obj.admin])).toEqual([
      ['admin control started', 'primary', 'drain'],
    ]);
    expect(made.control('proxy', 'primary')).toEqual(drain(T0 + 60_000));

    vi.advanceTimersByTime(59_999);
    expect(changed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(changed).toEqual(['primary']);
    expect(made.control('proxy', 'primary')).toBeUndefined();
    expect(lines.at(-1)).toMatchObject({
      msg: 'admin control ended',
      obj: { pool: 'primary', from: 'drain', to: 'none', ended: 'until 2026-12-02T14:01:00Z passed' },
    });
    expect(made.history('proxy', 'primary').map((e) => [e.kind, e.from, e.to, e.reason])).toEqual([
      ['admin', 'none', 'drain', 'node pool upgrade'],
      ['admin', 'drain', 'none', 'until 2026-12-02T14:01:00Z passed'],
    ]);
    vi.advanceTimersByTime(3_600_000);
    expect(changed).toEqual(['primary']);
  });

  it('across a reload: an unchanged control is silent, a changed one logged once, history carried', () => {
    const first = controls({ primary: drain() }).made;
    first.recordTransition('proxy', 'primary', {
      from: 'healthy',
      to: 'unhealthy',
      reason: 'timeout=1s',
      at: T0,
    });
    first.stop();
    lines = [];
    const same = controls({ primary: drain() }, first).made;
    expect(lines).toEqual([]);
    same.stop();
    const changed = controls({ primary: { state: 'down', reason: 'gone', until: undefined } }, same).made;
    expect(lines.map((l) => [l.msg, l.obj.from, l.obj.to])).toEqual([
      ['admin control changed', 'drain', 'down'],
    ]);
    changed.stop();
    lines = [];
    const removed = controls({}, changed).made;
    expect(lines.map((l) => [l.msg, l.obj.ended])).toEqual([
      ['admin control ended', 'removed from the config'],
    ]);
    expect(removed.history('proxy', 'primary').map((e) => `${e.kind} ${e.from}->${e.to}`)).toEqual([
      'admin none->drain',
      'health healthy->unhealthy',
      'admin drain->down',
      'admin down->none',
    ]);
  });

  it('ignores a control already past its `until`, with one warning, and starts nothing', () => {
    const { made } = controls({ secondary: drain(T0 - 1_000) });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        'warn',
        'services[0].pools[1].admin.until: 2026-12-02T13:59:59Z has passed; the drain of pool secondary ("node pool upgrade") is ignored',
      ],
    ]);
    expect(made.control('proxy', 'secondary')).toBeUndefined();
    expect(made.history('proxy', 'secondary')).toEqual([]);
  });

  it('waits out an `until` beyond what one timer can (about 24.8 days) in steps', () => {
    const until = T0 + 40 * 86_400_000;
    const { made, changed } = controls({ primary: drain(until) });
    vi.advanceTimersByTime(30 * 86_400_000);
    expect(changed).toEqual([]);
    expect(made.control('proxy', 'primary')).toEqual(drain(until));
    vi.advanceTimersByTime(10 * 86_400_000);
    expect(changed).toEqual(['primary']);
  });

  it('a stopped one ends nothing', () => {
    const { made, changed } = controls({ primary: drain(T0 + 1_000) });
    made.stop();
    vi.advanceTimersByTime(5_000);
    expect(changed).toEqual([]);
  });
});
