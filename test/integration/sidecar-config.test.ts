// The sidecar's config as the sidecar reads it: the compiled loader (dist/, as operators run it)
// parses in a child process (src/config/parse-process.ts), never in the sidecar's own process. What
// comes back must be what the schema says, exactly as the inline parse the unit tests check: the
// same error lines for every bad fixture, the same config, frozen, for every good one.
// Build first: `npx tsc -p tsconfig.build.json`.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type * as Load from '../../src/config/load.js';
import { parseConfigText } from '../../src/config/parse.js';
import { sidecarConfigSchema } from '../../src/config/schema.js';
import { expectDeeplyFrozen } from '../helpers/frozen.js';

const FIXTURES = resolve('test/fixtures/config');
const compiled = (await import(pathToFileURL(resolve('dist/config/load.js')).href)) as typeof Load;

const files = [
  ...readdirSync(FIXTURES)
    .filter((name) => /^(in)?valid-sidecar-/.test(name))
    .map((name) => join(FIXTURES, name)),
  resolve('examples/sidecar.yaml'),
].sort();

describe('the sidecar config, parsed in a child process', () => {
  it('has fixtures of both kinds', () => {
    expect(files.filter((f) => f.includes('/invalid-')).length).toBeGreaterThan(5);
    expect(files.filter((f) => !f.includes('/invalid-')).length).toBeGreaterThan(1);
  });

  it.each(files.map((file) => [file.slice(file.lastIndexOf('/') + 1), file]))(
    '%s: as the inline parse',
    async (_name, file) => {
      const inline = parseConfigText(readFileSync(file, 'utf8'), sidecarConfigSchema);
      const loaded = await compiled.loadSidecarConfig(file);
      expect(loaded).toStrictEqual(inline);
      if (loaded.ok) expectDeeplyFrozen(loaded.config);
    },
  );
});
