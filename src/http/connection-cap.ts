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
 * The connections an endpoint holds, idle or busy (a request in flight). A newcomer past the cap
 * takes the place of the connection idle the longest: a connection that says nothing (or has
 * had its answer) is worth less than one that just came, which an honest client uses at once.
 * Only when every connection is busy is the newcomer refused.
 */
export class ConnectionSlots<T> {
  readonly #cap: number;
  readonly #open = new Set<T>();
  // Oldest idle first: a Set keeps insertion order, and re-adding moves a connection to the end.
  readonly #idle = new Set<T>();

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#open.size;
  }

  admit(connection: T): Admission<T> {
    let evicted: T | undefined;
    if (this.#open.size >= this.#cap) {
      evicted = this.#idle.values().next().value;
      if (evicted === undefined) return { admitted: false };
      this.closed(evicted);
    }
    this.#open.add(connection);
    this.#idle.add(connection);
    return { admitted: true, evicted };
  }

  /** A request came on it: not to be closed for a newcomer until it is answered. */
  busy(connection: T): void {
    this.#idle.delete(connection);
  }

  /** Its request was answered: idle again, and the newest idle. */
  idle(connection: T): void {
    if (!this.#open.has(connection)) return;
    this.#idle.delete(connection);
    this.#idle.add(connection);
  }

  closed(connection: T): void {
    this.#open.delete(connection);
    this.#idle.delete(connection);
  }
}
