// Edge: a small node:http server for the operator endpoints of both commands. Routing is a
// function handed in; this file only speaks HTTP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import { type HttpReply, type Route, text } from './reply.js';

export class HttpServer {
  readonly #server: http.Server;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  /** Rejects with the bind error (EADDRINUSE, ...) and leaves nothing open. */
  static async start(listen: ListenAddress, route: Route): Promise<HttpServer> {
    const server = http.createServer({
      requestTimeout: 5_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 5_000,
    });
    server.on('request', (req, res) => {
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
    // Bad requests from port scanners and the like get a 400 and a closed socket, never a crash.
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new HttpServer(server);
  }

  get address(): { host: string; port: number } {
    const info = this.#server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  /** Stops accepting; idle keep-alive connections are closed, busy ones get a second to finish. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = setTimeout(() => this.#server.closeAllConnections(), 1_000);
    await closed;
    clearTimeout(deadline);
  }
}
