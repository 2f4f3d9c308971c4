// The dns server's memory, idle and under load, for each of several NODE_OPTIONS: what a V8 flag
// or a code change does to RSS, measured the same way as in `npm run bench` (3 pools on the three
// Squids, `dnsperf -c 4 -q 200` at maximum rate). Each variant runs in its own server process.
//
//   node --import ./bench/register.js bench/rss.ts [seconds=5] ['' '--max-semi-space-size=1' ...]
//
// Prints, per variant: RSS after start-up and 3 s of probing, q/s and CPU µs per query under load,
// RSS after the load and the peak (VmHWM).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../test/helpers/dns-process.js';
import { oursConfig } from './answers.js';
import { measure } from './lib/dnsperf.js';
import { startFleet } from './lib/fleet.js';
import { memory } from './lib/proc.js';

const [secondsArg, ...variantArgs] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 5);
const variants = variantArgs.length > 0 ? variantArgs : ['', '--max-semi-space-size=1'];

const dir = await mkdtemp(join(tmpdir(), 'ef-bench-rss-'));
const queryFile = join(dir, 'proxy.txt');
await writeFile(queryFile, 'proxy.egress.svc A\n');
const fleet = await startFleet();
try {
  for (const options of variants) {
    const server = await startDnsServer(oursConfig(fleet), { env: { NODE_OPTIONS: options } });
    try {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const idle = memory(server.pid);
      const load = await measure(server.pid, {
        ...server.dnsAddress,
        queryFile,
        seconds,
        clients: 4,
        outstanding: 200,
      });
      console.log(
        `NODE_OPTIONS='${options}': idle rss ${idle.rssMb.toFixed(1)} MB; under load ${Math.round(load.qps)} q/s, ` +
          `${load.cpuUsPerQuery.toFixed(1)} µs/q, lost ${load.lostPct.toFixed(2)} %; after: rss ${load.memory.rssMb.toFixed(1)} MB, ` +
          `peak ${load.memory.hwmMb.toFixed(1)} MB`,
      );
    } finally {
      await server.dispose();
    }
  }
} finally {
  await fleet.stop();
  await rm(dir, { recursive: true, force: true });
}
