// Pure: one sidecar round's evidence -> the sidecar's state -> the verdicts of /livez, /readyz and
// /health per mode. Two rise/fall machines from src/health/state.ts run side by side: the deep one
// (is egress through the proxy working?) and the attributed one (is the proxy at fault?).
// Nothing here reads the clock or touches a socket; `now` is an argument.
import type { LivenessMode, ProbeSettings, ReadinessMode, SidecarConfig } from '../config/schema.js';
import { isLocalReason } from '../health/error-reason.js';
import type { RoundResult } from '../health/round.js';
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
  /** The same targets fetched directly from the pod; only while an endpoint is `attributed`. */
  readonly direct: RoundResult | undefined;
  readonly shallow: ShallowResult;
}

/** The endpoints' modes: what the sidecar must check, and which machine each endpoint answers from. */
export type SidecarModes = Pick<SidecarConfig, 'liveness' | 'readiness'>;

/** Direct fetches are made, and the attributed machine is answered from, only when a mode asks. */
export function usesAttribution(modes: SidecarModes): boolean {
  return modes.liveness === 'attributed' || modes.readiness === 'attributed';
}

export type Fault = 'none' | 'proxy' | 'outside';

/** One round judged for attribution: `ok` false means the proxy is at fault. */
export interface Attribution extends RoundResult {
  /**
   * Who failed, for bodies and metrics: none (egress works), proxy, or outside; undefined when the
   * round could not tell because this process could not make a check (`local`, not counted).
   */
  readonly fault: Fault | undefined;
}

/** The shallow check failed for a reason of this process (EMFILE, ...), not of the proxy. */
export const shallowIsLocal = (shallow: ShallowResult): boolean =>
  !shallow.ok && isLocalReason(shallow.reason);

/**
 * Is the proxy at fault? Only when it does not answer at all (what fails /livez), or the deep check
 * fails while the direct fetch of the same targets passes. Both failing puts the fault outside the
 * pod, and restarting Squid would not help. Without a direct result the deep check alone decides,
 * so a missing comparison never excuses a failure. A check this process could not make (out of
 * descriptors, say) decides nothing: when the comparison needs it, the round is `local` and blames
 * nobody.
 */
export function attributeRound(evidence: RoundEvidence): Attribution {
  const { proxy, direct, shallow } = evidence;
  const base = { targets: proxy.targets, latencyMs: proxy.latencyMs, at: proxy.at };
  const local = (reason: string): Attribution => ({
    ...base,
    ok: false,
    fault: undefined,
    local: true,
    reason,
  });
  const shallowLocal = shallowIsLocal(shallow);
  if (!shallow.ok && !shallowLocal) {
    return { ...base, ok: false, fault: 'proxy', reason: `proxy_not_answering ${shallow.reason}` };
  }
  if (proxy.ok) return { ...base, ok: true, fault: 'none', reason: 'ok' };
  if (proxy.local) return local(proxy.reason);
  if (direct === undefined) {
    return { ...base, ok: false, fault: 'proxy', reason: `${proxy.reason} direct=not_checked` };
  }
  // The pod reaches what the proxy does not: the proxy's fault, whether or not it answers HTTP.
  if (direct.ok) return { ...base, ok: false, fault: 'proxy', reason: `${proxy.reason} direct=ok` };
  if (direct.local) return local(`direct: ${direct.reason}`);
  // Both paths fail, but a proxy that does not answer (a hung Squid) would fail either way.
  if (shallowLocal) return local(`answers: ${shallow.reason}`);
  return {
    ...base,
    ok: true,
    fault: 'outside',
    reason: `outside_at_fault proxy: ${proxy.reason}; direct: ${direct.reason}`,
  };
}

/** A check of a round: through the proxy (deep), directly from the pod, or "does it answer". */
export type CheckName = 'deep' | 'direct' | 'shallow';

/** The checks of a round that failed for a local reason, with their reasons (for logs and metrics). */
export function localFailures(evidence: RoundEvidence): { check: CheckName; reason: string }[] {
  const found: { check: CheckName; reason: string }[] = [];
  if (evidence.proxy.local) found.push({ check: 'deep', reason: evidence.proxy.reason });
  if (evidence.direct?.local) found.push({ check: 'direct', reason: evidence.direct.reason });
  if (shallowIsLocal(evidence.shallow)) found.push({ check: 'shallow', reason: evidence.shallow.reason });
  return found;
}

export interface SidecarState {
  /** The deep check's rise/fall machine: /readyz and /health in `deep` mode. */
  readonly deep: PoolHealth;
  /** The attributed verdict's rise/fall machine: /readyz and /health in `attributed` mode. */
  readonly attributed: PoolHealth;
  readonly lastEvidence: RoundEvidence | undefined;
  readonly lastAttribution: Attribution | undefined;
  /** Who the last attribution that counted blamed; undefined before one. */
  readonly fault: Fault | undefined;
  /** The last shallow result that counted (/livez), and since when it has said what it says. */
  readonly shallow: ShallowResult | undefined;
  readonly shallowSince: number;
  /** The last round's shallow check, when it failed for a local reason (not counted). */
  readonly shallowLocal: ShallowResult | undefined;
  /**
   * The reason of the last round when it did not count for that machine (a local error): the
   * machine is as it was before that round, and its verdict says why it did not move.
   */
  readonly deepLocal: string | undefined;
  readonly attributedLocal: string | undefined;
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
    fault: undefined,
    shallow: undefined,
    shallowSince: now,
    shallowLocal: undefined,
    deepLocal: undefined,
    attributedLocal: undefined,
    directEverOk: false,
    rounds: 0,
  };
}

/**
 * The state a reloaded loop starts from. Verdicts carry over, so /readyz and /health do not flap
 * because the file changed, with one exception: while no endpoint is `attributed` no direct fetch
 * is made, so the attributed machine has counted every failure against the proxy. A reload that
 * turns `attributed` on (for either endpoint) starts that machine afresh rather than from a blame
 * it could not have checked, which during an outside outage would be a wrong 503.
 */
export function carryOver(
  state: SidecarState,
  from: SidecarModes,
  to: SidecarModes,
  now: number,
): SidecarState {
  if (!usesAttribution(to) || usesAttribution(from)) return state;
  return {
    ...state,
    attributed: initialHealth(now),
    lastAttribution: undefined,
    fault: undefined,
    attributedLocal: undefined,
  };
}

export interface SidecarStep {
  readonly state: SidecarState;
  readonly deepTransition?: Transition;
  readonly attributedTransition?: Transition;
  /** /livez changed its answer (or gave its first). */
  readonly shallowChanged: boolean;
}

/**
 * One machine's step: a round that failed for a local reason leaves it as it was (no count, no
 * transition: it measured nothing about the proxy), and is kept only to be shown.
 */
function stepMachine(
  health: PoolHealth,
  round: RoundResult,
  now: number,
  thresholds: Thresholds,
): { health: PoolHealth; transition?: Transition; local: string | undefined } {
  if (round.local) return { health, local: round.reason };
  return { ...next(health, round, now, thresholds), local: undefined };
}

/** Applies one round to both machines and the shallow result; checks failed locally do not count. */
export function applyRound(
  state: SidecarState,
  evidence: RoundEvidence,
  now: number,
  thresholds: Thresholds,
): SidecarStep {
  const deep = stepMachine(state.deep, evidence.proxy, now, thresholds);
  const attribution = attributeRound(evidence);
  const attributed = stepMachine(state.attributed, attribution, now, thresholds);
  const shallowLocal = shallowIsLocal(evidence.shallow);
  const shallowChanged = !shallowLocal && state.shallow?.ok !== evidence.shallow.ok;
  return {
    state: {
      ...state,
      deep: deep.health,
      attributed: attributed.health,
      lastEvidence: evidence,
      lastAttribution: attribution,
      fault: attribution.fault ?? state.fault,
      shallow: shallowLocal ? state.shallow : evidence.shallow,
      shallowSince: shallowChanged ? now : state.shallowSince,
      shallowLocal: shallowLocal ? evidence.shallow : undefined,
      deepLocal: deep.local,
      attributedLocal: attributed.local,
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
 * attributed one may be changing while the deep one is steady, e.g. the outside fails while a
 * recovering proxy is still counted unhealthy.
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

/** A verdict kept through a round that did not count (a local error), saying why it did not. */
function withLocal(verdict: Verdict, local: string | undefined): Verdict {
  return local === undefined ? verdict : { ...verdict, reason: `${verdict.reason}; not counted: ${local}` };
}

const deepVerdict = (state: SidecarState, thresholds: Thresholds, whenUnknown: boolean) =>
  withLocal(machineVerdict(state.deep, thresholds, whenUnknown), state.deepLocal);

const attributedVerdict = (state: SidecarState, thresholds: Thresholds, whenUnknown: boolean) =>
  withLocal(machineVerdict(state.attributed, thresholds, whenUnknown), state.attributedLocal);

/** /livez: the proxy answered HTTP in the last round that counted. No thresholds: it is a plain fact. */
export function livezVerdict(state: SidecarState): Verdict {
  const shallow = state.shallow;
  const verdict: Verdict =
    shallow === undefined
      ? { ok: true, reason: PENDING, since: state.shallowSince }
      : { ok: shallow.ok, reason: shallow.reason, since: state.shallowSince };
  return withLocal(verdict, state.shallowLocal?.reason);
}

/**
 * /readyz: the deep check's state, or in `attributed` mode the attributed verdict's. That one starts
 * afresh when a reload turns attribution on; until its first round /readyz keeps answering what the
 * deep check says (what it answered before the reload), since a reload must not make a pod unready.
 */
export function readyzVerdict(state: SidecarState, mode: ReadinessMode, thresholds: Thresholds): Verdict {
  if (mode === 'deep' || (state.attributed.state === 'unknown' && state.deep.state !== 'unknown')) {
    const verdict = deepVerdict(state, thresholds, false);
    return mode === 'deep'
      ? verdict
      : { ...verdict, reason: `${verdict.reason} (attributed verdict pending)` };
  }
  return attributedVerdict(state, thresholds, false);
}

/** /health: per liveness mode. */
export function healthVerdict(state: SidecarState, mode: LivenessMode, thresholds: Thresholds): Verdict {
  switch (mode) {
    case 'deep':
      return deepVerdict(state, thresholds, true);
    case 'attributed':
      return attributedVerdict(state, thresholds, true);
    case 'shallow':
      return livezVerdict(state);
  }
}

/** What the sidecar's gauges show: the machines in use, each endpoint's answer, the direct route. */
export interface SidecarReadings {
  /** deep always; attributed only while an endpoint is `attributed`. */
  readonly machines: readonly { readonly check: 'deep' | 'attributed'; readonly state: HealthState }[];
  /** true while the endpoint answers 200. */
  readonly endpoints: { readonly livez: boolean; readonly readyz: boolean; readonly health: boolean };
  /** Whether a direct fetch has passed since start; undefined unless direct fetches are made. */
  readonly directEverSucceeded: boolean | undefined;
}

/**
 * State + the modes in force -> what the gauges say, mirroring what the endpoints answer. While no
 * endpoint is `attributed` the attributed machine still turns (on rounds without a direct fetch)
 * but nothing answers from it, and no direct fetch is made at all: exporting either would show a
 * verdict nobody uses and a "no direct route" that was never looked for (/health says null).
 */
export function sidecarReadings(
  state: SidecarState,
  modes: SidecarModes,
  thresholds: Thresholds,
): SidecarReadings {
  const attributed = usesAttribution(modes);
  return {
    machines: attributed
      ? [
          { check: 'deep', state: state.deep.state },
          { check: 'attributed', state: state.attributed.state },
        ]
      : [{ check: 'deep', state: state.deep.state }],
    endpoints: {
      livez: livezVerdict(state).ok,
      readyz: readyzVerdict(state, modes.readiness, thresholds).ok,
      health: healthVerdict(state, modes.liveness, thresholds).ok,
    },
    directEverSucceeded: attributed ? state.directEverOk : undefined,
  };
}
