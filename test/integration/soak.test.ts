// The soak under faults (test/soak/soak.ts, docs/soak.md): about 50 s of seeded fault schedule in CI.
// Longer, or replaying a failed run:
//   SOAK_SECONDS=1800 SOAK_SEED=123456 npx vitest run test/integration/soak.test.ts
import { afterAll, describe, expect, it } from 'vitest';
import {
  boundsOf,
  Component,
  Oracle,
  Soak,
  type SoakReport,
  seedFromEnv,
  summarize,
  TIMING,
} from '../soak/soak.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 50);
const seed = seedFromEnv();

describe('the soak oracle', () => {
  // The oracle decides what every answer may be; a lax one would make the soak pass vacuously.
  const bounds = boundsOf(TIMING, 0);
  const squids = ['primary', 'secondary', 'tertiary'].map((n) => new Component(n));
  const origin = new Component('origin');
  const oracle = new Oracle(
    squids.map((squid) => ({ name: squid.name, squid })),
    origin,
    bounds,
  );
  const primary = squids[0] as Component;
  const t = 1_000_000;
  const mark = (c: Component, to: 'ok' | 'broken', at: number, what: string = to) => {
    const change = c.begin(to, what, at);
    change.end = at + 10;
  };
  mark(primary, 'broken', t, 'cut');
  mark(primary, 'ok', t + 60_000);
  mark(origin, 'broken', t + 120_000);
  mark(origin, 'ok', t + 180_000);
  for (const squid of squids) mark(squid, 'broken', t + 240_000, 'kill');

  it('while all is well, only the primary is acceptable', () => {
    expect(oracle.verdict(t - 1, undefined).acceptable).toEqual(['primary']);
  });

  it('a fault opens a window of the detection bound in which both answers are right', () => {
    expect(oracle.verdict(t + 100, undefined).acceptable).toEqual(['primary', 'secondary']);
    expect(oracle.verdict(t + 10 + bounds.detectMs - 1, undefined).acceptable).toEqual([
      'primary',
      'secondary',
    ]);
    expect(oracle.verdict(t + 10 + bounds.detectMs + 1, undefined).acceptable).toEqual(['secondary']);
  });

  it('a repair is due within the recovery bound', () => {
    expect(oracle.verdict(t + 60_000 + 10 + bounds.recoverMs - 1, undefined).acceptable).toEqual([
      'primary',
      'secondary',
    ]);
    expect(oracle.verdict(t + 60_000 + 10 + bounds.recoverMs + 1, undefined).acceptable).toEqual(['primary']);
  });

  it('an origin outage blames no pool: the answer may stay where it was, on any of them', () => {
    const later = t + 120_000 + 10 + bounds.detectMs + 1;
    expect(oracle.verdict(later, 'primary')).toEqual({
      acceptable: ['primary', 'secondary', 'tertiary'],
      someoneUp: false,
    });
  });

  it('with every Squid killed (surely down), only the held answer (onAllDown: last) is right', () => {
    const later = t + 240_000 + 10 + bounds.detectMs + 1;
    expect(oracle.verdict(later, 'primary')).toEqual({ acceptable: ['primary'], someoneUp: false });
  });

  it('a Squid without egress is down only while another pool works', () => {
    const [, secondary, tertiary] = squids as [Component, Component, Component];
    const cut = new Component('a');
    const o = new Oracle(
      [
        { name: 'a', squid: cut },
        { name: 'b', squid: secondary },
        { name: 'c', squid: tertiary },
      ],
      new Component('origin'),
      bounds,
    );
    mark(cut, 'broken', t, 'cut');
    expect(o.verdict(t + 10 + bounds.detectMs + 1, undefined).acceptable).toEqual(['b']);
  });

  it('flags a transition with no fault behind it, and a recovery of a pool still broken', () => {
    expect(oracle.unjustified('secondary', 'healthy', 'unhealthy', t + 30_000)).toMatch(/worked throughout/);
    expect(oracle.unjustified('primary', 'healthy', 'unhealthy', t + 2_000)).toBeUndefined();
    expect(oracle.unjustified('primary', 'unhealthy', 'healthy', t + 30_000)).toMatch(/broken throughout/);
    expect(oracle.unjustified('primary', 'unhealthy', 'healthy', t + 61_000)).toBeUndefined();
  });
});

describe('soak under faults', () => {
  const soak = new Soak({
    seed,
    scheduleMs: seconds * 1000,
    log: (line) => console.log(line),
  });
  afterAll(() => soak.dispose(), 60_000);

  it(
    `${seconds} s of seeded faults under dnsperf load: answers within bounds, nothing lost, no leaks (seed ${seed})`,
    async () => {
      let report: SoakReport;
      try {
        report = await soak.run();
      } catch (err) {
        console.log(`soak failed: replay with SOAK_SEED=${seed}`);
        throw err;
      }
      console.log(summarize(report));
      if (report.violations.length > 0) console.log(`soak failed: replay with SOAK_SEED=${seed}`);
      expect(report.violations).toEqual([]);
      expect(report.actions.length).toBeGreaterThan(seconds / 4);
      expect(report.answers.total).toBeGreaterThan(seconds * 8);
    },
    seconds * 1000 + 180_000,
  );
});
