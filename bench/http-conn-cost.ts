// What a silent connection costs the operator HTTP server (src/http/server.ts): server CPU per
// connection while a flood (test/helpers/flood.ts) keeps 5,000 silent connections churning at up
// to 5,000 new a second against it, the server pinned to core 0 and the flood to core 1. The
// server holds at most its cap (a quarter of the fd limit, at most 1,024), so nearly every newcomer
// evicts the connection idle the longest: one accept and one close per flood connection. The
// inverse is the churn one core can absorb, the ceiling behind bench/http-flood.ts's tail.
//
// Measured in the same run against two peers with the same cap and eviction: node:http taking
// every connection itself (how ours was built before it handed connections over only once they
// speak), and a bare net.Server that accepts and evicts and speaks no HTTP at all (the floor).
//
//   npx tsc -p tsconfig.build.json && taskset -c 0 node --import ./bench/register.js bench/http-conn-cost.ts
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { ConnectionSlots } from '../src/http/connection-cap.js';
import { HttpServer } from '../src/http/server.js';
import { startFlood } from '../test/helpers/flood.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const CONNECTIONS = 5_000;
const CAP = 1_024;
const HOST = '127.0.1.40';

interface Server {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** A peer: `server` (listening or not) admits like ours, evicting the connection idle longest. */
async function peer(kind: 'node:http' | 'net floor'): Promise<Server> {
  const slots = new ConnectionSlots<Socket>(CAP);
  const server: net.Server =
    kind === 'node:http'
      ? http.createServer({ headersTimeout: 1_000, connectionsCheckingInterval: 250 }, (_req, res) =>
          res.end('ok'),
        )
      : net.createServer();
  server.on('connection', (socket: Socket) => {
    const admission = slots.admit(socket, performance.now());
    if (!admission.admitted) return socket.destroy();
    admission.evicted?.destroy();
    socket.once('close', () => slots.closed(socket));
    if (kind === 'net floor') socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0, backlog: 4_096 }, resolve));
  const info = server.address() as AddressInfo;
  return {
    address: { host: info.address, port: info.port },
    close: async () => {
      for (const socket of slots.all()) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function ours(): Promise<Server> {
  const server = await HttpServer.start({ host: HOST, port: 0 }, async () => ({
    status: 200,
    contentType: 'text/plain',
    body: 'ok',
  }));
  return { address: server.address, close: () => server.close() };
}

/** µs of this process's CPU per flood connection, user and system. */
async function measure(server: Server): Promise<{ user: number; system: number; opened: number }> {
  const flood = startFlood({
    targets: [server.address],
    connections: CONNECTIONS,
    sources: Array.from({ length: 32 }, (_, i) => `127.0.3.${i + 1}`),
    lifeMs: 2_000,
    ratePerSec: CONNECTIONS,
    cpus: '1',
  });
  try {
    await flood.until((c) => c.opened >= CONNECTIONS, `the flood to open ${CONNECTIONS}`, 60_000);
    const startCpu = process.cpuUsage();
    const startOpened = flood.counts()?.opened ?? 0;
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1_000));
    const cpu = process.cpuUsage(startCpu);
    const opened = (flood.counts()?.opened ?? 0) - startOpened;
    return { user: cpu.user / opened, system: cpu.system / opened, opened };
  } finally {
    await flood.stop();
    await server.close();
  }
}

const kinds = { ours, 'node:http': () => peer('node:http'), 'net floor': () => peer('net floor') };
const runs: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
// Interleaved, so a change in the machine's load touches every kind alike.
for (let r = 0; r < REPEATS; r++) {
  for (const [name, start] of Object.entries(kinds)) {
    const { user, system, opened } = await measure(await start());
    runs[name]?.push(user + system);
    console.log(
      `${name}: ${opened} connections in ${SECONDS} s, ${(user + system).toFixed(1)} µs a connection (user ${user.toFixed(1)}, system ${system.toFixed(1)})`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
console.log(`\nmedian of ${REPEATS}, server CPU per silent flood connection (accept, evict, close):\n`);
console.log('| server | µs a connection | connections a second on one core | against node:http |');
console.log('| --- | --- | --- | --- |');
for (const [name, us] of Object.entries(m))
  console.log(
    `| ${name} | ${us.toFixed(1)} | ${Math.round(1e6 / us)} | ${(us / (m['node:http'] as number)).toFixed(2)} |`,
  );
