// Reading a config file: its size checked before a byte of it is read, then parsed and validated
// (parse.ts) in a short-lived child process (parse-process.ts), so that DNS keeps answering while a
// large file is judged, and this process never loads the YAML parser or zod at all.
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { deserialize } from 'node:v8';
import { unreadableLine } from '../errors.js';
import { runInSlices } from '../slices.js';
import type { AnyConfig, ParseKind } from './parse.js';
import { type ConfigParts, fromParts } from './parts.js';
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

// The compiled parser script sits next to this module. Sources run by vitest are TypeScript, which
// it cannot load: there (unit tests only) the parse runs inline. What operators run, and what the
// integration tests spawn, is the compiled build, which always parses in its own process.
const PROCESS_SCRIPT = fileURLToPath(new URL('./parse-process.js', import.meta.url));
const CAN_SPAWN_PARSER = import.meta.url.endsWith('.js');
// A hostile YAML that needs more than this is refused as invalid instead of growing the process.
const PARSER_HEAP_MB = 256;

/** The one line for a parser that gave no verdict of its own. */
function couldNotParse<T>(file: string, why: string): Loaded<T> {
  return { ok: false, reason: 'invalid', errors: [`${file}: the config could not be parsed (${why})`] };
}

/**
 * Parses and validates in a child process of this Node.js. YAML parsing and zod validation of
 * 1 MiB took 0.6-1.9 s on the main thread (bench/reload-stall.ts), every DNS answer waiting. A
 * worker thread kept that off the main thread too, but its memory stays in the process after it
 * has ended (about 3 MB at rest and 9 MB of the peak, bench/sidecar-rss.ts and bench/rss.ts); a
 * process gives all of it back when it exits. It costs a process per load (about 0.2 s of another
 * core, most of it loading the YAML parser and zod), which a reload can spend. The config comes back
 * in parts (parts.ts), taken in with I/O served between them.
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
    // The heap bound on the command line, where it overrides the one in NODE_OPTIONS.
    const child = spawn(process.execPath, [`--max-old-space-size=${PARSER_HEAP_MB}`, PROCESS_SCRIPT, kind], {
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
      let result: { ok: true; parts: ConfigParts } | (Loaded<T> & { ok: false });
      try {
        result = deserialize(Buffer.concat(out));
      } catch {
        return failed('unreadable answer from the parser');
      }
      if (!result.ok) return settle(result);
      runInSlices(fromParts(result.parts)).then(
        (config) => settle({ ok: true, config: config as T, text }),
        (err: Error) => failed(`unreadable answer from the parser: ${err.message}`),
      );
    });
    child.stdin.end(text);
  });
}

async function loadFile<T>(file: string, kind: ParseKind): Promise<Loaded<T>> {
  const read = await readConfigFile(file);
  if (!read.ok) return read;
  if (!CAN_SPAWN_PARSER) {
    const { parseByKind } = await import('./parse.js');
    return parseByKind(kind, read.text) as Loaded<T>;
  }
  return parseInChildProcess<T>(kind, file, read.text);
}

export const loadDnsConfig = (file: string): Promise<Loaded<DnsConfig>> => loadFile(file, 'dns');
export const loadSidecarConfig = (file: string): Promise<Loaded<SidecarConfig>> => loadFile(file, 'sidecar');
/** For check-config: either kind, told apart by the document (parseAnyConfigText). */
export const loadAnyConfig = (file: string): Promise<Loaded<AnyConfig>> => loadFile(file, 'any');
