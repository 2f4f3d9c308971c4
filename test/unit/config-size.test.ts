// The config size cap: a file over MAX_CONFIG_BYTES is refused by its size, before it is read,
// with a line naming the size and the limit; one at the limit is read whole.
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAnyConfig, loadDnsConfig, MAX_CONFIG_BYTES, readConfigFile } from '../../src/config/load.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-config-size-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the config size cap', () => {
  it('is 1 MiB, a ConfigMap’s maximum', () => {
    expect(MAX_CONFIG_BYTES).toBe(1_048_576);
  });

  it('refuses a 20 MB file by its size, naming the size and the limit, for every loader', async () => {
    const file = join(dir, 'huge.yaml');
    // A sparse file: 20 MB by stat, nothing written. Reading it would be the bug.
    await writeFile(file, '');
    await truncate(file, 20_000_000);
    const line = `${file}: the config file is 20.0 MB, over the limit of 1 MiB`;
    for (const load of [loadDnsConfig, loadAnyConfig])
      expect(await load(file)).toEqual({ ok: false, reason: 'too_large', errors: [line] });
  });

  it('reads a file of exactly the limit, and refuses one byte more', async () => {
    const file = join(dir, 'edge.yaml');
    const at = `# ${'x'.repeat(MAX_CONFIG_BYTES - 3)}\n`;
    await writeFile(file, at);
    expect(await readConfigFile(file)).toEqual({ ok: true, text: at });
    await writeFile(file, `${at} `);
    expect(await readConfigFile(file)).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('takes a limit of its own, and still says which file cannot be read', async () => {
    const file = join(dir, 'small.yaml');
    await writeFile(file, 'x'.repeat(2048));
    expect(await readConfigFile(file, 1024)).toEqual({
      ok: false,
      reason: 'too_large',
      errors: [`${file}: the config file is 2.0 KB, over the limit of 1 KiB`],
    });
    expect(await readConfigFile(join(dir, 'missing.yaml'))).toEqual({
      ok: false,
      reason: 'unreadable',
      errors: [`${join(dir, 'missing.yaml')}: cannot read the config file (ENOENT)`],
    });
  });
});
