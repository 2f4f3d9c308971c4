// Edge: one deep check round through a proxy (or directly), with node:http; and the shallow "does
// the proxy answer HTTP at all" check. Decisions on the outcome are in verdict.ts.
//
// How requests travel (what Squid's access.log shows):
// - http:// targets: an absolute-form `GET http://host/path HTTP/1.1` sent to the proxy, never a
//   CONNECT tunnel, which a stock Squid refuses for port 80 (undici's ProxyAgent with
//   proxyTunnel: false sends the same).
// - https:// targets: `CONNECT host:443` to the proxy, then TLS to the target inside the tunnel.
//   A refused CONNECT keeps its status and headers (node:http's 'connect' event hands both over),
//   so X-Squid-Error is reported, where undici's ProxyAgent would throw "Proxy response (503) !==
//   200" and drop the headers.
// - Proxy-Authorization (from user:pass in the proxy URL) goes to the proxy only, never into
//   the tunnel; reasons carry no URL, and redactUrl() is for anyone who logs one.
//
// State: none but cached TLS contexts. Every round opens fresh connections and destroys them (and
// its one timer) before it returns, so a hung proxy cannot pin sockets across rounds and there is
// nothing to close. A fresh connection per round is also what a health check should measure: a
// pooled keep-alive socket would hide a proxy that no longer accepts connections. The cost is one
// TCP (+TLS) handshake per target per round, negligible at probe intervals of seconds.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, rootCertificates, type SecureContext, connect as tlsConnect } from 'node:tls';
import { formatDuration } from '../config/duration.js';
import type { StatusRange } from '../config/schema.js';
import { request as httpRequest } from '../node-http.js';
import { bareHost } from '../url.js';
import { errorCode, isLocalErrorCode, LOCAL_ERROR_PREFIX } from './error-reason.js';
import { type RoundResult, roundVerdict, type TargetResult } from './round.js';

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

/**
 * The DNS server's round of a pool: the deep check, and beside it the shallow one, so that a failing
 * round also says whether the proxy itself answers. A target's status line is such an answer (an
 * error page is the proxy's own); when every target timed out or failed before one, the shallow
 * check tells a hung or dead proxy from a proxy waiting on an outside site that does not answer.
 * Running both at once costs one small request per round and no time: a hung proxy is judged
 * within the same `timeout`.
 */
export async function deepRound(
  options: ProbeRoundOptions & { readonly proxy: string },
): Promise<RoundResult> {
  const [round, shallow] = await Promise.all([
    probeRound(options),
    answersHttp(options.proxy, options.timeoutMs),
  ]);
  const proxyAnswers = shallow.ok || round.targets.some((target) => target.status !== undefined);
  return { ...round, proxyAnswers };
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
    socket.once('error', (err) => finish(false, errorReason(err, 'proxy')));
  });
}

// ---- one target --------------------------------------------------------------------------------

type Phase = 'proxy' | 'tls' | 'direct';

/** Where an attempt is and what it holds, so a timeout can report the phase and free everything. */
class Attempt {
  phase: Phase = 'proxy';
  readonly #held: { destroy(): unknown }[] = [];
  #destroyed = false;

  // The attempt may still be running when the deadline wins the race; whatever it acquires after
  // destroy() (a tunnel that opened a moment too late) is destroyed on arrival. Errors a destroyed
  // socket or request emits later go to a no-op listener rather than crash the process.
  hold<T extends { destroy(): unknown; on(event: 'error', listener: () => void): unknown }>(thing: T): T {
    thing.on('error', ignore);
    this.#held.push(thing);
    if (this.#destroyed) thing.destroy();
    return thing;
  }

  destroy(): void {
    this.#destroyed = true;
    for (const thing of this.#held) thing.destroy();
  }
}

const ignore = () => undefined;

/** One timer per round; aborts every target's attempt at the deadline or on the caller's signal. */
class RoundDeadline {
  readonly controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #onAbort = () => this.controller.abort(new ProbeAborted('aborted'));
  readonly #expired: Promise<ProbeAborted>;
  readonly #outer: AbortSignal | undefined;

  /** `shownMs`: the timeout reasons name, where part of it was spent before the round began. */
  constructor(
    readonly timeoutMs: number,
    outer: AbortSignal | undefined,
    shownMs = timeoutMs,
  ) {
    this.#outer = outer;
    this.#expired = new Promise((resolve) => {
      this.controller.signal.addEventListener('abort', () => resolve(this.controller.signal.reason), {
        once: true,
      });
    });
    this.#timer = setTimeout(
      () => this.controller.abort(new ProbeAborted(`timeout=${formatDuration(shownMs)}`)),
      timeoutMs,
    );
    if (outer?.aborted) this.#onAbort();
    else outer?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Settles when the round must stop, with the reason unfinished targets report. */
  get stopped(): Promise<ProbeAborted> {
    return this.#expired;
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#outer?.removeEventListener('abort', this.#onAbort);
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

interface StatusReply {
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
    // The round's one timer bounds every phase (connect, CONNECT, TLS, headers, body): the fetch is
    // raced against it, and destroy() below then ends whatever the attempt still holds.
    const outcome = await Promise.race([fetchStatus(target, options, attempt), round.stopped]);
    if (outcome instanceof ProbeAborted) return result(false, outcome.reason);
    const verdict = judge(outcome, options.expectStatus);
    return result(verdict.ok, verdict.reason, outcome.status);
  } catch (err) {
    if (round.signal.aborted) return result(false, (round.signal.reason as ProbeAborted).reason);
    if (err instanceof TunnelRefused) {
      const verdict = judge(err, options.expectStatus, true);
      return result(false, verdict.reason, err.status);
    }
    return result(false, errorReason(err, attempt.phase));
  } finally {
    attempt.destroy();
  }
}

// Requests go out on node:http with a connection opened here for each one (`createConnection`, no
// Agent, `Connection: close`), so no socket outlives its round or is shared between rounds. node:http
// parses with the llhttp built into Node; undici, used before, compiled its own llhttp to WebAssembly
// in every process that probes, which cost about 40 MB of RSS, and a fresh undici Client per target
// per round cost about twice the CPU of a ClientRequest (bench/README.md, "Probe loop").

/** Fetches the target and returns its status once the body has been read (up to a limit). */
async function fetchStatus(
  target: string,
  options: ProbeRoundOptions,
  attempt: Attempt,
): Promise<StatusReply> {
  const url = new URL(target);
  const path = `${url.pathname}${url.search}`;
  const headers: OutgoingHttpHeaders = {
    host: url.host,
    'user-agent': 'egress-failover',
    connection: 'close',
  };

  if (options.proxy === undefined) {
    attempt.phase = 'direct';
    return get(attempt.hold(open(url, options.ca)), path, headers, attempt);
  }
  const proxy = new URL(options.proxy);
  const auth = proxyAuthorization(proxy);
  if (url.protocol === 'http:') {
    return get(
      attempt.hold(open(proxy, options.ca)),
      `${url.origin}${path}`,
      { ...headers, ...auth },
      attempt,
    );
  }
  const tunnel = await openTunnel(attempt.hold(open(proxy, options.ca)), url, auth, attempt);
  attempt.phase = 'tls';
  const socket = await handshake(tunnel, url, options.ca, attempt);
  attempt.phase = 'proxy';
  return get(socket, path, headers, attempt);
}

/** A new connection to `to`: TCP for http:, TLS for https: (Node's roots plus `ca`). */
function open(to: URL, ca: readonly string[] | undefined): Socket {
  const host = bareHost(to);
  if (to.protocol === 'https:') {
    return tlsConnect({
      ...tlsOptions(ca),
      host,
      port: Number(to.port) || 443,
      servername: serverName(host),
      ALPNProtocols: ['http/1.1'],
    });
  }
  return netConnect({ host, port: Number(to.port) || 80 });
}

/**
 * GET `path` on `socket`; the status and X-Squid-Error once the body has been read (up to a limit).
 * `onBody` sees the body's chunks, for callers that read what it says.
 */
function get(
  socket: Socket,
  path: string,
  headers: OutgoingHttpHeaders,
  attempt: Attempt,
  onBody?: (chunk: Buffer) => void,
): Promise<StatusReply> {
  return new Promise((resolve, reject) => {
    const request = attempt.hold(
      httpRequest({ method: 'GET', path, headers, createConnection: () => socket }),
    );
    request.once('error', reject);
    request.once('response', (response: IncomingMessage) => {
      const answer = { status: response.statusCode ?? 0, squidError: squidErrorOf(response.headers) };
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        onBody?.(chunk);
        read += chunk.length;
        if (read >= BODY_LIMIT_BYTES) resolve(answer);
      });
      response.once('end', () => resolve(answer));
      // The peer closed the connection before the whole body ('aborted', ECONNRESET).
      response.once('error', reject);
    });
    request.end();
  });
}

/** CONNECT host:port on `proxySocket`; the tunnel's socket, or TunnelRefused with what Squid said. */
function openTunnel(
  proxySocket: Socket,
  url: URL,
  auth: OutgoingHttpHeaders,
  attempt: Attempt,
): Promise<Socket> {
  const authority = `${url.hostname}:${url.port || 443}`;
  return new Promise((resolve, reject) => {
    const request = attempt.hold(
      httpRequest({
        method: 'CONNECT',
        path: authority,
        headers: { host: authority, 'user-agent': 'egress-failover', ...auth },
        createConnection: () => proxySocket,
      }),
    );
    request.once('error', reject);
    // node:http hands every answer to a CONNECT here, refusals included, with their headers.
    request.once('connect', (response: IncomingMessage, socket: Socket, head: Buffer) => {
      attempt.hold(socket);
      if (response.statusCode !== 200) {
        reject(new TunnelRefused(response.statusCode ?? 0, squidErrorOf(response.headers)));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    request.end();
  });
}

/** TLS to the target inside the tunnel; the round's deadline bounds it (attempt.destroy()). */
function handshake(
  tunnel: Socket,
  url: URL,
  ca: readonly string[] | undefined,
  attempt: Attempt,
): Promise<Socket> {
  const host = bareHost(url);
  return new Promise((resolve, reject) => {
    const socket = attempt.hold(
      tlsConnect({
        ...tlsOptions(ca),
        socket: tunnel,
        host,
        servername: serverName(host),
        ALPNProtocols: ['http/1.1'],
      }),
    );
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () =>
      reject(Object.assign(new Error('tunnel closed during TLS handshake'), { code: 'ECONNRESET' })),
    );
  });
}

// ---- one URL from each address of its host ---------------------------------------------------

/** What one address answered: its status and body, or the reason it did not answer. */
export interface AddressAnswer {
  readonly address: string;
  readonly status?: number;
  /** Up to `bodyLimitBytes`, as UTF-8. */
  readonly body?: string;
  /** "ok" once a response was read; else "timeout=1s", "connection_refused", ... */
  readonly reason: string;
  readonly latencyMs: number;
}

/**
 * A plain GET of `url` from every one of `addresses` at once, each on a fresh connection to that
 * address with the URL's own Host header (as a client of a headless Service reaches each pod), all
 * within what is left of one `timeoutMs` once `spentMs` (a lookup, say) is taken from it. The same
 * deadline, socket bookkeeping and reasons as a deep-check target.
 */
export async function getFromEach(
  url: string,
  addresses: readonly string[],
  timeoutMs: number,
  {
    signal,
    spentMs = 0,
    bodyLimitBytes = 64 * 1024,
  }: {
    readonly signal?: AbortSignal | undefined;
    readonly spentMs?: number;
    readonly bodyLimitBytes?: number;
  } = {},
): Promise<AddressAnswer[]> {
  const target = new URL(url);
  const headers: OutgoingHttpHeaders = {
    host: target.host,
    'user-agent': 'egress-failover',
    connection: 'close',
  };
  const round = new RoundDeadline(Math.max(1, Math.round(timeoutMs - spentMs)), signal, timeoutMs);
  const one = async (address: string): Promise<AddressAnswer> => {
    const started = performance.now();
    const attempt = new Attempt();
    attempt.phase = 'direct';
    const answer = (fields: Omit<AddressAnswer, 'address' | 'latencyMs'>): AddressAnswer => ({
      address,
      ...fields,
      latencyMs: Math.round(performance.now() - started),
    });
    const chunks: Buffer[] = [];
    let kept = 0;
    const keep = (chunk: Buffer) => {
      if (kept >= bodyLimitBytes) return;
      chunks.push(chunk);
      kept += chunk.length;
    };
    try {
      const socket = attempt.hold(netConnect({ host: address, port: Number(target.port) || 80 }));
      const path = `${target.pathname}${target.search}`;
      const outcome = await Promise.race([get(socket, path, headers, attempt, keep), round.stopped]);
      if (outcome instanceof ProbeAborted) return answer({ reason: outcome.reason });
      const body = Buffer.concat(chunks).subarray(0, bodyLimitBytes).toString('utf8');
      return answer({ status: outcome.status, body, reason: 'ok' });
    } catch (err) {
      if (round.signal.aborted) return answer({ reason: (round.signal.reason as ProbeAborted).reason });
      return answer({ reason: errorReason(err, attempt.phase) });
    } finally {
      attempt.destroy();
    }
  };
  try {
    return await Promise.all(addresses.map(one));
  } finally {
    round.dispose();
  }
}

// ---- outcome -> reason ------------------------------------------------------------------------

function judge(
  answer: StatusReply,
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

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_FAIL', 'EAI_NONAME']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** A stable, short reason for an error; never its message, which may carry a URL. */
function errorReason(err: unknown, phase: Phase): string {
  const code = errorCode(err);
  // Out of descriptors, buffers or ports here: nothing was learnt about the proxy or the target.
  if (isLocalErrorCode(code)) return `${LOCAL_ERROR_PREFIX}${code}`;
  if (code === 'ECONNREFUSED') return 'connection_refused';
  // node:http: the peer closed the connection (a FIN, not a reset) before a complete response;
  // "socket hang up" before the headers, "aborted" during the body. Neither has a syscall.
  if (isPrematureClose(err)) return 'connection_closed';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection_reset';
  if (code !== undefined && DNS_CODES.has(code))
    return phase === 'direct' ? 'dns_failure' : 'proxy_dns_failure';
  if (code !== undefined && TLS_CODE.test(code)) return `tls_error=${code}`;
  if (phase === 'tls') return `tls_error=${code ?? 'handshake'}`;
  return `error=${code ?? (err instanceof Error ? err.name : 'unknown')}`;
}

function isPrematureClose(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as NodeJS.ErrnoException;
  return (
    code === 'ECONNRESET' &&
    syscall === undefined &&
    (err.message === 'socket hang up' || err.message === 'aborted')
  );
}

// ---- small parts ------------------------------------------------------------------------------

function proxyAuthorization(proxy: URL): OutgoingHttpHeaders {
  if (proxy.username === '' && proxy.password === '') return {};
  const user = decodeURIComponent(proxy.username);
  const password = decodeURIComponent(proxy.password);
  return { 'proxy-authorization': `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

// tls.connect() without a context builds one per connection; a handful of distinct CA sets exist
// per process (Node's roots with NODE_EXTRA_CA_CERTS, and any `ca` an in-process caller gives), and
// building one from Node's ~150 roots costs tens of ms of CPU, so each is built once.
const contexts = new Map<string, SecureContext>();

function tlsOptions(ca: readonly string[] | undefined): { secureContext: SecureContext } {
  const key = ca?.join('\n') ?? '';
  let secureContext = contexts.get(key);
  if (!secureContext) {
    // Setting `ca` replaces Node's roots, so extra CAs are added to them, not given alone.
    secureContext = createSecureContext(key === '' ? {} : { ca: [...rootCertificates, ...(ca ?? [])] });
    contexts.set(key, secureContext);
  }
  return { secureContext };
}

/** SNI is for names only (RFC 6066); an IP address gets none. */
function serverName(host: string): string | undefined {
  return /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host;
}
