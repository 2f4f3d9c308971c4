// `npm run bench`: our DNS server against its peers on loopback, the probe loop's cost and the
// sidecar's start-up, in one bounded run (a few minutes). Prints a table, writes bench/results/DATE.json.
//
//   npm run bench                      # everything, 3 repeats of 5 s per server
//   npm run bench -- --reps 1 --seconds 2 --skip probe,sidecar   # a quick look
//   npm run bench -- --peers ceiling --skip probe,sidecar --out /tmp/ab.json   # A/B against the ceiling
//   npm run bench -- --pin             # servers on core 0, dnsperf on core 1 (see README: bimodal)
//
// Needs (apt): dnsperf squid gdnsd pdns-server pdns-backend-bind, dig; root (squid drops to `proxy`,
// the origin binds 127.0.1.10). Missing peers are skipped and said so.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type AnswerResults, runAnswers } from './answers.js';
import { startFleet } from './lib/fleet.js';
import { median, round } from './lib/stats.js';
import { type ProbeLoopFailure, type ProbeLoopResult, runProbeLoop } from './probe-loop.js';
import { runSidecar, type SidecarResult } from './sidecar.js';

const HERE = dirname(fileURLToPath(import.meta.url));

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    pin: { type: 'boolean', default: false },
    skip: { type: 'string', default: '' },
    pools: { type: 'string', default: '10,100,300,1000' },
    peers: { type: 'string', default: 'ceiling,dns2,gdnsd,pdns' },
    out: { type: 'string' },
  },
});
const reps = Number(values.reps);
const seconds = Number(values.seconds);
const skip = new Set(values.skip.split(',').filter(Boolean));
const log = (line: string) => process.stdout.write(`${line}\n`);

function version(command: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    return pattern.exec(out)?.[1] ?? out.trim().split('\n')[0] ?? '?';
  } catch {
    return 'not installed';
  }
}
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
const pkg = (name: string) => version('dpkg-query', ['-W', '-f=${Version}', name], /(.+)/);

const machine = {
  cpu: cpus()[0]?.model ?? '?',
  cores: cpus().length,
  kernel: release(),
  load: execFileSync('cat', ['/proc/loadavg']).toString().trim(),
};
const versions = {
  node: process.version,
  dnsperf: pkg('dnsperf'),
  squid: pkg('squid'),
  gdnsd: pkg('gdnsd'),
  pdns: pkg('pdns-server'),
  dns2: (
    await import('dns2/package.json', { with: { type: 'json' } }).catch(() => ({ default: { version: '?' } }))
  ).default.version,
};

log(`egress-failover bench — ${new Date().toISOString()}`);
log(`machine: ${machine.cpu}, ${machine.cores} cores, linux ${machine.kernel}, loadavg ${machine.load}`);
log(
  `versions: ${Object.entries(versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
log(
  `settings: ${reps} repeats x ${seconds} s per server, dnsperf -c 4 -q 200, ${values.pin ? 'PINNED (servers core 0, dnsperf core 1)' : 'unpinned'}`,
);

const started = Date.now();
log('starting origin and 3 squids ...');
const fleet = await startFleet();
let answers: AnswerResults | undefined;
let probeLoop: (ProbeLoopResult | ProbeLoopFailure)[] | undefined;
let sidecar: SidecarResult | undefined;
try {
  if (!skip.has('dns')) {
    log('\n[1] hot answer, proxy.egress.svc A over UDP');
    answers = await runAnswers(fleet, {
      reps,
      seconds,
      pin: values.pin,
      peers: values.peers.split(','),
      log,
    });
  }
  if (!skip.has('probe')) {
    log('\n[2] probe-loop cost, 1 s interval');
    const sizes = values.pools.split(',').map(Number);
    probeLoop = await runProbeLoop(fleet, { sizes, windowSeconds: Math.max(seconds, 5), log });
  }
  if (!skip.has('sidecar')) {
    log('\n[3] sidecar');
    sidecar = await runSidecar(fleet, reps, log);
  }
} finally {
  await fleet.stop();
}

// ---- report -----------------------------------------------------------------------------------------
const pct = (s: { spread: number }) => `±${round((s.spread * 100) / 2, 1)}%`;
const targets: { target: string; value: string; met: boolean | undefined }[] = [];
const ratios: Record<string, { qps: number; paired: number; cpu: number }> = {};
log('\n=== results ===');
if (answers) {
  log(
    `\n${'server'.padEnd(14)}${'name'.padEnd(8)}${'q/s median'.padStart(11)}${'spread'.padStart(9)}${'avg ms'.padStart(8)}${'max ms'.padStart(8)}${'lost %'.padStart(8)}${'µs/q'.padStart(7)}${'RSS MB'.padStart(8)}${'HWM MB'.padStart(8)}  note`,
  );
  for (const t of answers.targets) {
    log(
      `${t.id.padEnd(14)}${t.qname.split('.')[0]?.padEnd(8)}${Math.round(t.qps.median).toString().padStart(11)}${pct(t.qps).padStart(9)}` +
        `${t.avgLatencyMs.median.toFixed(2).padStart(8)}${t.maxLatencyMs.median.toFixed(1).padStart(8)}${t.lostPct.median.toFixed(2).padStart(8)}` +
        `${t.cpuUsPerQuery.median.toFixed(1).padStart(7)}${t.rssMb.toFixed(0).padStart(8)}${t.hwmMb.toFixed(0).padStart(8)}  ${t.note}`,
    );
  }
  for (const s of answers.skipped) log(`${s.id.padEnd(14)}skipped: ${s.why}`);
  log(
    `(spread: ±half of (max-min)/median over ${reps} runs; q/s, latency, loss and µs/q are medians; RSS/HWM after all runs)`,
  );
  const by = new Map(answers.targets.map((t) => [t.id, t.qps.median]));
  const ours = by.get('ours') ?? Number.NaN;
  const oursRuns = answers.targets[0]?.runs ?? [];
  const oursUs = answers.targets[0]?.cpuUsPerQuery.median ?? Number.NaN;
  log(
    '\nours / peer (>1 = ours better): q/s medians | q/s paired per repeat (median) | CPU per query (peer ÷ ours):',
  );
  for (const t of answers.targets) {
    if (t.id === 'ours') continue;
    const paired = median(t.runs.map((r, i) => (oursRuns[i]?.qps ?? Number.NaN) / r.qps));
    ratios[t.id] = { qps: ours / t.qps.median, paired, cpu: t.cpuUsPerQuery.median / oursUs };
    log(
      `  ours/${t.id.padEnd(12)} ${(ours / t.qps.median).toFixed(2).padStart(6)} ${paired.toFixed(2).padStart(8)} ${(t.cpuUsPerQuery.median / oursUs).toFixed(2).padStart(8)}`,
    );
  }
  const o = answers.targets[0];
  const ceiling = by.get('ceiling');
  const dns2 = by.get('dns2');
  if (ceiling)
    targets.push({
      target: 'ours >= 95 % of the dgram ceiling (q/s medians)',
      value: `${round((100 * ours) / ceiling)} % (paired ${round(100 * (ratios.ceiling?.paired ?? 0))} %, CPU ${round(100 * (ratios.ceiling?.cpu ?? 0))} %)`,
      met: ours >= 0.95 * ceiling,
    });
  if (dns2)
    targets.push({
      target: 'ours >= 4x plain dns2',
      value: `${(ours / dns2).toFixed(2)}x`,
      met: ours >= 4 * dns2,
    });
  if (o) {
    targets.push({
      target: 'CPU per query < 20 µs',
      value: `${o.cpuUsPerQuery.median.toFixed(1)} µs`,
      met: o.cpuUsPerQuery.median < 20,
    });
    targets.push({
      target: 'RSS < 70 MB under load',
      value: `VmHWM ${o.hwmMb.toFixed(0)} MB (idle ${answers.ours.idleRssMb.toFixed(0)} MB)`,
      met: o.hwmMb < 70,
    });
  }
  const lostMax = Math.max(...answers.fixedRate.runs.map((r) => r.lost));
  targets.push({
    target: 'no loss at 80 % of max rate',
    value: `-Q ${answers.fixedRate.rate}: lost ${answers.fixedRate.runs.map((r) => r.lost).join('/')} of ~${Math.round(answers.fixedRate.runs[0]?.sent ?? 0)}`,
    met: lostMax === 0,
  });
}
if (probeLoop) {
  log('\nprobe loop (1 s interval, timeout 500 ms, one origin target):');
  log(
    `${'pools'.padStart(6)}  via     ${'cpu %core'.padStart(9)}${'rounds/s'.padStart(10)}${'period ms'.padStart(10)}${'probe ms'.padStart(9)}${'late %'.padStart(8)}${'failed'.padStart(7)}${'RSS MB'.padStart(7)}${'squids %'.padStart(9)}`,
  );
  for (const r of probeLoop) {
    if ('error' in r) {
      log(`${String(r.pools).padStart(6)}  ${r.via.padEnd(7)} no measurement: ${r.error}`);
      continue;
    }
    log(
      `${String(r.pools).padStart(6)}  ${r.via.padEnd(7)} ${(r.cpuCores * 100).toFixed(1).padStart(9)}${Math.round(r.roundsPerSecond).toString().padStart(10)}` +
        `${r.periodMs.toFixed(0).padStart(10)}${r.probeLatencyMs.toFixed(1).padStart(9)}${r.latePct.toFixed(1).padStart(8)}${String(r.failedRounds).padStart(7)}` +
        `${r.rssMb.toFixed(0).padStart(7)}${(r.squidCpuCores === undefined ? '-' : (r.squidCpuCores * 100).toFixed(0)).padStart(9)}`,
    );
  }
  for (const r of probeLoop.filter((x) => x.pools >= 1000)) {
    targets.push({
      target: `1000 pools at 1 s on one core, rounds late <= 10 % (${r.via})`,
      value:
        'error' in r
          ? `not served: ${r.error}`
          : `${(r.cpuCores * 100).toFixed(0)} % of a core, late ${r.latePct.toFixed(1)} %`,
      met: 'error' in r ? false : r.cpuCores < 1 && r.latePct <= 10,
    });
  }
}
if (sidecar) {
  log('\nsidecar:');
  log(
    `  spawn -> first /readyz answer: ${sidecar.startToFirstAnswerMs.median.toFixed(0)} ms (${sidecar.startToFirstAnswerMs.min.toFixed(0)}-${sidecar.startToFirstAnswerMs.max.toFixed(0)})`,
  );
  log(
    `  spawn -> /readyz 200:          ${sidecar.startToReadyMs.median.toFixed(0)} ms (${sidecar.startToReadyMs.min.toFixed(0)}-${sidecar.startToReadyMs.max.toFixed(0)})`,
  );
  log(`  RSS ${sidecar.rssMb.median.toFixed(0)} MB, peak ${sidecar.hwmMb.median.toFixed(0)} MB`);
  log(
    `  squid SIGSTOPped: /readyz 503 after ${sidecar.hungDetectMs.toFixed(0)} ms; answers in ${sidecar.hungReadyzMs.median.toFixed(2)} ms median, ${sidecar.hungReadyzMs.max.toFixed(2)} ms max (statuses ${sidecar.hungReadyzStatuses.join(',')})`,
  );
}
if (targets.length) {
  log('\ntargets:');
  for (const t of targets) log(`  ${t.met ? 'MET ' : 'MISS'}  ${t.target}: ${t.value}`);
}
log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);

const date = new Date().toISOString();
const out = values.out ?? join(HERE, 'results', `${date.slice(0, 10)}.json`);
await mkdir(dirname(out), { recursive: true });
await writeFile(
  out,
  `${JSON.stringify({ date, machine, versions, settings: { reps, seconds, pinned: values.pin }, answers, ratios, probeLoop, sidecar, targets }, null, 2)}\n`,
);
log(`wrote ${out}`);
