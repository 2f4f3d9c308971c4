// Edge: a small node:http server for the operator endpoints of both commands. Routing is a
// function handed in; this file only speaks HTTP, and holds its ground against a neighbour that
// opens connections and says nothing (connection-cap.ts decides how many and whom to close).
//
// A plain net.Server listens, and a connection is handed to node:http only when its first bytes
// arrive: a silent connection (what a flood is made of) then costs an accept and a close, without
// the HTTP parser, timers and listeners node:http sets up for each connection. Measured with
// bench/http-conn-cost.ts: about 20 % less CPU per flood connection, and the kubelet's probe waits
// behind each of those in the accept queue.
import { readFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import { createServer } from '../node-http.js';
import { ConnectionSlots, connectionCap } from './connection-cap.js';
import { type HttpReply, type Route, text } from './reply.js';

/**
 * The clocks of a connection. An honest client (the kubelet, Prometheus) sends its request the
 * moment it connects and reads the answer at once, so every bound can be short. A connection
 * waiting for a request (since it connected, or since its last answer) longer than
 * WAITING_TIMEOUT_MS is closed; every CHECK_INTERVAL_MS the connections waiting the longest are
 * looked at (the oldest first, so a check costs what it closes). Node's own checks of the request
 * head run only on a server that listens itself (and every 30 s by default), so they are ours.
 * KEEP_ALIVE_TIMEOUT_MS is what a keep-alive answer announces (`Keep-Alive: timeout=1`); the
 * check closes such a connection. INACTIVITY_TIMEOUT_MS covers the rest: a client that stops
 * reading its answer.
 */
export const WAITING_TIMEOUT_MS = 1_000;
export const KEEP_ALIVE_TIMEOUT_MS = 1_000;
export const INACTIVITY_TIMEOUT_MS = 5_000;
const CHECK_INTERVAL_MS = 250;
/**
 * Connections the kernel completes and queues before we accept them (capped by the system's
 * net.core.somaxconn, 4096 on recent kernels). Past it a new client's SYN is dropped and retried
 * only after a second, longer than the kubelet waits; a flood refills a short queue (Node's 511)
 * faster than it is emptied, while ours is emptied at once (each accept closes one idle connection).
 */
const BACKLOG = 4_096;
/** At most one warning per this long about connections closed to make room, with the counts. */
const SHED_LOG_INTERVAL_MS = 10_000;

export interface HttpServerOptions {
  /** Connections held at once; by default from the process's file descriptor limit. */
  readonly maxConnections?: number;
  /** Where the warning about shed connections goes (a pino logger fits). */
  readonly log?: { warn(obj: object, msg: string): void };
}

export interface ShedCounts {
  /** Idle connections closed to admit a newcomer. */
  evicted: number;
  /** Newcomers closed at once: every connection was busy. */
  refused: number;
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

export class HttpServer {
  readonly #front: net.Server;
  readonly #slots: ConnectionSlots<Socket>;
  #checker: NodeJS.Timeout | undefined;
  readonly maxConnections: number;
  /** Connections shed since the start. */
  readonly shed: ShedCounts = { evicted: 0, refused: 0 };
  readonly #unlogged: ShedCounts = { evicted: 0, refused: 0 };
  #logTimer: NodeJS.Timeout | undefined;
  readonly #log: HttpServerOptions['log'];

  private constructor(front: net.Server, maxConnections: number, log: HttpServerOptions['log']) {
    this.#front = front;
    this.#slots = new ConnectionSlots<Socket>(maxConnections);
    this.maxConnections = maxConnections;
    this.#log = log;
  }

  /** Rejects with the bind error (EADDRINUSE, ...) and leaves nothing open. */
  static async start(
    listen: ListenAddress,
    route: Route,
    options: HttpServerOptions = {},
  ): Promise<HttpServer> {
    const server = createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
    server.setTimeout(INACTIVITY_TIMEOUT_MS);
    const front = net.createServer();
    const self = new HttpServer(front, options.maxConnections ?? connectionCap(readLimits()), options.log);
    const slots = self.#slots;

    front.on('connection', (socket: Socket) => {
      const admission = slots.admit(socket, performance.now());
      if (!admission.admitted) {
        socket.destroy();
        self.#count('refused');
        return;
      }
      if (admission.evicted) {
        admission.evicted.destroy();
        self.#count('evicted');
      }
      socket.once('close', () => slots.closed(socket));
      // Until node:http takes it, its errors (a reset) are ours to swallow: the socket is done.
      const early = () => socket.destroy();
      socket.on('error', early);
      socket.once('data', (head: Buffer) => {
        socket.off('error', early);
        // Answers are one write each; no Nagle delay on a keep-alive connection's next one.
        socket.setNoDelay(true);
        server.emit('connection', socket);
        socket.emit('data', head);
      });
    });
    // What a connection had sent when its last answer was written: more since then is a request
    // begun and not finished, which gets a 408. One that said nothing (since it connected, or since
    // its answer) is closed without a word: it would not read one.
    const readWhenAnswered = new WeakMap<Socket, number>();
    server.on('request', (req, res) => {
      const socket = req.socket;
      slots.busy(socket);
      res.once('finish', () => {
        slots.idle(socket, performance.now());
        readWhenAnswered.set(socket, socket.bytesRead);
      });
      const respond = (reply: HttpReply) => {
        res.writeHead(reply.status, { 'content-type': reply.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : reply.body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        respond(text(405, 'method not allowed: GET or HEAD'));
        return;
      }
      const path = (req.url ?? '/').split('?')[0] as string;
      Promise.resolve()
        .then(() => route(path))
        .then(
          (reply) => respond(reply ?? text(404, `not found: ${path}`)),
          (err: unknown) => respond(text(500, `internal error: ${String(err)}`)),
        );
    });
    // Bad requests (port scanners and the like) get a 400, and the socket is destroyed, never
    // half-closed: end() would keep the descriptor until the peer closes its side, which a hostile
    // one never does. The reply is small enough to leave in the one write.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      closeWith(socket, err.code === 'ECONNRESET' ? undefined : '400 Bad Request');
    });
    self.#checker = setInterval(() => {
      for (const socket of slots.idleSince(performance.now() - WAITING_TIMEOUT_MS)) {
        const begun = socket.bytesRead > (readWhenAnswered.get(socket) ?? 0);
        closeWith(socket, begun ? '408 Request Timeout' : undefined);
      }
    }, CHECK_INTERVAL_MS);
    self.#checker.unref();
    try {
      await new Promise<void>((resolve, reject) => {
        front.once('error', reject);
        front.listen({ host: listen.host, port: listen.port, exclusive: true, backlog: BACKLOG }, () => {
          front.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      clearInterval(self.#checker);
      throw err;
    }
    return self;
  }

  get address(): { host: string; port: number } {
    const info = this.#front.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  #count(kind: keyof ShedCounts): void {
    this.shed[kind] += 1;
    this.#unlogged[kind] += 1;
    if (this.#logTimer || !this.#log) return;
    this.#logTimer = setTimeout(() => this.#flushLog(), SHED_LOG_INTERVAL_MS);
    this.#logTimer.unref();
  }

  #flushLog(): void {
    clearTimeout(this.#logTimer);
    this.#logTimer = undefined;
    if (this.#unlogged.evicted + this.#unlogged.refused === 0) return;
    this.#log?.warn(
      { shed: { ...this.#unlogged }, max_connections: this.maxConnections },
      'http: connections closed or refused to keep slots free',
    );
    this.#unlogged.evicted = 0;
    this.#unlogged.refused = 0;
  }

  /** Stops accepting; idle connections are closed at once, busy ones a second later. */
  async close(): Promise<void> {
    this.#flushLog();
    clearInterval(this.#checker);
    const closed = new Promise<void>((resolve) => this.#front.close(() => resolve()));
    for (const socket of this.#slots.idleSince(Number.POSITIVE_INFINITY)) socket.destroy();
    const deadline = setTimeout(() => {
      for (const socket of this.#slots.all()) socket.destroy();
    }, 1_000);
    await closed;
    clearTimeout(deadline);
  }
}

/** Ends a connection for good: an optional last status line, then destroyed, never half-closed. */
function closeWith(socket: Socket, status: string | undefined): void {
  if (status && socket.writable)
    socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  socket.destroy();
}
