// Pure: flap damping. A pool that keeps changing state is held down (kept unhealthy, so not
// answered) for a hold-down that doubles with each further flap, up to a maximum, and is forgiven
// once it has stayed stable for a whole window. mayRise(history, now, settings) -> allowed or held.
//
// Only rises are ever held: a pool that fails is let go at once, so damping can never delay a
// failover, least of all the first one of a pool that has been stable. rise/fall alone (HAProxy,
// Route 53) bound how fast one change is believed; they do not stop a pool that passes `rise`
// rounds, fails `fall`, and again, from moving every client back and forth all day.

export interface FlapSettings {
  /** More state changes than this within `flapWindowMs` is flapping; 0 turns damping off. */
  readonly flapThreshold: number;
  readonly flapWindowMs: number;
  /** The first hold-down; each further flap before the pool is forgiven doubles it. */
  readonly holdDownMs: number;
  readonly maxHoldDownMs: number;
}

export interface FlapHistory {
  /** Epoch ms of the pool's state changes within the last window (the first verdict excluded). */
  readonly changes: readonly number[];
  /** Hold-downs since the pool was last stable for a whole window: the doubling exponent. */
  readonly holdDowns: number;
  /** Set while a hold-down lasts: the pool may not turn healthy before this epoch ms. */
  readonly heldUntil: number | undefined;
}

export const NO_FLAPS: FlapHistory = { changes: [], holdDowns: 0, heldUntil: undefined };

/** A pool whose last change is a whole window ago has been stable: its past hold-downs are forgiven. */
function forgiven(history: FlapHistory, now: number, settings: FlapSettings): number {
  const last = history.changes.at(-1);
  return last === undefined || now - last >= settings.flapWindowMs ? 0 : history.holdDowns;
}

/** Records a fall (healthy -> unhealthy); rises are recorded by mayRise, which may refuse them. */
export function recordChange(history: FlapHistory, now: number, settings: FlapSettings): FlapHistory {
  const holdDowns = forgiven(history, now, settings);
  const changes = [...history.changes.filter((at) => now - at < settings.flapWindowMs), now];
  return { changes, holdDowns, heldUntil: history.heldUntil };
}

export type RiseDecision =
  | { readonly allowed: true; readonly history: FlapHistory }
  /** `imposed`: this attempt started a new hold-down (a flap to count); else one already lasts. */
  | { readonly allowed: false; readonly history: FlapHistory; readonly imposed: boolean };

/**
 * An unhealthy pool has passed `rise` rounds: may it turn healthy now? Not while a hold-down lasts;
 * the first rise after one ends is allowed. Otherwise a rise that would make more than
 * `flapThreshold` changes within the window, or any further flap before the pool has been forgiven,
 * starts a hold-down of holdDown x 2^(hold-downs so far), at most maxHoldDown.
 */
export function mayRise(history: FlapHistory, now: number, settings: FlapSettings): RiseDecision {
  if (settings.flapThreshold <= 0) return { allowed: true, history: recordChange(history, now, settings) };
  const recent = history.changes.filter((at) => now - at < settings.flapWindowMs);
  if (history.heldUntil !== undefined) {
    if (now < history.heldUntil) return { allowed: false, history, imposed: false };
    // Released: the stable window that forgives its hold-downs starts now, not at the last change
    // before the hold (a hold-down as long as the window would otherwise forgive itself).
    return {
      allowed: true,
      history: { changes: [...recent, now], holdDowns: history.holdDowns, heldUntil: undefined },
    };
  }
  const holdDowns = forgiven(history, now, settings);
  if (holdDowns === 0 && recent.length + 1 <= settings.flapThreshold) {
    return { allowed: true, history: recordChange(history, now, settings) };
  }
  const holdMs = Math.min(settings.maxHoldDownMs, settings.holdDownMs * 2 ** holdDowns);
  return {
    allowed: false,
    imposed: true,
    history: { changes: recent, holdDowns: holdDowns + 1, heldUntil: now + holdMs },
  };
}
