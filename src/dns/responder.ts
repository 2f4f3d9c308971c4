// Pure apart from a memo: query bytes + the current zone view -> reply bytes (or nothing).
// Both transports call it; only the size limit differs. Answers for the names the zone owns are
// encoded once per view and reused, so a query costs one decode, one lookup and one copy.
//
// The hot path goes further: a question the zone owns, asked in the plain shape (one question, no
// other records but an optional EDNS version 0 OPT), is looked up by a hash of its lower-cased wire
// bytes, with no name string and no objects built; its reply is the general path's reply to the
// first such question, copied, with only what differs per query written over it: the ID, the RD
// and CD bits, and the question name's letter case (RFC 1035 7.1 / 4343). Everything else a reply
// depends on (the lower-cased question, EDNS presence, the DO bit, the size limit) is in the key.
import { type Answer, type AnswerRecord, answer, isOwned } from './answer.js';
import {
  assembleReply,
  BADVERS,
  clampUdpSize,
  decodeQuery,
  type EncodedAnswer,
  encodeAnswer,
  encodeName,
  HEADER_LENGTH,
  ipv4Bytes,
  ipv6Bytes,
  PLAIN_UDP_LIMIT,
  type Query,
  rejectReply,
  replyLimit,
  soaBytes,
  TCP_LIMIT,
  TYPE,
  txtBytes,
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

/** Bounded like the memo: owned names x the query types and EDNS shapes clients use. */
const MAX_HOT_ENTRIES = 4096;

/** One owned question in one shape, and its whole reply. */
interface HotEntry {
  /** Question name + type + class, name lower-cased: compared byte for byte on a hash hit. */
  readonly question: Uint8Array;
  /** 0: no OPT; 1: OPT without DO; 2: OPT with DO. */
  readonly edns: number;
  readonly limit: number;
  /** The general path's reply to the question that made the entry. */
  readonly reply: Uint8Array;
  /** Shared by every reply from this entry: the callback must not keep or change it. */
  readonly outcome: Outcome;
  /** Another entry with the same hash. */
  readonly next: HotEntry | undefined;
}

const toLower = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
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
  #memo = new Map<string, EncodedAnswer>();
  #hot = new Map<number, HotEntry>();
  #hotEntries = 0;
  // What #scan found in the last message: kept in fields so the hot path allocates nothing.
  #scanHash = 0;
  #scanNameEnd = 0;
  #scanEdns = 0;
  #scanLimit = 0;

  constructor(view: ZoneView) {
    this.#view = view;
  }

  get view(): ZoneView {
    return this.#view;
  }

  /** Swaps the view in one step: a query is answered wholly from the old view or wholly from the new. */
  setView(view: ZoneView): void {
    this.#view = view;
    this.#memo = new Map();
    this.#hot = new Map();
    this.#hotEntries = 0;
  }

  respond(message: Uint8Array, transport: Transport, outcome?: (o: Outcome) => void): Buffer | undefined {
    const plain = this.#scan(message, transport);
    if (plain) {
      const entry = this.#findHot(message);
      if (entry) {
        outcome?.(entry.outcome);
        return this.#fromHot(entry, message);
      }
    }
    const decoded = decodeQuery(message);
    if (decoded.kind === 'drop') {
      outcome?.({ qtype: undefined, rcode: undefined, dropped: true, truncated: false });
      return undefined;
    }
    if (decoded.kind === 'reject') {
      outcome?.({ qtype: undefined, rcode: decoded.rcode, dropped: false, truncated: false });
      return rejectReply(decoded);
    }
    const { query, raw } = decoded;
    const encoded = this.#encoded(query);
    const reply = assembleReply(query, raw, encoded, replyLimit(query, transport, encoded));
    const result: Outcome = {
      qtype: query.type,
      rcode: encoded.rcode,
      dropped: false,
      truncated: ((reply[2] as number) & 0x02) !== 0,
    };
    // Only names the zone owns get an entry, as in the memo: random names must not grow memory.
    if (plain && this.#hotEntries < MAX_HOT_ENTRIES && isOwned(this.#view, query.name))
      this.#addHot(message, reply, result);
    outcome?.(result);
    return reply;
  }

  /**
   * True when `msg` is a query in the plain shape, with #scan* set: QR 0, opcode 0, one question,
   * no answer or authority records, and either no additional record or one EDNS version 0 OPT
   * owned by the root, ending exactly where the message ends. Anything else takes the general path.
   */
  #scan(msg: Uint8Array, transport: Transport): boolean {
    const length = msg.length;
    if (length < HEADER_LENGTH + 5 || ((msg[2] as number) & 0xf8) !== 0) return false;
    if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0)
      return false;
    if (msg[10] !== 0) return false;
    const additional = msg[11] as number;
    if (additional > 1) return false;
    // FNV-1a over the lower-cased name, type and class.
    let hash = 0x811c9dc5;
    let at = HEADER_LENGTH;
    for (;;) {
      const label = msg[at] as number;
      if (label > 63) return false;
      hash = Math.imul(hash ^ label, 0x01000193);
      if (label === 0) break;
      const end = at + 1 + label;
      if (end >= length || end - HEADER_LENGTH + 1 > 255) return false;
      for (let i = at + 1; i < end; i++) hash = Math.imul(hash ^ toLower(msg[i] as number), 0x01000193);
      at = end;
    }
    const nameEnd = at + 1;
    const questionEnd = nameEnd + 4;
    if (questionEnd > length) return false;
    for (let i = nameEnd; i < questionEnd; i++) hash = Math.imul(hash ^ (msg[i] as number), 0x01000193);
    let edns = 0;
    let limit = PLAIN_UDP_LIMIT;
    if (additional === 0) {
      if (questionEnd !== length) return false;
    } else {
      // Root owner, type OPT, version 0, RDATA (options, ignored) running to the end.
      if (questionEnd + 11 > length || msg[questionEnd] !== 0) return false;
      if (msg[questionEnd + 1] !== 0 || msg[questionEnd + 2] !== TYPE.OPT || msg[questionEnd + 6] !== 0)
        return false;
      const rdLength = ((msg[questionEnd + 9] as number) << 8) | (msg[questionEnd + 10] as number);
      if (questionEnd + 11 + rdLength !== length) return false;
      edns = ((msg[questionEnd + 7] as number) & 0x80) !== 0 ? 2 : 1;
      const size = ((msg[questionEnd + 3] as number) << 8) | (msg[questionEnd + 4] as number);
      limit = clampUdpSize(size);
    }
    this.#scanHash = hash & 0x3fffffff;
    this.#scanNameEnd = nameEnd;
    this.#scanEdns = edns;
    this.#scanLimit = transport === 'udp' ? limit : TCP_LIMIT;
    return true;
  }

  #findHot(msg: Uint8Array): HotEntry | undefined {
    const questionLength = this.#scanNameEnd + 4 - HEADER_LENGTH;
    const nameLength = this.#scanNameEnd - HEADER_LENGTH;
    for (let entry = this.#hot.get(this.#scanHash); entry; entry = entry.next) {
      if (entry.edns !== this.#scanEdns || entry.limit !== this.#scanLimit) continue;
      const question = entry.question;
      if (question.length !== questionLength) continue;
      let i = 0;
      for (; i < nameLength; i++) if (question[i] !== toLower(msg[HEADER_LENGTH + i] as number)) break;
      if (i < nameLength) continue;
      for (; i < questionLength; i++) if (question[i] !== msg[HEADER_LENGTH + i]) break;
      if (i === questionLength) return entry;
    }
    return undefined;
  }

  /** The entry's reply with this query's ID, RD and CD bits and name bytes, as assembleReply writes them. */
  #fromHot(entry: HotEntry, msg: Uint8Array): Buffer {
    const reply = Buffer.allocUnsafe(entry.reply.length);
    reply.set(entry.reply);
    reply[0] = msg[0] as number;
    reply[1] = msg[1] as number;
    reply[2] = ((entry.reply[2] as number) & 0xfe) | ((msg[2] as number) & 0x01);
    reply[3] = ((entry.reply[3] as number) & 0xef) | ((msg[3] as number) & 0x10);
    reply.set(msg.subarray(HEADER_LENGTH, this.#scanNameEnd), HEADER_LENGTH);
    return reply;
  }

  /** Called right after #scan of the same message. */
  #addHot(msg: Uint8Array, reply: Buffer, outcome: Outcome): void {
    const questionEnd = this.#scanNameEnd + 4;
    const question = Uint8Array.from(msg.subarray(HEADER_LENGTH, questionEnd));
    for (let i = 0; i < this.#scanNameEnd - HEADER_LENGTH; i++) question[i] = toLower(question[i] as number);
    this.#hot.set(this.#scanHash, {
      question,
      edns: this.#scanEdns,
      limit: this.#scanLimit,
      reply: Uint8Array.from(reply),
      outcome: Object.freeze(outcome),
      next: this.#hot.get(this.#scanHash),
    });
    this.#hotEntries += 1;
  }

  #encoded(query: Query): EncodedAnswer {
    // Only names the zone owns are memoised: a flood of random names must not grow memory.
    if (!isOwned(this.#view, query.name) || (query.edns && query.edns.version > 0))
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
