import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdminState, OnAllDown } from '../../src/config/schema.js';
import { NO_FLAPS } from '../../src/health/damping.js';
import { isAnswered, type SelectablePool, type Selection, select } from '../../src/health/select.js';
import type { PoolSnapshot, ServiceSnapshot } from '../../src/health/snapshot.js';
import type { HealthState } from '../../src/health/state.js';
import { MAX_TXT_STRING_BYTES, statusStrings } from '../../src/health/status-text.js';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const ADDRESSES: Record<string, string[]> = {
  primary: ['10.0.0.1'],
  secondary: ['10.0.0.2', 'fd00::2'],
  tertiary: ['10.0.0.3', '10.0.0.1'],
};

/**
 * "hu?" -> primary healthy, secondary unhealthy, tertiary unknown; `admin` "d-x" -> primary under
 * drain, secondary under no control, tertiary under down (u: up).
 */
function pools(states: string, admin = ''): SelectablePool[] {
  const names = ['primary', 'secondary', 'tertiary'];
  const byChar: Record<string, HealthState> = { h: 'healthy', u: 'unhealthy', '?': 'unknown' };
  const controls: Record<string, AdminState> = { d: 'drain', x: 'down', u: 'up' };
  return [...states].map((c, i) => {
    const name = names[i] as string;
    const control = controls[admin[i] ?? '-'];
    return {
      name,
      state: byChar[c] as HealthState,
      addresses: ADDRESSES[name] ?? [],
      ...(control ? { admin: { state: control } } : {}),
    };
  });
}

/** Applies each picture in turn, as the monitor does after each round. */
function sequence(pictures: readonly string[], onAllDown: OnAllDown): Selection[] {
  const out: Selection[] = [];
  let previous: Selection | undefined;
  pictures.forEach((picture, i) => {
    previous = select(pools(picture), onAllDown, previous, T0 + i);
    out.push(previous);
  });
  return out;
}

describe('select', () => {
  it.each<[string, OnAllDown, boolean, string, string | undefined, string[]]>([
    // pools, onAllDown, ready, mode, selected, addresses
    ['hhh', 'servfail', true, 'healthy', 'primary', ['10.0.0.1']],
    ['uhh', 'servfail', true, 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
    ['uuh', 'servfail', true, 'healthy', 'tertiary', ['10.0.0.3', '10.0.0.1']],
    ['h??', 'servfail', true, 'healthy', 'primary', ['10.0.0.1']],
    ['???', 'servfail', false, 'pending', undefined, []],
    ['u?h', 'all', false, 'pending', undefined, []],
    ['?hh', 'all', false, 'pending', undefined, []],
    ['uuu', 'servfail', true, 'all-down-servfail', undefined, []],
    ['uuu', 'last', true, 'all-down-last', undefined, []],
    ['uuu', 'all', true, 'all-down-all', undefined, ['10.0.0.1', '10.0.0.2', 'fd00::2', '10.0.0.3']],
  ])('%s onAllDown=%s -> ready=%s %s %s', (picture, onAllDown, ready, mode, selected, addresses) => {
    expect(select(pools(picture), onAllDown, undefined, T0)).toMatchObject({
      ready,
      mode,
      selected,
      addresses,
    });
  });

  it('fails back to a higher pool as soon as it is healthy again', () => {
    const out = sequence(['hh', 'uh', 'uh', 'hh'], 'servfail');
    expect(out.map((s) => s.selected)).toEqual(['primary', 'secondary', 'secondary', 'primary']);
    expect(out.map((s) => s.since)).toEqual([T0, T0 + 1, T0 + 1, T0 + 3]);
  });

  it('onAllDown: last keeps answering the last healthy selection', () => {
    const out = sequence(['hh', 'uh', 'uu', 'uu'], 'last');
    expect(out.at(-1)).toMatchObject({
      ready: true,
      mode: 'all-down-last',
      selected: 'secondary',
      addresses: ['10.0.0.2', 'fd00::2'],
      since: T0 + 2,
    });
  });

  it('onAllDown: last serves the last healthy pool at its current addresses, not the remembered ones', () => {
    // The proxy host re-resolved while the pool was down: clients must go where it is now.
    const first = select(pools('h'), 'last', undefined, T0);
    expect(first.lastHealthy).toEqual({ pool: 'primary', addresses: ['10.0.0.1'] });
    const moved = select(
      [{ name: 'primary', state: 'unhealthy', addresses: ['10.0.0.9'] }],
      'last',
      first,
      T0 + 1,
    );
    expect(moved).toMatchObject({ mode: 'all-down-last', selected: 'primary', addresses: ['10.0.0.9'] });
  });

  it('onAllDown: last serves the remembered addresses when the pool now has none, or is gone', () => {
    const first = select(pools('h'), 'last', undefined, T0);
    const down = select([{ name: 'primary', state: 'unhealthy', addresses: [] }], 'last', first, T0 + 1);
    expect(down).toMatchObject({ mode: 'all-down-last', selected: 'primary', addresses: ['10.0.0.1'] });
    // A reload removed the pool: the remembered addresses are all that is left of it.
    const gone = select(
      [{ name: 'other', state: 'unhealthy', addresses: ['10.0.0.7'] }],
      'last',
      first,
      T0 + 2,
    );
    expect(gone).toMatchObject({ mode: 'all-down-last', selected: 'primary', addresses: ['10.0.0.1'] });
  });

  it('onAllDown: last with no healthy selection ever is SERVFAIL', () => {
    expect(sequence(['uu', 'uu'], 'last').map((s) => s.addresses)).toEqual([[], []]);
  });

  it('passes over a pool that is unknown once the service has had a verdict (a reloaded-in pool)', () => {
    const before = select(pools('uuh'), 'servfail', undefined, T0);
    const after = select(pools('?uh'), 'servfail', before, T0 + 1);
    expect(after).toMatchObject({ ready: true, mode: 'healthy', selected: 'tertiary', since: T0 });
    const down = select(pools('hu'), 'servfail', undefined, T0);
    expect(select(pools('u?'), 'servfail', down, T0 + 1)).toMatchObject({ ready: true, addresses: [] });
  });

  it('holds the answer across a reload that reset the selected pool to unknown', () => {
    const before = select(pools('uh'), 'servfail', undefined, T0);
    const after = select(pools('u?h'), 'servfail', before, T0 + 1);
    expect(after).toMatchObject({ ready: true, mode: 'healthy', selected: 'secondary', since: T0 });
  });

  it('passes over a healthy pool with no addresses yet', () => {
    const list: SelectablePool[] = [
      { name: 'primary', state: 'healthy', addresses: [] },
      { name: 'secondary', state: 'healthy', addresses: ['10.0.0.2'] },
    ];
    expect(select(list, 'servfail', undefined, T0)).toMatchObject({ mode: 'healthy', selected: 'secondary' });
  });
});

describe('select with operator controls', () => {
  it.each<[string, string, OnAllDown, string, string | undefined, string[]]>([
    // pools, admin, onAllDown, mode, selected, addresses
    ['hh', 'd-', 'servfail', 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
    // drain: the last resort before onAllDown
    ['hu', 'd-', 'servfail', 'healthy', 'primary', ['10.0.0.1']],
    ['hu', 'd-', 'all', 'healthy', 'primary', ['10.0.0.1']],
    ['uu', 'd-', 'servfail', 'all-down-servfail', undefined, []],
    ['uu', 'd-', 'all', 'all-down-all', undefined, ['10.0.0.1', '10.0.0.2', 'fd00::2']],
    // drained pools among themselves keep their priority order
    ['hhu', 'dd-', 'servfail', 'healthy', 'primary', ['10.0.0.1']],
    ['uhu', 'dd-', 'servfail', 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
    // down: never answered, not even as the last resort, nor by onAllDown: all
    ['hh', 'x-', 'servfail', 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
    ['hu', 'x-', 'servfail', 'all-down-servfail', undefined, []],
    ['hu', 'x-', 'all', 'all-down-all', undefined, ['10.0.0.2', 'fd00::2']],
    ['h', 'x', 'all', 'all-down-all', undefined, []],
    // up: answered as if healthy, whatever the probes say, in its place in the priority order
    ['uh', 'u-', 'servfail', 'healthy', 'primary', ['10.0.0.1']],
    ['hu', '-u', 'servfail', 'healthy', 'primary', ['10.0.0.1']],
    ['uu', '-u', 'servfail', 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
    ['uu', 'du', 'servfail', 'healthy', 'secondary', ['10.0.0.2', 'fd00::2']],
  ])('%s admin=%s onAllDown=%s -> %s %s', (picture, admin, onAllDown, mode, selected, addresses) => {
    expect(select(pools(picture, admin), onAllDown, undefined, T0)).toMatchObject({
      ready: true,
      mode,
      selected,
      addresses,
    });
  });

  it.each<[string, string, string, string | undefined]>([
    // pools, admin, mode, selected: which first rounds the verdict waits for
    ['?h', 'u-', 'healthy', 'primary'], // an up pool needs no round
    ['?h', 'd-', 'healthy', 'secondary'], // a drained one is not needed while another answers
    ['?u', 'd-', 'pending', undefined], // ... but is the last resort when none does
    ['?u', 'x-', 'all-down-servfail', undefined], // a down one is never waited for
  ])('%s admin=%s before every first round -> %s %s', (picture, admin, mode, selected) => {
    expect(select(pools(picture, admin), 'servfail', undefined, T0)).toMatchObject({ mode, selected });
  });

  it('moves the answer when a control starts and back when it ends, with no change of health', () => {
    const healthy = select(pools('hh'), 'servfail', undefined, T0);
    const drained = select(pools('hh', 'd-'), 'servfail', healthy, T0 + 1);
    const back = select(pools('hh'), 'servfail', drained, T0 + 2);
    expect([healthy, drained, back].map((s) => [s.selected, s.since])).toEqual([
      ['primary', T0],
      ['secondary', T0 + 1],
      ['primary', T0 + 2],
    ]);
  });

  it('onAllDown: last never falls back to a pool taken down', () => {
    const first = select(pools('hu'), 'last', undefined, T0);
    expect(select(pools('uu'), 'last', first, T0 + 1)).toMatchObject({ selected: 'primary' });
    expect(select(pools('uu', 'x-'), 'last', first, T0 + 1)).toMatchObject({
      mode: 'all-down-last',
      selected: undefined,
      addresses: [],
    });
  });

  it('does not hold a pool reset by a reload once it is drained and another pool is healthy', () => {
    const before = select(pools('hh'), 'servfail', undefined, T0);
    expect(select(pools('?h', 'd-'), 'servfail', before, T0 + 1)).toMatchObject({ selected: 'secondary' });
  });
});

describe('select, properties', () => {
  const picture = fc
    .array(fc.constantFrom('h', 'u', '?'), { minLength: 1, maxLength: 3 })
    .map((a) => a.join(''));
  const onAllDown = fc.constantFrom<OnAllDown>('servfail', 'last', 'all');

  it('the selected pool is the first healthy one (or one held across a reload), never a lower one', () => {
    fc.assert(
      fc.property(fc.array(picture, { minLength: 1, maxLength: 30 }), onAllDown, (pictures, mode) => {
        let previous: Selection | undefined;
        for (const p of pictures) {
          const list = pools(p);
          const selection = select(list, mode, previous, T0);
          const firstHealthy = list.findIndex((pool) => pool.state === 'healthy');
          const at = list.findIndex((pool) => pool.name === selection.selected);
          if (selection.mode === 'healthy') {
            const pool = list[at];
            expect(list.slice(0, at).every((before) => before.state !== 'healthy')).toBe(true);
            if (pool?.state !== 'healthy') {
              expect(pool?.state).toBe('unknown');
              expect(previous?.selected).toBe(pool?.name);
            }
            expect(selection.addresses).toEqual(pool?.addresses);
          } else if (firstHealthy >= 0) {
            // Not answering a healthy pool while one is healthy is only allowed before a verdict.
            expect(selection.mode).toBe('pending');
          }
          if (selection.mode === 'pending') expect(selection.addresses).toEqual([]);
          if (previous?.ready) expect(selection.ready).toBe(true);
          previous = selection;
        }
      }),
    );
  });

  it('controls: down is never answered; drain only when nothing else can be; up counts as healthy', () => {
    const admin = fc
      .array(fc.constantFrom('-', '-', 'd', 'x', 'u'), { minLength: 3, maxLength: 3 })
      .map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(picture, admin), { minLength: 1, maxLength: 30 }),
        onAllDown,
        (steps, mode) => {
          let previous: Selection | undefined;
          for (const [p, a] of steps) {
            const list = pools(p, a);
            const selection = select(list, mode, previous, T0);
            const control = (pool: SelectablePool) => pool.admin?.state;
            const canAnswer = (pool: SelectablePool) => control(pool) === 'up' || pool.state === 'healthy';
            for (const pool of list.filter((each) => control(each) === 'down')) {
              expect(isAnswered(selection, pool)).toBe(false);
              expect(selection.selected).not.toBe(pool.name);
            }
            const chosen = list.find((pool) => pool.name === selection.selected);
            if (chosen && control(chosen) === 'drain' && selection.mode === 'healthy') {
              expect(list.some((pool) => control(pool) === undefined && canAnswer(pool))).toBe(false);
              expect(list.some((pool) => control(pool) === 'up')).toBe(false);
            }
            if (selection.mode !== 'healthy' && selection.mode !== 'pending') {
              expect(list.some((pool) => control(pool) !== 'down' && canAnswer(pool))).toBe(false);
            }
            previous = selection;
          }
        },
      ),
    );
  });

  it('onAllDown: last answers the last healthy selection', () => {
    fc.assert(
      fc.property(fc.array(picture, { minLength: 1, maxLength: 30 }), (pictures) => {
        let previous: Selection | undefined;
        let lastHealthy: string | undefined;
        for (const p of pictures) {
          previous = select(pools(p), 'last', previous, T0);
          if (previous.mode === 'healthy') lastHealthy = previous.selected;
          if (previous.mode === 'all-down-last') {
            expect(previous.selected).toBe(lastHealthy);
            expect(previous.addresses).toEqual(lastHealthy ? ADDRESSES[lastHealthy] : []);
          }
        }
      }),
    );
  });
});

describe('statusStrings', () => {
  function pool(over: Partial<PoolSnapshot> = {}): PoolSnapshot {
    return {
      name: 'primary',
      proxy: 'http://squid-primary:3128',
      addresses: ['10.0.0.1'],
      addressSource: 'config',
      resolveError: undefined,
      state: 'healthy',
      since: T0,
      inTransition: false,
      passes: 3,
      failures: 0,
      lastRound: { ok: true, reason: 'ok', at: T0 + 9_000, latencyMs: 20 },
      lastFailure: undefined,
      lastTransition: undefined,
      transitions: 1,
      flaps: NO_FLAPS,
      ...over,
    };
  }
  function service(list: PoolSnapshot[], onAllDown: OnAllDown = 'servfail'): ServiceSnapshot {
    return { name: 'proxy', onAllDown, pools: list, selection: select(list, onAllDown, undefined, T0) };
  }

  it('says one line per pool in the README format', () => {
    const failing = pool({
      name: 'secondary',
      state: 'unhealthy',
      lastRound: { ok: false, reason: 'squid_error=ERR_CONNECT_FAIL', at: T0, latencyMs: 3 },
      lastFailure: { reason: 'squid_error=ERR_CONNECT_FAIL', at: T0 + 1_500 },
    });
    expect(statusStrings(service([pool(), failing]))).toEqual([
      'pool=primary state=healthy selected=yes since=2026-11-25T10:00:00Z reason=ok',
      'pool=secondary state=unhealthy selected=no since=2026-11-25T10:00:00Z ' +
        'reason="squid_error=ERR_CONNECT_FAIL"',
    ]);
  });

  it('keeps the last failure visible after recovery', () => {
    const recovered = pool({
      lastRound: { ok: true, reason: 'ok', at: T0 + 9_000, latencyMs: 3 },
      lastFailure: { reason: 'timeout=1s target=http://a/', at: T0 + 1_500 },
    });
    expect(statusStrings(service([recovered]))).toEqual([
      'pool=primary state=healthy selected=yes since=2026-11-25T10:00:00Z reason=ok ' +
        'last_failure="timeout=1s target=http://a/" last_failure_at=2026-11-25T10:00:01Z',
    ]);
  });

  it('names the all-down mode and a pending pool', () => {
    const down = pool({ state: 'unhealthy', lastRound: undefined });
    expect(statusStrings(service([down], 'all'))).toEqual([
      'pool=primary state=unhealthy selected=yes since=2026-11-25T10:00:00Z mode=all-down-all reason=pending',
    ]);
  });

  it('shows an operator control as a group of its own, beside the real state', () => {
    const drained = pool({
      admin: { state: 'drain', reason: 'node pool upgrade', until: Date.parse('2026-12-03T10:00:00Z') },
    });
    const up = pool({
      name: 'secondary',
      state: 'unhealthy',
      admin: { state: 'up', reason: 'pinned', until: undefined },
      lastRound: { ok: false, reason: 'connection_refused', at: T0, latencyMs: 1 },
    });
    expect(statusStrings(service([drained, up]))).toEqual([
      'pool=primary state=healthy selected=no since=2026-11-25T10:00:00Z reason=ok ' +
        'admin=drain reason="node pool upgrade" until=2026-12-03T10:00:00Z',
      'pool=secondary state=unhealthy selected=yes since=2026-11-25T10:00:00Z reason=connection_refused ' +
        'admin=up reason=pinned',
    ]);
  });

  it('stays under 255 bytes with a long control reason', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), fc.string({ maxLength: 600 }), (note, a) => {
        const p = pool({
          name: 'x'.repeat(63),
          state: 'unhealthy',
          lastRound: { ok: false, reason: `timeout=1s ${a}`, at: T0, latencyMs: 1 },
          lastFailure: { reason: `status=500 ${a}`, at: T0 - 1 },
          admin: { state: 'drain', reason: `ticket OPS-1 ${note}`, until: T0 + 60_000 },
        });
        for (const text of statusStrings(service([p], 'all'))) {
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_TXT_STRING_BYTES);
          expect(text).toMatch(/ admin=drain( reason="ticket OPS-1.*" until=2026-11-25T10:01:00Z)?$/);
        }
      }),
    );
  });

  it('stays under 255 bytes with every optional field at once (pods, mode, outage, held_until, admin)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (a) => {
        const p = pool({
          name: 'x'.repeat(63),
          state: 'unhealthy',
          pods: Array.from({ length: 120 }, (_, i) => ({
            address: `10.0.${i}.1`,
            ready: false,
            reason: 'x',
            at: T0,
            latencyMs: 1,
          })),
          flaps: { changes: [T0], holdDowns: 1, heldUntil: T0 + 60_000 },
          lastRound: { ok: false, reason: `timeout=1s ${a}`, at: T0, latencyMs: 1 },
          lastFailure: { reason: `status=500 ${a}`, at: T0 - 1 },
          admin: { state: 'drain', reason: `ticket ${a}`, until: T0 + 60_000 },
        });
        const text = statusStrings({ ...service([p], 'servfail'), outage: 'outside' })[0] ?? '';
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_TXT_STRING_BYTES);
        expect(text).toMatch(/^pool=x{63} state=unhealthy /);
      }),
    );
  });

  it('stays under 255 bytes, printable, and without credentials', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), fc.string({ maxLength: 600 }), (a, b) => {
        const reason = `timeout=1s target=http://user:secret@example.com/ ${a}`;
        const p = pool({
          name: 'x'.repeat(63),
          state: 'unhealthy',
          lastRound: { ok: false, reason, at: T0, latencyMs: 1 },
          lastFailure: { reason: `${b}é\n${reason}`, at: T0 },
        });
        for (const text of statusStrings(service([p], 'last'))) {
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_TXT_STRING_BYTES);
          expect(text).toMatch(/^[\x20-\x7e]*$/);
          expect(text).not.toContain('secret');
          expect(text).toMatch(/ last_failure_at=2026-11-25T10:00:00Z$/);
        }
      }),
    );
  });
});

describe('isAnswered: the one rule for selected=yes in _status TXT and egress_pool_selected', () => {
  const selection = (
    mode: 'healthy' | 'all-down-all',
    selected: string | undefined,
    addresses: string[],
  ): Selection => ({
    ready: true,
    mode,
    selected,
    addresses,
    since: 0,
    lastHealthy: undefined,
  });
  it('the selected pool only, or every pool under all-down-all while there is an address', () => {
    expect(isAnswered(selection('healthy', 'b', ['10.0.0.2']), { name: 'b' })).toBe(true);
    expect(isAnswered(selection('healthy', 'b', ['10.0.0.2']), { name: 'a' })).toBe(false);
    expect(isAnswered(selection('all-down-all', undefined, ['10.0.0.1']), { name: 'a' })).toBe(true);
    // No address at all: DNS answers SERVFAIL, so no pool is being answered.
    expect(isAnswered(selection('all-down-all', undefined, []), { name: 'a' })).toBe(false);
    // A pool the operator took down is never answered, not even under onAllDown: all.
    const down = { name: 'a', admin: { state: 'down' } } as const;
    expect(isAnswered(selection('all-down-all', undefined, ['10.0.0.2']), down)).toBe(false);
  });
});
