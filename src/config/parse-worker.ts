// Edge: a worker thread that parses and validates one config text (load.ts), so that a large file
// holds up this thread and not the one answering DNS. It answers once and exits.
import { serialize } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { ConfigParts } from './load.js';
import { type ParseKind, parseByKind } from './parse.js';

/** Top-level arrays longer than this travel in parts of this many items. */
const PART_ITEMS = 100;

/**
 * The config in parts the main thread can take in one at a time: receiving one clone of 5,500
 * services held it for 70 ms or more, every DNS answer waiting; v8's serializer keeps what a clone
 * keeps (undefined, Infinity), which JSON would not.
 */
function inParts(config: object): ConfigParts {
  const head: Record<string, unknown> = {};
  const arrays: Record<string, Buffer[]> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!Array.isArray(value) || value.length <= PART_ITEMS) {
      head[key] = value;
      continue;
    }
    const parts: Buffer[] = [];
    for (let at = 0; at < value.length; at += PART_ITEMS)
      parts.push(serialize(value.slice(at, at + PART_ITEMS)));
    arrays[key] = parts;
  }
  return { head: serialize(head), arrays };
}

const { kind, text } = workerData as { kind: ParseKind; text: string };
const loaded = parseByKind(kind, text);
// The text is the caller's already: only the verdict travels back.
parentPort?.postMessage(loaded.ok ? { ok: true, parts: inParts(loaded.config as object) } : loaded);
