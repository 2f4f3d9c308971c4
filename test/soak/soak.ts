// The soak engine: the real `dns` binary with three pools of real Squids under steady dnsperf load,
// while a seeded random schedule breaks and repairs the Squids and the origin and now and then
// reloads the config. Every answer is judged as it arrives against the ground truth the schedule
// knows (which pools work, and since when); resources are compared with their level after warm-up.
// Independent of vitest, so a long run can be started from a test or a script. See docs/soak.md.
//
//   const soak = new Soak({ seed: 42, scheduleMs: 50_000 });
//   try { const report = await soak.run(); } finally { await soak.dispose(); }
//
// What "right" means is the Oracle's business (pure, below): a pool that has worked for longer than
// the recovery bound R must be answered unless a higher pool may still be working; a pool that has
// been broken for longer than the detection bound D must never be answered, except as the
// `onAllDown: last` fallback while nothing may be working. Everything in between is "in transition".
import dgram from 'node:dgram';
import { mkdtemp, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DnsProcess, httpGet, startDnsServer, type TransitionLine } from '../helpers/dns-process.js';
import { type Flood, type FloodCounts, startFlood } from '../helpers/flood.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { endGroup, type GroupProcess, signalGroup, spawnGroup } from '../helpers/process.js';
import { type SidecarProcess, startSidecarProcess } from '../helpers/sidecar-process.js';
import type { Squid, SquidFleet } from '../helpers/squid.js';
import { startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

// ---- seeded randomness ----------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- bounds ---------------------------------------------------------------------------------------

export interface ProbeTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fastIntervalMs: number;
  readonly rise: number;
  readonly fall: number;
  /** The monitor's safety net past `timeout` for a round that ignores its abort (monitor.ts). */
  readonly abortSlackMs: number;
}

export interface Bounds {
  /** Broken for longer than this: the pool must no longer be answered (as a healthy pool). */
  readonly detectMs: number;
  /** Working for longer than this: the pool must be healthy again. */
  readonly recoverMs: number;
  /** A healthy -> unhealthy transition needs a fault somewhere in the last this-many ms. */
  readonly failEvidenceMs: number;
  /** An unhealthy -> healthy transition needs a working moment in the last this-many ms. */
  readonly passEvidenceMs: number;
}

/**
 * Derived from the probe settings, worst case, then `marginMs` on top for a shared, noisy machine.
 *
 * Detection, from the moment a fault is in force: the round in flight may still pass (it started
 * just before, and may take up to `timeout`); the next starts up to `interval` + 5 % jitter after it;
 * then `fall` failing rounds of up to `timeout` + the abort slack each (a hung proxy), separated by
 * `fastInterval`. A config reload may abandon one round in flight and start over: one more round.
 *
 * Recovery, from the moment the repair is complete: the round in flight may still fail (up to
 * `timeout` + slack); an unhealthy pool is probed every `interval` (+5 %); then `rise` passing rounds
 * (each under `timeout`, or it would fail) separated by `fastInterval`; a reload, one more round.
 */
export function boundsOf(p: ProbeTiming, marginMs: number): Bounds {
  const interval = Math.ceil(p.intervalMs * 1.05);
  const failingRound = p.timeoutMs + p.abortSlackMs;
  const reload = failingRound;
  return {
    detectMs:
      p.timeoutMs + interval + p.fall * failingRound + (p.fall - 1) * p.fastIntervalMs + reload + marginMs,
    recoverMs:
      failingRound + interval + p.rise * p.timeoutMs + (p.rise - 1) * p.fastIntervalMs + reload + marginMs,
    failEvidenceMs: p.fall * failingRound + (p.fall - 1) * p.fastIntervalMs + marginMs,
    passEvidenceMs: failingRound + marginMs,
  };
}

// ---- ground truth ---------------------------------------------------------------------------------

export type Condition = 'ok' | 'broken';

/** One change of a component, in force at some unknown moment within [start, end]. */
export interface Change {
  readonly start: number;
  /** Undefined while the action that makes the change is still running. */
  end: number | undefined;
  readonly to: Condition;
  readonly what: string;
}

/** A Squid or the origin: its changes, one at a time, in order. Starts `ok`. */
export class Component {
  readonly changes: Change[] = [];
  constructor(readonly name: string) {}

  begin(to: Condition, what: string, at: number): Change {
    const change: Change = { start: at, end: undefined, to, what };
    this.changes.push(change);
    return change;
  }

  get condition(): Condition {
    return this.changes.at(-1)?.to ?? 'ok';
  }

  /** What it is at `t`, or 'changing' inside a change's window (closed at both ends). */
  at(t: number): Condition | 'changing' {
    let state: Condition = 'ok';
    for (const c of this.changes) {
      if (c.start > t) break;
      if (c.end === undefined || t <= c.end) return 'changing';
      state = c.to;
    }
    return state;
  }

  /** What the last change finished by `t` did ('kill', 'cut', ...); undefined before any. */
  whatAt(t: number): string | undefined {
    let what: string | undefined;
    for (const c of this.changes) {
      if (c.end === undefined || c.end > t) break;
      what = c.what;
    }
    return what;
  }

  /** Every instant in (a, b) at which `at` may change. */
  boundaries(a: number, b: number): number[] {
    const out: number[] = [];
    for (const c of this.changes) {
      if (c.start > a && c.start < b) out.push(c.start);
      if (c.end !== undefined && c.end > a && c.end < b) out.push(c.end);
    }
    return out;
  }
}

/** Whether `pred` holds at every instant of [a, b], given the instants at which it may change. */
function holdsThroughout(pred: (t: number) => boolean, a: number, b: number, boundaries: number[]): boolean {
  const points = [a, ...boundaries.filter((t) => t > a && t < b).sort((x, y) => x - y), b];
  for (let i = 0; i < points.length; i++) {
    const t = points[i] as number;
    if (!pred(t)) return false;
    const next = points[i + 1];
    if (next !== undefined && !pred((t + next) / 2)) return false;
  }
  return true;
}

/** Faults after which the Squid does not answer at all: always the pool's own fault. */
const SILENT_FAULTS = new Set(['kill', 'hang']);

export interface Verdict {
  /** Pools that may be answered now, in priority order. */
  readonly acceptable: readonly string[];
  /** True when some pool has surely been working for longer than the recovery bound. */
  readonly someoneUp: boolean;
}

/**
 * Pure: the ground truth of the schedule and the bounds -> what an answer may be at time t.
 * A pool works when its Squid and the origin both do. A pool is failing, as the server judges it,
 * when its Squid does not answer (killed, hung), or has lost its egress while another pool works: a
 * pool is never blamed for what fails through every Squid that answers (an origin outage).
 */
export class Oracle {
  constructor(
    readonly pools: readonly { readonly name: string; readonly squid: Component }[],
    readonly origin: Component,
    readonly bounds: Bounds,
  ) {}

  #okAt(i: number, t: number): boolean {
    const pool = this.pools[i];
    return pool !== undefined && pool.squid.at(t) === 'ok' && this.origin.at(t) === 'ok';
  }

  #brokenAt(i: number, t: number): boolean {
    const pool = this.pools[i];
    if (pool === undefined || pool.squid.at(t) !== 'broken') return false;
    if (SILENT_FAULTS.has(pool.squid.whatAt(t) ?? '')) return true;
    return this.pools.some((_, j) => j !== i && this.#okAt(j, t));
  }

  /** Every instant in (a, b) at which a pool's condition may change: it depends on the others'. */
  #boundaries(_i: number, a: number, b: number): number[] {
    return [...this.pools.flatMap((p) => p.squid.boundaries(a, b)), ...this.origin.boundaries(a, b)];
  }

  /** Working without a break for the recovery bound up to t. */
  up(i: number, t: number): boolean {
    const a = t - this.bounds.recoverMs;
    return holdsThroughout((x) => this.#okAt(i, x), a, t, this.#boundaries(i, a, t));
  }

  /** Broken without a break for the detection bound up to t. */
  down(i: number, t: number): boolean {
    const a = t - this.bounds.detectMs;
    return holdsThroughout((x) => this.#brokenAt(i, x), a, t, this.#boundaries(i, a, t));
  }

  /**
   * The first pool that is surely up, and every higher pool that is not surely down (it may be in
   * transition either way). With none surely up, every pool not surely down, plus `held`: under
   * `onAllDown: last` the server keeps the last pool it answered, even when that one is down.
   */
  verdict(t: number, held: string | undefined): Verdict {
    const acceptable: string[] = [];
    for (const [i, pool] of this.pools.entries()) {
      if (this.up(i, t)) {
        acceptable.push(pool.name);
        return { acceptable, someoneUp: true };
      }
      if (!this.down(i, t)) acceptable.push(pool.name);
    }
    if (held !== undefined && !acceptable.includes(held)) acceptable.push(held);
    return { acceptable, someoneUp: false };
  }

  /** Why a logged transition of pool `name` at t cannot be right, or undefined when it can. */
  unjustified(name: string, from: string, to: string, t: number): string | undefined {
    const i = this.pools.findIndex((p) => p.name === name);
    if (i < 0 || from === 'unknown') return undefined;
    if (to === 'unhealthy') {
      const a = t - this.bounds.failEvidenceMs;
      if (holdsThroughout((x) => this.#okAt(i, x), a, t, this.#boundaries(i, a, t)))
        return `marked unhealthy although it worked throughout the last ${this.bounds.failEvidenceMs}ms`;
    }
    if (to === 'healthy') {
      const a = t - this.bounds.passEvidenceMs;
      if (holdsThroughout((x) => this.#brokenAt(i, x), a, t, this.#boundaries(i, a, t)))
        return `marked healthy although it was broken throughout the last ${this.bounds.passEvidenceMs}ms`;
    }
    return undefined;
  }
}

// ---- the checker: a small UDP client asking continuously ------------------------------------------

export interface Answer {
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly rcode: number;
  /** The first A record's address, if any. */
  readonly address: string | undefined;
}

function encodeQuery(id: number, name: string): Buffer {
  const labels = name.split('.');
  const out = Buffer.alloc(12 + labels.reduce((n, l) => n + 1 + l.length, 1) + 4);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x0100, 2);
  out.writeUInt16BE(1, 4);
  let at = 12;
  for (const label of labels) {
    out[at++] = label.length;
    at += out.write(label, at, 'ascii');
  }
  out[at++] = 0;
  out.writeUInt16BE(1, at);
  out.writeUInt16BE(1, at + 2);
  return out;
}

/** rcode and the first A record of a reply to `encodeQuery` (owners are 2-byte pointers here). */
export function parseReply(reply: Buffer, questionLength: number): { rcode: number; address?: string } {
  const rcode = (reply[3] ?? 0) & 0xf;
  if (reply.readUInt16BE(6) === 0) return { rcode };
  let at = 12 + questionLength;
  // Owner: a pointer, or a name written out.
  if (((reply[at] ?? 0) & 0xc0) === 0xc0) at += 2;
  else {
    while ((reply[at] ?? 0) !== 0) at += 1 + (reply[at] ?? 0);
    at += 1;
  }
  const type = reply.readUInt16BE(at);
  const length = reply.readUInt16BE(at + 8);
  if (type !== 1 || length !== 4) return { rcode };
  return { rcode, address: [...reply.subarray(at + 10, at + 14)].join('.') };
}

class Checker {
  readonly #socket = dgram.createSocket('udp4');
  readonly #pending = new Map<number, number>();
  readonly #query: (id: number) => Buffer;
  readonly #questionLength: number;
  #nextId = 1;
  lost = 0;

  constructor(
    readonly server: { host: string; port: number },
    name: string,
    readonly onAnswer: (answer: Answer) => void,
    readonly timeoutMs = 1_000,
  ) {
    this.#query = (id) => encodeQuery(id, name);
    this.#questionLength = this.#query(0).length - 12;
    this.#socket.on('message', (msg) => {
      if (msg.length < 12) return;
      const id = msg.readUInt16BE(0);
      const sentAt = this.#pending.get(id);
      if (sentAt === undefined) return;
      this.#pending.delete(id);
      const { rcode, address } = parseReply(msg, this.#questionLength);
      this.onAnswer({ sentAt, receivedAt: Date.now(), rcode, address });
    });
  }

  ask(): void {
    const now = Date.now();
    for (const [id, sentAt] of this.#pending) {
      if (now - sentAt > this.timeoutMs) {
        this.#pending.delete(id);
        this.lost += 1;
      }
    }
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0xffff) + 1;
    this.#pending.set(id, now);
    this.#socket.send(this.#query(id), this.server.port, this.server.host);
  }

  get outstanding(): number {
    return this.#pending.size;
  }

  close(): void {
    this.#socket.close();
  }
}

// ---- resources of the server process -------------------------------------------------------------

export interface ResourceSample {
  readonly at: number;
  readonly rssKb: number;
  readonly fds: number;
  readonly sockets: number;
  /** Open TCP sockets of the server to each proxy address ("127.0.0.51:3128"). */
  readonly toProxy: Readonly<Record<string, number>>;
  /** prom-client's process gauges: nodejs_active_handles_total, nodejs_active_resources{type=...}. */
  readonly active: Readonly<Record<string, number>>;
}

function hexAddress(hex: string): string {
  const [ip = '', port = ''] = hex.split(':');
  const bytes = [6, 4, 2, 0].map((i) => Number.parseInt(ip.slice(i, i + 2), 16));
  return `${bytes.join('.')}:${Number.parseInt(port, 16)}`;
}

export async function sampleResources(
  pid: number,
  metrics: () => Promise<string>,
  proxies: readonly string[],
): Promise<ResourceSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const fdDir = `/proc/${pid}/fd`;
  const names = await readdir(fdDir);
  const links = await Promise.all(names.map((n) => readlink(join(fdDir, n)).catch(() => '')));
  const inodes = new Set(
    links.map((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1]).filter((x): x is string => x !== undefined),
  );
  const toProxy: Record<string, number> = Object.fromEntries(proxies.map((p) => [p, 0]));
  const tcp = await readFile('/proc/net/tcp', 'utf8');
  for (const line of tcp.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const remote = fields[2];
    const inode = fields[9];
    if (!remote || !inode || !inodes.has(inode)) continue;
    const address = hexAddress(remote);
    if (address in toProxy) toProxy[address] = (toProxy[address] ?? 0) + 1;
  }
  const active: Record<string, number> = {};
  for (const line of (await metrics()).split('\n')) {
    const match =
      /^((?:nodejs_active_|nodejs_heap_size_used|nodejs_external_memory)\w*(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/.exec(
        line,
      );
    if (match) active[match[1] as string] = Number(match[2]);
  }
  return { at: Date.now(), rssKb, fds: names.length, sockets: inodes.size, toProxy, active };
}

/** The smallest of each figure over a few samples: a round in flight is not a leak. */
function floorOf(samples: readonly ResourceSample[]): ResourceSample {
  const first = samples[0];
  if (!first) throw new Error('no samples');
  const min = (f: (s: ResourceSample) => number) => Math.min(...samples.map(f));
  const keys = new Set(samples.flatMap((s) => Object.keys(s.active)));
  return {
    at: first.at,
    rssKb: min((s) => s.rssKb),
    fds: min((s) => s.fds),
    sockets: min((s) => s.sockets),
    toProxy: Object.fromEntries(Object.keys(first.toProxy).map((k) => [k, min((s) => s.toProxy[k] ?? 0)])),
    active: Object.fromEntries([...keys].map((k) => [k, min((s) => s.active[k] ?? 0)])),
  };
}

// ---- dnsperf ----------------------------------------------------------------------------------------

export interface DnsperfResult {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly rcodes: Readonly<Record<string, number>>;
  readonly output: string;
}

export function parseDnsperf(output: string): DnsperfResult {
  const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1] ?? Number.NaN);
  const rcodes: Record<string, number> = {};
  const codes = /Response codes:\s+([^\n]*)/.exec(output)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1] as string] = Number(m[2]);
  return {
    sent: num('Queries sent'),
    completed: num('Queries completed'),
    lost: num('Queries lost'),
    rcodes,
    output,
  };
}

// ---- the run -------------------------------------------------------------------------------------------

export interface SoakOptions {
  readonly seed: number;
  /** How long the fault schedule runs; warm-up and recovery come on top. */
  readonly scheduleMs: number;
  /** Added to every bound (default 1500 ms). */
  readonly marginMs?: number;
  /** dnsperf's fixed rate (default 500 queries/s). */
  readonly qps?: number;
  /** Gap between schedule steps, uniformly drawn (default 500-3500 ms). */
  readonly gapMs?: readonly [number, number];
  /** Progress lines (the seed first); default none. */
  readonly log?: (line: string) => void;
}

export interface ActionRecord {
  readonly offsetMs: number;
  readonly what: string;
  readonly tookMs: number;
}

export interface Violation {
  readonly offsetMs: number;
  readonly kind: string;
  readonly detail: string;
}

export interface SoakReport {
  readonly seed: number;
  readonly scheduleMs: number;
  readonly bounds: Bounds;
  readonly pid: number;
  readonly actions: readonly ActionRecord[];
  readonly violations: readonly Violation[];
  readonly answers: {
    readonly total: number;
    readonly lost: number;
    readonly servfail: number;
    /** Answers for which exactly one pool was acceptable. */
    readonly strict: number;
    readonly byPool: Readonly<Record<string, number>>;
    /** How often the answered pool changed. */
    readonly switches: number;
  };
  readonly transitions: number;
  readonly reloads: number;
  readonly dnsperf: DnsperfResult | undefined;
  /** The noisy neighbour phase: what each flood did, and how the sidecar answered meanwhile. */
  readonly noisy: NoisyReport;
  readonly resources: {
    readonly baseline: ResourceSample;
    readonly final: ResourceSample;
    readonly maxToProxy: Readonly<Record<string, number>>;
    readonly series: readonly ResourceSample[];
  };
}

const ORIGIN_HOST = '127.0.0.50';
const POOLS = [
  { name: 'primary', host: '127.0.0.51', address: '10.0.0.1' },
  { name: 'secondary', host: '127.0.0.52', address: '10.0.0.2' },
  { name: 'tertiary', host: '127.0.0.53', address: '10.0.0.3' },
] as const;
const NAME = 'proxy.egress.svc';
export const TIMING: ProbeTiming = {
  intervalMs: 500,
  timeoutMs: 400,
  fastIntervalMs: 200,
  rise: 2,
  fall: 2,
  abortSlackMs: 250,
};
/** Slower than the probe timeout: every round fails with timeout=400ms. */
const ORIGIN_SLOW_FAIL_MS = 1_000;
/** Well under the probe timeout: slower, still passing. */
const ORIGIN_SLOW_OK_MS = 100;
/** A probe opens one connection per target; two services may probe the primary's Squid at once. */
const MAX_SOCKETS_PER_PROXY = 4;

interface ConfigShape {
  readonly ttl: number;
  readonly extra: boolean;
}

function configOf(shape: ConfigShape): Record<string, unknown> {
  const services: unknown[] = [
    {
      name: 'proxy',
      onAllDown: 'last',
      pools: POOLS.map((p) => ({ name: p.name, proxy: `http://${p.host}:3128`, address: p.address })),
    },
  ];
  // A harmless second service: adding or removing it reloads without touching the pools above.
  if (shape.extra) {
    services.push({
      name: 'extra',
      pools: [{ name: 'only', proxy: `http://${POOLS[2].host}:3128`, address: '10.0.9.9' }],
    });
  }
  return {
    dns: { ttl: shape.ttl, listen: '127.0.0.1:0' },
    http: { listen: '127.0.0.1:0' },
    probe: {
      targets: [`http://${ORIGIN_HOST}/`],
      interval: `${TIMING.intervalMs}ms`,
      timeout: `${TIMING.timeoutMs}ms`,
      fastInterval: `${TIMING.fastIntervalMs}ms`,
      // The schedule breaks pools over and over on purpose and checks rise/fall bounds, which a
      // held-down recovery would exceed; damping has its own tests.
      flapThreshold: 0,
      rise: TIMING.rise,
      fall: TIMING.fall,
    },
    services,
  };
}

const INITIAL_CONFIG: ConfigShape = { ttl: 5, extra: false };

// ---- the noisy neighbour ---------------------------------------------------------------------------

/**
 * A neighbour that floods every TCP port the service offers while the faults run, in `window` (as
 * fractions of the schedule): inside the first quarter, whose highest memory is what the end of
 * the run is compared with, since a flood grows the heap and RSS that V8 and malloc keep (measured:
 * RSS 85 -> 146 MB, heap used 20 -> 45 MB, for 25,000 connections on each port; the counts of
 * descriptors and sockets come back to their baseline). Silent connections, each closed after up to 2 s or by the server and
 * reopened, at a bounded rate (a flood at full speed is the HTTP test's business, on a smaller
 * machine budget; here it must not starve the schedule of CPU). More connections than each server
 * holds, from several addresses: the HTTP servers close their idlest to admit newcomers, the DNS
 * TCP server its oldest idle and whatever one address holds past its share.
 */
const NOISE = {
  window: [0.04, 0.24],
  connections: 3_000,
  ratePerSec: 1_500,
  lifeMs: 2_000,
  sources: {
    http: ['127.0.4.1', '127.0.4.2'],
    sidecar: ['127.0.4.3', '127.0.4.4'],
    dnsTcp: Array.from({ length: 16 }, (_, i) => `127.0.4.${i + 11}`),
  },
} as const;
/** The sidecar's endpoint is asked this often during the phase, and must answer within a second. */
const SIDECAR_ASK_MS = 250;

export interface NoisyReport {
  readonly floods: Readonly<Record<string, FloodCounts | undefined>>;
  readonly sidecarAsked: number;
  /** Sidecar requests with no answer within a second (any status counts as an answer). */
  readonly sidecarUnanswered: number;
}

type Step = { readonly what: string; readonly act: () => Promise<void> };

export class Soak {
  readonly options: SoakOptions;
  readonly bounds: Bounds;
  readonly #random: () => number;
  readonly #log: (line: string) => void;
  #origin: Origin | undefined;
  #fleet: SquidFleet | undefined;
  #server: DnsProcess | undefined;
  #dnsperf: GroupProcess | undefined;
  #checker: Checker | undefined;
  #dir: string | undefined;
  #timers: NodeJS.Timeout[] = [];
  readonly #originComponent = new Component('origin');
  readonly #squidComponents = POOLS.map((p) => new Component(p.name));
  readonly #violations: Violation[] = [];
  readonly #actions: ActionRecord[] = [];
  #t0 = 0;
  #config: ConfigShape = INITIAL_CONFIG;
  #reloads = 0;
  #held: string | undefined;
  #answers = { total: 0, servfail: 0, strict: 0, switches: 0, byPool: {} as Record<string, number> };
  #checkedTransitions = 0;
  #series: ResourceSample[] = [];
  #maxToProxy: Record<string, number> = {};
  #sidecar: SidecarProcess | undefined;
  readonly #floods = new Map<string, Flood>();
  #floodCounts: Record<string, FloodCounts | undefined> = {};
  #sidecarAsked = 0;
  #sidecarUnanswered = 0;

  constructor(options: SoakOptions) {
    this.options = options;
    this.bounds = boundsOf(TIMING, options.marginMs ?? 1_500);
    this.#random = seededRandom(options.seed);
    this.#log = options.log ?? (() => undefined);
  }

  #offset(t = Date.now()): number {
    return t - this.#t0;
  }

  #violate(kind: string, detail: string, at = Date.now()): void {
    // A broken invariant tends to repeat on every answer for a while: keep the first few of a kind.
    if (this.#violations.filter((v) => v.kind === kind).length >= 20) return;
    const violation = { offsetMs: this.#offset(at), kind, detail };
    this.#violations.push(violation);
    this.#log(`VIOLATION seed=${this.options.seed} +${violation.offsetMs}ms ${kind}: ${detail}`);
  }

  get #oracle(): Oracle {
    return new Oracle(
      POOLS.map((p, i) => ({ name: p.name, squid: this.#squidComponents[i] as Component })),
      this.#originComponent,
      this.bounds,
    );
  }

  async run(): Promise<SoakReport> {
    const { seed, scheduleMs } = this.options;
    this.#log(
      `soak: seed=${seed} schedule=${scheduleMs}ms detect<=${this.bounds.detectMs}ms recover<=${this.bounds.recoverMs}ms (replay: SOAK_SEED=${seed})`,
    );
    this.#dir = await mkdtemp(join(tmpdir(), 'ef-soak-'));
    this.#origin = await startOrigin({ host: ORIGIN_HOST, port: 80 });
    this.#fleet = await startSquids(
      POOLS.map((p) => ({ label: p.name, host: p.host })),
      { probeUrl: `http://${ORIGIN_HOST}/` },
    );
    const server = await startDnsServer(configOf(this.#config));
    this.#server = server;
    // The primary's sidecar, as in a Squid pod: its port is flooded too.
    this.#sidecar = await startSidecarProcess({
      proxy: `http://${POOLS[0].host}:3128`,
      targets: [`http://${ORIGIN_HOST}/`],
      interval: `${TIMING.intervalMs}ms`,
      timeout: `${TIMING.timeoutMs}ms`,
    });
    const oracle = this.#oracle;

    // Warm-up: every pool healthy and the primary answered, before anything is judged.
    await waitFor(
      async () => {
        const status = await server.status();
        const pools = status.services.find((s) => s.name === 'proxy')?.pools ?? [];
        return pools.length === 3 && pools.every((p) => p.state === 'healthy');
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'every pool healthy after start' },
    );
    this.#t0 = Date.now();

    const checker = new Checker(server.dnsAddress, NAME, (answer) => this.#judge(oracle, answer));
    this.#checker = checker;
    this.#timers.push(
      setInterval(() => {
        checker.ask();
        this.#watchProcess(oracle);
      }, 75),
    );

    const perfFile = join(this.#dir, 'queries.txt');
    await writeFile(perfFile, `${NAME} A\n`);
    // A safety limit: dnsperf is stopped once the run has recovered (below).
    const perfSeconds = Math.ceil((scheduleMs + 300_000) / 1000);
    const qps = this.options.qps ?? 500;
    const perf = spawnGroup('dnsperf', [
      '-s',
      server.dnsAddress.host,
      '-p',
      String(server.dnsAddress.port),
      '-d',
      perfFile,
      '-l',
      String(perfSeconds),
      '-Q',
      String(qps),
      '-c',
      '1',
    ]);
    this.#dnsperf = perf;

    const proxies = POOLS.map((p) => `${p.host}:3128`);
    const metrics = async () => (await server.get('/metrics')).body;
    const sample = () => sampleResources(server.pid, metrics, proxies);
    const samples = async (n: number) => {
      const out: ResourceSample[] = [];
      for (let i = 0; i < n; i++) {
        out.push(await sample());
        // Spread over a few probe intervals, so a round in flight in one sample is gone in the next.
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return out;
    };
    // Baseline after warm-up, under load.
    await waitFor(() => this.#answers.total >= 20, {
      timeoutMs: 10_000,
      what: 'the checker to get answers',
    });
    const baseline = floorOf(await samples(8));
    this.#log(`soak: baseline rss=${baseline.rssKb}kB fds=${baseline.fds} sockets=${baseline.sockets}`);

    let sampling = false;
    this.#timers.push(
      setInterval(() => {
        if (sampling) return;
        sampling = true;
        sample()
          .then((s) => this.#record(s))
          .catch(() => undefined)
          .finally(() => {
            sampling = false;
          });
      }, 2_000),
    );

    // The schedule, with the noisy neighbour in its first quarter.
    const [gapMin, gapMax] = this.options.gapMs ?? [500, 3_500];
    const scheduleEnd = this.#t0 + scheduleMs;
    const noiseAt = (fraction: number) => Math.max(0, this.#t0 + scheduleMs * fraction - Date.now());
    const noiseStart = setTimeout(() => this.#startNoise(), noiseAt(NOISE.window[0]));
    const noiseEnd = setTimeout(() => void this.#stopNoise(), noiseAt(NOISE.window[1]));
    this.#timers.push(noiseStart, noiseEnd);
    const maxSteps = Math.ceil(scheduleMs / gapMin) + 1;
    for (let i = 0; i < maxSteps && Date.now() < scheduleEnd; i++) {
      const gap = gapMin + Math.floor(this.#random() * (gapMax - gapMin));
      // The gap is the schedule itself (faults overlap or not by chance), not a wait for a condition.
      await new Promise((resolve) => setTimeout(resolve, gap));
      await this.#perform(this.#pick());
    }

    await this.#stopNoise();
    this.#checkNoise();

    // Repair everything, back to the initial config, and wait for the primary to be answered.
    for (const step of this.#repairs()) await this.#perform(step);
    await waitFor(
      async () => {
        const status = await server.status();
        const proxy = status.services.find((s) => s.name === 'proxy');
        return proxy?.pools.every((p) => p.state === 'healthy') && proxy.selected === 'primary';
      },
      { timeoutMs: this.bounds.recoverMs + 15_000, intervalMs: 100, what: 'every pool healthy after repair' },
    );

    // SIGINT: dnsperf stops and prints its statistics; queries still out count as interrupted, not lost.
    signalGroup(perf, 'SIGINT');
    await waitFor(() => !perf.running(), { timeoutMs: 10_000, intervalMs: 100, what: 'dnsperf to finish' });
    const dnsperf = parseDnsperf(perf.output());
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    // Let the last answers in, then close the checker.
    await waitFor(() => checker.outstanding === 0, {
      timeoutMs: 2_000,
      what: 'the last checker answers',
    }).catch(() => undefined);
    this.#watchProcess(oracle);
    checker.close();
    this.#checker = undefined;

    const final = floorOf(await samples(8));
    this.#record(final);
    this.#compareResources(baseline, final);
    this.#checkDnsperf(dnsperf);
    // The checker's own queries: as for dnsperf, 0.1 % (and one, for a short run).
    if (checker.lost > 1 + this.#answers.total * 0.001)
      this.#violate(
        'lost',
        `the checker got no answer to ${checker.lost} of ${this.#answers.total + checker.lost} queries`,
      );
    const serving = server.logs().filter((l) => l.msg === 'serving').length;
    if (serving !== 1) this.#violate('restart', `the server logged "serving" ${serving} times`);

    return {
      seed,
      scheduleMs,
      bounds: this.bounds,
      pid: server.pid,
      actions: this.#actions,
      violations: this.#violations,
      answers: { ...this.#answers, lost: checker.lost },
      transitions: server.transitions('proxy').length,
      reloads: this.#reloads,
      dnsperf,
      resources: { baseline, final, maxToProxy: this.#maxToProxy, series: this.#series },
      noisy: {
        floods: this.#floodCounts,
        sidecarAsked: this.#sidecarAsked,
        sidecarUnanswered: this.#sidecarUnanswered,
      },
    };
  }

  #judge(oracle: Oracle, answer: Answer): void {
    this.#answers.total += 1;
    const pool = POOLS.find((p) => p.address === answer.address)?.name;
    if (answer.rcode === 2) this.#answers.servfail += 1;
    const verdicts = [answer.sentAt, answer.receivedAt].map((t) => oracle.verdict(t, this.#held));
    const acceptable = new Set(verdicts.flatMap((v) => v.acceptable));
    if (answer.rcode !== 0 || pool === undefined) {
      // onAllDown: last never answers SERVFAIL once a pool has been healthy: not even when all are down.
      this.#violate(
        'rcode',
        `rcode ${answer.rcode} address ${answer.address ?? '-'}; ${verdicts.some((v) => v.someoneUp) ? 'a pool was surely up' : 'no pool surely up'}`,
        answer.receivedAt,
      );
      return;
    }
    if (acceptable.size === 1) this.#answers.strict += 1;
    this.#answers.byPool[pool] = (this.#answers.byPool[pool] ?? 0) + 1;
    if (!acceptable.has(pool)) {
      this.#violate(
        'answer',
        `answered ${pool}; acceptable [${[...acceptable].join(',')}]; ${this.#describeTruth(answer.receivedAt)}`,
        answer.receivedAt,
      );
    }
    if (this.#held !== undefined && this.#held !== pool) this.#answers.switches += 1;
    this.#held = pool;
  }

  #describeTruth(t: number): string {
    const conditions = [...this.#squidComponents, this.#originComponent].map((c) => `${c.name}=${c.at(t)}`);
    const recent = this.#actions.slice(-4).map((a) => `+${a.offsetMs} ${a.what}`);
    return `${conditions.join(' ')}; recent: ${recent.join('; ')}`;
  }

  #watchProcess(oracle: Oracle): void {
    const server = this.#server;
    if (!server) return;
    if (!server.proc.running()) this.#violate('restart', `the server (pid ${server.pid}) exited`);
    const transitions = server.transitions('proxy');
    for (; this.#checkedTransitions < transitions.length; this.#checkedTransitions++) {
      const line = transitions[this.#checkedTransitions] as TransitionLine;
      const at = Date.parse(line.time);
      if (at < this.#t0) continue;
      const why = oracle.unjustified(line.pool, line.from, line.to, at);
      if (why) {
        this.#violate(
          'transition',
          `${line.pool} ${line.from}->${line.to} (${line.reason}): ${why}; ${this.#describeTruth(at)}`,
          at,
        );
      }
    }
  }

  #record(s: ResourceSample): void {
    this.#series.push(s);
    for (const [proxy, n] of Object.entries(s.toProxy)) {
      this.#maxToProxy[proxy] = Math.max(this.#maxToProxy[proxy] ?? 0, n);
      if (n > MAX_SOCKETS_PER_PROXY)
        this.#violate('sockets', `${n} sockets open to ${proxy} (at most ${MAX_SOCKETS_PER_PROXY})`, s.at);
    }
  }

  /**
   * Counts (fds, sockets, handles, timers) must come back to their floor after warm-up, give or take
   * a round in flight. Memory is noisier: V8 grows its heap lazily and returns it late, so RSS and
   * heap are compared with their highest level in the first quarter of the schedule (faults and
   * reloads included, so every code path has run), with 25 % + 16 MB of room. A leak of a few KB per
   * round shows in a long run (SOAK_SECONDS=1800), not in the CI one.
   */
  #compareResources(baseline: ResourceSample, final: ResourceSample): void {
    const warm = [baseline, ...this.#series.filter((s) => s.at <= this.#t0 + this.options.scheduleMs / 4)];
    const mb = 1024 * 1024;
    const rssWarm = Math.max(...warm.map((s) => s.rssKb));
    if (final.rssKb > rssWarm * 1.25 + 16 * 1024)
      this.#violate('rss', `RSS ${final.rssKb} kB after the run, ${rssWarm} kB at most after warm-up`);
    const heap = (s: ResourceSample) => s.active.nodejs_heap_size_used_bytes ?? 0;
    const heapWarm = Math.max(...warm.map(heap));
    if (heap(final) > heapWarm * 1.25 + 16 * mb)
      this.#violate('heap', `heap used ${heap(final)} B after the run, ${heapWarm} B at most after warm-up`);
    if (final.fds > baseline.fds + 3)
      this.#violate('fds', `${final.fds} open fds after the run, ${baseline.fds} after warm-up`);
    if (final.sockets > baseline.sockets + 2)
      this.#violate('sockets', `${final.sockets} sockets after the run, ${baseline.sockets} after warm-up`);
    for (const [proxy, n] of Object.entries(final.toProxy))
      if (n > 0) this.#violate('sockets', `${n} sockets still open to ${proxy} at rest`);
    for (const [key, n] of Object.entries(final.active)) {
      if (!key.startsWith('nodejs_active_')) continue;
      const before = baseline.active[key] ?? 0;
      if (n > before + 3) this.#violate('handles', `${key} ${n} after the run, ${before} after warm-up`);
    }
  }

  #checkDnsperf(result: DnsperfResult): void {
    if (!(result.sent > 0)) {
      this.#violate('dnsperf', `no dnsperf summary:\n${result.output.slice(-2000)}`);
      return;
    }
    if (result.lost > result.sent * 0.001)
      this.#violate('lost', `dnsperf lost ${result.lost} of ${result.sent} queries (more than 0.1 %)`);
    const bad = Object.entries(result.rcodes).filter(([code]) => code !== 'NOERROR');
    if (bad.length > 0) this.#violate('rcode', `dnsperf saw ${bad.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  }

  async #perform(step: Step): Promise<void> {
    const started = Date.now();
    try {
      await step.act();
    } catch (err) {
      this.#violate('harness', `${step.what} failed: ${(err as Error).message}`);
      throw err;
    }
    const record = { offsetMs: this.#offset(started), what: step.what, tookMs: Date.now() - started };
    this.#actions.push(record);
    this.#log(`soak: +${record.offsetMs}ms ${record.what} (${record.tookMs}ms)`);
  }

  async #change(component: Component, to: Condition, what: string, act: () => Promise<void> | void) {
    const change = component.begin(to, what, Date.now());
    try {
      await act();
    } finally {
      change.end = Date.now();
    }
  }

  /** The next step, drawn from what the current state allows. */
  #pick(): Step {
    const steps: { weight: number; step: Step }[] = [];
    const fleet = this.#fleet as SquidFleet;
    for (const [i, pool] of POOLS.entries()) {
      const squid = fleet.squids[i] as Squid;
      const component = this.#squidComponents[i] as Component;
      if (component.condition === 'ok') {
        const faults: Step[] = [
          {
            what: `kill ${pool.name}`,
            act: () => this.#change(component, 'broken', 'kill', () => squid.kill()),
          },
          {
            what: `hang ${pool.name}`,
            act: () => this.#change(component, 'broken', 'hang', () => squid.stop()),
          },
          {
            what: `cut egress of ${pool.name}`,
            act: () => this.#change(component, 'broken', 'cut', () => squid.cutEgress()),
          },
        ];
        for (const step of faults) steps.push({ weight: 1 / 3, step });
      } else {
        steps.push({ weight: 1.5, step: this.#repairSquid(i) });
      }
    }
    const origin = this.#origin as Origin;
    if (this.#originComponent.condition === 'ok') {
      steps.push(
        {
          weight: 0.15,
          step: {
            what: `origin slow ${ORIGIN_SLOW_FAIL_MS}ms`,
            act: () =>
              this.#change(this.#originComponent, 'broken', 'slow', () => origin.slow(ORIGIN_SLOW_FAIL_MS)),
          },
        },
        {
          weight: 0.15,
          step: {
            what: 'origin status 500',
            act: () => this.#change(this.#originComponent, 'broken', 'status 500', () => origin.status(500)),
          },
        },
        {
          weight: 0.15,
          step: {
            what: `origin slow ${ORIGIN_SLOW_OK_MS}ms (still passing)`,
            act: () =>
              this.#change(this.#originComponent, 'ok', 'slow ok', () => origin.slow(ORIGIN_SLOW_OK_MS)),
          },
        },
      );
    } else {
      steps.push({ weight: 1.2, step: this.#repairOrigin() });
    }
    const flipTtl = this.#random() < 0.5;
    const next = flipTtl
      ? { ...this.#config, ttl: this.#config.ttl === 5 ? 6 : 5 }
      : { ...this.#config, extra: !this.#config.extra };
    steps.push({ weight: 0.6, step: this.#reload(next, this.#random() < 0.5 ? 'file' : 'SIGHUP') });

    const total = steps.reduce((n, s) => n + s.weight, 0);
    let r = this.#random() * total;
    for (const { weight, step } of steps) {
      r -= weight;
      if (r < 0) return step;
    }
    return (steps.at(-1) as { step: Step }).step;
  }

  #repairSquid(i: number): Step {
    const pool = POOLS[i] as (typeof POOLS)[number];
    const squid = (this.#fleet as SquidFleet).squids[i] as Squid;
    const component = this.#squidComponents[i] as Component;
    const fault = component.changes.at(-1)?.what;
    const act =
      fault === 'kill'
        ? () => squid.start()
        : fault === 'hang'
          ? () => squid.cont()
          : () => squid.restoreEgress();
    const verb = fault === 'kill' ? 'restart' : fault === 'hang' ? 'resume' : 'restore egress of';
    return { what: `${verb} ${pool.name}`, act: () => this.#change(component, 'ok', verb, act) };
  }

  #repairOrigin(): Step {
    const origin = this.#origin as Origin;
    return {
      what: 'origin ok',
      act: () => this.#change(this.#originComponent, 'ok', 'ok', () => origin.ok()),
    };
  }

  #repairs(): Step[] {
    const steps: Step[] = [];
    for (const [i, component] of this.#squidComponents.entries())
      if (component.condition === 'broken') steps.push(this.#repairSquid(i));
    if (this.#originComponent.condition === 'broken' || (this.#origin as Origin).mode.kind !== 'ok')
      steps.push(this.#repairOrigin());
    if (this.#config.ttl !== INITIAL_CONFIG.ttl || this.#config.extra !== INITIAL_CONFIG.extra)
      steps.push(this.#reload(INITIAL_CONFIG, 'file'));
    return steps;
  }

  /** Rewrites the config file atomically (as an editor or the kubelet would) and waits for the reload. */
  #reload(next: ConfigShape, trigger: 'file' | 'SIGHUP'): Step {
    const server = this.#server as DnsProcess;
    return {
      what: `reload (${trigger}) ttl=${next.ttl} extra=${next.extra}`,
      act: async () => {
        const count = () => server.logs().filter((l) => l.msg === 'config reloaded').length;
        const before = count();
        const temp = `${server.configPath}.tmp`;
        await writeFile(temp, `${JSON.stringify(configOf(next), null, 2)}\n`);
        await rename(temp, server.configPath);
        if (trigger === 'SIGHUP') process.kill(server.pid, 'SIGHUP');
        this.#config = next;
        this.#reloads += 1;
        await waitFor(
          () => {
            if (
              server
                .logs()
                .some((l) => typeof l.msg === 'string' && l.msg.startsWith('config reload refused'))
            )
              throw new Error('reload refused');
            return count() > before;
          },
          { timeoutMs: 10_000, what: `the ${trigger} reload to be applied` },
        );
      },
    };
  }

  #startNoise(): void {
    const server = this.#server;
    const sidecar = this.#sidecar;
    if (!server || !sidecar) return;
    const targets = {
      http: server.httpAddress,
      sidecar: sidecar.address,
      dnsTcp: server.dnsAddress,
    } as const;
    for (const [name, target] of Object.entries(targets) as [
      keyof typeof targets,
      typeof server.httpAddress,
    ][]) {
      this.#floods.set(
        name,
        startFlood({
          targets: [target],
          connections: NOISE.connections,
          ratePerSec: NOISE.ratePerSec,
          lifeMs: NOISE.lifeMs,
          sources: NOISE.sources[name],
        }),
      );
    }
    this.#log(`soak: +${this.#offset()}ms noisy neighbour: ${[...this.#floods.keys()].join(', ')} flooded`);
    // The sidecar's endpoint is what the kubelet asks: it must answer (200 or 503) within a second.
    let asking = false;
    const ask = setInterval(() => {
      if (asking || this.#floods.size === 0) return;
      asking = true;
      this.#sidecarAsked += 1;
      httpGet(sidecar.address, '/readyz', 1_000)
        .catch((err: Error) => {
          this.#sidecarUnanswered += 1;
          this.#violate('noisy', `the sidecar did not answer /readyz within 1 s: ${err.message}`);
        })
        .finally(() => {
          asking = false;
        });
    }, SIDECAR_ASK_MS);
    this.#timers.push(ask);
  }

  async #stopNoise(): Promise<void> {
    const floods = [...this.#floods];
    this.#floods.clear();
    for (const [name, flood] of floods) this.#floodCounts[name] = await flood.stop();
    if (floods.length > 0)
      this.#log(`soak: +${this.#offset()}ms noisy neighbour gone: ${JSON.stringify(this.#floodCounts)}`);
  }

  /** The phase must have happened, and been more than each server holds: else it proved nothing. */
  #checkNoise(): void {
    for (const name of Object.keys(NOISE.sources)) {
      const counts = this.#floodCounts[name];
      if (!counts || counts.opened < NOISE.connections)
        this.#violate(
          'noisy',
          `the ${name} flood opened ${counts?.opened ?? 0} connections, fewer than ${NOISE.connections}`,
        );
      else if (counts.closedByServer === 0)
        this.#violate(
          'noisy',
          `the ${name} server never closed a flood connection: the flood stayed under its limits`,
        );
    }
    if (this.#sidecarAsked === 0) this.#violate('noisy', 'the sidecar was never asked during the flood');
  }

  /** Ends everything this soak started, by PID; safe to call more than once and after a failure. */
  async dispose(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await Promise.all([...this.#floods.values()].map((flood) => flood.stop()));
    this.#floods.clear();
    await this.#sidecar?.dispose();
    this.#sidecar = undefined;
    this.#checker?.close();
    this.#checker = undefined;
    if (this.#dnsperf) await endGroup(this.#dnsperf, 'SIGKILL').catch(() => undefined);
    await this.#server?.dispose();
    await this.#fleet?.stopAll();
    await this.#origin?.close().catch(() => undefined);
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#server = undefined;
    this.#fleet = undefined;
    this.#origin = undefined;
    this.#dnsperf = undefined;
    this.#dir = undefined;
  }
}

/** One line per figure, for logs and docs. */
export function summarize(report: SoakReport): string {
  const { answers, resources, dnsperf } = report;
  const r = (s: ResourceSample) =>
    `rss=${Math.round(s.rssKb / 1024)}MB fds=${s.fds} sockets=${s.sockets} timers=${s.active['nodejs_active_resources{type="Timeout"}'] ?? '?'}`;
  return [
    `seed=${report.seed} schedule=${report.scheduleMs}ms actions=${report.actions.length} reloads=${report.reloads} transitions=${report.transitions} pid=${report.pid}`,
    `checker: ${answers.total} answers, ${answers.lost} lost, ${answers.servfail} SERVFAIL, ${answers.strict} strict, ${answers.switches} switches, by pool ${JSON.stringify(answers.byPool)}`,
    `dnsperf: sent=${dnsperf?.sent} lost=${dnsperf?.lost} rcodes=${JSON.stringify(dnsperf?.rcodes ?? {})}`,
    `resources: baseline ${r(resources.baseline)}; final ${r(resources.final)}; max sockets per proxy ${JSON.stringify(resources.maxToProxy)}`,
    `rss/heap MB over time: ${resources.series
      .map(
        (s) =>
          `${Math.round(s.rssKb / 1024)}/${Math.round((s.active.nodejs_heap_size_used_bytes ?? 0) / 2 ** 20)}`,
      )
      .join(' ')}`,
    `noisy neighbour: sidecar asked ${report.noisy.sidecarAsked}, unanswered ${report.noisy.sidecarUnanswered}; ${Object.entries(
      report.noisy.floods,
    )
      .map(
        ([name, c]) =>
          `${name} opened=${c?.opened} closedByServer=${c?.closedByServer} maxOpen=${c?.maxOpen}`,
      )
      .join('; ')}`,
    `violations: ${report.violations.length}`,
  ].join('\n');
}

/** The seed from SOAK_SEED, or a fresh one. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.SOAK_SEED;
  if (text !== undefined && text !== '') {
    const seed = Number(text);
    if (!Number.isInteger(seed)) throw new Error(`SOAK_SEED must be an integer, got ${text}`);
    return seed >>> 0;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
