// A real recursive resolver in front of the real `dns` binary, as the cluster's CoreDNS is in
// production: Unbound (test/helpers/unbound.ts) with a stub zone for egress.svc pointing at our
// server. Addresses: origin 127.0.0.10:80, squids 127.0.0.11-12:3128, our server and Unbound on
// 127.0.0.1 at free ports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, digAnswer } from '../helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../helpers/dns-process.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../helpers/squid.js';
import { startUnbound, type Unbound } from '../helpers/unbound.js';
import { waitFor } from '../helpers/wait.js';

const TTL_S = 2;
const PRIMARY = '10.0.0.1';
const SECONDARY = '10.0.0.2';

let origin: Origin;
let fleet: SquidFleet | undefined;
let server: DnsProcess | undefined;
let unbound: Unbound | undefined;
let resolver: { host: string; port: number };

const direct = () => {
  if (!server) throw new Error('the dns server did not start');
  return server.dnsAddress;
};

function answer(at: { host: string; port: number }, name = 'proxy.egress.svc'): Promise<string> {
  return digAnswer(at, name);
}

beforeAll(async () => {
  origin = await startOrigin();
  fleet = await startSquids(
    [
      { label: 'primary', host: '127.0.0.11' },
      { label: 'secondary', host: '127.0.0.12' },
    ],
    { probeUrl: 'http://origin.test/' },
  );
  server = await startDnsServer({
    dns: { zone: 'egress.svc', ttl: TTL_S },
    probe: {
      targets: ['http://origin.test/'],
      interval: '500ms',
      timeout: '400ms',
      fall: 2,
      rise: 2,
      fastInterval: '200ms',
    },
    services: [
      {
        name: 'proxy',
        pools: [
          { name: 'primary', proxy: 'http://127.0.0.11:3128', address: PRIMARY },
          { name: 'secondary', proxy: 'http://127.0.0.12:3128', address: SECONDARY },
        ],
      },
    ],
  });
  // Unbound would cache the SERVFAIL of the pending phase; it starts once there is an answer.
  await waitFor(async () => (await answer(direct())) === PRIMARY, {
    timeoutMs: 10_000,
    what: 'the dns server to answer the primary',
  });

  unbound = await startUnbound({ stub: direct() });
  resolver = unbound.address;
}, 60_000);

afterAll(async () => {
  await unbound?.stop();
  await server?.dispose();
  await fleet?.stopAll();
  await origin?.close();
}, 30_000);

describe('dig through Unbound (standing in for CoreDNS)', () => {
  it('answers the service as the server does, with recursion available and TTL no more than dns.ttl', async () => {
    const viaResolver = await dig(resolver, 'proxy.egress.svc', 'A');
    const viaServer = await dig(direct(), 'proxy.egress.svc', 'A', '+norec');
    expect(viaResolver.status).toBe('NOERROR');
    expect(viaResolver.flags).toContain('ra');
    const data = (lines: readonly string[]) => lines.map((l) => l.split(' ').at(-1));
    expect(data(viaResolver.answer)).toEqual(data(viaServer.answer));
    expect(data(viaResolver.answer)).toEqual([PRIMARY]);
    const ttl = Number(viaResolver.answer[0]?.split(' ')[1]);
    expect(ttl).toBeLessThanOrEqual(TTL_S);
  });

  it('passes NXDOMAIN through for another name in the zone', async () => {
    expect((await dig(resolver, 'nope.egress.svc', 'A')).status).toBe('NXDOMAIN');
    expect((await dig(direct(), 'nope.egress.svc', 'A')).status).toBe('NXDOMAIN');
  });

  it('serves the _status TXT as the server does', async () => {
    // As a set: Unbound rotates the records of an RRset (rrset-roundrobin), as CoreDNS's cache
    // may; each string names its pool, so order carries nothing.
    const strings = (lines: readonly string[]) => lines.map((l) => l.replace(/^\S+ \d+ IN TXT /, '')).sort();
    // A transition between the two queries would change the strings; ask until two agree.
    await waitFor(
      async () => {
        const viaServer = await dig(direct(), '_status.proxy.egress.svc', 'TXT', '+norec');
        const viaResolver = await dig(resolver, '_status.proxy.egress.svc', 'TXT');
        expect(viaResolver.status).toBe('NOERROR');
        expect(strings(viaResolver.answer)).toEqual(strings(viaServer.answer));
        return true;
      },
      { timeoutMs: 5_000, what: 'the same _status TXT directly and through Unbound' },
    );
    const txt = (await dig(resolver, '_status.proxy.egress.svc', 'TXT')).answer;
    expect(txt).toHaveLength(2);
    expect(txt.find((l) => l.includes('pool=primary'))).toMatch(/pool=primary state=healthy selected=yes /);
  });

  it('follows a failover and the failback within TTL plus a margin', async () => {
    const primary = fleet?.squids[0] as Squid;
    // Warm Unbound's cache with the primary's answer, then fail the primary.
    expect(await answer(resolver)).toBe(PRIMARY);
    await primary.kill();
    const flipped = Date.now();
    await waitFor(async () => (await answer(direct())) === SECONDARY, {
      timeoutMs: 10_000,
      what: 'the server to answer the secondary',
    });
    const serverFlippedAt = Date.now();
    await waitFor(async () => (await answer(resolver)) === SECONDARY, {
      timeoutMs: TTL_S * 1000 + 3_000,
      intervalMs: 100,
      what: 'Unbound to answer the secondary within TTL + 3 s',
    });
    const lagMs = Date.now() - serverFlippedAt;
    expect(lagMs).toBeLessThanOrEqual(TTL_S * 1000 + 3_000);

    await primary.start();
    await waitFor(async () => (await answer(direct())) === PRIMARY, {
      timeoutMs: 10_000,
      what: 'the server to fail back',
    });
    const backAt = Date.now();
    await waitFor(async () => (await answer(resolver)) === PRIMARY, {
      timeoutMs: TTL_S * 1000 + 3_000,
      intervalMs: 100,
      what: 'Unbound to fail back within TTL + 3 s',
    });
    console.info(
      `unbound: failover seen by the server ${serverFlippedAt - flipped} ms after the kill, ` +
        `by Unbound ${lagMs} ms later; failback lag ${Date.now() - backAt} ms`,
    );
  });
});
