// A noisy neighbour for tests, the soak and the bench: flood.mjs in processes of their own, holding
// thousands of silent TCP connections to the ports given. Independent of vitest.
//
//   const flood = startFlood({ targets: [http], connections: 20_000 });
//   await flood.until((c) => c.opened > 20_000, 'the flood to open 20,000 connections');
//   const counts = await flood.stop();
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { endGroup, type GroupProcess, spawnGroup } from './process.js';
import { GiveUp, waitFor } from './wait.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'flood.mjs');

export interface FloodOptions {
  readonly targets: readonly { readonly host: string; readonly port: number }[];
  /** Connections held open at once, in all. */
  readonly connections: number;
  /** Local addresses to connect from, in turn (default 127.0.0.1). */
  readonly sources?: readonly string[];
  /** 0 (default): hold each until the server closes it; else close each within this many ms. */
  readonly lifeMs?: number;
  /** Open a new connection for each one that ends (default true). */
  readonly reopen?: boolean;
  /** Connects pending at once (default 1000). */
  readonly inFlight?: number;
  /** New connections a second at most, in all (default: as fast as it can). */
  readonly ratePerSec?: number;
  /** Runs its processes on these CPUs only (taskset -c), e.g. '1': a neighbour on cores of its own. */
  readonly cpus?: string;
}

export interface FloodCounts {
  readonly at: number;
  readonly open: number;
  readonly connecting: number;
  readonly opened: number;
  readonly closedByServer: number;
  readonly closedByUs: number;
  /** Connections the server closed, by age: [< 1.5 s, < 2.5 s, longer]. */
  readonly serverClosedAfter: readonly [number, number, number];
  readonly maxOpen: number;
  readonly errors: Readonly<Record<string, number>>;
}

export interface Flood {
  /** Its processes, each holding its share of the connections. */
  readonly procs: readonly GroupProcess[];
  /** True while every process runs. */
  running(): boolean;
  /** The counts of all its processes, summed (each prints every 250 ms); undefined before all have. */
  counts(): FloodCounts | undefined;
  /** Waits until `condition` holds for the counts; throws at once if a flood process dies. */
  until(condition: (counts: FloodCounts) => boolean, what: string, timeoutMs?: number): Promise<FloodCounts>;
  /** Ends it, returns the last counts. Safe to call twice. */
  stop(): Promise<FloodCounts | undefined>;
}

/**
 * Connections one process holds at most: each takes a descriptor (a pending connect too), and a
 * process inherits this one's limit, which it cannot raise past the hard limit.
 */
const PER_PROCESS = 8_000;

function spawnOne(options: FloodOptions): { proc: GroupProcess; last: () => FloodCounts | undefined } {
  const argv = [process.execPath, SCRIPT, JSON.stringify(options)];
  const [command, ...args] = options.cpus ? ['taskset', '-c', options.cpus, ...argv] : argv;
  const proc = spawnGroup(command as string, args);
  let last: FloodCounts | undefined;
  let partial = '';
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        last = JSON.parse(line) as FloodCounts;
      } catch {
        // Not a counts line: kept in proc.output() for failure messages.
      }
    }
  });
  return { proc, last: () => last };
}

function sum(all: readonly FloodCounts[]): FloodCounts {
  const total = (f: (c: FloodCounts) => number) => all.reduce((n, c) => n + f(c), 0);
  const errors: Record<string, number> = {};
  for (const c of all)
    for (const [code, n] of Object.entries(c.errors)) errors[code] = (errors[code] ?? 0) + n;
  return {
    at: Math.max(...all.map((c) => c.at)),
    open: total((c) => c.open),
    connecting: total((c) => c.connecting),
    opened: total((c) => c.opened),
    closedByServer: total((c) => c.closedByServer),
    closedByUs: total((c) => c.closedByUs),
    serverClosedAfter: [0, 1, 2].map((i) => total((c) => c.serverClosedAfter[i] ?? 0)) as [
      number,
      number,
      number,
    ],
    maxOpen: total((c) => c.maxOpen),
    errors,
  };
}

export function startFlood(options: FloodOptions): Flood {
  const n = Math.ceil(options.connections / PER_PROCESS);
  const parts = Array.from({ length: n }, (_, i) =>
    spawnOne({
      ...options,
      connections: Math.ceil(options.connections / n),
      // Each process its own sources, so together they still spread over all of them.
      sources: (options.sources ?? ['127.0.0.1']).filter((_, j, all) => all.length < n || j % n === i),
      inFlight: Math.ceil((options.inFlight ?? 1_000) / n),
      ...(options.ratePerSec ? { ratePerSec: options.ratePerSec / n } : {}),
    }),
  );
  const procs = parts.map((p) => p.proc);
  const running = () => procs.every((p) => p.running());
  const counts = () => {
    const all = parts.map((p) => p.last());
    return all.every((c) => c !== undefined) ? sum(all as FloodCounts[]) : undefined;
  };
  return {
    procs,
    running,
    counts,
    until: (condition, what, timeoutMs = 30_000) =>
      waitFor(
        () => {
          const dead = procs.find((p) => !p.running());
          if (dead) throw new GiveUp(`a flood process exited:\n${dead.output()}`);
          const now = counts();
          return now && condition(now) ? now : undefined;
        },
        { timeoutMs, intervalMs: 100, what },
      ),
    async stop() {
      await Promise.all(procs.map((p) => endGroup(p, 'SIGTERM', 5_000).catch(() => undefined)));
      return counts();
    },
  };
}
