// Pure: the results of one probe round's targets -> pass or fail, with the reason an operator reads.
import { isLocalReason } from './error-reason.js';

/** One target fetched through the proxy (or directly, for attribution). */
export interface TargetResult {
  readonly target: string;
  readonly ok: boolean;
  /** "ok", "status=500", "squid_error=ERR_CONNECT_FAIL", "timeout=1s", "connection_refused", ... */
  readonly reason: string;
  readonly status?: number;
  readonly latencyMs: number;
}

/** How one address of a proxy host with several did in a round. */
export interface AddressResult {
  readonly address: string;
  readonly ok: boolean;
  readonly reason: string;
}

/** One round: every target once, concurrently. */
export interface RoundResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly targets: readonly TargetResult[];
  /**
   * A failing round that would have passed but for errors of this process (out of file
   * descriptors, say): it says nothing about the proxy and must not count against it.
   */
  readonly local?: boolean;
  /**
   * Through a proxy: whether the proxy itself answered HTTP in this round (a status line of its
   * own, error pages included, or its shallow check); undefined where nobody asked.
   */
  readonly proxyAnswers?: boolean;
  /** A proxy host with several addresses: how each address did (per-address.ts). */
  readonly addresses?: readonly AddressResult[];
  /** Wall time of the round. */
  readonly latencyMs: number;
  /** Epoch ms at which the round finished. */
  readonly at: number;
  /** Set on a round read from the pool's pods (pods-verdict.ts): `targets` are then the pods. */
  readonly pods?: true;
  /**
   * The outside targets the pool's proxies were seen to pass or fail, where `targets` are not
   * those (a pods round: what the sidecars report), for the other pools' attribution.
   */
  readonly outsideTargets?: readonly { readonly target: string; readonly ok: boolean }[];
}

/** A round passes when at least `quorum` targets pass; a failing round names its first failure. */
export function roundVerdict(
  targets: readonly TargetResult[],
  quorum: number,
  latencyMs: number,
  at: number,
): RoundResult {
  const passed = targets.filter((t) => t.ok).length;
  const ok = passed >= quorum;
  const firstFailure = targets.find((t) => !t.ok);
  let reason = 'ok';
  if (!ok) {
    const detail = firstFailure ? `${firstFailure.reason} target=${firstFailure.target}` : 'no targets';
    reason = targets.length > 1 ? `${detail} passed=${passed}/${targets.length} quorum=${quorum}` : detail;
  }
  // Were the targets that failed locally to pass, would the round have passed?
  const local = !ok && passed + targets.filter((t) => !t.ok && isLocalReason(t.reason)).length >= quorum;
  return { ok, reason, targets, latencyMs, at, ...(local ? { local } : {}) };
}
