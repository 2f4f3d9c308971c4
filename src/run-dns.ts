// Wiring of the `dns` command: monitor -> zone view -> responder -> UDP/TCP, and the HTTP endpoints.
// Every decision lives in the modules it wires; this file only connects them and owns their lifetimes.
import type { Logger } from 'pino';
import { loadDnsConfig } from './config/load.js';
import { movedListenAddresses, startReloader } from './config/reloader.js';
import type { DnsConfig, ListenAddress } from './config/schema.js';
import { Responder } from './dns/responder.js';
import { DnsServer } from './dns/server.js';
import type { ServiceView, ZoneView } from './dns/zone-view.js';
import { bindError, formatAddress } from './errors.js';
import { type CarriedState, HealthMonitor, type RunRound } from './health/monitor.js';
import { probeRound } from './health/probe.js';
import type { HealthSnapshot, ServiceSnapshot } from './health/snapshot.js';
import { statusStrings } from './health/status-text.js';
import { dnsRoute } from './http/routes.js';
import { HttpServer, metricsReply } from './http/server.js';
import { createDnsMetrics } from './metrics.js';

export interface RunningDns {
  readonly dnsAddress: { host: string; port: number };
  readonly httpAddress: { host: string; port: number };
  /** Re-reads the config file and applies it if valid and changed (SIGHUP). */
  reload(): Promise<void>;
  /** Stops accepting, finishes what is in flight, stops the probes. */
  stop(): Promise<void>;
}

const runRound: RunRound = (pool, signal) =>
  probeRound({
    proxy: pool.proxy,
    targets: pool.probe.targets,
    quorum: pool.probe.quorum,
    timeoutMs: pool.probe.timeoutMs,
    expectStatus: pool.probe.expectStatus,
    signal,
  });

// The monitor hands the same ServiceSnapshot object again while none of the service's pools
// changed, so a publication derives views (and _status strings) only for the services that did.
const serviceViews = new WeakMap<ServiceSnapshot, ServiceView>();

function serviceViewOf(service: ServiceSnapshot): ServiceView {
  let view = serviceViews.get(service);
  if (!view) {
    const { selection } = service;
    view = {
      name: service.name,
      // An empty set is SERVFAIL: pending, or every pool down under onAllDown: servfail.
      addresses: selection.ready && selection.addresses.length > 0 ? selection.addresses : undefined,
      status: statusStrings(service),
    };
    serviceViews.set(service, view);
  }
  return view;
}

/** What DNS needs from the health view; pools' reasons and times reach it only through _status. */
function zoneViewOf(config: DnsConfig, snapshot: HealthSnapshot, serial: number): ZoneView {
  const services = new Map<string, ServiceView>();
  for (const service of snapshot.services) services.set(service.name, serviceViewOf(service));
  return { zone: config.dns.zone, nameserver: config.dns.nameserver, ttl: config.dns.ttl, serial, services };
}

function sameAnswers(a: ZoneView, b: ZoneView): boolean {
  // A reload may change only the zone's own settings: those are in every answer too.
  if (a.zone !== b.zone || a.nameserver !== b.nameserver || a.ttl !== b.ttl) return false;
  for (const [name, service] of a.services) {
    const other = b.services.get(name);
    if (other === service) continue;
    if (!other || String(service.addresses) !== String(other.addresses)) return false;
  }
  return a.services.size === b.services.size;
}

function sameView(a: ZoneView, b: ZoneView): boolean {
  if (!sameAnswers(a, b)) return false;
  for (const [name, service] of a.services) {
    const other = b.services.get(name);
    if (other !== service && String(service.status) !== String(other?.status)) return false;
  }
  return true;
}

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
  // Assigned by startMonitor before anything reads it.
  let monitor!: HealthMonitor;
  const metrics = createDnsMetrics({ snapshot: () => monitor.current() });
  const healthLog = logger.child({ component: 'health' });
  const configLog = logger.child({ component: 'config' });
  let inForce = config;

  // The SOA serial only moves when an answer changes, and starts from the clock so that a restart
  // never makes it go backwards.
  let serial = Math.floor(Date.now() / 1000);
  // Created by the first publication; from then on it holds the view in force.
  let responder: Responder | undefined;
  const publish = (current: DnsConfig, snapshot: HealthSnapshot) => {
    const candidate = zoneViewOf(current, snapshot, serial);
    const view = responder?.view;
    if (view && sameView(candidate, view)) return;
    if (view && !sameAnswers(candidate, view)) serial = Math.max(serial + 1, Math.floor(Date.now() / 1000));
    const next = { ...candidate, serial };
    if (responder) responder.setView(next);
    else responder = new Responder(next);
  };

  const startMonitor = (current: DnsConfig, previous?: CarriedState) => {
    const created = new HealthMonitor({
      services: current.services,
      runRound,
      logger: healthLog,
      onRound: metrics.onRound,
      onTransition: metrics.onTransition,
      ...(previous ? { previous } : {}),
    });
    // A stopped monitor may still settle a round: only the monitor in force publishes.
    created.onSnapshot((snapshot) => {
      if (created === monitor) publish(current, snapshot);
    });
    monitor = created;
    publish(current, created.current());
    return created;
  };
  startMonitor(config);

  const dnsLog = logger.child({ component: 'dns' });
  const dns = await bind('dns.listen', config.dns.listen, () =>
    DnsServer.start({
      listen: config.dns.listen,
      responder: responder as Responder,
      log: dnsLog,
      onOutcome: metrics.onDnsOutcome,
    }),
  );
  let http: HttpServer;
  try {
    http = await bind('http.listen', config.http.listen, () =>
      HttpServer.start(config.http.listen, async (path) => {
        if (path === '/metrics') {
          return metricsReply(metrics.registry);
        }
        return dnsRoute(path, monitor.current(), { file: configFile, ...reloader.inForce });
      }),
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
    refuse: (next) => listenChanges(inForce, next),
    apply: async (next) => {
      const old = monitor;
      await old.stop();
      inForce = next;
      startMonitor(next, old.carryOver()).start();
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
