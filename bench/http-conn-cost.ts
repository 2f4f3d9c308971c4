// What a silent connection costs the operator HTTP server (src/http/server.ts): server CPU per
// connection while a flood (test/helpers/flood.ts) keeps 5,000 silent connections churning at up
// to 5,000 new a second against it, the server pinned to core 0 and the flood to core 1. The
// server holds at most its cap (a quarter of the fd limit, at most 1,024), so nearly every newcomer
// evicts the connection idle the longest: one accept and one close per flood connection. The
// inverse is the churn one core can absorb, the ceiling behind bench/http-flood.ts's tail.
//
//   npx tsc -p tsconfig.build.json && taskset -c 0 node --import ./bench/register.js bench/http-conn-cost.ts
import { HttpServer } from '../src/http/server.js';
import { startFlood } from '../test/helpers/flood.js';

const SECONDS = 10;
const CONNECTIONS = 5_000;
const server = await HttpServer.start({ host: '127.0.1.40', port: 0 }, async () => ({
  status: 200,
  contentType: 'text/plain',
  body: 'ok',
}));
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
  const us = cpu.user + cpu.system;
  console.log(
    `${opened} connections in ${SECONDS} s; server CPU ${(us / 1e6).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)}, ` +
      `system ${(cpu.system / 1e6).toFixed(2)}): ${(us / opened).toFixed(1)} µs a connection, ` +
      `at most ${Math.round(1e6 / (us / opened))} a second on one core; shed ${JSON.stringify(server.shed)}`,
  );
} finally {
  await flood.stop();
  await server.close();
}
