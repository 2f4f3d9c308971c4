// DNS over TCP under a hostile neighbour (RFC 7766 6.2 limits, src/dns/tcp-slots.ts): how soon a
// new client is answered over TCP while 1,000 connections drip one byte every 2 s, and while
// 10,000 connections sit idle; and how UDP answers fare meanwhile. The goal: every new TCP client
// answered within 1 s.
//
//   npx tsc -p tsconfig.build.json && node --import ./bench/register.js bench/tcp-slots.ts [seconds=10]
//
// Runs the compiled server (dist/) as operators do, on 127.0.1.30 with crowds from 127.0.5.0/24 and
// 127.0.6.0/24 (loopback, so no root needed), separate from the integration tests' addresses; not
// part of `npm run bench`. Prints one line per phase: TCP answer times of a new client (asked every
// 100 ms from 127.0.7.1), failures, UDP answer times from a steady stream, and the server's RSS.
import { type Crowd, openCrowd, query, tcpExchange } from '../test/helpers/dns-clients.js';
import { startDnsServer } from '../test/helpers/dns-process.js';
import { startUdpStream } from '../test/helpers/udp-stream.js';
import { waitFor } from '../test/helpers/wait.js';
import { memory } from './lib/proc.js';

const seconds = Number(process.argv[2] ?? 10);
const TCP_GOAL_MS = 1_000;

const server = await startDnsServer({
  dns: { listen: '127.0.1.30:0' },
  // No proxy answers here: with onAllDown: all the name is answered all the same, which is all a
  // measure of connection slots needs.
  probe: { targets: ['http://127.0.1.31/'], interval: '1s', timeout: '200ms' },
  services: [
    {
      name: 'proxy',
      onAllDown: 'all',
      pools: [{ name: 'a', proxy: 'http://127.0.1.31:3128', address: '10.0.0.1' }],
    },
  ],
});

/** Asks over TCP from a fresh connection every 100 ms for `seconds`; answer times and failures. */
async function askRepeatedly(): Promise<{ times: number[]; failures: string[] }> {
  const times: number[] = [];
  const failures: string[] = [];
  const until = Date.now() + seconds * 1_000;
  for (let id = 1; Date.now() < until; id++) {
    const began = performance.now();
    try {
      const [reply] = await tcpExchange(server.dnsAddress, [query(id, 'proxy.egress.svc')], '127.0.7.1');
      if (reply?.readUInt16BE(0) !== id) failures.push('wrong id');
      times.push(performance.now() - began);
    } catch (err) {
      failures.push((err as Error).message);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { times, failures };
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;

async function phase(
  name: string,
  crowd: (() => Crowd) | undefined,
  ready: (c: Crowd) => boolean,
): Promise<boolean> {
  const c = crowd?.();
  try {
    if (c) await waitFor(() => ready(c), { what: `${name}: the crowd in place`, timeoutMs: 60_000 });
    const stream = startUdpStream(server.dnsAddress, { intervalMs: 10 });
    const { times, failures } = await askRepeatedly();
    const udp = await stream.stop(50);
    const sorted = [...times].sort((a, b) => a - b);
    const rss = memory(server.pid);
    const met = failures.length === 0 && (sorted.at(-1) ?? Infinity) < TCP_GOAL_MS;
    console.log(
      `${name.padEnd(34)} TCP new client: ${times.length} asked, p50 ${pct(sorted, 0.5).toFixed(1)} ms, ` +
        `p99 ${pct(sorted, 0.99).toFixed(1)} ms, max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} ms, ` +
        `${failures.length} failed${failures.length ? ` (${failures[0]})` : ''} | UDP: ${udp.answered}/${udp.sent}, ` +
        `p99 ${udp.p99Ms} ms, max ${udp.maxMs} ms | server RSS ${rss.rssMb.toFixed(0)} MB, HWM ${rss.hwmMb.toFixed(0)} MB` +
        `${c ? ` | crowd: ${c.settled()} connected, ${c.closed()} closed by the server, ${c.reconnects()} reconnects` : ''}` +
        ` | goal (<${TCP_GOAL_MS} ms, none failed): ${met ? 'met' : 'NOT met'}`,
    );
    return met;
  } finally {
    c?.stop();
  }
}

let allMet = true;
try {
  console.log(`egress-failover DNS-over-TCP slots — ${new Date().toISOString()}, ${seconds} s per phase`);
  allMet = (await phase('quiet', undefined, () => true)) && allMet;
  allMet =
    (await phase(
      '1,000 connections dripping 1 B/2 s',
      () => openCrowd(server.dnsAddress, { sources: 20, perSource: 50, base: '127.0.5', drip: true }),
      (c) => c.settled() >= 1_000,
    )) && allMet;
  allMet =
    (await phase(
      '10,000 idle connections',
      () => openCrowd(server.dnsAddress, { sources: 100, perSource: 100, base: '127.0.6', drip: false }),
      (c) => c.settled() >= 10_000,
    )) && allMet;
} finally {
  await server.stop();
  await server.dispose();
}
process.exitCode = allMet ? 0 : 1;
