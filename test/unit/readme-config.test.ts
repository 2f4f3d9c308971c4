// The README's configuration block stays true: it parses, and every value it shows as a default is
// the schema's (a default changed in one place only fails here).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/parse.js';
import { type DnsConfig, dnsConfigSchema } from '../../src/config/schema.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const section = README.slice(README.indexOf('## Configuration'));
const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

function load(text: string): DnsConfig {
  const loaded = parseConfigText(text, dnsConfigSchema);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

describe("README's configuration block", () => {
  it('parses as a DNS server config', () => {
    expect(block).toMatch(/^dns:/);
    load(block);
  });

  it('shows the defaults the schema fills in', () => {
    const shown = load(block);
    const minimal = load(
      [
        'probe: { targets: [http://www.baidu.com/] }',
        'services:',
        '  - name: proxy',
        '    pools: [{ name: secondary, proxy: "http://squid-secondary.egress.svc.cluster.local:3128" }]',
      ].join('\n'),
    );
    expect(shown.dns).toEqual(minimal.dns);
    expect(shown.http).toEqual(minimal.http);
    const [service] = shown.services;
    const [defaults] = minimal.services;
    expect(service?.onAllDown).toBe(defaults?.onAllDown);
    // The secondary overrides nothing: its probe settings are the probe block's, i.e. the defaults.
    expect(service?.pools[1]?.probe).toEqual(defaults?.pools[0]?.probe);
  });
});
