// The whole path a client in the cluster takes, on this machine: coredns/Corefile.egress mirrored
// by a real Unbound forwarding egress.svc to the running DNS server (test/helpers/unbound.ts), two
// real Squids whose pools' `address` is the squid's own address (so the DNS answer IS the proxy to
// use, as the ClusterIP of squid-primary/secondary is in k8s/), and a real client: one shell
// command that resolves proxy.egress.svc through the resolver with dig and fetches the origin
// through the answered proxy with curl. Kill the primary: the same command reaches the origin
// through the secondary within the documented bound; restart it: the command fails back, and keeps
// working throughout.
//
// Addresses: origin 127.0.0.60:80 (origin.test in the squids' hosts_file), squids 127.0.0.61 and
// 127.0.0.62 on :3128, our server and Unbound on 127.0.0.1 at free ports.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digShort } from '../helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../helpers/dns-process.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../helpers/squid.js';
import { startUnbound, type Unbound } from '../helpers/unbound.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

const ORIGIN = '127.0.0.60';
const PRIMARY = '127.0.0.61';
const SECONDARY = '127.0.0.62';

// The test's probe timing and TTL, short so the test is quick; the arithmetic is the one of
// coredns/README.md ("Failover time") with these numbers.
const TTL_S = 2;
const PROBE = { interval: 500, timeout: 400, fastInterval: 200, fall: 2, rise: 2 };
// Steady-state rounds are spread by ±5 % jitter (README, "State").
const JITTER = 1.05;
// Detection, as coredns/README.md counts it: up to one interval until the first failing round
// starts, then fall x (timeout + fastInterval).
const DETECTION_MS = PROBE.interval * JITTER + PROBE.fall * (PROBE.timeout + PROBE.fastInterval);
// Failback is the mirror: up to one interval, then `rise` passing rounds.
const RECOVERY_MS = PROBE.interval * JITTER + PROBE.rise * (PROBE.timeout + PROBE.fastInterval);
// The resolver layer: Unbound keeps an answer for its TTL and no longer (cache-min-ttl 0), unlike
// CoreDNS, whose `cache` keeps every answer at least 5 s: in a cluster this term is
// max(TTL, 5 s) per cache layer. dig and curl cache nothing.
const RESOLVER_CACHE_MS = TTL_S * 1000;
// Process start-up of dig and curl, and scheduling on a shared 2-core machine.
const MARGIN_MS = 3_000;
const FAILOVER_BOUND_MS = DETECTION_MS + RESOLVER_CACHE_MS + MARGIN_MS;
const FAILBACK_BOUND_MS = RECOVERY_MS + RESOLVER_CACHE_MS + MARGIN_MS;

let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
let server: DnsProcess | undefined;
let unbound: Unbound | undefined;

/** The client, as a user would type it: resolve through the resolver, fetch through the answer. */
function clientCommand(resolverPort: number): string {
  return (
    `curl -sS --max-time 3 -w 'proxy=%{remote_ip}\\n' ` +
    `-x "http://$(dig +short @127.0.0.1 -p ${resolverPort} proxy.egress.svc | head -1):3128" ` +
    'http://origin.test/'
  );
}

interface ClientRun {
  readonly ok: boolean;
  /** The proxy curl connected to, when it got through. */
  readonly proxy: string | undefined;
  readonly output: string;
}

async function client(): Promise<ClientRun> {
  if (!unbound) throw new Error('unbound did not start');
  try {
    const { stdout } = await run('sh', ['-c', clientCommand(unbound.address.port)], { timeout: 10_000 });
    const proxy = /proxy=(\S+)/.exec(stdout)?.[1];
    return { ok: stdout.startsWith('200 from test origin'), proxy, output: stdout };
  } catch (err) {
    const failed = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, proxy: undefined, output: `${failed.stderr ?? ''}${failed.stdout ?? ''}` };
  }
}

const squid = (index: number) => fleet?.squids[index] as Squid;

beforeAll(async () => {
  origin = await startOrigin({ host: ORIGIN, port: 80 });
  const hosts = { 'origin.test': ORIGIN };
  fleet = await startSquids(
    [
      { label: 'e2eprimary', host: PRIMARY, hosts },
      { label: 'e2esecondary', host: SECONDARY, hosts },
    ],
    { probeUrl: 'http://origin.test/' },
  );
  server = await startDnsServer({
    dns: { zone: 'egress.svc', ttl: TTL_S },
    probe: {
      targets: ['http://origin.test/'],
      interval: `${PROBE.interval}ms`,
      timeout: `${PROBE.timeout}ms`,
      fastInterval: `${PROBE.fastInterval}ms`,
      fall: PROBE.fall,
      rise: PROBE.rise,
    },
    services: [
      {
        name: 'proxy',
        pools: [
          { name: 'primary', proxy: `http://${PRIMARY}:3128`, address: PRIMARY },
          { name: 'secondary', proxy: `http://${SECONDARY}:3128`, address: SECONDARY },
        ],
      },
    ],
  });
  const direct = server.dnsAddress;
  // Unbound would cache the SERVFAIL of the pending phase: it starts once there is an answer.
  await waitFor(async () => (await digShort(direct, 'proxy.egress.svc', 'A')).join() === PRIMARY, {
    timeoutMs: 10_000,
    what: 'the dns server to answer the primary',
  });
  unbound = await startUnbound({ stub: direct });
}, 60_000);

afterAll(async () => {
  await unbound?.stop();
  await server?.dispose();
  await fleet?.stopAll();
  await origin?.close();
}, 30_000);

describe('a client resolving proxy.egress.svc through a resolver and fetching through the answer', () => {
  it('reaches the origin through the primary', async () => {
    const before = origin?.requests.length ?? 0;
    const first = await client();
    expect(first, first.output).toMatchObject({ ok: true, proxy: PRIMARY });
    // It went through Squid to the origin: absolute-form request received via the proxy.
    const arrived = origin?.requests.slice(before).filter((r) => r.headers.via !== undefined) ?? [];
    expect(arrived.length).toBeGreaterThan(0);
    expect(await squid(0).accessLog()).toContain('http://origin.test/');
  });

  it(`after the primary is killed, reaches the origin through the secondary within ${FAILOVER_BOUND_MS} ms`, async () => {
    expect((await client()).proxy).toBe(PRIMARY); // Unbound's cache holds the primary now.
    await squid(0).kill();
    const killedAt = Date.now();
    const failures: string[] = [];
    const through = await waitFor(
      async () => {
        const attempt = await client();
        if (!attempt.ok) failures.push(attempt.output.trim());
        return attempt.ok && attempt.proxy === SECONDARY ? attempt : undefined;
      },
      {
        timeoutMs: FAILOVER_BOUND_MS + 5_000,
        intervalMs: 100,
        what: 'the client to get through the secondary',
      },
    );
    const tookMs = Date.now() - killedAt;
    console.info(
      `client-e2e: failover in ${tookMs} ms (bound ${FAILOVER_BOUND_MS} ms = detection ${DETECTION_MS} + ` +
        `resolver cache ${RESOLVER_CACHE_MS} + margin ${MARGIN_MS}); ${failures.length} failed attempts before`,
    );
    expect(through.output).toContain('200 from test origin');
    expect(tookMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    // In between, the client was sent to the dead primary: refused, never another error.
    for (const failure of failures) expect(failure).toMatch(/Failed to connect to 127\.0\.0\.61 port 3128/);
  });

  it(`after the primary is back, fails back within ${FAILBACK_BOUND_MS} ms, getting through all along`, async () => {
    await squid(0).start();
    const startedAt = Date.now();
    const seen: ClientRun[] = [];
    await waitFor(
      async () => {
        const attempt = await client();
        seen.push(attempt);
        return attempt.ok && attempt.proxy === PRIMARY;
      },
      {
        timeoutMs: FAILBACK_BOUND_MS + 5_000,
        intervalMs: 100,
        what: 'the client to get through the primary again',
      },
    );
    const tookMs = Date.now() - startedAt;
    console.info(
      `client-e2e: failback in ${tookMs} ms (bound ${FAILBACK_BOUND_MS} ms), ${seen.length} attempts`,
    );
    expect(tookMs).toBeLessThanOrEqual(FAILBACK_BOUND_MS);
    // The secondary stays up, so failback costs the client nothing.
    for (const attempt of seen) expect(attempt.ok, attempt.output).toBe(true);
  });
});
