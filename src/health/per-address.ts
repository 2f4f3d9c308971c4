// Pure: a proxy host that resolves to several addresses, probed address by address. Every address
// DNS serves for the pool must have passed: a Service name behind which 8 of 9 addresses refuse
// connections is not "healthy, serve all 9". combineAddressRounds(rounds) -> the pool's round.
import type { RoundResult, TargetResult } from './round.js';

/** The proxy URL with its host replaced by one of its addresses (credentials and port kept). */
export function proxyAt(proxy: string, address: string): string {
  const url = new URL(proxy);
  url.hostname = address.includes(':') ? `[${address}]` : address;
  return url.href;
}

/**
 * The pool passes while at least one address passes; a target passed when it passed through any
 * address (what the other pools compare against); the proxy answered when any address did. A round
 * that failed with a local error at any address says too little about the proxy to count.
 */
export function combineAddressRounds(
  rounds: readonly { readonly address: string; readonly round: RoundResult }[],
): RoundResult {
  const passing = rounds.filter((r) => r.round.ok).length;
  const ok = passing > 0;
  const firstFailure = rounds.find((r) => !r.round.ok);
  const byTarget = new Map<string, TargetResult>();
  for (const { round } of rounds) {
    for (const target of round.targets) {
      const seen = byTarget.get(target.target);
      if (!seen || (!seen.ok && target.ok)) byTarget.set(target.target, target);
    }
  }
  const reason =
    ok || !firstFailure
      ? 'ok'
      : `${firstFailure.round.reason} address=${firstFailure.address} passed_addresses=0/${rounds.length}`;
  const local = !ok && rounds.some((r) => r.round.local === true);
  return {
    ok,
    reason,
    targets: [...byTarget.values()],
    latencyMs: Math.max(0, ...rounds.map((r) => r.round.latencyMs)),
    at: Math.max(0, ...rounds.map((r) => r.round.at)),
    proxyAnswers: rounds.some((r) => r.round.ok || r.round.proxyAnswers === true),
    ...(local ? { local } : {}),
    addresses: rounds.map(({ address, round }) => ({ address, ok: round.ok, reason: round.reason })),
  };
}
