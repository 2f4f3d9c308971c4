// The realistic surroundings of our server: a loopback origin (origin.test) and three real Squids
// that reach it. Addresses sit in 127.0.1.0/24, apart from the 127.0.0.x the integration tests bind,
// so the bench can run while others run tests on the same machine.
import { type Origin, startOrigin } from '../../test/helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../../test/helpers/squid.js';

export const ORIGIN_HOST = '127.0.1.10';
export const SQUID_HOSTS = ['127.0.1.11', '127.0.1.12', '127.0.1.13'] as const;

export interface Fleet {
  readonly origin: Origin;
  readonly squids: readonly Squid[];
  /** http://origin.test:PORT/: what every deep check fetches. */
  readonly targetUrl: string;
  stop(): Promise<void>;
}

export async function startFleet(): Promise<Fleet> {
  // Port 0: a free port, so a second bench or a test holding port 80 cannot collide.
  const origin = await startOrigin({ host: ORIGIN_HOST, port: 0, name: 'origin.test' });
  const targetUrl = `http://origin.test:${origin.port}/`;
  let fleet: SquidFleet;
  try {
    fleet = await startSquids(
      SQUID_HOSTS.map((host, i) => ({
        label: `bench${'abc'[i]}`,
        host,
        hosts: { 'origin.test': ORIGIN_HOST },
      })),
      { probeUrl: targetUrl },
    );
  } catch (err) {
    await origin.close();
    throw err;
  }
  return {
    origin,
    squids: fleet.squids,
    targetUrl,
    async stop() {
      await fleet.stopAll();
      await origin.close();
    },
  };
}

/** The origin records every request for tests; a bench sends thousands, so forget them now and then. */
export function forgetRequests(origin: Origin): void {
  origin.requests.length = 0;
}
