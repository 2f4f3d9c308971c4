// The parsed config as the parser process sends it (parse-process.ts) and as load.ts takes it in:
// a skeleton and its long arrays in parts, so that receiving a large config never holds up DNS
// answers in one piece. Both ends of the format live here, and only here.
import { deserialize, serialize } from 'node:v8';
import { deepFreeze } from '../deep-freeze.js';

/** A parsed config in parts: a skeleton, and its long arrays in parts. */
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
export function* fromParts({ head, arrays }: ConfigParts): Generator<void, unknown> {
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

/** Arrays longer than this travel in parts of this many items. */
const PART_ITEMS = 100;

/**
 * The config in parts the server can take in one at a time: taking in one clone of 5,500 services,
 * or of seven pools of 5,400 addresses, held it for 70-120 ms, every DNS answer waiting.
 * Each long array, at any depth, is left empty in the skeleton and sent in parts; v8's serializer
 * keeps what a clone keeps (undefined, Infinity), which JSON would not.
 */
export function inParts(config: unknown): ConfigParts {
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
