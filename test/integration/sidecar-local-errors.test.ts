// The sidecar out of file descriptors while its Squid is fine: the real binary in a process of its
// own, a real Squid and origin. Its descriptor limit is lowered at run time (prlimit --pid) to the
// lowest descriptor number it does not hold for good, so every socket a check opens fails with
// EMFILE, as it does when a neighbour holds the rest. (The HTTP server's connection cap keeps a
// flood of idle connections well under the limit, so the flood is not how we get there.) Before,
// the shallow check's EMFILE read as "Squid does not answer": attributed /health turned 503 and the
// kubelet would have restarted a healthy Squid.
// Addresses: squid 127.0.0.18:3128, origin 127.0.0.19:80, the sidecar on 127.0.0.1 port 0.
import { execFile } from 'node:child_process';
import { readdir, readlink } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type SidecarProcess, startSidecarProcess } from '../helpers/sidecar-process.js';
import { type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const ORIGIN_HOST = '127.0.0.19';
const TARGET = `http://${ORIGIN_HOST}/`;
const FALL = 2;
const NOFILE = 1024;

let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
let sidecar: SidecarProcess | undefined;

beforeAll(async () => {
  origin = await startOrigin({ host: ORIGIN_HOST, name: 'local-errors-origin.test' });
  fleet = await startSquids([{ label: 'localerr', host: '127.0.0.18' }], { probeUrl: TARGET });
  sidecar = await startSidecarProcess(
    {
      proxy: fleet.squids[0]?.address,
      targets: [TARGET],
      interval: '300ms',
      timeout: '250ms',
      fastInterval: '100ms',
      rise: 2,
      fall: FALL,
      liveness: 'attributed',
      readiness: 'attributed',
    },
    { wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`] },
  );
});

afterAll(async () => {
  await sidecar?.dispose();
  await fleet?.stopAll();
  await origin?.close();
});

interface Answer {
  readonly status: number;
  readonly body: string;
}

/**
 * One HTTP/1.1 connection kept open, requests one after another on it: once the sidecar is out of
 * descriptors it cannot accept another. Asked at least every second, within the server's keep-alive.
 */
class KeptConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiting: ((answer: Answer) => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
  }

  static async open(host: string, port: number): Promise<KeptConnection> {
    const socket = connect({ host, port });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new KeptConnection(socket);
  }

  get(path: string): Promise<Answer> {
    if (this.#socket.destroyed) throw new Error('the kept connection was closed');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`GET ${path}: no answer in 2 s`)), 2_000);
      this.#waiting = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: sidecar\r\n\r\n`);
    });
  }

  /** One whole answer off the buffer, once it is there: Content-Length or chunked, as Node sends. */
  #parse(): void {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buffer.subarray(0, end).toString('latin1');
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    let at = end + 4;
    let body: Buffer;
    if (length !== undefined) {
      if (this.#buffer.length < at + Number(length)) return;
      body = this.#buffer.subarray(at, at + Number(length));
      at += Number(length);
    } else {
      const chunks: Buffer[] = [];
      for (;;) {
        const line = this.#buffer.indexOf('\r\n', at);
        if (line < 0) return;
        const size = Number.parseInt(this.#buffer.subarray(at, line).toString('latin1'), 16);
        if (this.#buffer.length < line + 2 + size + 2) return;
        chunks.push(this.#buffer.subarray(line + 2, line + 2 + size));
        at = line + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(chunks);
    }
    this.#buffer = this.#buffer.subarray(at);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ status: Number(head.split(' ')[1]), body: body.toString('utf8') });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The process's open descriptor numbers. */
async function openFds(pid: number): Promise<Set<number>> {
  return new Set((await readdir(`/proc/${pid}/fd`)).map(Number));
}

/**
 * The lowest descriptor number the process does not hold for good: the numbers below it were open
 * in every one of several looks over more than one round, so they are not a check's sockets.
 */
async function lowestNotHeldForGood(pid: number): Promise<number> {
  let held = await openFds(pid);
  for (let look = 0; look < 20; look++) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    const now = await openFds(pid);
    held = new Set([...held].filter((fd) => now.has(fd)));
  }
  let lowest = 0;
  while (held.has(lowest)) lowest += 1;
  return lowest;
}

/** Sets the soft limit, which EMFILE obeys; the hard one stays, so the soft one can be raised again. */
const setNofile = (pid: number, limit: number) =>
  run('prlimit', [`--pid=${pid}`, `--nofile=${limit}:${NOFILE}`]);

const json = (answer: Answer) => JSON.parse(answer.body) as Record<string, unknown>;

/** "name{labels}" -> value of a /metrics text. */
function samples(text: string): Map<string, number> {
  return new Map(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))]),
  );
}

const LOCAL_WARNING = 'checks failed for a local reason of the sidecar';

describe('sidecar out of file descriptors, its Squid fine', () => {
  it('blames nobody: /health and /readyz (attributed) stay 200, the reasons say local, one warning', async () => {
    const running = sidecar as SidecarProcess;
    const { pid } = running;
    await waitFor(
      async () =>
        (await running.get('/health')).status === 200 && (await running.get('/readyz')).status === 200,
      { timeoutMs: 10_000, what: 'the sidecar healthy' },
    );
    const kept = await KeptConnection.open(running.address.host, running.address.port);
    try {
      expect((await kept.get('/health')).status).toBe(200);
      const before = samples((await kept.get('/metrics')).body);
      expect(before.get('egress_probe_local_errors_total{check="shallow"}')).toBe(0);

      const limit = await lowestNotHeldForGood(pid);
      await setNofile(pid, limit);
      const links = await Promise.all(
        [...(await openFds(pid))].map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?')),
      );
      const context = `limit ${limit}, open: ${links.join(' ')}`;

      // Every answer from now on, on the one connection the sidecar still has.
      const seen: { path: string; status: number; reason: string }[] = [];
      const ask = async (path: string) => {
        const answer = await kept.get(path);
        const body = json(answer);
        seen.push({ path, status: answer.status, reason: String(body.reason) });
        return body;
      };
      const health = await waitFor(
        async () => {
          await ask('/readyz');
          const body = await ask('/health');
          return String(body.reason).includes('probe_error=local:EMFILE') ? body : undefined;
        },
        { timeoutMs: 5_000, intervalMs: 100, what: `/health to name the local error (${context})` },
      );
      expect(health.reason).toMatch(/^ok; not counted: /);
      // Over fall + 2 more rounds, each of which would have counted against Squid before.
      for (let round = 0; round < FALL + 2; round++) {
        const last = (await ask('/health')).lastCheck;
        await waitFor(
          async () => {
            await ask('/readyz');
            await ask('/livez');
            return (await ask('/health')).lastCheck !== last;
          },
          { timeoutMs: 5_000, intervalMs: 100, what: 'the next round' },
        );
      }
      expect(seen.filter((s) => s.status !== 200)).toEqual([]);
      const readyz = await ask('/readyz');
      expect(readyz).toMatchObject({ status: 'ok', mode: 'attributed', fault: 'none' });
      expect(String(readyz.reason)).toContain('not counted: probe_error=local:EMFILE');
      expect(String((await ask('/livez')).reason)).toBe('ok; not counted: probe_error=local:EMFILE');

      const during = samples((await kept.get('/metrics')).body);
      expect(during.get('egress_probe_local_errors_total{check="shallow"}')).toBeGreaterThanOrEqual(FALL + 2);
      expect(during.get('egress_probe_local_errors_total{check="deep"}')).toBeGreaterThanOrEqual(FALL + 2);
      expect(during.get('egress_sidecar_endpoint_ok{endpoint="health"}')).toBe(1);
      expect(during.get('egress_sidecar_rounds_total{check="attributed",result="fail"}') ?? 0).toBe(
        before.get('egress_sidecar_rounds_total{check="attributed",result="fail"}') ?? 0,
      );
      // Squid's cache manager cannot be asked without a socket: its gauge is left out, no error.
      expect(during.has('egress_squid_client_connections')).toBe(false);

      // Room again: checks count, and the burst's end is logged once.
      await setNofile(pid, NOFILE);
      await waitFor(
        async () => {
          const body = await ask('/health');
          return body.reason === 'ok' && (await ask('/readyz')).reason === 'ok';
        },
        { timeoutMs: 5_000, intervalMs: 100, what: 'the reasons back to ok' },
      );
      await waitFor(() => running.proc.output().includes('checks no longer fail for local reasons'), {
        timeoutMs: 5_000,
        what: 'the end-of-burst line',
      });
      const warnings = running.proc
        .output()
        .split('\n')
        .filter((line) => line.includes(LOCAL_WARNING));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 'warn', component: 'sidecar' });
      expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    } finally {
      kept.close();
      await setNofile(pid, NOFILE).catch(() => undefined);
    }
  });
});
