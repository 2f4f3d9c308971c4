// Wiring of the `sidecar` command: the loop (loop.ts), its metrics (metrics.ts), the HTTP server
// answering /livez /readyz /health /metrics from the last state at once, and config reloads.
// Decisions live in src/sidecar/verdict.ts and routes.ts; this file only connects and owns lifetimes.
import type { Logger } from 'pino';
import { loadSidecarConfig } from '../../config/load.js';
import { movedListenAddresses, startReloader } from '../../config/reloader.js';
import type { SidecarConfig } from '../../config/schema.js';
import { bindError } from '../../errors.js';
import { json, metricsReply } from '../../http/reply.js';
import { HttpServer } from '../../http/server.js';
import { formatAddress } from '../../listen-address.js';
import { redactUrl } from '../../redact.js';
import { sidecarRoute } from '../../sidecar/routes.js';
import { carryOver } from '../../sidecar/verdict.js';
import { SidecarLoop } from './loop.js';
import { createSidecarMetrics } from './metrics.js';
import { squidClientReader } from './squid-manager.js';

/** How long a scrape waits for Squid's cache manager before leaving its metric out. */
const SQUID_MANAGER_BOUND_MS = 1_000;

export interface RunningSidecar {
  readonly address: { host: string; port: number };
  /** Re-reads the config file and applies it if valid and changed (SIGHUP). */
  reload(): Promise<void>;
  /** Stops accepting, ends the loop (aborting a round in flight) and waits for both. */
  stop(): Promise<void>;
}

/**
 * Starts the sidecar: binds the HTTP endpoint first (so a port in use fails before any probe
 * traffic), then the loop. A bind failure rejects with src/errors.ts bindError (an OperatorError
 * naming `sidecar.listen`, exit code 2), which the caller prints as it is.
 */
export async function runSidecar(
  config: SidecarConfig,
  logger: Logger,
  /** The file the config came from: watched, and re-read on reload(). */
  source?: { readonly file: string; readonly text: string },
): Promise<RunningSidecar> {
  const log = logger.child({ component: 'sidecar' });
  let current = config;
  // Squid's client connections, asked of the proxy in force at each scrape.
  let readSquidClients = squidClientReader(config.proxy, SQUID_MANAGER_BOUND_MS, log);
  // Called at scrape time only, once `loop` exists.
  const metrics = createSidecarMetrics(
    () => ({ state: loop.state, config: current }),
    () => readSquidClients(),
  );
  let loop = new SidecarLoop({ config, log, onStep: metrics.onStep });

  let http: HttpServer;
  try {
    http = await HttpServer.start(
      config.listen,
      async (path) => {
        if (path === '/metrics') {
          return metricsReply(metrics.registry);
        }
        const reply = sidecarRoute(path, loop.state, current, current.probe);
        return reply && json(reply.status, reply.body);
      },
      { log: logger.child({ component: 'http' }) },
    );
  } catch (err) {
    throw bindError(err, 'sidecar.listen', config.listen);
  }
  loop.start();
  const address = http.address;
  log.info(
    {
      listen: formatAddress(address),
      proxy: redactUrl(config.proxy),
      targets: config.probe.targets.map(redactUrl),
      liveness: config.liveness,
      readiness: config.readiness,
    },
    'serving',
  );

  const reloader =
    source &&
    startReloader({
      file: source.file,
      text: source.text,
      load: loadSidecarConfig,
      refuse: (next) =>
        movedListenAddresses([['sidecar.listen', formatAddress(current.listen), formatAddress(next.listen)]]),
      apply: async (next) => {
        const old = loop;
        await old.stop();
        const state = carryOver(old.state, current, next, Date.now());
        if (next.proxy !== current.proxy) {
          readSquidClients = squidClientReader(next.proxy, SQUID_MANAGER_BOUND_MS, log);
        }
        current = next;
        loop = new SidecarLoop({ config: next, log, onStep: metrics.onStep, carried: state });
        loop.start();
      },
      log: logger.child({ component: 'config' }),
      onResult: metrics.onReload,
    });

  return {
    address,
    reload: async () => reloader?.reload('SIGHUP'),
    async stop() {
      await reloader?.stop();
      await Promise.all([http.close(), loop.stop()]);
    },
  };
}
