// The fuzz target: one message through the whole wire path (decode -> answer -> encode) on both
// transports, with the contract every reply keeps. Throws on a broken contract; returns otherwise.
// Used by the coverage-guided run (coverage-fuzzer.ts) and by the regression replay of its corpus
// and crashes (decoder.test.ts).
//
// A stall is a finding, measured without a clock: the reply must be reached within readBudget reads
// of the message (read-count.ts), so a walk that loops or goes quadratic throws here on any machine.
// Wall time is only reported (slowReport): on a loaded machine any input can take 100 ms, and a
// finding must not depend on what else the machine was doing.
import { Packet } from 'dns2';
import { Responder } from '../../src/dns/responder.js';
import { decodeQuery, udpLimit } from '../../src/dns/wire.js';
import { fuzzZone } from '../helpers/zone.js';
import { countingView, readBudget } from './read-count.js';

const responder = new Responder(fuzzZone());

/** A reply slower than this is printed and counted, never a finding. */
export const SLOW_MS = 100;

const slow = { count: 0, worstMs: 0, worst: '' };

/** The replies slower than SLOW_MS so far (report only): how many, and the slowest. */
export function slowReport(): { readonly count: number; readonly worstMs: number; readonly worst: string } {
  return { ...slow };
}

function noteSlow(tookMs: number, transport: string, data: Uint8Array): void {
  slow.count += 1;
  if (tookMs <= slow.worstMs) return;
  slow.worstMs = tookMs;
  const head = Buffer.from(data.subarray(0, 32)).toString('hex');
  slow.worst = `${tookMs.toFixed(1)} ms over ${transport}, ${data.length} bytes: ${head}${data.length > 32 ? '...' : ''}`;
  // Printed as it happens (only each new slowest), so a long campaign shows it without a finding.
  console.warn(`fuzz: slow reply (report only, not a finding): ${slow.worst}`);
}

export class ContractBroken extends Error {}

function check(condition: boolean, what: string): void {
  if (!condition) throw new ContractBroken(what);
}

export function fuzzDecoder(data: Uint8Array): void {
  const copy = Uint8Array.from(data);
  // Throws ReadBudgetExceeded (a finding) when the work is not bounded by the length.
  const counted = countingView(data, readBudget(data.length));
  const viaView = responder.respond(counted.view, 'udp');
  for (const transport of ['udp', 'tcp'] as const) {
    const started = performance.now();
    const reply = responder.respond(data, transport);
    const tookMs = performance.now() - started;
    if (tookMs >= SLOW_MS) noteSlow(tookMs, transport, data);
    check(Buffer.from(data).equals(copy), 'the input was modified');
    if (transport === 'udp')
      check(
        viaView === undefined ? reply === undefined : reply !== undefined && viaView.equals(reply),
        'the reply to the bytes read through a view differs from the reply to the bytes',
      );
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
      // Consistency with the decoder's own verdict on the OPT; what that verdict must be is stated
      // independently, message by message, in test/unit/dns-wire.test.ts.
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
