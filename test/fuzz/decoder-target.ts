// The fuzz target: one message through the whole wire path (decode -> answer -> encode) on both
// transports, with the contract every reply keeps. Throws on a broken contract; returns otherwise.
// Used by the coverage-guided run (coverage-fuzzer.ts) and by the regression replay of its corpus
// and crashes (decoder.test.ts).
import { Packet } from 'dns2';
import { Responder } from '../../src/dns/responder.js';
import { decodeQuery, udpLimit } from '../../src/dns/wire.js';
import { fuzzZone } from '../helpers/zone.js';

const responder = new Responder(fuzzZone());

/** A message slower than this to answer is a finding, like a crash (generous: a shared machine). */
export const SLOW_MS = 100;

export class ContractBroken extends Error {}

function check(condition: boolean, what: string): void {
  if (!condition) throw new ContractBroken(what);
}

export function fuzzDecoder(data: Uint8Array): void {
  const copy = Uint8Array.from(data);
  for (const transport of ['udp', 'tcp'] as const) {
    const started = performance.now();
    const reply = responder.respond(data, transport);
    const tookMs = performance.now() - started;
    check(tookMs < SLOW_MS, `slow: ${tookMs.toFixed(1)}ms over ${transport}`);
    check(Buffer.from(data).equals(copy), 'the input was modified');
    const qr = data.length >= 3 && ((data[2] as number) & 0x80) !== 0;
    if (data.length < 12 || qr) {
      check(reply === undefined, 'answered a message with no header or a response');
      continue;
    }
    check(reply !== undefined, 'no reply to a message with a readable header');
    const r = reply as Buffer;
    check(r.length >= 12, 'reply shorter than a header');
    check(r.readUInt16BE(0) === (((data[0] as number) << 8) | (data[1] as number)), 'ID not echoed');
    check(((r[2] as number) & 0x80) !== 0, 'QR not set');
    check(responder.respond(r, transport) === undefined, 'a reply to a reply');
    const decoded = decodeQuery(data);
    if (decoded.kind === 'reject') {
      check(r.length === (decoded.edns ? 23 : 12), 'an error reply with more than a header (and an OPT)');
      continue;
    }
    check(decoded.kind === 'query', 'decoded as a drop, yet answered');
    if (decoded.kind !== 'query') continue;
    const q = decoded.query;
    const questionEnd = 12 + q.nameLength + 4;
    check(r.length <= (transport === 'udp' ? udpLimit(q) : 65535), `reply over the ${transport} limit`);
    check(r.subarray(12, questionEnd).equals(data.subarray(12, questionEnd)), 'question not echoed');
    const packet = Packet.parse(r);
    check(packet.errors.length === 0, `reply unreadable by dns2: ${String(packet.errors[0])}`);
  }
}
