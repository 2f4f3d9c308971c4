// The one failover formula the docs state (README "Failover time", docs/clients.md), as code the
// time-to-shift test asserts and the benchmark prints: how long after a fault a client's first
// request gets through the next pool, at most. Pure.
//
//   time to shift <= flip + cache + client's own
//   flip   = 1.05 x interval + fall x (timeout + fastInterval)
//            (up to one jittered interval before the first failing round starts, then `fall` rounds
//            of at most `timeout`, fastInterval apart; one spare fastInterval)
//   cache  = the answer's TTL, once: the one caching resolver between client and server (CoreDNS,
//            or NodeLocal DNSCache forwarding straight to the server); behind CoreDNS at least 5 s
//   client = after a hang, the client's own request timeout (its request to the hung proxy must
//            end first); a client that caches answers itself, that cache (the JVM: 30 s)
// Failback is the same with `rise` for `fall`, plus Squid's pconn_lifetime for a client that keeps
// its connection to the pool it was moved to (that pool still works, nothing else closes it).

export interface ShiftTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fastIntervalMs: number;
  readonly fall: number;
  readonly rise: number;
  /** The answer's TTL as the clients' resolver keeps it (dns.ttl; at least 5 behind CoreDNS). */
  readonly cacheS: number;
}

export interface ClientTerms {
  /** The client's own request timeout, spent once more after a hang. */
  readonly requestTimeoutMs?: number;
  /** The client's own DNS cache (networkaddress.cache.ttl for a JVM). */
  readonly dnsCacheMs?: number;
  /** Squid's pconn_lifetime, for a kept connection moving back to a pool that failed back. */
  readonly connectionLifetimeMs?: number;
}

/** Steady-state rounds are spread by up to +5 % (README, "State"). */
const JITTER = 1.05;

/** From a fault to the DNS server answering the next pool. */
export function flipBoundMs(t: ShiftTiming): number {
  return JITTER * t.intervalMs + t.fall * (t.timeoutMs + t.fastIntervalMs);
}

/** From a pool working again to the server answering it again. */
export function flipBackBoundMs(t: ShiftTiming): number {
  return JITTER * t.intervalMs + t.rise * (t.timeoutMs + t.fastIntervalMs);
}

/** From a fault to a client's first request through the next pool. */
export function shiftBoundMs(t: ShiftTiming, client: ClientTerms = {}): number {
  return flipBoundMs(t) + t.cacheS * 1000 + (client.requestTimeoutMs ?? 0) + (client.dnsCacheMs ?? 0);
}

/** From the pool working again to a client's first request through it again. */
export function shiftBackBoundMs(t: ShiftTiming, client: ClientTerms = {}): number {
  return flipBackBoundMs(t) + t.cacheS * 1000 + (client.dnsCacheMs ?? 0) + (client.connectionLifetimeMs ?? 0);
}
