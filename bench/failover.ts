// Failover and failback time of the real `dns` binary, as a client sees it through dig.
//
//   npx tsc -p tsconfig.build.json && node --import ./bench/register.js bench/failover.ts
//   BENCH_REPEAT=5 node --import ./bench/register.js bench/failover.ts     (default 3 per fault)
//
// Needs root (the origin binds 127.0.0.10:80; Squid drops to `proxy`), apt squid and dig, and the
// loopback addresses of the integration tests (origin 127.0.0.10:80, squids 127.0.0.11-12:3128):
// do not run it while test/integration is running.
//
// Setup: the test config (interval 500ms, timeout 400ms, fall 2, rise 2, fastInterval 200ms, ttl 1),
// pools primary (10.0.0.1) and secondary (10.0.0.2). For each fault, repeated:
//   failover = from the fault's injection (the call that starts it) to the first dig reply showing
//              the secondary; failback = from the restoration call to the first reply showing the
//              primary again. dig asks every 50 ms, so figures carry up to ~50 ms + one dig of slack.
//   kill      SIGKILL the primary squid;          restore: start it again (Squid's start-up included)
//   hang      SIGSTOP;                             restore: SIGCONT
//   no-egress squid -k reconfigure to an outgoing address the host lacks (503 ERR_CONNECT_FAIL);
//             restore: reconfigure back to direct (both include the reconfigure itself)
// Before each sample the server must be steady: both pools healthy and settled, the primary
// answered. Where in its probe interval a fault lands is left to chance: that spread is part of
// what an operator gets. Expected from the config: kill ~ up to interval + fastInterval (refused at
// once); hang ~ up to interval + 2 x timeout + fastInterval; failback ~ up to interval + fastInterval
// after the proxy works again.
//
// Prints a table (median, min, max in ms) and writes every sample to bench/results/failover.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dig } from '../test/helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../test/helpers/dns-process.js';
import { type Origin, startOrigin } from '../test/helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../test/helpers/squid.js';
import { waitFor } from '../test/helpers/wait.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'results/failover.json');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const POLL_MS = 50;
const PRIMARY = '10.0.0.1';
const SECONDARY = '10.0.0.2';

// Damping off: the bench fails and restores the primary over and over on purpose, and measures
// rise/fall, which a held-down recovery would hide.
const PROBE = {
  interval: '500ms',
  timeout: '400ms',
  fall: 2,
  rise: 2,
  fastInterval: '200ms',
  flapThreshold: 0,
} as const;

interface Fault {
  readonly name: 'kill' | 'hang' | 'no-egress';
  inject(squid: Squid): Promise<void>;
  restore(squid: Squid): Promise<void>;
}

const FAULTS: readonly Fault[] = [
  { name: 'kill', inject: (s) => s.kill(), restore: (s) => s.start() },
  {
    name: 'hang',
    inject: async (s) => s.stop(),
    restore: async (s) => s.cont(),
  },
  { name: 'no-egress', inject: (s) => s.cutEgress(), restore: (s) => s.restoreEgress() },
];

interface Sample {
  readonly fault: Fault['name'];
  readonly run: number;
  /** Injection call -> first dig reply with the secondary. */
  readonly failoverMs: number;
  /** Restoration call -> first dig reply with the primary. */
  readonly failbackMs: number;
  /** How long the injection and restoration calls themselves took (reconfigure, start-up). */
  readonly injectCallMs: number;
  readonly restoreCallMs: number;
  /** The transition reason the server logged for the primary. */
  readonly reason: string | undefined;
}

async function answer(server: DnsProcess): Promise<string> {
  const reply = await dig(server.dnsAddress, 'proxy.egress.svc', 'A', '+norec');
  if (reply.status !== 'NOERROR') return reply.status;
  return reply.answer
    .map((line) => line.split(' ').at(-1))
    .sort()
    .join(',');
}

/**
 * Starts `action` and polls dig from the same instant until it shows `expected`; returns the time
 * from the start to that reply, and how long the action call took.
 */
async function timeUntil(
  server: DnsProcess,
  expected: string,
  action: () => Promise<void>,
  what: string,
): Promise<{ ms: number; callMs: number }> {
  const started = performance.now();
  let callMs = 0;
  const acting = action().then(() => {
    callMs = performance.now() - started;
  });
  let seenAt: number | undefined;
  await waitFor(
    async () => {
      if ((await answer(server)) !== expected) return false;
      seenAt = performance.now();
      return true;
    },
    { timeoutMs: 30_000, intervalMs: POLL_MS, what },
  );
  await acting;
  return { ms: Math.round((seenAt ?? started) - started), callMs: Math.round(callMs) };
}

async function steady(server: DnsProcess): Promise<void> {
  await waitFor(
    async () => {
      const status = await server.status();
      const ok = status.services.every((s) => s.pools.every((p) => p.state === 'healthy' && !p.inTransition));
      return ok && (await answer(server)) === PRIMARY;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'both pools healthy and the primary answered' },
  );
}

function stats(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median: Math.round(median), min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0 };
}

async function main(): Promise<void> {
  let origin: Origin | undefined;
  let fleet: SquidFleet | undefined;
  let server: DnsProcess | undefined;
  const cleanup = async () => {
    for (const squid of fleet?.squids ?? []) squid.cont();
    await server?.dispose();
    await fleet?.stopAll();
    await origin?.close();
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const samples: Sample[] = [];
  try {
    origin = await startOrigin();
    fleet = await startSquids(
      [
        { label: 'primary', host: '127.0.0.11' },
        { label: 'secondary', host: '127.0.0.12' },
      ],
      { probeUrl: 'http://origin.test/' },
    );
    const primary = fleet.squids[0] as Squid;
    server = await startDnsServer({
      dns: { zone: 'egress.svc', ttl: 1 },
      probe: { targets: ['http://origin.test/'], ...PROBE },
      services: [
        {
          name: 'proxy',
          onAllDown: 'servfail',
          pools: [
            { name: 'primary', proxy: primary.proxyUrl, address: PRIMARY },
            { name: 'secondary', proxy: (fleet.squids[1] as Squid).proxyUrl, address: SECONDARY },
          ],
        },
      ],
    });
    const running = server;

    for (const fault of FAULTS) {
      for (let run = 1; run <= REPEAT; run++) {
        await steady(running);
        const before = running.transitions('proxy').length;
        const down = await timeUntil(
          running,
          SECONDARY,
          () => fault.inject(primary),
          `${fault.name}: the secondary`,
        );
        const reason = running
          .transitions('proxy')
          .slice(before)
          .find((t) => t.pool === 'primary' && t.to === 'unhealthy')?.reason;
        const up = await timeUntil(
          running,
          PRIMARY,
          () => fault.restore(primary),
          `${fault.name}: the primary again`,
        );
        const sample: Sample = {
          fault: fault.name,
          run,
          failoverMs: down.ms,
          failbackMs: up.ms,
          injectCallMs: down.callMs,
          restoreCallMs: up.callMs,
          reason,
        };
        samples.push(sample);
        process.stderr.write(
          `${fault.name} #${run}: failover ${down.ms} ms, failback ${up.ms} ms (${reason ?? '?'})\n`,
        );
      }
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const rows = FAULTS.map((fault) => {
    const of = samples.filter((s) => s.fault === fault.name);
    return {
      fault: fault.name,
      failover: stats(of.map((s) => s.failoverMs)),
      failback: stats(of.map((s) => s.failbackMs)),
      injectCall: stats(of.map((s) => s.injectCallMs)),
      restoreCall: stats(of.map((s) => s.restoreCallMs)),
    };
  });
  const pad = (text: string | number, width: number) => String(text).padStart(width);
  const lines = [
    `failover / failback through dig, ${REPEAT} runs each, ms (interval 500ms, timeout 400ms, fall 2, rise 2, fastInterval 200ms)`,
    `${'fault'.padEnd(10)}${pad('failover med', 14)}${pad('min', 7)}${pad('max', 7)}${pad('failback med', 14)}${pad('min', 7)}${pad('max', 7)}${pad('restore call', 14)}`,
    ...rows.map(
      (r) =>
        `${r.fault.padEnd(10)}${pad(r.failover.median, 14)}${pad(r.failover.min, 7)}${pad(r.failover.max, 7)}` +
        `${pad(r.failback.median, 14)}${pad(r.failback.min, 7)}${pad(r.failback.max, 7)}${pad(r.restoreCall.median, 14)}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(
    RESULTS,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadavg: loadavg(),
        config: { ...PROBE, ttl: 1, pollMs: POLL_MS, repeat: REPEAT },
        summary: rows,
        samples,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`written: ${RESULTS}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench/failover: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
