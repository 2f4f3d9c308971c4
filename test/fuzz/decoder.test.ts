// Coverage-guided fuzzing of the DNS wire path (decoder-target.ts through coverage-fuzzer.ts).
// In CI: every committed corpus entry and crash replays clean (the regression test), and a short
// campaign runs. A long campaign, growing a working corpus:
//   FUZZ_SECONDS=600 FUZZ_CORPUS=/tmp/ef-fuzz-corpus npx vitest run test/fuzz/decoder.test.ts
// Inputs that break the target land in test/fuzz/crashes/decoder/ (FUZZ_CRASHES to move them):
// commit each with its fix, and this file replays it from then on.
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fuzz } from './coverage-fuzzer.js';
import { fuzzDecoder, SLOW_MS, slowReport } from './decoder-target.js';

const here = dirname(fileURLToPath(import.meta.url));
const SEEDS = join(here, 'corpus/decoder');
const CRASHES = process.env.FUZZ_CRASHES ?? join(here, 'crashes/decoder');
const seconds = Number(process.env.FUZZ_SECONDS ?? 8);

const label = (s: string) => Uint8Array.from([s.length, ...Buffer.from(s)]);
const DICTIONARY = [
  Uint8Array.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]), // OPT, root owner, 4096
  Uint8Array.from([0xc0, 12]), // pointer to the question
  Uint8Array.from([...label('proxy'), ...label('egress'), ...label('svc'), 0]),
  Uint8Array.from([...label('_status'), ...label('proxy'), ...label('egress'), ...label('svc'), 0]),
  Uint8Array.from([0, 1, 0, 1]), // A IN
  Uint8Array.from([0, 28, 0, 1]), // AAAA IN
  Uint8Array.from([0, 0xff, 0, 1]), // ANY IN
  Uint8Array.from([0, 0, 0, 1]), // a count of one
];

/** Slowness is reported, never a finding (decoder-target.ts says why). */
function reportSlow(): void {
  const { count, worst } = slowReport();
  if (count > 0)
    console.warn(`fuzz: ${count} replies over ${SLOW_MS} ms so far (report only); slowest ${worst}`);
}

async function files(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.bin')).map((n) => join(dir, n));
}

describe('coverage-guided fuzzing of the wire path', () => {
  it('replays every committed seed and crash without breaking the contract', async () => {
    const inputs = [...(await files(SEEDS)), ...(await files(join(here, 'crashes/decoder')))];
    expect(inputs.length).toBeGreaterThan(5);
    for (const file of inputs) {
      const data = new Uint8Array(await readFile(file));
      expect(() => fuzzDecoder(data), file).not.toThrow();
    }
    reportSlow();
  });

  it(
    `finds no input that breaks the contract in ${seconds} s of coverage-guided search`,
    async () => {
      const report = await fuzz({
        target: fuzzDecoder,
        cover: ['/src/dns/'],
        seedDirs: [SEEDS],
        corpusDir: process.env.FUZZ_CORPUS ?? join(tmpdir(), `ef-fuzz-corpus-${process.pid}`),
        crashDir: CRASHES,
        durationMs: seconds * 1000,
        seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
        dictionary: DICTIONARY,
        log: (line) => console.log(line),
      });
      console.log(
        `fuzz: ${report.execs} execs in ${report.ms} ms, corpus ${report.corpus}, features ${report.features}, blocks ${report.blocksHit}/${report.blocksSeen} of src/dns, findings ${report.findings.length}`,
      );
      reportSlow();
      expect(report.blocksHit).toBeGreaterThan(0);
      expect(report.findings).toEqual([]);
    },
    seconds * 1000 + 60_000,
  );
});
