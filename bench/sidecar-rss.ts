// The sidecar's memory at rest, as it runs in every Squid pod: the manifest's NODE_OPTIONS and its
// config's shape (k8s/squid-primary.yaml: attributed liveness and readiness, an http:// and an
// https:// target, interval 5s), against a real Squid and real origins, beside a bare node:http
// server (the floor any Node.js process pays). Each variant runs in processes of its own.
//
//   npx tsc -p tsconfig.build.json
//   flock /tmp/ef-integration.lock node --import ./bench/register.js bench/sidecar-rss.ts [reps=3] [variant ...]
//
// A variant is node flags put before the script (`--no-opt`), `NODE_OPTIONS=...` to replace the
// manifest's, or both joined by a space; '' (the default) is the manifest as it is. Per variant, the
// median of `reps` runs of:
//  - rest: VmRSS 12 s after spawn, the sidecar's own rounds only (the "idle RSS"), and
//    again at 32 s, with the CPU its rounds took in between;
//  - probed: VmRSS after 60 s of the kubelet's and Prometheus' traffic at ten times their pace
//    (/readyz and /health every second, /metrics every 1.5 s), and the peak (VmHWM);
//  - CPU per request: 500 /readyz and 100 /metrics, each on a new connection as the kubelet's;
//  - first /readyz answer after spawn.
// Results also go to bench/results/sidecar-rss.json.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Origin, startOrigin, startTlsOrigin, type TlsOrigin } from '../test/helpers/origin.js';
import { endGroup, type GroupProcess, spawnGroup } from '../test/helpers/process.js';
import { type SquidFleet, startSquids } from '../test/helpers/squid.js';
import { GiveUp, waitFor } from '../test/helpers/wait.js';
import { SIDECAR_NODE_OPTIONS } from './lib/image-env.js';
import { freePort } from './lib/peers.js';
import { cpuSeconds, memory } from './lib/proc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// Another build's launcher (an older commit's, to compare) may be named in SIDECAR_BINARY.
const BINARY = process.env.SIDECAR_BINARY ?? join(ROOT, 'bin/egress-failover.js');
const RESULTS = join(ROOT, 'bench/results/sidecar-rss.json');
// Apart from bench/lib/fleet.ts's 127.0.1.10-13, so this can run beside the other benches.
const ORIGIN_HOST = '127.0.1.20';
const TLS_HOST = '127.0.1.21';
const SQUID_HOST = '127.0.1.22';
const HOST = '127.0.0.1';
const REST_MS = 12_000;
const REST_LATER_MS = 32_000;
const PROBED_MS = 60_000;

/** GET on a new connection, as the kubelet probes: status and body. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 2 s`)));
    req.once('error', reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Variant {
  readonly label: string;
  readonly nodeOptions: string;
  readonly flags: readonly string[];
}

function parseVariant(text: string, shipped: string): Variant {
  let nodeOptions = shipped;
  const flags: string[] = [];
  for (const word of text.split(' ').filter(Boolean)) {
    if (word.startsWith('NODE_OPTIONS='))
      nodeOptions = word.slice('NODE_OPTIONS='.length).replaceAll(',', ' ');
    else flags.push(word);
  }
  return { label: text === '' ? '(manifest)' : text, nodeOptions, flags };
}

interface Run {
  readonly firstAnswerMs: number;
  readonly restMb: number;
  readonly restLaterMb: number;
  /** CPU of the process per second between REST_MS and REST_LATER_MS: its rounds, nothing else. */
  readonly restCpuMsPerS: number;
  readonly probedMb: number;
  readonly hwmMb: number;
  readonly readyzCpuUs: number;
  readonly metricsCpuUs: number;
  /** CPU of the process per second while probed: rounds, probes and scrapes together. */
  readonly probedCpuMsPerS: number;
}

async function spawnAndWait(
  args: readonly string[],
  nodeOptions: string,
  port: number,
  path: string,
): Promise<{ proc: GroupProcess; firstAnswerMs: number }> {
  const started = performance.now();
  const proc = spawnGroup(process.execPath, args, { env: { ...process.env, NODE_OPTIONS: nodeOptions } });
  try {
    await waitFor(
      async () => {
        if (!proc.running()) throw new GiveUp(`exited during start-up:\n${proc.output()}`);
        const { status } = await get(port, path).catch(() => ({ status: 0 }));
        return status === 200 || status === 503;
      },
      { timeoutMs: 15_000, intervalMs: 5, what: `${path} to answer` },
    );
  } catch (err) {
    await endGroup(proc, 'SIGKILL');
    throw err;
  }
  return { proc, firstAnswerMs: performance.now() - started };
}

async function cpuPer(pid: number, port: number, path: string, count: number): Promise<number> {
  const before = cpuSeconds(pid);
  for (let i = 0; i < count; i++) await get(port, path);
  return ((cpuSeconds(pid) - before) / count) * 1e6;
}

async function runSidecar(variant: Variant, configFor: (port: number) => object, dir: string): Promise<Run> {
  const port = await freePort(HOST);
  const configPath = join(dir, `sidecar-${port}.yaml`);
  await writeFile(configPath, `${JSON.stringify(configFor(port), null, 2)}\n`);
  const { proc, firstAnswerMs } = await spawnAndWait(
    [...variant.flags, BINARY, 'sidecar', '--config', configPath],
    variant.nodeOptions,
    port,
    '/readyz',
  );
  try {
    await sleep(REST_MS - firstAnswerMs);
    const restMb = memory(proc.pid).rssMb;
    const restCpu = cpuSeconds(proc.pid);
    await sleep(REST_LATER_MS - REST_MS);
    const restLaterMb = memory(proc.pid).rssMb;
    const restCpuMsPerS = ((cpuSeconds(proc.pid) - restCpu) * 1000) / ((REST_LATER_MS - REST_MS) / 1000);
    const ready = await get(port, '/readyz');
    if (ready.status !== 200) throw new Error(`sidecar not ready: ${ready.body}\n${proc.output()}`);
    const { targets } = JSON.parse(ready.body) as {
      targets: { target: string; ok: boolean; reason: string }[];
    };
    const failing = targets.filter((t) => !t.ok);
    if (failing.length > 0) throw new Error(`targets failing: ${JSON.stringify(failing)}`);
    const cpuBefore = cpuSeconds(proc.pid);
    const until = performance.now() + PROBED_MS;
    let tick = 0;
    while (performance.now() < until) {
      await Promise.all([get(port, '/readyz'), get(port, '/health')]);
      if (tick++ % 3 !== 1) await get(port, '/metrics');
      await sleep(tick % 2 ? 1_000 : 500);
    }
    const probedCpuMsPerS = ((cpuSeconds(proc.pid) - cpuBefore) * 1000) / (PROBED_MS / 1000);
    const after = memory(proc.pid);
    const readyzCpuUs = await cpuPer(proc.pid, port, '/readyz', 500);
    const metricsCpuUs = await cpuPer(proc.pid, port, '/metrics', 100);
    return {
      firstAnswerMs,
      restMb,
      restLaterMb,
      restCpuMsPerS,
      probedMb: after.rssMb,
      hwmMb: after.hwmMb,
      readyzCpuUs,
      metricsCpuUs,
      probedCpuMsPerS,
    };
  } finally {
    await endGroup(proc, 'SIGTERM', 3_000);
  }
}

/** A bare node:http server answering 200: what any Node.js process takes with the same flags. */
async function runBare(variant: Variant): Promise<number> {
  const port = await freePort(HOST);
  const script = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '${HOST}')`;
  const { proc } = await spawnAndWait([...variant.flags, '-e', script], variant.nodeOptions, port, '/');
  try {
    await sleep(REST_MS);
    return memory(proc.pid).rssMb;
  } finally {
    await endGroup(proc, 'SIGTERM', 3_000);
  }
}

const [repsArg, ...variantArgs] = process.argv.slice(2);
const reps = Number(repsArg ?? 3);
const shipped = SIDECAR_NODE_OPTIONS;
const variants = (variantArgs.length > 0 ? variantArgs : ['']).map((v) => parseVariant(v, shipped));

const dir = await mkdtemp(join(tmpdir(), 'ef-bench-sidecar-rss-'));
let origin: Origin | undefined;
let tlsOrigin: TlsOrigin | undefined;
let fleet: SquidFleet | undefined;
const results: Record<string, unknown>[] = [];
try {
  [origin, tlsOrigin] = await Promise.all([
    startOrigin({ host: ORIGIN_HOST, port: 0 }),
    // Port 443: Squid tunnels CONNECT to SSL ports only (k8s/squid/squid.conf).
    startTlsOrigin({ host: TLS_HOST, port: 443 }),
  ]);
  const targets = [`http://${ORIGIN_HOST}:${origin.port}/`, `https://${TLS_HOST}/`];
  fleet = await startSquids([{ label: 'rss', host: SQUID_HOST }], { probeUrl: targets[0] });
  const squid = fleet.squids[0];
  if (!squid) throw new Error('no squid');
  // k8s/squid-primary.yaml's sidecar.yaml, pointed at this Squid and these origins. Both targets are
  // addresses, so the direct fetch of `attributed` reaches them as the fetch through Squid does.
  const configFor = (port: number) => ({
    sidecar: {
      listen: `${HOST}:${port}`,
      proxy: squid.address,
      targets,
      quorum: 1,
      interval: '5s',
      timeout: '3s',
      rise: 1,
      fall: 3,
      expectStatus: '200-399',
      liveness: 'attributed',
      readiness: 'attributed',
    },
  });
  // The sidecar trusts the TLS origin's throwaway CA, as a pod trusts the outside's CAs.
  process.env.NODE_EXTRA_CA_CERTS = tlsOrigin.caPath;
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ${reps} runs per variant`,
  );
  console.log(
    'variant | NODE_OPTIONS | bare MB | rest MB (12 s) | (32 s) | probed MB | peak MB | CPU ms/s at rest | probed | µs CPU per /readyz | per /metrics | first /readyz ms',
  );
  for (const variant of variants) {
    const runs: Run[] = [];
    const bare: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      bare.push(await runBare(variant));
      runs.push(await runSidecar(variant, configFor, dir));
    }
    const pick = (key: keyof Run) => median(runs.map((r) => r[key]));
    const row = {
      variant: variant.label,
      nodeOptions: variant.nodeOptions,
      bareMb: median(bare),
      restMb: pick('restMb'),
      restLaterMb: pick('restLaterMb'),
      restCpuMsPerS: pick('restCpuMsPerS'),
      probedMb: pick('probedMb'),
      hwmMb: pick('hwmMb'),
      readyzCpuUs: pick('readyzCpuUs'),
      metricsCpuUs: pick('metricsCpuUs'),
      probedCpuMsPerS: pick('probedCpuMsPerS'),
      firstAnswerMs: pick('firstAnswerMs'),
      runs,
      bare,
    };
    results.push(row);
    console.log(
      [
        row.variant,
        row.nodeOptions,
        row.bareMb.toFixed(1),
        row.restMb.toFixed(1),
        row.restLaterMb.toFixed(1),
        row.probedMb.toFixed(1),
        row.hwmMb.toFixed(1),
        row.restCpuMsPerS.toFixed(2),
        row.probedCpuMsPerS.toFixed(1),
        row.readyzCpuUs.toFixed(0),
        row.metricsCpuUs.toFixed(0),
        row.firstAnswerMs.toFixed(0),
      ].join(' | '),
    );
    console.log(
      `  per run: rest ${runs.map((r) => r.restMb.toFixed(1)).join(', ')} MB; bare ${bare.map((b) => b.toFixed(1)).join(', ')} MB`,
    );
  }
  // Only this build's figures are kept; another's (SIDECAR_BINARY) are for the comparison printed.
  if (process.env.SIDECAR_BINARY === undefined)
    await writeFile(
      RESULTS,
      `${JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2)}\n`,
    );
} finally {
  await fleet?.stopAll();
  await Promise.allSettled([origin?.close(), tlsOrigin?.close()]);
  await rm(dir, { recursive: true, force: true });
}
