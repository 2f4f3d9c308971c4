// The round loop the monitor and the sidecar share, on fake timers with scripted rounds: no sockets, no sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { probeErrorReason } from '../../src/health/error-reason.js';
import { failedRound, type RoundFailure, RoundLoop, StartPacer } from '../../src/health/round-loop.js';

const T0 = Date.parse('2026-11-25T10:00:00Z');

/** ms after T0 at which something happened */
const since = () => Date.now() - T0;

type Step = { ms: number; value?: string } | 'hang' | 'honour' | { throws: unknown; sync?: boolean };

function harness(steps: Step[], options: { delayMs?: number | undefined; limitMs?: number } = {}) {
  const starts: number[] = [];
  const results: string[] = [];
  const failures: RoundFailure[] = [];
  const signals: AbortSignal[] = [];
  let running = 0;
  let maxRunning = 0;
  const loop = new RoundLoop<string>({
    run: (signal) => {
      const step = steps.shift() ?? { ms: 10 };
      starts.push(since());
      signals.push(signal);
      if (typeof step === 'object' && 'throws' in step && step.sync) throw step.throws;
      running++;
      maxRunning = Math.max(maxRunning, running);
      const done = () => {
        running--;
      };
      return new Promise<string>((resolve, reject) => {
        if (step === 'hang') {
          signal.addEventListener('abort', done, { once: true });
          return;
        }
        if (step === 'honour') {
          signal.addEventListener(
            'abort',
            () => {
              done();
              reject(signal.reason);
            },
            { once: true },
          );
          return;
        }
        if ('throws' in step) {
          done();
          reject(step.throws);
          return;
        }
        setTimeout(() => {
          done();
          resolve(step.value ?? 'ok');
        }, step.ms);
      });
    },
    failed: (failure) => {
      failures.push(failure);
      return failure.reason;
    },
    settle: (result) => {
      results.push(result);
      return 'delayMs' in options ? options.delayMs : 1_000;
    },
    limitMs: options.limitMs ?? 600,
  });
  return { loop, starts, results, failures, signals, maxRunning: () => maxRunning };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('RoundLoop', () => {
  it('runs the first round after the start delay and each next one from the end of the last', async () => {
    const h = harness([{ ms: 300 }, { ms: 300 }, { ms: 300 }]);
    h.loop.start(50);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(h.starts).toEqual([50, 1_350, 2_650]);
    expect(h.results).toEqual(['ok', 'ok', 'ok']);
    await h.loop.stop();
  });

  it('never overlaps rounds, and abandons one that outlives its limit as round_timeout', async () => {
    const h = harness(['hang', { ms: 10, value: 'after' }], { limitMs: 600 });
    h.loop.start();
    await vi.advanceTimersByTimeAsync(599);
    expect(h.results).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.results).toEqual(['round_timeout=600ms']);
    expect(h.failures[0]).toMatchObject({ error: undefined, startedAt: T0, endedAt: T0 + 600 });
    // The hung round was told to stop, and the next one starts a full delay later.
    expect(h.signals[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(h.starts).toEqual([0, 1_600]);
    expect(h.results).toEqual(['round_timeout=600ms', 'after']);
    expect(h.maxRunning()).toBe(1);
    await h.loop.stop();
  });

  it('treats a round that honours its signal at the limit the same as one that hangs', async () => {
    const h = harness(['honour']);
    h.loop.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(h.results).toEqual(['round_timeout=600ms']);
    await h.loop.stop();
  });

  it('turns a throw, sync or async, into a failure naming the message, and keeps going', async () => {
    const boom = new Error('boom  at\nline');
    const h = harness([{ throws: boom }, { throws: new TypeError('sync'), sync: true }, { ms: 10 }]);
    h.loop.start();
    await vi.advanceTimersByTimeAsync(2_100);
    expect(h.results).toEqual(['probe_error=boom_at_line', 'probe_error=sync', 'ok']);
    expect(h.failures.map((f) => f.error)).toEqual([boom, expect.any(TypeError)]);
    await h.loop.stop();
  });

  it('stop() aborts the round in flight, resolves at once, settles nothing and schedules nothing', async () => {
    const h = harness(['hang']);
    h.loop.start();
    await vi.advanceTimersByTimeAsync(100);
    await h.loop.stop();
    expect(h.signals[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.results).toEqual([]);
    expect(h.starts).toEqual([0]);
  });

  it('stop() before the first round clears its timer; a stopped loop does not start again', async () => {
    const h = harness([]);
    h.loop.start(500);
    await h.loop.stop();
    h.loop.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.starts).toEqual([]);
  });

  it('schedules no next round when settle returns undefined', async () => {
    const h = harness([{ ms: 10 }], { delayMs: undefined });
    h.loop.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.starts).toEqual([0]);
    expect(h.results).toEqual(['ok']);
  });

  it('reads the clock it is given', async () => {
    let clock = 5_000;
    const failures: RoundFailure[] = [];
    const loop = new RoundLoop<string>({
      run: async () => {
        clock += 40;
        throw new Error('x');
      },
      failed: (failure) => {
        failures.push(failure);
        return failure.reason;
      },
      settle: () => undefined,
      limitMs: 1_000,
      now: () => clock,
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(failures[0]).toMatchObject({ startedAt: 5_000, endedAt: 5_040 });
    expect(failedRound(failures[0] as RoundFailure)).toEqual({
      ok: false,
      reason: 'probe_error=x',
      targets: [],
      latencyMs: 40,
      at: 5_040,
    });
  });
});

describe('probeErrorReason', () => {
  it.each([
    [new Error('socket hang up'), 'probe_error=socket_hang_up'],
    [new Error(''), 'probe_error=unknown'],
    ['a string', 'probe_error=a_string'],
    [new Error('x'.repeat(200)), `probe_error=${'x'.repeat(80)}`],
  ])('case %#', (err, reason) => {
    expect(probeErrorReason(err)).toBe(reason);
  });
});

describe('StartPacer', () => {
  it('starts at most perTurn at once and the rest in later turns, in order, with I/O between', async () => {
    vi.useRealTimers();
    const pacer = new StartPacer(3);
    const started: number[] = [];
    const turnsSeen: number[] = [];
    // A stand-in for I/O: an immediate queued before the starts runs between the batches.
    setImmediate(() => turnsSeen.push(started.length));
    for (let i = 0; i < 8; i++) pacer.admit(() => started.push(i));
    expect(started).toEqual([0, 1, 2]);
    expect(pacer.waiting).toBe(5);
    for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(turnsSeen).toEqual([3]);
    // A new turn has room again.
    pacer.admit(() => started.push(8));
    expect(started).toHaveLength(9);
  });

  it('a loop stopped while its round waits for a turn does not start it', async () => {
    const pacer = new StartPacer(1);
    const starts: number[] = [];
    const loops = [0, 1].map(
      (i) =>
        new RoundLoop<string>({
          run: async () => {
            starts.push(i);
            return 'ok';
          },
          failed: (failure) => failure.reason,
          settle: () => undefined,
          limitMs: 100,
          pacer,
        }),
    );
    for (const loop of loops) loop.start(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toEqual([0]);
    expect(pacer.waiting).toBe(1);
    await loops[1]?.stop();
    await vi.advanceTimersByTimeAsync(10);
    expect(starts).toEqual([0]);
  });
});
