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
  const views = snapshot.services.map(serviceViewOf);
  if (!previous) return zoneViewOf(config, views, nowSec);
  // One pass over the services, and no new map unless something changed: with thousands of
  // services this runs on every publication, most of which change nothing a query can see.
  const { zone, nameserver, ttl } = config.dns;
  let sameAnswers =
    zone === previous.zone &&
    nameserver === previous.nameserver &&
    ttl === previous.ttl &&
    views.length === previous.services.size;
  let sameStatus = true;
  for (const view of views) {
    if (!sameAnswers) break;
    const other = previous.services.get(view.name);
    if (other === view) continue;
    if (!other || !sameAddresses(view.addresses, other.addresses)) sameAnswers = false;
    else if (sameStatus && String(view.status) !== String(other.status)) sameStatus = false;
  }
  if (sameAnswers && sameStatus) return previous;
  // A reload may change only the zone's own settings: those are in every answer too.
  if (sameAnswers) return zoneViewOf(config, views, previous.serial);
  return zoneViewOf(config, views, Math.max(previous.serial + 1, nowSec));
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

/**
 * Derives each service's view ahead of the publication that needs it, one service per step: after a
 * reload that adds thousands of services, their first views cost tens of ms, which a publication
 * would spend in one piece. The command runs this in slices (slices.ts); `nextZoneView` then finds
 * them cached.
 */
export function* serviceViewsAhead(snapshot: HealthSnapshot): Generator<void, void> {
  for (const service of snapshot.services) {
    serviceViewOf(service);
    yield;
  }
}

/** What DNS needs from the health view; pools' reasons and times reach it only through _status. */
function zoneViewOf(config: DnsConfig, views: readonly ServiceView[], serial: number): ZoneView {
  const services = new Map<string, ServiceView>();
  for (const view of views) services.set(view.name, view);
  return { zone: config.dns.zone, nameserver: config.dns.nameserver, ttl: config.dns.ttl, serial, services };
}

function sameAddresses(a: AddressesByFamily | undefined, b: AddressesByFamily | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return String(a.a) === String(b.a) && String(a.aaaa) === String(b.aaaa);
}
