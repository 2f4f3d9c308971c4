// Prometheus metrics of the `dns` command. Probe and state metrics are updated from the monitor's
// events; DNS query counts are plain integers bumped on the answer path and turned into a counter
// only when scraped, so a query never pays for label lookups.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Outcome, Transport } from './dns/responder.js';
import type { RoundEvent, TransitionEvent } from './health/monitor.js';
import type { HealthSnapshot } from './health/select.js';
import type { HealthState } from './health/state.js';

const TYPE_NAMES: Record<number, string> = { 1: 'A', 2: 'NS', 6: 'SOA', 16: 'TXT', 28: 'AAAA', 255: 'ANY' };
const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  16: 'BADVERS',
};
const STATES: readonly HealthState[] = ['unknown', 'healthy', 'unhealthy'];

export interface DnsMetrics {
  readonly registry: Registry;
  onRound(event: RoundEvent): void;
  onTransition(event: TransitionEvent): void;
  onSnapshot(snapshot: HealthSnapshot): void;
  onDnsOutcome(outcome: Outcome, transport: Transport): void;
  /** Config reloads, by result. */
  onReload(ok: boolean): void;
}

export function createDnsMetrics(options: { processMetrics?: boolean } = {}): DnsMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const probes = new Counter({
    name: 'egress_probe_results_total',
    help: 'Deep-check results per target, through the pool proxy.',
    labelNames: ['service', 'pool', 'target', 'result'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'egress_probe_duration_seconds',
    help: 'Time for one target fetched through the pool proxy, until pass, failure or timeout.',
    labelNames: ['service', 'pool', 'target'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const rounds = new Counter({
    name: 'egress_probe_rounds_total',
    help: 'Probe rounds per pool, by verdict (quorum of targets passed or not).',
    labelNames: ['service', 'pool', 'result'] as const,
    registers: [registry],
  });
  const state = new Gauge({
    name: 'egress_pool_state',
    help: '1 for the state the pool is in (unknown, healthy, unhealthy), 0 for the others.',
    labelNames: ['service', 'pool', 'state'] as const,
    registers: [registry],
  });
  const selected = new Gauge({
    name: 'egress_pool_selected',
    help: '1 when DNS answers with this pool (all of them under onAllDown: all).',
    labelNames: ['service', 'pool'] as const,
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'egress_service_ready',
    help: '1 once the service has a verdict; until then DNS answers SERVFAIL for it.',
    labelNames: ['service', 'mode'] as const,
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'egress_pool_transitions_total',
    help: 'Pool state changes.',
    labelNames: ['service', 'pool', 'from', 'to'] as const,
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'egress_config_reloads_total',
    help: 'Config reloads, by result (failed: the old config keeps serving).',
    labelNames: ['result'] as const,
    registers: [registry],
  });

  // transport/qtype/rcode -> count; qtypes we do not name are folded into OTHER to bound cardinality.
  const queryCounts = new Map<string, number>();
  new Counter({
    name: 'egress_dns_queries_total',
    help: 'DNS messages by transport, query type and response code (rcode DROPPED: not answered).',
    labelNames: ['transport', 'qtype', 'rcode'] as const,
    registers: [registry],
    collect() {
      // The totals live in queryCounts; the counter is rebuilt from them at each scrape.
      this.reset();
      for (const [key, count] of queryCounts) {
        const [transport, qtype, rcode] = key.split('/') as [string, string, string];
        this.inc({ transport, qtype, rcode }, count);
      }
    },
  });

  let lastSnapshot: HealthSnapshot | undefined;
  return {
    registry,
    onRound({ service, pool, result }) {
      rounds.inc({ service, pool, result: result.ok ? 'pass' : 'fail' });
      for (const target of result.targets) {
        probes.inc({ service, pool, target: target.target, result: target.ok ? 'pass' : 'fail' });
        latency.observe({ service, pool, target: target.target }, target.latencyMs / 1000);
      }
    },
    onTransition({ service, pool, transition }) {
      transitions.inc({ service, pool, from: transition.from, to: transition.to });
    },
    onSnapshot(snapshot) {
      if (snapshot === lastSnapshot) return;
      lastSnapshot = snapshot;
      // Modes change label values and a reload can remove pools: drop the old series rather than
      // leave them at a stale 1.
      ready.reset();
      state.reset();
      selected.reset();
      for (const service of snapshot.services) {
        ready.set({ service: service.name, mode: service.selection.mode }, service.selection.ready ? 1 : 0);
        for (const pool of service.pools) {
          for (const s of STATES)
            state.set({ service: service.name, pool: pool.name, state: s }, pool.state === s ? 1 : 0);
          const answered =
            service.selection.mode === 'all-down-all' || service.selection.selected === pool.name ? 1 : 0;
          selected.set({ service: service.name, pool: pool.name }, answered);
        }
      }
    },
    onDnsOutcome(outcome, transport) {
      const qtype = outcome.qtype === undefined ? 'NONE' : (TYPE_NAMES[outcome.qtype] ?? 'OTHER');
      const rcode = outcome.dropped ? 'DROPPED' : (RCODE_NAMES[outcome.rcode ?? -1] ?? 'OTHER');
      const key = `${transport}/${qtype}/${rcode}`;
      queryCounts.set(key, (queryCounts.get(key) ?? 0) + 1);
    },
    onReload(ok) {
      reloads.inc({ result: ok ? 'ok' : 'failed' });
    },
  };
}
