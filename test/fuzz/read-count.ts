// How much of a message the wire path reads, as a measure of its work that does not depend on the
// machine's speed or load: a decoder that walks the message in one pass (every loop moves forward,
// no pointer is followed) reads each byte a bounded number of times, so its reads grow linearly
// with the message; one that follows compression pointers or re-walks the message per record reads
// quadratically many, and a loop that never ends reads without end. Used by dns-fuzz.test.ts and
// by the fuzz target instead of a wall-clock limit, which a loaded machine breaks.

/**
 * The most reads a reply to a message of `length` bytes may take. The walks over a message are
 * the hot-path scan and lookup (header, question and OPT only: a few hundred reads at most), the
 * decode, and for a rejected message the OPT search; the last two read one length byte per label
 * and a few fixed fields per record (records are at least 11 bytes), so fewer reads than bytes
 * each. The costliest shapes in dns-fuzz.test.ts use about half of it (one read per byte); a
 * quadratic walk over a 64 KB message would need tens of millions.
 */
export function readBudget(length: number): number {
  return 2 * length + 1_024;
}

export class ReadBudgetExceeded extends Error {}

/**
 * A view of `bytes` that counts reads of its elements (what `msg[i]` does in the decoder) and
 * throws ReadBudgetExceeded past `budget`, so a walk that never ends fails at once instead of
 * hanging the run. Methods (subarray, set) act on the bytes themselves; copies they make are not
 * reads of the walk.
 */
export function countingView(bytes: Uint8Array, budget = Number.POSITIVE_INFINITY) {
  let reads = 0;
  const view = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string') {
        const index = Number(key);
        if (Number.isInteger(index)) {
          reads += 1;
          if (reads > budget)
            throw new ReadBudgetExceeded(`over ${budget} reads of a ${target.length}-byte message`);
          return target[index];
        }
      }
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { view, reads: () => reads };
}
