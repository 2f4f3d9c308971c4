// Prometheus metrics of the `sidecar` command: counters bumped as rounds finish, gauges read from
// the loop's state at scrape time, and Squid's client connections asked of its cache manager then.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SidecarConfig } from '../../config/schema.js';
import type { RoundResult } from '../../health/round.js';
import { HEALTH_STATES } from '../../health/state.js';
import { redactUrl } from '../../redact.js';
import {
  type CheckName,
  localFailures,
  type RoundEvidence,
  type SidecarModes,
  type SidecarState,
  type SidecarStep,
  shallowIsLocal,
  sidecarReadings,
  usesAttribution,
} from '../../sidecar/verdict.js';
import { PROBE_SECONDS_BUCKETS, reloadCounter, setOneOf } from '../metrics.js';

/** The loop's state and the config in force, as a scrape finds them. */
export interface SidecarView {
  readonly state: SidecarState;
  readonly config: SidecarConfig;
}

/** A round's result label: `local` failed for a reason of this process and did not count. */
const resultOf = (ok: boolean, local: boolean | undefined) => (ok ? 'pass' : local ? 'local' : 'fail');

/** The modes each endpoint can be in, for egress_sidecar_endpoint_mode's 0/1 series. */
const ENDPOINT_MODES = {
  readyz: ['deep', 'attributed'],
  health: ['deep', 'attributed', 'shallow'],
} as const;

/**
 * Counters are bumped as rounds finish; the gauges are rebuilt from `view` at each scrape, like the
 * dns server's, so a reload that changes a mode shows at once and the series of a mode no longer in
 * force go away instead of staying at their last value. `squidClients` reads the client connections
 * Squid holds at scrape time (undefined: its cache manager did not answer, and the gauge is absent).
 */
export function createSidecarMetrics(
  view: () => SidecarView,
  squidClients: () => Promise<number | undefined> = async () => undefined,
) {
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
    help: 'Rounds by check (deep, attributed, shallow) and result (pass, fail, local: failed for a reason of this process, not counted).',
    labelNames: ['check', 'result'] as const,
    registers: [registry],
  });
  const localErrors = new Counter({
    name: 'egress_probe_local_errors_total',
    help: 'Checks (deep, direct, shallow) failed for a reason of this process (EMFILE, ENOBUFS, ...): not counted against the proxy.',
    labelNames: ['check'] as const,
    registers: [registry],
    collect() {
      // From 0, so increase() sees the first local error as a rise (direct: only while it is made).
      const checks: CheckName[] = usesAttribution(view().config)
        ? ['deep', 'direct', 'shallow']
        : ['deep', 'shallow'];
      for (const check of checks) this.inc({ check }, 0);
    },
  });
  const readings = () => {
    const { state, config } = view();
    return sidecarReadings(state, config, config.probe);
  };
  new Gauge({
    name: 'egress_sidecar_state',
    help: '1 for the state each machine is in (deep: egress through the proxy works; attributed: the proxy is not at fault, while an endpoint is attributed).',
    labelNames: ['check', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const machine of readings().machines) {
        setOneOf(this, { check: machine.check }, 'state', HEALTH_STATES, machine.state);
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
    name: 'egress_sidecar_endpoint_mode',
    help: '1 for the mode each endpoint answers in (readyz: readiness; health: liveness), 0 for the others.',
    labelNames: ['endpoint', 'mode'] as const,
    registers: [registry],
    collect() {
      const { config } = view();
      setOneOf(this, { endpoint: 'readyz' }, 'mode', ENDPOINT_MODES.readyz, config.readiness);
      setOneOf(this, { endpoint: 'health' }, 'mode', ENDPOINT_MODES.health, config.liveness);
    },
  });
  new Gauge({
    name: 'egress_squid_client_connections',
    help: "Client connections Squid holds, from its cache manager's filedescriptors page at scrape time; absent when the manager does not answer.",
    registers: [registry],
    async collect() {
      const count = await squidClients();
      if (count === undefined) this.remove({});
      else this.set(count);
    },
  });
  new Gauge({
    name: 'egress_sidecar_direct_ever_succeeded',
    help: 'While an endpoint is attributed: 1 once a direct fetch has passed since start; 0 means no direct route seen.',
    registers: [registry],
    collect() {
      const ever = readings().directEverSucceeded;
      // A gauge without labels reads 0 until removed: while no endpoint is attributed no direct
      // fetch is made, and a 0 here would say "no direct route" on every pod.
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
    onStep(step: SidecarStep, evidence: RoundEvidence, modes: SidecarModes) {
      countRound('proxy', evidence.proxy);
      countRound('direct', evidence.direct);
      const { lastAttribution } = step.state;
      rounds.inc({ check: 'deep', result: resultOf(evidence.proxy.ok, evidence.proxy.local) });
      rounds.inc({
        check: 'shallow',
        result: resultOf(evidence.shallow.ok, shallowIsLocal(evidence.shallow)),
      });
      if (usesAttribution(modes) && lastAttribution) {
        rounds.inc({ check: 'attributed', result: resultOf(lastAttribution.ok, lastAttribution.local) });
      }
      for (const { check } of localFailures(evidence)) localErrors.inc({ check });
    },
    onReload,
  };
}
