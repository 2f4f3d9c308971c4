// Edge: a small node:http server for the operator endpoints of both commands. Routing is a
// function handed in; this file only speaks HTTP, and holds its ground against a neighbour that
// opens connections and says nothing (connection-cap.ts decides how many and whom to close).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import { ConnectionSlots, connectionCap } from './connection-cap.js';
import { type HttpReply, type Route, text } from './reply.js';

/**
 * The clocks of a connection. An honest client (the kubelet, Prometheus) sends its request the
 * moment it connects and reads the answer at once, so every bound can be short: a connection
 * that has sent no whole request head within HEADERS_TIMEOUT_MS, or sits idle after its answer for
 * KEEP_ALIVE_TIMEOUT_MS, is closed. Node checks the first two only every
 * `connectionsCheckingInterval` (30 s by default: a silent connection then lived up to 35 s), so
 * it checks every CHECK_INTERVAL_MS. INACTIVITY_TIMEOUT_MS covers the rest: a client that stops
 * reading its answer.
 */
export const HEADERS_TIMEOUT_MS = 1_000;
export const REQUEST_TIMEOUT_MS = 2_000;
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
  readonly #server: http.Server;
  readonly maxConnections: number;
  /** Connections shed since the start. */
  readonly shed: ShedCounts = { evicted: 0, refused: 0 };
  readonly #unlogged: ShedCounts = { evicted: 0, refused: 0 };
  #logTimer: NodeJS.Timeout | undefined;
  readonly #log: HttpServerOptions['log'];

  private constructor(server: http.Server, maxConnections: number, log: HttpServerOptions['log']) {
    this.#server = server;
    this.maxConnections = maxConnections;
    this.#log = log;
  }

  /** Rejects with the bind error (EADDRINUSE, ...) and leaves nothing open. */
  static async start(
    listen: ListenAddress,
    route: Route,
    options: HttpServerOptions = {},
  ): Promise<HttpServer> {
    const server = http.createServer({
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    });
    server.setTimeout(INACTIVITY_TIMEOUT_MS);
    const self = new HttpServer(server, options.maxConnections ?? connectionCap(readLimits()), options.log);
    const slots = new ConnectionSlots<Socket>(self.maxConnections);

    server.on('connection', (socket: Socket) => {
      const admission = slots.admit(socket);
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
    });
    server.on('request', (req, res) => {
      const socket = req.socket;
      slots.busy(socket);
      res.once('finish', () => slots.idle(socket));
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
    // Bad requests (port scanners and the like) get a 400, late ones a 408, and the socket is
    // destroyed, never half-closed: end() would keep the descriptor until the peer closes its side,
    // which a hostile one never does. The reply is small enough to leave in the one write.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
        socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      }
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listen.host, port: listen.port, exclusive: true, backlog: BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return self;
  }

  get address(): { host: string; port: number } {
    const info = this.#server.address() as AddressInfo;
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

  /** Stops accepting; idle keep-alive connections are closed, busy ones get a second to finish. */
  async close(): Promise<void> {
    this.#flushLog();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = setTimeout(() => this.#server.closeAllConnections(), 1_000);
    await closed;
    clearTimeout(deadline);
  }
}
