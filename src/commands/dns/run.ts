// Wiring of the `dns` command: monitor -> zone view -> responder -> UDP/TCP, and the HTTP endpoints.
// Every decision lives in the modules it wires; this file only connects them and owns their lifetimes.
import type { Logger } from 'pino';
import { loadDnsConfig } from '../../config/load.js';
import { movedListenAddresses, startReloader } from '../../config/reloader.js';
import type { DnsConfig, ListenAddress } from '../../config/schema.js';
import { Responder } from '../../dns/responder.js';
import { DnsServer } from '../../dns/server.js';
import { bindError } from '../../errors.js';
import { type CarriedState, HealthMonitor, type RunRound } from '../../health/monitor.js';
import { deepRound } from '../../health/probe.js';
import { sidecarsRound } from '../../health/sidecars-round.js';
import type { HealthSnapshot } from '../../health/snapshot.js';
import { metricsReply } from '../../http/reply.js';
import { dnsRoute } from '../../http/routes.js';
import { HttpServer } from '../../http/server.js';
import { formatAddress } from '../../listen-address.js';
import { runInSlices } from '../../slices.js';
import { createDnsMetrics } from './metrics.js';
import { nextZoneView, serviceViewsAhead } from './zone-view-of.js';

export interface RunningDns {
  readonly dnsAddress: { host: string; port: number };
  readonly httpAddress: { host: string; port: number };
  /** Re-reads the config file and applies it if valid and changed (SIGHUP). */
  reload(): Promise<void>;
  /** Stops accepting, finishes what is in flight, stops the probes. */
  stop(): Promise<void>;
}

// A pool with `sidecars` is judged by its pods' own deep checks: nothing is sent through its proxy.
const runRound: RunRound = (pool, signal) =>
  pool.sidecars
    ? sidecarsRound({ sidecars: pool.sidecars, timeoutMs: pool.probe.timeoutMs, signal })
    : deepRound({
        proxy: pool.proxy,
        targets: pool.probe.targets,
        quorum: pool.probe.quorum,
        timeoutMs: pool.probe.timeoutMs,
        expectStatus: pool.probe.expectStatus,
        signal,
      });

const nowSec = () => Math.floor(Date.now() / 1000);

/** Binds, or throws the operator's one-line error naming the config key and the address. */
async function bind<T>(key: string, listen: ListenAddress, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    throw bindError(err, key, listen);
  }
}

/** Listen addresses are bound once: a reload that moves one is refused, with the reason. */
function listenChanges(before: DnsConfig, after: DnsConfig): string[] {
  return movedListenAddresses([
    ['dns.listen', formatAddress(before.dns.listen), formatAddress(after.dns.listen)],
    ['http.listen', formatAddress(before.http.listen), formatAddress(after.http.listen)],
  ]);
}

export async function runDns(
  config: DnsConfig,
  configFile: string,
  configText: string,
  logger: Logger,
): Promise<RunningDns> {
  const metrics = createDnsMetrics({ snapshot: () => monitor.current() });
  const healthLog = logger.child({ component: 'health' });
  const configLog = logger.child({ component: 'config' });
  let current = config;

  // In slices (HealthMonitor.assemble), so that a reload of thousands of pools does not hold up
  // the answers of the view in force.
  const createMonitor = async (current: DnsConfig, previous?: CarriedState) => {
    const created = await HealthMonitor.assemble({
      services: current.services,
      runRound,
      logger: healthLog,
      onRound: metrics.onRound,
      onTransition: metrics.onTransition,
      onFlap: metrics.onFlap,
      onLocalError: metrics.onLocalError,
      ...(previous ? { previous } : {}),
    });
    // A stopped monitor may still settle a round: only the monitor in force publishes. Snapshots
    // flow only once a monitor is started, by when `publish` and the responder exist.
    created.onSnapshot((snapshot) => {
      if (created === monitor) publish(current, snapshot);
    });
    return created;
  };
  let monitor = await createMonitor(config);
  const responder = new Responder(nextZoneView(undefined, config, monitor.current(), nowSec()));
  const publish = (current: DnsConfig, snapshot: HealthSnapshot) => {
    const view = nextZoneView(responder.view, current, snapshot, nowSec());
    if (view !== responder.view) responder.setView(view);
  };

  const dnsLog = logger.child({ component: 'dns' });
  const dns = await bind('dns.listen', config.dns.listen, () =>
    DnsServer.start({
      listen: config.dns.listen,
      responder,
      log: dnsLog,
      onOutcome: metrics.onDnsOutcome,
      onTcpShed: metrics.onTcpShed,
    }),
  );
  let http: HttpServer;
  try {
    http = await bind('http.listen', config.http.listen, () =>
      HttpServer.start(
        config.http.listen,
        async (path) => {
          if (path === '/metrics') {
            return metricsReply(metrics.registry);
          }
          return dnsRoute(path, monitor.current(), { file: configFile, ...reloader.inForce });
        },
        { log: logger.child({ component: 'http' }) },
      ),
    );
  } catch (err) {
    await dns.close();
    throw err;
  }
  monitor.start();

  // Created before the next await, so no HTTP request can find it missing.
  /**
   * The old monitor stops first (so no pool is ever probed by two loops) and hands its pools' state
   * to the new one: unchanged pools keep their state and history, added ones start unknown and are
   * probed at once. The responder keeps answering from the old view until the new one is published,
   * so no query goes unanswered.
   */
  const reloader = startReloader({
    file: configFile,
    text: configText,
    load: loadDnsConfig,
    refuse: (next) => listenChanges(current, next),
    apply: async (next) => {
      const old = monitor;
      await old.stop();
      current = next;
      monitor = await createMonitor(next, old.carryOver());
      await runInSlices(serviceViewsAhead(monitor.current()));
      publish(next, monitor.current());
      monitor.start();
    },
    log: configLog,
    onResult: metrics.onReload,
  });
  logger.info(
    {
      component: 'main',
      dns: formatAddress(dns.address),
      http: formatAddress(http.address),
      zone: config.dns.zone,
      config: configFile,
      config_hash: reloader.inForce.hash,
    },
    'serving',
  );

  return {
    dnsAddress: dns.address,
    httpAddress: http.address,
    reload: () => reloader.reload('SIGHUP'),
    async stop() {
      await reloader.stop();
      await Promise.all([dns.close(), http.close(), monitor.stop()]);
    },
  };
}
