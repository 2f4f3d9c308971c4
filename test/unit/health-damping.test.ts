import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FlapHistory,
  type FlapSettings,
  mayRise,
  NO_FLAPS,
  recordChange,
} from '../../src/health/damping.js';

const S: FlapSettings = {
  flapThreshold: 4,
  flapWindowMs: 600_000,
  holdDownMs: 60_000,
  maxHoldDownMs: 300_000,
};
const T = 1_000_000;

/** Alternating fall, rise, fall, ... at `at` times; returns the history and every refused rise. */
function flap(times: readonly number[], settings = S) {
  let history: FlapHistory = NO_FLAPS;
  const refused: { at: number; imposed: boolean; heldUntil: number | undefined }[] = [];
  times.forEach((at, i) => {
    if (i % 2 === 0) {
      history = recordChange(history, at, settings);
      return;
    }
    const decision = mayRise(history, at, settings);
    history = decision.history;
    if (!decision.allowed) refused.push({ at, imposed: decision.imposed, heldUntil: history.heldUntil });
  });
  return { history, refused };
}

describe('mayRise', () => {
  it('lets a pool that has not flapped rise, and records the change', () => {
    const decision = mayRise(recordChange(NO_FLAPS, T, S), T + 5_000, S);
    expect(decision.allowed).toBe(true);
    expect(decision.history.changes).toEqual([T, T + 5_000]);
  });

  it('allows up to the threshold of changes within the window, then holds the next rise down', () => {
    // fall, rise, fall, rise (4 changes: allowed), fall, rise (the 6th: held)
    const { refused, history } = flap([0, 1, 2, 3, 4, 5].map((i) => T + i * 1_000));
    expect(refused).toEqual([{ at: T + 5_000, imposed: true, heldUntil: T + 5_000 + 60_000 }]);
    expect(history.holdDowns).toBe(1);
  });

  it('keeps holding until the hold-down ends, then lets the first rise through', () => {
    const { history } = flap([0, 1, 2, 3, 4, 5].map((i) => T + i * 1_000));
    const during = mayRise(history, T + 30_000, S);
    expect(during).toMatchObject({ allowed: false, imposed: false });
    const after = mayRise(history, T + 5_000 + 60_000, S);
    expect(after.allowed).toBe(true);
    expect(after.history.heldUntil).toBeUndefined();
  });

  it('doubles the hold-down on each further flap, up to the maximum', () => {
    let { history } = flap([0, 1, 2, 3, 4, 5].map((i) => T + i * 1_000));
    const holds: number[] = [];
    let now = T + 5_000;
    for (let i = 0; i < 4; i++) {
      now = history.heldUntil as number;
      history = mayRise(history, now, S).history; // released
      history = recordChange(history, now + 1_000, S); // falls again
      const decision = mayRise(history, now + 2_000, S); // and would rise: a further flap
      expect(decision).toMatchObject({ allowed: false, imposed: true });
      history = decision.history;
      holds.push((history.heldUntil as number) - (now + 2_000));
    }
    expect(holds).toEqual([120_000, 240_000, 300_000, 300_000]);
  });

  it('forgives a pool that stays stable for a whole window after its release', () => {
    const { history } = flap([0, 1, 2, 3, 4, 5].map((i) => T + i * 1_000));
    const released = mayRise(history, history.heldUntil as number, S).history;
    const later = (history.heldUntil as number) + S.flapWindowMs;
    const fell = recordChange(released, later, S);
    expect(mayRise(fell, later + 1_000, S).allowed).toBe(true);
  });

  it('never holds when damping is off (threshold 0)', () => {
    const off = { ...S, flapThreshold: 0 };
    expect(
      flap(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => T + i * 100),
        off,
      ).refused,
    ).toEqual([]);
  });

  it('property: a pool never held before and within the threshold always rises; no hold exceeds the maximum', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 400_000 }), { minLength: 1, maxLength: 30 }), (gaps) => {
        let at = T;
        const times = gaps.map((gap) => {
          at += gap;
          return at;
        });
        const { refused } = flap(times);
        for (const r of refused) {
          if (r.heldUntil !== undefined) expect(r.heldUntil - r.at).toBeLessThanOrEqual(S.maxHoldDownMs);
        }
        if (times.length <= S.flapThreshold) expect(refused).toEqual([]);
      }),
    );
  });
});
