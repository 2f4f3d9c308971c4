// Long synchronous work in steps: a generator yields between steps, and is either run to its end
// at once or in time slices with I/O served between them. One thread answers DNS and rebuilds
// views; work that grows with the config (thousands of pools after a reload) must not hold it.
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Runs `steps` to its end now; returns what it returns. */
export function runToEnd<R>(steps: Generator<unknown, R>): R {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Runs `steps` to its end in slices of about `sliceMs`, letting the event loop serve I/O between
 * slices (setImmediate runs after the poll phase); resolves with what it returns.
 */
export async function runInSlices<R>(steps: Generator<unknown, R>, sliceMs = 5): Promise<R> {
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await nextTurn();
      sliceStart = performance.now();
    }
  }
}
