// Pure: the sidecar's state -> the replies of /livez, /readyz and /health (status + JSON body).
// Every reply is built from the last round's results; nothing here can wait on the proxy, which is
// what keeps kubelet's timeoutSeconds out of reach however hung Squid is.
import type { LivenessMode, ReadinessMode } from '../config/schema.js';
import type { RoundResult, TargetResult } from '../health/round.js';
import type { Thresholds } from '../health/state.js';
import {
  type Fault,
  healthVerdict,
  livezVerdict,
  readyzVerdict,
  type ShallowResult,
  type SidecarModes,
  type SidecarState,
  usesAttribution,
  type Verdict,
} from './verdict.js';

export interface TargetBody {
  readonly target: string;
  readonly ok: boolean;
  readonly reason: string;
  readonly status: number | null;
  readonly latency_ms: number;
}

export interface CheckBody {
  readonly ok: boolean;
  readonly reason: string;
  readonly at: string;
  readonly latency_ms: number;
}

export interface SidecarBody {
  readonly status: 'ok' | 'error';
  /** /readyz and /health: which mode (readiness, liveness) produced the verdict. */
  readonly mode?: LivenessMode | ReadinessMode;
  /**
   * /readyz and /health: who the verdict blames in `attributed` mode (none, proxy, outside), from
   * the last round that could tell; null in other modes and before such a round.
   */
  readonly fault?: Fault | null;
  readonly reason: string;
  readonly since: string;
  /** When the last round finished; null before the first. */
  readonly lastCheck: string | null;
  readonly latency_ms: number | null;
  /** The deep check's targets in the last round (empty for /livez, which probes no target). */
  readonly targets: readonly TargetBody[];
  /** /readyz and /health: what the verdict rests on. */
  readonly evidence?: {
    /** The deep check through the proxy. */
    readonly proxy: (CheckBody & { readonly targets: readonly TargetBody[] }) | null;
    /** The same targets fetched directly from the pod; null unless an endpoint is attributed. */
    readonly direct: (CheckBody & { readonly targets: readonly TargetBody[] }) | null;
    /** Whether any direct fetch has passed since start: false means no direct route (yet). */
    readonly directEverSucceeded: boolean | null;
    /** The shallow check (/livez). */
    readonly answers: CheckBody | null;
    /** As `fault` above. */
    readonly fault: Fault | null;
  };
}

export interface SidecarReply {
  readonly status: 200 | 503;
  readonly body: SidecarBody;
}

const iso = (ms: number) => new Date(ms).toISOString();

function targetBody(t: TargetResult): TargetBody {
  return { target: t.target, ok: t.ok, reason: t.reason, status: t.status ?? null, latency_ms: t.latencyMs };
}

function roundBody(round: RoundResult | undefined) {
  if (round === undefined) return null;
  return {
    ok: round.ok,
    reason: round.reason,
    at: iso(round.at),
    latency_ms: round.latencyMs,
    targets: round.targets.map(targetBody),
  };
}

function shallowBody(shallow: ShallowResult | undefined): CheckBody | null {
  if (shallow === undefined) return null;
  return { ok: shallow.ok, reason: shallow.reason, at: iso(shallow.at), latency_ms: shallow.latencyMs };
}

function reply(verdict: Verdict, fields: Omit<SidecarBody, 'status' | 'reason' | 'since'>): SidecarReply {
  return {
    status: verdict.ok ? 200 : 503,
    body: {
      status: verdict.ok ? 'ok' : 'error',
      reason: verdict.reason,
      since: iso(verdict.since),
      ...fields,
    },
  };
}

function livez(state: SidecarState): SidecarReply {
  // The last check made, also one that did not count (a local error): lastCheck says it ran.
  const shallow = state.shallowLocal ?? state.shallow;
  return reply(livezVerdict(state), {
    lastCheck: shallow ? iso(shallow.at) : null,
    latency_ms: shallow ? shallow.latencyMs : null,
    targets: [],
  });
}

/** The deep round's fields, shared by /readyz and /health. */
function deepFields(state: SidecarState) {
  const proxy = state.lastEvidence?.proxy;
  return {
    lastCheck: proxy ? iso(proxy.at) : null,
    latency_ms: proxy ? proxy.latencyMs : null,
    targets: proxy ? proxy.targets.map(targetBody) : [],
  };
}

/** What /readyz and /health rest on; `attributed`: the endpoint's mode answers from attribution. */
function evidenceOf(state: SidecarState, modes: SidecarModes, attributed: boolean) {
  const fault = attributed ? (state.fault ?? null) : null;
  return {
    fault,
    evidence: {
      proxy: roundBody(state.lastEvidence?.proxy),
      direct: roundBody(state.lastEvidence?.direct),
      directEverSucceeded: usesAttribution(modes) ? state.directEverOk : null,
      answers: shallowBody(state.shallowLocal ?? state.shallow),
      fault,
    },
  };
}

function readyz(state: SidecarState, modes: SidecarModes, thresholds: Thresholds): SidecarReply {
  const mode = modes.readiness;
  return reply(readyzVerdict(state, mode, thresholds), {
    mode,
    ...deepFields(state),
    ...evidenceOf(state, modes, mode === 'attributed'),
  });
}

function health(state: SidecarState, modes: SidecarModes, thresholds: Thresholds): SidecarReply {
  const mode = modes.liveness;
  const fields = mode === 'shallow' ? livez(state).body : deepFields(state);
  return reply(healthVerdict(state, mode, thresholds), {
    mode,
    lastCheck: fields.lastCheck,
    latency_ms: fields.latency_ms,
    targets: fields.targets,
    ...evidenceOf(state, modes, mode === 'attributed'),
  });
}

/** Path -> reply; undefined for paths the sidecar does not serve here (/metrics is the edge's). */
export function sidecarRoute(
  path: string,
  state: SidecarState,
  modes: SidecarModes,
  thresholds: Thresholds,
): SidecarReply | undefined {
  switch (path) {
    case '/livez':
      return livez(state);
    case '/readyz':
      return readyz(state, modes, thresholds);
    case '/health':
      return health(state, modes, thresholds);
    default:
      return undefined;
  }
}
