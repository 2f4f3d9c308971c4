// Pure: a service's pools in priority order + operator controls + onAllDown -> the address set DNS answers with.
import type { AdminState, OnAllDown } from '../config/schema.js';
import type { HealthState } from './state.js';

export type SelectionMode = 'pending' | 'healthy' | 'all-down-servfail' | 'all-down-last' | 'all-down-all';

/** What selection needs to know about a pool. */
export interface SelectablePool {
  readonly name: string;
  readonly state: HealthState;
  /** The addresses this pool is answered with; empty while a proxy host has never resolved. */
  readonly addresses: readonly string[];
  /** The operator's control in force now (config `admin`, its `until` not passed), if any. */
  readonly admin?: { readonly state: AdminState } | undefined;
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
 *
 * Operator controls (`admin`) come first and are never faults: a pool under `down` is out of every
 * decision, as if it were not configured (never answered, not by `last` nor `all`, and its first
 * round is not waited for); one under `up` counts as healthy whatever its state; pools under `drain`
 * are walked after all the others, so one is answered only when no other pool can be, before
 * `onAllDown` is. Ordering the drained pools last, rather than special-casing them, keeps the
 * verdict and hold rules above true for them too: a drained primary's first round is waited for
 * only when the service might need it.
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

  const control = (pool: SelectablePool) => pool.admin?.state;
  const eligible = pools.filter((pool) => control(pool) !== 'down');
  const order = [
    ...eligible.filter((pool) => control(pool) !== 'drain'),
    ...eligible.filter((pool) => control(pool) === 'drain'),
  ];
  const answerable = (pool: SelectablePool) => pool.addresses.length > 0;
  const healthy = (pool: SelectablePool) => control(pool) === 'up' || pool.state === 'healthy';
  const firstHealthy = order.findIndex((pool) => healthy(pool) && answerable(pool));
  const firstUnknown = order.findIndex((pool) => !healthy(pool) && pool.state === 'unknown');
  // A pool reset to unknown by a reload keeps being answered while it is re-probed, unless a
  // higher pool is healthy: holding it must never hide a failback.
  const heldIndex =
    wasReady && previous?.mode === 'healthy'
      ? order.findIndex((pool) => pool.name === previous.selected)
      : -1;
  const held = order[heldIndex];
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
    const pool = order[firstHealthy] as SelectablePool;
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
      const last = pools.find((p) => p.name === lastHealthy?.pool);
      // A pool taken down by the operator is not answered even as the last resort.
      if (lastHealthy && (last === undefined || control(last) !== 'down')) {
        const current = last?.addresses ?? [];
        selected = lastHealthy.pool;
        addresses = current.length > 0 ? current : lastHealthy.addresses;
      }
    } else {
      mode = 'all-down-all';
      addresses = [...new Set(eligible.flatMap((p) => p.addresses))];
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
 * pool not taken down by the operator, as long as there is an address to answer at all (with none,
 * DNS answers SERVFAIL).
 */
export function isAnswered(selection: Selection, pool: Pick<SelectablePool, 'name' | 'admin'>): boolean {
  return selection.mode === 'all-down-all'
    ? selection.addresses.length > 0 && pool.admin?.state !== 'down'
    : selection.selected === pool.name;
}
