// The real `dns` binary as a child process, for end-to-end tests and benchmarks: what an operator
// runs is what is tested (compiled dist/, signals, JSON log lines on stdout, real sockets).
// Independent of vitest so bench scripts can import it. Build first: `npx tsc -p tsconfig.build.json`
// (`npm test` does that as pretest).
//
//   const server = await startDnsServer({ services: [...], probe: {...} });
//   server.dnsAddress            // { host: '127.0.0.1', port: 40123 }: port 0 unless the config says
//   await server.status();       // GET /status, parsed
//   server.logs();               // every JSON line logged so far, parsed
//   server.transitions();        // the "pool state changed" lines
//   const { code, ms } = await server.stop();   // SIGTERM, waits for the exit
//
// The config is written as YAML (JSON is YAML) to a temp dir. `dns.listen` and `http.listen` default
// to 127.0.0.1:0; the bound addresses are read from the server's own "serving" line, so parallel
// runs never race for a port. The process is the leader of its own group and is ended by its id.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canConnect } from './net.js';
import { endGroup, type GroupProcess, spawnGroup } from './process.js';
import { GiveUp, waitFor } from './wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BINARY = join(ROOT, 'bin/egress-failover.js');

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** One parsed log line; pino's fields plus whatever the component logged. */
export interface LogLine {
  readonly level: string;
  readonly time: string;
  readonly msg: string;
  readonly component?: string;
  readonly [key: string]: unknown;
}

export interface TransitionLine extends LogLine {
  readonly service: string;
  readonly pool: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface DnsProcessOptions {
  /** Extra environment (NODE_EXTRA_CA_CERTS, LOG_LEVEL, ...), on top of this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra argv after `dns --config FILE`. */
  readonly args?: readonly string[];
  /** Start-up deadline (DNS answering and /livez 200); default 15 s. */
  readonly startTimeoutMs?: number;
  /** A command that runs the server, e.g. ['prlimit', '--nofile=1024:1024'] (it must exec it: same pid). */
  readonly wrapper?: readonly string[];
}

export interface DnsProcess {
  readonly pid: number;
  readonly proc: GroupProcess;
  readonly configPath: string;
  readonly dnsAddress: Address;
  readonly httpAddress: Address;
  /** GET a path of the HTTP endpoint. */
  get(path: string): Promise<HttpAnswer>;
  /** GET /status, parsed. */
  status(): Promise<StatusJson>;
  /** Every JSON line on stdout so far (non-JSON lines are skipped). */
  logs(): LogLine[];
  /** The "pool state changed" lines so far, optionally of one service. */
  transitions(service?: string): TransitionLine[];
  /** stdout and stderr as text, for failure messages. */
  output(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`, default 10 s). */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** For afterAll: ends the process if still running and removes the temp dir. Never throws. */
  dispose(): Promise<void>;
}

/** The parts of /status the tests read (see src/http/routes.ts). */
export interface StatusJson {
  readonly ready: boolean;
  readonly services: readonly {
    readonly name: string;
    readonly ready: boolean;
    readonly mode: string;
    readonly selected: string | null;
    readonly addresses: readonly string[];
    /** "outside" while every pool whose proxy answers fails the same targets. */
    readonly outage: 'outside' | null;
    readonly pools: readonly {
      readonly name: string;
      readonly proxy: string;
      readonly state: string;
      readonly inTransition: boolean;
      readonly passes: number;
      readonly failures: number;
      /** `at` and `since` fields are ISO 8601 strings. */
      readonly lastRound?: {
        ok: boolean;
        reason: string;
        at: string;
        latency_ms: number;
        excused: 'outside' | 'local' | null;
      };
      /** Set while flap damping holds the pool down. */
      readonly heldDownUntil: string | null;
      readonly lastFailure?: { reason: string; at: string };
      readonly lastTransition?: { from: string; to: string; reason: string; at: string };
      readonly transitions: number;
    }[];
  }[];
}

/** A config object as the YAML file would hold it; listen addresses default to 127.0.0.1:0. */
export type DnsConfigInput = Record<string, unknown> & {
  dns?: Record<string, unknown>;
  http?: Record<string, unknown>;
};

export async function startDnsServer(
  config: DnsConfigInput,
  options: DnsProcessOptions = {},
): Promise<DnsProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-dns-'));
  const configPath = join(dir, 'config.yaml');
  const full = {
    ...config,
    dns: { listen: '127.0.0.1:0', ...config.dns },
    http: { listen: '127.0.0.1:0', ...config.http },
  };
  // JSON is valid YAML, and leaves no doubt about quoting.
  await writeFile(configPath, `${JSON.stringify(full, null, 2)}\n`);

  const [command, ...wrapperArgs] = [...(options.wrapper ?? []), process.execPath];
  const proc = spawnGroup(
    command as string,
    [...wrapperArgs, BINARY, 'dns', '--config', configPath, ...(options.args ?? [])],
    {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
    },
  );
  const lines: LogLine[] = [];
  let text = '';
  let partial = '';
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) {
      text += `${line}\n`;
      if (text.length > 256 * 1024) text = text.slice(-128 * 1024);
      try {
        const parsed = JSON.parse(line) as unknown;
        if (parsed && typeof parsed === 'object') lines.push(parsed as LogLine);
      } catch {
        // Not a log line (a stray print): kept in output() only.
      }
    }
  });

  const dispose = async () => {
    await endGroup(proc, 'SIGKILL').catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    const serving = await waitFor(
      () => {
        if (!proc.running()) {
          throw new GiveUp(`the dns server exited during start-up:\n${proc.output()}`);
        }
        return lines.find((l) => l.msg === 'serving' && typeof l.dns === 'string');
      },
      { timeoutMs: options.startTimeoutMs ?? 15_000, what: 'the dns server to log "serving"' },
    );
    const dnsAddress = parseAddress(String(serving.dns));
    const httpAddress = parseAddress(String(serving.http));
    const get = (path: string) => httpGet(httpAddress, path);
    await waitFor(
      async () => {
        if (!proc.running()) throw new GiveUp(`the dns server exited:\n${proc.output()}`);
        return (await canConnect(dnsAddress.host, dnsAddress.port)) && (await get('/livez')).status === 200;
      },
      { timeoutMs: options.startTimeoutMs ?? 15_000, what: 'the dns server to answer on DNS/TCP and /livez' },
    );

    return {
      pid: proc.pid,
      proc,
      configPath,
      dnsAddress,
      httpAddress,
      get,
      async status() {
        const answer = await get('/status');
        if (answer.status !== 200) throw new Error(`/status answered ${answer.status}: ${answer.body}`);
        return JSON.parse(answer.body) as StatusJson;
      },
      logs: () => [...lines],
      transitions: (service?: string) =>
        lines.filter(
          (l): l is TransitionLine =>
            l.msg === 'pool state changed' && (service === undefined || l.service === service),
        ),
      output: () => proc.output(),
      async stop(graceMs = 10_000) {
        const started = Date.now();
        const result = await endGroup(proc, 'SIGTERM', graceMs);
        return { ...result, ms: Date.now() - started };
      },
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** "127.0.0.1:15353" or "[::1]:15353". */
function parseAddress(text: string): Address {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!match) throw new Error(`not an address: ${text}`);
  return { host: match[1] ?? match[2] ?? '', port: Number(match[3]) };
}

export function httpGet(address: Address, path: string, timeoutMs = 5_000): Promise<HttpAnswer> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: address.host, port: address.port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs}ms`)));
    req.once('error', reject);
    req.end();
  });
}
