// Pure: the health view -> the zone view DNS answers from, with the SOA serial policy. dns/ knows
// nothing of health/; this adapter, on the command's side, is the one place the two meet.
import type { DnsConfig } from '../../config/schema.js';
import { type AddressesByFamily, byFamily, type ServiceView, type ZoneView } from '../../dns/zone-view.js';
import type { HealthSnapshot, ServiceSnapshot } from '../../health/snapshot.js';
import { statusStrings } from '../../health/status-text.js';

/**
 * The zone view to answer from after `snapshot`: `previous` itself when nothing a query can see
 * changed (so the responder keeps its encoded answers), else a new view. The SOA serial moves only
 * when an answer changes, to `max(previous + 1, nowSec)`, so it never goes backwards; the first
 * view's serial is `nowSec`, which a restart cannot take backwards either. `nowSec`: whole epoch
 * seconds.
 */
export function nextZoneView(
  previous: ZoneView | undefined,
  config: DnsConfig,
  snapshot: HealthSnapshot,
  nowSec: number,
): ZoneView {
  if (!previous) return zoneViewOf(config, snapshot, nowSec);
  const candidate = zoneViewOf(config, snapshot, previous.serial);
  if (sameView(candidate, previous)) return previous;
  if (sameAnswers(candidate, previous)) return candidate;
  return { ...candidate, serial: Math.max(previous.serial + 1, nowSec) };
}

// The monitor hands the same ServiceSnapshot object again while none of the service's pools
// changed, so a publication derives views (and _status strings) only for the services that did.
const serviceViews = new WeakMap<ServiceSnapshot, ServiceView>();

function serviceViewOf(service: ServiceSnapshot): ServiceView {
  let view = serviceViews.get(service);
  if (!view) {
    const { selection } = service;
    view = {
      name: service.name,
      // An empty set is SERVFAIL: pending, or every pool down under onAllDown: servfail. Split by
      // family here, once per change, so no query has to look at an address's family.
      addresses:
        selection.ready && selection.addresses.length > 0 ? byFamily(selection.addresses) : undefined,
      status: statusStrings(service),
    };
    serviceViews.set(service, view);
  }
  return view;
}

/** What DNS needs from the health view; pools' reasons and times reach it only through _status. */
function zoneViewOf(config: DnsConfig, snapshot: HealthSnapshot, serial: number): ZoneView {
  const services = new Map<string, ServiceView>();
  for (const service of snapshot.services) services.set(service.name, serviceViewOf(service));
  return { zone: config.dns.zone, nameserver: config.dns.nameserver, ttl: config.dns.ttl, serial, services };
}

function sameAddresses(a: AddressesByFamily | undefined, b: AddressesByFamily | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return String(a.a) === String(b.a) && String(a.aaaa) === String(b.aaaa);
}

function sameAnswers(a: ZoneView, b: ZoneView): boolean {
  // A reload may change only the zone's own settings: those are in every answer too.
  if (a.zone !== b.zone || a.nameserver !== b.nameserver || a.ttl !== b.ttl) return false;
  for (const [name, service] of a.services) {
    const other = b.services.get(name);
    if (other === service) continue;
    if (!other || !sameAddresses(service.addresses, other.addresses)) return false;
  }
  return a.services.size === b.services.size;
}

function sameView(a: ZoneView, b: ZoneView): boolean {
  if (!sameAnswers(a, b)) return false;
  for (const [name, service] of a.services) {
    const other = b.services.get(name);
    if (other !== service && String(service.status) !== String(other?.status)) return false;
  }
  return true;
}
