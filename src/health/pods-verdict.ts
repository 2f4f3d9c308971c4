// Pure: what a pool's pods' sidecars answered -> one round (the pods as its targets), passing when
// at least `minReady` pods are ready. A pod is ready when its sidecar's /readyz answers 200.
import { isLocalReason } from './error-reason.js';
import type { RoundResult, TargetResult } from './round.js';

/** What one pod's sidecar answered (probe.ts getFromEach), or why it did not. */
export interface PodAnswer {
  readonly address: string;
  readonly status?: number;
  readonly body?: string;
  /** "ok" when a response was read; else why none was ("timeout=1s", "connection_refused", ...). */
  readonly reason: string;
  readonly latencyMs: number;
}

/** A sidecar's own reason is shown whole in /status; beyond this it is not a reason but a dump. */
export const MAX_POD_REASON = 200;

/** The sidecar's JSON body, as far as it is one: its `reason` and its targets' outcomes. */
interface SidecarBody {
  readonly reason: string | undefined;
  readonly targets: readonly { readonly target: string; readonly ok: boolean }[];
}

function readBody(body: string | undefined): SidecarBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return { reason: undefined, targets: [] };
  }
  if (parsed === null || typeof parsed !== 'object') return { reason: undefined, targets: [] };
  const { reason, targets } = parsed as { reason?: unknown; targets?: unknown };
  const seen = Array.isArray(targets)
    ? targets.flatMap((t: unknown) => {
        const { target, ok } = (t ?? {}) as { target?: unknown; ok?: unknown };
        return typeof target === 'string' && typeof ok === 'boolean' ? [{ target, ok }] : [];
      })
    : [];
  // Printable text only: it reaches logs, terminals and _status.
  const text = typeof reason === 'string' ? reason.replace(/[^\x20-\x7e]/g, '?').trim() : '';
  return { reason: text === '' ? undefined : text.slice(0, MAX_POD_REASON), targets: seen };
}

/**
 * One pod: ready on 200; on 503 its sidecar's own reason (the deep check's, say
 * `squid_error=ERR_CONNECT_FAIL status=503 target=...`); any other status, or a 503 without a JSON
 * reason, as `status=N`; no answer as the probe's reason (`timeout=1s`, `connection_refused`).
 */
export function podResult(answer: PodAnswer): TargetResult {
  const base = { target: answer.address, latencyMs: answer.latencyMs };
  if (answer.status === undefined) return { ...base, ok: false, reason: answer.reason };
  const status = answer.status;
  if (status === 200) return { ...base, ok: true, reason: 'ok', status };
  const sidecarReason = status === 503 ? readBody(answer.body).reason : undefined;
  return { ...base, ok: false, reason: sidecarReason ?? `status=${status}`, status };
}

/**
 * The outside targets the pods' sidecars report: passed where any pod passed it. That is what the
 * pool's proxies can reach, for judging another pool of the service that fails the same target.
 */
export function outsideTargets(answers: readonly PodAnswer[]): { target: string; ok: boolean }[] {
  const byTarget = new Map<string, boolean>();
  for (const answer of answers) {
    if (answer.status === undefined) continue;
    for (const { target, ok } of readBody(answer.body).targets)
      byTarget.set(target, ok || byTarget.get(target) === true);
  }
  return [...byTarget].map(([target, ok]) => ({ target, ok }));
}

/**
 * The round: passes when at least `minReady` pods are ready. A failing round names its first unready
 * pod and the count: `squid_error=ERR_CONNECT_FAIL status=503 target=http://a/ pod=10.0.1.7 ready=0/2 min_ready=1`.
 * `noPods` is why there are none (the name did not resolve): then it is the reason.
 */
export function podsVerdict(
  answers: readonly PodAnswer[],
  minReady: number,
  latencyMs: number,
  at: number,
  noPods?: string,
): RoundResult {
  const pods = answers.map(podResult);
  const ready = pods.filter((pod) => pod.ok).length;
  const ok = ready >= minReady;
  const unready = pods.find((pod) => !pod.ok);
  const count = `ready=${ready}/${pods.length} min_ready=${minReady}`;
  let reason = 'ok';
  if (!ok) {
    if (unready) reason = `${unready.reason} pod=${unready.target} ${count}`;
    else reason = pods.length === 0 ? `${noPods ?? 'no_pods'} ${count}` : count;
  }
  // Would the pods this process could not ask (EMFILE, ...) have made up the number?
  const local = !ok && ready + pods.filter((pod) => !pod.ok && isLocalReason(pod.reason)).length >= minReady;
  return {
    ok,
    reason,
    targets: pods,
    latencyMs,
    at,
    pods: true,
    outsideTargets: outsideTargets(answers),
    ...(local ? { local } : {}),
  };
}

/** One pod as /status and _status show it: from the last round's targets. */
export interface PodStatus {
  readonly address: string;
  readonly ready: boolean;
  /** "ok", or the sidecar's reason (or why it did not answer). */
  readonly reason: string;
  /** Epoch ms of the round that asked it. */
  readonly at: number;
  readonly latencyMs: number;
}

/** The pods of a pods round; none for any other round. */
export function podStatuses(round: RoundResult): PodStatus[] {
  if (!round.pods) return [];
  return round.targets.map((pod) => ({
    address: pod.target,
    ready: pod.ok,
    reason: pod.reason,
    at: round.at,
    latencyMs: pod.latencyMs,
  }));
}
