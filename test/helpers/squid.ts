// Real Squid instances (apt squid 5.7) for integration tests and benchmarks, with the faults a
// pool meets in a cluster. Independent of vitest so bench scripts can import it.
//
// Every instance runs the shipped config: k8s/squid/squid.conf (the text both pools' ConfigMaps
// are generated from), rendered for loopback by renderSquidConfig. So a test through these squids
// sees what a client in the cluster sees: persistent_connection_after_error off, pconn_lifetime,
// client_idle_pconn_timeout, the access rules (403 for loopback, link-local and internal ranges).
//
//   const fleet = await startSquids([{ label: 'a', host: '127.0.0.11' }, { label: 'b', host: '127.0.0.12' }],
//     { probeUrl: 'http://origin.test/' });
//   const [a] = fleet.squids;   a.proxyUrl  ->  'http://127.0.0.11:3128'
//   await a.cutEgress();        // alive, answers 503 X-Squid-Error: ERR_CONNECT_FAIL
//   await a.deadParent();       // alive, answers 502 ERR_READ_ERROR (parent nobody listens on)
//   await a.restoreEgress();    // direct again
//   await a.stop(); await a.cont();   // hung (SIGSTOP) and back
//   await a.kill(); await a.restart();
//   afterAll(() => fleet.stopAll());
//
// What the rendering changes (and nothing else): the listening address (`http_port HOST:PORT`), the
// pid/log/coredump paths and the files squid.conf reads from /etc/squid/k8s/ (copied into the
// instance's folder), `shutdown_lifetime 1 second` (tests stop squids often), a `hosts_file` that
// maps test names (origin.test, tls.origin.test) to loopback origins with every other name going
// to `dns_nameservers 127.0.0.1` (nothing leaves the machine), no ICMP pinger (it would outlive a
// SIGKILLed Squid), the loopback origins' addresses (127.0.0.2 up to 127.255.255.254: the tests' 127.0.0.x and the bench's 127.0.1.x) excepted from `deny
// to_localhost` (127.0.0.1 stays refused), and, on request, basic auth (`auth`) and the egress
// faults (`egress`).
// `squidConf` in a spec renders another text of the same shape instead, to check that a test fails
// without a directive; `podFiles` replaces the files it reads (internal-ranges.txt).
// `renderSquidConfig(text, ...)` is pure, for printing or diffing.
//
// Each instance is `squid -N -f CONF -n NAME` in its own process group, memory-only, in its own
// temp dir owned by `proxy` (Squid drops to that user and must write its logs and pid file there).
//
// To start squids from a script without this module's lifecycle, `writeSquidFiles(spec)` writes the
// config (and hosts/password files) and returns the command line to run.
import { execFile } from 'node:child_process';
import { chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitForPort } from './net.js';
import { endGroup, type GroupProcess, signalGroup, spawnGroup } from './process.js';
import { GiveUp, waitFor } from './wait.js';

const run = promisify(execFile);

/** Names the origins' helpers listen on (see origin.ts). */
export const DEFAULT_HOSTS: Readonly<Record<string, string>> = {
  'origin.test': '127.0.0.10',
  'tls.origin.test': '127.0.0.13',
};

/** direct: normal; cut: alive without egress (503 ERR_CONNECT_FAIL); dead-parent: 502 via a dead peer. */
export type EgressMode = 'direct' | 'cut' | 'dead-parent';

export interface SquidSpec {
  /** Short label, part of the service name and temp dir: "a", "primary". */
  readonly label: string;
  readonly host: string;
  /** Default 3128. */
  readonly port?: number;
  /** Name -> IPv4 for Squid's hosts_file; default DEFAULT_HOSTS. */
  readonly hosts?: Readonly<Record<string, string>>;
  /** Require basic proxy auth (basic_ncsa_auth with an htpasswd file). */
  readonly auth?: { readonly user: string; readonly password: string };
  /** Initial egress; default direct. */
  readonly egress?: EgressMode;
  /** Parent for dead-parent mode; default 127.0.0.1:1, where nobody listens. */
  readonly deadParent?: { readonly host: string; readonly port: number };
  /** Folder to create the instance's folder in; default a new temp dir. */
  readonly parentDir?: string;
  /**
   * squid.conf text to render instead of the shipped k8s/squid/squid.conf (same shape: the lines
   * renderSquidConfig replaces must be there), e.g. to show a test fails without a directive.
   */
  readonly squidConf?: string;
  /** Texts of files squid.conf reads from /etc/squid/k8s/, instead of the shipped ones: { 'internal-ranges.txt': ... }. */
  readonly podFiles?: Readonly<Record<string, string>>;
}

export interface SquidFiles {
  /** Unique per process: `-n NAME` and the prefix of Squid's /dev/shm segments. */
  readonly name: string;
  readonly dir: string;
  readonly confPath: string;
  readonly accessLogPath: string;
  readonly cacheLogPath: string;
  /** argv to run in the foreground: ['squid', '-N', '-f', conf, '-n', name]. */
  readonly command: readonly [string, ...string[]];
  /** Rewrites the config for another egress mode (then `squid -k reconfigure` or restart). */
  writeConfig(egress: EgressMode): Promise<void>;
}

const BASIC_NCSA_AUTH = '/usr/lib/squid/basic_ncsa_auth';

/** The shipped Squid config folder: squid.conf and the files it reads (internal-ranges.txt). */
export const SHIPPED_SQUID_DIR = join(import.meta.dirname, '..', '..', 'k8s', 'squid');
/** Where the pods mount SHIPPED_SQUID_DIR; squid.conf names its other files under it. */
export const POD_SQUID_DIR = '/etc/squid/k8s';

const LOOPBACK_ORIGINS_ACL = 'test_loopback_origins';

/** The text of the shipped k8s/squid/squid.conf. */
export function readShippedSquidConf(): Promise<string> {
  return readFile(join(SHIPPED_SQUID_DIR, 'squid.conf'), 'utf8');
}

/** Replaces the one line that matches `pattern` (a whole line), or throws: the shipped file changed shape. */
function replaceLine(lines: string[], pattern: RegExp, ...replacement: string[]): void {
  const at = lines.findIndex((line) => pattern.test(line));
  if (at < 0) throw new Error(`squid.conf has no line matching ${pattern}: cannot render it for loopback`);
  lines.splice(at, 1, ...replacement);
}

/**
 * The shipped squid.conf rendered for one loopback instance. Pure, so benchmarks can print or diff
 * it. Changes only what a loopback test must: the listening address, the paths of the pid file, the
 * logs and the files under POD_SQUID_DIR (copied into `dir`), name lookups (hosts_file, a local
 * dns_nameservers), a 1 s shutdown_lifetime, and the loopback origins (127.0.0.2 up to 127.255.255.254)
 * excepted from `deny to_localhost` (127.0.0.1, ::1 and 0.0.0.0 stay refused). Then the auth rules
 * and the egress fault, when asked for.
 */
export function renderSquidConfig(
  shipped: string,
  options: {
    name: string;
    dir: string;
    host: string;
    port: number;
    egress: EgressMode;
    withAuth: boolean;
    deadParent: { host: string; port: number };
  },
): string {
  const { name, dir, host, port, egress, withAuth, deadParent } = options;
  const lines = shipped.split('\n').map((line) => line.replaceAll(`${POD_SQUID_DIR}/`, `${dir}/`));
  lines.unshift(`# egress-failover test squid "${name}" (${egress}), rendered from k8s/squid/squid.conf`);
  replaceLine(lines, /^http_port 3128$/, `http_port ${host}:${port}`, `visible_hostname ${name}`);
  replaceLine(lines, /^pid_filename /, `pid_filename ${join(dir, 'squid.pid')}`);
  replaceLine(lines, /^access_log /, `access_log stdio:${join(dir, 'access.log')}`);
  replaceLine(lines, /^cache_log /, `cache_log ${join(dir, 'cache.log')}`);
  replaceLine(lines, /^coredump_dir /, `coredump_dir ${dir}`);
  // A TERM otherwise waits for clients: tests stop squids often.
  replaceLine(lines, /^shutdown_lifetime /, 'shutdown_lifetime 1 second');
  replaceLine(
    lines,
    /^http_access deny to_localhost$/,
    // The loopback origins stand in for the outside; 127.0.0.1 (the machine's own services), ::1
    // and 0.0.0.0 stay refused, as every loopback address is in a pod.
    `acl ${LOOPBACK_ORIGINS_ACL} dst 127.0.0.2-127.255.255.254`,
    `http_access deny to_localhost !${LOOPBACK_ORIGINS_ACL}`,
  );
  if (withAuth) {
    replaceLine(
      lines,
      /^http_access allow localhost$/,
      `auth_param basic program ${BASIC_NCSA_AUTH} ${join(dir, 'passwd')}`,
      'auth_param basic children 2 startup=1 idle=1',
      'auth_param basic realm egress-failover-test',
      'acl authenticated proxy_auth REQUIRED',
      'http_access deny !authenticated',
      'http_access allow localhost',
    );
  }
  lines.push(
    '# loopback test instance',
    // Keeps Squid off the machine's resolver: test names come from hosts_file, others fail fast.
    'dns_nameservers 127.0.0.1',
    `hosts_file ${join(dir, 'hosts')}`,
    // Debian's Squid has ICMP: its pinger helper would be orphaned when Squid is SIGKILLed.
    'pinger_enable off',
    'netdb_filename none',
  );
  if (egress === 'cut') {
    // An address the host lacks: the bind fails locally, nothing is sent -> 503 ERR_CONNECT_FAIL.
    lines.push('tcp_outgoing_address 192.0.2.1');
  } else if (egress === 'dead-parent') {
    lines.push(
      'never_direct allow all',
      `cache_peer ${deadParent.host} parent ${deadParent.port} 0 no-query no-digest no-netdb-exchange`,
    );
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

let proxyIds: { uid: number; gid: number } | undefined;
async function proxyUser(): Promise<{ uid: number; gid: number }> {
  if (!proxyIds) {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'proxy']), run('id', ['-g', 'proxy'])]);
    proxyIds = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  return proxyIds;
}

let instances = 0;

/** Creates the instance folder with config, hosts and password files; starts nothing. */
export async function writeSquidFiles(spec: SquidSpec): Promise<SquidFiles> {
  instances += 1;
  // Squid accepts only letters and digits in -n.
  const name = `ef${spec.label.replace(/[^A-Za-z0-9]/g, '')}${process.pid}n${instances}`;
  const parent = spec.parentDir ?? (await mkdtemp(join(tmpdir(), 'ef-squid-')));
  const dir = join(parent, name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const { uid, gid } = await proxyUser();
  // Squid runs as proxy: the folder must be reachable (755 parents) and writable by it.
  await run('chmod', ['755', parent, dir]);
  await chown(dir, uid, gid);
  const hosts = spec.hosts ?? DEFAULT_HOSTS;
  await writeFile(
    join(dir, 'hosts'),
    `${Object.entries(hosts)
      .map(([host, ip]) => `${ip} ${host}`)
      .join('\n')}\n`,
    { mode: 0o644 },
  );
  if (spec.auth) {
    const { stdout } = await run('openssl', ['passwd', '-apr1', spec.auth.password]);
    await writeFile(join(dir, 'passwd'), `${spec.auth.user}:${stdout.trim()}\n`, { mode: 0o644 });
  }
  // The files squid.conf reads from POD_SQUID_DIR in a pod (internal-ranges.txt), next to it here.
  const shipped = await readdir(SHIPPED_SQUID_DIR);
  await Promise.all(
    shipped
      .filter((file) => file !== 'squid.conf')
      .map((file) => copyFile(join(SHIPPED_SQUID_DIR, file), join(dir, file))),
  );
  for (const [file, text] of Object.entries(spec.podFiles ?? {})) {
    await writeFile(join(dir, file), text, { mode: 0o644 });
  }
  const source = spec.squidConf ?? (await readShippedSquidConf());
  const confPath = join(dir, 'squid.conf');
  const writeConfig = (egress: EgressMode) =>
    writeFile(
      confPath,
      renderSquidConfig(source, {
        name,
        dir,
        host: spec.host,
        port: spec.port ?? 3128,
        egress,
        withAuth: spec.auth !== undefined,
        deadParent: spec.deadParent ?? { host: '127.0.0.1', port: 1 },
      }),
      { mode: 0o644 },
    );
  await writeConfig(spec.egress ?? 'direct');
  return {
    name,
    dir,
    confPath,
    accessLogPath: join(dir, 'access.log'),
    cacheLogPath: join(dir, 'cache.log'),
    command: ['squid', '-N', '-f', confPath, '-n', name],
    writeConfig,
  };
}

export interface ProxiedResponse {
  readonly status: number;
  /** First token of X-Squid-Error, when Squid answered with its own error page. */
  readonly squidError: string | undefined;
}

/** One absolute-form GET through a proxy with node:http, independent of the code under test. */
export function getThroughProxy(
  proxy: { host: string; port: number; authorization?: string },
  url: string,
  timeoutMs = 2_000,
): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: new URL(url).host, connection: 'close' };
    if (proxy.authorization) headers['proxy-authorization'] = proxy.authorization;
    const req = request(
      { host: proxy.host, port: proxy.port, path: url, headers, timeout: timeoutMs },
      (res) => {
        res.resume();
        const header = res.headers['x-squid-error'];
        const squidError = typeof header === 'string' ? header.split(' ')[0] : undefined;
        resolve({ status: res.statusCode ?? 0, squidError });
      },
    );
    req.once('timeout', () =>
      req.destroy(new Error(`no answer from ${proxy.host}:${proxy.port} in ${timeoutMs}ms`)),
    );
    req.once('error', reject);
    req.end();
  });
}

export interface SquidOptions {
  /** A URL fetched through the squid after a reconfigure, to wait for the new behaviour. */
  readonly probeUrl?: string;
  /** Start-up deadline; default 15 s. */
  readonly startTimeoutMs?: number;
}

export class Squid {
  readonly host: string;
  readonly port: number;
  /** http://host:port, with user:password when the squid requires auth. */
  readonly proxyUrl: string;
  /** http://host:port without credentials. */
  readonly address: string;
  private proc: GroupProcess | undefined;
  private egress: EgressMode;

  constructor(
    readonly spec: SquidSpec,
    readonly files: SquidFiles,
    private readonly options: SquidOptions = {},
  ) {
    this.host = spec.host;
    this.port = spec.port ?? 3128;
    this.address = `http://${this.host}:${this.port}`;
    this.proxyUrl = spec.auth
      ? `http://${encodeURIComponent(spec.auth.user)}:${encodeURIComponent(spec.auth.password)}@${this.host}:${this.port}`
      : this.address;
    this.egress = spec.egress ?? 'direct';
  }

  get pid(): number | undefined {
    return this.proc?.running() ? this.proc.pid : undefined;
  }

  get mode(): EgressMode {
    return this.egress;
  }

  /** Starts Squid and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.proc?.running()) return;
    const [command, ...args] = this.files.command;
    const before = await this.acceptingCount();
    const proc = spawnGroup(command, args, { cwd: this.files.dir });
    this.proc = proc;
    await waitFor(
      async () => {
        if (!proc.running()) throw new GiveUp(`squid exited during start-up: ${await this.diagnostics()}`);
        return (await this.acceptingCount()) > before;
      },
      {
        timeoutMs: this.options.startTimeoutMs ?? 15_000,
        intervalMs: 50,
        what: `${this.files.name} to start`,
      },
    );
    await waitForPort(this.host, this.port, `${this.files.name} listening on ${this.host}:${this.port}`);
  }

  /** Down: SIGKILL, as the OOM killer or a node failure would. */
  async kill(): Promise<void> {
    if (this.proc) await endGroup(this.proc, 'SIGKILL');
    await this.removeSharedMemory();
  }

  /** Hung: SIGSTOP. The kernel still accepts connections into the backlog; nothing answers. */
  stop(): void {
    if (this.proc) signalGroup(this.proc, 'SIGSTOP');
  }

  cont(): void {
    if (this.proc) signalGroup(this.proc, 'SIGCONT');
  }

  /** Alive without egress: 503 with X-Squid-Error: ERR_CONNECT_FAIL. */
  cutEgress(): Promise<void> {
    return this.reconfigure('cut', (r) => r.status === 503 && r.squidError === 'ERR_CONNECT_FAIL');
  }

  /** Alive, its parent dead: 502 ERR_READ_ERROR. */
  deadParent(): Promise<void> {
    return this.reconfigure('dead-parent', (r) => r.status === 502 && r.squidError !== undefined);
  }

  /** Direct egress again: an answer that is not Squid's own error page. */
  restoreEgress(): Promise<void> {
    return this.reconfigure('direct', (r) => r.squidError === undefined);
  }

  /** Kills (if running) and starts again with the current config. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** End for good: TERM (shutdown_lifetime 1 s), KILL if slow, shared memory removed. */
  async shutdown(): Promise<void> {
    if (this.proc) await endGroup(this.proc, 'SIGTERM', 3_000);
    await this.removeSharedMemory();
  }

  accessLog(): Promise<string> {
    return readFile(this.files.accessLogPath, 'utf8').catch(() => '');
  }

  cacheLog(): Promise<string> {
    return readFile(this.files.cacheLogPath, 'utf8').catch(() => '');
  }

  /** An absolute-form GET through this squid (node:http), e.g. to check its current behaviour. */
  get(url: string, timeoutMs = 2_000): Promise<ProxiedResponse> {
    const auth = this.spec.auth;
    return getThroughProxy(
      {
        host: this.host,
        port: this.port,
        authorization: auth
          ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`
          : undefined,
      },
      url,
      timeoutMs,
    );
  }

  private async reconfigure(egress: EgressMode, shows: (r: ProxiedResponse) => boolean): Promise<void> {
    const proc = this.proc;
    if (!proc?.running()) throw new Error(`${this.files.name} is not running`);
    const before = await this.acceptingCount();
    await this.files.writeConfig(egress);
    this.egress = egress;
    await run('squid', ['-f', this.files.confPath, '-n', this.files.name, '-k', 'reconfigure']);
    // Reconfigure closes the listening port and reopens it once the new config is in force; its
    // log line, then a request showing the new behaviour, is what tells us it has happened.
    await waitFor(async () => (await this.acceptingCount()) > before, {
      timeoutMs: 10_000,
      what: `${this.files.name} to reopen its port after reconfigure`,
    });
    const probeUrl = this.options.probeUrl;
    if (probeUrl) {
      await waitFor(async () => shows(await this.get(probeUrl)), {
        timeoutMs: 10_000,
        what: `${this.files.name} to show ${egress} behaviour on ${probeUrl}`,
      });
    } else {
      await waitForPort(this.host, this.port, `${this.files.name} listening after reconfigure`);
    }
  }

  private async acceptingCount(): Promise<number> {
    return (await this.cacheLog()).split('Accepting HTTP Socket connections').length - 1;
  }

  private async diagnostics(): Promise<string> {
    const log = (await this.cacheLog()).split('\n').slice(-15).join('\n');
    return `${this.proc?.output() ?? ''}\n${log}`.trim();
  }

  // Squid keeps /dev/shm segments named after the service even with -N; a SIGKILL leaves them.
  private async removeSharedMemory(): Promise<void> {
    const prefix = `${this.files.name}-`;
    const names = await readdir('/dev/shm').catch(() => [] as string[]);
    await Promise.all(
      names.filter((n) => n.startsWith(prefix)).map((n) => rm(join('/dev/shm', n), { force: true })),
    );
  }
}

export interface SquidFleet {
  readonly squids: readonly Squid[];
  readonly dir: string;
  /** For afterAll: ends every squid (also hung ones) and removes the temp dir. Never throws. */
  stopAll(): Promise<void>;
}

/**
 * Starts one squid per spec, concurrently, in one temp dir. On a start-up failure, those that did
 * start are ended before the error is thrown.
 */
export async function startSquids(
  specs: readonly SquidSpec[],
  options: SquidOptions = {},
): Promise<SquidFleet> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-squid-'));
  const squids: Squid[] = [];
  const stopAll = async () => {
    await Promise.allSettled(squids.map((s) => s.shutdown()));
    if (!process.env.KEEP_SQUID_DIRS) await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const spec of specs) {
      squids.push(new Squid(spec, await writeSquidFiles({ ...spec, parentDir: dir }), options));
    }
    await Promise.all(squids.map((s) => s.start()));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { squids, dir, stopAll };
}
