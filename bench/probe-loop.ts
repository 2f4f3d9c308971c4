// Section 2: what the probe loop costs. N pools (10, 100, 1000) at a 1 s interval, in services of
// ten pools each, every pool deep-checking the origin. "squids": pools spread over the three Squids,
// as in a cluster; "direct": every pool's proxy is the origin itself (it answers absolute-form GETs),
// which takes Squid's own CPU off this 2-core machine and leaves our loop alone.
//
// Rounds are scheduled `interval` (+-5 % jitter, mean 0) after the previous round *ends* (one in
// flight per pool), so a pool's round period is interval + probe latency + however late the timer
// fired. From /metrics over a window: period = N x window / rounds, latency = the probe duration
// histogram's mean, and late = (period - latency - interval) / interval.
import { type DnsProcess, startDnsServer } from '../test/helpers/dns-process.js';
import { waitFor } from '../test/helpers/wait.js';
import { type Fleet, forgetRequests } from './lib/fleet.js';
import { IMAGE_NODE_OPTIONS } from './lib/image-env.js';
import { cpuSeconds, memory } from './lib/proc.js';

export interface ProbeLoopOptions {
  readonly sizes: readonly number[];
  readonly windowSeconds: number;
  readonly log: (line: string) => void;
}

export interface ProbeLoopFailure {
  readonly pools: number;
  readonly via: 'squids' | 'direct';
  /** Why there is no measurement, typically: the server never answered /livez (event loop saturated). */
  readonly error: string;
}

export interface ProbeLoopResult {
  readonly pools: number;
  readonly via: 'squids' | 'direct';
  readonly windowSeconds: number;
  /** CPU seconds per second of the dns process (1 = one core). */
  readonly cpuCores: number;
  /** The same for all three Squids together (squids mode). */
  readonly squidCpuCores: number | undefined;
  readonly rounds: number;
  readonly roundsPerSecond: number;
  readonly periodMs: number;
  readonly probeLatencyMs: number;
  /** (period - latency - interval) / interval, as a percentage. */
  readonly latePct: number;
  readonly failedRounds: number;
  readonly rssMb: number;
}

const INTERVAL_MS = 1_000;

/** The bench's config: `pools` pools in services of ten, through the Squids or the origin itself. */
export function probeLoopConfig(fleet: Fleet, pools: number, via: 'squids' | 'direct') {
  const proxies =
    via === 'direct'
      ? [`http://${fleet.origin.host}:${fleet.origin.port}`]
      : fleet.squids.map((squid) => squid.address);
  const services = [];
  for (let s = 0; s * 10 < pools; s++) {
    const count = Math.min(10, pools - s * 10);
    services.push({
      name: `svc${s}`,
      onAllDown: 'all',
      pools: Array.from({ length: count }, (_, p) => ({
        name: `pool${p}`,
        proxy: proxies[(s * 10 + p) % proxies.length],
        address: `10.${(s >> 8) & 255}.${s & 255}.${p + 1}`,
      })),
    });
  }
  return {
    dns: { zone: 'egress.svc', ttl: 5 },
    probe: { targets: [fleet.targetUrl], interval: `${INTERVAL_MS}ms`, timeout: '500ms' },
    services,
  };
}

interface Counters {
  readonly pass: number;
  readonly fail: number;
  readonly durationSum: number;
  readonly durationCount: number;
}

async function counters(server: DnsProcess): Promise<Counters> {
  const { status, body } = await server.get('/metrics');
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  let pass = 0;
  let fail = 0;
  let durationSum = 0;
  let durationCount = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith('egress_probe_rounds_total{')) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.includes('result="pass"')) pass += value;
      else fail += value;
    } else if (line.startsWith('egress_probe_duration_seconds_sum{')) {
      durationSum += Number(line.slice(line.lastIndexOf(' ') + 1));
    } else if (line.startsWith('egress_probe_duration_seconds_count{')) {
      durationCount += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return { pass, fail, durationSum, durationCount };
}

async function measureLoop(
  fleet: Fleet,
  pools: number,
  via: 'squids' | 'direct',
  windowSeconds: number,
): Promise<ProbeLoopResult> {
  const server = await startDnsServer(probeLoopConfig(fleet, pools, via), {
    startTimeoutMs: 20_000,
    env: { NODE_OPTIONS: IMAGE_NODE_OPTIONS },
  });
  try {
    // Warm-up: every pool through its first rounds (first rounds are spread over 100 ms).
    await waitFor(async () => (await counters(server)).pass >= pools * 2, {
      timeoutMs: 20_000,
      intervalMs: 250,
      what: `${pools} pools to finish two rounds each`,
    });
    const squidPids = fleet.squids.map((s) => s.pid).filter((p): p is number => p !== undefined);
    // The window runs between the two scrapes' midpoints: a /metrics answer with 1000 pools takes
    // a while, and timing only the sleep counted its rounds against too short a window (late -2 %).
    const scrape = async () => {
      const t = performance.now();
      const c = await counters(server);
      return { c, at: (t + performance.now()) / 2 };
    };
    const { c: before, at: t0 } = await scrape();
    const cpu0 = cpuSeconds(server.pid);
    const squid0 = squidPids.reduce((n, pid) => n + cpuSeconds(pid), 0);
    const slept = performance.now();
    await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
    const sleptSeconds = (performance.now() - slept) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const squidCpu = squidPids.reduce((n, pid) => n + cpuSeconds(pid), 0) - squid0;
    const { c: after, at: t1 } = await scrape();
    const elapsed = (t1 - t0) / 1000;
    const rounds = after.pass + after.fail - before.pass - before.fail;
    const periodMs = (pools * elapsed * 1000) / rounds;
    const durations = after.durationCount - before.durationCount;
    const probeLatencyMs = durations ? ((after.durationSum - before.durationSum) * 1000) / durations : 0;
    return {
      pools,
      via,
      windowSeconds: elapsed,
      cpuCores: cpu / sleptSeconds,
      squidCpuCores: via === 'squids' ? squidCpu / sleptSeconds : undefined,
      rounds,
      roundsPerSecond: rounds / elapsed,
      periodMs,
      probeLatencyMs,
      latePct: (100 * (periodMs - probeLatencyMs - INTERVAL_MS)) / INTERVAL_MS,
      failedRounds: after.fail - before.fail,
      rssMb: memory(server.pid).rssMb,
    };
  } finally {
    await server.dispose();
    forgetRequests(fleet.origin);
  }
}

export async function runProbeLoop(
  fleet: Fleet,
  options: ProbeLoopOptions,
): Promise<(ProbeLoopResult | ProbeLoopFailure)[]> {
  const results: (ProbeLoopResult | ProbeLoopFailure)[] = [];
  const run = async (pools: number, via: 'squids' | 'direct') => {
    try {
      const r = await measureLoop(fleet, pools, via, options.windowSeconds);
      options.log(
        `  ${String(pools).padStart(4)} pools via ${via.padEnd(6)}: cpu ${(r.cpuCores * 100).toFixed(1)} % of a core, ` +
          `${Math.round(r.roundsPerSecond)} rounds/s, period ${r.periodMs.toFixed(0)} ms (probe ${r.probeLatencyMs.toFixed(1)} ms), ` +
          `late ${r.latePct.toFixed(1)} %, failed ${r.failedRounds}, rss ${r.rssMb.toFixed(0)} MB` +
          (r.squidCpuCores === undefined ? '' : `, squids ${(r.squidCpuCores * 100).toFixed(0)} %`),
      );
      results.push(r);
      return true;
    } catch (err) {
      const error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
      options.log(`  ${String(pools).padStart(4)} pools via ${via.padEnd(6)}: FAILED: ${error}`);
      results.push({ pools, via, error });
      return false;
    }
  };
  for (const pools of options.sizes) await run(pools, 'squids');
  // The largest size again without Squid in the way; if that fails too, the largest that worked.
  const largest = Math.max(...options.sizes);
  if (!(await run(largest, 'direct'))) {
    const worked = results.filter((r): r is ProbeLoopResult => !('error' in r)).map((r) => r.pools);
    if (worked.length) await run(Math.max(...worked), 'direct');
  }
  return results;
}
