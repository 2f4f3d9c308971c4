import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RoundResult } from '../../src/health/round.js';
import {
  type HealthState,
  initialHealth,
  inTransition,
  next,
  nextDelayMs,
  type PoolHealth,
  type Thresholds,
} from '../../src/health/state.js';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const settings = { intervalMs: 2_000, fastIntervalMs: 200 };

function round(ok: boolean, reason = ok ? 'ok' : 'status=500'): RoundResult {
  return { ok, reason, targets: [], latencyMs: 12, at: 0 };
}

/** Feeds `outcomes` one second apart; returns every step's state and whether it transitioned. */
function run(outcomes: readonly boolean[], thresholds: Thresholds) {
  let health = initialHealth(T0);
  const steps: { state: HealthState; changed: boolean; health: PoolHealth }[] = [];
  outcomes.forEach((ok, i) => {
    const step = next(health, round(ok), T0 + (i + 1) * 1_000, thresholds);
    health = step.health;
    steps.push({ state: health.state, changed: step.transition !== undefined, health });
  });
  return { health, steps };
}

const states = (outcomes: string, thresholds: Thresholds) =>
  run(
    [...outcomes].map((c) => c === '+'),
    thresholds,
  )
    .steps.map((s) => s.state[0])
    .join('');

describe('next', () => {
  it('starts unknown, since the time watching began', () => {
    const health = initialHealth(T0);
    expect(health).toMatchObject({ state: 'unknown', since: T0, transitions: 0 });
    expect(nextDelayMs(health, settings)).toBe(2_000);
  });

  // outcomes: + pass, - fail; expected: h healthy, u unhealthy, per round
  it.each([
    ['+', 2, 2, 'h'],
    ['-', 2, 2, 'u'],
    ['+-+-+-', 2, 2, 'hhhhhh'],
    ['+--', 2, 2, 'hhu'],
    ['+---', 3, 3, 'hhhu'],
    ['--+', 2, 2, 'uuu'],
    ['--++', 2, 2, 'uuuh'],
    ['-+-++', 2, 2, 'uuuuh'],
    ['+-', 1, 1, 'hu'],
    ['-+', 1, 1, 'uh'],
    ['-+', 1, 3, 'uh'],
    ['++--+--', 3, 2, 'hhhuuuu'],
  ])('%s with rise=%i fall=%i -> %s', (outcomes, rise, fall, expected) => {
    expect(states(outcomes, { rise, fall })).toBe(expected);
  });

  it('decides at once on the first round, and records the transition', () => {
    const step = next(initialHealth(T0), round(false, 'squid_error=ERR_CONNECT_FAIL'), T0 + 5, {
      rise: 3,
      fall: 3,
    });
    expect(step.transition).toEqual({
      from: 'unknown',
      to: 'unhealthy',
      reason: 'squid_error=ERR_CONNECT_FAIL',
      at: T0 + 5,
    });
    expect(step.health).toMatchObject({ state: 'unhealthy', since: T0 + 5, transitions: 1, failures: 1 });
  });

  it('keeps the last failure visible after recovery', () => {
    const { health } = run([true, false, true, true, true], { rise: 2, fall: 2 });
    expect(health.state).toBe('healthy');
    expect(health.lastFailure).toEqual({ reason: 'status=500', at: T0 + 2_000 });
    expect(health.lastRound).toEqual({ ok: true, reason: 'ok', at: T0 + 5_000, latencyMs: 12 });
  });

  it('moves `since` only on a state change', () => {
    const { steps } = run([true, true, false, true], { rise: 2, fall: 2 });
    expect(steps.map((s) => s.health.since)).toEqual([T0 + 1_000, T0 + 1_000, T0 + 1_000, T0 + 1_000]);
  });

  it('asks for fastInterval while in transition, interval otherwise', () => {
    const { steps } = run([true, false, false, true, true], { rise: 2, fall: 2 });
    // h (steady), h+1 failure (in transition), u (steady), u+1 pass (in transition), h (steady)
    expect(steps.map((s) => inTransition(s.health))).toEqual([false, true, false, true, false]);
    expect(steps.map((s) => nextDelayMs(s.health, settings))).toEqual([2_000, 200, 2_000, 200, 2_000]);
  });

  it('is not in transition with fall=1: the failing round itself flips the state', () => {
    const { steps } = run([true, false], { rise: 1, fall: 1 });
    expect(steps.map((s) => [s.state, inTransition(s.health)])).toEqual([
      ['healthy', false],
      ['unhealthy', false],
    ]);
  });
});

describe('next, properties', () => {
  const thresholds = fc.record({
    rise: fc.integer({ min: 1, max: 5 }),
    fall: fc.integer({ min: 1, max: 5 }),
  });
  const outcomes = fc.array(fc.boolean(), { minLength: 1, maxLength: 60 });

  it('the first round decides at once', () => {
    fc.assert(
      fc.property(thresholds, fc.boolean(), (t, ok) => {
        const step = next(initialHealth(T0), round(ok), T0, t);
        expect(step.health.state).toBe(ok ? 'healthy' : 'unhealthy');
        expect(step.transition?.from).toBe('unknown');
      }),
    );
  });

  it('never changes state without `fall` consecutive failures or `rise` consecutive passes', () => {
    fc.assert(
      fc.property(thresholds, outcomes, (t, seq) => {
        const { steps } = run(seq, t);
        steps.forEach((step, i) => {
          if (i === 0 || !step.changed) return;
          const needed = step.state === 'unhealthy' ? t.fall : t.rise;
          const wanted = step.state === 'healthy';
          const window = seq.slice(i + 1 - needed, i + 1);
          expect(window).toHaveLength(needed);
          expect(window.every((ok) => ok === wanted)).toBe(true);
        });
      }),
    );
  });

  it('always changes state once the threshold is reached', () => {
    fc.assert(
      fc.property(thresholds, outcomes, (t, seq) => {
        const { steps } = run(seq, t);
        steps.forEach((step, i) => {
          const prev = steps[i - 1];
          if (!prev) return;
          if (prev.state === 'healthy' && step.health.failures >= t.fall)
            expect(step.state).toBe('unhealthy');
          if (prev.state === 'unhealthy' && step.health.passes >= t.rise) expect(step.state).toBe('healthy');
        });
      }),
    );
  });

  it('counts transitions and keeps counters consistent', () => {
    fc.assert(
      fc.property(thresholds, outcomes, (t, seq) => {
        const { steps, health } = run(seq, t);
        expect(health.transitions).toBe(steps.filter((s) => s.changed).length);
        for (const { health: h } of steps) expect(h.passes === 0 || h.failures === 0).toBe(true);
        const failed = seq.lastIndexOf(false);
        if (failed >= 0) expect(health.lastFailure?.at).toBe(T0 + (failed + 1) * 1_000);
        else expect(health.lastFailure).toBeUndefined();
      }),
    );
  });
});

describe('next, excused failures (outside outage, local errors)', () => {
  const t = { rise: 2, fall: 2 };
  const healthy = () => next(initialHealth(T0), round(true), T0, t).health;

  it('an outside failure never counts: a healthy pool stays healthy through any number of them', () => {
    let health = healthy();
    for (let i = 1; i <= 10; i++) {
      const step = next(
        health,
        round(false, 'status=500 target=http://site.test/'),
        T0 + i * 1_000,
        t,
        'outside',
      );
      expect(step.transition).toBeUndefined();
      health = step.health;
    }
    expect(health).toMatchObject({ state: 'healthy', failures: 0, transitions: 1 });
    expect(health.lastRound).toMatchObject({ ok: false, excused: 'outside' });
    // The outside failure is still the last failure an operator sees.
    expect(health.lastFailure?.reason).toBe('status=500 target=http://site.test/');
  });

  it('an excused round neither resets nor adds to the counts it interrupts', () => {
    const h = healthy();
    const once = next(h, round(false), T0 + 1_000, t).health;
    const excused = next(once, round(false), T0 + 2_000, t, 'outside').health;
    expect(excused.failures).toBe(1);
    const fell = next(excused, round(false), T0 + 3_000, t);
    expect(fell.health.state).toBe('unhealthy');
  });

  it('a first round excused as outside is a healthy verdict; one excused as local is none', () => {
    const outside = next(initialHealth(T0), round(false, 'status=500'), T0, t, 'outside');
    expect(outside.health.state).toBe('healthy');
    expect(outside.transition?.reason).toBe('outage=outside status=500');
    const local = next(initialHealth(T0), round(false, 'probe_error=local:EMFILE'), T0, t, 'local');
    expect(local.health.state).toBe('unknown');
    expect(local.transition).toBeUndefined();
  });

  it('a local failure leaves the last failure as it was: the proxy did not fail', () => {
    const step = next(healthy(), round(false, 'probe_error=local:EMFILE'), T0 + 1_000, t, 'local');
    expect(step.health.lastFailure).toBeUndefined();
    expect(step.health.lastRound).toMatchObject({ excused: 'local', reason: 'probe_error=local:EMFILE' });
  });

  it('a passing round is never marked excused', () => {
    expect(next(healthy(), round(true), T0 + 1_000, t, 'outside').health.lastRound?.excused).toBeUndefined();
  });
});

describe('next, flap damping', () => {
  const damped = {
    rise: 1,
    fall: 1,
    flapThreshold: 2,
    flapWindowMs: 60_000,
    holdDownMs: 10_000,
    maxHoldDownMs: 40_000,
  };

  it('holds a flapping pool down, lets it fall at once, and lets it up when the hold-down ends', () => {
    // +: pass, -: fail, one second apart, rise = fall = 1
    let health = initialHealth(T0);
    const trace: string[] = [];
    let flapped = 0;
    '+-+-+++'.split('').forEach((c, i) => {
      const step = next(health, round(c === '+'), T0 + i * 1_000, damped);
      health = step.health;
      if (step.flapped) flapped++;
      trace.push(health.state[0] as string);
    });
    // changes: h->u (1), u->h (2), h->u (3); the next rise would be a 4th > 2: held for 10 s
    expect(trace.join('')).toBe('huhuuuu');
    expect(flapped).toBe(1);
    expect(health.flaps.heldUntil).toBe(T0 + 4_000 + 10_000);
    const released = next(health, round(true), T0 + 14_000, damped);
    expect(released.health.state).toBe('healthy');
    expect(released.health.flaps.heldUntil).toBeUndefined();
  });

  it('never delays a fall, not even of a pool that is flapping', () => {
    let health = next(initialHealth(T0), round(true), T0, damped).health;
    for (let i = 1; i <= 8; i++) {
      const ok = i % 2 === 0;
      health = next(health, round(ok), T0 + i * 1_000, damped).health;
      if (!ok) expect(health.state).toBe('unhealthy');
    }
  });

  it('is off without the settings (the sidecar default) or with flapThreshold 0', () => {
    expect(states('+-+-+-+-', { rise: 1, fall: 1 })).toBe('huhuhuhu');
    expect(states('+-+-+-+-', { ...damped, flapThreshold: 0 })).toBe('huhuhuhu');
  });
});
