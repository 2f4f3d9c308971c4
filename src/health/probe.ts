// Edge: one deep check round through a proxy (or directly), with undici; and the shallow "does the
// proxy answer HTTP at all" check. Decisions on the outcome are in verdict.ts.
//
// How requests travel (what Squid's access.log shows):
// - http:// targets: an absolute-form `GET http://host/path HTTP/1.1` sent to the proxy, never a
//   CONNECT tunnel, which a stock Squid refuses for port 80. This is what undici's
//   ProxyAgent({ proxyTunnel: false }) does for http targets too (its Http1ProxyWrapper).
// - https:// targets: `CONNECT host:443` to the proxy, then TLS to the target inside the tunnel.
//   ProxyAgent would do the same, but on a refused CONNECT it throws "Proxy response (503) !== 200"
//   and drops the response headers, losing X-Squid-Error; so the tunnel is opened here with
//   undici's Client#connect, which hands back status, headers and socket.
// - Proxy-Authorization (from user:pass in the proxy URL) goes to the proxy only, never into
//   the tunnel; reasons carry no URL, and redactUrl() is for anyone who logs one.
//
// State: none. Every round opens fresh connections and destroys them (and its one timer) before it
// returns, so a hung proxy cannot pin sockets across rounds and there is nothing to close. A fresh
// connection per round is also what a health check should measure: a pooled keep-alive socket
// would hide a proxy that no longer accepts connections. The cost is one TCP (+TLS) handshake per
// target per round, negligible at probe intervals of seconds.
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, rootCertificates, type SecureContext, connect as tlsConnect } from 'node:tls';
import { Client, type Dispatcher } from 'undici';
import { formatDuration } from '../config/duration.js';
import type { StatusRange } from '../config/schema.js';
import { type RoundResult, roundVerdict, type TargetResult } from './verdict.js';

export interface ProbeRoundOptions {
  /** Proxy URL, credentials allowed; undefined fetches the targets directly. */
  readonly proxy: string | undefined;
  readonly targets: readonly string[];
  readonly quorum: number;
  /** Per target, covering connect, tunnel, TLS, headers and body. */
  readonly timeoutMs: number;
  readonly expectStatus: readonly StatusRange[];
  /** Aborts the round early (shutdown); unfinished targets report "aborted". */
  readonly signal?: AbortSignal;
  /**
   * Extra CA certificates (PEM) trusted for https targets and https proxies, on top of Node's
   * bundled roots. NODE_EXTRA_CA_CERTS needs no option here; this is for in-process callers
   * (tests) that cannot set it before Node starts.
   */
  readonly ca?: readonly string[];
}

/** The most of a body a probe reads: enough to prove it flows, bounded against huge pages. */
const BODY_LIMIT_BYTES = 1024 * 1024;

/** One deep check round: every target once, concurrently, through `proxy` (or directly). */
export async function probeRound(options: ProbeRoundOptions): Promise<RoundResult> {
  const started = performance.now();
  const round = new RoundDeadline(options.timeoutMs, options.signal);
  try {
    const results = await Promise.all(options.targets.map((target) => probeTarget(target, options, round)));
    return roundVerdict(results, options.quorum, Math.round(performance.now() - started), Date.now());
  } finally {
    round.dispose();
  }
}

/** The shallow check: a TCP connection to the proxy and any HTTP status line within timeoutMs. */
export async function answersHttp(
  proxy: string,
  timeoutMs: number,
): Promise<{ ok: boolean; reason: string; latencyMs: number }> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    return { ok: false, reason: 'error=invalid_proxy_url', latencyMs: 0 };
  }
  const host = bareHost(url);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket =
      url.protocol === 'https:'
        ? // Nothing secret is sent and any answer counts: the proxy's certificate is not the question.
          tlsConnect({
            host,
            port,
            servername: serverName(host),
            ALPNProtocols: ['http/1.1'],
            rejectUnauthorized: false,
          })
        : netConnect({ host, port });
    const finish = (ok: boolean, reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, reason, latencyMs: latency() });
    };
    const timer = setTimeout(() => finish(false, `timeout=${formatDuration(timeoutMs)}`), timeoutMs);
    let head = '';
    socket.setNoDelay(true);
    // A request Squid answers itself without going upstream (400 Invalid URL on a forward proxy
    // port): cheap, needs no egress and no credentials, and any status line proves it serves HTTP.
    socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      socket.write(`GET / HTTP/1.0\r\nHost: ${url.host}\r\nUser-Agent: egress-failover\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (/^HTTP\/\d(?:\.\d)? \d{3}/.test(head)) finish(true, 'ok');
      else if (head.length >= 12 || head.includes('\n')) finish(false, 'error=not_http');
    });
    socket.once('end', () => finish(false, 'connection_closed'));
    socket.once('error', (err) => finish(false, errorReason(err, 'proxy', timeoutMs)));
  });
}

// ---- one target --------------------------------------------------------------------------------

type Phase = 'proxy' | 'tls' | 'direct';

/** Where an attempt is and what it holds, so a timeout can report the phase and free everything. */
class Attempt {
  phase: Phase = 'proxy';
  private readonly clients: Dispatcher[] = [];
  private readonly sockets: Socket[] = [];

  private destroyed = false;

  // The attempt may still be running when the deadline wins the race; whatever it acquires after
  // destroy() (a tunnel that opened a moment too late) is destroyed on arrival.
  client(client: Client): Client {
    this.clients.push(client);
    if (this.destroyed) client.destroy().catch(() => undefined);
    return client;
  }

  socket<S extends Socket>(socket: S): S {
    this.sockets.push(socket);
    if (this.destroyed) socket.destroy();
    return socket;
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.clients.map((c) => c.destroy().catch(() => undefined)));
  }
}

/** One timer per round; aborts every target's attempt at the deadline or on the caller's signal. */
class RoundDeadline {
  readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.controller.abort(new ProbeAborted('aborted'));
  private readonly expired: Promise<ProbeAborted>;

  constructor(
    readonly timeoutMs: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    this.expired = new Promise((resolve) => {
      this.controller.signal.addEventListener('abort', () => resolve(this.controller.signal.reason), {
        once: true,
      });
    });
    this.timer = setTimeout(
      () => this.controller.abort(new ProbeAborted(`timeout=${formatDuration(timeoutMs)}`)),
      timeoutMs,
    );
    if (outer?.aborted) this.onAbort();
    else outer?.addEventListener('abort', this.onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Settles when the round must stop, with the reason unfinished targets report. */
  get stopped(): Promise<ProbeAborted> {
    return this.expired;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onAbort);
  }
}

class ProbeAborted extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A CONNECT the proxy refused, with what it said. */
class TunnelRefused extends Error {
  constructor(
    readonly status: number,
    readonly squidError: string | undefined,
  ) {
    super(`CONNECT answered ${status}`);
  }
}

interface Answer {
  readonly status: number;
  readonly squidError: string | undefined;
}

async function probeTarget(
  target: string,
  options: ProbeRoundOptions,
  round: RoundDeadline,
): Promise<TargetResult> {
  const started = performance.now();
  const attempt = new Attempt();
  const result = (ok: boolean, reason: string, status?: number): TargetResult => ({
    target,
    ok,
    reason,
    ...(status === undefined ? {} : { status }),
    latencyMs: Math.round(performance.now() - started),
  });
  try {
    // undici settles a request whose connect is still pending only when that connect ends, so
    // the deadline is raced here rather than trusted to the signal alone; destroy() below then
    // ends whatever the attempt still holds.
    const outcome = await Promise.race([fetchStatus(target, options, round.signal, attempt), round.stopped]);
    if (outcome instanceof ProbeAborted) return result(false, outcome.reason);
    const verdict = judge(outcome, options.expectStatus);
    return result(verdict.ok, verdict.reason, outcome.status);
  } catch (err) {
    if (round.signal.aborted) return result(false, (round.signal.reason as ProbeAborted).reason);
    if (err instanceof TunnelRefused) {
      const verdict = judge(err, options.expectStatus, true);
      return result(false, verdict.reason, err.status);
    }
    return result(false, errorReason(err, attempt.phase, options.timeoutMs));
  } finally {
    await attempt.destroy();
  }
}

/** Fetches the target and returns its status once the body has been read (up to a limit). */
async function fetchStatus(
  target: string,
  options: ProbeRoundOptions,
  signal: AbortSignal,
  attempt: Attempt,
) {
  const url = new URL(target);
  const tls = tlsOptions(options.ca);
  const timeouts = { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs };
  const path = `${url.pathname}${url.search}`;
  let client: Client;
  let requestPath = path;
  let headers: Record<string, string> = {};

  if (options.proxy === undefined) {
    attempt.phase = 'direct';
    client = attempt.client(
      new Client(url.origin, { ...timeouts, connect: { ...tls, timeout: options.timeoutMs } }),
    );
  } else {
    const proxy = new URL(options.proxy);
    const proxyClient = attempt.client(
      new Client(proxy.origin, { ...timeouts, connect: { ...tls, timeout: options.timeoutMs } }),
    );
    const auth = proxyAuthorization(proxy);
    if (url.protocol === 'http:') {
      client = proxyClient;
      requestPath = `${url.origin}${path}`;
      headers = { ...auth };
    } else {
      const tunnel = await openTunnel(proxyClient, url, auth, signal, attempt);
      attempt.phase = 'tls';
      const socket = await handshake(tunnel, url, tls, attempt);
      attempt.phase = 'proxy';
      let handedOut = false;
      client = attempt.client(
        new Client(url.origin, {
          ...timeouts,
          // The tunnel is good for one connection: a reconnect must fail, not reuse it.
          // Called back on a later tick: undici's dispatch loop is not re-entrant, and a callback
          // from inside it leaves the queued request unsent.
          connect: (_opts, callback) => {
            const used = handedOut;
            handedOut = true;
            queueMicrotask(() =>
              used ? callback(new Error('tunnel already used'), null) : callback(null, socket),
            );
          },
        }),
      );
    }
  }

  const response = await client.request({
    method: 'GET',
    path: requestPath,
    headers: { host: url.host, 'user-agent': 'egress-failover', ...headers },
    signal,
    // Asks for Connection: close; the client is destroyed after the round anyway.
    reset: true,
  });
  let read = 0;
  for await (const chunk of response.body) {
    read += (chunk as Buffer).length;
    if (read >= BODY_LIMIT_BYTES) break;
  }
  return { status: response.statusCode, squidError: squidErrorOf(response.headers) };
}

async function openTunnel(
  proxyClient: Client,
  url: URL,
  auth: Record<string, string>,
  signal: AbortSignal,
  attempt: Attempt,
): Promise<Socket> {
  const authority = `${url.hostname}:${url.port || 443}`;
  const { statusCode, headers, socket } = await proxyClient.connect({
    path: authority,
    headers: { host: authority, 'user-agent': 'egress-failover', ...auth },
    signal,
  });
  attempt.socket(socket as Socket);
  if (statusCode !== 200) throw new TunnelRefused(statusCode, squidErrorOf(headers));
  return socket as Socket;
}

/** TLS to the target inside the tunnel; the round's deadline bounds it (attempt.destroy()). */
function handshake(tunnel: Socket, url: URL, tls: TlsOptions, attempt: Attempt): Promise<Socket> {
  const host = bareHost(url);
  return new Promise((resolve, reject) => {
    const socket = attempt.socket(
      tlsConnect({ ...tls, socket: tunnel, host, servername: serverName(host), ALPNProtocols: ['http/1.1'] }),
    );
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () =>
      reject(Object.assign(new Error('tunnel closed during TLS handshake'), { code: 'ECONNRESET' })),
    );
  });
}

// ---- outcome -> reason ------------------------------------------------------------------------

function judge(
  answer: Answer,
  expect: readonly StatusRange[],
  tunnel = false,
): { ok: boolean; reason: string } {
  // Squid's own error page (it could not reach upstream, or refused us) is a failure naming the
  // error, whatever the expected statuses; Squid sends X-Squid-Error only on pages it made.
  if (answer.squidError && answer.status >= 400) {
    return { ok: false, reason: `squid_error=${answer.squidError} status=${answer.status}` };
  }
  if (!tunnel && expect.some((range) => answer.status >= range.min && answer.status <= range.max)) {
    return { ok: true, reason: 'ok' };
  }
  return { ok: false, reason: `status=${answer.status}` };
}

function squidErrorOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['x-squid-error'];
  const first = (Array.isArray(value) ? value[0] : value)?.trim().split(/\s+/)[0];
  return first || undefined;
}

const UNDICI_TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_FAIL', 'EAI_NONAME']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** A stable, short reason for an error; never its message, which may carry a URL. */
function errorReason(err: unknown, phase: Phase, timeoutMs: number): string {
  const code = errorCode(err);
  // undici's own timers, set to the same timeout, may fire a moment before the round's.
  if (code !== undefined && UNDICI_TIMEOUTS.has(code)) return `timeout=${formatDuration(timeoutMs)}`;
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection_reset';
  if (code !== undefined && DNS_CODES.has(code))
    return phase === 'direct' ? 'dns_failure' : 'proxy_dns_failure';
  if (code !== undefined && TLS_CODE.test(code)) return `tls_error=${code}`;
  if (phase === 'tls') return `tls_error=${code ?? 'handshake'}`;
  // undici: the peer closed the connection before a complete response.
  if (code === 'UND_ERR_SOCKET') return 'connection_closed';
  return `error=${code ?? (err instanceof Error ? err.name : 'unknown')}`;
}

/** The most specific code along the error's cause chain (undici wraps socket errors). */
function errorCode(err: unknown): string | undefined {
  let found: string | undefined;
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') found = code;
    e = (e as { cause?: unknown }).cause;
  }
  return found;
}

// ---- small parts ------------------------------------------------------------------------------

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '' && proxy.password === '') return {};
  const user = decodeURIComponent(proxy.username);
  const password = decodeURIComponent(proxy.password);
  return { 'proxy-authorization': `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

type TlsOptions = { secureContext?: SecureContext };

// Building a context from Node's ~150 roots costs tens of ms of CPU; a handful of distinct CA sets
// exist per process, so each is built once.
const contexts = new Map<string, SecureContext>();

function tlsOptions(ca: readonly string[] | undefined): TlsOptions {
  if (!ca || ca.length === 0) return {};
  const key = ca.join('\n');
  let secureContext = contexts.get(key);
  if (!secureContext) {
    // Setting `ca` replaces Node's roots, so extra CAs are added to them, not given alone.
    secureContext = createSecureContext({ ca: [...rootCertificates, ...ca] });
    contexts.set(key, secureContext);
  }
  return { secureContext };
}

/** URL hostname without IPv6 brackets, as socket APIs want it. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** SNI is for names only (RFC 6066); an IP address gets none. */
function serverName(host: string): string | undefined {
  return /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host;
}
