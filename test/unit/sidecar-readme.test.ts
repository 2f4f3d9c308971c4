// src/sidecar/README.md stays true: its YAML examples pass the sidecar schema, and the defaults it
// lists are the schema's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/parse.js';
import { sidecarConfigSchema } from '../../src/config/schema.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'sidecar', 'README.md'), 'utf8');
const configBlocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)]
  .map((m) => m[1] as string)
  .filter((block) => /^sidecar:/m.test(block));

describe('src/sidecar/README.md', () => {
  it('has sidecar config examples', () => {
    expect(configBlocks.length).toBeGreaterThanOrEqual(4);
  });

  it.each(configBlocks.map((block, i) => [i, block] as const))(
    'example %i passes the schema',
    (_i, block) => {
      const loaded = parseConfigText(block, sidecarConfigSchema);
      expect(loaded.ok ? [] : loaded.errors).toEqual([]);
    },
  );

  it('lists the schema defaults in its configuration block', () => {
    const loaded = parseConfigText(configBlocks[0] as string, sidecarConfigSchema);
    const defaults = parseConfigText('sidecar: { targets: [http://www.baidu.com/] }', sidecarConfigSchema);
    if (!loaded.ok || !defaults.ok) throw new Error('does not parse');
    expect(loaded.config).toEqual(defaults.config);
  });
});
