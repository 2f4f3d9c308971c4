// Wiring of the `dns` command: monitor -> zone view -> responder -> UDP/TCP, and the HTTP endpoints.
// Every decision lives in the modules it wires; this file only connects them and owns their lifetimes.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DnsConfig, ListenAddress } from './config/schema.js';
import { Responder } from './dns/responder.js';
import { DnsServer } from './dns/server.js';
import type { ServiceView, ZoneView } from './dns/zone-view.js';
import { HealthMonitor, type RunRound } from './health/monitor.js';
import { probeRound, redactUrl } from './health/probe.js';
import type { HealthSnapshot } from './health/select.js';
import { statusStrings } from './health/status-text.js';
import { bindError, formatAddress } from './errors.js';
import { type ConfigInForce, dnsRoute } from './http/routes.js';
import { HttpServer } from './http/server.js';
import { createDnsMetrics } from './metrics.js';

export interface RunningDns {
  readonly dnsAddress: { host: string; port: number };
  readonly httpAddress: { host: string; port: number };
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

/** What DNS needs from the health view; pools' reasons and times reach it only through _status. */
export function zoneViewOf(config: DnsConfig, snapshot: HealthSnapshot, serial: number): ZoneView {
  const services = new Map<string, ServiceView>();
  for (const service of snapshot.services) {
    const { selection } = service;
    services.set(service.name, {
      name: service.name,
      // An empty set is SERVFAIL: pending, or every pool down under onAllDown: servfail.
      addresses: selection.ready && selection.addresses.length > 0 ? selection.addresses : undefined,
      status: statusStrings(service),
    });
  }
  return { zone: config.dns.zone, nameserver: config.dns.nameserver, ttl: config.dns.ttl, serial, services };
}

function sameAnswers(a: ZoneView, b: ZoneView): boolean {
  for (const [name, service] of a.services) {
    const other = b.services.get(name);
    if (!other || String(service.addresses) !== String(other.addresses)) return false;
  }
  return a.services.size === b.services.size;
}

function sameView(a: ZoneView, b: ZoneView): boolean {
  if (!sameAnswers(a, b)) return false;
  for (const [name, service] of a.services) {
    if (String(service.status) !== String(b.services.get(name)?.status)) return false;
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

export async function runDns(
  config: DnsConfig,
  configFile: string,
  configText: string,
  logger: Logger,
): Promise<RunningDns> {
  const metrics = createDnsMetrics();
  const monitor = new HealthMonitor({
    services: config.services,
    runRound,
    logger: logger.child({ component: 'health' }),
    redact: redactUrl,
    onRound: metrics.onRound,
    onTransition: metrics.onTransition,
  });

  // The SOA serial only moves when an answer changes, and starts from the clock so that a restart
  // never makes it go backwards.
  let serial = Math.floor(Date.now() / 1000);
  let view = zoneViewOf(config, monitor.current(), serial);
  const responder = new Responder(view);
  monitor.onSnapshot((snapshot) => {
    metrics.onSnapshot(snapshot);
    const candidate = zoneViewOf(config, snapshot, serial);
    if (sameView(candidate, view)) return;
    if (!sameAnswers(candidate, view)) {
      serial = Math.max(serial + 1, Math.floor(Date.now() / 1000));
      view = { ...candidate, serial };
    } else {
      view = candidate;
    }
    responder.setView(view);
  });

  const loaded: ConfigInForce = {
    file: configFile,
    hash: createHash('sha256').update(configText).digest('hex').slice(0, 12),
    loadedAt: Date.now(),
  };
  const dnsLog = logger.child({ component: 'dns' });
  const dns = await bind('dns.listen', config.dns.listen, () =>
    DnsServer.start({ listen: config.dns.listen, responder, log: dnsLog, onOutcome: metrics.onDnsOutcome }),
  );
  let http: HttpServer;
  try {
    http = await bind('http.listen', config.http.listen, () =>
      HttpServer.start(config.http.listen, async (path) => {
        if (path === '/metrics') {
          return {
            status: 200,
            contentType: metrics.registry.contentType,
            body: await metrics.registry.metrics(),
          };
        }
        return dnsRoute(path, monitor.current(), loaded);
      }),
    );
  } catch (err) {
    await dns.close();
    throw err;
  }
  monitor.start();
  logger.info(
    {
      component: 'main',
      dns: formatAddress(dns.address),
      http: formatAddress(http.address),
      zone: config.dns.zone,
      config: configFile,
    },
    'serving',
  );

  return {
    dnsAddress: dns.address,
    httpAddress: http.address,
    async stop() {
      await Promise.all([dns.close(), http.close(), monitor.stop()]);
    },
  };
}
