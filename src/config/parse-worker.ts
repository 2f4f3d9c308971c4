// Edge: a worker thread that parses and validates one config text (load.ts), so that a large file
// holds up this thread and not the one answering DNS. It answers once and exits.
import { serialize } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { ConfigParts, LongArray } from './load.js';
import { type ParseKind, parseByKind } from './parse.js';

/** Arrays longer than this travel in parts of this many items. */
const PART_ITEMS = 100;

/**
 * The config in parts the main thread can take in one at a time: receiving one clone of 5,500
 * services, or of seven pools of 5,400 addresses, held it for 70-120 ms, every DNS answer waiting.
 * Each long array, at any depth, is left empty in the skeleton and sent in parts; v8's serializer
 * keeps what a clone keeps (undefined, Infinity), which JSON would not.
 */
function inParts(config: unknown): ConfigParts {
  const arrays: LongArray[] = [];
  const skeleton = strip(config, [], arrays);
  return { head: serialize(skeleton), arrays };
}

/**
 * `value` with its long arrays emptied, each recorded in `out` with its parts. An array is recorded
 * before the long arrays inside it, so that the receiver fills the outer one first.
 */
function strip(value: unknown, path: readonly (string | number)[], out: LongArray[]): unknown {
  if (Array.isArray(value)) {
    const record = value.length > PART_ITEMS ? { path, parts: [] as Uint8Array[] } : undefined;
    if (record) out.push(record);
    const items = value.map((item, i) => strip(item, [...path, i], out));
    if (!record) return items;
    for (let at = 0; at < items.length; at += PART_ITEMS)
      record.parts.push(serialize(items.slice(at, at + PART_ITEMS)));
    return [];
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const copy: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) copy[key] = strip(inner, [...path, key], out);
    return copy;
  }
  return value;
}

const { kind, text } = workerData as { kind: ParseKind; text: string };
const loaded = parseByKind(kind, text);
// The text is the caller's already: only the verdict travels back.
parentPort?.postMessage(loaded.ok ? { ok: true, parts: inParts(loaded.config) } : loaded);
