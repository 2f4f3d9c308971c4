// Pure: the rise/fall machine of one pool. next(health, round, now, thresholds) -> health + transition.
// The clock is an argument so the machine is table-testable and replayable; nothing here reads time.
import type { ProbeSettings } from '../config/schema.js';
import type { RoundResult } from './verdict.js';

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';
export const HEALTH_STATES: readonly HealthState[] = ['unknown', 'healthy', 'unhealthy'];

export interface LastRound {
  readonly ok: boolean;
  readonly reason: string;
  /** Epoch ms at which the round's result was applied. */
  readonly at: number;
  readonly latencyMs: number;
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
}

export type Thresholds = Pick<ProbeSettings, 'rise' | 'fall'>;

export interface Step {
  readonly health: PoolHealth;
  readonly transition?: Transition;
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
  };
}

/**
 * Applies one round. The first round decides at once: waiting for `rise` rounds at start-up would
 * keep every service answering SERVFAIL for rise x interval. After that, `rise` consecutive passes
 * turn an unhealthy pool healthy and `fall` consecutive failures turn a healthy pool unhealthy.
 */
export function next(health: PoolHealth, round: RoundResult, now: number, thresholds: Thresholds): Step {
  const passes = round.ok ? health.passes + 1 : 0;
  const failures = round.ok ? 0 : health.failures + 1;
  const lastRound: LastRound = { ok: round.ok, reason: round.reason, at: now, latencyMs: round.latencyMs };
  const lastFailure = round.ok ? health.lastFailure : { reason: round.reason, at: now };

  let to: HealthState = health.state;
  if (health.state === 'unknown') to = round.ok ? 'healthy' : 'unhealthy';
  else if (health.state === 'healthy' && failures >= thresholds.fall) to = 'unhealthy';
  else if (health.state === 'unhealthy' && passes >= thresholds.rise) to = 'healthy';

  const stepped = { ...health, passes, failures, lastRound, lastFailure };
  if (to === health.state) return { health: stepped };

  const transition: Transition = { from: health.state, to, reason: round.reason, at: now };
  return {
    health: {
      ...stepped,
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
