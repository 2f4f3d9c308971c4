// Long work in steps: run to its end at once, or in time slices with the event loop served between.
import { describe, expect, it } from 'vitest';
import { runInSlices, runToEnd } from '../../src/slices.js';

function* busySteps(steps: number, stepMs: number, done: number[]): Generator<void, string> {
  for (let i = 0; i < steps; i++) {
    const until = performance.now() + stepMs;
    while (performance.now() < until) {
      // Busy, as building thousands of runners is.
    }
    done.push(i);
    yield;
  }
  return 'built';
}

describe('slices', () => {
  it('runToEnd runs every step at once and returns what the generator returns', () => {
    const done: number[] = [];
    expect(runToEnd(busySteps(5, 0, done))).toBe('built');
    expect(done).toEqual([0, 1, 2, 3, 4]);
  });

  it('runInSlices lets the event loop run between slices of about sliceMs', async () => {
    const done: number[] = [];
    const seenAt: number[] = [];
    // Stands for a DNS query waiting: it must get its turn before the work ends, early on.
    setImmediate(() => seenAt.push(done.length));
    const result = await runInSlices(busySteps(20, 2, done), 5);
    expect(result).toBe('built');
    expect(done).toHaveLength(20);
    expect(seenAt).toHaveLength(1);
    expect(seenAt[0]).toBeLessThanOrEqual(4);
  });
});
