// The query path from bytes to bytes, read back with dns2's decoder as an independent reader.
import { Packet } from 'dns2';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFresh, Responder } from '../../src/dns/responder.js';
import {
  assembleReply,
  decodeQuery,
  ipv6Bytes,
  RCODE,
  replyLimit,
  TYPE,
  udpLimit,
} from '../../src/dns/wire.js';
import { addresses, service, zoneView } from '../helpers/zone.js';

const zone = zoneView(
  [
    service('proxy', ['10.96.0.10', 'fd00::1'], ['pool=primary state=healthy']),
    service('big', addresses(40)),
    // Twelve pools' status lines, as a service with many pools and long failure reasons has them.
    service(
      'many',
      ['10.96.0.12'],
      Array.from(
        { length: 12 },
        (_, i) => `pool=pool-${i} state=unhealthy reason="squid_error=ERR_CONNECT_FAIL"`,
      ),
    ),
  ],
  { serial: 9 },
);

interface QueryOptions {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  edns?: { size: number; version?: number; do?: boolean };
  opcode?: number;
}

/** A query as a stub resolver would send it, written by hand so every byte is ours to vary. */
function query(name: string, type: number, options: QueryOptions = {}): Buffer {
  const labels = name.split('.').filter(Boolean);
  const qname = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(options.id ?? 0x1234, 0);
  header[2] = ((options.opcode ?? 0) << 3) | (options.rd === false ? 0 : 1);
  header[3] = options.cd ? 0x10 : 0;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(options.edns ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  const parts = [header, qname, tail];
  if (options.edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(TYPE.OPT, 1);
    opt.writeUInt16BE(options.edns.size, 3);
    opt[6] = options.edns.version ?? 0;
    opt[7] = options.edns.do ? 0x80 : 0;
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

const responder = new Responder(zone);
const ask = (bytes: Uint8Array, transport: 'udp' | 'tcp' = 'udp') => responder.respond(bytes, transport);
const parse = (bytes: Buffer | undefined) => {
  expect(bytes).toBeDefined();
  const packet = Packet.parse(bytes as Buffer);
  expect(packet.errors).toEqual([]);
  return packet;
};

describe('replies on the wire', () => {
  it('copies the ID and RD, sets QR and AA, echoes the question exactly as asked', () => {
    const reply = parse(ask(query('PrOxY.EGRESS.svc', TYPE.A, { id: 0xbeef, rd: false })));
    expect(reply.header).toMatchObject({ id: 0xbeef, qr: 1, aa: 1, tc: 0, rd: 0, ra: 0, rcode: 0 });
    expect(reply.questions).toEqual([
      expect.objectContaining({ name: 'PrOxY.EGRESS.svc', type: TYPE.A, class: 1 }),
    ]);
    expect(reply.answers.map((a) => [a.name, a.type, a.ttl, a.address])).toEqual([
      ['PrOxY.EGRESS.svc', TYPE.A, 5, '10.96.0.10'],
    ]);
    expect(parse(ask(query('proxy.egress.svc', TYPE.A, { rd: true }))).header.rd).toBe(1);
  });

  it('echoes CD (checking disabled) as sent, whatever an earlier query of the same question sent', () => {
    // A validating resolver (unbound) sets CD when it re-asks; RFC 4035 3.1.6 has the reply copy it.
    // On a fresh responder the first of each question is decoded in full and later ones are served
    // from the entry it made (dns-hot-path.test.ts), so both paths see CD set and clear.
    const local = new Responder(zone);
    for (const name of ['proxy.egress.svc', 'big.egress.svc', 'nx.egress.svc', 'www.example.com']) {
      for (const edns of [undefined, { size: 1232, do: true }]) {
        for (const cd of [true, false, true, false]) {
          const reply = local.respond(query(name, TYPE.A, { cd, ...(edns ? { edns } : {}) }), 'udp');
          expect(reply && (reply[3] as number) & 0x10, `${name} edns=${!!edns} CD=${cd}`).toBe(cd ? 0x10 : 0);
          parse(reply);
        }
      }
    }
  });

  it('encodes AAAA, SOA, NS and TXT so that an independent decoder reads them back', () => {
    expect(parse(ask(query('proxy.egress.svc', TYPE.AAAA))).answers[0]?.address).toBe('fd00::1');
    expect(parse(ask(query('egress.svc', TYPE.SOA))).answers[0]).toMatchObject({
      primary: 'ns.egress.svc',
      admin: 'hostmaster.egress.svc',
      serial: 9,
      minimum: 5,
    });
    expect(parse(ask(query('egress.svc', TYPE.NS))).answers[0]).toMatchObject({ ns: 'ns.egress.svc' });
    const txt = parse(ask(query('_status.proxy.egress.svc', TYPE.TXT))).answers[0];
    expect([txt?.data].flat()).toEqual(['pool=primary state=healthy']);
  });

  it('NXDOMAIN carries the SOA, owned by the apex, in authority', () => {
    const reply = parse(ask(query('Missing.Egress.SVC', TYPE.A)));
    expect(reply.header.rcode).toBe(RCODE.NXDOMAIN);
    expect(reply.authorities.map((a) => [a.name.toLowerCase(), a.type])).toEqual([['egress.svc', TYPE.SOA]]);
  });

  it('answers the ". NS" health check CoreDNS forward sends, at once, with REFUSED', () => {
    const reply = parse(ask(query('', TYPE.NS)));
    expect(reply.header).toMatchObject({ rcode: RCODE.REFUSED, aa: 0 });
  });

  it('echoes an OPT when the query had one, with DO copied, and omits it otherwise', () => {
    const withEdns = parse(ask(query('proxy.egress.svc', TYPE.A, { edns: { size: 1232, do: true } })));
    expect(withEdns.additionals).toEqual([expect.objectContaining({ type: TYPE.OPT, class: 4096 })]);
    expect(withEdns.additionals[0]?.doFlag).toBe(true);
    expect(parse(ask(query('proxy.egress.svc', TYPE.A))).additionals).toEqual([]);
  });

  it('answers EDNS version 1 with BADVERS (extended rcode 16) and an OPT', () => {
    const raw = ask(query('proxy.egress.svc', TYPE.A, { edns: { size: 1232, version: 1 } })) as Buffer;
    expect(raw[3] && raw[3] & 0xf).toBe(0);
    const reply = parse(raw);
    expect(reply.answers).toEqual([]);
    expect(reply.additionals[0]?.extendedRcode).toBe(1);
  });

  it('truncates an answer too big for 512 bytes without EDNS: TC set, question kept, no records', () => {
    const reply = parse(ask(query('big.egress.svc', TYPE.A)));
    expect(reply.header.tc).toBe(1);
    expect(reply.questions).toHaveLength(1);
    expect(reply.answers).toEqual([]);
  });

  it('honours the client UDP size: whole with EDNS 4096, truncated with EDNS 512, whole over TCP', () => {
    const whole = parse(ask(query('big.egress.svc', TYPE.A, { edns: { size: 4096 } })));
    expect(whole.header.tc).toBe(0);
    expect(whole.answers).toHaveLength(40);
    const small = parse(ask(query('big.egress.svc', TYPE.A, { edns: { size: 512 } })));
    expect(small.header.tc).toBe(1);
    expect(small.additionals).toHaveLength(1);
    const tcp = parse(ask(query('big.egress.svc', TYPE.A), 'tcp'));
    expect(tcp.header.tc).toBe(0);
    expect(tcp.answers).toHaveLength(40);
  });

  it('holds a _status TXT reply over UDP to 512 bytes whatever EDNS size is offered; whole over TCP', () => {
    // Over 600 bytes of TXT for a 50-byte question: an amplifier for a spoofed source, were it sent.
    for (const edns of [undefined, { size: 1232 }, { size: 4096 }, { size: 65535 }]) {
      const raw = ask(query('_status.many.egress.svc', TYPE.TXT, edns ? { edns } : {}));
      expect(raw?.length).toBeLessThanOrEqual(512);
      const reply = parse(raw);
      expect(reply.header.tc).toBe(1);
      expect(reply.answers).toEqual([]);
    }
    const tcp = parse(ask(query('_status.many.egress.svc', TYPE.TXT, { edns: { size: 4096 } }), 'tcp'));
    expect(tcp.header.tc).toBe(0);
    expect(tcp.answers).toHaveLength(12);
    // A short one still fits, and addresses still use the whole EDNS size.
    expect(
      parse(ask(query('_status.proxy.egress.svc', TYPE.TXT, { edns: { size: 4096 } }))).answers,
    ).toHaveLength(1);
    expect(parse(ask(query('big.egress.svc', TYPE.A, { edns: { size: 4096 } }))).header.tc).toBe(0);
  });

  it('never offers more than 4096 bytes over UDP, nor less than 512', () => {
    const q = (size: number) => {
      const decoded = decodeQuery(query('x.egress.svc', 1, { edns: { size } }));
      if (decoded.kind !== 'query') throw new Error('not a query');
      return udpLimit(decoded.query);
    };
    expect(q(65535)).toBe(4096);
    expect(q(100)).toBe(512);
  });
});

describe('bad input', () => {
  const header = (flags: number, counts: [number, number, number, number]) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(0xabcd, 0);
    h.writeUInt16BE(flags, 2);
    counts.forEach((c, i) => {
      h.writeUInt16BE(c, 4 + i * 2);
    });
    return h;
  };
  const rcodeOf = (bytes: Uint8Array) => {
    const reply = ask(bytes);
    expect(reply).toBeDefined();
    expect(reply?.readUInt16BE(0)).toBe(0xabcd);
    expect((reply?.[2] as number) & 0x80).toBe(0x80);
    return (reply?.[3] as number) & 0xf;
  };

  it('drops what has no readable header, and every response (QR set): no reflection loops', () => {
    expect(ask(Buffer.alloc(0))).toBeUndefined();
    expect(ask(Buffer.alloc(11))).toBeUndefined();
    const response = query('proxy.egress.svc', TYPE.A);
    response[2] = (response[2] as number) | 0x80;
    expect(ask(response)).toBeUndefined();
  });

  it('answers an opcode other than QUERY with NOTIMP', () => {
    const notify = query('egress.svc', TYPE.SOA, { opcode: 4, id: 0xabcd });
    expect(rcodeOf(notify)).toBe(RCODE.NOTIMP);
  });

  /** A question: the labels, the root, type A, class IN. */
  const name = (labels: Buffer[]) => Buffer.concat([...labels, Buffer.from([0, 0, 1, 0, 1])]);
  const label = (n: number) => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, 0x61)]);
  /** An A record owned by the question name (a pointer to offset 12). */
  const aRecord = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
  /** An OPT record: root owner (or "a"), UDP size 1232, version 0, DO as given, no options. */
  const opt = (options: { do?: boolean; owner?: 'root' | 'a' } = {}) =>
    Buffer.concat([
      Buffer.from(options.owner === 'a' ? [1, 0x61, 0] : [0]),
      Buffer.from([0, 41, 0x04, 0xd0, 0, 0, options.do ? 0x80 : 0, 0, 0, 0]),
    ]);
  const NOTIFY = 4 << 11;
  const STATUS = 2 << 11;

  it('answers FORMERR where the header can be read but the rest cannot', () => {
    const cases: Record<string, Buffer> = {
      'QDCOUNT 65535, no body': header(0x0100, [65535, 65535, 65535, 65535]),
      'no question': header(0x0100, [0, 0, 0, 0]),
      'two questions': Buffer.concat([header(0, [2, 0, 0, 0]), name([label(1)]), name([label(1)])]),
      'truncated question': Buffer.concat([header(0, [1, 0, 0, 0]), Buffer.from([5, 0x61, 0x62])]),
      'label over 63 bytes': Buffer.concat([header(0, [1, 0, 0, 0]), name([label(64)])]),
      'name of 256 wire bytes': Buffer.concat([
        header(0, [1, 0, 0, 0]),
        name([label(63), label(63), label(63), label(62)]),
      ]),
      'name of 257 wire bytes': Buffer.concat([
        header(0, [1, 0, 0, 0]),
        name([label(63), label(63), label(63), label(63)]),
      ]),
      // Each count on its own, with a record that is well-formed in itself: a query has none there.
      'ANCOUNT 1 alone': Buffer.concat([header(0x0100, [1, 1, 0, 0]), name([label(1)]), aRecord]),
      'NSCOUNT 1 alone': Buffer.concat([header(0x0100, [1, 0, 1, 0]), name([label(1)]), aRecord]),
      'OPT owned by "a", not the root': Buffer.concat([
        header(0x0100, [1, 0, 0, 1]),
        name([label(1)]),
        opt({ owner: 'a' }),
      ]),
      'compression pointer in the question': Buffer.concat([
        header(0, [1, 0, 0, 0]),
        Buffer.from([0xc0, 12, 0, 1, 0, 1]),
      ]),
      'pointer loop in an additional record': Buffer.concat([
        header(0, [1, 0, 0, 1]),
        name([label(1)]),
        Buffer.from([0xc0, 0x11, 0, 41, 2, 0, 0, 0, 0, 0, 0, 5]),
      ]),
      'additional record running past the end': Buffer.concat([
        header(0, [1, 0, 0, 1]),
        name([label(1)]),
        Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 50]),
      ]),
      'two OPT records': Buffer.concat([
        header(0, [1, 0, 0, 2]),
        name([label(1)]),
        Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]),
        Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]),
      ]),
    };
    for (const [what, bytes] of Object.entries(cases)) {
      expect(rcodeOf(bytes), what).toBe(RCODE.FORMERR);
    }
  });

  it('a name of exactly 255 wire bytes is still a name', () => {
    const labels = [63, 63, 63, 61].map((n) => `${'a'.repeat(n)}`);
    const bytes = query(labels.join('.'), TYPE.A);
    const decoded = decodeQuery(bytes);
    expect(decoded.kind).toBe('query');
    expect(decoded.kind === 'query' && decoded.query.nameLength).toBe(255);
    const reply = parse(ask(bytes));
    expect(reply.header.rcode).toBe(RCODE.REFUSED);
  });

  it('carries an OPT in a rejection exactly when the message had one well-formed root OPT in additional', () => {
    // [what, message, rcode, the reply's OPT: none, or one with DO clear or set]
    const cases: [string, Buffer, number, 'none' | 'opt' | 'opt+do'][] = [
      [
        'NOTIFY with a root OPT',
        query('egress.svc', TYPE.SOA, { opcode: 4, id: 0xabcd, edns: { size: 1232 } }),
        RCODE.NOTIMP,
        'opt',
      ],
      [
        'STATUS with a root OPT, DO set',
        query('egress.svc', TYPE.SOA, { opcode: 2, id: 0xabcd, edns: { size: 1232, do: true } }),
        RCODE.NOTIMP,
        'opt+do',
      ],
      ['NOTIFY without OPT', query('egress.svc', TYPE.SOA, { opcode: 4, id: 0xabcd }), RCODE.NOTIMP, 'none'],
      [
        'NOTIFY whose only OPT is in the answer section',
        Buffer.concat([header(NOTIFY, [1, 1, 0, 0]), name([label(1)]), opt({ do: true })]),
        RCODE.NOTIMP,
        'none',
      ],
      [
        'STATUS with an OPT not owned by the root',
        Buffer.concat([header(STATUS, [1, 0, 0, 1]), name([label(1)]), opt({ owner: 'a' })]),
        RCODE.NOTIMP,
        'none',
      ],
      [
        'a query whose only OPT is in the answer section',
        Buffer.concat([header(0x0100, [1, 1, 0, 0]), name([label(1)]), opt()]),
        RCODE.FORMERR,
        'none',
      ],
      [
        'a query whose only OPT is in the authority section',
        Buffer.concat([header(0x0100, [1, 0, 1, 0]), name([label(1)]), opt()]),
        RCODE.FORMERR,
        'none',
      ],
      [
        'ANCOUNT 1 and a root OPT with DO in additional',
        Buffer.concat([header(0x0100, [1, 1, 0, 1]), name([label(1)]), aRecord, opt({ do: true })]),
        RCODE.FORMERR,
        'opt+do',
      ],
      [
        'two root OPTs',
        Buffer.concat([header(0x0100, [1, 0, 0, 2]), name([label(1)]), opt(), opt()]),
        RCODE.FORMERR,
        'none',
      ],
      [
        'an OPT not owned by the root',
        Buffer.concat([header(0x0100, [1, 0, 0, 1]), name([label(1)]), opt({ owner: 'a' })]),
        RCODE.FORMERR,
        'none',
      ],
    ];
    for (const [what, bytes, rcode, expected] of cases) {
      const reply = ask(bytes) as Buffer;
      expect(rcodeOf(bytes), what).toBe(rcode);
      // The header: opcode echoed, no question echoed, nothing but the OPT.
      expect((reply[2] as number) & 0x78, what).toBe((bytes[2] as number) & 0x78);
      expect([...reply.subarray(4, 10)], what).toEqual([0, 0, 0, 0, 0, 0]);
      if (expected === 'none') {
        expect(reply.length, what).toBe(12);
        expect(reply.readUInt16BE(10), what).toBe(0);
        continue;
      }
      expect(reply.readUInt16BE(10), what).toBe(1);
      // Root owner, OPT, our UDP size 4096, extended rcode 0, version 0, DO echoed, no options.
      const flags = expected === 'opt+do' ? 0x80 : 0;
      expect([...reply.subarray(12)], what).toEqual([0, 0, 41, 0x10, 0, 0, 0, flags, 0, 0, 0]);
      const packet = parse(reply);
      expect(packet.additionals, what).toHaveLength(1);
      expect(packet.additionals[0]?.doFlag, what).toBe(expected === 'opt+do');
    }
  });

  it('a dot inside a label never makes a name look in-zone', () => {
    // labels ["x.egress", "svc"]: ends in ".egress.svc" as text, but is not in the zone
    const bytes = Buffer.concat([
      header(0x0100, [1, 0, 0, 0]),
      Buffer.from([8]),
      Buffer.from('x.egress'),
      Buffer.from([3]),
      Buffer.from('svc'),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    expect(rcodeOf(bytes)).toBe(RCODE.REFUSED);
  });

  it('any byte string gives a well-formed reply, a header-only error, or silence', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        const reply = ask(bytes);
        if (reply === undefined) return;
        expect(reply.length).toBeGreaterThanOrEqual(12);
        expect(reply.length).toBeLessThanOrEqual(4096);
        expect(reply.readUInt16BE(0)).toBe(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0));
        if (reply.length > 12) expect(Packet.parse(reply).errors).toEqual([]);
      }),
      { numRuns: 3000 },
    );
  });

  it('any mutation of a valid query still gives a well-formed reply or silence', () => {
    const base = query('proxy.egress.svc', TYPE.A, { edns: { size: 1232 } });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        (edits) => {
          const bytes = Buffer.from(base);
          for (const [at, value] of edits) bytes[at] = value;
          const reply = ask(bytes);
          if (reply && reply.length > 12) expect(Packet.parse(reply).errors).toEqual([]);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('the memo and the general path', () => {
  it('give byte-identical replies for the same question and view, whatever the letter case', () => {
    const names = [
      'egress.svc',
      'proxy.egress.svc',
      'big.egress.svc',
      '_status.proxy.egress.svc',
      'nx.egress.svc',
    ];
    const types = [TYPE.A, TYPE.AAAA, TYPE.TXT, TYPE.SOA, TYPE.NS, TYPE.ANY, 15];
    const caseOf = fc.array(fc.boolean(), { minLength: 40, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.constantFrom(...types),
        caseOf,
        fc.option(fc.integer({ min: 0, max: 5000 })),
        fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp'),
        (name, type, upper, size, transport) => {
          const asked = [...name].map((c, i) => (upper[i % upper.length] ? c.toUpperCase() : c)).join('');
          const bytes = query(asked, type, size === null ? {} : { edns: { size } });
          const decoded = decodeQuery(bytes);
          if (decoded.kind !== 'query') throw new Error('expected a query');
          const encoded = encodeFresh(decoded.query, zone);
          const general = assembleReply(
            decoded.query,
            bytes,
            encoded,
            replyLimit(decoded.query, transport, encoded),
          );
          // ask twice: the first fills the memo, the second is served from it
          responder.respond(bytes, transport);
          expect(responder.respond(bytes, transport)).toEqual(general);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a new view replaces every memoised answer at once', () => {
    const local = new Responder(zone);
    const bytes = query('proxy.egress.svc', TYPE.A);
    expect(parse(local.respond(bytes, 'udp')).answers[0]?.address).toBe('10.96.0.10');
    local.setView({
      ...zone,
      services: new Map([['proxy', service('proxy', ['10.96.0.11'])]]),
    });
    expect(parse(local.respond(bytes, 'udp')).answers[0]?.address).toBe('10.96.0.11');
  });
});

describe('round trips', () => {
  const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
  const question = fc.record({
    labels: fc.array(label, { minLength: 0, maxLength: 6 }),
    type: fc.integer({ min: 1, max: 65535 }).filter((t) => t !== TYPE.OPT),
    id: fc.integer({ min: 0, max: 65535 }),
    rd: fc.boolean(),
    edns: fc.option(fc.record({ size: fc.integer({ min: 0, max: 65535 }), do: fc.boolean() })),
  });

  it('decoding a query gives back what was encoded, name lower-cased, every field kept', () => {
    fc.assert(
      fc.property(question, ({ labels, type, id, rd, edns }) => {
        const name = labels.join('.');
        const decoded = decodeQuery(query(name, type, { id, rd, ...(edns ? { edns } : {}) }));
        expect(decoded.kind).toBe('query');
        if (decoded.kind !== 'query') return;
        expect(decoded.query).toMatchObject({ id, name: name.toLowerCase(), type, class: 1, rd });
        expect(decoded.query.nameLength).toBe(name === '' ? 1 : name.length + 2);
        expect(decoded.query.edns).toEqual(
          edns ? { udpSize: edns.size, version: 0, dnssecOk: edns.do } : undefined,
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('the reply to any well-formed query echoes its ID and question byte for byte', () => {
    fc.assert(
      fc.property(question, ({ labels, type, id, rd, edns }) => {
        const name = [...labels, ...(labels.length % 2 ? ['Egress', 'SVC'] : [])].join('.');
        const bytes = query(name, type, { id, rd, ...(edns ? { edns } : {}) });
        const reply = ask(bytes) as Buffer;
        const questionEnd = 12 + (name === '' ? 1 : name.length + 2) + 4;
        expect(reply.readUInt16BE(0)).toBe(id);
        expect(reply.subarray(12, questionEnd)).toEqual(bytes.subarray(12, questionEnd));
        expect(Packet.parse(reply).errors).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ipv6Bytes', () => {
  it('reads every textual form', () => {
    const hex = (a: string) => Buffer.from(ipv6Bytes(a)).toString('hex');
    expect(hex('::')).toBe('0'.repeat(32));
    expect(hex('::1')).toBe(`${'0'.repeat(31)}1`);
    expect(hex('fd00::1:2')).toBe('fd000000000000000000000000010002');
    expect(hex('2001:db8:0:0:1:0:0:1')).toBe('20010db8000000000001000000000001');
    expect(hex('::ffff:10.1.2.3')).toBe('00000000000000000000ffff0a010203');
    expect(hex('fe80::')).toBe(`fe80${'0'.repeat(28)}`);
  });
});
