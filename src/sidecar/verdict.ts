// Pure: one sidecar round's evidence -> the sidecar's state -> the verdicts of /livez, /readyz and
// /health per liveness mode. Two rise/fall machines from src/health/state.ts run side by side: the
// deep one (is egress through the proxy working?) and the attributed one (is the proxy at fault?).
// Nothing here reads the clock or touches a socket; `now` is an argument.
import type { LivenessMode, ProbeSettings } from '../config/schema.js';
import {
  type HealthState,
  initialHealth,
  inTransition,
  next,
  nextDelayMs,
  type PoolHealth,
  type Thresholds,
  type Transition,
} from '../health/state.js';
import type { RoundResult } from '../health/verdict.js';

/** The shallow check: the proxy accepts a connection and answers HTTP (any status). */
export interface ShallowResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly latencyMs: number;
  /** Epoch ms at which the check finished. */
  readonly at: number;
}

/** What one round gathered, all at the same moment. */
export interface RoundEvidence {
  /** The deep check, through the proxy. */
  readonly proxy: RoundResult;
  /** The same targets fetched directly from the pod; only in `attributed` mode. */
  readonly direct: RoundResult | undefined;
  readonly shallow: ShallowResult;
}

/** One round judged for attribution: `ok` false means the proxy is at fault. */
export interface Attribution extends RoundResult {
  /** Who failed, for bodies and metrics: none (egress works), proxy, or outside. */
  readonly fault: 'none' | 'proxy' | 'outside';
}

/**
 * Is the proxy at fault? Only when it does not answer at all (what fails /livez), or the deep check
 * fails while the direct fetch of the same targets passes. Both failing puts the fault outside the
 * pod, and restarting Squid would not help. Without a direct result the deep check alone decides,
 * so a missing comparison never excuses a failure.
 */
export function attributeRound(evidence: RoundEvidence): Attribution {
  const { proxy, direct, shallow } = evidence;
  const base = { targets: proxy.targets, latencyMs: proxy.latencyMs, at: proxy.at };
  if (!shallow.ok) {
    return { ...base, ok: false, fault: 'proxy', reason: `proxy_not_answering ${shallow.reason}` };
  }
  if (proxy.ok) return { ...base, ok: true, fault: 'none', reason: 'ok' };
  if (direct === undefined) {
    return { ...base, ok: false, fault: 'proxy', reason: `${proxy.reason} direct=not_checked` };
  }
  if (direct.ok) return { ...base, ok: false, fault: 'proxy', reason: `${proxy.reason} direct=ok` };
  return {
    ...base,
    ok: true,
    fault: 'outside',
    reason: `outside_at_fault proxy: ${proxy.reason}; direct: ${direct.reason}`,
  };
}

export interface SidecarState {
  /** The deep check's rise/fall machine: /readyz, and /health in `deep` mode. */
  readonly deep: PoolHealth;
  /** The attributed verdict's rise/fall machine: /health in `attributed` mode. */
  readonly attributed: PoolHealth;
  readonly lastEvidence: RoundEvidence | undefined;
  readonly lastAttribution: Attribution | undefined;
  /** The last shallow result (/livez), and since when it has said what it says. */
  readonly shallow: ShallowResult | undefined;
  readonly shallowSince: number;
  /** A direct fetch has passed at least once since start: the pod has a direct route. */
  readonly directEverOk: boolean;
  readonly rounds: number;
}

export function initialSidecarState(now: number): SidecarState {
  return {
    deep: initialHealth(now),
    attributed: initialHealth(now),
    lastEvidence: undefined,
    lastAttribution: undefined,
    shallow: undefined,
    shallowSince: now,
    directEverOk: false,
    rounds: 0,
  };
}

/**
 * The state a reloaded loop starts from. Verdicts carry over, so /readyz and /health do not flap
 * because the file changed, with one exception: outside `attributed` mode no direct fetch is made,
 * so the attributed machine has counted every failure against the proxy. A reload that turns
 * `attributed` on starts that machine afresh (/health answers "pending", 200) rather than from a
 * blame it could not have checked, which during an outside outage would be a wrong 503.
 */
export function carryOver(
  state: SidecarState,
  from: LivenessMode,
  to: LivenessMode,
  now: number,
): SidecarState {
  if (to !== 'attributed' || from === 'attributed') return state;
  return { ...state, attributed: initialHealth(now), lastAttribution: undefined };
}

export interface SidecarStep {
  readonly state: SidecarState;
  readonly deepTransition?: Transition;
  readonly attributedTransition?: Transition;
  /** /livez changed its answer (or gave its first). */
  readonly shallowChanged: boolean;
}

/** Applies one round to both machines and the shallow result. */
export function applyRound(
  state: SidecarState,
  evidence: RoundEvidence,
  now: number,
  thresholds: Thresholds,
): SidecarStep {
  const deep = next(state.deep, evidence.proxy, now, thresholds);
  const attribution = attributeRound(evidence);
  const attributed = next(state.attributed, attribution, now, thresholds);
  const shallowChanged = state.shallow?.ok !== evidence.shallow.ok;
  return {
    state: {
      ...state,
      deep: deep.health,
      attributed: attributed.health,
      lastEvidence: evidence,
      lastAttribution: attribution,
      shallow: evidence.shallow,
      shallowSince: shallowChanged ? now : state.shallowSince,
      directEverOk: state.directEverOk || evidence.direct?.ok === true,
      rounds: state.rounds + 1,
    },
    ...(deep.transition ? { deepTransition: deep.transition } : {}),
    ...(attributed.transition ? { attributedTransition: attributed.transition } : {}),
    shallowChanged,
  };
}

/**
 * The gap before the next round: fastInterval while either machine is about to change, since the
 * one kubelet restarts on (attributed) may be changing while the deep one is steady, e.g. the
 * outside fails while a recovering proxy is still counted unhealthy.
 */
export function nextRoundDelayMs(
  state: SidecarState,
  settings: Pick<ProbeSettings, 'intervalMs' | 'fastIntervalMs'>,
): number {
  return inTransition(state.attributed) ? settings.fastIntervalMs : nextDelayMs(state.deep, settings);
}

/** One endpoint's answer before it is put into HTTP. */
export interface Verdict {
  readonly ok: boolean;
  readonly reason: string;
  /** Epoch ms since which the verdict has said what it says. */
  readonly since: number;
}

const PENDING = 'pending: no check has finished yet';

/**
 * A machine's state as a verdict. `unknown` (before the first round) is `whenUnknown`: readiness
 * wants proof of health, liveness wants proof of a fault; the first round decides either at once.
 */
function machineVerdict(health: PoolHealth, thresholds: Thresholds, whenUnknown: boolean): Verdict {
  const last = health.lastRound;
  if (health.state === 'unknown' || last === undefined) {
    return { ok: whenUnknown, reason: PENDING, since: health.since };
  }
  if (health.state === 'healthy') {
    // A failing round not yet confirmed by `fall`: still healthy, and the body says what is brewing.
    const reason = last.ok
      ? last.reason
      : `ok, but failing ${health.failures}/${thresholds.fall}: ${last.reason}`;
    return { ok: true, reason, since: health.since };
  }
  const reason = last.ok
    ? `recovering ${health.passes}/${thresholds.rise}, last failure: ${health.lastFailure?.reason ?? 'unknown'}`
    : last.reason;
  return { ok: false, reason, since: health.since };
}

/** /livez: the proxy answered HTTP in the last round. No thresholds: it is a plain fact. */
export function livezVerdict(state: SidecarState): Verdict {
  const shallow = state.shallow;
  if (shallow === undefined) return { ok: true, reason: PENDING, since: state.shallowSince };
  return { ok: shallow.ok, reason: shallow.reason, since: state.shallowSince };
}

/** /readyz: the deep check's state. */
export function readyzVerdict(state: SidecarState, thresholds: Thresholds): Verdict {
  return machineVerdict(state.deep, thresholds, false);
}

/** /health: per liveness mode. */
export function healthVerdict(state: SidecarState, mode: LivenessMode, thresholds: Thresholds): Verdict {
  switch (mode) {
    case 'deep':
      return machineVerdict(state.deep, thresholds, true);
    case 'attributed':
      return machineVerdict(state.attributed, thresholds, true);
    case 'shallow':
      return livezVerdict(state);
  }
}

/** What the sidecar's gauges show: the machines in use, each endpoint's answer, the direct route. */
export interface SidecarReadings {
  /** deep always; attributed only in `attributed` mode. */
  readonly machines: readonly { readonly check: 'deep' | 'attributed'; readonly state: HealthState }[];
  /** true while the endpoint answers 200. */
  readonly endpoints: { readonly livez: boolean; readonly readyz: boolean; readonly health: boolean };
  /** Whether a direct fetch has passed since start; undefined unless the mode is attributed. */
  readonly directEverSucceeded: boolean | undefined;
}

/**
 * State + the liveness mode in force -> what the gauges say, mirroring what the endpoints answer.
 * Outside `attributed` the attributed machine still turns (on rounds without a direct fetch) but no
 * endpoint answers from it, and no direct fetch is made at all: exporting either would show a
 * verdict nobody uses and a "no direct route" that was never looked for (/health says null).
 */
export function sidecarReadings(
  state: SidecarState,
  mode: LivenessMode,
  thresholds: Thresholds,
): SidecarReadings {
  const attributed = mode === 'attributed';
  return {
    machines: attributed
      ? [
          { check: 'deep', state: state.deep.state },
          { check: 'attributed', state: state.attributed.state },
        ]
      : [{ check: 'deep', state: state.deep.state }],
    endpoints: {
      livez: livezVerdict(state).ok,
      readyz: readyzVerdict(state, thresholds).ok,
      health: healthVerdict(state, mode, thresholds).ok,
    },
    directEverSucceeded: attributed ? state.directEverOk : undefined,
  };
}
