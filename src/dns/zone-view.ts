// The seam between deciding and answering: everything the DNS server needs to answer, as one
// immutable value. The health monitor (or, without it, the static config) produces views; the
// server only ever swaps in the newest one. Nothing here knows how pools are probed.
import type { DnsConfig } from '../config/schema.js';

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

/** A view straight from the config: every service answers its first pool's configured addresses. */
export function staticZoneView(config: DnsConfig, serial = 1): ZoneView {
  return {
    zone: config.dns.zone,
    nameserver: config.dns.nameserver,
    ttl: config.dns.ttl,
    serial,
    services: new Map(
      config.services.map((service) => [
        service.name,
        {
          name: service.name,
          addresses: service.pools[0]?.addresses,
          status: service.pools.map(
            (pool, i) => `pool=${pool.name} state=unknown selected=${i === 0 ? 'yes' : 'no'} reason=static`,
          ),
        },
      ]),
    ),
  };
}
