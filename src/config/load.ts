// Reading a config file: its size checked before a byte of it is read, then parsed and validated
// (parse.ts) on a worker thread (parse-worker.ts), or for the sidecar in a child process
// (parse-process.ts), so that DNS keeps answering while a large file is judged and this process
// never loads the YAML parser or zod at all.
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { deserialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { deepFreeze } from '../deep-freeze.js';
import { unreadableLine } from '../errors.js';
import { runInSlices } from '../slices.js';
import type { AnyConfig, ParseKind } from './parse.js';
import type { DnsConfig, SidecarConfig } from './schema.js';

/**
 * A config, or why not: `errors` are the lines to print, one per problem. `reason` tells a file
 * that could not be read (CONFIG_UNREADABLE in src/errors.ts) or is over MAX_CONFIG_BYTES
 * (CONFIG_TOO_LARGE) from one that is wrong (CONFIG_INVALID).
 */
export type Loaded<T> =
  | { ok: true; config: T; text: string }
  | { ok: false; reason: LoadFailure; errors: string[] };
export type LoadFailure = 'invalid' | 'unreadable' | 'too_large';

/**
 * The largest config file read: 1 MiB, the most a ConfigMap holds. A real config is a few KB; a
 * file far larger is a mistake (or an attack), and parsing 20 MB of YAML took 2.5 GB and half a
 * minute. Checked on the open file before reading, for the first load, check-config and reloads.
 */
export const MAX_CONFIG_BYTES = 1 << 20;

function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** The size limit as an operator reads it in the message: "1 MiB", "64 KiB", or bytes. */
function formatLimit(bytes: number): string {
  if (bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

type ReadResult = { ok: true; text: string } | { ok: false; reason: LoadFailure; errors: string[] };

/**
 * The file's text if it is at most `limit` bytes. The size is taken from the open file (fstat),
 * so a file swapped after the check is still the one judged, and the read stops at limit + 1
 * bytes, so one that grows after the check (or a pipe, whose size is 0) is still bounded.
 */
export async function readConfigFile(file: string, limit = MAX_CONFIG_BYTES): Promise<ReadResult> {
  const unreadable = (err: unknown): ReadResult => {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: 'unreadable', errors: [unreadableLine(file, code)] };
  };
  const tooLarge = (size: string): ReadResult => ({
    ok: false,
    reason: 'too_large',
    errors: [`${file}: the config file is ${size}, over the limit of ${formatLimit(limit)}`],
  });
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    return unreadable(err);
  }
  try {
    const { size } = await handle.stat();
    if (size > limit) return tooLarge(formatSize(size));
    const buffer = Buffer.allocUnsafe(limit + 1);
    let length = 0;
    while (length <= limit) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) return tooLarge(`over ${formatLimit(limit)}`);
    return { ok: true, text: buffer.toString('utf8', 0, length) };
  } catch (err) {
    return unreadable(err);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

// The compiled worker and process scripts sit next to this module. Sources run by vitest are
// TypeScript, which neither can load: there (unit tests only) the parse runs inline. What operators
// run, and what the integration tests spawn, is the compiled build, which always parses off-thread.
const WORKER_URL = new URL('./parse-worker.js', import.meta.url);
const CAN_USE_WORKER = import.meta.url.endsWith('.js');
// A hostile YAML that needs more than this is refused as invalid instead of growing the process.
const WORKER_HEAP_MB = 256;

/** The one line for a parser (worker or process) that gave no verdict of its own. */
function couldNotParse<T>(file: string, why: string): Loaded<T> {
  return { ok: false, reason: 'invalid', errors: [`${file}: the config could not be parsed (${why})`] };
}

/** A parsed config as the worker sends it (parse-worker.ts): a skeleton, and its long arrays in parts. */
export interface ConfigParts {
  /** v8-serialized, each long array in it left empty. */
  readonly head: Uint8Array;
  /** Outer arrays before the arrays inside them. */
  readonly arrays: readonly LongArray[];
}

export interface LongArray {
  /** Keys and indexes from the root of the config to the array. */
  readonly path: readonly (string | number)[];
  /** Its items, v8-serialized, in order, a hundred or so per part. */
  readonly parts: readonly Uint8Array[];
}

/** The config from its parts, frozen, one part per step (run in slices, with I/O between them). */
function* fromParts({ head, arrays }: ConfigParts): Generator<void, unknown> {
  const config = deserialize(head) as unknown;
  const filled: unknown[][] = [];
  for (const { path, parts } of arrays) {
    // Found only now: an array inside an outer long one exists once the outer one is filled.
    const target = path.reduce<unknown>(
      (node, key) => (node as Record<string | number, unknown>)[key],
      config,
    );
    for (const part of parts) {
      for (const item of deserialize(part) as unknown[]) (target as unknown[]).push(item);
      yield;
    }
    filled.push(target as unknown[]);
  }
  // Frozen one long array per step, the deepest first (an outer one would walk them all again).
  for (const target of filled.reverse()) {
    deepFreeze(target);
    yield;
  }
  return deepFreeze(config);
}

/**
 * Parses and validates on a worker thread. YAML parsing and zod validation of 1 MiB took
 * 0.6-1.9 s on the main thread (bench/reload-stall.ts), every DNS answer waiting; on a worker
 * the main thread only receives the result.
 */
function parseOffThread<T>(kind: ParseKind, file: string, text: string): Promise<Loaded<T>> {
  return new Promise((resolve) => {
    const worker = new Worker(WORKER_URL, {
      workerData: { kind, text },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    let settled = false;
    const failed = (why: string) => {
      if (settled) return;
      settled = true;
      resolve(couldNotParse(file, why));
    };
    worker.once('message', (result: { ok: true; parts: ConfigParts } | (Loaded<T> & { ok: false })) => {
      settled = true;
      if (!result.ok) return resolve(result);
      // The text stayed here; the config comes in parts, taken in with I/O served between them.
      runInSlices(fromParts(result.parts)).then(
        (config) => resolve({ ok: true, config: config as T, text }),
        (err: Error) => resolve(couldNotParse(file, `unreadable answer from the parser: ${err.message}`)),
      );
    });
    worker.once('error', (err: Error & { code?: string }) => failed(err.code ?? err.message));
    worker.once('exit', (code) => failed(`parser exited with code ${code}`));
  });
}

const PROCESS_SCRIPT = fileURLToPath(new URL('./parse-process.js', import.meta.url));

/**
 * Parses and validates in a child process of this Node.js, for the sidecar. A worker thread's
 * memory stays in the process after the worker has ended: about 3 MB of the sidecar's RSS at rest
 * and 9 MB of its peak, in every Squid pod (bench/sidecar-rss.ts); a process gives all of its
 * memory back when it exits. It costs a Node.js start-up per load, which a sidecar's small config
 * can spend. The dns server keeps the worker, whose parts let a large config in without holding up
 * DNS answers.
 */
function parseInChildProcess<T>(kind: ParseKind, file: string, text: string): Promise<Loaded<T>> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (loaded: Loaded<T>) => {
      if (settled) return;
      settled = true;
      resolve(loaded);
    };
    const failed = (why: string) => settle(couldNotParse(file, why));
    // The worker's heap bound, on the command line, where it overrides the one in NODE_OPTIONS.
    const child = spawn(process.execPath, [`--max-old-space-size=${WORKER_HEAP_MB}`, PROCESS_SCRIPT, kind], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    // A parser that died before reading all of its input fails the write (EPIPE): its exit says why.
    child.stdin.on('error', () => undefined);
    child.once('error', (err: NodeJS.ErrnoException) =>
      failed(`parser did not start: ${err.code ?? err.message}`),
    );
    child.once('close', (code, signal) => {
      if (code !== 0) {
        if (stderr.includes('heap out of memory')) return failed('parser out of memory');
        return failed(signal ? `parser ended by ${signal}` : `parser exited with code ${code}`);
      }
      let result: { ok: true; config: T } | (Loaded<T> & { ok: false });
      try {
        result = deserialize(Buffer.concat(out));
      } catch {
        return failed('unreadable answer from the parser');
      }
      settle(result.ok ? { ok: true, config: deepFreeze(result.config), text } : result);
    });
    child.stdin.end(text);
  });
}

async function loadFile<T>(file: string, kind: ParseKind): Promise<Loaded<T>> {
  const read = await readConfigFile(file);
  if (!read.ok) return read;
  if (!CAN_USE_WORKER) {
    const { parseByKind } = await import('./parse.js');
    return parseByKind(kind, read.text) as Loaded<T>;
  }
  if (kind === 'sidecar') return parseInChildProcess<T>(kind, file, read.text);
  return parseOffThread<T>(kind, file, read.text);
}

export const loadDnsConfig = (file: string): Promise<Loaded<DnsConfig>> => loadFile(file, 'dns');
export const loadSidecarConfig = (file: string): Promise<Loaded<SidecarConfig>> => loadFile(file, 'sidecar');
/** For check-config: either kind, told apart by the document (parseAnyConfigText). */
export const loadAnyConfig = (file: string): Promise<Loaded<AnyConfig>> => loadFile(file, 'any');
