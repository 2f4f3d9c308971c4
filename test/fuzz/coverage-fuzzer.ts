// A small coverage-guided fuzzer, offline and without native code: V8's own block coverage
// (node:inspector, Profiler.takePreciseCoverage with call counts, which also resets the counters)
// tells after each input which blocks of the code under test ran and how often. An input that reaches
// a new (block, count bucket) pair joins the corpus; inputs are mutated from the corpus, libFuzzer
// style: byte and bit edits, interesting values, inserts, deletes, duplicated ranges, dictionary
// tokens, splices with another corpus entry.
//
// Why not jazzer.js: @jazzer.js/core 4.0.0 installs from npm, but its prebuilt addon needs glibc 2.38
// (`__isoc23_strtol`) and this Debian 12 has 2.36; 2.1.0 builds from source only after downloading
// its patched LLVM compiler-rt from GitHub. See docs/soak.md.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { join } from 'node:path';

export interface FuzzOptions {
  readonly target: (data: Uint8Array) => void;
  /** Only blocks of scripts whose URL contains one of these count as coverage ("/src/dns/"). */
  readonly cover: readonly string[];
  /** Seed inputs: every file of these folders. */
  readonly seedDirs: readonly string[];
  /** New coverage is saved here (created if missing); also read as seeds. */
  readonly corpusDir: string;
  /** Inputs that break the target are saved here as <sha1>.bin. */
  readonly crashDir: string;
  readonly durationMs: number;
  readonly maxExecs?: number;
  readonly maxLength?: number;
  readonly seed?: number;
  readonly dictionary?: readonly Uint8Array[];
  readonly log?: (line: string) => void;
}

export interface Finding {
  readonly file: string;
  readonly message: string;
}

export interface FuzzReport {
  readonly execs: number;
  readonly corpus: number;
  readonly features: number;
  /** Blocks of the covered scripts that ran at least once, of all their blocks seen. */
  readonly blocksHit: number;
  readonly blocksSeen: number;
  readonly findings: readonly Finding[];
  readonly ms: number;
}

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly { readonly functionName: string; readonly ranges: readonly Range[] }[];
}

function post<T>(session: Session, method: string, params?: object): T {
  let result: T | undefined;
  let failure: Error | null = null;
  // An in-process session answers synchronously.
  session.post(method, params ?? {}, (err, value) => {
    failure = err;
    result = value as T;
  });
  if (failure) throw failure;
  return result as T;
}

/** AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

const INTERESTING8 = [0, 1, 2, 12, 16, 41, 63, 64, 0x7f, 0x80, 0xc0, 0xff];
const INTERESTING16 = [0, 1, 2, 12, 41, 255, 256, 512, 1232, 4096, 0x7fff, 0x8000, 0xffff];

export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => undefined);
  const maxLength = options.maxLength ?? 4096;
  let state = (options.seed ?? Date.now()) >>> 0;
  const rand = (n: number) => {
    // xorshift32: the run is replayable with the same seed and corpus.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return n <= 0 ? 0 : state % n;
  };

  await mkdir(options.corpusDir, { recursive: true });
  await mkdir(options.crashDir, { recursive: true });
  const corpus: Uint8Array[] = [];
  const known = new Set<string>();
  for (const dir of [...options.seedDirs, options.corpusDir]) {
    for (const file of (await readdir(dir).catch(() => [] as string[])).sort()) {
      if (file.startsWith('.') || file.endsWith('.md')) continue;
      const data = new Uint8Array(await readFile(join(dir, file)));
      const hash = sha1(data);
      if (!known.has(hash)) {
        known.add(hash);
        corpus.push(data);
      }
    }
  }
  if (corpus.length === 0) corpus.push(new Uint8Array(12));

  const session = new Session();
  session.connect();
  post(session, 'Profiler.enable');
  post(session, 'Profiler.startPreciseCoverage', { callCount: true, detailed: true });

  const features = new Set<string>();
  const blocksHit = new Set<string>();
  const blocksSeen = new Set<string>();
  const findings: Finding[] = [];
  const messages = new Set<string>();

  /** Runs one input; returns how many new features it reached. */
  const execute = (data: Uint8Array): { fresh: number; error?: unknown } => {
    let error: unknown;
    try {
      options.target(data);
    } catch (err) {
      error = err;
    }
    const { result } = post<{ result: ScriptCoverage[] }>(session, 'Profiler.takePreciseCoverage');
    let fresh = 0;
    for (const script of result) {
      if (!options.cover.some((c) => script.url.includes(c))) continue;
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          const block = `${script.url}:${range.startOffset}-${range.endOffset}`;
          blocksSeen.add(block);
          if (range.count === 0) continue;
          blocksHit.add(block);
          const feature = `${block}:${bucket(range.count)}`;
          if (!features.has(feature)) {
            features.add(feature);
            fresh += 1;
          }
        }
      }
    }
    return error === undefined ? { fresh } : { fresh, error };
  };

  const record = async (data: Uint8Array, error: unknown) => {
    const message = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
    // One file per distinct message: the same bug found again is not a new finding.
    const key = message.replace(/\d+(\.\d+)?ms/g, 'Nms');
    if (messages.has(key)) return;
    messages.add(key);
    const file = join(options.crashDir, `${sha1(data)}.bin`);
    await writeFile(file, data);
    findings.push({ file, message });
    log(`fuzz: FINDING ${message} -> ${file}`);
  };

  const started = Date.now();
  // Warm the features with the corpus itself.
  for (const data of corpus) {
    const { error } = execute(data);
    if (error !== undefined) await record(data, error);
  }

  const pick = () => corpus[rand(corpus.length)] as Uint8Array;
  const dictionary = options.dictionary ?? [];
  const mutate = (input: Uint8Array): Uint8Array => {
    let bytes = [...input];
    const rounds = 1 + rand(4);
    for (let i = 0; i < rounds; i++) {
      const at = rand(bytes.length + 1);
      switch (rand(10)) {
        case 0:
          if (bytes.length)
            bytes[at % bytes.length] = ((bytes[at % bytes.length] as number) ^ (1 << rand(8))) & 0xff;
          break;
        case 1:
          if (bytes.length) bytes[at % bytes.length] = rand(256);
          break;
        case 2:
          if (bytes.length) bytes[at % bytes.length] = INTERESTING8[rand(INTERESTING8.length)] as number;
          break;
        case 3: {
          const v = INTERESTING16[rand(INTERESTING16.length)] as number;
          if (at + 1 < bytes.length) {
            bytes[at] = v >> 8;
            bytes[at + 1] = v & 0xff;
          }
          break;
        }
        case 4:
          bytes.splice(at, 0, ...Array.from({ length: 1 + rand(8) }, () => rand(256)));
          break;
        case 5:
          bytes.splice(at, 1 + rand(8));
          break;
        case 6: {
          const from = rand(bytes.length);
          const chunk = bytes.slice(from, from + 1 + rand(32));
          bytes.splice(at, 0, ...chunk);
          break;
        }
        case 7: {
          const token = dictionary[rand(dictionary.length)];
          if (token) bytes.splice(at, rand(2) ? 0 : token.length, ...token);
          break;
        }
        case 8: {
          const other = pick();
          const cut = rand(other.length + 1);
          bytes = [...bytes.slice(0, at), ...other.subarray(cut)];
          break;
        }
        default:
          bytes = bytes.slice(0, at);
      }
    }
    return Uint8Array.from(bytes.slice(0, maxLength));
  };

  let execs = 0;
  let lastLog = started;
  const maxExecs = options.maxExecs ?? Number.POSITIVE_INFINITY;
  while (Date.now() - started < options.durationMs && execs < maxExecs) {
    const data = mutate(pick());
    execs += 1;
    const { fresh, error } = execute(data);
    if (error !== undefined) await record(data, error);
    if (fresh > 0) {
      const hash = sha1(data);
      if (!known.has(hash)) {
        known.add(hash);
        corpus.push(data);
        await writeFile(join(options.corpusDir, `${hash}.bin`), data);
      }
    }
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(
        `fuzz: ${execs} execs (${Math.round(execs / ((lastLog - started) / 1000))}/s) corpus=${corpus.length} features=${features.size} blocks=${blocksHit.size}/${blocksSeen.size} findings=${findings.length}`,
      );
    }
  }

  post(session, 'Profiler.stopPreciseCoverage');
  post(session, 'Profiler.disable');
  session.disconnect();
  return {
    execs,
    corpus: corpus.length,
    features: features.size,
    blocksHit: blocksHit.size,
    blocksSeen: blocksSeen.size,
    findings,
    ms: Date.now() - started,
  };
}

function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}
