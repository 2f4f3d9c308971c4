// Config reloads and UDP answers: how late the latest UDP answer is while the server reloads a
// large config (src/config/load.ts parses and validates in a child process; a file over 1 MiB is
// refused by its size). The goal: no UDP answer later than 50 ms during a reload of a 1 MiB config.
//
//   npx tsc -p tsconfig.build.json && node --import ./bench/register.js bench/reload-stall.ts
//
// Runs the compiled server (dist/) on 127.0.1.32 and swaps its config file (write + rename, as an
// editor or the kubelet does) to each shape below in turn, with a UDP query every 5 ms from 1 s
// before the swap until 1 s after the server logs the reload's outcome. For comparison, it first
// times the same parse + validation on this (the bench's) main thread, which is what every answer
// waited for before the parse moved off the main thread. Not part of `npm run bench`.
//
//   ... bench/reload-stall.ts [--only N] [--node-flags FLAGS] [--output FILE]
//
// --only N runs the Nth shape alone (1-based). --node-flags runs the server's node with flags that
// NODE_OPTIONS refuses, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof' (a profile for
// bench/profile-summary.mjs when the server stops) or '--trace-gc'; --output FILE keeps the
// server's output (its logs, and what such flags print) in FILE.
import { rename, writeFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { parseConfigText } from '../src/config/parse.js';
import { dnsConfigSchema } from '../src/config/schema.js';
import { httpGet, startDnsServer } from '../test/helpers/dns-process.js';
import { startUdpStreamProcess } from '../test/helpers/udp-stream.js';
import { waitFor } from '../test/helpers/wait.js';
import { IMAGE_NODE_OPTIONS } from './lib/image-env.js';
import { withNodeFlags } from './lib/node-flags.js';
import { memory } from './lib/proc.js';

const GOAL_MS = 50;
const listen = { dns: { listen: '127.0.1.32:0' }, http: { listen: '127.0.1.32:0' } };
const probe = { targets: ['http://127.0.1.33/'], interval: '2s', timeout: '200ms' };
const pool = (name: string, address: string | string[]) => ({
  name,
  proxy: 'http://127.0.1.33:3128',
  address,
});
const base = (ttl: number, extra: unknown[] = []) => ({
  dns: { ...listen.dns, ttl },
  http: listen.http,
  probe,
  services: [{ name: 'proxy', onAllDown: 'all', pools: [pool('a', '10.0.0.1')] }, ...extra],
});
const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

const wideAddresses = Array.from(
  { length: 5_400 },
  (_, i) => `10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
);
const shapes: { name: string; text: string; expect: 'reloaded' | 'refused' }[] = [
  {
    name: '1 MiB valid: 7 services x 5,400 addresses',
    text: json(
      base(
        11,
        Array.from({ length: 7 }, (_, n) => ({ name: `wide${n}`, pools: [pool('only', wideAddresses)] })),
      ),
    ),
    expect: 'reloaded',
  },
  {
    name: '1 MiB invalid: 5,000 services, each wrong',
    text: json(
      base(
        12,
        Array.from({ length: 5_000 }, (_, n) => ({
          name: `bad${n}`,
          pools: [{ ...pool('x', '10.0.0.1'), weight: n }],
        })),
      ),
    ),
    expect: 'refused',
  },
  { name: '20 MB file', text: `# ${'x'.repeat(20_000_000)}\n`, expect: 'refused' },
  {
    name: '1 MiB valid: 5,500 services (apply cost)',
    text: json(
      base(
        13,
        Array.from({ length: 5_500 }, (_, n) => ({
          name: `svc${n}`,
          pools: [pool('only', `10.1.${n >> 8}.${n & 255}`)],
        })),
      ),
    ),
    expect: 'reloaded',
  },
];

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
};
const only = argument('--only');
const nodeFlags = argument('--node-flags');
const outputFile = argument('--output');
const chosen = only === undefined ? shapes : shapes.slice(Number(only) - 1, Number(only));
const wrapper = withNodeFlags(nodeFlags);

// As deployed: the image's NODE_OPTIONS (a small young generation keeps each scavenge short).
const server = await startDnsServer(base(10), { wrapper, env: { NODE_OPTIONS: IMAGE_NODE_OPTIONS } });
// This process parses every line the server logs (11,000 for the 5,500-service shape) and shares
// two cores with it: it steps back (niceness 10) so that it measures the server rather than
// competing with it. The stream's own process is started at -10 from here (udp-stream.ts), i.e. at
// the server's priority.
setPriority(10);
async function loopDelayMaxMs(http: { host: string; port: number }): Promise<number> {
  const { body } = await httpGet(http, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_max_seconds '));
  return Number(line?.split(' ')[1]) * 1000;
}
let allMet = true;
try {
  console.log(
    `egress-failover reload stall — ${new Date().toISOString()}, goal: no UDP answer later than ${GOAL_MS} ms`,
  );
  for (const shape of chosen) {
    const inline = (() => {
      if (shape.text.length > 1 << 20) return 'not parsed (over 1 MiB)';
      const began = performance.now();
      parseConfigText(shape.text, dnsConfigSchema);
      return `${Math.round(performance.now() - began)} ms`;
    })();
    const outcomes = () =>
      server.logs().filter((l) => l.msg === 'config reloaded' || l.msg.startsWith('config reload refused'));
    const before = outcomes().length;
    // From a process of its own: parsing the server's thousands of log lines here must not delay
    // the answers the stream times.
    const stream = startUdpStreamProcess(server.dnsAddress);
    // The server's own view: prom-client's event-loop delay maximum, reset by each scrape.
    await loopDelayMaxMs(server.httpAddress);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const swapped = performance.now();
    await writeFile(`${server.configPath}.next`, shape.text);
    await rename(`${server.configPath}.next`, server.configPath);
    const outcome = await waitFor(() => (outcomes().length > before ? outcomes().at(-1) : undefined), {
      what: `${shape.name}: the reload's outcome logged`,
      timeoutMs: 120_000,
    });
    const tookMs = Math.round(performance.now() - swapped);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const result = await stream.stop(GOAL_MS);
    const loopMaxMs = await loopDelayMaxMs(server.httpAddress);
    const got = outcome.msg === 'config reloaded' ? 'reloaded' : 'refused';
    const met = result.lost === 0 && result.late === 0 && got === shape.expect;
    allMet &&= met;
    console.log(
      `${shape.name.padEnd(44)} ${(shape.text.length / 1024).toFixed(0).padStart(6)} KiB: ${got} after ${tookMs} ms (poll 1 s) | UDP ${result.answered}/${result.sent}, ` +
        `lost ${result.lost}, p99 ${result.p99Ms} ms, max ${result.maxMs} ms, later than ${GOAL_MS} ms: ${result.late} | ` +
        `server's event loop delay max ${loopMaxMs.toFixed(0)} ms | parse+validate on a main thread: ${inline} | server HWM ${memory(server.pid).hwmMb.toFixed(0)} MB | goal: ${met ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  if (outputFile !== undefined) await writeFile(outputFile, server.output());
  await server.stop();
  await server.dispose();
}
process.exitCode = allMet ? 0 : 1;
