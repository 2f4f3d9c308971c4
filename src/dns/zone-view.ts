// The seam between deciding and answering: everything the DNS server needs to answer, as one
// immutable value. The health monitor's view is turned into one on the command's side
// (src/commands/dns/zone-view-of.ts); the server only ever swaps in the newest one. Nothing here
// knows how pools are probed.

/** A service's addresses as the answers need them: split once per view, not per query. */
export interface AddressesByFamily {
  /** IPv4 addresses, for A queries, in the selection's order. */
  readonly a: readonly string[];
  /** IPv6 addresses, for AAAA queries, in the selection's order. */
  readonly aaaa: readonly string[];
}

/**
 * Splits IP addresses by family. They come validated (the config schema, or the system resolver),
 * so a colon is enough to tell IPv6 (an IPv4-mapped one included, as node:net's isIPv6 says) and
 * this file stays free of node:*.
 */
export function byFamily(addresses: readonly string[]): AddressesByFamily {
  const a: string[] = [];
  const aaaa: string[] = [];
  for (const address of addresses) (address.includes(':') ? aaaa : a).push(address);
  return { a, aaaa };
}

export interface ServiceView {
  /** Lower-case label: answers <name>.<zone>. */
  readonly name: string;
  /** Addresses to answer with; undefined means SERVFAIL (no verdict yet, or all down with onAllDown: servfail). */
  readonly addresses: AddressesByFamily | undefined;
  /** The _status.<name>.<zone> TXT strings, one per pool in priority order. */
  readonly status: readonly string[];
}

export interface ZoneView {
  readonly zone: string;
  readonly nameserver: string;
  readonly ttl: number;
  /** SOA serial; grows with each new view so a change is visible to whoever looks. */
  readonly serial: number;
  readonly services: ReadonlyMap<string, ServiceView>;
}
