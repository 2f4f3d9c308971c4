// The responder's hot path against the general path, with everything a query may vary: ID, RD, CD,
// AA and TC bits, letter case, EDNS (size, DO, version, options), transport, and names the zone
// owns or not. One warm responder answers a long run of such queries, so most are served from
// entries another query (other ID, other case, other bits) made; each reply must be byte for byte
// what the general path (decode, encodeFresh, assembleReply) gives for the same question and view.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFresh, type Outcome, Responder } from '../../src/dns/responder.js';
import { assembleReply, decodeQuery, rejectReply, replyLimit, TYPE } from '../../src/dns/wire.js';
import type { ZoneView } from '../../src/dns/zone-view.js';
import { addresses, service, zoneView } from '../helpers/zone.js';

const zone = zoneView(
  [
    service('proxy', ['10.96.0.10', 'fd00::1'], ['pool=primary state=healthy']),
    service('big', addresses(40)),
    // Over 512 bytes of _status: truncated over UDP whatever the EDNS size (wire.ts udpCeiling).
    service(
      'many',
      ['10.96.0.12'],
      addresses(12).map((a) => `pool=${a} state=unhealthy ${'x'.repeat(40)}`),
    ),
  ],
  { serial: 9 },
);

interface Shape {
  name: string;
  upper: boolean[];
  type: number;
  id: number;
  flags2: number;
  flags3: number;
  edns: { size: number; version: number; do: boolean; options: number } | null;
}

function build(q: Shape): Buffer {
  const asked = [...q.name].map((c, i) => (q.upper[i % q.upper.length] ? c.toUpperCase() : c)).join('');
  const labels = asked.split('.').filter(Boolean);
  const qname = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header[2] = q.flags2;
  header[3] = q.flags3;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(q.edns ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(q.type, 0);
  tail.writeUInt16BE(1, 2);
  const parts = [header, qname, tail];
  if (q.edns) {
    const opt = Buffer.alloc(11 + q.edns.options);
    opt.writeUInt16BE(TYPE.OPT, 1);
    opt.writeUInt16BE(q.edns.size, 3);
    opt[6] = q.edns.version;
    opt[7] = q.edns.do ? 0x80 : 0;
    opt.writeUInt16BE(q.edns.options, 9);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

function general(bytes: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
  const decoded = decodeQuery(bytes);
  if (decoded.kind === 'drop') return undefined;
  if (decoded.kind === 'reject') return rejectReply(decoded);
  const encoded = encodeFresh(decoded.query, zone);
  return assembleReply(decoded.query, bytes, encoded, replyLimit(decoded.query, transport, encoded));
}

const shape = fc.record({
  name: fc.constantFrom(
    'proxy.egress.svc',
    'big.egress.svc',
    'egress.svc',
    '_status.proxy.egress.svc',
    '_status.many.egress.svc',
    'nx.egress.svc',
    'other.example',
  ),
  upper: fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
  type: fc.constantFrom(TYPE.A, TYPE.AAAA, TYPE.TXT, TYPE.SOA, TYPE.NS, TYPE.ANY, 15),
  id: fc.integer({ min: 0, max: 0xffff }),
  // QR stays 0 most of the time; opcode 0 mostly; AA, TC, RD random.
  flags2: fc.oneof(
    { weight: 9, arbitrary: fc.integer({ min: 0, max: 7 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  ),
  flags3: fc.integer({ min: 0, max: 255 }),
  edns: fc.option(
    fc.record({
      size: fc.constantFrom(0, 512, 600, 1232, 4096, 65535),
      version: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
      do: fc.boolean(),
      options: fc.constantFrom(0, 0, 4),
    }),
  ),
});

describe('the hot path', () => {
  it('gives the general path’s reply and outcome, byte for byte, to a long run of varied queries', () => {
    const responder = new Responder(zone);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(shape, fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp')), {
          minLength: 50,
          maxLength: 200,
        }),
        (queries) => {
          for (const [q, transport] of queries) {
            const bytes = build(q);
            let outcome: Outcome | undefined;
            const reply = responder.respond(bytes, transport, (o) => {
              outcome = o;
            });
            expect(reply).toEqual(general(bytes, transport));
            // A responder that never saw a query answers through the general path: same outcome.
            let cold: Outcome | undefined;
            new Responder(zone).respond(bytes, transport, (o) => {
              cold = o;
            });
            expect(outcome).toEqual(cold);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('echoes the CD bit each query sent, whichever query made the entry it is served from', () => {
    for (const firstCd of [true, false]) {
      const responder = new Responder(zone);
      const ask = (cd: boolean) => {
        let outcome: Outcome | undefined;
        const bytes = build({
          name: 'proxy.egress.svc',
          upper: [false],
          type: TYPE.A,
          id: 7,
          flags2: 1,
          flags3: cd ? 0x10 : 0,
          edns: null,
        });
        const reply = responder.respond(bytes, 'udp', (o) => {
          outcome = o;
        });
        return { cd: ((reply?.[3] as number) & 0x10) !== 0, outcome };
      };
      const general = ask(firstCd);
      const hot = [!firstCd, firstCd, !firstCd].map(ask);
      expect([general, ...hot].map((r) => r.cd)).toEqual([firstCd, !firstCd, firstCd, !firstCd]);
      // Served from the entry the first query made: every hot reply shares that entry's outcome.
      for (const r of hot) expect(r.outcome).toBe(general.outcome);
    }
  });

  it('serves a new view at once: entries of the old view are gone', () => {
    const responder = new Responder(zone);
    const q = build({
      name: 'proxy.egress.svc',
      upper: [false],
      type: TYPE.A,
      id: 1,
      flags2: 1,
      flags3: 0,
      edns: null,
    });
    responder.respond(q, 'udp');
    responder.respond(q, 'udp');
    const next: ZoneView = {
      ...zone,
      services: new Map([['proxy', service('proxy', ['10.96.0.11'])]]),
    };
    responder.setView(next);
    const reply = responder.respond(q, 'udp');
    expect([...(reply ?? Buffer.alloc(4)).subarray(-4)]).toEqual([10, 96, 0, 11]);
  });
});
