// Edge: the operator controls of one monitor's pools over time. Keeps each pool's control in force
// and its history, logs when a control starts and ends, and wakes the monitor when an `until` passes.
// A control is never a health transition: nothing here touches a pool's state or its counters.
import type { AdminControl, ServiceConfig } from '../config/schema.js';
import {
  activeControl,
  adminEntry,
  expiredControls,
  type HistoryEntry,
  healthEntry,
  isoSeconds,
  sameControl,
  untilPassed,
  withEntry,
} from './admin.js';
import type { Transition } from './state.js';

/** What a reload hands on, by service and pool name: a pool's history outlives changes to its probes. */
export type AdminCarry = ReadonlyMap<string, PoolAdmin>;

interface PoolAdmin {
  readonly control: AdminControl | undefined;
  readonly history: readonly HistoryEntry[];
}

export interface AdminControlsOptions {
  readonly services: readonly ServiceConfig[];
  readonly previous?: AdminCarry | undefined;
  readonly logger: {
    info(obj: Record<string, unknown>, msg: string): void;
    warn(obj: Record<string, unknown>, msg: string): void;
  };
  readonly now: () => number;
  /** A pool's control ended by its `until`: the monitor republishes. */
  readonly onChange: (service: string, pool: string) => void;
}

/** setTimeout fires at once beyond 2^31-1 ms (about 24.8 days): a later `until` is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const keyOf = (service: string, pool: string) => JSON.stringify([service, pool]);

export class AdminControls {
  readonly #options: AdminControlsOptions;
  readonly #pools = new Map<string, PoolAdmin>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** Applies the config's controls at once (at start or reload), logging what began, changed or ended. */
  constructor(options: AdminControlsOptions) {
    this.#options = options;
    const now = options.now();
    for (const expired of expiredControls(options.services, now)) {
      const { service, pool, path, control } = expired;
      options.logger.warn(
        {
          service,
          pool,
          path,
          admin: control.state,
          reason: control.reason,
          until: isoSeconds(control.until ?? 0),
        },
        expired.message,
      );
    }
    for (const service of options.services) {
      for (const pool of service.pools) {
        const before = options.previous?.get(keyOf(service.name, pool.name));
        const control = activeControl(pool.admin, now);
        const history = this.#change(
          service.name,
          pool.name,
          before,
          control,
          now,
          'removed from the config',
        );
        this.#pools.set(keyOf(service.name, pool.name), { control, history });
      }
    }
  }

  start(): void {
    if (!this.#stopped) this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The pool's control in force, if any. */
  control(service: string, pool: string): AdminControl | undefined {
    return this.#pools.get(keyOf(service, pool))?.control;
  }

  /** The pool's last state changes and control changes, oldest first. */
  history(service: string, pool: string): readonly HistoryEntry[] {
    return this.#pools.get(keyOf(service, pool))?.history ?? [];
  }

  recordTransition(service: string, pool: string, transition: Transition): void {
    const key = keyOf(service, pool);
    const entry = this.#pools.get(key);
    if (entry) this.#pools.set(key, { ...entry, history: withEntry(entry.history, healthEntry(transition)) });
  }

  carryOver(): AdminCarry {
    return new Map(this.#pools);
  }

  /** Logs a change of control and returns the history with it; `before` undefined: nothing carried. */
  #change(
    service: string,
    pool: string,
    before: PoolAdmin | undefined,
    after: AdminControl | undefined,
    now: number,
    ended: string,
  ): readonly HistoryEntry[] {
    const history = before?.history ?? [];
    const entry = adminEntry(before?.control, after, now, ended);
    if (!entry) return history;
    const where = { service, pool, from: entry.from, to: entry.to };
    if (after) {
      const until = after.until === undefined ? {} : { until: isoSeconds(after.until) };
      const msg = before?.control ? 'admin control changed' : 'admin control started';
      this.#options.logger.info({ ...where, admin: after.state, reason: after.reason, ...until }, msg);
    } else {
      this.#options.logger.info({ ...where, reason: before?.control?.reason, ended }, 'admin control ended');
    }
    return withEntry(history, entry);
  }

  #arm(): void {
    clearTimeout(this.#timer);
    let next: number | undefined;
    for (const { control } of this.#pools.values()) {
      if (control?.until !== undefined && (next === undefined || control.until < next)) next = control.until;
    }
    if (next === undefined) return;
    const delay = Math.min(Math.max(next - this.#options.now(), 0), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#expire(), delay);
    // The probe loops keep the process alive; this timer alone must not keep a stopping one.
    this.#timer.unref?.();
  }

  #expire(): void {
    if (this.#stopped) return;
    const now = this.#options.now();
    for (const [key, entry] of this.#pools) {
      const { control } = entry;
      if (!control || sameControl(activeControl(control, now), control)) continue;
      const [service, pool] = JSON.parse(key) as [string, string];
      const history = this.#change(service, pool, entry, undefined, now, untilPassed(control));
      this.#pools.set(key, { control: undefined, history });
      this.#options.onChange(service, pool);
    }
    this.#arm();
  }
}
