// Pure: operator controls over time. Which control is in force at `now`, the warning for one whose
// `until` has already passed, and the per-pool history /status keeps (state changes and controls).
import type { AdminControl, ServiceConfig } from '../config/schema.js';
import type { Transition } from './state.js';

/** How many entries /status keeps per pool: enough for a night of flapping, small enough to read. */
export const HISTORY_LENGTH = 20;

/** `none` stands for "no control" in an admin entry's from/to. */
export type AdminPosition = AdminControl['state'] | 'none';

export interface HistoryEntry {
  /** Epoch ms. */
  readonly at: number;
  /** `health`: a state change the probes made; `admin`: a control began, changed or ended. */
  readonly kind: 'health' | 'admin';
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

/** `control` while its `until` has not come; an expired control is no control. */
export function activeControl(control: AdminControl | undefined, now: number): AdminControl | undefined {
  return control && (control.until === undefined || control.until > now) ? control : undefined;
}

export function sameControl(a: AdminControl | undefined, b: AdminControl | undefined): boolean {
  return a === b || (!!a && !!b && a.state === b.state && a.reason === b.reason && a.until === b.until);
}

/** `history` with `entry` appended, the oldest dropped beyond HISTORY_LENGTH. */
export function withEntry(history: readonly HistoryEntry[], entry: HistoryEntry): readonly HistoryEntry[] {
  return [...history, entry].slice(-HISTORY_LENGTH);
}

export function healthEntry(transition: Transition): HistoryEntry {
  const { at, from, to, reason } = transition;
  return { at, kind: 'health', from, to, reason };
}

/**
 * The entry for a control going from `before` to `after` (either may be none); undefined when
 * nothing changed. An ending entry says why it ended (`ended`); others carry the operator's reason.
 */
export function adminEntry(
  before: AdminControl | undefined,
  after: AdminControl | undefined,
  at: number,
  ended: string,
): HistoryEntry | undefined {
  if (sameControl(before, after)) return undefined;
  return {
    at,
    kind: 'admin',
    from: before?.state ?? 'none',
    to: after?.state ?? 'none',
    reason: after ? after.reason : ended,
  };
}

/** Why a control ended by its own `until`. */
export function untilPassed(control: AdminControl): string {
  return `until ${isoSeconds(control.until ?? 0)} passed`;
}

export interface ExpiredControl {
  readonly service: string;
  readonly pool: string;
  /** Where in the file: services[0].pools[1].admin.until */
  readonly path: string;
  readonly control: AdminControl;
  /** One line, the same in the dns server's log and in check-config's output. */
  readonly message: string;
}

/**
 * The controls whose `until` has passed by `now`: ignored, each with one warning. A ConfigMap left
 * behind with last week's drain must never stop a restart, nor quietly drain a pool again.
 */
export function expiredControls(services: readonly ServiceConfig[], now: number): ExpiredControl[] {
  return services.flatMap((service, s) =>
    service.pools.flatMap((pool, p): ExpiredControl[] => {
      const control = pool.admin;
      if (!control || activeControl(control, now)) return [];
      const path = `services[${s}].pools[${p}].admin.until`;
      const message = `${path}: ${isoSeconds(control.until ?? 0)} has passed; the ${control.state} of pool ${pool.name} (${JSON.stringify(control.reason)}) is ignored`;
      return [{ service: service.name, pool: pool.name, path, control, message }];
    }),
  );
}

/** 1764064800123 -> 2026-11-25T10:00:00Z */
export function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
