// Real HTTP(S) origins on loopback standing in for the outside sites a deep check fetches, with
// behaviour switchable at run time. Independent of vitest so bench scripts can import it.
//
//   const origin = await startOrigin();            // http://origin.test/ -> 127.0.0.10:80
//   origin.status(500); origin.slow(2_000); origin.hang(); origin.reset(); origin.ok();
//   origin.requests  // what arrived: method, url as sent (absolute-form when it acts as a proxy), headers
//   await origin.close();
//
//   const tls = await startTlsOrigin();            // https://tls.origin.test/ -> 127.0.0.13:443
//   tls.caPath / tls.caPem                          // the throwaway CA that signed its certificate
//
// In 'ok' mode a path /status/NNN answers NNN, so one origin can serve a passing and a failing
// target at once (http://origin.test/ and http://origin.test/status/500).
//
// Trusting the throwaway CA: child processes get NODE_EXTRA_CA_CERTS=<caPath> in their env (Node
// reads it only at start-up, so setting it in a running process does nothing). In-process probes
// pass the PEM to the TLS options of what they connect with, added to Node's roots:
// `probeRound({ ..., ca: [tls.caPem] })` (src/health/probe.ts), or Node's `tls` `ca` option.
// Squid needs no CA: a CONNECT tunnel passes TLS through untouched.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type OriginBehaviour =
  | { readonly kind: 'ok' }
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'slow'; readonly delayMs: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reset' };

export interface RecordedRequest {
  readonly method: string;
  /** The request target as sent: "/path", or "http://host/path" when addressed as a proxy. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

export interface OriginOptions {
  /** Default 127.0.0.10 (HTTP) or 127.0.0.13 (TLS). */
  readonly host?: string;
  /** Default 80 (HTTP) or 443 (TLS); 0 picks a free port. */
  readonly port?: number;
  /** The name clients use (through Squid's hosts_file); default origin.test / tls.origin.test. */
  readonly name?: string;
}

export class Origin {
  readonly requests: RecordedRequest[] = [];
  private behaviour: OriginBehaviour = { kind: 'ok' };
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  port = 0;

  constructor(
    readonly server: Server,
    readonly host: string,
    readonly name: string,
    readonly protocol: 'http' | 'https',
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    // Tracked so close() ends hung and keep-alive connections at once.
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** The URL clients fetch by name, e.g. http://origin.test/ (default port omitted). */
  get url(): string {
    const defaultPort = this.protocol === 'https' ? 443 : 80;
    return `${this.protocol}://${this.name}${this.port === defaultPort ? '' : `:${this.port}`}/`;
  }

  /** The URL by address, for direct fetches that do not go through Squid's hosts_file. */
  get addressUrl(): string {
    return `${this.protocol}://${this.host}:${this.port}/`;
  }

  get mode(): OriginBehaviour {
    return this.behaviour;
  }

  set(behaviour: OriginBehaviour): void {
    this.behaviour = behaviour;
  }
  ok(): void {
    this.set({ kind: 'ok' });
  }
  status(status: number): void {
    this.set({ kind: 'status', status });
  }
  slow(delayMs: number): void {
    this.set({ kind: 'slow', delayMs });
  }
  hang(): void {
    this.set({ kind: 'hang' });
  }
  reset(): void {
    this.set({ kind: 'reset' });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
  }

  /** Stops listening and ends every connection, hung ones included. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      at: Date.now(),
    });
    const behaviour = this.behaviour;
    switch (behaviour.kind) {
      case 'ok': {
        const path = /\/status\/(\d{3})$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
        answer(res, path ? Number(path[1]) : 200);
        return;
      }
      case 'status':
        answer(res, behaviour.status);
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          answer(res, 200);
        }, behaviour.delayMs);
        this.timers.add(timer);
        return;
      }
      case 'hang':
        return;
      case 'reset':
        // A TCP RST, as a crashing or misbehaving upstream would send.
        req.socket.resetAndDestroy();
        return;
    }
  }
}

function answer(res: ServerResponse, status: number): void {
  const body = `${status} from test origin\n`;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A plain HTTP origin; default 127.0.0.10:80 as origin.test (root may bind port 80). */
export async function startOrigin(options: OriginOptions = {}): Promise<Origin> {
  const origin = new Origin(
    createServer(),
    options.host ?? '127.0.0.10',
    options.name ?? 'origin.test',
    'http',
  );
  await origin.listen(options.port ?? 80);
  return origin;
}

export interface TlsMaterial {
  readonly dir: string;
  readonly caPath: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * A throwaway CA and a server certificate for `names` (DNS) and `ips`, made with openssl in a temp
 * dir (EC P-256: quick to make). Remove `dir` when done.
 */
export async function makeTlsMaterial(
  names: readonly string[],
  ips: readonly string[],
): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-tls-'));
  const p = (file: string) => join(dir, file);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=egress-failover test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    `/CN=${names[0] ?? ips[0]}`,
  ]);
  const san = [...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  await writeFile(
    p('server.ext'),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.pem'),
    '-days',
    '2',
    '-extfile',
    p('server.ext'),
  ]);
  const [caPem, certPem, keyPem] = await Promise.all(
    ['ca.pem', 'server.pem', 'server.key'].map((f) => readFile(p(f), 'utf8')),
  );
  return { dir, caPath: p('ca.pem'), caPem: caPem ?? '', certPem: certPem ?? '', keyPem: keyPem ?? '' };
}

export class TlsOrigin extends Origin {
  constructor(
    server: Server,
    host: string,
    name: string,
    readonly tls: TlsMaterial,
  ) {
    super(server, host, name, 'https');
  }
  get caPath(): string {
    return this.tls.caPath;
  }
  get caPem(): string {
    return this.tls.caPem;
  }
  override async close(): Promise<void> {
    await super.close();
    await rm(this.tls.dir, { recursive: true, force: true });
  }
}

/** An HTTPS origin; default 127.0.0.13:443 as tls.origin.test, certificate from a throwaway CA. */
export async function startTlsOrigin(options: OriginOptions = {}): Promise<TlsOrigin> {
  const host = options.host ?? '127.0.0.13';
  const name = options.name ?? 'tls.origin.test';
  const tls = await makeTlsMaterial([name], [host]);
  const server = createTlsServer({ cert: tls.certPem, key: tls.keyPem });
  const origin = new TlsOrigin(server, host, name, tls);
  try {
    await origin.listen(options.port ?? 443);
  } catch (err) {
    await rm(tls.dir, { recursive: true, force: true });
    throw err;
  }
  return origin;
}
