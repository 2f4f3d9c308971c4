// Polling with a deadline: tests wait for a condition (a port open, an answer changed), never for a
// fixed time, so they are as quick as the machine allows and still bounded when something breaks.
// Independent of vitest so bench scripts can import it.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Time between attempts (default 50 ms). */
  readonly intervalMs?: number;
  /** What we wait for, for the error message: "squid-a listening on 127.0.0.11:3128". */
  readonly what: string;
}

/** Thrown by a condition that can never become true (the process died): ends the wait at once. */
export class GiveUp extends Error {}

/**
 * Calls `condition` until it returns a truthy value, which is returned. A throw counts as "not yet";
 * the last one is quoted in the timeout error, since it usually explains why. A thrown GiveUp ends
 * the wait at once.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, what }: WaitOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${cause}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
