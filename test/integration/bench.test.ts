// `npm run bench` is documented as working on a fresh machine after the README's set-up; this runs
// it the same way, shortened (one repeat of one second per server, 10 pools), and checks that every
// part still measures what it claims: each peer started and answered the benchmark's names with
// NOERROR, ours served the primary pool through the probe loop, the probe loop finished its rounds,
// the sidecar came up and went 503 on a hung Squid. It asserts no speed: figures from a one-second
// run on a shared machine say nothing, and speed targets live in the bench's own report.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerResults } from '../../bench/answers.js';
import type { ProbeLoopFailure, ProbeLoopResult } from '../../bench/probe-loop.js';
import type { SidecarResult } from '../../bench/sidecar.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

interface Report {
  readonly answers: AnswerResults;
  readonly probeLoop: readonly (ProbeLoopResult | ProbeLoopFailure)[];
  readonly sidecar: SidecarResult;
  readonly targets: readonly { target: string; value: string; met: boolean }[];
}

describe('npm run bench, shortened', () => {
  let dir: string;
  let stdout: string;
  let report: Report;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-bench-smoke-'));
    const out = join(dir, 'bench.json');
    // What `npm run bench` runs after building dist/ (pretest built it).
    ({ stdout } = await run(
      process.execPath,
      [
        '--import',
        './bench/register.js',
        'bench/run.ts',
        ...['--reps', '1', '--seconds', '1', '--pools', '10', '--out', out],
      ],
      { cwd: ROOT, timeout: 150_000, maxBuffer: 16 << 20 },
    ));
    report = JSON.parse(await readFile(out, 'utf8')) as Report;
  }, 160_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts every peer the README names (none skipped on a machine set up by .ci/run)', () => {
    expect(report.answers.skipped).toEqual([]);
    expect(report.answers.targets.map((t) => t.id)).toEqual([
      'ours',
      'ceiling',
      'dns2',
      'gdnsd-plain',
      'gdnsd-dyna',
      'pdns-plain',
      'pdns-lua',
    ]);
  });

  it('measures answers, not errors: every server answered its name with NOERROR only', () => {
    for (const target of report.answers.targets) {
      const [only] = target.runs;
      expect(target.runs, target.id).toHaveLength(1);
      expect(only?.completed, target.id).toBeGreaterThan(0);
      expect(only?.rcodes, target.id).toMatch(/^NOERROR \d+ \(100\.00%\)$/);
      expect(only?.cpuUsPerQuery, target.id).toBeGreaterThan(0);
    }
  });

  it('runs the fixed-rate loss check at 80 % of our measured maximum', () => {
    const ours = report.answers.targets.find((t) => t.id === 'ours');
    expect(report.answers.fixedRate.rate).toBe(Math.round(0.8 * (ours?.qps.median ?? 0)));
    expect(report.answers.fixedRate.runs.length).toBeGreaterThan(0);
    for (const r of report.answers.fixedRate.runs) expect(r.rcodes).toMatch(/^NOERROR /);
  });

  it('measures the probe loop through the Squids and direct, with no failed round', () => {
    expect(report.probeLoop.map((r) => `${r.pools} ${r.via}`)).toEqual(['10 squids', '10 direct']);
    for (const r of report.probeLoop) {
      if ('error' in r) throw new Error(`${r.pools} pools via ${r.via}: ${r.error}`);
      expect(r.rounds).toBeGreaterThanOrEqual(10);
      expect(r.failedRounds).toBe(0);
    }
  });

  it('measures the sidecar start and its answer to a hung Squid', () => {
    expect(report.sidecar.startToReadyMs.median).toBeGreaterThan(0);
    expect(report.sidecar.hungReadyzStatuses.length).toBeGreaterThan(0);
    expect(new Set(report.sidecar.hungReadyzStatuses)).toEqual(new Set([503]));
  });

  it('prints the comparison and the verdict on every target of the issue', () => {
    expect(stdout).toMatch(/^ {2}ours\/ceiling\s/m);
    expect(stdout).toMatch(/^ {2}ours\/dns2\s/m);
    expect(report.targets.map((t) => t.target)).toEqual([
      'ours >= 95 % of the dgram ceiling (q/s medians)',
      'ours >= 4x plain dns2',
      'CPU per query < 20 µs',
      'RSS < 70 MB under load',
      'no loss at 80 % of max rate',
    ]);
    for (const t of report.targets)
      expect(stdout).toContain(`${t.met ? 'MET ' : 'MISS'}  ${t.target}: ${t.value}`);
  });
});
