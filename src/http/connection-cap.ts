// Pure: how many connections an operator endpoint holds at once, from the process's file
// descriptor limit (the text of /proc/self/limits, read by server.ts).
//
// The endpoints serve kubelet probes and Prometheus scrapes: a handful of connections at a time.
// Every connection costs a descriptor, and the process needs the rest for what it is for: the
// probes (a socket per target per round), DNS (UDP, and TCP connections up to their own cap),
// the config file, the logs. When the descriptors run out, a probe fails on its own side
// (EMFILE) and a healthy proxy looks dead. So the cap is a quarter of the soft limit, never
// more than MAX_CONNECTIONS (far above honest use; more only lets a flood hold more memory) and
// never fewer than MIN_CONNECTIONS. Node has no getrlimit; where /proc cannot be read the cap is
// FALLBACK_CONNECTIONS, a quarter of the 1024 that is the usual smallest soft limit.

export const MAX_CONNECTIONS = 1_024;
export const MIN_CONNECTIONS = 16;
export const FALLBACK_CONNECTIONS = 256;

/** The soft "Max open files" of a /proc/<pid>/limits text; undefined if it is not there. */
export function softFileLimit(limitsText: string | undefined): number | undefined {
  const match = /^Max open files\s+(\d+)\s/m.exec(limitsText ?? '');
  return match ? Number(match[1]) : undefined;
}

/** `limitsText`: /proc/self/limits, or undefined where it cannot be read. */
export function connectionCap(limitsText: string | undefined): number {
  const soft = softFileLimit(limitsText);
  if (soft === undefined) return FALLBACK_CONNECTIONS;
  return Math.min(MAX_CONNECTIONS, Math.max(MIN_CONNECTIONS, Math.floor(soft / 4)));
}

export type Admission<T> =
  | { readonly admitted: true; readonly evicted: T | undefined }
  | { readonly admitted: false };

/**
 * The connections an endpoint holds, idle (waiting for a request: since it connected, or since its
 * last answer) or busy (a request in flight). A newcomer past the cap takes the place of the
 * connection idle the longest: a connection that says nothing (or has had its answer) is worth
 * less than one that just came, which an honest client uses at once. Only when every connection
 * is busy is the newcomer refused. `now` is any monotonic clock in ms; it only orders and ages.
 */
export class ConnectionSlots<T> {
  readonly #cap: number;
  // A connection held is in exactly one of the two maps: idle, or busy with requests in flight.
  // Idle since when, oldest first: a Map keeps insertion order, and re-setting a connection after
  // deleting it moves it to the end. So the oldest idle, and all idle too long, are at the front.
  readonly #idleSince = new Map<T, number>();
  // Requests in flight on a busy connection: pipelined ones are all in flight at once.
  readonly #inFlight = new Map<T, number>();

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#idleSince.size + this.#inFlight.size;
  }

  admit(connection: T, now: number): Admission<T> {
    let evicted: T | undefined;
    if (this.size >= this.#cap) {
      evicted = this.#idleSince.keys().next().value;
      if (evicted === undefined) return { admitted: false };
      this.closed(evicted);
    }
    this.#idleSince.set(connection, now);
    return { admitted: true, evicted };
  }

  /** A request came on it: not to be closed for a newcomer, nor for waiting, until it is answered. */
  busy(connection: T): void {
    if (!this.#idleSince.delete(connection) && !this.#inFlight.has(connection)) return;
    this.#inFlight.set(connection, (this.#inFlight.get(connection) ?? 0) + 1);
  }

  /** A request on it was answered: once none is left in flight, idle from `now`, the newest idle. */
  idle(connection: T, now: number): void {
    const inFlight = this.#inFlight.get(connection);
    if (inFlight !== undefined && inFlight > 1) {
      this.#inFlight.set(connection, inFlight - 1);
      return;
    }
    if (!this.#inFlight.delete(connection) && !this.#idleSince.delete(connection)) return;
    this.#idleSince.set(connection, now);
  }

  closed(connection: T): void {
    this.#idleSince.delete(connection);
    this.#inFlight.delete(connection);
  }

  /** The connections idle since `before` or earlier, oldest first; they stay held until closed(). */
  idleSince(before: number): T[] {
    const waited: T[] = [];
    for (const [connection, since] of this.#idleSince) {
      if (since > before) break;
      waited.push(connection);
    }
    return waited;
  }

  /** Every connection held, idle or busy. */
  all(): T[] {
    return [...this.#idleSince.keys(), ...this.#inFlight.keys()];
  }
}
