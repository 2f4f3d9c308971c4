// Zone views for tests of the DNS path: the egress.svc zone with the services a test names.
import { byFamily, type ServiceView, type ZoneView } from '../../src/dns/zone-view.js';

/** `count` addresses 10.<b>.0.1, 10.<b>.0.2, ...: a pool big enough to truncate. */
export function addresses(count: number, b = 1): string[] {
  return Array.from({ length: count }, (_, i) => `10.${b}.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`);
}

/** A service answering with `serving` (either family, in any mix); undefined is SERVFAIL. */
export function service(
  name: string,
  serving: readonly string[] | undefined,
  status: readonly string[] = [],
): ServiceView {
  return { name, addresses: serving && byFamily(serving), status };
}

export function zoneView(
  services: readonly ServiceView[],
  options: { ttl?: number; serial?: number } = {},
): ZoneView {
  return {
    zone: 'egress.svc',
    nameserver: 'ns.egress.svc',
    ttl: options.ttl ?? 5,
    serial: options.serial ?? 1,
    services: new Map(services.map((s) => [s.name, s])),
  };
}

/** The zone the fuzzer and the wire-path property tests answer from: dual-stack, big, and down. */
export function fuzzZone(): ZoneView {
  return zoneView([
    service('proxy', ['10.0.0.1', 'fd00::1'], ['pool=primary state=healthy']),
    service(
      'big',
      Array.from({ length: 60 }, (_, i) => `10.2.0.${i}`),
    ),
    service('down', undefined),
  ]);
}
