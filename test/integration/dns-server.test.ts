// The DNS server on a real socket, asked by real dig: every transport and flag an operator or a
// resolver relies on. The view is set directly; the probe loop is tested elsewhere.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Responder } from '../../src/dns/responder.js';
import { DnsServer } from '../../src/dns/server.js';
import type { ZoneView } from '../../src/dns/zone-view.js';
import { dig, digRaw, parseDig } from '../helpers/dig.js';
import { type Crowd, openCrowd, query, tcpExchange } from '../helpers/dns-clients.js';
import { waitFor } from '../helpers/wait.js';

const forty = Array.from({ length: 40 }, (_, i) => `10.1.0.${i + 1}`);
const view: ZoneView = {
  zone: 'egress.svc',
  nameserver: 'ns.egress.svc',
  ttl: 5,
  serial: 2026112501,
  services: new Map([
    [
      'proxy',
      {
        name: 'proxy',
        addresses: { a: ['10.96.0.10'], aaaa: [] },
        status: ['pool=primary state=healthy selected=yes', 'pool=secondary state=unhealthy selected=no'],
      },
    ],
    ['big', { name: 'big', addresses: { a: forty, aaaa: [] }, status: [] }],
    [
      'many',
      {
        name: 'many',
        addresses: { a: ['10.96.0.12'], aaaa: [] },
        status: Array.from(
          { length: 12 },
          (_, i) => `pool=pool-${i} state=unhealthy selected=no reason="squid_error=ERR_CONNECT_FAIL"`,
        ),
      },
    ],
    ['pending', { name: 'pending', addresses: undefined, status: ['pool=a state=unknown'] }],
  ]),
};

const quiet = { debug() {}, warn() {} };
let server: DnsServer;
let at: { host: string; port: number };

beforeAll(async () => {
  server = await DnsServer.start({
    listen: { host: '127.0.0.21', port: 5353 },
    responder: new Responder(view),
    log: quiet,
    tcpIdleTimeoutMs: 500,
  });
  at = server.address;
});
afterAll(async () => {
  await server?.close();
});

describe('dig over UDP', () => {
  it('answers the service name, authoritative, with dns.ttl, the question as asked', async () => {
    const reply = await dig(at, 'PrOxY.Egress.SVC', 'A', '+norec');
    expect(reply.status).toBe('NOERROR');
    expect(reply.flags).toEqual(['qr', 'aa']);
    expect(reply.question).toEqual(['PrOxY.Egress.SVC. IN A']);
    expect(reply.answer).toEqual(['PrOxY.Egress.SVC. 5 IN A 10.96.0.10']);
  });

  it('keeps RD as sent and never claims recursion (no RA)', async () => {
    const reply = await dig(at, 'proxy.egress.svc', 'A');
    expect(reply.flags).toEqual(['qr', 'aa', 'rd']);
  });

  it('SOA and NS at the apex; the _status TXT lines', async () => {
    expect((await dig(at, 'egress.svc', 'SOA')).answer).toEqual([
      'egress.svc. 5 IN SOA ns.egress.svc. hostmaster.egress.svc. 2026112501 3600 600 86400 5',
    ]);
    expect((await dig(at, 'egress.svc', 'NS')).answer).toEqual(['egress.svc. 5 IN NS ns.egress.svc.']);
    expect((await dig(at, '_status.proxy.egress.svc', 'TXT')).answer).toEqual([
      '_status.proxy.egress.svc. 0 IN TXT "pool=primary state=healthy selected=yes"',
      '_status.proxy.egress.svc. 0 IN TXT "pool=secondary state=unhealthy selected=no"',
    ]);
  });

  it('NXDOMAIN and NODATA carry the SOA in authority', async () => {
    const nx = await dig(at, 'nope.egress.svc', 'A');
    expect(nx.status).toBe('NXDOMAIN');
    expect(nx.flags).toContain('aa');
    expect(nx.authority).toEqual([
      'egress.svc. 5 IN SOA ns.egress.svc. hostmaster.egress.svc. 2026112501 3600 600 86400 5',
    ]);
    const nodata = await dig(at, 'proxy.egress.svc', 'AAAA');
    expect(nodata.status).toBe('NOERROR');
    expect(nodata.counts.answer).toBe(0);
    expect(nodata.authority).toHaveLength(1);
  });

  it('REFUSED out of the zone, for CHAOS and for the ". NS" check CoreDNS forward sends', async () => {
    expect((await dig(at, 'www.baidu.com', 'A')).status).toBe('REFUSED');
    expect((await dig(at, 'version.bind', 'CH', 'TXT')).status).toBe('REFUSED');
    const healthCheck = await dig(at, '.', 'NS', '+norec');
    expect(healthCheck.status).toBe('REFUSED');
    expect(healthCheck.flags).not.toContain('aa');
  });

  it('SERVFAIL for a service without a verdict', async () => {
    expect((await dig(at, 'pending.egress.svc', 'A')).status).toBe('SERVFAIL');
  });

  it('NOTIMP for another opcode, BADVERS for EDNS version 1', async () => {
    expect((await dig(at, 'egress.svc', 'SOA', '+opcode=notify')).status).toBe('NOTIMP');
    // An EDNS query gets an OPT back even when rejected (RFC 6891 6.1.1); without one, dig warns
    // "EDNS query returned status NOTIMP - retry with '+noedns'", as if EDNS were the fault.
    const notimp = await digRaw(at, ['proxy.egress.svc', 'A', '+opcode=status']);
    expect(notimp).toMatch(/status: NOTIMP/);
    expect(notimp).toMatch(/OPT PSEUDOSECTION:\n; EDNS: version: 0/);
    expect(notimp).not.toMatch(/retry with '\+noedns'/);
    const badvers = await dig(at, 'proxy.egress.svc', 'A', '+edns=1', '+noednsneg');
    expect(badvers.status).toBe('BADVERS');
    expect(badvers.edns).toMatch(/version: 0/);
  });

  it('echoes EDNS with our UDP size, and sends none without it', async () => {
    expect((await dig(at, 'proxy.egress.svc', 'A', '+bufsize=1232')).edns).toMatch(
      /version: 0, flags:; udp: 4096/,
    );
    const plain = await dig(at, 'proxy.egress.svc', 'A', '+noedns');
    expect(plain.edns).toBeUndefined();
    expect(plain.counts.additional).toBe(0);
  });
});

describe('size limits and TCP', () => {
  it('a pool of 40 addresses truncates over plain UDP (TC, no records)', async () => {
    const reply = await dig(at, 'big.egress.svc', 'A', '+noedns', '+ignore');
    expect(reply.flags).toContain('tc');
    expect(reply.counts.answer).toBe(0);
  });

  it('and comes whole over TCP and with EDNS 4096', async () => {
    const tcp = await dig(at, 'big.egress.svc', 'A', '+tcp');
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answer).toHaveLength(40);
    const edns = await dig(at, 'big.egress.svc', 'A', '+bufsize=4096');
    expect(edns.flags).not.toContain('tc');
    expect(edns.answer).toHaveLength(40);
  });

  it('_status over UDP is at most 512 bytes with TC whatever EDNS size dig offers; dig then gets it all over TCP', async () => {
    // About 1 KB of TXT for a 60-byte query: sent over UDP it would amplify a spoofed source.
    const udp = await digRaw(at, ['_status.many.egress.svc', 'TXT', '+bufsize=4096', '+ignore']);
    expect(parseDig(udp)[0]?.flags).toContain('tc');
    expect(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(udp)?.[1])).toBeLessThanOrEqual(512);
    const retried = await dig(at, '_status.many.egress.svc', 'TXT', '+bufsize=4096');
    expect(retried.flags).not.toContain('tc');
    expect(retried.answer).toHaveLength(12);
    expect(retried.raw).toMatch(/\(TCP\)/);
  });

  it('dig retries a truncated answer over TCP by itself and gets all 40', async () => {
    const reply = await dig(at, 'big.egress.svc', 'A', '+noedns');
    expect(reply.answer).toHaveLength(40);
  });

  it('answers several queries on one TCP connection (dig +keepopen)', async () => {
    const output = await digRaw(at, [
      '+tcp',
      '+keepopen',
      'proxy.egress.svc',
      'A',
      'egress.svc',
      'SOA',
      'nope.egress.svc',
    ]);
    expect(parseDig(output).map((r) => r.status)).toEqual(['NOERROR', 'NOERROR', 'NXDOMAIN']);
  });

  it('answers pipelined queries sent in one write, in order, on one connection', async () => {
    const replies = await tcpExchange(at, [
      query(1, 'proxy.egress.svc'),
      query(2, 'egress.svc', 6),
      query(3, 'x.egress.svc'),
    ]);
    expect(replies.map((r) => [r.readUInt16BE(0), (r[3] as number) & 0xf])).toEqual([
      [1, 0],
      [2, 0],
      [3, 3],
    ]);
  });

  it('closes an idle TCP connection after the idle timeout', async () => {
    const socket = net.connect(at.port, at.host);
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const started = Date.now();
      socket.on('close', () => resolve(Date.now() - started));
      socket.on('error', reject);
      socket.resume();
    });
    expect(closedAfter).toBeGreaterThanOrEqual(400);
    expect(closedAfter).toBeLessThan(5_000);
  });
});

describe('zone transfers', () => {
  it('refuses AXFR and IXFR over TCP: REFUSED, no records', async () => {
    const [axfr, ixfr] = await tcpExchange(at, [query(8, 'egress.svc', 252), query(9, 'egress.svc', 251)]);
    for (const reply of [axfr, ixfr]) {
      expect((reply?.[3] as number) & 0xf).toBe(5);
      expect([reply?.readUInt16BE(6), reply?.readUInt16BE(8)]).toEqual([0, 0]);
    }
  });
});

describe('TCP connection slots', () => {
  it('frees an idle connection whose client never closes its side, so others get in', async () => {
    const small = await DnsServer.start({
      listen: { host: '127.0.0.21', port: 0 },
      responder: new Responder(view),
      log: quiet,
      tcpIdleTimeoutMs: 200,
      maxTcpConnections: 2,
    });
    // allowHalfOpen: like a client that reads our FIN and keeps its own side open.
    const squatters = [0, 1].map(() => net.connect({ ...small.address, allowHalfOpen: true }));
    try {
      await Promise.all(squatters.map((s) => new Promise((resolve) => s.once('end', resolve).resume())));
      const replies = await waitFor(() => tcpExchange(small.address, [query(7, 'proxy.egress.svc')]), {
        what: 'a third client to be answered over TCP',
        timeoutMs: 3_000,
        intervalMs: 100,
      });
      expect(replies[0]?.readUInt16BE(0)).toBe(7);
    } finally {
      for (const s of squatters) s.destroy();
      await small.close();
    }
  });
});

describe('TCP slots under a hostile neighbour (RFC 7766 6.2)', () => {
  // Each test has its own server with the default limits (TCP_DEFAULTS), on a port of its own.
  const started: DnsServer[] = [];
  const fresh = async (options: Partial<Parameters<typeof DnsServer.start>[0]> = {}) => {
    const own = await DnsServer.start({
      listen: { host: '127.0.0.21', port: 0 },
      responder: new Responder(view),
      log: quiet,
      ...options,
    });
    started.push(own);
    return own;
  };
  const crowd: Crowd[] = [];
  afterEach(async () => {
    for (const c of crowd.splice(0)) c.stop();
    for (const own of started.splice(0)) await own.close();
  });

  /** Asks from a source no test crowds, and how long the answer took. */
  const timedAsk = async (server: DnsServer, id: number) => {
    const began = performance.now();
    const replies = await tcpExchange(server.address, [query(id, 'proxy.egress.svc')], '127.0.9.9');
    expect(replies[0]?.readUInt16BE(0)).toBe(id);
    return performance.now() - began;
  };

  it('a byte now and then does not keep a message alive: its deadline runs from its first byte', async () => {
    const own = await fresh({ tcpMessageDeadlineMs: 1_000, tcpIdleTimeoutMs: 5_000 });
    const socket = net.connect({ ...own.address, localAddress: '127.0.8.1' });
    socket.resume();
    socket.write(Buffer.from([0, 64]));
    const drip = setInterval(() => socket.write(Buffer.from([0])), 200);
    const closedAfter = await new Promise<number>((resolve) => {
      const began = Date.now();
      socket.on('close', () => resolve(Date.now() - began));
      socket.on('error', () => undefined);
    }).finally(() => clearInterval(drip));
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(2_500);
  });

  it('a new client is answered within 1 s while 1,000 connections drip one byte every 2 s', async () => {
    const own = await fresh();
    // 20 sources x 50: within the per-source limit, so only the global cap and deadlines act.
    const drippers = openCrowd(own.address, { sources: 20, perSource: 50, base: '127.0.1', drip: true });
    crowd.push(drippers);
    await waitFor(() => own.tcpConnections >= 1_000, {
      what: '1,000 dripping connections',
      timeoutMs: 20_000,
    });
    // Across more than one message deadline (3 s), as the drippers are cut off and reconnect.
    const until = Date.now() + 4_000;
    for (let id = 100; Date.now() < until; id++) {
      expect(await timedAsk(own, id)).toBeLessThan(1_000);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(drippers.reconnects()).toBeGreaterThan(0);
    expect(own.tcpConnections).toBeLessThanOrEqual(1_000);
  }, 60_000);

  it('a new client is answered within 1 s while 10,000 connections sit idle', async () => {
    const own = await fresh();
    // 100 sources x 100: each at the per-source limit, ten times the global cap altogether.
    const idlers = openCrowd(own.address, { sources: 100, perSource: 100, base: '127.0.2', drip: false });
    crowd.push(idlers);
    await waitFor(() => idlers.settled() >= 10_000, { what: '10,000 connections made', timeoutMs: 30_000 });
    expect(own.tcpConnections).toBe(1_000);
    for (let id = 200; id < 205; id++) expect(await timedAsk(own, id)).toBeLessThan(1_000);
    // The 9,000 that made room were closed, not just forgotten: their fds are free.
    await waitFor(() => idlers.settled() - idlers.closed() <= 1_000, { what: 'evicted connections closed' });
  }, 60_000);

  it('one source holds at most 100 connections; the next are refused, other sources still get in', async () => {
    const own = await fresh();
    const greedy = openCrowd(own.address, { sources: 1, perSource: 150, base: '127.0.3', drip: false });
    crowd.push(greedy);
    await waitFor(() => greedy.closed() === 50 && own.tcpConnections === 100, {
      what: '150 connections from one source settled',
    });
    expect(own.tcpConnections).toBe(100);
    // Closed at once, unanswered (a reset, if the query was already on its way).
    await expect(tcpExchange(own.address, [query(3, 'proxy.egress.svc')], '127.0.3.1')).rejects.toThrow(
      /closed after 0 replies|ECONNRESET/,
    );
    expect(await timedAsk(own, 301)).toBeLessThan(1_000);
  });
});

describe('bad input', () => {
  it('shrugs off tens of thousands of malformed datagrams, then answers at once', async () => {
    const socket = dgram.createSocket('udp4');
    const header65535 = Buffer.from([0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const loop = Buffer.concat([
      Buffer.from([0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]),
      Buffer.from([1, 0x61, 0, 0, 1, 0, 1, 0xc0, 0x1d, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]),
    ]);
    const longLabel = Buffer.concat([
      Buffer.from([0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64]),
      Buffer.alloc(64, 0x61),
    ]);
    const longName = Buffer.concat([
      Buffer.from([0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x62)])),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const fixed = [
      header65535,
      loop,
      longLabel,
      longName,
      Buffer.alloc(0),
      Buffer.alloc(5),
      Buffer.alloc(512, 0xff),
    ];
    for (let i = 0; i < 30_000; i++) {
      const packet =
        i % 3 === 0
          ? (fixed[i % fixed.length] as Buffer)
          : Buffer.from(Array.from({ length: random() % 300 }, () => random() & 0xff));
      socket.send(packet, at.port, at.host);
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    // The server drains what the kernel queued for it (bounded), then answers promptly. A query
    // sent while the queue is still full may be dropped by the kernel, as for any UDP server.
    await waitFor(async () => (await udpReceiveQueue(at)) === 0, {
      what: 'the flood drained',
      timeoutMs: 5_000,
    });
    // dig asks once (+tries=1, helpers/dig.ts): an answer means the first query after the flood
    // was answered, not lost to a server still busy with it or wedged by it.
    const reply = await dig(at, 'proxy.egress.svc', 'A');
    expect(reply.status).toBe('NOERROR');
  });

  it('answers FORMERR with the ID where a header can be read', async () => {
    const socket = dgram.createSocket('udp4');
    const reply = await new Promise<Buffer>((resolve) => {
      socket.once('message', resolve);
      socket.send(Buffer.from([0x12, 0x34, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0]), at.port, at.host);
    });
    socket.close();
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect((reply[3] as number) & 0xf).toBe(1);
  });

  it('survives malformed TCP streams and keeps serving TCP', async () => {
    const streams = [
      Buffer.from([0xff, 0xff, 1, 2, 3]), // a length it never completes
      Buffer.concat([
        Buffer.from([0, 12]),
        Buffer.from([0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      ]),
      Buffer.concat([Buffer.from([0, 3]), Buffer.from([1, 2, 3])]), // shorter than a header
      Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 37) & 0xff)),
    ];
    await Promise.all(
      streams.map(
        (bytes) =>
          new Promise<void>((resolve) => {
            const socket = net.connect(at.port, at.host, () => {
              socket.end(bytes);
            });
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.resume();
          }),
      ),
    );
    const replies = await tcpExchange(at, [query(9, 'proxy.egress.svc')]);
    expect(replies[0]?.readUInt16BE(0)).toBe(9);
  });

  it('ignores a datagram from source port 0 and keeps serving (it cannot be answered)', async () => {
    // A server of its own that reports each message it answers, so the datagrams are seen to
    // arrive and be answered (then dropped: a reply to port 0 cannot be sent), not lost on the way.
    const seen: { qtype: number | undefined; transport: string }[] = [];
    const warnings: unknown[] = [];
    const own = await DnsServer.start({
      listen: { host: '127.0.0.21', port: 0 },
      responder: new Responder(view),
      log: { debug() {}, warn: (obj) => warnings.push(obj) },
      onOutcome: (outcome, transport) => seen.push({ qtype: outcome.qtype, transport }),
    });
    try {
      // Only a raw socket can send from port 0: python3 as root, with the kernel adding the IP header.
      const payload = query(5, 'proxy.egress.svc', 16).toString('hex');
      const script = [
        'import socket,struct,sys',
        'p=bytes.fromhex(sys.argv[1]); port=int(sys.argv[2])',
        's=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_UDP)',
        "s.sendto(struct.pack('!HHHH',0,port,8+len(p),0)+p,(sys.argv[3],0))",
      ].join('\n');
      for (let i = 0; i < 3; i++)
        await promisify(execFile)('python3', [
          '-c',
          script,
          payload,
          String(own.address.port),
          own.address.host,
        ]);
      // Asked for TXT, so they cannot be confused with dig's A query below.
      await waitFor(() => seen.filter((s) => s.qtype === 16 && s.transport === 'udp').length === 3, {
        what: 'the three port-0 datagrams to reach the server',
        timeoutMs: 5_000,
      });
      expect((await dig(own.address, 'proxy.egress.svc', 'A')).status).toBe('NOERROR');
      expect(seen.filter((s) => s.qtype === 16)).toHaveLength(3);
      expect(warnings).toEqual([]);
    } finally {
      await own.close();
    }
  });
});

/** Bytes queued in the kernel for the server's UDP socket (/proc/net/udp's rx_queue). */
async function udpReceiveQueue(server: { host: string; port: number }): Promise<number> {
  const hexIp = server.host
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  const local = `${hexIp}:${server.port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/udp', 'utf8');
  const row = table.split('\n').find((line) => line.trim().split(/\s+/)[1] === local);
  if (!row) throw new Error(`no UDP socket ${local} in /proc/net/udp`);
  return Number.parseInt((row.trim().split(/\s+/)[4] ?? '0:0').split(':')[1] ?? '0', 16);
}
