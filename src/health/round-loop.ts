// Edge: one check's rounds on a timer, one at a time, the next scheduled from the end of the last;
// the health monitor runs one per pool, the sidecar one per process.
import { probeErrorReason } from './error-reason.js';
import type { RoundResult } from './round.js';

/** Why a round has no result of its own. */
export interface RoundFailure {
  /** `probe_error=<message>` for a round that threw, `round_timeout=<limit>ms` for one abandoned. */
  readonly reason: string;
  /** What the round threw: a bug of the round function, for the caller to log; undefined if abandoned. */
  readonly error: unknown;
  readonly startedAt: number;
  readonly endedAt: number;
}

export interface RoundLoopOptions<T> {
  /** One round. It should bound itself by its timeout and honour `signal`; the loop relies on neither. */
  readonly run: (signal: AbortSignal) => Promise<T>;
  /** The result that stands for a round that threw or was abandoned. */
  readonly failed: (failure: RoundFailure) => T;
  /**
   * Takes each round's result (never after stop) and returns the delay until the next round, or
   * undefined for none (the caller is stopping).
   */
  readonly settle: (result: T) => number | undefined | Promise<number | undefined>;
  /** How long a round may run before it is abandoned: the round's own timeout plus some slack. */
  readonly limitMs: number;
  /** Shared by the loops of one monitor, so that rounds coming due together start in batches. */
  readonly pacer?: StartPacer;
  readonly now?: () => number;
}

/**
 * Paces round starts across the loops that share it: at most `perTurn` rounds start in one turn of
 * the event loop, the rest in the turns after it (setImmediate, which runs after the poll phase),
 * so I/O, DNS queries above all, is served between batches. A reload that added 5,500 pools had
 * every first round come due within 100 ms; Node runs all due timers in one go, and the thread was
 * held for over two seconds. Below `perTurn` rounds per turn, which is every steady state this
 * process can keep up with, nothing waits.
 */
export class StartPacer {
  readonly #perTurn: number;
  readonly #waiting: (() => void)[] = [];
  #startedThisTurn = 0;
  #turnEnd: ReturnType<typeof setImmediate> | undefined;

  constructor(perTurn = 8) {
    this.#perTurn = perTurn;
  }

  /** Calls `start` now if this turn has room and nothing waits, else in a later turn, in order. */
  admit(start: () => void): void {
    this.#turnEnd ??= setImmediate(() => this.#nextTurn());
    if (this.#waiting.length === 0 && this.#startedThisTurn < this.#perTurn) {
      this.#startedThisTurn += 1;
      start();
    } else {
      this.#waiting.push(start);
    }
  }

  /** Rounds still waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  #nextTurn(): void {
    this.#turnEnd = undefined;
    const batch = this.#waiting.splice(0, this.#perTurn);
    this.#startedThisTurn = batch.length;
    // Armed again while this turn started any: its count must be reset, and more may wait.
    if (batch.length > 0) this.#turnEnd = setImmediate(() => this.#nextTurn());
    for (const start of batch) start();
  }
}

class RoundAbandoned extends Error {}

// One round in flight, and the next scheduled only from the end of the last: rounds that overlap
// against a hung proxy pile up connections on exactly the Squid that is struggling, and their
// results could land out of order, so the rise/fall counts would no longer be consecutive.
export class RoundLoop<T> {
  readonly #options: RoundLoopOptions<T>;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #controller: AbortController | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  constructor(options: RoundLoopOptions<T>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Runs the first round after `delayMs`. A stopped loop stays stopped. */
  start(delayMs = 0): void {
    this.#schedule(delayMs);
  }

  /**
   * Runs a round now, unless one is in flight; resolves once that round has been settled. For a
   * caller that must hear from this check before it can decide (attribution across pools): the
   * regular schedule then continues from this round's end, so the check is not probed twice.
   */
  runNow(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#inFlight) return this.#inFlight;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const inFlight = this.#round().finally(() => {
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    });
    this.#inFlight = inFlight;
    return inFlight;
  }

  /** Clears the timer and aborts the round in flight; resolves once no round is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller?.abort(new RoundAbandoned('stopped'));
    await this.#inFlight;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const { pacer } = this.#options;
      if (pacer) pacer.admit(() => this.#begin());
      else this.#begin();
    }, delayMs);
  }

  #begin(): void {
    // Waiting for the pacer, the loop may have been stopped, or asked for a round now (runNow),
    // which then continues the schedule itself.
    if (this.#stopped || this.#inFlight || this.#timer !== undefined) return;
    const inFlight = this.#round().finally(() => {
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    });
    this.#inFlight = inFlight;
  }

  async #round(): Promise<void> {
    const result = await this.#guarded();
    if (this.#stopped) return;
    const delayMs = await this.#options.settle(result);
    if (delayMs !== undefined) this.#schedule(delayMs);
  }

  async #guarded(): Promise<T> {
    const controller = new AbortController();
    this.#controller = controller;
    const startedAt = this.#now();
    // The round bounds itself by its timeout; this is the safety net for one that does not.
    // Racing the abort means a round that ignores its signal is abandoned, not waited for: whatever
    // it still holds is a bug of the round function, and a check that never runs again is worse.
    const { limitMs } = this.#options;
    const guard = setTimeout(
      () => controller.abort(new RoundAbandoned(`round_timeout=${limitMs}ms`)),
      limitMs,
    );
    try {
      return await Promise.race([
        Promise.resolve().then(() => this.#options.run(controller.signal)),
        rejectOnAbort(controller.signal),
      ]);
    } catch (err) {
      const abandoned = err instanceof RoundAbandoned;
      return this.#options.failed({
        reason: abandoned ? err.message : probeErrorReason(err),
        error: abandoned ? undefined : err,
        startedAt,
        endedAt: this.#now(),
      });
    } finally {
      clearTimeout(guard);
      this.#controller = undefined;
    }
  }
}

/** A failed round of probe results, for a round that threw or was abandoned. */
export function failedRound({ reason, startedAt, endedAt }: RoundFailure): RoundResult {
  return { ok: false, reason, targets: [], latencyMs: endedAt - startedAt, at: endedAt };
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
