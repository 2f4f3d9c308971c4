// Pure: who is to blame for a pool's failing round — its own proxy, or the outside — judged across
// the pools of one service. blame(failing, others, freshSince, final) -> proxy | outside | confirm.
//
// One pool alone cannot tell "this Squid lost its egress" from "the outside site is down": both look
// like the same 503 ERR_CONNECT_FAIL (or the site's own 500) through a proxy that answers. Another
// pool can: if it passes a target this one fails, this pool is at fault; if every pool whose proxy
// answers fails the same targets, the fault is outside and moving the answer would not help anyone.
// A proxy that does not answer at all (refused, reset, timed out, unresolvable) is always at fault.

/** What one finished round of a pool says, for comparison with the other pools of its service. */
export interface PoolEvidence {
  readonly pool: string;
  /** Epoch ms at which the round finished. */
  readonly at: number;
  /** The proxy answered HTTP in that round (any status line of its own, error pages included). */
  readonly proxyAnswers: boolean;
  readonly targets: readonly { readonly target: string; readonly ok: boolean }[];
}

export type Blame =
  /** The pool is at fault: its proxy does not answer, or another pool passes what it fails. */
  | { readonly party: 'proxy'; readonly passedBy?: string }
  /** Every pool whose proxy answers fails these targets too: the round is not held against the pool. */
  | { readonly party: 'outside' }
  /** Undecided until these pools have a round of their own no older than `freshSince`. */
  | { readonly party: 'confirm'; readonly pools: readonly string[] };

/**
 * `others` is the latest evidence of every other pool of the service (undefined: no round yet).
 * Evidence older than `freshSince` proves nothing about now: with `final` false such pools are named
 * for a confirming round; with `final` true (they have been asked, or nothing is at stake) they are
 * passed over. A pool that passes any target this round failed settles it at once, whatever the
 * rest say, so a hung third pool never delays a failover that a healthy second pool justifies.
 */
export function blame(
  failing: PoolEvidence,
  others: readonly { readonly pool: string; readonly evidence: PoolEvidence | undefined }[],
  freshSince: number,
  final: boolean,
): Blame {
  if (!failing.proxyAnswers) return { party: 'proxy' };
  const failed = new Set(failing.targets.filter((t) => !t.ok).map((t) => t.target));
  const stale: string[] = [];
  for (const { pool, evidence } of others) {
    if (evidence === undefined || evidence.at < freshSince) {
      stale.push(pool);
      continue;
    }
    if (evidence.proxyAnswers && evidence.targets.some((t) => t.ok && failed.has(t.target))) {
      return { party: 'proxy', passedBy: pool };
    }
  }
  if (stale.length > 0 && !final) return { party: 'confirm', pools: stale };
  return { party: 'outside' };
}

/** The latest round a pool has had, and how it was judged, as the service-wide outage needs it. */
export interface JudgedRound {
  readonly at: number;
  readonly ok: boolean;
  /** Set on failing rounds: who was blamed. */
  readonly party?: 'proxy' | 'outside';
}

/**
 * A service is in an outside outage from the latest round judged `outside` until any pool passes a
 * round after it: one pool's pass proves the outside reachable again, even before the others have
 * been probed anew.
 */
export function outsideOutage(rounds: readonly (JudgedRound | undefined)[]): boolean {
  let lastOutside = Number.NEGATIVE_INFINITY;
  let lastPass = Number.NEGATIVE_INFINITY;
  for (const round of rounds) {
    if (round === undefined) continue;
    if (round.ok) lastPass = Math.max(lastPass, round.at);
    else if (round.party === 'outside') lastOutside = Math.max(lastOutside, round.at);
  }
  return lastOutside > Number.NEGATIVE_INFINITY && lastPass < lastOutside;
}
