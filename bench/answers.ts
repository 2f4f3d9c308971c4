// Section 1: the hot answer (proxy.egress.svc A over UDP) of our server and its peers, at maximum
// rate (dnsperf -q 200 outstanding on 4 sockets) and at a fixed 80 % of our maximum (-Q).
// Every server runs at once; the runs take turns, the order rotated per repeat, so a noisy moment
// on this shared machine spreads over all of them rather than landing on one.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digShort } from '../test/helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../test/helpers/dns-process.js';
import { waitFor } from '../test/helpers/wait.js';
import { type Measured, measure } from './lib/dnsperf.js';
import type { Fleet } from './lib/fleet.js';
import { IMAGE_NODE_OPTIONS } from './lib/image-env.js';
import { type Peer, startCeiling, startDns2, startGdnsd, startPdns } from './lib/peers.js';
import { memory } from './lib/proc.js';
import { type Summary, summarize } from './lib/stats.js';

export interface AnswerOptions {
  readonly reps: number;
  readonly seconds: number;
  /** Pin every server to core 0 and dnsperf to core 1 (pinned, Node servers measured bimodal here; off by default). */
  readonly pin: boolean;
  /** Peers to start (ceiling, dns2, gdnsd, pdns); default all. */
  readonly peers?: readonly string[];
  readonly log: (line: string) => void;
}

export interface TargetResult {
  readonly id: string;
  readonly server: string;
  readonly qname: string;
  readonly note: string;
  readonly runs: readonly Measured[];
  readonly qps: Summary;
  readonly avgLatencyMs: Summary;
  readonly maxLatencyMs: Summary;
  readonly lostPct: Summary;
  readonly cpuUsPerQuery: Summary;
  readonly rssMb: number;
  readonly hwmMb: number;
}

export interface AnswerResults {
  readonly pinned: boolean;
  readonly targets: readonly TargetResult[];
  readonly skipped: readonly { id: string; why: string }[];
  /** Ours at a fixed 80 % of our median maximum rate. */
  readonly fixedRate: {
    readonly rate: number;
    readonly runs: readonly Measured[];
    readonly lostPct: Summary;
  };
  readonly ours: { readonly idleRssMb: number; readonly config: unknown };
}

interface Target {
  readonly id: string;
  readonly server: string;
  readonly qname: string;
  readonly note: string;
  readonly pid: number;
  readonly host: string;
  readonly port: number;
}

export function oursConfig(fleet: Fleet) {
  return {
    dns: { zone: 'egress.svc', ttl: 5 },
    probe: { targets: [fleet.targetUrl], interval: '1s', timeout: '500ms' },
    services: [
      {
        name: 'proxy',
        pools: fleet.squids.map((squid, i) => ({
          name: ['primary', 'secondary', 'tertiary'][i] ?? `pool${i}`,
          proxy: squid.address,
          address: `10.0.0.${i + 1}`,
        })),
      },
    ],
  };
}

export async function runAnswers(fleet: Fleet, options: AnswerOptions): Promise<AnswerResults> {
  const { log } = options;
  const host = '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'ef-bench-q-'));
  const files = { proxy: join(dir, 'proxy.txt'), plain: join(dir, 'plain.txt') };
  await writeFile(files.proxy, 'proxy.egress.svc A\n');
  await writeFile(files.plain, 'plain.egress.svc A\n');

  const peers: Peer[] = [];
  const skipped: { id: string; why: string }[] = [];
  let ours: DnsProcess | undefined;
  try {
    const config = oursConfig(fleet);
    ours = await startDnsServer(config, { env: { NODE_OPTIONS: IMAGE_NODE_OPTIONS } });
    const oursServer = ours.dnsAddress;
    await waitFor(async () => (await digShort(oursServer, 'proxy.egress.svc', 'A'))[0] === '10.0.0.1', {
      timeoutMs: 15_000,
      what: 'our server to answer the primary pool',
    });
    const idleRssMb = memory(ours.pid).rssMb;
    const targets: Target[] = [
      {
        id: 'ours',
        server: 'egress-failover (ours)',
        qname: 'proxy',
        note: '3 pools through 3 squids, 1 s deep checks',
        pid: ours.pid,
        ...ours.dnsAddress,
      },
    ];
    const squids = fleet.squids.map((s) => ({ host: s.host, port: s.port }));
    const starters: [string, () => Promise<Peer>, (p: Peer) => Target[]][] = [
      [
        'ceiling',
        () => startCeiling(host),
        (p) => [
          {
            id: 'ceiling',
            server: 'node:dgram ceiling',
            qname: 'proxy',
            note: 'one precomputed reply',
            ...at(p),
          },
        ],
      ],
      [
        'dns2',
        () => startDns2(host),
        (p) => [
          { id: 'dns2', server: 'plain dns2 3.1.1', qname: 'proxy', note: 'Packet decode/encode', ...at(p) },
        ],
      ],
      [
        'gdnsd',
        () => startGdnsd(host, { squids, targetUrl: fleet.targetUrl }),
        (p) => [
          { id: 'gdnsd-plain', server: 'gdnsd', qname: 'plain', note: 'static A', ...at(p) },
          {
            id: 'gdnsd-dyna',
            server: 'gdnsd',
            qname: 'proxy',
            note: 'DYNA simplefo, http_status via squid',
            ...at(p),
          },
        ],
      ],
      [
        'pdns',
        () => startPdns(host, { squids, targetUrl: fleet.targetUrl }),
        (p) => [
          {
            id: 'pdns-plain',
            server: 'PowerDNS auth',
            qname: 'plain',
            note: 'static A, bind backend',
            ...at(p),
          },
          {
            id: 'pdns-lua',
            server: 'PowerDNS auth',
            qname: 'proxy',
            note: 'LUA ifurlup, packet cache on',
            ...at(p),
          },
        ],
      ],
    ];
    for (const [id, start, toTargets] of starters) {
      if (options.peers && !options.peers.includes(id)) continue;
      try {
        const p = await start();
        peers.push(p);
        targets.push(...toTargets(p));
        log(`  started ${id} (pid ${p.pid}, ${p.host}:${p.port})`);
      } catch (err) {
        const why = err instanceof Error ? (err.message.split('\n')[0] ?? String(err)) : String(err);
        skipped.push({ id, why });
        log(`  skipped ${id}: ${why}`);
      }
    }

    if (options.pin) {
      for (const t of new Set(targets.map((t) => t.pid)))
        execFileSync('taskset', ['-a', '-p', '-c', '0', String(t)]);
    }
    const core = options.pin ? 1 : undefined;

    const runs = new Map<string, Measured[]>(targets.map((t) => [t.id, []]));
    for (let rep = 0; rep < options.reps; rep++) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length] as Target);
      for (const t of order) {
        const result = await measure(t.pid, {
          host: t.host,
          port: t.port,
          queryFile: t.qname === 'plain' ? files.plain : files.proxy,
          seconds: options.seconds,
          core,
        });
        runs.get(t.id)?.push(result);
        log(
          `  rep ${rep + 1}/${options.reps} ${t.id.padEnd(12)} ${Math.round(result.qps)
            .toString()
            .padStart(
              7,
            )} q/s  cpu ${result.cpuUsPerQuery.toFixed(1)} µs/q  lost ${result.lostPct.toFixed(2)} %`,
        );
      }
    }

    const results = targets.map((t): TargetResult => {
      const r = runs.get(t.id) ?? [];
      const mem = memory(t.pid);
      return {
        id: t.id,
        server: t.server,
        qname: `${t.qname}.egress.svc A`,
        note: t.note,
        runs: r,
        qps: summarize(r.map((x) => x.qps)),
        avgLatencyMs: summarize(r.map((x) => x.avgLatencyMs)),
        maxLatencyMs: summarize(r.map((x) => x.maxLatencyMs)),
        lostPct: summarize(r.map((x) => x.lostPct)),
        cpuUsPerQuery: summarize(r.map((x) => x.cpuUsPerQuery)),
        rssMb: mem.rssMb,
        hwmMb: mem.hwmMb,
      };
    });

    // No loss at 80 % of our maximum: an open-loop fixed rate, where a slow moment shows as loss.
    const oursMax = results[0]?.qps.median ?? 0;
    const rate = Math.round(oursMax * 0.8);
    const fixed: Measured[] = [];
    for (let rep = 0; rep < options.reps; rep++) {
      const result = await measure(ours.pid, {
        ...ours.dnsAddress,
        queryFile: files.proxy,
        seconds: options.seconds,
        rate,
        core,
      });
      fixed.push(result);
      log(
        `  fixed ${rate} q/s rep ${rep + 1}: ${Math.round(result.qps)} q/s, lost ${result.lost} (${result.lostPct.toFixed(3)} %), max ${result.maxLatencyMs.toFixed(1)} ms`,
      );
    }
    return {
      pinned: options.pin,
      targets: results,
      skipped,
      fixedRate: { rate, runs: fixed, lostPct: summarize(fixed.map((x) => x.lostPct)) },
      ours: { idleRssMb, config },
    };
  } finally {
    await Promise.allSettled(peers.map((p) => p.stop()));
    await ours?.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

function at(p: Peer) {
  return { pid: p.pid, host: p.host, port: p.port };
}
