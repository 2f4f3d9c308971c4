import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blame, type JudgedRound, outsideOutage, type PoolEvidence } from '../../src/health/attribution.js';

const T = 1_000_000;
const A = 'http://a.test/';
const B = 'http://b.test/';

function evidence(
  pool: string,
  at: number,
  proxyAnswers: boolean,
  passed: string[],
  failed: string[],
): PoolEvidence {
  return {
    pool,
    at,
    proxyAnswers,
    targets: [
      ...passed.map((target) => ({ target, ok: true })),
      ...failed.map((target) => ({ target, ok: false })),
    ],
  };
}

const primaryFails = evidence('primary', T, true, [], [A]);

describe('blame', () => {
  it('blames a proxy that does not answer, whatever the others say', () => {
    const failing = evidence('primary', T, false, [], [A]);
    expect(blame(failing, [{ pool: 'secondary', evidence: undefined }], T - 500, false)).toEqual({
      party: 'proxy',
    });
  });

  it('blames the pool when another pool passes the target it fails (lost egress)', () => {
    const secondary = evidence('secondary', T - 100, true, [A], []);
    expect(blame(primaryFails, [{ pool: 'secondary', evidence: secondary }], T - 500, false)).toEqual({
      party: 'proxy',
      passedBy: 'secondary',
    });
  });

  it('calls it outside when every answering pool fails the same target (the site is down)', () => {
    const secondary = evidence('secondary', T - 100, true, [], [A]);
    expect(blame(primaryFails, [{ pool: 'secondary', evidence: secondary }], T - 500, false)).toEqual({
      party: 'outside',
    });
  });

  it('passes over pools whose proxy does not answer: they prove nothing about the outside', () => {
    const dead = evidence('secondary', T - 100, false, [], [A]);
    expect(blame(primaryFails, [{ pool: 'secondary', evidence: dead }], T - 500, false)).toEqual({
      party: 'outside',
    });
  });

  it('asks for a confirming round from pools with no fresh evidence, unless the judgement is final', () => {
    const old = evidence('secondary', T - 5_000, true, [A], []);
    const others = [
      { pool: 'secondary', evidence: old },
      { pool: 'tertiary', evidence: undefined },
    ];
    expect(blame(primaryFails, others, T - 500, false)).toEqual({
      party: 'confirm',
      pools: ['secondary', 'tertiary'],
    });
    // An old pass is no proof that the other pool could serve now.
    expect(blame(primaryFails, others, T - 500, true)).toEqual({ party: 'outside' });
  });

  it('settles on a fresh pass at once, without waiting for a stale (e.g. hung) third pool', () => {
    const others = [
      { pool: 'secondary', evidence: undefined },
      { pool: 'tertiary', evidence: evidence('tertiary', T, true, [A], []) },
    ];
    expect(blame(primaryFails, others, T - 500, false)).toEqual({ party: 'proxy', passedBy: 'tertiary' });
  });

  it('compares target by target: a pass of another target proves nothing about this one', () => {
    const secondary = evidence('secondary', T, true, [B], [A]);
    expect(blame(primaryFails, [{ pool: 'secondary', evidence: secondary }], T - 500, false).party).toBe(
      'outside',
    );
  });

  it('with a single pool there is no one to compare with: never blamed for a target failure', () => {
    expect(blame(primaryFails, [], T - 500, false)).toEqual({ party: 'outside' });
  });

  it('property: a fresh pass of a failed target through an answering proxy always blames the pool', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ answers: fc.boolean(), age: fc.nat(10_000), passesA: fc.boolean() }), {
          maxLength: 5,
        }),
        fc.boolean(),
        (pools, final) => {
          const others = pools.map((p, i) => ({
            pool: `p${i}`,
            evidence: evidence(`p${i}`, T - p.age, p.answers, p.passesA ? [A] : [], p.passesA ? [] : [A]),
          }));
          const verdict = blame(primaryFails, others, T - 1_000, final);
          const freshPass = pools.some((p) => p.answers && p.passesA && p.age <= 1_000);
          expect(verdict.party === 'proxy').toBe(freshPass);
          if (final) expect(verdict.party).not.toBe('confirm');
        },
      ),
    );
  });
});

describe('outsideOutage', () => {
  const outside = (at: number): JudgedRound => ({ at, ok: false, party: 'outside' });
  it.each<[string, (JudgedRound | undefined)[], boolean]>([
    ['no rounds', [undefined, undefined], false],
    ['one pool judged outside', [outside(T), undefined], true],
    ['every pool judged outside', [outside(T), outside(T + 10)], true],
    ['a pass after it ends it', [outside(T), { at: T + 5, ok: true }], false],
    ['a pass before it does not', [{ at: T - 5, ok: true }, outside(T)], true],
    ['own faults are no outside outage', [{ at: T, ok: false, party: 'proxy' }, undefined], false],
  ])('%s', (_name, rounds, expected) => {
    expect(outsideOutage(rounds)).toBe(expected);
  });
});
