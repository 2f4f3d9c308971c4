// Time to shift by client kind and fault: from a fault of the primary to each client's first
// request through the secondary, for the test config and for the shipped defaults (k8s/dns.yaml).
//
//   npm run bench:shift                                   (both configs, 3 runs per fault)
//   BENCH_CONFIG=test|shipped BENCH_REPEAT=5 npm run bench:shift
//
// Needs root (origins bind 127.0.0.80:80 and 127.0.0.83:443; Squid drops to `proxy`), apt squid,
// unbound, dig, curl and python3, and the loopback addresses of test/integration/time-to-shift.test.ts:
// run it under the integration lock (`flock /tmp/ef-integration.lock npm run bench:shift`).
//
// The rig is the test's (test/helpers/shift-rig.ts): real Squids on the shipped squid.conf, the
// real `dns` binary, a caching Unbound standing in for CoreDNS, and the clients of
// test/helpers/clients.ts, each with a 3 s request timeout, a request every 200 ms. Per fault and
// run, all client kinds run at once from a steady state (both pools healthy, the resolver answering
// the primary). Where in its probe interval the fault lands is left to chance; where in the
// resolver's cache lifetime it lands is not: the steady-state check ends on the resolver's first
// answer naming the primary, about a second before the fault, so the cache term is near its worst
// case (Unbound counts TTLs in whole seconds and serves TTL 0 for up to a second more: a TTL-5
// answer is held up to about 6 s). A CONNECT tunnel opened before a no-egress or dead-parent fault keeps working through the
// primary (Squid relays bytes on a connection made before egress broke): its cell says `kept`, and
// the time after the origin then closes it is recorded apart. Each cell is the median of the runs;
// the bound is test/helpers/shift-bound.ts's formula, the one the docs state.
//
// Prints a markdown table per config and writes every sample to bench/results/time-to-shift.json.
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../src/config/parse.js';
import { dnsConfigSchema, type ProbeSettings } from '../src/config/schema.js';
import { CLIENT_KINDS, type ClientKind, JVM_DNS_CACHE_MS } from '../test/helpers/clients.js';
import { type ShiftTiming, shiftBoundMs } from '../test/helpers/shift-bound.js';
import {
  FAULTS,
  type Fault,
  type ProbeBlock,
  SECONDARY,
  type ShiftRig,
  startShiftRig,
} from '../test/helpers/shift-rig.js';
import { median } from './lib/stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'results/time-to-shift.json');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const CLIENT_TIMEOUT_MS = 3_000;
/** CoreDNS's cache keeps every answer at least this long (coredns/README.md). */
const COREDNS_MIN_TTL_S = 5;

/** The probe settings the formula and the rig need. */
type PoolTiming = Pick<ProbeSettings, 'intervalMs' | 'timeoutMs' | 'fastIntervalMs' | 'fall' | 'rise'>;

interface BenchConfig {
  readonly name: 'test' | 'shipped';
  readonly describe: string;
  readonly primary: PoolTiming;
  readonly secondary: PoolTiming;
  readonly ttlS: number;
}

const TEST_PROBE: PoolTiming = {
  intervalMs: 500,
  timeoutMs: 400,
  fastIntervalMs: 200,
  fall: 2,
  rise: 2,
};

/** The DNS server's config as k8s/dns.yaml ships it, every default filled in by the schema. */
async function shippedConfig(): Promise<BenchConfig> {
  const docs = parseAllDocuments(await readFile(join(ROOT, 'k8s/dns.yaml'), 'utf8')).map((d) => d.toJS());
  const configMap = docs.find((d) => d?.kind === 'ConfigMap' && d?.metadata?.name === 'egress-dns');
  const text = configMap?.data?.['config.yaml'];
  if (typeof text !== 'string') throw new Error('k8s/dns.yaml has no ConfigMap egress-dns with config.yaml');
  const loaded = parseConfigText(text, dnsConfigSchema);
  if (!loaded.ok) throw new Error(`k8s/dns.yaml config.yaml:\n${loaded.errors.join('\n')}`);
  const [primary, secondary] = loaded.config.services[0]?.pools ?? [];
  if (!primary || !secondary) throw new Error('k8s/dns.yaml: the first service has fewer than two pools');
  const p = primary.probe;
  return {
    name: 'shipped',
    describe:
      `k8s/dns.yaml: primary interval ${p.intervalMs} ms, timeout ${p.timeoutMs} ms, fastInterval ` +
      `${p.fastIntervalMs} ms, fall ${p.fall}, rise ${p.rise}; secondary interval ` +
      `${secondary.probe.intervalMs} ms; ttl ${loaded.config.dns.ttl}`,
    primary: p,
    secondary: secondary.probe,
    ttlS: loaded.config.dns.ttl,
  };
}

const TEST_CONFIG: BenchConfig = {
  name: 'test',
  describe: 'the test config: interval 500 ms, timeout 400 ms, fastInterval 200 ms, fall 2, rise 2, ttl 5',
  primary: TEST_PROBE,
  secondary: TEST_PROBE,
  ttlS: 5,
};

const block = (p: PoolTiming): ProbeBlock => ({
  interval: `${p.intervalMs}ms`,
  timeout: `${p.timeoutMs}ms`,
  fastInterval: `${p.fastIntervalMs}ms`,
  fall: p.fall,
  rise: p.rise,
});

const timingOf = (config: BenchConfig): ShiftTiming => ({
  intervalMs: config.primary.intervalMs,
  timeoutMs: config.primary.timeoutMs,
  fastIntervalMs: config.primary.fastIntervalMs,
  fall: config.primary.fall,
  rise: config.primary.rise,
  // Behind CoreDNS the cache term is at least its minimum TTL; Unbound here keeps the TTL as is.
  cacheS: Math.max(config.ttlS, COREDNS_MIN_TTL_S),
});

function boundMs(config: BenchConfig, fault: Fault, kind: ClientKind): number {
  return shiftBoundMs(timingOf(config), {
    requestTimeoutMs: fault.hangs ? CLIENT_TIMEOUT_MS : 0,
    dnsCacheMs: kind === 'dns-cache-30s' ? JVM_DNS_CACHE_MS : 0,
  });
}

interface Sample {
  readonly config: BenchConfig['name'];
  readonly fault: Fault['name'];
  readonly run: number;
  readonly kind: ClientKind;
  /** Fault -> first 200 through the secondary; null: none within the bound + 5 s. */
  readonly ms: number | null;
  /** A tunnel that kept working through the primary: requests it passed during the fault. */
  readonly keptRequests?: number;
  /** For a kept tunnel: the origin closing it -> its first 200 through the secondary. */
  readonly afterCloseMs?: number | null;
  readonly failures: number;
}

async function runFault(rig: ShiftRig, config: BenchConfig, fault: Fault, run: number): Promise<Sample[]> {
  await rig.steadyOnPrimary();
  const clients = await rig.startClients(CLIENT_KINDS);
  const samples: Sample[] = [];
  try {
    await fault.inject(rig.primary);
    const faultAt = Date.now();
    const tunnels = fault.keepsTunnels ? clients.filter((c) => c.kind === 'https-tunnel') : [];
    const moving = clients.filter((c) => !tunnels.includes(c));
    const shifts = await rig.measureShifts(moving, SECONDARY, faultAt, (kind) =>
      boundMs(config, fault, kind),
    );
    for (const s of shifts) {
      samples.push({
        config: config.name,
        fault: fault.name,
        run,
        kind: s.kind,
        ms: s.ms ?? null,
        failures: s.failures.length,
      });
    }
    for (const tunnel of tunnels) {
      const during = tunnel.attempts.filter((a) => a.at > faultAt);
      const kept = during.every((a) => a.ok && a.proxy !== SECONDARY);
      rig.tlsOrigin.server.closeAllConnections();
      const endedAt = Date.now();
      const [after] = await rig.measureShifts([tunnel], SECONDARY, endedAt, () => 5_000);
      samples.push({
        config: config.name,
        fault: fault.name,
        run,
        kind: tunnel.kind,
        ms: kept ? null : (after?.ms ?? null),
        keptRequests: kept ? during.length : undefined,
        afterCloseMs: after?.ms ?? null,
        failures: during.filter((a) => !a.ok).length,
      });
    }
  } finally {
    await rig.stopClients(clients);
    await fault.restore(rig.primary);
  }
  for (const s of samples) {
    const shown = s.keptRequests !== undefined ? `kept (${s.keptRequests} requests)` : `${s.ms} ms`;
    process.stderr.write(`${config.name} ${fault.name} #${run} ${s.kind}: ${shown}\n`);
  }
  return samples;
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** A markdown table: client kind x fault -> median seconds (min-max), and the bound. */
function table(config: BenchConfig, samples: readonly Sample[]): string {
  const header = `| client | ${FAULTS.map((f) => f.title).join(' | ')} |`;
  const rule = `| --- | ${FAULTS.map(() => '---').join(' | ')} |`;
  const rows = CLIENT_KINDS.map((kind) => {
    const cells = FAULTS.map((fault) => {
      const of = samples.filter((s) => s.config === config.name && s.fault === fault.name && s.kind === kind);
      if (of.length === 0) return '—';
      // A bound rounds up: 8.45 s shows as 8.5, never 8.4.
      const bound = `≤ ${(Math.ceil(boundMs(config, fault, kind) / 100) / 10).toFixed(1)}`;
      if (of.every((s) => s.keptRequests !== undefined)) {
        const after = of.map((s) => s.afterCloseMs).filter((v): v is number => v !== null);
        return `kept; ${seconds(median(after))} after it closes`;
      }
      const times = of.map((s) => s.ms);
      const done = times.filter((v): v is number => v !== null);
      const missed = times.length - done.length;
      const spread = `${seconds(Math.min(...done))}–${seconds(Math.max(...done))}`;
      return done.length === 0
        ? `never (${bound})`
        : `**${seconds(median(done))}** (${spread}${missed ? `, ${missed} never` : ''}) ${bound}`;
    });
    return `| ${kind} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...rows].join('\n');
}

async function main(): Promise<void> {
  const which = process.env.BENCH_CONFIG ?? 'both';
  const configs = [
    ...(which === 'shipped' ? [] : [TEST_CONFIG]),
    ...(which === 'test' ? [] : [await shippedConfig()]),
  ];
  const previous = await readFile(RESULTS, 'utf8')
    .then((text) => JSON.parse(text) as { runs?: Record<string, unknown> })
    .catch(() => ({ runs: {} }));
  const runs: Record<string, unknown> = { ...(previous.runs ?? {}) };
  for (const config of configs) {
    const rig = await startShiftRig({
      probe: { primary: block(config.primary), secondary: block(config.secondary) },
      ttlS: config.ttlS,
      clientTimeoutMs: CLIENT_TIMEOUT_MS,
    });
    const onSignal = () => {
      void rig.stop().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const samples: Sample[] = [];
    try {
      for (const fault of FAULTS) {
        for (let run = 1; run <= REPEAT; run++) samples.push(...(await runFault(rig, config, fault, run)));
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await rig.stop();
    }
    const markdown = table(config, samples);
    process.stdout.write(
      `\ntime to shift, seconds, median of ${REPEAT} (min–max) and the bound; ${config.describe}\n${markdown}\n`,
    );
    runs[config.name] = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      loadavg: loadavg(),
      config: config.describe,
      timing: timingOf(config),
      clientTimeoutMs: CLIENT_TIMEOUT_MS,
      repeat: REPEAT,
      table: markdown,
      samples,
    };
  }
  await writeFile(RESULTS, `${JSON.stringify({ runs }, null, 2)}\n`);
  process.stdout.write(`written: ${RESULTS}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench/time-to-shift: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
