// Edge: the `sidecar` command. A background loop checks the local proxy (deep check through it, the
// shallow "does it answer HTTP" check, and in attributed mode the same targets fetched directly),
// feeds src/sidecar/verdict.ts, and an HTTP server answers /livez /readyz /health /metrics from the
// last state at once. Decisions live in verdict.ts and routes.ts; this file owns sockets and timers.
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { loadSidecarConfig } from '../config/load.js';
import { movedListenAddresses, startReloader } from '../config/reloader.js';
import type { LivenessMode, SidecarConfig } from '../config/schema.js';
import { bindError, formatAddress } from '../errors.js';
import { answersHttp, probeRound } from '../health/probe.js';
import { HEALTH_STATES } from '../health/state.js';
import type { RoundResult } from '../health/verdict.js';
import { HttpServer, json, metricsReply } from '../http/server.js';
import { PROBE_SECONDS_BUCKETS, reloadCounter } from '../metrics.js';
import { redactUrl } from '../redact.js';
import { sidecarRoute } from './routes.js';
import {
  applyRound,
  carryOver,
  initialSidecarState,
  nextRoundDelayMs,
  type RoundEvidence,
  type ShallowResult,
  type SidecarState,
  type SidecarStep,
  sidecarReadings,
} from './verdict.js';

export interface RunningSidecar {
  readonly address: { host: string; port: number };
  /** Re-reads the config file and applies it if valid and changed (SIGHUP). */
  reload(): Promise<void>;
  /** Stops accepting, ends the loop (aborting a round in flight) and waits for both. */
  stop(): Promise<void>;
}

/** The shallow check must answer well inside a round and inside kubelet's patience: 1 s at most. */
const SHALLOW_BOUND_MS = 1_000;
/** How often the "no direct route" warning repeats while it stays true. */
const NO_DIRECT_WARN_EVERY_MS = 10 * 60_000;

/** The loop's state and the config in force, as a scrape finds them. */
interface SidecarView {
  readonly state: SidecarState;
  readonly config: SidecarConfig;
}

/**
 * Counters are bumped as rounds finish; the gauges are rebuilt from `view` at each scrape, like the
 * dns server's, so a reload that changes `liveness` shows at once and the series of a mode no longer
 * in force go away instead of staying at their last value.
 */
function createMetrics(view: () => SidecarView) {
  const registry = new Registry();
  // Process memory and event-loop lag matter here: this runs in every Squid pod.
  collectDefaultMetrics({ register: registry });
  const targets = new Counter({
    name: 'egress_sidecar_probe_results_total',
    help: 'Target fetches per round, through the proxy (path=proxy) or directly from the pod (path=direct).',
    labelNames: ['path', 'target', 'result'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'egress_sidecar_probe_duration_seconds',
    help: 'Time for one target fetch, until pass, failure or timeout.',
    labelNames: ['path', 'target'] as const,
    buckets: PROBE_SECONDS_BUCKETS,
    registers: [registry],
  });
  const rounds = new Counter({
    name: 'egress_sidecar_rounds_total',
    help: 'Rounds by check (deep, attributed, shallow) and result.',
    labelNames: ['check', 'result'] as const,
    registers: [registry],
  });
  const readings = () => {
    const { state, config } = view();
    return sidecarReadings(state, config.liveness, config.probe);
  };
  new Gauge({
    name: 'egress_sidecar_state',
    help: '1 for the state each machine is in (deep: /readyz; attributed: /health in attributed mode).',
    labelNames: ['check', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const machine of readings().machines) {
        for (const s of HEALTH_STATES)
          this.set({ check: machine.check, state: s }, machine.state === s ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'egress_sidecar_endpoint_ok',
    help: '1 while the endpoint answers 200, 0 while it answers 503.',
    labelNames: ['endpoint'] as const,
    registers: [registry],
    collect() {
      const { endpoints } = readings();
      this.set({ endpoint: 'livez' }, endpoints.livez ? 1 : 0);
      this.set({ endpoint: 'readyz' }, endpoints.readyz ? 1 : 0);
      this.set({ endpoint: 'health' }, endpoints.health ? 1 : 0);
    },
  });
  new Gauge({
    name: 'egress_sidecar_direct_ever_succeeded',
    help: 'attributed mode: 1 once a direct fetch has passed since start; 0 means no direct route seen.',
    registers: [registry],
    collect() {
      const ever = readings().directEverSucceeded;
      // A gauge without labels reads 0 until removed: outside attributed mode no direct fetch is
      // made, and a 0 here would say "no direct route" on every pod.
      if (ever === undefined) this.remove({});
      else this.set(ever ? 1 : 0);
    },
  });
  // One definition with the dns server's, so one alert covers both.
  const onReload = reloadCounter(registry);

  const countRound = (path: 'proxy' | 'direct', round: RoundResult | undefined) => {
    if (round === undefined) return;
    for (const t of round.targets) {
      const target = redactUrl(t.target);
      targets.inc({ path, target, result: t.ok ? 'pass' : 'fail' });
      latency.observe({ path, target }, t.latencyMs / 1000);
    }
  };

  return {
    registry,
    onStep(step: SidecarStep, evidence: RoundEvidence, liveness: LivenessMode) {
      countRound('proxy', evidence.proxy);
      countRound('direct', evidence.direct);
      const { shallow, lastAttribution } = step.state;
      rounds.inc({ check: 'deep', result: evidence.proxy.ok ? 'pass' : 'fail' });
      rounds.inc({ check: 'shallow', result: shallow?.ok ? 'pass' : 'fail' });
      if (liveness === 'attributed') {
        rounds.inc({ check: 'attributed', result: lastAttribution?.ok ? 'pass' : 'fail' });
      }
    },
    onReload,
  };
}

/**
 * Rounds one after another, never overlapping: the next starts `interval` (or `fastInterval` while a
 * verdict is changing) after the last one ended. Overlapping rounds against a hung Squid would pile
 * connections onto exactly the process that is struggling, and land out of order in rise/fall.
 */
class SidecarLoop {
  state: SidecarState;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #controller: AbortController | undefined;
  #stopped = false;
  #lastNoDirectWarning: number | undefined;

  constructor(
    private readonly config: SidecarConfig,
    private readonly log: Logger,
    private readonly onStep: (step: SidecarStep, evidence: RoundEvidence, liveness: LivenessMode) => void,
    /** A reload carries the verdicts over: /readyz and /health never flap because the file changed. */
    carried?: SidecarState,
  ) {
    this.state = carried ?? initialSidecarState(Date.now());
  }

  start(): void {
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#controller?.abort();
    await this.#inFlight;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#round().finally(() => {
        this.#inFlight = undefined;
      });
    }, delayMs);
  }

  async #round(): Promise<void> {
    const { config } = this;
    const { probe } = config;
    const controller = new AbortController();
    this.#controller = controller;
    const fetchAll = (proxy: string | undefined) =>
      probeRound({
        proxy,
        targets: probe.targets,
        quorum: probe.quorum,
        timeoutMs: probe.timeoutMs,
        expectStatus: probe.expectStatus,
        signal: controller.signal,
      }).catch((err: unknown) => this.#thrown(err));
    // All three at once, so the attribution compares the proxy and the direct path at the same
    // moment, and a round costs one timeout however many checks it holds.
    const [proxy, direct, shallow] = await Promise.all([
      fetchAll(config.proxy),
      config.liveness === 'attributed' ? fetchAll(undefined) : Promise.resolve(undefined),
      answersHttp(config.proxy, Math.min(probe.timeoutMs, SHALLOW_BOUND_MS)).then(
        (r): ShallowResult => ({ ...r, at: Date.now() }),
      ),
    ]);
    this.#controller = undefined;
    if (this.#stopped) return;

    const evidence: RoundEvidence = { proxy, direct, shallow };
    const now = Date.now();
    const step = applyRound(this.state, evidence, now, probe);
    this.state = step.state;
    this.#logStep(step, now);
    try {
      this.onStep(step, evidence, config.liveness);
    } catch (err) {
      this.log.warn({ err }, 'sidecar metrics update threw');
    }
    this.#schedule(nextRoundDelayMs(this.state, probe));
  }

  /** probeRound bounds and reports its own failures; a throw is a bug, recorded as a failed round. */
  #thrown(err: unknown): RoundResult {
    this.log.warn({ err }, 'probe round threw');
    const text = err instanceof Error ? err.message : String(err);
    const reason = `probe_error=${text.replace(/\s+/g, '_').slice(0, 80) || 'unknown'}`;
    return { ok: false, reason, targets: [], latencyMs: 0, at: Date.now() };
  }

  #logStep(step: SidecarStep, now: number): void {
    const { state } = step;
    if (step.deepTransition) {
      const { from, to, reason } = step.deepTransition;
      this.log.info({ check: 'deep', from, to, reason }, 'deep check state changed (/readyz)');
    }
    if (step.attributedTransition && this.config.liveness === 'attributed') {
      const { from, to, reason } = step.attributedTransition;
      this.log.info({ check: 'attributed', from, to, reason }, 'attributed verdict changed (/health)');
    }
    if (step.shallowChanged && state.shallow) {
      const { ok, reason } = state.shallow;
      this.log.info(
        { check: 'shallow', ok, reason },
        ok ? 'proxy answers HTTP' : 'proxy does not answer HTTP',
      );
    }
    // A pod chained to a parent proxy has no direct route: both paths then fail together and the
    // attributed verdict blames the outside, so only "Squid does not answer" can restart it.
    // That must not go unnoticed, hence a warning that repeats while it stays true.
    if (this.config.liveness !== 'attributed') return;
    const direct = state.lastEvidence?.direct;
    if (state.directEverOk) {
      if (this.#lastNoDirectWarning !== undefined) {
        this.log.info('a direct fetch passed: attributed liveness can now tell proxy faults apart');
        this.#lastNoDirectWarning = undefined;
      }
    } else if (
      direct &&
      (this.#lastNoDirectWarning === undefined || now - this.#lastNoDirectWarning >= NO_DIRECT_WARN_EVERY_MS)
    ) {
      this.#lastNoDirectWarning = now;
      this.log.warn(
        { check: 'attributed', reason: direct.reason, rounds: state.rounds },
        'liveness is attributed but no direct fetch has succeeded since start: with no direct route ' +
          '(e.g. Squid chained to a parent proxy) /health fails only when the proxy does not answer at all',
      );
    }
  }
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
  let inForce = config;
  // Called at scrape time only, once `loop` exists.
  const metrics = createMetrics(() => ({ state: loop.state, config: inForce }));
  let loop = new SidecarLoop(config, log, metrics.onStep);

  let http: HttpServer;
  try {
    http = await HttpServer.start(config.listen, async (path) => {
      if (path === '/metrics') {
        return metricsReply(metrics.registry);
      }
      const reply = sidecarRoute(path, loop.state, inForce.liveness, inForce.probe);
      return reply && json(reply.status, reply.body);
    });
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
        movedListenAddresses([['sidecar.listen', formatAddress(inForce.listen), formatAddress(next.listen)]]),
      apply: async (next) => {
        const old = loop;
        await old.stop();
        const state = carryOver(old.state, inForce.liveness, next.liveness, Date.now());
        inForce = next;
        loop = new SidecarLoop(next, log, metrics.onStep, state);
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
