// Every default of the config, in one place: the schema (schema.ts) fills them in, the --help texts
// print them. Plain values, so that what reads them does not load zod.
import type { AdminState, ProbeSettings } from './schema.js';

export type ProbeDefaults = Omit<ProbeSettings, 'targets'>;

export const PROBE_DEFAULTS: ProbeDefaults = {
  quorum: 1,
  intervalMs: 2_000,
  timeoutMs: 1_000,
  rise: 2,
  fall: 2,
  fastIntervalMs: 200,
  expectStatus: [{ min: 200, max: 399 }],
  // Conservative: a pool must change state 5 times within 10 minutes (fail, recover, fail,
  // recover, fail) before its next recovery is held for a minute; a pool that fails once or
  // twice a day is never damped, and a failover is never delayed (only recoveries are held).
  flapThreshold: 4,
  flapWindowMs: 600_000,
  holdDownMs: 60_000,
  maxHoldDownMs: 600_000,
};

/** The dns server's HTTP endpoints; `egress-failover status` asks this port on the local host by default. */
export const DEFAULT_HTTP_LISTEN = '0.0.0.0:8080';

/** The dns block's and each service's defaults (the help texts read them from here). */
export const DNS_DEFAULTS = {
  zone: 'egress.svc',
  listen: '0.0.0.0:5353',
  ttl: 5,
  onAllDown: 'servfail',
} as const;

export const SIDECAR_DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8081 },
  proxy: 'http://127.0.0.1:3128',
  liveness: 'deep',
  readiness: 'deep',
  probe: {
    quorum: 1,
    intervalMs: 5_000,
    timeoutMs: 3_000,
    rise: 1,
    fall: 3,
    // Slower than the DNS server's 200 ms: kubelet polls at its own period, so a quick re-check
    // mostly buys a faster /readyz. Half a second keeps a hung proxy from being hammered.
    fastIntervalMs: 500,
    expectStatus: [{ min: 200, max: 399 }],
    // Off: the kubelet's own thresholds (failureThreshold, and the restart back-off) pace what the
    // sidecar's verdicts do to the pod; damping is for the DNS answer, which moves every client.
    flapThreshold: 0,
    flapWindowMs: 600_000,
    holdDownMs: 60_000,
    maxHoldDownMs: 600_000,
  } satisfies ProbeDefaults,
} as const;

/** An operator's controls over a pool, in the order the metrics list them. */
export const ADMIN_STATES: readonly AdminState[] = ['drain', 'down', 'up'];
