// Prometheus metrics of the `sidecar` command: counters bumped as rounds finish, gauges read from
// the loop's state at scrape time.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { LivenessMode, SidecarConfig } from '../../config/schema.js';
import { HEALTH_STATES } from '../../health/state.js';
import type { RoundResult } from '../../health/verdict.js';
import { redactUrl } from '../../redact.js';
import {
  type RoundEvidence,
  type SidecarState,
  type SidecarStep,
  sidecarReadings,
} from '../../sidecar/verdict.js';
import { PROBE_SECONDS_BUCKETS, reloadCounter } from '../metrics.js';

/** The loop's state and the config in force, as a scrape finds them. */
export interface SidecarView {
  readonly state: SidecarState;
  readonly config: SidecarConfig;
}

/**
 * Counters are bumped as rounds finish; the gauges are rebuilt from `view` at each scrape, like the
 * dns server's, so a reload that changes `liveness` shows at once and the series of a mode no longer
 * in force go away instead of staying at their last value.
 */
export function createSidecarMetrics(view: () => SidecarView) {
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
