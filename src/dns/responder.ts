// Pure apart from a memo: query bytes + the current zone view -> reply bytes (or nothing).
// Both transports call it; only the size limit differs. Answers for the names the zone owns are
// encoded once per view and reused, so a query costs one decode, one lookup and one copy.
import { type Answer, type AnswerRecord, answer, ownedNames } from './answer.js';
import {
  assembleReply,
  BADVERS,
  decodeQuery,
  type EncodedAnswer,
  encodeAnswer,
  encodeName,
  headerOnlyReply,
  ipv4Bytes,
  ipv6Bytes,
  type Query,
  soaBytes,
  TYPE,
  txtBytes,
  udpLimit,
  type WireRecord,
} from './wire.js';
import type { ZoneView } from './zone-view.js';

export type Transport = 'udp' | 'tcp';

/** What became of one message, for metrics and debug logs. */
export interface Outcome {
  readonly qtype: number | undefined;
  readonly rcode: number | undefined;
  /** dropped: too short for a header, or a response. */
  readonly dropped: boolean;
  readonly truncated: boolean;
}

const TCP_LIMIT = 65_535;
const BADVERS_ANSWER: Answer = { rcode: BADVERS, authoritative: false, answer: [], authority: [] };

function toWire(record: AnswerRecord): WireRecord {
  const { data } = record;
  const base = { owner: record.owner, ttl: record.ttl };
  switch (data.type) {
    case 'A':
      return { ...base, type: TYPE.A, rdata: ipv4Bytes(data.address) };
    case 'AAAA':
      return { ...base, type: TYPE.AAAA, rdata: ipv6Bytes(data.address) };
    case 'NS':
      return { ...base, type: TYPE.NS, rdata: encodeName(data.host) };
    case 'TXT':
      return { ...base, type: TYPE.TXT, rdata: txtBytes(data.strings) };
    case 'SOA':
      return { ...base, type: TYPE.SOA, rdata: soaBytes(data) };
  }
}

/** The general path: decide, then encode. Exported so tests can compare it with the memo. */
export function encodeFresh(question: Query, view: ZoneView): EncodedAnswer {
  const decided = question.edns && question.edns.version > 0 ? BADVERS_ANSWER : answer(question, view);
  return encodeAnswer(
    {
      rcode: decided.rcode,
      authoritative: decided.authoritative,
      answer: decided.answer.map(toWire),
      authority: decided.authority.map(toWire),
    },
    question.nameLength,
    view.zone.length + 2,
  );
}

export class Responder {
  #view: ZoneView;
  #owned: Set<string>;
  #memo = new Map<string, EncodedAnswer>();

  constructor(view: ZoneView) {
    this.#view = view;
    this.#owned = ownedNames(view);
  }

  get view(): ZoneView {
    return this.#view;
  }

  /** Swaps the view in one step: a query is answered wholly from the old view or wholly from the new. */
  setView(view: ZoneView): void {
    this.#view = view;
    this.#owned = ownedNames(view);
    this.#memo = new Map();
  }

  respond(message: Uint8Array, transport: Transport, outcome?: (o: Outcome) => void): Buffer | undefined {
    const decoded = decodeQuery(message);
    if (decoded.kind === 'drop') {
      outcome?.({ qtype: undefined, rcode: undefined, dropped: true, truncated: false });
      return undefined;
    }
    if (decoded.kind === 'reject') {
      outcome?.({ qtype: undefined, rcode: decoded.rcode, dropped: false, truncated: false });
      return headerOnlyReply(decoded.id, decoded.opcode, decoded.rd, decoded.rcode);
    }
    const { query, raw } = decoded;
    const encoded = this.#encoded(query);
    const limit = transport === 'udp' ? udpLimit(query) : TCP_LIMIT;
    const reply = assembleReply(query, raw, encoded, limit);
    outcome?.({
      qtype: query.type,
      rcode: encoded.rcode,
      dropped: false,
      truncated: ((reply[2] as number) & 0x02) !== 0,
    });
    return reply;
  }

  #encoded(query: Query): EncodedAnswer {
    // Only names the zone owns are memoised: a flood of random names must not grow memory.
    if (!this.#owned.has(query.name) || (query.edns && query.edns.version > 0))
      return encodeFresh(query, this.#view);
    const key = `${query.type}/${query.class}/${query.name}`;
    let encoded = this.#memo.get(key);
    if (!encoded) {
      encoded = encodeFresh(query, this.#view);
      // Bounded anyway: owned names x the query types clients use; cap against odd ones.
      if (this.#memo.size < 4096) this.#memo.set(key, encoded);
    }
    return encoded;
  }
}
