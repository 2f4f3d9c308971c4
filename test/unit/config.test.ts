// The config contract: every good fixture parses, every bad one fails with exactly the lines an
// operator sees from check-config (each invalid-*.yaml lists them in its "# expect:" header).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../../src/config/duration.js';
import { loadDnsConfig, loadSidecarConfig } from '../../src/config/load.js';
import { formatPath, parseAnyConfigText, parseConfigText } from '../../src/config/parse.js';
import { configKind, type DnsConfig, dnsConfigSchema, sidecarConfigSchema } from '../../src/config/schema.js';
import { expectDeeplyFrozen } from '../helpers/frozen.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/config');
const EXAMPLES = join(import.meta.dirname, '../../examples');

const fixtures = readdirSync(FIXTURES).sort();
const valid = fixtures.filter((name) => name.startsWith('valid-'));
const invalid = fixtures.filter((name) => name.startsWith('invalid-'));
const schemaFor = (name: string) =>
  /^(in)?valid-sidecar-/.test(name) ? sidecarConfigSchema : dnsConfigSchema;
const read = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const parse = (name: string) => parseConfigText<unknown>(read(name), schemaFor(name));

function dnsFixture(name: string): DnsConfig {
  const loaded = parseConfigText(read(name), dnsConfigSchema);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

function expectedLines(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('# expect: '))
    .map((line) => line.slice('# expect: '.length));
}

describe('valid fixtures', () => {
  it('has some of each kind', () => {
    expect(valid.length).toBeGreaterThan(5);
    expect(valid.some((name) => name.includes('sidecar'))).toBe(true);
  });

  it.each(valid)('%s parses', (name) => {
    const loaded = parse(name);
    expect(loaded.ok ? [] : loaded.errors).toEqual([]);
  });

  it.each(valid)('%s parses to a deeply frozen config', (name) => {
    const loaded = parse(name);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expectDeeplyFrozen(loaded.config);
  });
});

describe('defaults', () => {
  it('fills in every default of the README for a minimal DNS config', async () => {
    const loaded = await loadDnsConfig(join(FIXTURES, 'valid-minimal.yaml'));
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expect(loaded.config).toEqual({
      dns: {
        zone: 'egress.svc',
        listen: { host: '0.0.0.0', port: 5353 },
        ttl: 5,
        nameserver: 'ns.egress.svc',
      },
      http: { listen: { host: '0.0.0.0', port: 8080 } },
      services: [
        {
          name: 'proxy',
          onAllDown: 'servfail',
          pools: [
            {
              name: 'primary',
              proxy: 'http://squid-primary.egress.svc.cluster.local:3128',
              addresses: undefined,
              probe: {
                targets: ['http://www.baidu.com/'],
                quorum: 1,
                intervalMs: 2_000,
                timeoutMs: 1_000,
                rise: 2,
                fall: 2,
                fastIntervalMs: 200,
                expectStatus: [{ min: 200, max: 399 }],
                flapThreshold: 4,
                flapWindowMs: 600_000,
                holdDownMs: 60_000,
                maxHoldDownMs: 600_000,
              },
            },
          ],
        },
      ],
    });
  });

  it('fills in every default of the README for a minimal sidecar config', async () => {
    const loaded = await loadSidecarConfig(join(FIXTURES, 'valid-sidecar-minimal.yaml'));
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expect(loaded.config).toEqual({
      listen: { host: '0.0.0.0', port: 8081 },
      proxy: 'http://127.0.0.1:3128',
      probe: {
        targets: ['http://www.baidu.com/'],
        quorum: 1,
        intervalMs: 5_000,
        timeoutMs: 3_000,
        rise: 1,
        fall: 3,
        fastIntervalMs: 500,
        expectStatus: [{ min: 200, max: 399 }],
        flapThreshold: 0,
        flapWindowMs: 600_000,
        holdDownMs: 60_000,
        maxHoldDownMs: 600_000,
      },
      liveness: 'deep',
      readiness: 'deep',
    });
  });

  it('derives the nameserver from a non-default zone and lowercases names', () => {
    const config = dnsConfigSchema.parse({
      dns: { zone: 'Corp.Example.' },
      probe: { targets: ['http://www.baidu.com/'] },
      services: [{ name: 'Proxy', pools: [{ name: 'A', proxy: 'http://squid:3128' }] }],
    });
    expect(config.dns).toMatchObject({ zone: 'corp.example', nameserver: 'ns.corp.example' });
    expect(config.services[0]?.name).toBe('proxy');
    expect(config.services[0]?.pools[0]?.name).toBe('a');
  });

  it('merges a pool probe block onto the shared one key by key', () => {
    const [primary, secondary] = dnsFixture('valid-pool-overrides.yaml').services[0]?.pools ?? [];
    expect(primary?.probe).toMatchObject({
      targets: ['http://www.baidu.com/', 'http://www.qq.com/'],
      intervalMs: 1_000,
      timeoutMs: 500,
      rise: 1,
      fall: 2,
    });
    expect(secondary?.probe).toMatchObject({
      targets: ['http://www.baidu.com/'],
      intervalMs: 3_000,
      timeoutMs: 1_000,
      expectStatus: [{ min: 200, max: 200 }],
    });
  });

  it('serves one address or a list, and none means "resolve the proxy host"', () => {
    const addresses = (name: string) => dnsFixture(name).services[0]?.pools.map((pool) => pool.addresses);
    expect(addresses('valid-full.yaml')).toEqual([['10.96.0.10'], ['10.96.0.11', '10.96.0.12']]);
    expect(addresses('valid-ipv6.yaml')).toEqual([['fd00::10'], ['10.96.0.11', 'fd00::11']]);
    expect(addresses('valid-minimal.yaml')).toEqual([undefined]);
  });
});

describe('invalid fixtures', () => {
  it.each(invalid)('%s fails with exactly its expected lines', (name) => {
    const text = read(name);
    const expected = expectedLines(text);
    expect(expected.length, `${name} has "# expect:" lines`).toBeGreaterThan(0);
    const loaded = parseConfigText<unknown>(text, schemaFor(name));
    expect(loaded.ok ? ['(parsed without error)'] : loaded.errors).toEqual(expected);
  });

  it('never prints a password, even in a URL it rejects (proxy or target)', () => {
    for (const name of ['invalid-proxy-url-with-password.yaml', 'invalid-target-with-credentials.yaml']) {
      const loaded = parse(name);
      expect(loaded.ok).toBe(false);
      expect(JSON.stringify(loaded)).not.toContain('s3cret');
    }
  });

  it('names an unreadable file and its errno', async () => {
    const loaded = await loadDnsConfig(join(FIXTURES, 'no-such-file.yaml'));
    expect(loaded).toEqual({
      ok: false,
      reason: 'unreadable',
      errors: [`${join(FIXTURES, 'no-such-file.yaml')}: cannot read the config file (ENOENT)`],
    });
  });

  it('treats an empty file as a config missing its required keys', () => {
    expect(parseConfigText('', dnsConfigSchema)).toEqual({
      ok: false,
      reason: 'invalid',
      errors: ['services: required'],
    });
    expect(parseConfigText('', sidecarConfigSchema)).toEqual({
      ok: false,
      reason: 'invalid',
      errors: ['sidecar: required'],
    });
  });
});

describe('examples', () => {
  const examples = readdirSync(EXAMPLES).filter((name) => /\.ya?ml$/.test(name));

  it.each(examples)('examples/%s is a valid config', (name) => {
    const schema = name.includes('sidecar') ? sidecarConfigSchema : dnsConfigSchema;
    const loaded = parseConfigText<unknown>(readFileSync(join(EXAMPLES, name), 'utf8'), schema);
    expect(loaded.ok ? [] : loaded.errors).toEqual([]);
  });
});

describe('formatPath', () => {
  it('writes paths the way an operator would point into the file', () => {
    expect(formatPath(['services', 0, 'pools', 1, 'proxy'])).toBe('services[0].pools[1].proxy');
    expect(formatPath(['dns', 'listen'])).toBe('dns.listen');
    expect(formatPath([])).toBe('');
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['2s', 2_000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    [' 2s ', 2_000],
    ['0s', 0],
    // Compounds, as Go's time.Duration and Kubernetes write them.
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1h0m0s', 3_600_000],
    ['1s500ms', 1_500],
    ['2m1.5s', 121_500],
    ['1h2m3s4ms', 3_723_004],
    // Fractions land on the nearest millisecond, not below it.
    ['1.5ms', 2],
    ['0.0006s', 1],
  ])('parses %j as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    '2',
    's',
    '2 s',
    '2sec',
    '-1s',
    '1d',
    '2S',
    '1e3ms',
    'Infinityms',
    // Compounds out of order or repeating a unit are more likely slips than meant.
    '30s1m',
    '1m1m',
    '1m 30s',
    '1h30',
    '1.5.5s',
  ])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([
    [500, '500ms'],
    [1_500, '1500ms'],
    [2_000, '2s'],
    [59_999, '59999ms'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [120_000, '2m'],
    [121_500, '2m1.5s'],
    [3_605_000, '1h5s'],
    [5_430_000, '1h30m30s'],
    [7_200_000, '2h'],
    [MAX_DURATION_MS, '24h'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips every whole number of milliseconds up to the maximum', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it('keeps the maximum within what a Node timer can wait, jitter included', () => {
    expect(MAX_DURATION_MS * 1.05).toBeLessThan(2 ** 31 - 1);
  });

  // Regression: "interval: 600h" passed, and Node then fired the timer after 1 ms.
  it.each([
    ['interval', '24h', true],
    ['interval', '24h0m0s', true],
    ['interval', '86400001ms', false],
    ['interval', '600h', false],
    ['fastInterval', '2147483648ms', false],
  ])('probe.%s: %s is accepted: %s', (key, text, ok) => {
    const loaded = parseConfigText(
      `probe: { targets: [http://a/], ${key}: ${text} }\nservices: [{ name: p, pools: [{ name: a, proxy: "http://s:3128" }] }]`,
      dnsConfigSchema,
    );
    expect(loaded.ok ? [] : loaded.errors).toEqual(
      ok ? [] : [`probe.${key}: "${text}" is longer than the maximum of 24h`],
    );
  });

  it('reads compound durations in the config', () => {
    const [pool] = dnsFixture('valid-compound-durations.yaml').services[0]?.pools ?? [];
    expect(pool?.probe).toMatchObject({ intervalMs: 3_600_000, timeoutMs: 2_500, fastIntervalMs: 250 });
    const shared = parseConfigText(
      read('valid-compound-durations.yaml').replace(/ +probe: \{.*\}\n/, ''),
      dnsConfigSchema,
    );
    if (!shared.ok) throw new Error(shared.errors.join('\n'));
    expect(shared.config.services[0]?.pools[0]?.probe).toMatchObject({
      intervalMs: 90_000,
      timeoutMs: 1_500,
    });
  });
});

describe('expectStatus', () => {
  it('takes a YAML list of statuses and ranges as well as the text form', () => {
    const pools = dnsFixture('valid-expect-status-list.yaml').services[0]?.pools ?? [];
    expect(pools.map((pool) => pool.probe.expectStatus)).toEqual([
      [
        { min: 200, max: 299 },
        { min: 404, max: 404 },
      ],
      [
        { min: 204, max: 204 },
        { min: 300, max: 399 },
      ],
    ]);
    const text = dnsConfigSchema.parse({
      probe: { targets: ['http://a/'], expectStatus: '200,204,300-399' },
      services: [{ name: 'p', pools: [{ name: 'a', proxy: 'http://s:3128' }] }],
    });
    expect(text.services[0]?.pools[0]?.probe.expectStatus).toEqual([
      { min: 200, max: 200 },
      { min: 204, max: 204 },
      { min: 300, max: 399 },
    ]);
  });

  it('takes the list form in a sidecar config too', () => {
    const loaded = parseConfigText(
      'sidecar: { targets: [http://a/], expectStatus: [200, 404] }',
      sidecarConfigSchema,
    );
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expect(loaded.config.probe.expectStatus).toEqual([
      { min: 200, max: 200 },
      { min: 404, max: 404 },
    ]);
  });
});

describe('cross-field checks run on every part that parsed', () => {
  // Regression: they ran only once every field was valid, so an operator fixed the field errors
  // and then met a second list.
  it('lists field and cross-field errors in one run', () => {
    const loaded = parse('invalid-every-error-at-once.yaml');
    expect(loaded.ok ? [] : loaded.errors).toEqual(expectedLines(read('invalid-every-error-at-once.yaml')));
    expect(loaded.ok ? [] : loaded.errors).toHaveLength(7);
  });

  it('skips only a check whose fields were refused', () => {
    const base = {
      probe: { targets: ['http://a/'] },
      services: [{ name: 'p', pools: [{ name: 'a', proxy: 'http://s:3128' }] }],
    };
    const errors = (probe: Record<string, unknown>) => {
      const loaded = parseConfigText(
        JSON.stringify({ ...base, probe: { ...base.probe, ...probe } }),
        dnsConfigSchema,
      );
      return loaded.ok ? [] : loaded.errors;
    };
    // quorum refused: the quorum check is skipped, the timeout check still runs.
    expect(errors({ quorum: 0, timeout: '5s' })).toEqual([
      'probe.quorum: must be at least 1',
      'probe.timeout: timeout (5s) must not be longer than interval (2s)',
    ]);
    // interval refused: the timeout check is skipped, the quorum check still runs.
    expect(errors({ quorum: 2, timeout: '5s', interval: 'soon' })).toEqual([
      'probe.interval: "soon" is not a duration (use e.g. 500ms, 2s, 1m)',
      'probe.quorum: quorum 2 is more than the 1 target(s)',
    ]);
    // targets refused: neither "required" nor the quorum check, which both need them.
    expect(errors({ targets: ['ftp://a/'], quorum: 2 })).toEqual([
      'probe.targets[0]: "ftp://a/" is not an http:// or https:// target URL',
    ]);
  });

  it('checks duplicate names among the services and pools that parsed', () => {
    const loaded = parseConfigText(
      JSON.stringify({
        probe: { targets: ['http://a/'] },
        services: [
          { name: 'p', pools: [{ name: 'a', proxy: 'http://s:3128' }] },
          {
            name: 'P',
            pools: [
              { name: 'a', proxy: 'nope' },
              { name: 'A', proxy: 'http://s:3128' },
            ],
          },
          { name: 'bad name', pools: [{ name: 'a', proxy: 'http://s:3128' }] },
        ],
      }),
      dnsConfigSchema,
    );
    expect(loaded.ok ? [] : loaded.errors).toEqual([
      'services[1].pools[0].proxy: "nope" is not an http:// or https:// proxy URL',
      'services[2].name: must be a DNS label (letters, digits, hyphens)',
      'services[1].name: duplicate service name "p"',
      'services[1].pools[1].name: duplicate pool name "a"',
    ]);
  });

  it('still checks a block that also has an unknown key', () => {
    const loaded = parseConfigText(
      'sidecar: { targets: [http://a/], quorum: 2, intervl: 10s }',
      sidecarConfigSchema,
    );
    expect(loaded.ok ? [] : loaded.errors).toEqual([
      'sidecar.intervl: unknown key (check the spelling)',
      'sidecar.quorum: quorum 2 is more than the 1 target(s)',
    ]);
  });
});

describe('dns.listen and http.listen', () => {
  const listens = (dns: string, http: string) => {
    const loaded = parseConfigText(
      JSON.stringify({
        dns: { listen: dns },
        http: { listen: http },
        probe: { targets: ['http://a/'] },
        services: [{ name: 'p', pools: [{ name: 'a', proxy: 'http://s:3128' }] }],
      }),
      dnsConfigSchema,
    );
    return loaded.ok ? [] : loaded.errors;
  };

  // Regression: check-config passed these, then `dns` bound DNS and failed on http.listen with
  // "address already in use", as if another server held the port.
  it.each([
    ['127.0.0.1:5353', '127.0.0.1:5353'],
    ['0.0.0.0:5353', '127.0.0.1:5353'],
    ['127.0.0.1:5353', '0.0.0.0:5353'],
    ['0.0.0.0:5353', '0.0.0.0:5353'],
    ['[::]:5353', '[::1]:5353'],
    ['[::1]:5353', '[0:0::1]:5353'],
    // [::] is dual-stack (Node leaves IPV6_V6ONLY off): it takes the IPv4 port too.
    ['[::]:5353', '0.0.0.0:5353'],
    ['[::]:5353', '127.0.0.1:5353'],
    ['[::ffff:127.0.0.1]:5353', '127.0.0.1:5353'],
  ])('refuses dns.listen %s with http.listen %s', (dns, http) => {
    const errors = listens(dns, http);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^http\.listen: \S+ clashes with dns\.listen \S+ \(the DNS server takes TCP/);
  });

  it.each([
    ['127.0.0.1:5353', '127.0.0.1:8080'],
    ['127.0.0.1:5353', '127.0.0.2:5353'],
    ['127.0.0.1:0', '127.0.0.1:0'],
    ['0.0.0.0:5353', '[::1]:5353'],
    ['[fd00::1]:5353', '[fd00::2]:5353'],
  ])('accepts dns.listen %s with http.listen %s', (dns, http) => {
    expect(listens(dns, http)).toEqual([]);
  });

  it('does not compare a listen address that is itself wrong', () => {
    expect(listens('127.0.0.1:99999', '127.0.0.1:99999')).toHaveLength(2);
  });
});

describe('the kind of a config', () => {
  it.each([
    ['sidecar: { targets: [http://a/] }', 'sidecar'],
    ['{sidecar: {targets: [http://a/]}}', 'sidecar'],
    ['"sidecar":\n  targets: [http://a/]', 'sidecar'],
    ["'sidecar': { targets: [http://a/] }", 'sidecar'],
    ['{"sidecar": {"targets": ["http://a/"]}}', 'sidecar'],
    ['# sidecar: is only named in a comment\nservices: []', 'dns'],
    ['services:\n  - name: sidecar', 'dns'],
    ['', 'dns'],
    ['- sidecar', 'dns'],
  ])('%j is a %s config', async (text, kind) => {
    const { parseDocument } = await import('yaml');
    expect(configKind(parseDocument(text).toJS())).toBe(kind);
  });

  // Regression: check-config guessed the kind with a regex over the text, so these were judged
  // DNS configs ("services: required") while `sidecar --config` accepted them.
  it.each(['valid-sidecar-flow-style.yaml', 'valid-sidecar-quoted-key.yaml', 'valid-sidecar-full.yaml'])(
    'check-config reads %s as a sidecar config',
    (name) => {
      const loaded = parseAnyConfigText(read(name));
      expect(loaded.ok ? loaded.config.kind : loaded.errors).toBe('sidecar');
    },
  );

  it('check-config reads anything else as a DNS config', () => {
    const loaded = parseAnyConfigText(read('valid-json.json'));
    expect(loaded.ok ? loaded.config.kind : loaded.errors).toBe('dns');
    expect(parseAnyConfigText(read('invalid-several-errors.yaml'))).toMatchObject({
      ok: false,
      errors: expectedLines(read('invalid-several-errors.yaml')),
    });
    expect(parseAnyConfigText(read('invalid-sidecar-liveness.yaml'))).toMatchObject({
      ok: false,
      errors: ['sidecar.liveness: "deeep" is not one of deep, attributed, shallow'],
    });
    expect(parseAnyConfigText('a: [')).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('names the other kind on the first line, for either command', () => {
    const dnsText = read('valid-minimal.yaml');
    const sidecarText = read('valid-sidecar-minimal.yaml');
    expect(parseConfigText(dnsText, sidecarConfigSchema)).toMatchObject({
      ok: false,
      errors: [
        '(root): this is a dns config (top-level probe:, services:), the sidecar reads a sidecar: block',
      ],
    });
    expect(parseConfigText(sidecarText, dnsConfigSchema)).toMatchObject({
      ok: false,
      errors: [
        '(root): this is a sidecar config (top-level sidecar:), the dns server reads dns:, http:, probe: and services:',
      ],
    });
  });
});
