// A/B for work on the answer path: two builds of the dns server (each a folder with bin/ and dist/,
// e.g. a copy of the tree before a change) and the node:dgram ceiling, in one run, taking turns.
// No squids: one pool whose proxy refuses, onAllDown all, so the answer is fixed and the probe loop
// nearly idle. CPU µs per query is the figure to compare; q/s moves with the machine's load.
//
//   node --import ./bench/register.js bench/ab.ts /tmp/before . [reps] [seconds]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { endGroup, spawnGroup } from '../test/helpers/process.js';
import { waitFor } from '../test/helpers/wait.js';
import { type Measured, measure } from './lib/dnsperf.js';
import { freePort, startCeiling } from './lib/peers.js';
import { summarize } from './lib/stats.js';

const [a = '', b = '.', repsText = '5', secondsText = '4'] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'ef-ab-'));
const queryFile = join(dir, 'q.txt');
await writeFile(queryFile, 'proxy.egress.svc A\n');

async function startBuild(root: string) {
  const port = await freePort('127.0.0.1');
  const config = join(dir, `${port}.yaml`);
  await writeFile(
    config,
    JSON.stringify({
      dns: { zone: 'egress.svc', listen: `127.0.0.1:${port}`, ttl: 5 },
      http: { listen: `127.0.0.1:${await freePort('127.0.0.1')}` },
      probe: { targets: ['http://127.0.0.1:9/'], interval: '1s', timeout: '500ms' },
      services: [
        {
          name: 'proxy',
          onAllDown: 'all',
          pools: [{ name: 'p', proxy: 'http://127.0.0.1:9', address: '10.0.0.1' }],
        },
      ],
    }),
  );
  const proc = spawnGroup(process.execPath, [
    join(resolve(root), 'bin/egress-failover.js'),
    'dns',
    '--config',
    config,
  ]);
  await waitFor(() => proc.output().includes('"msg":"serving"'), { what: `${root} to serve` });
  return { pid: proc.pid, host: '127.0.0.1', port, stop: () => endGroup(proc, 'SIGTERM') };
}

const ceiling = await startCeiling('127.0.0.1');
const servers = [
  { id: `A ${a}`, ...(await startBuild(a)) },
  { id: `B ${b}`, ...(await startBuild(b)) },
  { id: 'ceiling', ...ceiling },
];
const runs = new Map<string, Measured[]>(servers.map((s) => [s.id, []]));
try {
  for (let rep = 0; rep < Number(repsText); rep++) {
    for (let i = 0; i < servers.length; i++) {
      const s = servers[(i + rep) % servers.length] as (typeof servers)[number];
      const r = await measure(s.pid, { host: s.host, port: s.port, queryFile, seconds: Number(secondsText) });
      runs.get(s.id)?.push(r);
      process.stdout.write(
        `${s.id.padEnd(24)} ${Math.round(r.qps).toString().padStart(7)} q/s ${r.cpuUsPerQuery.toFixed(2)} µs/q\n`,
      );
    }
  }
} finally {
  await Promise.allSettled(servers.map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
}
const ceilingUs = summarize((runs.get('ceiling') ?? []).map((r) => r.cpuUsPerQuery)).median;
for (const [id, r] of runs) {
  const us = summarize(r.map((x) => x.cpuUsPerQuery));
  const qps = summarize(r.map((x) => x.qps));
  process.stdout.write(
    `${id.padEnd(24)} µs/q median ${us.median.toFixed(2)} (${us.min.toFixed(2)}-${us.max.toFixed(2)})  q/s median ${Math.round(qps.median)}  ceiling/this CPU ${(ceilingUs / us.median).toFixed(3)}\n`,
  );
}
