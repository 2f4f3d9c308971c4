// Prometheus metrics of the `dns` command. Probe counters are updated from the monitor's events;
// pool state and selection are read from the health view at scrape time, so no round pays for
// them; DNS query counts are plain integers bumped on the answer path and turned into a counter
// only when scraped, so a query never pays for label lookups.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ADMIN_STATES } from '../../config/defaults.js';
import type { Outcome, Transport } from '../../dns/responder.js';
import { TCP_SHED_REASONS, type TcpShedReason } from '../../dns/server.js';
import type { FlapEvent, RoundEvent, TransitionEvent } from '../../health/monitor.js';
import { isAnswered } from '../../health/select.js';
import type { HealthSnapshot } from '../../health/snapshot.js';
import { HEALTH_STATES, type HealthState } from '../../health/state.js';
import { PROBE_SECONDS_BUCKETS, reloadCounter, setOneOf } from '../metrics.js';

// Query counts live in one flat array indexed by (transport, qtype, rcode): bumping one is an add,
// with no string built and no map consulted on the answer path.
const TRANSPORTS: readonly Transport[] = ['udp', 'tcp'];
const QTYPES = ['A', 'NS', 'SOA', 'TXT', 'AAAA', 'ANY', 'OTHER', 'NONE'] as const;
const QTYPE_INDEX: Record<number, number> = { 1: 0, 2: 1, 6: 2, 16: 3, 28: 4, 255: 5 };
const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'BADVERS',
  'OTHER',
  'DROPPED',
] as const;
const RCODE_INDEX: Record<number, number> = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 16: 6 };
const OTHER_QTYPE = 6;
const NO_QTYPE = 7;
const OTHER_RCODE = 7;
/** Every state change state.ts makes (`unknown` is only ever a starting state). */
const TRANSITIONS: readonly (readonly [HealthState, HealthState])[] = [
  ['unknown', 'healthy'],
  ['unknown', 'unhealthy'],
  ['healthy', 'unhealthy'],
  ['unhealthy', 'healthy'],
];
const DROPPED = 8;

export interface DnsMetrics {
  readonly registry: Registry;
  onRound(event: RoundEvent): void;
  onTransition(event: TransitionEvent): void;
  onFlap(event: FlapEvent): void;
  onLocalError(event: RoundEvent): void;
  onDnsOutcome(outcome: Outcome, transport: Transport): void;
  /** A DNS-over-TCP connection closed to protect the others (RFC 7766 6.2), by reason. */
  onTcpShed(reason: TcpShedReason): void;
  /** Config reloads, by result. */
  onReload(ok: boolean): void;
}

export interface DnsMetricsOptions {
  readonly processMetrics?: boolean;
  /** The health view in force, read at each scrape. */
  readonly snapshot?: () => HealthSnapshot;
}

export function createDnsMetrics(options: DnsMetricsOptions = {}): DnsMetrics {
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
    buckets: PROBE_SECONDS_BUCKETS,
    registers: [registry],
  });
  const rounds = new Counter({
    name: 'egress_probe_rounds_total',
    help: 'Probe rounds per pool, by verdict (quorum of targets passed or not).',
    labelNames: ['service', 'pool', 'result'] as const,
    registers: [registry],
  });
  // Rebuilt from the view at each scrape: modes change label values and a reload can remove
  // pools, so old series are dropped rather than left at a stale 1.
  const fromSnapshot = (fill: (snapshot: HealthSnapshot) => void) =>
    function (this: Gauge) {
      this.reset();
      const snapshot = options.snapshot?.();
      if (snapshot) fill.call(this, snapshot);
    };
  new Gauge({
    name: 'egress_pool_state',
    help: '1 for the state the pool is in (unknown, healthy, unhealthy), 0 for the others.',
    labelNames: ['service', 'pool', 'state'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const service of snapshot.services) {
        for (const pool of service.pools) {
          setOneOf(this, { service: service.name, pool: pool.name }, 'state', HEALTH_STATES, pool.state);
        }
      }
    }),
  });
  new Gauge({
    name: 'egress_pool_admin',
    help: "1 for the operator's control in force on the pool (drain, down, up, or none), 0 for the others; never a fault.",
    labelNames: ['service', 'pool', 'state'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const service of snapshot.services) {
        for (const pool of service.pools) {
          const labels = { service: service.name, pool: pool.name };
          setOneOf(this, labels, 'state', ['none', ...ADMIN_STATES], pool.admin?.state ?? 'none');
        }
      }
    }),
  });
  new Gauge({
    name: 'egress_pool_selected',
    help: '1 when DNS answers with this pool (all of them under onAllDown: all).',
    labelNames: ['service', 'pool'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const { name, selection, pools } of snapshot.services) {
        for (const pool of pools) {
          this.set({ service: name, pool: pool.name }, isAnswered(selection, pool) ? 1 : 0);
        }
      }
    }),
  });
  new Gauge({
    name: 'egress_pool_priority',
    help: "The pool's place in its service's priority order: 1 is answered first when healthy.",
    labelNames: ['service', 'pool'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const { name, pools } of snapshot.services)
        for (const [i, pool] of pools.entries()) this.set({ service: name, pool: pool.name }, i + 1);
    }),
  });
  new Gauge({
    name: 'egress_service_ready',
    help: '1 once the service has a verdict; until then DNS answers SERVFAIL for it.',
    labelNames: ['service', 'mode'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const { name, selection } of snapshot.services) {
        this.set({ service: name, mode: selection.mode }, selection.ready ? 1 : 0);
      }
    }),
  });
  const transitions = new Counter({
    name: 'egress_pool_transitions_total',
    help: 'Pool state changes.',
    labelNames: ['service', 'pool', 'from', 'to'] as const,
    registers: [registry],
    // Every transition a pool can make is exported from 0 on: increase() does not count a series'
    // first sample, so a pool's first fall would otherwise be invisible to an alert.
    collect() {
      for (const service of options.snapshot?.().services ?? [])
        for (const pool of service.pools)
          for (const [from, to] of TRANSITIONS)
            this.inc({ service: service.name, pool: pool.name, from, to }, 0);
    },
  });
  new Gauge({
    name: 'egress_pool_pods',
    help: "A pool read from its pods' sidecars: its pods by readiness in the last round (ready, unready).",
    labelNames: ['service', 'pool', 'state'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const service of snapshot.services) {
        for (const { name, pods } of service.pools) {
          if (!pods) continue;
          const ready = pods.filter((pod) => pod.ready).length;
          this.set({ service: service.name, pool: name, state: 'ready' }, ready);
          this.set({ service: service.name, pool: name, state: 'unready' }, pods.length - ready);
        }
      }
    }),
  });
  new Gauge({
    name: 'egress_outside_outage',
    help: '1 while every pool whose proxy answers fails the same targets: the outside is at fault, the answer stays.',
    labelNames: ['service'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const service of snapshot.services) this.set({ service: service.name }, service.outage ? 1 : 0);
    }),
  });
  new Gauge({
    name: 'egress_pool_held_down',
    help: '1 while flap damping keeps the pool from being answered again (reason flapping).',
    labelNames: ['service', 'pool'] as const,
    registers: [registry],
    collect: fromSnapshot(function (this: Gauge, snapshot) {
      for (const { name, pools } of snapshot.services)
        for (const pool of pools) this.set({ service: name, pool: pool.name }, pool.flaps.heldUntil ? 1 : 0);
    }),
  });
  // Exported from 0 for every pool, for the same reason as the transitions.
  const perPoolFromZero = (name: string, help: string) =>
    new Counter({
      name,
      help,
      labelNames: ['service', 'pool'] as const,
      registers: [registry],
      collect() {
        for (const service of options.snapshot?.().services ?? [])
          for (const pool of service.pools) this.inc({ service: service.name, pool: pool.name }, 0);
      },
    });
  const flaps = perPoolFromZero(
    'egress_pool_flaps_total',
    'Hold-downs begun by flap damping: the pool changed state too often and its recovery was held.',
  );
  const localErrors = perPoolFromZero(
    'egress_probe_local_errors_total',
    'Rounds that failed for a reason of this process (EMFILE, ENOBUFS, ...): not counted against the pool.',
  );
  const onReload = reloadCounter(registry);
  const tcpShed = new Counter({
    name: 'egress_dns_tcp_shed_total',
    help: 'DNS-over-TCP connections closed to protect the others: evicted (the table was full), source_limit, message_deadline, idle_timeout.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      for (const reason of TCP_SHED_REASONS) this.inc({ reason }, 0);
    },
  });

  // transport/qtype/rcode -> count; qtypes we do not name are folded into OTHER to bound cardinality.
  const queryCounts = new Float64Array(TRANSPORTS.length * QTYPES.length * RCODES.length);
  new Counter({
    name: 'egress_dns_queries_total',
    help: 'DNS messages by transport, query type and response code (rcode DROPPED: not answered).',
    labelNames: ['transport', 'qtype', 'rcode'] as const,
    registers: [registry],
    collect() {
      // The totals live in queryCounts; the counter is rebuilt from them at each scrape.
      this.reset();
      queryCounts.forEach((count, i) => {
        if (count === 0) return;
        const transport = TRANSPORTS[Math.floor(i / (QTYPES.length * RCODES.length))] as string;
        const qtype = QTYPES[Math.floor(i / RCODES.length) % QTYPES.length] as string;
        const rcode = RCODES[i % RCODES.length] as string;
        this.inc({ transport, qtype, rcode }, count);
      });
    },
  });

  return {
    registry,
    onRound({ service, pool, result }) {
      rounds.inc({ service, pool, result: result.ok ? 'pass' : 'fail' });
      // A pods round's targets are pod addresses, not outside targets: they come and go with the pods.
      if (result.pods) return;
      for (const target of result.targets) {
        probes.inc({ service, pool, target: target.target, result: target.ok ? 'pass' : 'fail' });
        latency.observe({ service, pool, target: target.target }, target.latencyMs / 1000);
      }
    },
    onTransition({ service, pool, transition }) {
      transitions.inc({ service, pool, from: transition.from, to: transition.to });
    },
    onFlap({ service, pool }) {
      flaps.inc({ service, pool });
    },
    onLocalError({ service, pool }) {
      localErrors.inc({ service, pool });
    },
    onDnsOutcome(outcome, transport) {
      const qtype = outcome.qtype === undefined ? NO_QTYPE : (QTYPE_INDEX[outcome.qtype] ?? OTHER_QTYPE);
      const rcode = outcome.dropped ? DROPPED : (RCODE_INDEX[outcome.rcode ?? -1] ?? OTHER_RCODE);
      const t = transport === 'udp' ? 0 : 1;
      const i = (t * QTYPES.length + qtype) * RCODES.length + rcode;
      queryCounts[i] = (queryCounts[i] as number) + 1;
    },
    onTcpShed(reason) {
      tcpShed.inc({ reason });
    },
    onReload,
  };
}
