// Pure: the rise/fall machine of one pool. next(health, round, now, thresholds) -> health + transition.
// The clock is an argument so the machine is table-testable and replayable; nothing here reads time.
import type { ProbeSettings } from '../config/schema.js';
import { type FlapHistory, type FlapSettings, mayRise, NO_FLAPS, recordChange } from './damping.js';
import type { RoundResult } from './round.js';

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';
export const HEALTH_STATES: readonly HealthState[] = ['unknown', 'healthy', 'unhealthy'];

/**
 * Why a failing round is not held against the pool: `outside`, every pool whose proxy answers fails
 * the same targets (attribution.ts); `local`, this process could not make the check (EMFILE, ...).
 */
export type Excuse = 'outside' | 'local';

export interface LastRound {
  readonly ok: boolean;
  readonly reason: string;
  /** Epoch ms at which the round's result was applied. */
  readonly at: number;
  readonly latencyMs: number;
  /** Set on a failing round that did not count as a failure. */
  readonly excused?: Excuse;
}

export interface LastFailure {
  readonly reason: string;
  readonly at: number;
}

export interface Transition {
  readonly from: HealthState;
  readonly to: HealthState;
  /** The reason of the round that tipped the balance. */
  readonly reason: string;
  readonly at: number;
}

export interface PoolHealth {
  readonly state: HealthState;
  /** Epoch ms of the last state change; for `unknown`, when watching began. */
  readonly since: number;
  /** Consecutive passing rounds up to and including the last one (0 after a failure). */
  readonly passes: number;
  /** Consecutive failing rounds up to and including the last one (0 after a pass). */
  readonly failures: number;
  readonly lastRound: LastRound | undefined;
  /** Kept after recovery, so an operator can still see what went wrong last. */
  readonly lastFailure: LastFailure | undefined;
  readonly lastTransition: Transition | undefined;
  /** State changes so far, the first verdict (from `unknown`) included. */
  readonly transitions: number;
  /** Recent changes and hold-downs, for flap damping; `heldUntil` set while the pool is held down. */
  readonly flaps: FlapHistory;
}

/** rise/fall, and flap damping where the settings turn it on (flapThreshold > 0). */
export type Thresholds = Pick<ProbeSettings, 'rise' | 'fall'> & Partial<FlapSettings>;

export interface Step {
  readonly health: PoolHealth;
  readonly transition?: Transition;
  /** This round's recovery was refused and a new hold-down began: the pool is flapping. */
  readonly flapped?: boolean;
}

function dampingOf(thresholds: Thresholds): FlapSettings | undefined {
  const { flapThreshold, flapWindowMs, holdDownMs, maxHoldDownMs } = thresholds;
  if (
    !flapThreshold ||
    flapWindowMs === undefined ||
    holdDownMs === undefined ||
    maxHoldDownMs === undefined
  ) {
    return undefined;
  }
  return { flapThreshold, flapWindowMs, holdDownMs, maxHoldDownMs };
}

export function initialHealth(now: number): PoolHealth {
  return {
    state: 'unknown',
    since: now,
    passes: 0,
    failures: 0,
    lastRound: undefined,
    lastFailure: undefined,
    lastTransition: undefined,
    transitions: 0,
    flaps: NO_FLAPS,
  };
}

/**
 * Applies one round. The first round decides at once: waiting for `rise` rounds at start-up would
 * keep every service answering SERVFAIL for rise x interval. After that, `rise` consecutive passes
 * turn an unhealthy pool healthy and `fall` consecutive failures turn a healthy pool unhealthy.
 *
 * An excused failure (`excuse`) leaves the counts as they were: it is recorded and shown, never held
 * against the pool. A first round excused as `outside` is a healthy verdict (the proxy answers; the
 * outside site is what fails); one excused as `local` is no verdict at all.
 *
 * With damping on, a pool that has flapped is not let back up while it is held down (damping.ts);
 * it is always let down at once.
 */
export function next(
  health: PoolHealth,
  round: RoundResult,
  now: number,
  thresholds: Thresholds,
  excuse?: Excuse,
): Step {
  const excused = round.ok ? undefined : excuse;
  const lastRound: LastRound = {
    ok: round.ok,
    reason: round.reason,
    at: now,
    latencyMs: round.latencyMs,
    ...(excused ? { excused } : {}),
  };
  if (excused) {
    const lastFailure = excused === 'outside' ? { reason: round.reason, at: now } : health.lastFailure;
    const stepped = { ...health, lastRound, lastFailure };
    if (health.state !== 'unknown' || excused === 'local') return { health: stepped };
    return changeTo(stepped, 'healthy', `outage=outside ${round.reason}`, now);
  }

  const passes = round.ok ? health.passes + 1 : 0;
  const failures = round.ok ? 0 : health.failures + 1;
  const lastFailure = round.ok ? health.lastFailure : { reason: round.reason, at: now };
  const damping = dampingOf(thresholds);
  let flaps = health.flaps;
  let flapped = false;

  let to: HealthState = health.state;
  if (health.state === 'unknown') to = round.ok ? 'healthy' : 'unhealthy';
  else if (health.state === 'healthy' && failures >= thresholds.fall) {
    to = 'unhealthy';
    if (damping) flaps = recordChange(flaps, now, damping);
  } else if (health.state === 'unhealthy' && passes >= thresholds.rise) {
    const decision = damping ? mayRise(flaps, now, damping) : undefined;
    if (decision) flaps = decision.history;
    if (!decision || decision.allowed) to = 'healthy';
    else flapped = decision.imposed;
  }

  const stepped = { ...health, passes, failures, lastRound, lastFailure, flaps };
  if (to === health.state) return flapped ? { health: stepped, flapped } : { health: stepped };
  return changeTo(stepped, to, round.reason, now);
}

function changeTo(health: PoolHealth, to: HealthState, reason: string, now: number): Step {
  const transition: Transition = { from: health.state, to, reason, at: now };
  return {
    health: {
      ...health,
      state: to,
      since: now,
      lastTransition: transition,
      transitions: health.transitions + 1,
    },
    transition,
  };
}

/**
 * A healthy pool that has started failing, or an unhealthy one that has started passing: its state
 * is about to change (or the blip is about to be forgiven), so the next round should come soon.
 */
export function inTransition(health: PoolHealth): boolean {
  return (
    (health.state === 'healthy' && health.failures > 0) || (health.state === 'unhealthy' && health.passes > 0)
  );
}

/**
 * The gap after a round, measured from its end. fastInterval while in transition, as HAProxy's
 * fastinter does: detection then takes about fall x (timeout + fastInterval), not fall x interval.
 */
export function nextDelayMs(
  health: PoolHealth,
  settings: Pick<ProbeSettings, 'intervalMs' | 'fastIntervalMs'>,
): number {
  return inTransition(health) ? settings.fastIntervalMs : settings.intervalMs;
}
