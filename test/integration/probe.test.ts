// The deep check against real Squids (apt squid 5.7) and real loopback origins: what an operator
// reads as the reason for each fault, and that a hung proxy costs at most the timeout and leaks
// nothing. Addresses: origin 127.0.0.10:80, squids 127.0.0.11-13:3128, TLS origin 127.0.0.13:443.
import { readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusRange } from '../../src/config/schema.js';
import { answersHttp, probeRound } from '../../src/health/probe.js';
import { redactUrl } from '../../src/redact.js';
import { type Origin, startOrigin, startTlsOrigin, type TlsOrigin } from '../helpers/origin.js';
import type { Squid, SquidFleet } from '../helpers/squid.js';
import { startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const OK: readonly StatusRange[] = [{ min: 200, max: 399 }];
const USER = 'probe';
const PASSWORD = 'Sup3r-s3cret@pw';
const SLACK_MS = 400;

let origin: Origin;
let tlsOrigin: TlsOrigin;
let fleet: SquidFleet | undefined;
let healthy: Squid;
let faulty: Squid;
let authed: Squid;

beforeAll(async () => {
  [origin, tlsOrigin] = await Promise.all([startOrigin(), startTlsOrigin()]);
  fleet = await startSquids(
    [
      { label: 'healthy', host: '127.0.0.11' },
      { label: 'faulty', host: '127.0.0.12' },
      { label: 'authed', host: '127.0.0.13', auth: { user: USER, password: PASSWORD } },
    ],
    { probeUrl: 'http://origin.test/' },
  );
  [healthy, faulty, authed] = fleet.squids as [Squid, Squid, Squid];
});

afterAll(async () => {
  await fleet?.stopAll();
  await Promise.allSettled([origin?.close(), tlsOrigin?.close()]);
});

const round = (
  proxy: string | undefined,
  targets: string[],
  extra: { quorum?: number; timeoutMs?: number } = {},
) =>
  probeRound({
    proxy,
    targets,
    quorum: extra.quorum ?? 1,
    timeoutMs: extra.timeoutMs ?? 1_000,
    expectStatus: OK,
    ca: [tlsOrigin.caPem],
  });

const openFds = () => readdirSync('/proc/self/fd').length;
/** Sockets and timers keeping the event loop alive, by kind (TCPSocketWrap, Timeout, ...). */
const activeHandles = () => process.getActiveResourcesInfo().filter((kind) => kind !== 'FSReqCallback');

describe('probeRound through a healthy squid', () => {
  it('passes with reason ok, sending http targets as an absolute-form GET', async () => {
    const result = await round(healthy.proxyUrl, ['http://origin.test/healthz']);
    expect(result).toMatchObject({ ok: true, reason: 'ok' });
    expect(result.targets[0]).toMatchObject({ ok: true, reason: 'ok', status: 200 });
    await waitFor(async () => (await healthy.accessLog()).includes('GET http://origin.test/healthz'), {
      timeoutMs: 5_000,
      what: 'the absolute-form GET in access.log',
    });
    expect(await healthy.accessLog()).not.toContain('CONNECT origin.test:80');
  });

  it('passes an https target through a CONNECT tunnel', async () => {
    const result = await round(healthy.proxyUrl, [tlsOrigin.url]);
    expect(result.targets[0]).toMatchObject({ ok: true, reason: 'ok', status: 200 });
    await waitFor(async () => (await healthy.accessLog()).includes('CONNECT tls.origin.test:443'), {
      timeoutMs: 5_000,
      what: 'the CONNECT in access.log',
    });
  });

  it('reports a certificate it cannot verify as tls_error=<code>', async () => {
    const result = await probeRound({
      proxy: healthy.proxyUrl,
      targets: [tlsOrigin.url],
      quorum: 1,
      timeoutMs: 1_000,
      expectStatus: OK,
    });
    expect(result.ok).toBe(false);
    expect(result.targets[0]?.reason).toBe('tls_error=UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('fails with status=500 when the origin answers 500', async () => {
    origin.status(500);
    try {
      const result = await round(healthy.proxyUrl, ['http://origin.test/']);
      expect(result).toMatchObject({ ok: false, reason: 'status=500 target=http://origin.test/' });
      expect(result.targets[0]).toMatchObject({ reason: 'status=500', status: 500 });
    } finally {
      origin.ok();
    }
  });

  it('applies the quorum: one of two targets failing passes quorum 1 and fails quorum 2', async () => {
    const targets = ['http://origin.test/', 'http://origin.test/status/500'];
    const one = await round(healthy.proxyUrl, targets, { quorum: 1 });
    expect(one).toMatchObject({ ok: true, reason: 'ok' });
    const two = await round(healthy.proxyUrl, targets, { quorum: 2 });
    expect(two.ok).toBe(false);
    expect(two.reason).toBe('status=500 target=http://origin.test/status/500 passed=1/2 quorum=2');
  });

  it('times out on a hung origin within the timeout', async () => {
    origin.hang();
    try {
      const result = await round(healthy.proxyUrl, ['http://origin.test/'], { timeoutMs: 300 });
      expect(result.targets[0]?.reason).toBe('timeout=300ms');
      expect(result.latencyMs).toBeLessThan(300 + SLACK_MS);
    } finally {
      origin.ok();
    }
  });
});

describe('probeRound directly (no proxy)', () => {
  it('fetches http and https origins in origin-form', async () => {
    const before = origin.requests.length;
    const tlsBefore = tlsOrigin.requests.length;
    const result = await round(undefined, [origin.addressUrl, tlsOrigin.addressUrl]);
    expect(result).toMatchObject({ ok: true, reason: 'ok' });
    // Each request line as the origin read it: "GET / HTTP/1.1", not "GET http://host/ ...".
    for (const [what, requests] of [
      ['http', origin.requests.slice(before)],
      ['https', tlsOrigin.requests.slice(tlsBefore)],
    ] as const) {
      expect(
        requests.map((r) => `${r.method} ${r.url}`),
        what,
      ).toEqual(['GET /']);
    }
  });

  it('reports a reset from the origin as connection_reset', async () => {
    origin.reset();
    try {
      const result = await round(undefined, [origin.addressUrl]);
      expect(result.targets[0]?.reason).toBe('connection_reset');
    } finally {
      origin.ok();
    }
  });
});

describe('probeRound with proxy credentials', () => {
  it('authenticates to a squid requiring basic auth', async () => {
    const result = await round(authed.proxyUrl, ['http://origin.test/', tlsOrigin.url]);
    expect(result).toMatchObject({ ok: true, reason: 'ok' });
  });

  it('fails with status=407 and never shows the password', async () => {
    const wrong = authed.proxyUrl.replace(encodeURIComponent(PASSWORD), 'wrong-Passw0rd');
    const withoutAuth = authed.address;
    for (const proxy of [wrong, withoutAuth]) {
      const result = await round(proxy, ['http://origin.test/', tlsOrigin.url], { quorum: 2 });
      expect(result.ok).toBe(false);
      for (const target of result.targets) expect(target.reason).toMatch(/status=407/);
      expect(JSON.stringify(result)).not.toMatch(/Passw0rd|Sup3r|s3cret/);
    }
  });

  it('sends Proxy-Authorization to the proxy (an origin acting as one)', async () => {
    const before = origin.requests.length;
    const proxy = `http://${USER}:${encodeURIComponent(PASSWORD)}@${origin.host}:${origin.port}`;
    const result = await round(proxy, ['http://origin.test/via-fake-proxy']);
    expect(result).toMatchObject({ ok: true, reason: 'ok' });
    const seen = origin.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.url).toBe('http://origin.test/via-fake-proxy');
    expect(seen[0]?.headers['proxy-authorization']).toBe(
      `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`,
    );
    expect(JSON.stringify(result)).not.toContain('s3cret');
  });

  it('redactUrl hides user and password', () => {
    expect(redactUrl('http://user:pa:ss@word@proxy.example:3128/x')).toBe('http://***@proxy.example:3128/x');
    expect(redactUrl('http://user@proxy:3128')).toBe('http://***@proxy:3128');
    expect(redactUrl('http://proxy:3128/a@b')).toBe('http://proxy:3128/a@b');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});

describe('probeRound through a failing squid', () => {
  it('names ERR_CONNECT_FAIL when the squid has no egress (http and https)', async () => {
    await faulty.cutEgress();
    try {
      const result = await round(faulty.proxyUrl, ['http://origin.test/', tlsOrigin.url], { quorum: 1 });
      expect(result.ok).toBe(false);
      expect(result.targets.map((t) => t.reason)).toEqual([
        'squid_error=ERR_CONNECT_FAIL status=503',
        'squid_error=ERR_CONNECT_FAIL status=503',
      ]);
      const shallow = await answersHttp(faulty.proxyUrl, 1_000);
      expect(shallow).toMatchObject({ ok: true, reason: 'ok' });
    } finally {
      await faulty.restoreEgress();
    }
  });

  it('names the squid error of a dead parent (502)', async () => {
    await faulty.deadParent();
    try {
      const result = await round(faulty.proxyUrl, ['http://origin.test/']);
      expect(result.ok).toBe(false);
      expect(result.targets[0]?.reason).toMatch(/^squid_error=ERR_[A-Z_]+ status=502$/);
    } finally {
      await faulty.restoreEgress();
    }
  });

  it('reports a killed squid as connection_refused', async () => {
    await faulty.kill();
    try {
      const result = await round(faulty.proxyUrl, ['http://origin.test/', tlsOrigin.url]);
      expect(result.targets.map((t) => t.reason)).toEqual(['connection_refused', 'connection_refused']);
      expect(await answersHttp(faulty.proxyUrl, 1_000)).toMatchObject({
        ok: false,
        reason: 'connection_refused',
      });
    } finally {
      await faulty.restart();
    }
  });

  it('costs at most the timeout when the squid is hung (SIGSTOP), and leaks no sockets', async () => {
    const timeoutMs = 250;
    // Warm up lazily loaded modules so they do not count as growth.
    await round(faulty.proxyUrl, ['http://origin.test/', tlsOrigin.url]);
    faulty.stop();
    try {
      const fdsBefore = openFds();
      const handlesBefore = activeHandles();
      for (let i = 0; i < 15; i++) {
        const started = performance.now();
        const result = await round(faulty.proxyUrl, ['http://origin.test/', tlsOrigin.url], { timeoutMs });
        const elapsed = performance.now() - started;
        expect(result.ok).toBe(false);
        expect(result.targets.map((t) => t.reason)).toEqual(['timeout=250ms', 'timeout=250ms']);
        expect(elapsed).toBeLessThan(timeoutMs + SLACK_MS);
      }
      const shallowStarted = performance.now();
      const shallow = await answersHttp(faulty.proxyUrl, timeoutMs);
      expect(shallow).toMatchObject({ ok: false, reason: 'timeout=250ms' });
      expect(performance.now() - shallowStarted).toBeLessThan(timeoutMs + SLACK_MS);
      // Sockets are closed when the round returns; allow the event loop a moment to release them.
      await waitFor(() => openFds() <= fdsBefore + 2, { timeoutMs: 2_000, what: 'fds back to their count' });
      await waitFor(() => activeHandles().length <= handlesBefore.length + 2, {
        timeoutMs: 2_000,
        what: `active handles back to ${handlesBefore.join(',')} (now ${activeHandles().join(',')})`,
      });
    } finally {
      faulty.cont();
    }
    const after = await round(faulty.proxyUrl, ['http://origin.test/']);
    expect(after).toMatchObject({ ok: true, reason: 'ok' });
  });
});

describe('probeRound cancellation', () => {
  it('ends a round at once when the caller aborts, reporting aborted', async () => {
    origin.hang();
    try {
      const before = origin.requests.length;
      const controller = new AbortController();
      const started = performance.now();
      const pending = probeRound({
        proxy: healthy.proxyUrl,
        targets: ['http://origin.test/'],
        quorum: 1,
        timeoutMs: 5_000,
        expectStatus: OK,
        signal: controller.signal,
      });
      await waitFor(() => origin.requests.length > before, {
        timeoutMs: 2_000,
        what: 'the request at the origin',
      });
      controller.abort();
      const result = await pending;
      expect(result.targets[0]?.reason).toBe('aborted');
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      origin.ok();
    }
  });
});

describe('answersHttp', () => {
  it('is ok for a healthy squid', async () => {
    const result = await answersHttp(healthy.proxyUrl, 1_000);
    expect(result).toMatchObject({ ok: true, reason: 'ok' });
  });

  it('is ok for a squid requiring auth, without sending credentials', async () => {
    expect(await answersHttp(authed.address, 1_000)).toMatchObject({ ok: true, reason: 'ok' });
  });
});

describe('a proxy that is not a working HTTP proxy', () => {
  // Raw TCP servers on 127.0.0.19 stand in for a broken proxy: one hangs up at once, one speaks
  // something that is not HTTP.
  const servers: Server[] = [];
  const listen = (port: number, onConnection: (socket: Socket) => void) =>
    new Promise<void>((resolve) => {
      const server = createServer(onConnection);
      servers.push(server);
      server.listen(port, '127.0.0.19', resolve);
    });
  beforeAll(async () => {
    await listen(3128, (socket) => socket.end());
    await listen(3129, (socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'));
  });
  afterAll(() => {
    for (const server of servers) server.close();
  });
  const through = (proxy: string) =>
    probeRound({ proxy, targets: ['http://origin.test/'], quorum: 1, timeoutMs: 1_000, expectStatus: OK });

  it('names a proxy that hangs up without answering connection_closed', async () => {
    expect((await through('http://127.0.0.19:3128')).targets[0]?.reason).toBe('connection_closed');
  });

  it('names an answer that is not HTTP by the parser error', async () => {
    expect((await through('http://127.0.0.19:3129')).targets[0]?.reason).toMatch(/^error=HPE_[A-Z_]+$/);
  });
});
