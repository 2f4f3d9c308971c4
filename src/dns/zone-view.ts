// The seam between deciding and answering: everything the DNS server needs to answer, as one
// immutable value. The health monitor's view is turned into one on the command's side
// (src/commands/dns/zone-view-of.ts); the server only ever swaps in the newest one. Nothing here
// knows how pools are probed.

export interface ServiceView {
  /** Lower-case label: answers <name>.<zone>. */
  readonly name: string;
  /** Addresses to answer with; undefined means SERVFAIL (no verdict yet, or all down with onAllDown: servfail). */
  readonly addresses: readonly string[] | undefined;
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
