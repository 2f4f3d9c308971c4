// Pure: DNS wire format for the little this server speaks — decoding one query, encoding the
// records of answer.ts. No sockets, no clocks.
//
// Why not dns2's Packet on this path: a query that fails to decode must still get FORMERR with
// its ID (dns2 throws the header away with the error), and decoding a whole Packet per query costs
// about twice the CPU of the answer itself. dns2 decodes our answers in the tests instead, as an
// independent reader.

export const TYPE = {
  A: 1,
  NS: 2,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** Extended rcode 16: carried as 1 in the OPT's upper rcode byte, 0 in the header. */
export const BADVERS = 16;

export const HEADER_LENGTH = 12;
const MAX_NAME_LENGTH = 255;
const OPT_LENGTH = 11;
/** What we advertise and the most we send over UDP, whatever a client offers (RFC 6891 6.2.5). */
export const MAX_UDP_PAYLOAD = 4096;
export const PLAIN_UDP_LIMIT = 512;
/** A TCP message's length prefix is 16 bits. */
export const TCP_LIMIT = 65_535;

export interface Edns {
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface Query {
  readonly id: number;
  /** Lower-cased name without the trailing dot; a dot inside a label becomes \0 so it never splits. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
  /** Wire length of the question name, which the reply copies byte for byte (letter case kept). */
  readonly nameLength: number;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly edns: Edns | undefined;
}

export type Decoded =
  | { readonly kind: 'query'; readonly query: Query; readonly raw: Uint8Array }
  /** The header is readable but the rest is not acceptable: answer with this rcode, no question. */
  | {
      readonly kind: 'reject';
      readonly id: number;
      readonly opcode: number;
      readonly rd: boolean;
      readonly rcode: number;
      /** The message's one well-formed OPT, if it has one: the reply must carry one too. */
      readonly edns: Edns | undefined;
    }
  /** Too short for a header, or a response (QR set): never answered, so no reflection loops. */
  | { readonly kind: 'drop' };

const DROP: Decoded = { kind: 'drop' };

/** Walks a name in a query's question: no compression pointers (nothing precedes it to point to). */
function readQuestionName(msg: Uint8Array, start: number): { name: string; end: number } | undefined {
  let offset = start;
  let name = '';
  for (;;) {
    if (offset >= msg.length) return undefined;
    const length = msg[offset] as number;
    if (length === 0) break;
    // 0xC0 is a pointer and 0x40/0x80 are obsolete label types: none belongs in a question.
    if (length > 63 || offset + 1 + length > msg.length) return undefined;
    if (offset + 1 + length - start + 1 > MAX_NAME_LENGTH) return undefined;
    if (name !== '') name += '.';
    for (let i = offset + 1; i <= offset + length; i++) {
      let c = msg[i] as number;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      else if (c === 0x2e) c = 0;
      name += String.fromCharCode(c);
    }
    offset += 1 + length;
  }
  return { name, end: offset + 1 };
}

/** Skips any name (pointers allowed: a pointer ends the name, so skipping can never loop). */
function skipName(msg: Uint8Array, start: number): number | undefined {
  let offset = start;
  while (offset < msg.length) {
    const length = msg[offset] as number;
    if (length === 0) return offset + 1;
    if ((length & 0xc0) === 0xc0) return offset + 2 <= msg.length ? offset + 2 : undefined;
    if (length > 63) return undefined;
    offset += 1 + length;
  }
  return undefined;
}

const u16 = (msg: Uint8Array, at: number) => ((msg[at] as number) << 8) | (msg[at + 1] as number);

export function decodeQuery(msg: Uint8Array): Decoded {
  if (msg.length < HEADER_LENGTH) return DROP;
  const flags = u16(msg, 2);
  if (flags & 0x8000) return DROP;
  const id = u16(msg, 0);
  const rd = (flags & 0x0100) !== 0;
  const opcode = (flags >> 11) & 0xf;
  const reject = (rcode: number): Decoded => ({ kind: 'reject', id, opcode, rd, rcode, edns: ednsOf(msg) });
  if (opcode !== 0) return reject(RCODE.NOTIMP);
  // One question, nothing in answer or authority: anything else is not a query we understand.
  if (u16(msg, 4) !== 1 || u16(msg, 6) !== 0 || u16(msg, 8) !== 0) return reject(RCODE.FORMERR);

  const question = readQuestionName(msg, HEADER_LENGTH);
  if (!question || question.end + 4 > msg.length) return reject(RCODE.FORMERR);
  const type = u16(msg, question.end);
  const qclass = u16(msg, question.end + 2);

  let edns: Edns | undefined;
  let offset = question.end + 4;
  const additional = u16(msg, 10);
  for (let i = 0; i < additional; i++) {
    const nameEnd = skipName(msg, offset);
    if (nameEnd === undefined || nameEnd + 10 > msg.length) return reject(RCODE.FORMERR);
    const rrType = u16(msg, nameEnd);
    const rdLength = u16(msg, nameEnd + 8);
    if (nameEnd + 10 + rdLength > msg.length) return reject(RCODE.FORMERR);
    if (rrType === TYPE.OPT) {
      // RFC 6891 6.1.1: one OPT, owned by the root.
      if (edns || nameEnd !== offset + 1) return reject(RCODE.FORMERR);
      edns = readOpt(msg, nameEnd);
    }
    offset = nameEnd + 10 + rdLength;
  }

  return {
    kind: 'query',
    raw: msg,
    query: {
      id,
      name: question.name,
      type,
      class: qclass,
      nameLength: question.end - HEADER_LENGTH,
      rd,
      cd: (flags & 0x0010) !== 0,
      edns,
    },
  };
}

/** The EDNS fields of the OPT record whose owner name ends at `nameEnd`. */
function readOpt(msg: Uint8Array, nameEnd: number): Edns {
  return {
    udpSize: u16(msg, nameEnd + 2),
    version: msg[nameEnd + 5] as number,
    dnssecOk: ((msg[nameEnd + 6] as number) & 0x80) !== 0,
  };
}

/**
 * The OPT of a message that walks cleanly by its section counts and has exactly one OPT, owned by
 * the root, in the additional section; else undefined. For error replies: RFC 6891 6.1.1 wants an
 * OPT in the reply to a request that had one (dig otherwise suggests retrying without EDNS), but
 * one can only be trusted when the whole message parses.
 */
function ednsOf(msg: Uint8Array): Edns | undefined {
  let offset = HEADER_LENGTH;
  for (let i = u16(msg, 4); i > 0; i--) {
    const nameEnd = skipName(msg, offset);
    if (nameEnd === undefined) return undefined;
    offset = nameEnd + 4;
  }
  const records = u16(msg, 6) + u16(msg, 8);
  const total = records + u16(msg, 10);
  let edns: Edns | undefined;
  for (let i = 0; i < total; i++) {
    const nameEnd = skipName(msg, offset);
    if (nameEnd === undefined || nameEnd + 10 > msg.length) return undefined;
    const end = nameEnd + 10 + u16(msg, nameEnd + 8);
    if (end > msg.length) return undefined;
    if (u16(msg, nameEnd) === TYPE.OPT) {
      if (i < records || edns || nameEnd !== offset + 1) return undefined;
      edns = readOpt(msg, nameEnd);
    }
    offset = end;
  }
  return offset <= msg.length ? edns : undefined;
}

// ---- encoding -------------------------------------------------------------------------------------

/** A record as answer.ts states it; `owner` is the question's name or the zone apex. */
export interface WireRecord {
  readonly owner: 'qname' | 'apex';
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Uint8Array;
}

export function encodeName(name: string): Uint8Array {
  const labels = name === '' ? [] : name.split('.');
  const out = new Uint8Array(labels.reduce((n, l) => n + 1 + l.length, 1));
  let at = 0;
  for (const label of labels) {
    out[at++] = label.length;
    for (let i = 0; i < label.length; i++) out[at++] = label.charCodeAt(i);
  }
  out[at] = 0;
  return out;
}

export function ipv4Bytes(address: string): Uint8Array {
  return Uint8Array.from(address.split('.').map(Number));
}

/** Accepts any textual IPv6 form net.isIP accepts: "::", embedded IPv4, leading/trailing "::". */
export function ipv6Bytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = address.split('%')[0] as string;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = [...ipv4Bytes(v4[1] as string)];
    text = `${text.slice(0, v4.index)}0:0`;
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  all.forEach((group, i) => {
    out[i * 2] = group >> 8;
    out[i * 2 + 1] = group & 0xff;
  });
  if (tail.length) out.set(tail, 12);
  return out;
}

/** TXT RDATA: one character-string per entry, each cut at 255 bytes. */
export function txtBytes(strings: readonly string[]): Uint8Array {
  const parts = strings.map((s) => Buffer.from(s, 'utf8').subarray(0, 255));
  const out = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out[at++] = part.length;
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function soaBytes(soa: {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}): Uint8Array {
  const mname = encodeName(soa.mname);
  const rname = encodeName(soa.rname);
  const out = new Uint8Array(mname.length + rname.length + 20);
  out.set(mname, 0);
  out.set(rname, mname.length);
  const view = new DataView(out.buffer);
  let at = mname.length + rname.length;
  for (const value of [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum]) {
    view.setUint32(at, value >>> 0);
    at += 4;
  }
  return out;
}

/** Owner pointer + type, class IN, TTL, RDLENGTH, RDATA. */
function recordLength(record: WireRecord): number {
  return 12 + record.rdata.length;
}

export interface Sections {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: readonly WireRecord[];
  readonly authority: readonly WireRecord[];
}

/**
 * The records of a reply, as bytes that follow its question. Owners are compression pointers:
 * to the question name at offset 12, or to the zone's suffix inside it.
 */
function encodeSections(sections: Sections, nameLength: number, zoneLength: number): Uint8Array {
  const records = [...sections.answer, ...sections.authority];
  const out = new Uint8Array(records.reduce((n, r) => n + recordLength(r), 0));
  const view = new DataView(out.buffer);
  const apexOffset = HEADER_LENGTH + nameLength - zoneLength;
  let at = 0;
  for (const record of records) {
    view.setUint16(at, 0xc000 | (record.owner === 'qname' ? HEADER_LENGTH : apexOffset));
    view.setUint16(at + 2, record.type);
    view.setUint16(at + 4, CLASS_IN);
    view.setUint32(at + 6, record.ttl >>> 0);
    view.setUint16(at + 10, record.rdata.length);
    out.set(record.rdata, at + 12);
    at += recordLength(record);
  }
  return out;
}

/** An answer ready for the wire, apart from what each query brings: ID, flags, question, OPT. */
export interface EncodedAnswer {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answerCount: number;
  readonly authorityCount: number;
  readonly records: Uint8Array;
  /** The most this answer may take over UDP, whatever EDNS size the query offers. */
  readonly udpCeiling: number;
}

export function encodeAnswer(sections: Sections, nameLength: number, zoneLength: number): EncodedAnswer {
  return {
    rcode: sections.rcode,
    authoritative: sections.authoritative,
    answerCount: sections.answer.length,
    authorityCount: sections.authority.length,
    records: encodeSections(sections, nameLength, zoneLength),
    // TXT is only ever `_status`: text for an operator's dig, 2 KB and more for a 60-byte query,
    // which over UDP would make us an amplifier for anyone who can spoof a source address. Held to
    // 512 bytes, a longer one goes out with TC and dig asks again over TCP, where a handshake proves
    // the address. Addresses keep the EDNS size: resolvers need them in one round trip.
    udpCeiling: sections.answer.some((r) => r.type === TYPE.TXT) ? PLAIN_UDP_LIMIT : MAX_UDP_PAYLOAD,
  };
}

/** The largest reply this query may get over UDP. */
export function udpLimit(query: Query): number {
  return query.edns ? clampUdpSize(query.edns.udpSize) : PLAIN_UDP_LIMIT;
}

/** The largest reply `answer` may take, over this transport, for this query. */
export function replyLimit(query: Query, transport: 'udp' | 'tcp', answer: EncodedAnswer): number {
  return transport === 'tcp' ? TCP_LIMIT : Math.min(udpLimit(query), answer.udpCeiling);
}

/** A client's advertised EDNS UDP size -> what we send at most (512 up to MAX_UDP_PAYLOAD). */
export function clampUdpSize(size: number): number {
  return Math.min(Math.max(size, PLAIN_UDP_LIMIT), MAX_UDP_PAYLOAD);
}

/**
 * Assembles the reply to `query` (its bytes in `raw`): the question copied as asked, the records,
 * an OPT when the query had one. Larger than `limit`: TC set and only question (+ OPT) sent.
 */
export function assembleReply(query: Query, raw: Uint8Array, answer: EncodedAnswer, limit: number): Buffer {
  const questionEnd = HEADER_LENGTH + query.nameLength + 4;
  const optLength = query.edns ? OPT_LENGTH : 0;
  const full = questionEnd + answer.records.length + optLength;
  const truncated = full > limit;
  const out = Buffer.allocUnsafe(truncated ? questionEnd + optLength : full);
  // Bits RD and CD are the client's; RA stays 0: we are no recursor.
  out.writeUInt16BE(query.id, 0);
  out[2] = 0x80 | (answer.authoritative ? 0x04 : 0) | (truncated ? 0x02 : 0) | (query.rd ? 0x01 : 0);
  out[3] = (query.cd ? 0x10 : 0) | (answer.rcode & 0xf);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(truncated ? 0 : answer.answerCount, 6);
  out.writeUInt16BE(truncated ? 0 : answer.authorityCount, 8);
  out.writeUInt16BE(query.edns ? 1 : 0, 10);
  out.set(raw.subarray(HEADER_LENGTH, questionEnd), HEADER_LENGTH);
  let at = questionEnd;
  if (!truncated) {
    out.set(answer.records, at);
    at += answer.records.length;
  }
  if (query.edns) writeOpt(out, at, answer.rcode, query.edns.dnssecOk);
  return out;
}

function writeOpt(out: Buffer, at: number, rcode: number, dnssecOk: boolean): void {
  out[at] = 0; // root owner
  out.writeUInt16BE(TYPE.OPT, at + 1);
  out.writeUInt16BE(MAX_UDP_PAYLOAD, at + 3);
  out[at + 5] = rcode >> 4; // extended rcode, upper bits
  out[at + 6] = 0; // version 0
  out[at + 7] = dnssecOk ? 0x80 : 0; // DO is echoed (RFC 3225); we sign nothing
  out[at + 8] = 0;
  out.writeUInt16BE(0, at + 9); // no options
}

/**
 * The reply to a rejected message (FORMERR, NOTIMP): a header, and an OPT where the message had a
 * well-formed one. The question could not be trusted, so none is echoed.
 */
export function rejectReply(reject: Extract<Decoded, { kind: 'reject' }>): Buffer {
  const { edns } = reject;
  const out = Buffer.alloc(HEADER_LENGTH + (edns ? OPT_LENGTH : 0));
  out.writeUInt16BE(reject.id, 0);
  out[2] = 0x80 | (reject.opcode << 3) | (reject.rd ? 0x01 : 0);
  out[3] = reject.rcode & 0xf;
  if (edns) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, HEADER_LENGTH, reject.rcode, edns.dnssecOk);
  }
  return out;
}
