// The operator HTTP server (src/http/server.ts) as a client meets it, on a real socket: the
// requests the kubelet and Prometheus make are answered, whatever way their bytes arrive, and a
// connection that waits without finishing a request is closed within about a second, whether it
// says nothing or drips its request head a byte at a time (what Node's own header timeout would do
// on a server that listens itself; ours hands connections to node:http only once they speak).
// Binds 127.0.1.41 on a free port.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpServer, WAITING_TIMEOUT_MS } from '../../src/http/server.js';

let server: HttpServer;

beforeAll(async () => {
  server = await HttpServer.start({ host: '127.0.1.41', port: 0 }, (path) =>
    path === '/readyz' ? { status: 200, contentType: 'text/plain', body: 'ready\n' } : undefined,
  );
});

afterAll(async () => {
  await server?.close();
});

interface Conversation {
  /** Everything the server sent. */
  readonly received: string;
  /** ms from connect to the server's close; Infinity if it did not close within `giveUpMs`. */
  readonly closedAfterMs: number;
}

/**
 * Connects, writes `parts` with `gapMs` between them (keeps writing while the server lets it),
 * and waits for the server to close the connection.
 */
function converse(parts: readonly string[], gapMs: number, giveUpMs = 5_000): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(server.address.port, server.address.host);
    let received = '';
    let openedAt = 0;
    const give = setTimeout(() => {
      socket.destroy();
      resolve({ received, closedAfterMs: Number.POSITIVE_INFINITY });
    }, giveUpMs);
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.once('connect', async () => {
      openedAt = performance.now();
      for (const part of parts) {
        if (socket.destroyed || !socket.writable) break;
        socket.write(part);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server closing under a write shows as a reset on our side: still a close.
      if (openedAt === 0) reject(err);
    });
    socket.once('close', () => {
      clearTimeout(give);
      resolve({ received, closedAfterMs: performance.now() - openedAt });
    });
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
const GET = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;

describe('requests are answered however their bytes arrive', () => {
  it('one request in one write', async () => {
    const { received } = await converse([GET('/readyz')], 0);
    expect(statuses(received)).toEqual([200]);
    expect(received).toMatch(/\r\nready\n/);
  });

  it('a request head split over several writes, then a second request on the same connection', async () => {
    const { received } = await converse(
      ['GET /rea', 'dyz HTTP/1.1\r\nho', 'st: x\r\n\r\n', GET('/nope')],
      50,
    );
    expect(statuses(received)).toEqual([200, 404]);
  });

  it('two requests pipelined in one write', async () => {
    const { received } = await converse([GET('/readyz') + GET('/readyz')], 0);
    expect(statuses(received)).toEqual([200, 200]);
  });

  it('a bad request is answered 400 and closed', async () => {
    const { received, closedAfterMs } = await converse(['hello\r\n\r\n'], 0);
    expect(statuses(received)).toEqual([400]);
    expect(closedAfterMs).toBeLessThan(1_000);
  });
});

describe('a connection that waits without finishing a request is closed within about a second', () => {
  const bound = WAITING_TIMEOUT_MS + 750; // the check runs every 250 ms; room for a busy machine

  it('silent from the start: closed without a word', async () => {
    const { received, closedAfterMs } = await converse([], 0);
    expect(received).toBe('');
    expect(closedAfterMs).toBeGreaterThanOrEqual(WAITING_TIMEOUT_MS - 50);
    expect(closedAfterMs).toBeLessThan(bound);
  });

  it('dripping its request head a byte every 100 ms: 408, then closed', async () => {
    const { received, closedAfterMs } = await converse([...GET('/readyz')], 100);
    expect(statuses(received)).toEqual([408]);
    expect(closedAfterMs).toBeLessThan(bound);
  });

  it('idle after its answer (keep-alive): closed', async () => {
    const { received, closedAfterMs } = await converse([GET('/readyz')], 0);
    expect(statuses(received)).toEqual([200]);
    expect(closedAfterMs).toBeLessThan(bound);
  });

  it('dripping a second request head after its answer: 408, then closed', async () => {
    const { received, closedAfterMs } = await converse([GET('/readyz'), ...GET('/readyz')], 100);
    expect(statuses(received)).toEqual([200, 408]);
    expect(closedAfterMs).toBeLessThan(bound + 100);
  });
});

describe('the server keeps serving', () => {
  it('after clients that reset before and after speaking', async () => {
    for (const speak of [false, true]) {
      await new Promise<void>((resolve) => {
        const socket = connect(server.address.port, server.address.host, () => {
          if (speak) socket.write('GET /rea');
          setTimeout(() => {
            socket.resetAndDestroy();
            resolve();
          }, 50);
        });
      });
    }
    const { received } = await converse([GET('/readyz')], 0);
    expect(statuses(received)).toEqual([200]);
  });

  it('close() ends held connections and resolves', async () => {
    const own = await HttpServer.start({ host: '127.0.1.41', port: 0 }, () => undefined);
    const socket = connect(own.address.port, own.address.host);
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    const started = performance.now();
    await own.close();
    await closed;
    expect(performance.now() - started).toBeLessThan(500);
  });
});
