// Real clients of the egress proxy, each the way a kind of application talks to it, for the
// time-to-shift test and benchmark. Every client resolves the proxy's name through the given
// resolver (the caching Unbound standing in for CoreDNS) and sends a request every `pauseMs`,
// recording each: when it ended, through which proxy (the address it was connected to), and how.
// Independent of vitest so bench scripts can import it.
//
//   const client = startClient('node-keepalive', setup);
//   ... inject a fault ...
//   const through = await waitFor(() => firstThrough(client, SECONDARY, faultAt), { ... });
//   await client.stop();
//
// Kinds:
//   curl              a new connection per request (dig, then curl -x the answer)
//   node-keepalive    http.Agent({ keepAlive: true }): resolves (through `lookup`) per new socket only
//   python-keepalive  an http.client connection kept open (kept-client.py http)
//   https-tunnel      one CONNECT tunnel kept open, HTTPS requests inside it (kept-client.py tunnel)
//   dns-cache-30s     a JVM with its default networkaddress.cache.ttl: the answer is kept 30 s
//                     whatever its TTL, a new connection per request (simulated with dig and curl)
import { execFile } from 'node:child_process';
import type { LookupAddress } from 'node:dns';
import { Agent, request } from 'node:http';
import { isIPv4 } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { digShort } from './dig.js';
import { endGroup, spawnGroup } from './process.js';

const run = promisify(execFile);
const KEPT_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'kept-client.py');

export const CLIENT_KINDS = [
  'curl',
  'node-keepalive',
  'python-keepalive',
  'https-tunnel',
  'dns-cache-30s',
] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** How long the simulated JVM keeps an answer: networkaddress.cache.ttl's default. */
export const JVM_DNS_CACHE_MS = 30_000;

export interface Attempt {
  /** When the request ended (ms since the epoch). */
  readonly at: number;
  /** 200 from the origin. */
  readonly ok: boolean;
  /** The proxy address the request was sent to. */
  readonly proxy?: string;
  readonly status?: number;
  /** X-Squid-Error's first token, when Squid answered with its own error page. */
  readonly squidError?: string;
  /** The proxy announced it closes the connection after this reply. */
  readonly closed?: boolean;
  /** The request opened a new connection (and resolved the name for it). */
  readonly fresh?: boolean;
  readonly error?: string;
}

export interface ClientSetup {
  /** The caching resolver the clients ask. */
  readonly resolver: { readonly host: string; readonly port: number };
  /** The proxy's name, e.g. proxy.egress.svc. */
  readonly proxyName: string;
  readonly proxyPort: number;
  /** Fetched by the plain-HTTP clients, e.g. http://origin.test/. */
  readonly httpUrl: string;
  /** Fetched through the tunnel, e.g. https://tls.origin.test/. */
  readonly httpsUrl: string;
  /** The CA that signed the HTTPS origin's certificate. */
  readonly caPath: string;
  /** Each client's own request timeout: what a hung proxy costs it per attempt. */
  readonly timeoutMs: number;
  /** Between requests. */
  readonly pauseMs: number;
}

export interface Client {
  readonly kind: ClientKind;
  /** Every request so far, in order. */
  readonly attempts: readonly Attempt[];
  /** Ends the client (its process, its sockets); resolves once no request is in flight. */
  stop(): Promise<void>;
}

/** The first request that got a 200 through `proxy` and ended after `since`. */
export function firstThrough(client: Client, proxy: string, since: number): Attempt | undefined {
  return client.attempts.find((a) => a.at > since && a.ok && a.proxy === proxy);
}

export function startClient(kind: ClientKind, setup: ClientSetup): Client {
  switch (kind) {
    case 'curl':
      return loop(kind, setup, curlAttempt(setup, 0));
    case 'dns-cache-30s':
      return loop(kind, setup, curlAttempt(setup, JVM_DNS_CACHE_MS));
    case 'node-keepalive':
      return nodeKeepAlive(setup);
    case 'python-keepalive':
      return keptClient(kind, setup, ['http', setup.httpUrl]);
    case 'https-tunnel':
      return keptClient(kind, setup, ['tunnel', setup.httpsUrl], [setup.caPath]);
  }
}

/** Runs `attempt` until stopped, `pauseMs` apart: the client's own pace. */
function loop(
  kind: ClientKind,
  setup: ClientSetup,
  attempt: () => Promise<Attempt>,
  cleanup: () => void = () => undefined,
): Client {
  const attempts: Attempt[] = [];
  let stopped = false;
  let wake: (() => void) | undefined;
  const running = (async () => {
    while (!stopped) {
      attempts.push(await attempt());
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, setup.pauseMs);
      });
    }
  })();
  return {
    kind,
    attempts,
    async stop() {
      stopped = true;
      wake?.();
      await running;
      cleanup();
    },
  };
}

async function resolveProxy(setup: ClientSetup): Promise<string> {
  const answer = (await digShort(setup.resolver, setup.proxyName, 'A')).find((line) => isIPv4(line));
  if (!answer) throw new Error(`no address for ${setup.proxyName}`);
  return answer;
}

/** dig, then curl through the answer; with `cacheMs` the answer is kept that long, as a JVM does. */
function curlAttempt(setup: ClientSetup, cacheMs: number): () => Promise<Attempt> {
  let cached: { address: string; at: number } | undefined;
  return async () => {
    let proxy: string | undefined;
    try {
      if (!cached || Date.now() - cached.at >= cacheMs) {
        cached = { address: await resolveProxy(setup), at: Date.now() };
      }
      proxy = cached.address;
      const { stdout } = await run(
        'curl',
        [
          '-sS',
          '--max-time',
          String(setup.timeoutMs / 1000),
          '-o',
          '/dev/null',
          '-D',
          '-',
          '-w',
          'result=%{http_code}\n',
          '-x',
          `http://${proxy}:${setup.proxyPort}`,
          setup.httpUrl,
        ],
        { timeout: setup.timeoutMs + 5_000 },
      );
      const status = Number(/result=(\d+)/.exec(stdout)?.[1] ?? 0);
      const squidError = /^x-squid-error: (\S+)/im.exec(stdout)?.[1];
      return { at: Date.now(), ok: status === 200, proxy, status, squidError, fresh: true };
    } catch (err) {
      const failed = err as { stderr?: string; message: string };
      return {
        at: Date.now(),
        ok: false,
        proxy,
        error: (failed.stderr || failed.message).trim(),
        fresh: true,
      };
    }
  };
}

/** Node's keep-alive agent: `lookup` runs for each new socket, never for a reused one. */
function nodeKeepAlive(setup: ClientSetup): Client {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const lookup = (
    _hostname: string,
    options: { all?: boolean },
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    resolveProxy(setup).then(
      (address) => (options.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4)),
      (err: Error) => callback(err, []),
    );
  };
  const target = new URL(setup.httpUrl);
  const attempt = () =>
    new Promise<Attempt>((resolve) => {
      let fresh = false;
      const req = request(
        {
          host: setup.proxyName,
          port: setup.proxyPort,
          path: setup.httpUrl,
          headers: { host: target.host },
          agent,
          lookup,
          timeout: setup.timeoutMs,
        },
        (res) => {
          const proxy = res.socket.remoteAddress;
          const header = res.headers['x-squid-error'];
          const squidError = typeof header === 'string' ? header.split(' ')[0] : undefined;
          const closed = /close/i.test(String(res.headers.connection ?? ''));
          res.resume();
          res.once('end', () =>
            resolve({
              at: Date.now(),
              ok: res.statusCode === 200,
              proxy,
              status: res.statusCode,
              squidError,
              closed,
              fresh,
            }),
          );
          res.once('error', (err) =>
            resolve({ at: Date.now(), ok: false, proxy, error: err.message, fresh }),
          );
        },
      );
      req.once('socket', (socket) => {
        fresh = socket.connecting;
      });
      req.once('timeout', () => req.destroy(new Error(`no answer in ${setup.timeoutMs} ms`)));
      req.once('error', (err) =>
        resolve({ at: Date.now(), ok: false, proxy: req.socket?.remoteAddress, error: err.message, fresh }),
      );
      req.end();
    });
  return loop('node-keepalive', setup, attempt, () => agent.destroy());
}

/** kept-client.py in its own process group; one Attempt per JSON line it prints. */
function keptClient(
  kind: ClientKind,
  setup: ClientSetup,
  modeAndUrl: readonly [string, string],
  extra: readonly string[] = [],
): Client {
  const [mode, url] = modeAndUrl;
  const proc = spawnGroup('python3', [
    KEPT_CLIENT,
    mode,
    String(setup.resolver.port),
    setup.proxyName,
    String(setup.proxyPort),
    url,
    String(setup.timeoutMs / 1000),
    String(setup.pauseMs / 1000),
    ...extra,
  ]);
  const attempts: Attempt[] = [];
  let partial = '';
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() !== '') attempts.push(JSON.parse(line) as Attempt);
    }
  });
  return {
    kind,
    attempts,
    async stop() {
      await endGroup(proc, 'SIGTERM', 2_000);
    },
  };
}
