// The README's answer table, row by row, over the pure answer function.
import { describe, expect, it } from 'vitest';
import { answer, isOwned } from '../../src/dns/answer.js';
import { CLASS_IN, RCODE, TYPE } from '../../src/dns/wire.js';
import type { ServiceView, ZoneView } from '../../src/dns/zone-view.js';
import { service } from '../helpers/zone.js';

function view(services: ServiceView[], ttl = 5): ZoneView {
  return {
    zone: 'egress.svc',
    nameserver: 'ns.egress.svc',
    ttl,
    serial: 42,
    services: new Map(services.map((s) => [s.name, s])),
  };
}

// The selection's order mixes families: each answer keeps its family's order.
const proxy = service(
  'proxy',
  ['10.96.0.10', 'fd00::10', '10.96.0.11'],
  ['pool=primary state=healthy selected=yes', 'pool=secondary state=healthy selected=no'],
);
const v4only = service('v4', ['10.0.0.1']);
const pending = service('pending', undefined, ['pool=a state=unknown']);
const zone = view([proxy, v4only, pending]);

const ask = (name: string, type: number, cls = CLASS_IN) => answer({ name, type, class: cls }, zone);
const SOA_AUTHORITY = [
  {
    owner: 'apex',
    ttl: 5,
    data: {
      type: 'SOA',
      mname: 'ns.egress.svc',
      rname: 'hostmaster.egress.svc',
      serial: 42,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 5,
    },
  },
];

describe('answer: the README table', () => {
  it('A of a service: the selected addresses of that family, TTL dns.ttl, authoritative', () => {
    expect(ask('proxy.egress.svc', TYPE.A)).toEqual({
      rcode: RCODE.NOERROR,
      authoritative: true,
      answer: [
        { owner: 'qname', ttl: 5, data: { type: 'A', address: '10.96.0.10' } },
        { owner: 'qname', ttl: 5, data: { type: 'A', address: '10.96.0.11' } },
      ],
      authority: [],
    });
  });

  it('AAAA of a service: its IPv6 addresses only', () => {
    expect(ask('proxy.egress.svc', TYPE.AAAA).answer).toEqual([
      { owner: 'qname', ttl: 5, data: { type: 'AAAA', address: 'fd00::10' } },
    ]);
  });

  it('AAAA where the pool has no IPv6 address: NODATA with the SOA in authority', () => {
    expect(ask('v4.egress.svc', TYPE.AAAA)).toEqual({
      rcode: RCODE.NOERROR,
      authoritative: true,
      answer: [],
      authority: SOA_AUTHORITY,
    });
  });

  it('another type at a service name (MX): NODATA', () => {
    const result = ask('proxy.egress.svc', 15);
    expect(result.rcode).toBe(RCODE.NOERROR);
    expect(result.answer).toEqual([]);
    expect(result.authority).toEqual(SOA_AUTHORITY);
  });

  it('SOA and NS at the apex', () => {
    expect(ask('egress.svc', TYPE.SOA)).toEqual({
      rcode: RCODE.NOERROR,
      authoritative: true,
      answer: SOA_AUTHORITY,
      authority: [],
    });
    expect(ask('egress.svc', TYPE.NS).answer).toEqual([
      { owner: 'qname', ttl: 5, data: { type: 'NS', host: 'ns.egress.svc' } },
    ]);
  });

  it('A at the apex: NODATA', () => {
    expect(ask('egress.svc', TYPE.A)).toMatchObject({
      rcode: RCODE.NOERROR,
      answer: [],
      authority: SOA_AUTHORITY,
    });
  });

  it('_status TXT: one string per pool, in priority order, never cached', () => {
    const result = ask('_status.proxy.egress.svc', TYPE.TXT);
    expect(result.rcode).toBe(RCODE.NOERROR);
    expect(result.authoritative).toBe(true);
    expect(result.answer.map((r) => r.data)).toEqual([
      { type: 'TXT', strings: ['pool=primary state=healthy selected=yes'] },
      { type: 'TXT', strings: ['pool=secondary state=healthy selected=no'] },
    ]);
    expect(result.answer.every((r) => r.ttl === 0)).toBe(true);
  });

  it('_status answers even before the first verdict, while the service itself is SERVFAIL', () => {
    expect(ask('_status.pending.egress.svc', TYPE.TXT).answer).toHaveLength(1);
    expect(ask('pending.egress.svc', TYPE.A)).toEqual({
      rcode: RCODE.SERVFAIL,
      authoritative: false,
      answer: [],
      authority: [],
    });
  });

  it('any other name in the zone: NXDOMAIN with the SOA (negative TTL from it)', () => {
    for (const name of [
      'nope.egress.svc',
      'a.proxy.egress.svc',
      '_status.nope.egress.svc',
      'ns.egress.svc',
    ]) {
      expect(ask(name, TYPE.A)).toEqual({
        rcode: RCODE.NXDOMAIN,
        authoritative: true,
        answer: [],
        authority: SOA_AUTHORITY,
      });
    }
  });

  it('a name out of the zone: REFUSED, not authoritative (never an open resolver)', () => {
    for (const name of ['', 'svc', 'www.baidu.com', 'xegress.svc', 'egress.svc.evil']) {
      expect(ask(name, TYPE.NS)).toEqual({
        rcode: RCODE.REFUSED,
        authoritative: false,
        answer: [],
        authority: [],
      });
    }
  });

  it('a class other than IN (CHAOS version.bind, or CH in the zone): REFUSED', () => {
    expect(ask('version.bind', TYPE.TXT, 3).rcode).toBe(RCODE.REFUSED);
    expect(ask('proxy.egress.svc', TYPE.A, 3).rcode).toBe(RCODE.REFUSED);
  });

  it('a zone transfer (AXFR, IXFR) of the zone or any name in it: REFUSED, not an empty answer', () => {
    for (const type of [TYPE.AXFR, TYPE.IXFR])
      for (const name of ['egress.svc', 'proxy.egress.svc'])
        expect(ask(name, type)).toEqual({
          rcode: RCODE.REFUSED,
          authoritative: false,
          answer: [],
          authority: [],
        });
  });

  it('ANY: every address family at a service, SOA and NS at the apex', () => {
    expect(ask('proxy.egress.svc', TYPE.ANY).answer.map((r) => r.data.type)).toEqual(['A', 'A', 'AAAA']);
    expect(ask('egress.svc', TYPE.ANY).answer.map((r) => r.data.type)).toEqual(['SOA', 'NS']);
  });

  it('dns.ttl flows into answers and the negative TTL', () => {
    const long = view([proxy], 30);
    expect(answer({ name: 'proxy.egress.svc', type: TYPE.A, class: CLASS_IN }, long).answer[0]?.ttl).toBe(30);
    const nx = answer({ name: 'x.egress.svc', type: TYPE.A, class: CLASS_IN }, long);
    expect(nx.authority[0]?.ttl).toBe(30);
    expect(nx.authority[0]?.data).toMatchObject({ minimum: 30 });
  });
});

describe('isOwned: the names worth keeping encoded answers for', () => {
  it.each([
    ['egress.svc', true],
    ['proxy.egress.svc', true],
    ['_status.proxy.egress.svc', true],
    ['pending.egress.svc', true],
    ['_status.pending.egress.svc', true],
    ['nope.egress.svc', false],
    ['_status.nope.egress.svc', false],
    ['_status.egress.svc', false],
    ['a.proxy.egress.svc', false],
    ['proxyegress.svc', false],
    ['proxy.xegress.svc', false],
    ['proxy.egress.svc.example', false],
    ['svc', false],
    ['', false],
  ])('%s: %s', (name, owned) => {
    expect(isOwned(zone, name)).toBe(owned);
  });
});
