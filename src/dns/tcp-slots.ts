// Pure: who holds the DNS-over-TCP connection slots, and whom to close when a new client comes
// (RFC 7766 6.2). No sockets, no timers: the clock is an argument and server.ts arms the timers.
//
// A connection is idle (between messages: waiting for the client's next query, or just opened) or
// reading (some bytes of a message have come, not all). Each state has its own deadline: an idle
// timeout, and a deadline for the whole message counted from its first byte, so a client dripping
// a byte at a time cannot hold a slot by seeming busy. When every slot is taken, the newcomer is
// let in and the connection that has gone longest without progress makes room: the oldest idle
// one, or a message begun even earlier and still not whole. Never the one just opened: an honest
// client sends its query a moment after connecting, and a flood of reconnects must not close it in
// that moment. The newcomer is never the one refused; only the per-source limit refuses: one
// address, one pod, cannot take more than its share.

export interface TcpLimits {
  readonly maxConnections: number;
  readonly maxPerSource: number;
  readonly idleTimeoutMs: number;
  readonly messageDeadlineMs: number;
}

export type Admission<T> =
  | { readonly admitted: true; readonly evicted: T | undefined }
  | { readonly admitted: false };

interface Slot {
  readonly source: string;
  reading: boolean;
  /** When it became idle, or when its message's first byte came. */
  since: number;
}

export class TcpSlots<T> {
  readonly #limits: TcpLimits;
  readonly #slots = new Map<T, Slot>();
  // Each in order of `since`, oldest first (a Map keeps insertion order; re-inserting moves to the end).
  readonly #idle = new Set<T>();
  readonly #reading = new Set<T>();
  readonly #perSource = new Map<string, number>();

  constructor(limits: TcpLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** A new connection from `source`: let in, perhaps closing another (`evicted`), or refused. */
  admit(conn: T, source: string, now: number): Admission<T> {
    const fromSource = this.#perSource.get(source) ?? 0;
    if (fromSource >= this.#limits.maxPerSource) return { admitted: false };
    let evicted: T | undefined;
    if (this.#slots.size >= this.#limits.maxConnections) {
      evicted = this.#stalest();
      if (evicted !== undefined) this.release(evicted);
    }
    this.#slots.set(conn, { source, reading: false, since: now });
    this.#idle.add(conn);
    this.#perSource.set(source, fromSource + 1);
    return { admitted: true, evicted };
  }

  /** The first byte of a message has come. */
  startMessage(conn: T, now: number): void {
    this.#move(conn, true, now);
  }

  /** Every message received is answered and nothing of the next has come. */
  becomeIdle(conn: T, now: number): void {
    this.#move(conn, false, now);
  }

  #move(conn: T, reading: boolean, now: number): void {
    const slot = this.#slots.get(conn);
    if (!slot) return;
    slot.reading = reading;
    slot.since = now;
    this.#idle.delete(conn);
    this.#reading.delete(conn);
    (reading ? this.#reading : this.#idle).add(conn);
  }

  /** True while `conn` is between messages. */
  isIdle(conn: T): boolean {
    return this.#idle.has(conn);
  }

  /** When `conn` is to be closed if nothing changes (epoch ms); undefined once released. */
  deadline(conn: T): number | undefined {
    const slot = this.#slots.get(conn);
    if (!slot) return undefined;
    return slot.since + (slot.reading ? this.#limits.messageDeadlineMs : this.#limits.idleTimeoutMs);
  }

  /** Of the oldest idle connection and the oldest message in progress, the one older. */
  #stalest(): T | undefined {
    const idle = first(this.#idle);
    const reading = first(this.#reading);
    if (idle === undefined || reading === undefined) return idle ?? reading;
    const idleSince = this.#slots.get(idle)?.since ?? 0;
    const readingSince = this.#slots.get(reading)?.since ?? 0;
    return readingSince < idleSince ? reading : idle;
  }

  /** The connection is gone (closed by either side, evicted, timed out). Idempotent. */
  release(conn: T): void {
    const slot = this.#slots.get(conn);
    if (!slot) return;
    this.#slots.delete(conn);
    this.#idle.delete(conn);
    this.#reading.delete(conn);
    const left = (this.#perSource.get(slot.source) ?? 1) - 1;
    if (left > 0) this.#perSource.set(slot.source, left);
    else this.#perSource.delete(slot.source);
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const value of set) return value;
  return undefined;
}
