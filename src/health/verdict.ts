// Pure: the results of one probe round's targets -> pass or fail, with the reason an operator reads.

/** One target fetched through the proxy (or directly, for attribution). */
export interface TargetResult {
  readonly target: string;
  readonly ok: boolean;
  /** "ok", "status=500", "squid_error=ERR_CONNECT_FAIL", "timeout=1s", "connection_refused", ... */
  readonly reason: string;
  readonly status?: number;
  readonly latencyMs: number;
}

/** One round: every target once, concurrently. */
export interface RoundResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly targets: readonly TargetResult[];
  /** Wall time of the round. */
  readonly latencyMs: number;
  /** Epoch ms at which the round finished. */
  readonly at: number;
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
  return { ok, reason, targets, latencyMs, at };
}
