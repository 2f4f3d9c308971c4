// src/dns/README.md and src/health/README.md stay true: their YAML examples pass the DNS server's
// schema, and the defaults their configuration blocks list are the schema's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfigText } from '../../src/config/parse.js';
import { type DnsConfig, dnsConfigSchema } from '../../src/config/schema.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** The README's YAML blocks that are DNS server configs (a top-level dns, http, probe or services key). */
function configBlocks(readme: string): string[] {
  const text = readFileSync(join(ROOT, readme), 'utf8');
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .filter((block) => /^(dns|http|probe|services):/m.test(block));
}

function parse(text: string): DnsConfig {
  const loaded = parseConfigText(text, dnsConfigSchema);
  if (!loaded.ok) throw new Error(`does not parse:\n${loaded.errors.join('\n')}`);
  return loaded.config;
}

/** What a config that sets nothing it need not gets. */
const minimal = parse(`
probe: { targets: [http://www.baidu.com/] }
services: [{ name: proxy, pools: [{ name: primary, proxy: http://squid-primary.egress.svc.cluster.local:3128 }] }]
`);

describe.each([
  ['src/dns/README.md', 2],
  ['src/health/README.md', 3],
])('%s', (readme, count) => {
  const blocks = configBlocks(readme);

  it('has its config examples', () => {
    expect(blocks).toHaveLength(count);
  });

  it.each(blocks.map((block, i) => [i, block] as const))('example %i passes the schema', (_i, block) => {
    const loaded = parseConfigText(block, dnsConfigSchema);
    expect(loaded.ok ? [] : loaded.errors).toEqual([]);
  });
});

/** A parsed block's keys as the file writes them: intervalMs is `interval`. */
const fileKeys = (parsed: object) =>
  Object.keys(parsed)
    .map((key) => key.replace(/Ms$/, ''))
    .sort();
const blockKeys = (block: string, section: string) =>
  Object.keys((parseYaml(block) as Record<string, object>)[section] ?? {}).sort();

describe('the defaults the configuration blocks list', () => {
  it('name every key the schema has', () => {
    const dns = configBlocks('src/dns/README.md')[0] as string;
    expect(blockKeys(dns, 'dns')).toEqual(fileKeys(minimal.dns));
    expect(blockKeys(dns, 'http')).toEqual(fileKeys(minimal.http));
    const health = configBlocks('src/health/README.md')[0] as string;
    expect(blockKeys(health, 'probe')).toEqual(fileKeys(minimal.services[0]?.pools[0]?.probe ?? {}));
  });

  it('src/dns/README.md: dns and http', () => {
    const shown = parse(configBlocks('src/dns/README.md')[0] as string);
    expect({ dns: shown.dns, http: shown.http }).toEqual({ dns: minimal.dns, http: minimal.http });
  });

  it('src/health/README.md: the probe block and onAllDown', () => {
    const shown = parse(configBlocks('src/health/README.md')[0] as string);
    const service = shown.services[0];
    const defaults = minimal.services[0];
    expect(service?.onAllDown).toBe(defaults?.onAllDown);
    expect(service?.pools[0]?.probe).toEqual(defaults?.pools[0]?.probe);
    // The secondary's own block overrides only what it names.
    expect(service?.pools[1]?.probe).toEqual({ ...defaults?.pools[0]?.probe, intervalMs: 1_000 });
  });
});
