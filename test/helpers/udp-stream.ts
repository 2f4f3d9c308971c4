// A steady stream of UDP queries, one every few ms from one socket, each timed from send to answer:
// did the server keep answering, and how late was the latest answer, while something else went on.
// Independent of vitest so bench scripts can import it.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** The stream in this process, which can also say how many queries it has sent so far. */
export interface LocalUdpStream extends UdpStream {
  sent(): number;
}

export function startUdpStream(
  server: { host: string; port: number },
  { name = 'proxy.egress.svc', intervalMs = 5, lostAfterMs = 2_000 } = {},
): LocalUdpStream {
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
    sent: () => sent,
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

/**
 * The same stream from a process of its own (udp-stream-child.ts), so that what this process does
 * meanwhile (parsing thousands of the server's log lines, say) cannot delay the answers it times;
 * at a higher priority where allowed (root), so that on a 2-core machine a busy server and its
 * config parser do not make the measurer late instead.
 */
export function startUdpStreamProcess(
  server: { host: string; port: number },
  { name = 'proxy.egress.svc', intervalMs = 5, lostAfterMs = 2_000 } = {},
): UdpStream {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const child = spawn(
    'nice',
    [
      '-n',
      '-10',
      process.execPath,
      '--import',
      join(root, 'bench/register.js'),
      join(root, 'test/helpers/udp-stream-child.ts'),
      JSON.stringify({ server, name, intervalMs, lostAfterMs }),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop(lateAfterMs) {
      child.stdin.end(`${lateAfterMs}\n`);
      await exited;
      return JSON.parse(output) as StreamResult;
    },
  };
}
