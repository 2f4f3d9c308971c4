// A pool read from its pods (config `sidecars`), end to end: the real `dns` binary, real sidecar
// processes in front of real Squids ("pods" on loopback addresses under one name in /etc/hosts, as a
// headless Service gives one name per pool), a real origin that counts what reaches it, real dig.
// Primary reads its two pods' sidecars; secondary is probed directly through its Squid.
// Addresses: origin 127.0.0.10:80 (origin.test); primary pods 127.0.0.151 and 127.0.0.152 (Squid
// :3128, sidecar :8081), a third "pod" 127.0.0.155:8081 (a plain HTTP server answering what a test
// wants); secondary Squid 127.0.0.153:3128.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../helpers/dns-process.js';
import { HostsFile } from '../helpers/hosts.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { signalGroup } from '../helpers/process.js';
import { type SidecarProcess, startSidecarProcess } from '../helpers/sidecar-process.js';
import { type Squid, type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const PODS_NAME = 'primary-pods.ef-sidecars.test';
const POD_A = '127.0.0.151';
const POD_B = '127.0.0.152';
const POD_ODD = '127.0.0.155';
const SECONDARY_SQUID = '127.0.0.153';
const PRIMARY = '10.0.0.1';
const SECONDARY = '10.0.0.2';
/** Distinct paths, so the origin tells whose request reached it. */
const SIDECAR_TARGET = 'http://origin.test/from-sidecar';
const DNS_PRIMARY_TARGET = 'http://origin.test/from-dns-primary';
const DNS_SECONDARY_TARGET = 'http://origin.test/from-dns-secondary';

const SIDECAR_TIMING = { interval: '500ms', timeout: '400ms', fastInterval: '200ms', rise: 1, fall: 2 };
const DNS_TIMING = { interval: '500ms', timeout: '400ms', fastInterval: '200ms', rise: 2, fall: 2 };
/** Sidecar detection (up to one interval, then fall rounds) + DNS detection (the same), with slack. */
const MOVE_BOUND_MS = 2 * (500 + 2 * (400 + 200)) + 3_000;

/** The config of every DNS replica here: primary from its pods, secondary probed directly. */
const DNS_CONFIG = {
  dns: { ttl: 1 },
  probe: { ...DNS_TIMING, flapThreshold: 0 },
  services: [
    {
      name: 'proxy',
      pools: [
        {
          name: 'primary',
          // A Service's ClusterIP in a cluster; nothing may be sent through it from the DNS server.
          proxy: `http://${POD_A}:3128`,
          address: PRIMARY,
          probe: { targets: [DNS_PRIMARY_TARGET] },
          sidecars: { url: `http://${PODS_NAME}:8081/readyz`, minReady: 1 },
        },
        {
          name: 'secondary',
          proxy: `http://${SECONDARY_SQUID}:3128`,
          address: SECONDARY,
          probe: { targets: [DNS_SECONDARY_TARGET] },
        },
      ],
    },
  ],
};

const hosts = new HostsFile('sidecars');
let origin: Origin;
let fleet: SquidFleet | undefined;
let podA: Squid;
let podB: Squid;
const sidecars: SidecarProcess[] = [];
let odd: Server | undefined;
/** What the odd pod answers next. */
let oddReply: (res: import('node:http').ServerResponse) => void = (res) => res.writeHead(200).end('{}');
let server: DnsProcess | undefined;

const running = (): DnsProcess => {
  if (!server) throw new Error('the dns server did not start');
  return server;
};

async function answer(): Promise<string> {
  const reply = await dig(running().dnsAddress, 'proxy.egress.svc', 'A', '+norec');
  if (reply.status !== 'NOERROR') return reply.status;
  return reply.answer.map((line) => line.split(' ').at(-1)).join(',');
}

async function statusLine(pool: string): Promise<string> {
  const reply = await dig(running().dnsAddress, '_status.proxy.egress.svc', 'TXT', '+norec');
  return reply.answer.find((line) => line.includes(`pool=${pool} `)) ?? '';
}

interface PodJson {
  readonly address: string;
  readonly ready: boolean;
  readonly reason: string;
  readonly lastCheck: string;
  readonly latency_ms: number;
}

async function pods(pool = 'primary'): Promise<readonly PodJson[] | null> {
  const status = JSON.parse((await running().get('/status')).body) as {
    services: { pools: { name: string; pods: PodJson[] | null }[] }[];
  };
  return status.services[0]?.pools.find((p) => p.name === pool)?.pods ?? null;
}

const podOf = async (address: string) => (await pods())?.find((pod) => pod.address === address);

function requestsTo(path: string): number {
  return origin.requests.filter((r) => r.url.endsWith(path)).length;
}

beforeAll(async () => {
  origin = await startOrigin();
  fleet = await startSquids(
    [
      { label: 'pod-a', host: POD_A },
      { label: 'pod-b', host: POD_B },
      { label: 'secondary', host: SECONDARY_SQUID },
    ],
    { probeUrl: SIDECAR_TARGET },
  );
  [podA, podB] = fleet.squids as [Squid, Squid];
  for (const pod of [POD_A, POD_B]) {
    sidecars.push(
      await startSidecarProcess({
        listen: `${pod}:8081`,
        proxy: `http://${pod}:3128`,
        targets: [SIDECAR_TARGET],
        ...SIDECAR_TIMING,
      }),
    );
  }
  odd = createServer((_req, res) => oddReply(res));
  await new Promise<void>((resolve) => odd?.listen(8081, POD_ODD, resolve));
  await hosts.set(PODS_NAME, [POD_A, POD_B]);
  server = await startDnsServer(DNS_CONFIG);
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  await Promise.all(sidecars.map((s) => s.dispose()));
  await new Promise((resolve) => (odd ? odd.close(resolve) : resolve(undefined)));
  await fleet?.stopAll();
  await origin?.close();
  await hosts.clear();
});

describe('a pool read from its pods', () => {
  it('answers the primary with both pods ready: pods=2/2, each pod listed in /status', async () => {
    await waitFor(async () => (await answer()) === PRIMARY, { what: 'the primary answered' });
    await waitFor(async () => (await statusLine('primary')).includes(' pods=2/2 '), {
      what: '_status pods=2/2',
    });
    const listed = await pods();
    expect(listed?.map((p) => [p.address, p.ready, p.reason])).toEqual([
      [POD_A, true, 'ok'],
      [POD_B, true, 'ok'],
    ]);
    expect(Date.parse(listed?.[0]?.lastCheck ?? '')).toBeGreaterThan(Date.now() - 5_000);
    // A pool probed directly has no pods, and no pods= in _status.
    expect(await pods('secondary')).toBeNull();
    expect(await statusLine('secondary')).not.toContain('pods=');
  });

  it('keeps the answer with one pod of two unready (minReady 1): pods=1/2, its reason from the sidecar', async () => {
    await podA.cutEgress();
    await waitFor(async () => (await statusLine('primary')).includes(' pods=1/2 '), {
      timeoutMs: MOVE_BOUND_MS,
      what: '_status pods=1/2',
    });
    const pod = await podOf(POD_A);
    expect(pod?.ready).toBe(false);
    // The sidecar's own reason, read from its /readyz body.
    expect(pod?.reason).toContain('squid_error=ERR_CONNECT_FAIL');
    expect(await answer()).toBe(PRIMARY);
    const metrics = (await running().get('/metrics')).body;
    expect(metrics).toContain('egress_pool_pods{service="proxy",pool="primary",state="ready"} 1');
    expect(metrics).toContain('egress_pool_pods{service="proxy",pool="primary",state="unready"} 1');
  });

  it('moves the answer once the last pod is unready, and back once one is ready again', async () => {
    const cut = Date.now();
    await podB.cutEgress();
    await waitFor(async () => (await answer()) === SECONDARY, {
      timeoutMs: MOVE_BOUND_MS,
      intervalMs: 25,
      what: 'the answer to move to the secondary',
    });
    const moved = Date.now() - cut;
    const line = await statusLine('primary');
    expect(line).toContain(' pods=0/2 ');
    expect(line).toContain('state=unhealthy');
    expect(line).toMatch(/ready=0\/2 min_ready=1/);
    expect(moved).toBeLessThan(MOVE_BOUND_MS);

    await podB.restoreEgress();
    await waitFor(async () => (await answer()) === PRIMARY, {
      timeoutMs: MOVE_BOUND_MS,
      what: 'the answer back on the primary',
    });
    expect(await statusLine('primary')).toContain(' pods=1/2 ');
    await podA.restoreEgress();
    await waitFor(async () => (await statusLine('primary')).includes(' pods=2/2 '), {
      timeoutMs: MOVE_BOUND_MS,
      what: 'pods=2/2 again',
    });
  });

  it('sends nothing through the primary proxy from the DNS server (counted at the origin)', async () => {
    // The secondary's probes and the sidecars' checks did reach the origin all along: the count
    // of the primary's own path is not zero for want of traffic.
    expect(requestsTo('/from-dns-secondary')).toBeGreaterThan(5);
    expect(requestsTo('/from-sidecar')).toBeGreaterThan(5);
    expect(requestsTo('/from-dns-primary')).toBe(0);
  });

  it('counts a pod that comes, and says why a pod answering 500, garbage or nothing is unready', async () => {
    oddReply = (res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
    await hosts.set(PODS_NAME, [POD_A, POD_B, POD_ODD]);
    await waitFor(async () => (await podOf(POD_ODD))?.reason === 'status=500', {
      what: 'the third pod listed with status=500',
    });
    expect(await statusLine('primary')).toContain(' pods=2/3 ');

    oddReply = (res) => res.writeHead(503, { 'content-type': 'application/json' }).end('{"reason": tru');
    await waitFor(async () => (await podOf(POD_ODD))?.reason === 'status=503', {
      what: 'a 503 with a broken body: status=503',
    });

    // A pod that accepts and never answers: the round's timeout, the other pods still counted.
    oddReply = () => undefined;
    await waitFor(async () => (await podOf(POD_ODD))?.reason === 'timeout=400ms', {
      what: 'a hung pod: timeout',
    });
    expect(await statusLine('primary')).toContain(' pods=2/3 ');
    expect(await answer()).toBe(PRIMARY);

    // A hung sidecar (SIGSTOP) likewise; and once the pod is gone from the name, it is not counted.
    const [sidecarA] = sidecars as [SidecarProcess];
    signalGroup(sidecarA.proc, 'SIGSTOP');
    try {
      await waitFor(async () => (await podOf(POD_A))?.reason === 'timeout=400ms', {
        what: 'a SIGSTOPped sidecar: timeout',
      });
      expect(await statusLine('primary')).toContain(' pods=1/3 ');
      expect(await answer()).toBe(PRIMARY);
    } finally {
      signalGroup(sidecarA.proc, 'SIGCONT');
    }
    await hosts.set(PODS_NAME, [POD_A, POD_B]);
    await waitFor(async () => (await statusLine('primary')).includes(' pods=2/2 '), {
      what: 'the odd pod gone from the count',
    });
  });

  it('fails the pool when its name resolves to nothing, and keeps serving', async () => {
    await hosts.set(PODS_NAME, []);
    await waitFor(async () => (await answer()) === SECONDARY, {
      timeoutMs: MOVE_BOUND_MS + 5_000,
      what: 'the answer to move when no pod is found',
    });
    const line = await statusLine('primary');
    expect(line).toContain(' pods=0/0 ');
    expect(line).toMatch(/resolve_error=\S+ host=primary-pods\.ef-sidecars\.test/);
    await hosts.set(PODS_NAME, [POD_A, POD_B]);
    await waitFor(async () => (await answer()) === PRIMARY, {
      timeoutMs: MOVE_BOUND_MS,
      what: 'the primary again once its pods are found',
    });
    expect(running().proc.running()).toBe(true);
  });

  it('gives two replicas reading the same sidecars the same answer within one round of a fault', async () => {
    // Its own loopback address, as replicas are separate pods.
    const other = await startDnsServer({
      ...DNS_CONFIG,
      dns: { ...DNS_CONFIG.dns, listen: '127.0.0.156:0' },
    });
    try {
      const both = [running(), other];
      const answers = () =>
        Promise.all(
          both.map(async (replica) => {
            const reply = await dig(replica.dnsAddress, 'proxy.egress.svc', 'A', '+norec');
            return reply.answer.map((line) => line.split(' ').at(-1)).join(',');
          }),
        );
      await waitFor(async () => (await answers()).every((a) => a === PRIMARY), {
        what: 'both on the primary',
      });
      // Each replica's time of its first answer of `expected`.
      const flips = async (expected: string) => {
        const started = Date.now();
        const at: (number | undefined)[] = [undefined, undefined];
        await waitFor(
          async () => {
            const now = await answers();
            now.forEach((a, i) => {
              if (a === expected && at[i] === undefined) at[i] = Date.now() - started;
            });
            return at.every((t) => t !== undefined);
          },
          { timeoutMs: MOVE_BOUND_MS, intervalMs: 10, what: `both replicas answering ${expected}` },
        );
        return Math.abs((at[0] as number) - (at[1] as number));
      };
      // One round: the replicas' rounds are out of phase by up to one jittered interval; each sees
      // the sidecars' verdict at its next round, then counts fall rounds at the same pace.
      const ONE_ROUND_MS = 1.05 * 500 + 200 + 250; // + fastInterval + two dig calls of slack
      await Promise.all([podA.cutEgress(), podB.cutEgress()]);
      expect(await flips(SECONDARY)).toBeLessThanOrEqual(ONE_ROUND_MS);
      await Promise.all([podA.restoreEgress(), podB.restoreEgress()]);
      expect(await flips(PRIMARY)).toBeLessThanOrEqual(ONE_ROUND_MS);
    } finally {
      await other.dispose();
    }
  });
});
