// Reading a config file: YAML (JSON is valid YAML) -> schema -> frozen config, or every problem
// as one "path: message" line an operator can act on. The file's size is checked before a byte of
// it is read, and the parse runs on a worker thread (parse-worker.ts) so that DNS keeps answering
// while a large file is judged.
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { deepFreeze } from '../deep-freeze.js';
import { unreadableLine } from '../errors.js';
import {
  configKind,
  type DnsConfig,
  dnsConfigSchema,
  type SidecarConfig,
  sidecarConfigSchema,
} from './schema.js';

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

/** ['services', 0, 'pools', 1, 'proxy'] -> services[0].pools[1].proxy */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

// Operators write YAML, so the messages speak of lists and mappings, not arrays and objects.
function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return String(value);
  return `${typeof value} ${String(value)}`;
}

const EXPECTED: Record<string, string> = {
  array: 'a list',
  object: 'a mapping',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

// Zod's stock messages ("Invalid input: expected array, received undefined") describe the
// validator; these describe the file. Messages set in the schema itself take precedence.
const operatorMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${kind(issue.input)}`;
    case 'invalid_value':
      return `${JSON.stringify(issue.input)} is not one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'number' || issue.origin === 'int') return `must be at least ${issue.minimum}`;
      return undefined;
    case 'too_big':
      if (issue.origin === 'number' || issue.origin === 'int') return `must be at most ${issue.maximum}`;
      return undefined;
    default:
      return undefined;
  }
};

/** The YAML document as plain data, or its syntax errors as "line N column M: message" lines. */
function readYaml(
  text: string,
): { ok: true; data: unknown } | { ok: false; reason: 'invalid'; errors: string[] } {
  // prettyErrors would put the position in the message with a code excerpt over several lines;
  // a LineCounter gives the bare position for one line per error.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      reason: 'invalid',
      errors: doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `line ${line} column ${col}: ${e.message.split('\n')[0]}`;
      }),
    };
  }
  try {
    return { ok: true, data: doc.toJS() ?? {} };
  } catch (err) {
    // toJS throws on alias bombs (more alias expansions than maxAliasCount allows).
    return { ok: false, reason: 'invalid', errors: [`yaml: ${(err as Error).message.split('\n')[0]}`] };
  }
}

function validate<T>(data: unknown, text: string, schema: z.ZodType<T>): Loaded<T> {
  const result = schema.safeParse(data, { error: operatorMessages });
  if (result.success) return { ok: true, config: result.data, text };
  return {
    ok: false,
    reason: 'invalid',
    errors: result.error.issues.flatMap((issue) =>
      // zod reports a strict object's extra keys once, on the parent: name each key's own path.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key (check the spelling)`)
        : [`${formatPath(issue.path) || '(root)'}: ${issue.message}`],
    ),
  };
}

export function parseConfigText<T>(text: string, schema: z.ZodType<T>): Loaded<T> {
  const yaml = readYaml(text);
  return yaml.ok ? validate(yaml.data, text, schema) : yaml;
}

export type AnyConfig = { kind: 'dns'; config: DnsConfig } | { kind: 'sidecar'; config: SidecarConfig };

/**
 * For check-config, which is not told the kind: it is read from the parsed document (configKind
 * in schema.ts), so flow-style YAML, JSON and quoted keys are told apart as block YAML is.
 */
export function parseAnyConfigText(text: string): Loaded<AnyConfig> {
  const yaml = readYaml(text);
  if (!yaml.ok) return yaml;
  if (configKind(yaml.data) === 'sidecar') {
    const loaded = validate(yaml.data, text, sidecarConfigSchema);
    return loaded.ok ? { ...loaded, config: { kind: 'sidecar', config: loaded.config } } : loaded;
  }
  const loaded = validate(yaml.data, text, dnsConfigSchema);
  return loaded.ok ? { ...loaded, config: { kind: 'dns', config: loaded.config } } : loaded;
}

/** What each loader parses; a name rather than a schema, so that a worker thread can be told it. */
export type ParseKind = 'dns' | 'sidecar' | 'any';

/** For parse-worker.ts, and inline where no worker can run. */
export function parseByKind(kind: ParseKind, text: string): Loaded<unknown> {
  if (kind === 'dns') return parseConfigText(text, dnsConfigSchema);
  if (kind === 'sidecar') return parseConfigText(text, sidecarConfigSchema);
  return parseAnyConfigText(text);
}

/** "20.0 MB", "1.0 MiB" is the limit's own spelling; "812 bytes" below a KB. */
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

// The compiled worker sits next to this module. Sources run by vitest are TypeScript, which a
// worker thread cannot load: there (unit tests only) the parse runs inline. What operators run,
// and what the integration tests spawn, is the compiled build, which always parses off-thread.
const WORKER_URL = new URL('./parse-worker.js', import.meta.url);
const CAN_USE_WORKER = import.meta.url.endsWith('.js');
// A hostile YAML that needs more than this is refused as invalid instead of growing the process.
const WORKER_HEAP_MB = 256;

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
      resolve({ ok: false, reason: 'invalid', errors: [`${file}: the config could not be parsed (${why})`] });
    };
    worker.once('message', (result: Loaded<T>) => {
      settled = true;
      // Structured cloning drops the freeze and the text stayed here: both are put back.
      resolve(result.ok ? { ok: true, config: deepFreeze(result.config), text } : result);
    });
    worker.once('error', (err: Error & { code?: string }) => failed(err.code ?? err.message));
    worker.once('exit', (code) => failed(`parser exited with code ${code}`));
  });
}

async function loadFile<T>(file: string, kind: ParseKind): Promise<Loaded<T>> {
  const read = await readConfigFile(file);
  if (!read.ok) return read;
  if (!CAN_USE_WORKER) return parseByKind(kind, read.text) as Loaded<T>;
  return parseOffThread<T>(kind, file, read.text);
}

export const loadDnsConfig = (file: string): Promise<Loaded<DnsConfig>> => loadFile(file, 'dns');
export const loadSidecarConfig = (file: string): Promise<Loaded<SidecarConfig>> => loadFile(file, 'sidecar');
/** For check-config: either kind, told apart by the document (parseAnyConfigText). */
export const loadAnyConfig = (file: string): Promise<Loaded<AnyConfig>> => loadFile(file, 'any');
