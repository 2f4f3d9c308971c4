// A neighbour exhausts the dns server's file descriptors: the real binary under a low RLIMIT_NOFILE
// (prlimit), flooded with TCP connections to its DNS port, while two real Squids and the origin are
// fine. Its probes then fail for a local reason (EMFILE): that must never be the proxies' fault. Before
// local errors were told apart, every pool went unhealthy and proxy.egress.svc answered SERVFAIL.
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../helpers/dns-process.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

/** Low enough to exhaust with a few dozen connections, high enough to start. */
const NOFILE = 256;
const PRIMARY = '10.0.0.1';

let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
let server: DnsProcess | undefined;
const running = (): DnsProcess => {
  if (!server) throw new Error('the dns server did not start');
  return server;
};

beforeAll(async () => {
  origin = await startOrigin();
  fleet = await startSquids(
    [
      { label: 'primary', host: '127.0.0.11' },
      { label: 'secondary', host: '127.0.0.12' },
    ],
    { probeUrl: 'http://origin.test/' },
  );
  server = await startDnsServer(
    {
      dns: { zone: 'egress.svc', ttl: 1 },
      probe: { targets: ['http://origin.test/'], interval: '500ms', timeout: '400ms', fastInterval: '200ms' },
      services: [
        {
          name: 'proxy',
          pools: [
            { name: 'primary', proxy: 'http://127.0.0.11:3128', address: PRIMARY },
            { name: 'secondary', proxy: 'http://127.0.0.12:3128', address: '10.0.0.2' },
          ],
        },
      ],
    },
    { wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`] },
  );
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  await fleet?.stopAll();
  await origin?.close();
}, 30_000);

/** Keeps `count` TCP connections open to the DNS port, opening a new one whenever one is closed. */
function flood(count: number) {
  const sockets = new Set<Socket>();
  let on = true;
  let opened = 0;
  const open = () => {
    if (!on) return;
    // From many source addresses, as many neighbours would: the server limits connections per source.
    opened += 1;
    const socket = connect({
      port: running().dnsAddress.port,
      host: running().dnsAddress.host,
      localAddress: `127.0.1.${(opened % 50) + 1}`,
    });
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      sockets.delete(socket);
      setTimeout(open, 20);
    });
  };
  for (let i = 0; i < count; i++) open();
  return () => {
    on = false;
    for (const socket of sockets) socket.destroy();
  };
}

const openFds = () => readdirSync(`/proc/${running().pid}/fd`).length;

async function primaryLine(): Promise<string> {
  const reply = await dig(running().dnsAddress, '_status.proxy.egress.svc', 'TXT', '+norec');
  return reply.answer.find((line) => line.includes('pool=primary')) ?? '';
}

describe('file descriptors exhausted by a neighbour', () => {
  it('probes failing with EMFILE are not held against the proxies: no flip, no SERVFAIL, probe_error=local', async () => {
    await waitFor(async () => (await primaryLine()).includes('state=healthy'), {
      timeoutMs: 10_000,
      what: 'the primary healthy',
    });
    const stop = flood(NOFILE);
    const answers: string[] = [];
    try {
      await waitFor(() => openFds() >= NOFILE - 2, { timeoutMs: 10_000, what: 'the fd limit reached' });
      // Over UDP: the server's socket is open already and needs no new descriptor.
      const line = await waitFor(
        async () => {
          const reply = await dig(running().dnsAddress, 'proxy.egress.svc', 'A', '+norec');
          answers.push(
            reply.status === 'NOERROR' ? (reply.answer[0]?.split(' ').at(-1) ?? 'empty') : reply.status,
          );
          const status = await primaryLine();
          return status.includes('probe_error=local:EMFILE') ? status : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'a round judged local (probe_error=local:EMFILE)' },
      );
      expect(line).toMatch(/state=healthy selected=yes/);
      // A few more rounds under the flood: still the primary, every time.
      for (let i = 0; i < 10; i++) {
        const reply = await dig(running().dnsAddress, 'proxy.egress.svc', 'A', '+norec');
        answers.push(
          reply.status === 'NOERROR' ? (reply.answer[0]?.split(' ').at(-1) ?? 'empty') : reply.status,
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      stop();
    }
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.filter((a) => a !== PRIMARY)).toEqual([]);
    // Once the descriptors are back, so are the real verdicts.
    await waitFor(async () => /state=healthy selected=yes since=\S+ reason=ok/.test(await primaryLine()), {
      timeoutMs: 10_000,
      what: 'the primary probed again (reason=ok)',
    });
    const warnings = running()
      .logs()
      .filter((l) => l.msg.startsWith('probe failed for a local reason'));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    // One warning per burst per pool, not one per round.
    expect(warnings.length).toBeLessThanOrEqual(4);
    expect(
      running()
        .transitions()
        .filter((t) => t.from !== 'unknown'),
    ).toEqual([]);
  });
});
