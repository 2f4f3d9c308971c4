// A proxy host name with several addresses, of which only some answer: every address is probed and
// only those that pass are served. The monitor runs in-process with its host lookup given (the
// machine's resolver cannot be pointed at a test name), the rounds are the real deep check through a
// real Squid to the real origin, and the other addresses are loopback addresses nobody listens on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolConfig, ProbeSettings } from '../../src/config/schema.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { deepRound } from '../../src/health/probe.js';
import { dnsRoute } from '../../src/http/routes.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { probeSettings } from '../helpers/probe-settings.js';
import { type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const SQUID = '127.0.0.11';
/** Eight addresses where nothing listens on 3128: each refuses the connection. */
const REFUSING = [
  '127.0.0.14',
  '127.0.0.15',
  '127.0.0.16',
  '127.0.0.17',
  '127.0.0.18',
  '127.0.0.19',
  '127.0.0.20',
  '127.0.0.21',
];

const probe: ProbeSettings = probeSettings();

let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
const monitors: HealthMonitor[] = [];

beforeAll(async () => {
  origin = await startOrigin();
  fleet = await startSquids([{ label: 'only', host: SQUID }], { probeUrl: 'http://origin.test/' });
}, 60_000);

afterAll(async () => {
  await Promise.all(monitors.map((m) => m.stop()));
  await fleet?.stopAll();
  await origin?.close();
}, 30_000);

function monitorFor(addresses: readonly string[]) {
  const pool: PoolConfig = { name: 'pods', proxy: 'http://squids.test:3128', addresses: undefined, probe };
  const m = new HealthMonitor({
    services: [{ name: 'proxy', onAllDown: 'all', pools: [pool] }],
    runRound: (p, signal) =>
      deepRound({
        proxy: p.proxy,
        targets: p.probe.targets,
        quorum: p.probe.quorum,
        timeoutMs: p.probe.timeoutMs,
        expectStatus: p.probe.expectStatus,
        signal,
      }),
    logger: { info: () => undefined, warn: () => undefined },
    lookup: async () => addresses,
  });
  monitors.push(m);
  m.start();
  return () => m.current().services[0]?.pools[0];
}

describe('a proxy host with several addresses', () => {
  it('probes each one and serves only those that pass (1 of 9 answers)', async () => {
    const pool = monitorFor([SQUID, ...REFUSING]);
    await waitFor(() => pool()?.probedAddresses?.length === 9, {
      timeoutMs: 10_000,
      what: 'a round over 9 addresses',
    });
    const now = pool();
    expect(now?.state).toBe('healthy');
    expect(now?.addresses).toEqual([SQUID]);
    const failing = now?.probedAddresses?.filter((a) => !a.ok) ?? [];
    expect(failing.map((a) => a.address).sort()).toEqual([...REFUSING].sort());
    for (const a of failing) expect(a.reason).toMatch(/connection_refused/);
  });

  it('/status lists every address with its last round', async () => {
    const pool = monitorFor([SQUID, ...REFUSING.slice(0, 2)]);
    await waitFor(() => pool()?.probedAddresses?.length === 3, {
      timeoutMs: 10_000,
      what: 'a round over 3 addresses',
    });
    const m = monitors.at(-1) as HealthMonitor;
    const reply = dnsRoute('/status', m.current(), { file: 'x', hash: 'x', loadedAt: 0 });
    const body = JSON.parse(String(reply?.body));
    const listed = body.services[0].pools[0].probedAddresses as { address: string; ok: boolean }[];
    expect(listed.map((a) => [a.address, a.ok])).toEqual([
      [SQUID, true],
      [REFUSING[0], false],
      [REFUSING[1], false],
    ]);
    expect(body.services[0].addresses).toEqual([SQUID]);
  });

  it('with none passing the pool is unhealthy, and keeps every address for onAllDown', async () => {
    const pool = monitorFor(REFUSING.slice(0, 3));
    await waitFor(() => pool()?.state === 'unhealthy', { timeoutMs: 10_000, what: 'the pool unhealthy' });
    expect(pool()?.addresses).toEqual(REFUSING.slice(0, 3));
    expect(pool()?.lastRound?.reason).toMatch(
      /connection_refused .*address=127\.0\.0\.14 passed_addresses=0\/3/,
    );
  });
});
