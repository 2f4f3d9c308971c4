// A config crosses from the parser process in parts (src/config/parts.ts): whatever its shape, it
// comes back equal, in order, and frozen, with its long arrays taken in a part per step.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromParts, inParts } from '../../src/config/parts.js';
import { runToEnd } from '../../src/slices.js';
import { expectDeeplyFrozen } from '../helpers/frozen.js';

/** Values as a parsed config holds them, with arrays long enough to be cut into parts. */
const configLike = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.string(),
    fc.boolean(),
    fc.constant(undefined),
    fc.constant(Number.POSITIVE_INFINITY),
    tie('array'),
    tie('object'),
  ),
  array: fc.oneof(
    fc.array(tie('value'), { maxLength: 5 }),
    fc.array(fc.integer(), { minLength: 90, maxLength: 450 }),
  ),
  object: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('value'), {
    maxKeys: 4,
    noNullPrototype: true,
  }),
})).value;

describe('a config in parts', () => {
  it('comes back equal and deeply frozen, whatever its shape', () => {
    fc.assert(
      fc.property(configLike, (config) => {
        const back = runToEnd(fromParts(inParts(config)));
        expect(back).toStrictEqual(config);
        expectDeeplyFrozen(back);
      }),
      { numRuns: 200 },
    );
  });

  it('cuts long arrays at any depth into parts of 100, and takes one part per step', () => {
    const config = {
      services: Array.from({ length: 250 }, (_, i) => ({
        name: `s${i}`,
        pools: [{ address: i === 7 ? Array.from({ length: 150 }, (_, j) => `10.0.0.${j}`) : ['10.0.0.1'] }],
      })),
    };
    const parts = inParts(config);
    expect(parts.arrays.map((a) => [a.path.join('.'), a.parts.length])).toEqual([
      ['services', 3],
      ['services.7.pools.0.address', 2],
    ]);
    const steps = fromParts(parts);
    let yielded = 0;
    let next = steps.next();
    while (!next.done) {
      yielded += 1;
      next = steps.next();
    }
    expect(next.value).toStrictEqual(config);
    // A step per part, then a step per long array frozen.
    expect(yielded).toBe(3 + 2 + 2);
  });
});
