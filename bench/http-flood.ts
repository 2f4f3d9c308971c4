// /readyz under a noisy neighbour: how fast the operator endpoints of both commands answer, alone
// and while 10,000 connections open, sit idle and close around them (test/helpers/flood.ts: silent
// connections from 8 loopback addresses, each closed by the flood within 2 s or by the server,
// and reopened at once). Each request is a new connection, as the kubelet's probes are.
//
//   npx tsc -p tsconfig.build.json
//   flock /tmp/ef-integration.lock node --import ./bench/register.js bench/http-flood.ts
//   BENCH_SAMPLES=2000 BENCH_FLOOD=20000 node --import ./bench/register.js bench/http-flood.ts
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
import { type SidecarProcess, startSidecarProcess } from '../test/helpers/sidecar-process.js';
import { waitFor } from '../test/helpers/wait.js';
import { startFleet } from './lib/fleet.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1_000);
const FLOOD = Number(process.env.BENCH_FLOOD ?? 10_000);
const LIFE_MS = 2_000;
const GAP_MS = 10;
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.3.${i + 1}`);
const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results/http-flood.json');

/** One GET on a new connection: ms to the whole answer, or Infinity if none within 2 s. */
function timedGet(address: Address, path: string): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request({ ...address, path, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0 }));
    });
    const fail = () => resolve({ ms: Number.POSITIVE_INFINITY, status: 0 });
    req.once('timeout', () => req.destroy());
    req.once('error', fail);
    req.end();
  });
}

interface Phase {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Requests without a 200 within 2 s. */
  readonly failed: number;
  readonly samples: number;
  /** Connections the flood opened during the phase (0 without one). */
  readonly floodOpened: number;
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

async function measure(address: Address, flooding: boolean): Promise<Phase> {
  const flood = flooding
    ? startFlood({ targets: [address], connections: FLOOD, sources: SOURCES, lifeMs: LIFE_MS })
    : undefined;
  try {
    const openedBefore = flood
      ? (await flood.until((c) => c.opened >= FLOOD, `the flood to open ${FLOOD} connections`, 60_000)).opened
      : 0;
    const times: number[] = [];
    let failed = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const { ms, status } = await timedGet(address, '/readyz');
      if (status !== 200) failed += 1;
      times.push(ms);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
    const floodOpened = flood ? (flood.counts()?.opened ?? 0) - openedBefore : 0;
    times.sort((a, b) => a - b);
    return {
      p50: quantile(times, 0.5),
      p99: quantile(times, 0.99),
      max: times.at(-1) as number,
      failed,
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
const results: Record<string, { alone: Phase; flood: Phase }> = {};
let dns: DnsProcess | undefined;
let sidecar: SidecarProcess | undefined;
try {
  dns = await startDnsServer({
    probe,
    services: [{ name: 'proxy', pools: [{ name: 'a', proxy: squid.address, address: '10.0.0.1' }] }],
  });
  sidecar = await startSidecarProcess({ proxy: squid.address, ...probe });
  for (const [name, address] of [
    ['dns', dns.httpAddress],
    ['sidecar', sidecar.address],
  ] as const) {
    await waitFor(
      async () => {
        const { status, body } = await httpGet(address, '/readyz');
        if (status !== 200) throw new Error(`/readyz ${status}: ${body}`);
        return true;
      },
      { timeoutMs: 20_000, what: `${name} ready` },
    );
    const alone = await measure(address, false);
    console.log(`${name} alone: ${JSON.stringify(alone)}`);
    const flood = await measure(address, true);
    console.log(`${name} flood: ${JSON.stringify(flood)}`);
    results[name] = { alone, flood };
  }
} finally {
  await Promise.allSettled([dns?.dispose(), sidecar?.dispose()]);
  await fleet.stop();
}

const f = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : 'none');
console.log(
  `\n/readyz, ${SAMPLES} requests per phase, each on a new connection; flood: ${FLOOD} connections\n`,
);
console.log('| server | phase | p50 ms | p99 ms | max ms | failed | flood connections opened meanwhile |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [name, { alone, flood }] of Object.entries(results)) {
  for (const [phase, r] of [
    ['alone', alone],
    ['flood', flood],
  ] as const)
    console.log(
      `| ${name} | ${phase} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${r.failed} | ${r.floodOpened || '-'} |`,
    );
}
await writeFile(
  RESULTS,
  `${JSON.stringify({ at: new Date().toISOString(), cpus: cpus().length, loadavg: loadavg(), flood: FLOOD, samples: SAMPLES, results }, null, 2)}\n`,
);
