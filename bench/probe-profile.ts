// The probe loop alone, for profiling: one size, one route, for a while; then what the rounds said.
//
//   node --import ./bench/register.js bench/probe-profile.ts [pools=1000] [squids|direct] [seconds=10] [--cpu-prof]
//
// With --cpu-prof the dns process writes a V8 CPU profile to /tmp/ef-prof/ (bench/cpu-profile.cjs) (open it in Chrome's
// DevTools, or sum self times by function). Prints the dns process's CPU per second, rounds per
// second, failed rounds, and the current and last-failure reasons of every pool, counted.
import { startDnsServer } from '../test/helpers/dns-process.js';
import { waitFor } from '../test/helpers/wait.js';
import { forgetRequests, startFleet } from './lib/fleet.js';
import { cpuSeconds, memory } from './lib/proc.js';
import { probeLoopConfig } from './probe-loop.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const profile = process.argv.includes('--cpu-prof');
const pools = Number(args[0] ?? 1000);
const via = (args[1] ?? 'squids') as 'squids' | 'direct';
const seconds = Number(args[2] ?? 10);

const rounds = async (get: (p: string) => Promise<{ body: string }>) => {
  let pass = 0;
  let fail = 0;
  for (const line of (await get('/metrics')).body.split('\n')) {
    if (!line.startsWith('egress_probe_rounds_total{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.includes('result="pass"')) pass += value;
    else fail += value;
  }
  return { pass, fail };
};

const fleet = await startFleet();
try {
  const server = await startDnsServer(probeLoopConfig(fleet, pools, via), {
    startTimeoutMs: 20_000,
    env: profile
      ? { NODE_OPTIONS: `--require ${import.meta.dirname}/cpu-profile.cjs`, CPU_PROFILE_DIR: '/tmp/ef-prof' }
      : {},
  });
  try {
    await waitFor(async () => (await rounds(server.get)).pass >= pools * 2, {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'two rounds per pool',
    });
    const before = await rounds(server.get);
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    const originCpu0 = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const originCpu = process.cpuUsage(originCpu0);
    const after = await rounds(server.get);
    const status = await server.status();
    const count = (key: (p: (typeof status.services)[number]['pools'][number]) => string | undefined) => {
      const counts = new Map<string, number>();
      for (const s of status.services)
        for (const p of s.pools) {
          const k = key(p) ?? '-';
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
    };
    const n = after.pass + after.fail - before.pass - before.fail;
    console.log(
      `${pools} pools via ${via}: dns cpu ${((100 * cpu) / elapsed).toFixed(1)} % of a core, ` +
        `${(n / elapsed).toFixed(0)} rounds/s, ${((1000 * cpu) / n).toFixed(3)} ms cpu/round, ` +
        `failed ${after.fail - before.fail}, rss ${memory(server.pid).rssMb.toFixed(0)} MB; ` +
        `this process (origin) ${(((originCpu.user + originCpu.system) / 1e6 / elapsed) * 100).toFixed(1)} % of a core`,
    );
    console.log(
      'last round:',
      count((p) => p.lastRound?.reason),
    );
    console.log(
      'last failure:',
      count((p) => p.lastFailure?.reason),
    );
    // SIGTERM: the profile is written on a clean exit (dispose() is SIGKILL).
    if (profile) await server.stop();
  } finally {
    await server.dispose();
    forgetRequests(fleet.origin);
  }
} finally {
  await fleet.stop();
}
