// A pool read from its pods' sidecars (config `sidecars`) against pools probed directly by every DNS
// replica: the outside's load, how long two replicas disagree after a fault, and the failover time.
//
//   npx tsc -p tsconfig.build.json && flock /tmp/ef-integration.lock node --import ./bench/register.js bench/sidecars.ts
//   BENCH_REPEAT=5 BENCH_WINDOW_S=60 ...      (defaults: 3 faults per mode, 30 s count windows)
//   BENCH_MODES=sidecars-5s ...               (default direct,sidecars; results/sidecars-MODES.json)
//
// Needs root (the origin binds 127.0.0.10:80, /etc/hosts gets the pods' names), apt squid.
// Everything is real and in its own process: Squids, `egress-failover sidecar` per "pod",
// `egress-failover dns` replicas, each DNS replica on its own loopback address.
//
// Setup: two pools of two pods each (primary 127.0.0.161-162, secondary 127.0.0.163-164: Squid
// :3128 and a sidecar :8081 per pod), each pool's pods under one name in /etc/hosts as a headless
// Service gives them; origin 127.0.0.10:80 (origin.test) counts every request, by path. Two targets
// per check (quorum 1), as k8s/dns.yaml ships. DNS replicas 127.0.0.171-175.
//   direct:   the shipped DNS settings (interval 2s, primary 1s, timeout 1s, fall 2, rise 2,
//             fastInterval 200ms), each pool probed through its first pod's Squid (one pod behind
//             the ClusterIP, as a connection lands on one); the sidecars at the settings shipped
//             before `sidecars` (interval 5s, timeout 3s, fall 3, rise 1, fastInterval 500ms).
//   sidecars: the same DNS settings, the pools read from their pods' sidecars (minReady 1); the
//             sidecars at the settings `sidecars` needs (SIDECAR_FAST below).
//   sidecars-5s (BENCH_MODES=sidecars-5s): `sidecars` with the sidecars left as shipped before it.
// Measured:
//   1. outside requests per minute at the origin, DNS probes and sidecar checks apart, with 1, 3
//      and 5 DNS replicas (a window of BENCH_WINDOW_S after every replica has its verdict);
//   2. with 2 replicas, BENCH_REPEAT times each way and fault: both primary pods lose egress
//      (no-egress: squid -k reconfigure, 503 ERR_CONNECT_FAIL) or hang (SIGSTOP: every check
//      times out), then recover. Each replica is asked over UDP every
//      POLL_MS; failover = from the fault's injection to the first replica answering the secondary
//      (and to the last); the disagreement window = the time between the two replicas' flips.
//
// Prints tables and writes every sample to bench/results/sidecars.json.
import dgram from 'node:dgram';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DnsProcess, startDnsServer } from '../test/helpers/dns-process.js';
import { HostsFile } from '../test/helpers/hosts.js';
import { type Origin, startOrigin } from '../test/helpers/origin.js';
import { type SidecarProcess, startSidecarProcess } from '../test/helpers/sidecar-process.js';
import { type Squid, type SquidFleet, startSquids } from '../test/helpers/squid.js';
import { waitFor } from '../test/helpers/wait.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Which setups to run (comma-separated): direct, sidecars, sidecars-5s. */
const MODES = (process.env.BENCH_MODES ?? 'direct,sidecars').split(',') as Mode[];
const RESULTS = join(
  HERE,
  `results/${process.env.BENCH_MODES ? `sidecars-${MODES.join('-')}` : 'sidecars'}.json`,
);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 30);
const POLL_MS = 20;
const PRIMARY = '10.0.0.1';
const SECONDARY = '10.0.0.2';
const REPLICA_HOSTS = ['127.0.0.171', '127.0.0.172', '127.0.0.173', '127.0.0.174', '127.0.0.175'];

const POOLS = [
  { name: 'primary', address: PRIMARY, pods: ['127.0.0.161', '127.0.0.162'], interval: '1s' },
  { name: 'secondary', address: SECONDARY, pods: ['127.0.0.163', '127.0.0.164'], interval: undefined },
] as const;
const podsName = (pool: string) => `${pool}-pods.ef-bench.test`;

/** k8s/dns.yaml's probe block; damping off, as the bench fails the primary over and over. */
const DNS_PROBE = {
  interval: '2s',
  timeout: '1s',
  rise: 2,
  fall: 2,
  fastInterval: '200ms',
  flapThreshold: 0,
};
const DNS_TARGETS = ['http://origin.test/dns-a', 'http://origin.test/dns-b'];
const SIDECAR_TARGETS = ['http://origin.test/sidecar-a', 'http://origin.test/sidecar-b'];
/** The sidecar as shipped before `sidecars`: kubelet's readiness only. */
const SIDECAR_SHIPPED = { interval: '5s', timeout: '3s', rise: 1, fall: 3, fastInterval: '500ms' };
/** The sidecar when the DNS servers read it: it carries detection now. */
const SIDECAR_FAST = { interval: '1s', timeout: '1s', rise: 1, fall: 2, fastInterval: '200ms' };

/** sidecars-5s: the pools read from their pods' sidecars left at the shipped sidecar settings. */
type Mode = 'direct' | 'sidecars' | 'sidecars-5s';

function dnsConfig(mode: Mode, host: string) {
  return {
    dns: { listen: `${host}:5353`, ttl: 1 },
    http: { listen: `${host}:0` },
    probe: { ...DNS_PROBE, targets: DNS_TARGETS, quorum: 1 },
    services: [
      {
        name: 'proxy',
        pools: POOLS.map((pool) => ({
          name: pool.name,
          proxy: `http://${pool.pods[0]}:3128`,
          address: pool.address,
          ...(pool.interval ? { probe: { interval: pool.interval } } : {}),
          ...(mode !== 'direct'
            ? { sidecars: { url: `http://${podsName(pool.name)}:8081/readyz`, minReady: 1 } }
            : {}),
        })),
      },
    ],
  };
}

// ---- a DNS A query over UDP, small enough to ask every 20 ms without spawning dig ----------------

function aQuery(id: number, name: string): Buffer {
  const labels = name
    .split('.')
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(1, 4); // one question, no recursion asked
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** "SERVFAIL", or the first A record's address (our answers carry one per pool address). */
function firstA(reply: Buffer): string {
  const rcode = reply.readUInt16BE(2) & 0xf;
  if (rcode !== 0) return rcode === 2 ? 'SERVFAIL' : `RCODE${rcode}`;
  if (reply.readUInt16BE(6) === 0) return 'NODATA';
  // Question: name (uncompressed) + 4; answer: name pointer (2) + type, class, ttl, rdlength (10).
  let at = 12;
  while (reply[at] !== 0) at += (reply[at] as number) + 1;
  at += 5 + 12;
  return [...reply.subarray(at, at + 4)].join('.');
}

function ask(server: { host: string; port: number }, timeoutMs = 500): Promise<string> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const id = Math.floor(Math.random() * 65_535);
    const timer = setTimeout(() => done('TIMEOUT'), timeoutMs);
    const done = (answer: string) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    socket.on('message', (reply) => {
      if (reply.readUInt16BE(0) === id) done(firstA(reply));
    });
    socket.on('error', () => done('ERROR'));
    socket.send(aQuery(id, 'proxy.egress.svc'), server.port, server.host);
  });
}

// ---- the rig -------------------------------------------------------------------------------------

const hosts = new HostsFile('bench-sidecars');
let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
let sidecars: SidecarProcess[] = [];
let replicas: DnsProcess[] = [];

async function startSidecars(settings: Record<string, unknown>): Promise<void> {
  await Promise.all(sidecars.map((s) => s.dispose()));
  sidecars = await Promise.all(
    POOLS.flatMap((pool) =>
      pool.pods.map((pod) =>
        startSidecarProcess({
          listen: `${pod}:8081`,
          proxy: `http://${pod}:3128`,
          targets: SIDECAR_TARGETS,
          quorum: 1,
          ...settings,
        }),
      ),
    ),
  );
}

async function startReplicas(mode: Mode, count: number): Promise<void> {
  await stopReplicas();
  // One after another, a random part of an interval apart: replicas of a Deployment start at
  // different times, so their rounds are out of phase. Started together, their rounds would stay
  // in step (only the 5 % jitter pulls them apart), and they would agree sooner than in a cluster.
  replicas = [];
  for (const host of REPLICA_HOSTS.slice(0, count)) {
    replicas.push(await startDnsServer(dnsConfig(mode, host)));
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 2_000));
  }
  await waitFor(
    async () => (await Promise.all(replicas.map((r) => ask(r.dnsAddress)))).every((a) => a === PRIMARY),
    {
      timeoutMs: 30_000,
      what: `${count} ${mode} replica(s) answering the primary`,
    },
  );
}

async function stopReplicas(): Promise<void> {
  await Promise.all(replicas.map((r) => r.dispose()));
  replicas = [];
}

function countSince(from: number, prefix: string): number {
  return (origin?.requests ?? []).filter(
    (r) => r.at >= from && new URL(r.url, 'http://x').pathname.startsWith(prefix),
  ).length;
}

interface LoadSample {
  readonly mode: Mode;
  readonly replicas: number;
  readonly windowS: number;
  readonly dnsPerMin: number;
  readonly sidecarPerMin: number;
}

async function measureLoad(mode: Mode, count: number): Promise<LoadSample> {
  await startReplicas(mode, count);
  const from = Date.now();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000));
  const perMin = (n: number) => Math.round((n * 60) / WINDOW_S);
  const sample = {
    mode,
    replicas: count,
    windowS: WINDOW_S,
    dnsPerMin: perMin(countSince(from, '/dns-')),
    sidecarPerMin: perMin(countSince(from, '/sidecar-')),
  };
  console.log(
    `  ${mode} x${count}: DNS probes ${sample.dnsPerMin}/min, sidecars ${sample.sidecarPerMin}/min`,
  );
  return sample;
}

interface Fault {
  readonly name: 'no-egress' | 'hang';
  inject(squid: Squid): Promise<void>;
  restore(squid: Squid): Promise<void>;
}

const FAULTS: readonly Fault[] = [
  { name: 'no-egress', inject: (squid) => squid.cutEgress(), restore: (squid) => squid.restoreEgress() },
  { name: 'hang', inject: async (squid) => squid.stop(), restore: async (squid) => squid.cont() },
];

interface FlipSample {
  readonly mode: Mode;
  readonly fault: Fault['name'];
  readonly direction: 'failover' | 'failback';
  /** From the fault's (or restoration's) injection to each replica's first answer of the other pool. */
  readonly flipsMs: readonly number[];
  readonly firstMs: number;
  readonly lastMs: number;
  /** The time the two replicas answered differently. */
  readonly disagreeMs: number;
}

/** Polls every replica until each has answered `expected`; the time of each one's first such answer. */
async function flips(started: number, expected: string, deadlineMs = 60_000): Promise<number[]> {
  const at: (number | undefined)[] = replicas.map(() => undefined);
  while (at.some((t) => t === undefined)) {
    if (Date.now() - started > deadlineMs) throw new Error(`no flip to ${expected} within ${deadlineMs} ms`);
    const answers = await Promise.all(replicas.map((r) => ask(r.dnsAddress)));
    const now = Date.now();
    answers.forEach((answer, i) => {
      if (answer === expected && at[i] === undefined) at[i] = now - started;
    });
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return at as number[];
}

function flipSample(
  mode: Mode,
  fault: Fault['name'],
  direction: FlipSample['direction'],
  flipsMs: number[],
): FlipSample {
  const firstMs = Math.min(...flipsMs);
  const lastMs = Math.max(...flipsMs);
  const sample = { mode, fault, direction, flipsMs, firstMs, lastMs, disagreeMs: lastMs - firstMs };
  console.log(
    `  ${mode} ${fault} ${direction}: first ${firstMs} ms, last ${lastMs} ms, disagree ${sample.disagreeMs} ms`,
  );
  return sample;
}

async function measureFlips(mode: Mode): Promise<FlipSample[]> {
  await startReplicas(mode, 2);
  const primaries = (fleet?.squids ?? []).filter((s) =>
    (POOLS[0].pods as readonly string[]).includes(s.host),
  );
  const samples: FlipSample[] = [];
  for (let i = 0; i < REPEAT * FAULTS.length; i++) {
    const fault = FAULTS[i % FAULTS.length] as Fault;
    // Steady first: both replicas on the primary, the pods' sidecars ready again.
    await waitFor(
      async () => (await Promise.all(replicas.map((r) => ask(r.dnsAddress)))).every((a) => a === PRIMARY),
      {
        timeoutMs: 30_000,
        what: 'both replicas on the primary',
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000 + Math.random() * 2_000));
    let started = Date.now();
    await Promise.all(primaries.map((squid) => fault.inject(squid)));
    samples.push(flipSample(mode, fault.name, 'failover', await flips(started, SECONDARY)));
    await new Promise((resolve) => setTimeout(resolve, 1_000 + Math.random() * 2_000));
    started = Date.now();
    await Promise.all(primaries.map((squid) => fault.restore(squid)));
    samples.push(flipSample(mode, fault.name, 'failback', await flips(started, PRIMARY)));
  }
  return samples;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : Math.round(((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2);
}

async function main(): Promise<void> {
  origin = await startOrigin();
  fleet = await startSquids(
    POOLS.flatMap((pool) => pool.pods.map((pod, i) => ({ label: `${pool.name}-${i}`, host: pod }))),
    { probeUrl: SIDECAR_TARGETS[0] },
  );
  for (const pool of POOLS) await hosts.set(podsName(pool.name), pool.pods);

  const load: LoadSample[] = [];
  const flipsOf: FlipSample[] = [];
  for (const mode of MODES) {
    console.log(`${mode}:`);
    await startSidecars(mode === 'sidecars' ? SIDECAR_FAST : SIDECAR_SHIPPED);
    for (const count of [1, 3, 5]) load.push(await measureLoad(mode, count));
    flipsOf.push(...(await measureFlips(mode)));
    await stopReplicas();
  }

  console.log('\nOutside requests per minute (at the origin)');
  console.log(`| replicas | ${MODES.map((m) => `${m}: total (DNS + sidecars)`).join(' | ')} |`);
  console.log(`| ---: | ${MODES.map(() => '---:').join(' | ')} |`);
  for (const count of [1, 3, 5]) {
    const cells = MODES.map((mode) => {
      const x = load.find((l) => l.mode === mode && l.replicas === count) as LoadSample;
      return `${x.dnsPerMin + x.sidecarPerMin} (${x.dnsPerMin} + ${x.sidecarPerMin})`;
    });
    console.log(`| ${count} | ${cells.join(' | ')} |`);
  }
  console.log(`\nTwo replicas, ${REPEAT} faults of each kind each way: median (min-max) ms`);
  console.log(
    '| mode | fault | direction | first replica flips | last replica flips | disagreement window |',
  );
  console.log('| --- | --- | --- | ---: | ---: | ---: |');
  for (const mode of MODES) {
    for (const [fault, direction] of FAULTS.flatMap((f) =>
      (['failover', 'failback'] as const).map((d) => [f.name, d] as const),
    )) {
      const of = flipsOf.filter((f) => f.mode === mode && f.fault === fault && f.direction === direction);
      const cell = (pick: (f: FlipSample) => number) => {
        const values = of.map(pick);
        return `${median(values)} (${Math.min(...values)}-${Math.max(...values)})`;
      };
      console.log(
        `| ${mode} | ${fault} | ${direction} | ${cell((f) => f.firstMs)} | ${cell((f) => f.lastMs)} | ${cell((f) => f.disagreeMs)} |`,
      );
    }
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(
    RESULTS,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        machine: { cpus: cpus().length, loadavg: loadavg() },
        settings: {
          dns: DNS_PROBE,
          primaryInterval: '1s',
          sidecarShipped: SIDECAR_SHIPPED,
          sidecarFast: SIDECAR_FAST,
        },
        repeat: REPEAT,
        windowS: WINDOW_S,
        load,
        flips: flipsOf,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwritten: ${RESULTS}`);
}

try {
  await main();
} finally {
  await stopReplicas();
  await Promise.all(sidecars.map((s) => s.dispose()));
  await fleet?.stopAll();
  await origin?.close();
  await hosts.clear();
}
