// Pure: a service's pools in priority order + onAllDown -> the address set DNS answers with.
import type { OnAllDown } from '../config/schema.js';
import type { HealthState } from './state.js';

export type SelectionMode = 'pending' | 'healthy' | 'all-down-servfail' | 'all-down-last' | 'all-down-all';

/** What selection needs to know about a pool. */
export interface SelectablePool {
  readonly name: string;
  readonly state: HealthState;
  /** The addresses this pool is answered with; empty while a proxy host has never resolved. */
  readonly addresses: readonly string[];
}

export interface Selection {
  /** The service has a verdict (see `select`); false: DNS answers SERVFAIL and /readyz is 503. */
  readonly ready: boolean;
  readonly mode: SelectionMode;
  /**
   * The pool whose addresses are answered: healthy, or held across a reload (see `select`);
   * undefined when pending, SERVFAIL or every pool is answered.
   */
  readonly selected: string | undefined;
  /** What DNS answers with, in priority order. Empty means SERVFAIL. */
  readonly addresses: readonly string[];
  /** Epoch ms when `mode` or `selected` last changed. */
  readonly since: number;
  /** The last pool chosen because it was healthy: what `onAllDown: last` falls back to. */
  readonly lastHealthy: { readonly pool: string; readonly addresses: readonly string[] } | undefined;
}

/**
 * The first healthy pool in priority order, so a higher pool is answered again as soon as it is
 * healthy (its `rise` threshold is the hysteresis against flapping).
 *
 * When does a service have a verdict? Walking the pools in priority order, every pool before the
 * first healthy one (or every pool, when none is healthy) must have finished its first round. So a
 * fast secondary never gets answered for a moment while the primary's first round is still out,
 * and a fast-failing primary never produces a moment of `onAllDown` while the secondary's first
 * round is still out: the first answer is the one the full picture gives. A hung pool delays the
 * verdict by at most its `timeout`.
 *
 * Once the service has had a verdict (`previous.ready`), a pool is `unknown` only because a config
 * reload added it or changed its proxy or probe settings. The service never goes back to SERVFAIL
 * for that: unknown pools are passed over, except that the previously selected pool, reset to
 * unknown by the reload, keeps being answered until its first round, as long as no higher pool is
 * healthy. Holding, rather than passing over, spares clients a flip to another pool and back when
 * an operator merely tunes the selected pool's interval; the "no higher pool healthy" condition
 * keeps it from ever hiding a failback (a property test found that one).
 *
 * A healthy pool without addresses (its proxy host has never resolved) cannot be answered, so it is
 * passed over like an unhealthy one rather than answered with an empty set.
 *
 * With none healthy, `onAllDown` decides: `servfail` answers nothing; `last` the last pool selected
 * for being healthy (its current addresses, or the remembered ones if it has none now or is gone),
 * SERVFAIL if there never was one; `all` every pool's addresses, unique, in priority order.
 */
export function select(
  pools: readonly SelectablePool[],
  onAllDown: OnAllDown,
  previous: Selection | undefined,
  now: number,
): Selection {
  const wasReady = previous?.ready === true;
  let lastHealthy = previous?.lastHealthy;
  let mode: SelectionMode | undefined;
  let selected: string | undefined;
  let addresses: readonly string[] = [];

  const answerable = (pool: SelectablePool) => pool.addresses.length > 0;
  const firstHealthy = pools.findIndex((pool) => pool.state === 'healthy' && answerable(pool));
  const firstUnknown = pools.findIndex((pool) => pool.state === 'unknown');
  // A pool reset to unknown by a reload keeps being answered while it is re-probed, unless a
  // higher pool is healthy: holding it must never hide a failback.
  const heldIndex =
    wasReady && previous?.mode === 'healthy'
      ? pools.findIndex((pool) => pool.name === previous.selected)
      : -1;
  const held = pools[heldIndex];
  const canHold =
    held !== undefined &&
    held.state === 'unknown' &&
    answerable(held) &&
    (firstHealthy < 0 || heldIndex < firstHealthy);

  if (!wasReady && firstUnknown >= 0 && (firstHealthy < 0 || firstUnknown < firstHealthy)) {
    mode = 'pending';
  } else if (canHold && held) {
    mode = 'healthy';
    selected = held.name;
    addresses = held.addresses;
  } else if (firstHealthy >= 0) {
    const pool = pools[firstHealthy] as SelectablePool;
    mode = 'healthy';
    selected = pool.name;
    addresses = pool.addresses;
    lastHealthy = { pool: pool.name, addresses: pool.addresses };
  }

  if (mode === undefined) {
    if (onAllDown === 'servfail') {
      mode = 'all-down-servfail';
    } else if (onAllDown === 'last') {
      mode = 'all-down-last';
      if (lastHealthy) {
        const current = pools.find((p) => p.name === lastHealthy?.pool)?.addresses ?? [];
        selected = lastHealthy.pool;
        addresses = current.length > 0 ? current : lastHealthy.addresses;
      }
    } else {
      mode = 'all-down-all';
      addresses = [...new Set(pools.flatMap((p) => p.addresses))];
    }
  }

  const unchanged = previous !== undefined && previous.mode === mode && previous.selected === selected;
  return {
    ready: mode !== 'pending',
    mode,
    selected,
    addresses,
    since: unchanged ? previous.since : now,
    lastHealthy,
  };
}

/**
 * Whether DNS answers with `pool`'s addresses: the selected pool, or under `onAllDown: all` every
 * pool, as long as there is an address to answer at all (with none, DNS answers SERVFAIL).
 */
export function isAnswered(selection: Selection, pool: string): boolean {
  return selection.mode === 'all-down-all' ? selection.addresses.length > 0 : selection.selected === pool;
}
