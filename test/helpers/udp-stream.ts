// A steady stream of UDP queries, one every few ms from one socket, each timed from send to answer:
// did the server keep answering, and how late was the latest answer, while something else went on.
// Independent of vitest so bench scripts can import it.
import dgram from 'node:dgram';
import { query } from './dns-clients.js';

export interface StreamResult {
  readonly sent: number;
  readonly answered: number;
  /** Sent and never answered (not within `lostAfterMs`). */
  readonly lost: number;
  readonly maxMs: number;
  readonly p99Ms: number;
  /** Answers later than the bound given to stop(). */
  readonly late: number;
}

export interface UdpStream {
  /** Stops sending, waits for answers in flight, and sums up. */
  stop(lateAfterMs: number): Promise<StreamResult>;
}

export function startUdpStream(
  server: { host: string; port: number },
  { name = 'proxy.egress.svc', intervalMs = 5, lostAfterMs = 2_000 } = {},
): UdpStream {
  const socket = dgram.createSocket('udp4');
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let lost = 0;
  let sent = 0;
  let id = 0;
  socket.on('message', (reply) => {
    const at = sentAt.get(reply.readUInt16BE(0));
    if (at === undefined) return;
    sentAt.delete(reply.readUInt16BE(0));
    latencies.push(performance.now() - at);
  });
  const expire = () => {
    const now = performance.now();
    for (const [key, at] of sentAt) {
      if (now - at < lostAfterMs) break;
      sentAt.delete(key);
      lost += 1;
    }
  };
  // A timer rather than a loop: if the test's own thread stalls, fewer queries go out, and each
  // one that does is still timed from its own send.
  const timer = setInterval(() => {
    expire();
    id = (id + 1) & 0xffff;
    sentAt.set(id, performance.now());
    sent += 1;
    socket.send(query(id, name), server.port, server.host);
  }, intervalMs);
  return {
    async stop(lateAfterMs) {
      clearInterval(timer);
      const deadline = performance.now() + lostAfterMs;
      while (sentAt.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      lost += sentAt.size;
      socket.close();
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        sent,
        answered: latencies.length,
        lost,
        maxMs: Math.round(sorted.at(-1) ?? 0),
        p99Ms: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0),
        late: latencies.filter((ms) => ms > lateAfterMs).length,
      };
    },
  };
}
