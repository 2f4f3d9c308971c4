// Pure: the sidecar's state -> the replies of /livez, /readyz and /health (status + JSON body).
// Every reply is built from the last round's results; nothing here can wait on the proxy, which is
// what keeps kubelet's timeoutSeconds out of reach however hung Squid is.
import type { LivenessMode } from '../config/schema.js';
import type { Thresholds } from '../health/state.js';
import type { RoundResult, TargetResult } from '../health/verdict.js';
import {
  healthVerdict,
  livezVerdict,
  readyzVerdict,
  type ShallowResult,
  type SidecarState,
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
  /** /health only: which liveness mode produced the verdict. */
  readonly mode?: LivenessMode;
  readonly reason: string;
  readonly since: string;
  /** When the last round finished; null before the first. */
  readonly lastCheck: string | null;
  readonly latency_ms: number | null;
  /** The deep check's targets in the last round (empty for /livez, which probes no target). */
  readonly targets: readonly TargetBody[];
  /** /health only: what the verdict rests on. */
  readonly evidence?: {
    /** The deep check through the proxy. */
    readonly proxy: (CheckBody & { readonly targets: readonly TargetBody[] }) | null;
    /** The same targets fetched directly from the pod; null unless the mode is attributed. */
    readonly direct: (CheckBody & { readonly targets: readonly TargetBody[] }) | null;
    /** Whether any direct fetch has passed since start: false means no direct route (yet). */
    readonly directEverSucceeded: boolean | null;
    /** The shallow check (/livez). */
    readonly answers: CheckBody | null;
    /** attributed: who the last round blames (none, proxy, outside); null in other modes. */
    readonly fault: 'none' | 'proxy' | 'outside' | null;
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
  const shallow = state.shallow;
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

function health(state: SidecarState, mode: LivenessMode, thresholds: Thresholds): SidecarReply {
  const evidence = state.lastEvidence;
  const attributed = mode === 'attributed';
  const fields = mode === 'shallow' ? livez(state).body : deepFields(state);
  return reply(healthVerdict(state, mode, thresholds), {
    mode,
    lastCheck: fields.lastCheck,
    latency_ms: fields.latency_ms,
    targets: fields.targets,
    evidence: {
      proxy: roundBody(evidence?.proxy),
      direct: roundBody(evidence?.direct),
      directEverSucceeded: attributed ? state.directEverOk : null,
      answers: shallowBody(state.shallow),
      fault: attributed ? (state.lastAttribution?.fault ?? null) : null,
    },
  });
}

/** Path -> reply; undefined for paths the sidecar does not serve here (/metrics is the edge's). */
export function sidecarRoute(
  path: string,
  state: SidecarState,
  mode: LivenessMode,
  thresholds: Thresholds,
): SidecarReply | undefined {
  switch (path) {
    case '/livez':
      return livez(state);
    case '/readyz':
      return reply(readyzVerdict(state, thresholds), deepFields(state));
    case '/health':
      return health(state, mode, thresholds);
    default:
      return undefined;
  }
}
