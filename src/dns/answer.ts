// Pure: (question, zone view) -> the sections of the answer, as the README's "DNS answers" table
// says. No wire format here (wire.ts), no sockets (server.ts).
import { CLASS_IN, RCODE, TYPE } from './wire.js';
import type { ZoneView } from './zone-view.js';

export interface Question {
  /** Lower-case, no trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export type RecordData =
  | { readonly type: 'A' | 'AAAA'; readonly address: string }
  | { readonly type: 'NS'; readonly host: string }
  | { readonly type: 'TXT'; readonly strings: readonly string[] }
  | {
      readonly type: 'SOA';
      readonly mname: string;
      readonly rname: string;
      readonly serial: number;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };

export interface AnswerRecord {
  /** Every name we own is the question's name or the zone apex (a suffix of it). */
  readonly owner: 'qname' | 'apex';
  readonly ttl: number;
  readonly data: RecordData;
}

export interface Answer {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: readonly AnswerRecord[];
  readonly authority: readonly AnswerRecord[];
}

const REFUSED: Answer = { rcode: RCODE.REFUSED, authoritative: false, answer: [], authority: [] };
// SERVFAIL says "no authoritative data now", so AA stays off, as BIND and CoreDNS do.
const SERVFAIL: Answer = { rcode: RCODE.SERVFAIL, authoritative: false, answer: [], authority: [] };

const STATUS_LABEL = '_status';

function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The zone's SOA, at the apex, with dns.ttl. */
function soa(view: ZoneView): AnswerRecord {
  return {
    owner: 'apex',
    ttl: view.ttl,
    data: {
      type: 'SOA',
      mname: view.nameserver,
      rname: `hostmaster.${view.zone}`,
      serial: view.serial,
      // No secondaries ever transfer this zone; only `minimum` (the negative TTL) matters.
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: view.ttl,
    },
  };
}

/** NOERROR or NXDOMAIN with no records, and the SOA telling resolvers how long to remember that. */
function negative(view: ZoneView, rcode: number): Answer {
  return { rcode, authoritative: true, answer: [], authority: [soa(view)] };
}

function positive(answer: AnswerRecord[], view: ZoneView): Answer {
  return answer.length === 0
    ? negative(view, RCODE.NOERROR)
    : { rcode: RCODE.NOERROR, authoritative: true, answer, authority: [] };
}

const wants = (qtype: number, type: number) => qtype === type || qtype === TYPE.ANY;

export function answer(question: Question, view: ZoneView): Answer {
  if (question.class !== CLASS_IN || !inZone(question.name, view.zone)) return REFUSED;
  const { type } = question;
  // No secondaries: a zone transfer is refused, as BIND and CoreDNS refuse one not allowed, rather
  // than answered as an empty NOERROR that a client reads as a broken transfer.
  if (type === TYPE.AXFR || type === TYPE.IXFR) return REFUSED;
  const ttl = view.ttl;

  if (question.name === view.zone) {
    const records: AnswerRecord[] = [];
    if (wants(type, TYPE.SOA)) records.push(soa(view));
    if (wants(type, TYPE.NS))
      records.push({ owner: 'qname', ttl, data: { type: 'NS', host: view.nameserver } });
    return positive(records, view);
  }

  const relative = question.name.slice(0, -(view.zone.length + 1));
  const service = view.services.get(relative);
  if (service) {
    const addressQuery = wants(type, TYPE.A) || wants(type, TYPE.AAAA);
    if (!addressQuery) return negative(view, RCODE.NOERROR);
    if (service.addresses === undefined) return SERVFAIL;
    const records: AnswerRecord[] = [];
    if (wants(type, TYPE.A))
      for (const address of service.addresses.a)
        records.push({ owner: 'qname', ttl, data: { type: 'A', address } });
    if (wants(type, TYPE.AAAA))
      for (const address of service.addresses.aaaa)
        records.push({ owner: 'qname', ttl, data: { type: 'AAAA', address } });
    return positive(records, view);
  }

  if (relative.startsWith(`${STATUS_LABEL}.`)) {
    const statusOf = view.services.get(relative.slice(STATUS_LABEL.length + 1));
    if (statusOf) {
      // One TXT record per pool: `dig +short` prints a line each. The status changes with every
      // round, so it is never worth caching for long.
      const records: AnswerRecord[] = wants(type, TYPE.TXT)
        ? statusOf.status.map((line) => ({ owner: 'qname', ttl: 0, data: { type: 'TXT', strings: [line] } }))
        : [];
      return positive(records, view);
    }
  }

  return negative(view, RCODE.NXDOMAIN);
}

/**
 * Whether the view answers `name` (lower-case) positively: the zone itself, a service, or a
 * service's _status name; the only names worth keeping encoded answers for. Looked up, not built:
 * a set of every owned name cost each new view 1-2 ms with 5,500 services, paid by a query.
 */
export function isOwned(view: ZoneView, name: string): boolean {
  if (name === view.zone) return true;
  const { zone } = view;
  if (name.length <= zone.length + 1 || name.charCodeAt(name.length - zone.length - 1) !== 0x2e) return false;
  if (!name.endsWith(zone)) return false;
  const relative = name.slice(0, -(zone.length + 1));
  if (view.services.has(relative)) return true;
  return (
    relative.startsWith(`${STATUS_LABEL}.`) && view.services.has(relative.slice(STATUS_LABEL.length + 1))
  );
}
