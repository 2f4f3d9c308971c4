// The time-to-shift rig shared by test/integration/time-to-shift.test.ts and bench/time-to-shift.ts:
// two real Squids on the shipped k8s/squid/squid.conf (rendered for loopback), the real `dns`
// binary probing them, a real caching Unbound in front of it as CoreDNS is in a cluster, origins,
// and the clients of test/helpers/clients.ts. Independent of vitest so bench scripts can import it.
//
//   const rig = await startShiftRig({ probe: { primary, secondary }, ttlS: 5 });
//   await rig.steadyOnPrimary();
//   const clients = await rig.startClients(['curl', 'node-keepalive']);
//   await FAULTS.kill.inject(rig.primary); const at = Date.now();
//   const shifts = await rig.measureShifts(clients, rig.secondaryAddress, at, () => 10_000);
//   await rig.stopClients(clients); await rig.stop();
//
// Addresses: origin 127.0.0.80:80 (origin.test), TLS origin 127.0.0.83:443 (tls.origin.test),
// squids 127.0.0.81 (primary) and 127.0.0.82 (secondary) on :3128, whose pools' `address` is the
// squid's own, so the DNS answer IS the proxy to use; our server and Unbound on 127.0.0.1.
import {
  type Attempt,
  type Client,
  type ClientKind,
  type ClientSetup,
  firstThrough,
  startClient,
} from './clients.js';
import { digShort } from './dig.js';
import { type DnsProcess, startDnsServer } from './dns-process.js';
import { type Origin, startOrigin, startTlsOrigin, type TlsOrigin } from './origin.js';
import { readShippedSquidConf, type Squid, type SquidFleet, startSquids } from './squid.js';
import { startUnbound, type Unbound } from './unbound.js';
import { waitFor } from './wait.js';

export const ORIGIN = '127.0.0.80';
export const TLS_ORIGIN = '127.0.0.83';
export const PRIMARY = '127.0.0.81';
export const SECONDARY = '127.0.0.82';

/** A pool's probe block as the config file takes it (durations as text). */
export interface ProbeBlock {
  readonly interval: string;
  readonly timeout: string;
  readonly fastInterval: string;
  readonly fall: number;
  readonly rise: number;
}

export interface ShiftRigOptions {
  /** Probe settings of each pool. */
  readonly probe: { readonly primary: ProbeBlock; readonly secondary: ProbeBlock };
  readonly ttlS: number;
  /** Each client's own request timeout; default 3 s. */
  readonly clientTimeoutMs?: number;
  /** squid.conf directives (first word) left out of the shipped text, to see what they do. */
  readonly dropDirectives?: readonly string[];
}

export interface Shift {
  readonly kind: ClientKind;
  /** From `since` to the first 200 through the target; undefined: none within the bound + 5 s. */
  readonly ms: number | undefined;
  readonly boundMs: number;
  /** The requests that failed in between. */
  readonly failures: readonly Attempt[];
}

export interface Fault {
  readonly name: 'kill' | 'hang' | 'no-egress' | 'dead-parent';
  /** What a reader sees in a table. */
  readonly title: string;
  /** Injects the fault; resolves once it shows (a reconfigure: once a request shows it). */
  inject(primary: Squid): Promise<void>;
  restore(primary: Squid): Promise<void>;
  /** A hung proxy costs each client its own request timeout once more. */
  readonly hangs: boolean;
  /** Egress breaks for new connections only: a CONNECT tunnel already open keeps working. */
  readonly keepsTunnels: boolean;
}

export const FAULTS: readonly Fault[] = [
  {
    name: 'kill',
    title: 'killed',
    inject: (s) => s.kill(),
    restore: (s) => s.start(),
    hangs: false,
    keepsTunnels: false,
  },
  {
    name: 'hang',
    title: 'hung (SIGSTOP)',
    inject: async (s) => s.stop(),
    restore: async (s) => s.cont(),
    hangs: true,
    keepsTunnels: false,
  },
  {
    name: 'no-egress',
    title: 'no egress (503 ERR_CONNECT_FAIL)',
    inject: (s) => s.cutEgress(),
    restore: (s) => s.restoreEgress(),
    hangs: false,
    keepsTunnels: true,
  },
  {
    name: 'dead-parent',
    title: 'dead parent (502)',
    inject: (s) => s.deadParent(),
    restore: (s) => s.restoreEgress(),
    hangs: false,
    keepsTunnels: true,
  },
];

export interface ShiftRig {
  readonly primary: Squid;
  readonly secondary: Squid;
  readonly server: DnsProcess;
  readonly tlsOrigin: TlsOrigin;
  readonly setup: ClientSetup;
  /** The shipped squid.conf text as the squids run it (minus dropped directives). */
  readonly squidConf: string;
  /** Both pools healthy and settled, and the resolver answering the primary. */
  steadyOnPrimary(): Promise<void>;
  /** Starts the clients and waits until each has a 200 through the primary. */
  startClients(kinds: readonly ClientKind[]): Promise<Client[]>;
  stopClients(clients: readonly Client[]): Promise<void>;
  /**
   * Waits until every client has a 200 through `to` ending after `since`, or its bound and 5 s more
   * have passed; returns how long each took.
   */
  measureShifts(
    clients: readonly Client[],
    to: string,
    since: number,
    boundOf: (kind: ClientKind) => number,
  ): Promise<Shift[]>;
  /** Ends everything (clients still running included). Never throws. */
  stop(): Promise<void>;
}

/** The last few requests of a client, for failure messages. */
export function describeAttempts(attempts: readonly Attempt[]): string {
  const last = attempts
    .slice(-4)
    .map((a) =>
      a.ok
        ? `200 via ${a.proxy}`
        : `${a.status ?? ''} ${a.squidError ?? ''} ${a.error ?? ''} via ${a.proxy}`
            .replace(/\s+/g, ' ')
            .trim(),
    );
  return `${attempts.length} attempts, last: ${last.join('; ') || 'none'}`;
}

/** The shipped squid.conf's pconn_lifetime, read from the text rather than restated. */
export function connectionLifetimeMs(squidConf: string): number {
  const match = /^pconn_lifetime (\d+) seconds?$/m.exec(squidConf);
  return match ? Number(match[1]) * 1000 : 0;
}

/**
 * The rig fails the same pool again and again on purpose: flap damping would hold the primary's
 * recovery for a minute and more, and the next fault would wait for it. Damping never delays a
 * failover, which is what the rig measures.
 */
const NO_DAMPING = { flapThreshold: 0 } as const;

export async function startShiftRig(options: ShiftRigOptions): Promise<ShiftRig> {
  const drop = options.dropDirectives ?? [];
  const squidConf = (await readShippedSquidConf())
    .split('\n')
    .filter((line) => !drop.some((directive) => line.startsWith(`${directive} `)))
    .join('\n');
  const live: Client[] = [];
  let origin: Origin | undefined;
  let tlsOrigin: TlsOrigin | undefined;
  let fleet: SquidFleet | undefined;
  let server: DnsProcess | undefined;
  let unbound: Unbound | undefined;
  const stop = async () => {
    await Promise.allSettled(live.map((c) => c.stop()));
    await unbound?.stop();
    await server?.dispose();
    await fleet?.stopAll();
    await origin?.close().catch(() => undefined);
    await tlsOrigin?.close().catch(() => undefined);
  };
  try {
    origin = await startOrigin({ host: ORIGIN, port: 80 });
    tlsOrigin = await startTlsOrigin({ host: TLS_ORIGIN, port: 443 });
    const hosts = { 'origin.test': ORIGIN, 'tls.origin.test': TLS_ORIGIN };
    fleet = await startSquids(
      [
        { label: 'shiftprimary', host: PRIMARY, hosts, squidConf },
        { label: 'shiftsecondary', host: SECONDARY, hosts, squidConf },
      ],
      { probeUrl: origin.url },
    );
    server = await startDnsServer({
      dns: { zone: 'egress.svc', ttl: options.ttlS },
      probe: { targets: [origin.url] },
      services: [
        {
          name: 'proxy',
          pools: [
            {
              name: 'primary',
              proxy: `http://${PRIMARY}:3128`,
              address: PRIMARY,
              probe: { ...options.probe.primary, ...NO_DAMPING },
            },
            {
              name: 'secondary',
              proxy: `http://${SECONDARY}:3128`,
              address: SECONDARY,
              probe: { ...options.probe.secondary, ...NO_DAMPING },
            },
          ],
        },
      ],
    });
    const direct = server.dnsAddress;
    // Unbound would cache the SERVFAIL of the pending phase: it starts once there is an answer.
    await waitFor(async () => (await digShort(direct, 'proxy.egress.svc', 'A')).join() === PRIMARY, {
      timeoutMs: 15_000,
      what: 'the dns server to answer the primary',
    });
    unbound = await startUnbound({ stub: direct });
  } catch (err) {
    await stop();
    throw err;
  }
  const running = server;
  const setup: ClientSetup = {
    resolver: unbound.address,
    proxyName: 'proxy.egress.svc',
    proxyPort: 3128,
    httpUrl: origin.url,
    httpsUrl: tlsOrigin.url,
    caPath: tlsOrigin.caPath,
    timeoutMs: options.clientTimeoutMs ?? 3_000,
    pauseMs: 200,
  };

  return {
    primary: fleet.squids[0] as Squid,
    secondary: fleet.squids[1] as Squid,
    server: running,
    tlsOrigin,
    setup,
    squidConf,
    async steadyOnPrimary() {
      await waitFor(
        async () => {
          const pools = (await running.status()).services.flatMap((s) => s.pools);
          return pools.every((p) => p.state === 'healthy' && !p.inTransition);
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'both pools healthy and settled' },
      );
      await waitFor(async () => (await digShort(setup.resolver, setup.proxyName, 'A')).join() === PRIMARY, {
        timeoutMs: (options.ttlS + 10) * 1000,
        intervalMs: 100,
        what: 'the resolver to answer the primary',
      });
    },
    async startClients(kinds) {
      const started = kinds.map((kind) => startClient(kind, setup));
      live.push(...started);
      const since = Date.now() - 1;
      for (const client of started) {
        await waitFor(() => firstThrough(client, PRIMARY, since), {
          timeoutMs: 15_000,
          intervalMs: 50,
          what: `${client.kind} to get through the primary: ${describeAttempts(client.attempts)}`,
        });
      }
      return started;
    },
    async stopClients(clients) {
      await Promise.all(clients.map((c) => c.stop()));
      for (const client of clients) live.splice(live.indexOf(client), 1);
    },
    async measureShifts(clients, to, since, boundOf) {
      const longest = Math.max(...clients.map((c) => boundOf(c.kind)));
      await waitFor(() => clients.every((c) => firstThrough(c, to, since)), {
        timeoutMs: longest + 5_000,
        intervalMs: 100,
        what: 'every client to get through',
      }).catch(() => undefined);
      return clients.map((client) => {
        const through = firstThrough(client, to, since);
        return {
          kind: client.kind,
          ms: through ? Math.round(through.at - since) : undefined,
          boundMs: boundOf(client.kind),
          failures: client.attempts.filter((a) => a.at > since && a.at <= (through?.at ?? Infinity) && !a.ok),
        };
      });
    },
    stop,
  };
}
