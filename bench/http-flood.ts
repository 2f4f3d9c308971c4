// /readyz under a noisy neighbour: how fast the operator endpoints of both commands answer, alone
// and while 10,000 connections open, sit idle and close around them (test/helpers/flood.ts: silent
// connections from 8 loopback addresses, each closed by the flood within 2 s or by the server,
// and reopened at once). Each request is a new connection, as the kubelet's probes are.
//
//   npx tsc -p tsconfig.build.json
//   flock /tmp/ef-integration.lock node --import ./bench/register.js bench/http-flood.ts
//   BENCH_SAMPLES=2000 BENCH_FLOOD=20000 node --import ./bench/register.js bench/http-flood.ts
//   "$(bash bench/lib/image-node.sh)" --import ./bench/register.js bench/http-flood.ts   (the image's Node.js)
//
// Needs root (Squid drops to `proxy`) and apt squid; binds 127.0.1.10-13 (bench/lib/fleet.ts) and
// floods from 127.0.3.1-8. Prints p50/p99/max per server and phase and writes them to
// bench/results/http-flood.json. The goal: /readyz p99 under 50 ms during the flood.
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Address, type DnsProcess, httpGet, startDnsServer } from '../test/helpers/dns-process.js';
import { startFlood } from '../test/helpers/flood.js';
import { endGroup } from '../test/helpers/process.js';
import { type SidecarProcess, startSidecarProcess } from '../test/helpers/sidecar-process.js';
import { waitFor } from '../test/helpers/wait.js';
import { startFleet } from './lib/fleet.js';
import { IMAGE_NODE_OPTIONS, SIDECAR_NODE_OPTIONS } from './lib/image-env.js';
import { withNodeFlags } from './lib/node-flags.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1_000);
const FLOOD = Number(process.env.BENCH_FLOOD ?? 10_000);
/**
 * New flood connections a second at most: 10,000 connections living 1 s on average churn at
 * 10,000 a second. The storm phase has no bound: as fast as the flood processes can reconnect.
 */
const RATE = Number(process.env.BENCH_RATE ?? 10_000);
const ONLY = process.env.BENCH_ONLY;
/**
 * BENCH_PIN=1: the servers on core 0, the flood on core 1, as a neighbour on cores (or a node) of
 * its own would be; unpinned, the flood's own connects and closes take CPU from the servers.
 */
const PIN = process.env.BENCH_PIN === '1';
/** BENCH_NODE_FLAGS: flags for the servers' node that NODE_OPTIONS refuses, e.g. '--cpu-prof'. */
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS;
/** BENCH_SIDECAR_NODE_OPTIONS: the sidecar's NODE_OPTIONS instead of the manifests', to compare. */
const SIDECAR_OPTIONS = process.env.BENCH_SIDECAR_NODE_OPTIONS ?? SIDECAR_NODE_OPTIONS;
const LIFE_MS = 2_000;
const GAP_MS = 10;
// A connection bound to a source address takes its port at bind(), where a port in TIME_WAIT is
// not reused: about 470 new connections a second per address, so many addresses.
const SOURCES = Array.from({ length: 64 }, (_, i) => `127.0.3.${i + 1}`);
const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results/http-flood.json');

/**
 * One GET on a new connection: ms to the whole answer (Infinity if none within 2 s), and ms to the
 * TCP handshake (a SYN dropped by a full accept queue shows here, as a second or more).
 */
function timedGet(
  address: Address,
  path: string,
): Promise<{ ms: number; connectMs: number; status: number }> {
  const started = performance.now();
  let connectMs = Number.NaN;
  return new Promise((resolve) => {
    const req = request({ ...address, path, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ ms: performance.now() - started, connectMs, status: res.statusCode ?? 0 }),
      );
    });
    req.once('socket', (socket) =>
      socket.once('connect', () => {
        connectMs = performance.now() - started;
      }),
    );
    const fail = () => resolve({ ms: Number.POSITIVE_INFINITY, connectMs, status: 0 });
    req.once('timeout', () => req.destroy());
    req.once('error', fail);
    req.end();
  });
}

interface Phase {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** The TCP handshake's p99 alone. */
  readonly connectP99: number;
  /** Requests without an answer within 2 s. */
  readonly failed: number;
  readonly statuses: readonly number[];
  readonly samples: number;
  /** Connections the flood opened during the phase (0 without one). */
  readonly floodOpened: number;
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

type PhaseName = 'alone' | 'flood' | 'storm';
const PHASES: readonly PhaseName[] = ['alone', 'flood', 'storm'];

async function measure(address: Address, phase: PhaseName): Promise<Phase> {
  const flood =
    phase === 'alone'
      ? undefined
      : startFlood({
          targets: [address],
          connections: FLOOD,
          sources: SOURCES,
          lifeMs: LIFE_MS,
          ...(phase === 'flood' ? { ratePerSec: RATE } : {}),
          ...(PIN ? { cpus: '1' } : {}),
        });
  try {
    const openedBefore = flood
      ? (await flood.until((c) => c.opened >= FLOOD, `the flood to open ${FLOOD} connections`, 60_000)).opened
      : 0;
    const times: number[] = [];
    const connects: number[] = [];
    let failed = 0;
    const statuses = new Set<number>();
    for (let i = 0; i < SAMPLES; i++) {
      const { ms, connectMs, status } = await timedGet(address, '/readyz');
      if (status === 0) failed += 1;
      statuses.add(status);
      times.push(ms);
      connects.push(Number.isNaN(connectMs) ? Number.POSITIVE_INFINITY : connectMs);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
    const floodOpened = flood ? (flood.counts()?.opened ?? 0) - openedBefore : 0;
    times.sort((a, b) => a - b);
    connects.sort((a, b) => a - b);
    return {
      connectP99: quantile(connects, 0.99),
      p50: quantile(times, 0.5),
      p99: quantile(times, 0.99),
      max: times.at(-1) as number,
      failed,
      statuses: [...statuses],
      samples: SAMPLES,
      floodOpened,
    };
  } finally {
    await flood?.stop();
  }
}

const fleet = await startFleet();
const squid = fleet.squids[0];
if (!squid) throw new Error('no squid');
const probe = { targets: [fleet.targetUrl], interval: '1s', timeout: '500ms' };
const results: Record<string, Partial<Record<PhaseName, Phase>>> = {};
let dns: DnsProcess | undefined;
let sidecar: SidecarProcess | undefined;
try {
  // Each server with the NODE_OPTIONS it is deployed with: the image's for dns, the Squid
  // manifests' (--jitless among them) for the sidecar.
  const pinned = PIN ? ['taskset', '-c', '0'] : [];
  dns = await startDnsServer(
    {
      probe,
      services: [{ name: 'proxy', pools: [{ name: 'a', proxy: squid.address, address: '10.0.0.1' }] }],
    },
    { wrapper: withNodeFlags(NODE_FLAGS, pinned), env: { NODE_OPTIONS: IMAGE_NODE_OPTIONS } },
  );
  sidecar = await startSidecarProcess(
    { proxy: squid.address, ...probe },
    { wrapper: withNodeFlags(NODE_FLAGS, [...pinned, 'env', `NODE_OPTIONS=${SIDECAR_OPTIONS}`]) },
  );
  for (const [name, address] of [
    ['dns', dns.httpAddress],
    ['sidecar', sidecar.address],
  ] as const) {
    if (ONLY && ONLY !== name) continue;
    await waitFor(
      async () => {
        const { status, body } = await httpGet(address, '/readyz');
        // 503 is an answer too (e.g. a bench Squid that refuses the origin's port): what is
        // measured is how fast the endpoint answers, not what.
        if (status !== 200 && status !== 503) throw new Error(`/readyz ${status}: ${body}`);
        return true;
      },
      { timeoutMs: 20_000, what: `${name} ready` },
    );
    const phases: Partial<Record<PhaseName, Phase>> = {};
    for (const phase of PHASES) {
      phases[phase] = await measure(address, phase);
      console.log(`${name} ${phase}: ${JSON.stringify(phases[phase])}`);
    }
    results[name] = phases;
  }
} finally {
  // Stopped before disposed: a server stopped by SIGTERM writes its CPU profile, one killed does not.
  await Promise.allSettled([dns?.stop(), sidecar && endGroup(sidecar.proc, 'SIGTERM')]);
  await Promise.allSettled([dns?.dispose(), sidecar?.dispose()]);
  await fleet.stop();
}

const f = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : 'none');
console.log(
  `\nNode.js ${process.version}; sidecar NODE_OPTIONS: ${SIDECAR_OPTIONS}\n/readyz${PIN ? ' (servers on core 0, flood on core 1)' : ''}, ${SAMPLES} requests per phase, each on a new connection; flood: ${FLOOD} connections living up to ${LIFE_MS} ms, at most ${RATE} new a second; storm: the same, unbounded\n`,
);
console.log(
  '| server | phase | p50 ms | p99 ms | max ms | p99 of the handshake ms | failed | flood connections opened meanwhile |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [name, phases] of Object.entries(results)) {
  for (const [phase, r] of Object.entries(phases))
    console.log(
      `| ${name} | ${phase} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.connectP99)} | ${r.failed} | ${r.floodOpened || '-'} |`,
    );
}
await writeFile(
  RESULTS,
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, sidecarNodeOptions: SIDECAR_OPTIONS, cpus: cpus().length, loadavg: loadavg(), flood: FLOOD, rate: RATE, pinned: PIN, samples: SAMPLES, results }, null, 2)}\n`,
);
