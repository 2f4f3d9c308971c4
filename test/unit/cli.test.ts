// argv -> Command, as the composition root receives it. No process is spawned here: the exit codes
// and stderr lines of the real binary are tested in test/cli/.
import { describe, expect, it } from 'vitest';
import { helpText, parseCommandLine } from '../../src/cli.js';

const parse = (line: string, env: Record<string, string> = {}) =>
  parseCommandLine(line === '' ? [] : line.split(' '), { env, version: '1.2.3' });

describe('commands', () => {
  it.each([
    ['dns --config egress.yaml', { command: 'dns', configPath: 'egress.yaml', logLevel: 'info' }],
    ['dns -c egress.yaml', { command: 'dns', configPath: 'egress.yaml', logLevel: 'info' }],
    ['dns --config=egress.yaml', { command: 'dns', configPath: 'egress.yaml', logLevel: 'info' }],
    ['sidecar --config s.yaml', { command: 'sidecar', configPath: 's.yaml', logLevel: 'info' }],
    ['check-config egress.yaml', { command: 'check-config', configPath: 'egress.yaml', logLevel: 'info' }],
    [
      'check-config --config egress.yaml',
      { command: 'check-config', configPath: 'egress.yaml', logLevel: 'info' },
    ],
    [
      'probe --proxy http://127.0.0.1:3128 --target http://www.baidu.com/',
      {
        command: 'probe',
        proxy: 'http://127.0.0.1:3128',
        targets: ['http://www.baidu.com/'],
        quorum: 1,
        timeoutMs: 3_000,
        logLevel: 'info',
      },
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --target https://b/ --timeout 500ms',
      {
        command: 'probe',
        proxy: 'http://squid:3128',
        targets: ['http://a/', 'https://b/'],
        quorum: 1,
        timeoutMs: 500,
        logLevel: 'info',
      },
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --target https://b/ --quorum 2 --timeout 1m30s',
      {
        command: 'probe',
        proxy: 'http://squid:3128',
        targets: ['http://a/', 'https://b/'],
        quorum: 2,
        timeoutMs: 90_000,
        logLevel: 'info',
      },
    ],
  ])('%s', (line, expected) => {
    expect(parse(line)).toEqual(expected);
  });
});

describe('status', () => {
  it.each([
    ['status', { url: 'http://127.0.0.1:8080/status', json: false }],
    ['status --json', { url: 'http://127.0.0.1:8080/status', json: true }],
    ['status --url http://10.96.0.53:8080', { url: 'http://10.96.0.53:8080/status', json: false }],
    ['status --url http://[::1]:8080/', { url: 'http://[::1]:8080/status', json: false }],
    [
      'status --url https://dns.example/egress/status',
      { url: 'https://dns.example/egress/status', json: false },
    ],
  ])('%s', (line, expected) => {
    expect(parse(line)).toEqual({ command: 'status', timeoutMs: 5_000, ...expected });
  });

  it('asks the port of the default http.listen, from the schema', async () => {
    const { DEFAULT_HTTP_LISTEN } = await import('../../src/config/schema.js');
    const port = DEFAULT_HTTP_LISTEN.split(':').at(-1);
    expect(parse('status')).toMatchObject({ url: `http://127.0.0.1:${port}/status` });
    expect(helpText('status')).toContain(`(default: http://127.0.0.1:${port},`);
  });

  it.each([
    ['status --url 10.96.0.53:8080', 'status: --url "10.96.0.53:8080" is not an http:// or https:// URL'],
    ['status --url', 'status: --url needs a value'],
    ['status --json=yes', 'status: --json takes no value'],
    ['status extra', 'status: unexpected argument "extra"'],
  ])('%j', (line, message) => {
    expect(parse(line)).toEqual({ command: 'error', message });
  });
});

describe('probe quorum', () => {
  // Regression: several --target made every one of them required, unlike the config's quorum 1,
  // and --help did not say so.
  it('is 1 by default however many targets there are, as in the config', () => {
    expect(
      parse('probe --proxy http://squid:3128 --target http://a/ --target http://b/ --target http://c/'),
    ).toMatchObject({
      command: 'probe',
      quorum: 1,
    });
  });

  it('is documented in the main help and the probe help', () => {
    expect(helpText()).toContain('[--quorum N]');
    expect(helpText('probe')).toContain('at least --quorum targets pass');
    expect(helpText('probe')).toMatch(/then one line\s+per target/);
  });
});

describe('log level', () => {
  it('takes --log-level before or after the command', () => {
    expect(parse('dns --config f --log-level debug')).toMatchObject({ command: 'dns', logLevel: 'debug' });
    expect(parse('--log-level debug dns --config f')).toMatchObject({ command: 'dns', logLevel: 'debug' });
    expect(parse('--log-level=warn check-config f')).toMatchObject({
      command: 'check-config',
      logLevel: 'warn',
    });
  });

  it('prefers the flag to LOG_LEVEL, and LOG_LEVEL to the default', () => {
    expect(parse('dns --config f', { LOG_LEVEL: 'error' })).toMatchObject({ logLevel: 'error' });
    expect(parse('dns --config f --log-level trace', { LOG_LEVEL: 'error' })).toMatchObject({
      logLevel: 'trace',
    });
    expect(parse('dns --config f', { LOG_LEVEL: '' })).toMatchObject({ logLevel: 'info' });
  });

  it('refuses a level it does not know, from either place', () => {
    expect(parse('dns --config f --log-level verbose')).toEqual({
      command: 'error',
      message:
        '--log-level "verbose" is not a log level (expected trace, debug, info, warn, error, fatal, silent)',
    });
    expect(parse('dns --config f', { LOG_LEVEL: 'INFO' })).toEqual({
      command: 'error',
      message:
        'LOG_LEVEL "INFO" is not a log level (expected trace, debug, info, warn, error, fatal, silent)',
    });
  });
});

describe('help and version', () => {
  it.each([
    ['--help', undefined],
    ['-h', undefined],
    ['help', undefined],
    ['dns --help', 'dns'],
    ['dns -h', 'dns'],
    ['--help dns', 'dns'],
    ['help dns', 'dns'],
    ['sidecar --help', 'sidecar'],
    ['probe --help', 'probe'],
    ['check-config --help', 'check-config'],
  ] as const)('%s shows the help of %s', (line, topic) => {
    expect(parse(line)).toEqual({ command: 'help', text: helpText(topic) });
  });

  it('answers --help even when the rest of the line is incomplete', () => {
    expect(parse('dns --help')).toMatchObject({ command: 'help' });
    expect(parse('probe --timeout 3s --help')).toMatchObject({ command: 'help' });
  });

  it('prints the version it is given', () => {
    expect(parse('--version')).toEqual({ command: 'version', text: '1.2.3' });
  });

  it('names every command in the main help, and points at the README', () => {
    const text = helpText();
    for (const command of ['dns', 'sidecar', 'probe', 'check-config'])
      expect(text).toContain(`egress-failover ${command}`);
    expect(text).toContain('README');
    expect(text).toContain('docs/ERRORS.md');
  });

  it('names the defaults in each command help', () => {
    // The defaults are wrapped to the terminal's width wherever they fall: read them as one line.
    const flat = (topic: 'dns' | 'sidecar') => helpText(topic).replace(/\s+/g, ' ');
    expect(flat('dns')).toContain('dns.listen 0.0.0.0:5353');
    expect(flat('dns')).toContain('http.listen 0.0.0.0:8080');
    expect(flat('dns')).toContain('interval 2s, timeout 1s, rise 2, fall 2');
    expect(flat('sidecar')).toContain('sidecar.listen 0.0.0.0:8081, proxy http://127.0.0.1:3128');
    expect(flat('sidecar')).toContain('interval 5s, timeout 3s, rise 1, fall 3');
    expect(helpText('probe')).toContain('(default: 3s');
    expect(helpText('probe')).toMatch(
      /--quorum N +how many targets must pass \(default: 1, as probe\.quorum/,
    );
    for (const command of ['dns', 'sidecar', 'probe', 'check-config', 'status'] as const) {
      expect(helpText(command)).toContain('--log-level');
      expect(helpText(command)).toContain('README');
    }
  });

  it('names the defaults the schema has, read from it', async () => {
    const { DNS_DEFAULTS, PROBE_DEFAULTS, SIDECAR_DEFAULTS } = await import('../../src/config/schema.js');
    const dns = helpText('dns').replace(/\s+/g, ' ');
    expect(dns).toContain(`dns.listen ${DNS_DEFAULTS.listen}, dns.ttl ${DNS_DEFAULTS.ttl},`);
    expect(dns).toContain(`probe: quorum ${PROBE_DEFAULTS.quorum}, interval 2s, timeout 1s,`);
    expect(dns).toContain(`onAllDown ${DNS_DEFAULTS.onAllDown}.`);
    const sidecar = helpText('sidecar').replace(/\s+/g, ' ');
    expect(sidecar).toContain('interval 5s, timeout 3s, rise 1, fall 3, fastInterval 500ms');
    expect(sidecar).toContain(`readiness ${SIDECAR_DEFAULTS.readiness} (deep | attributed)`);
  });

  it('keeps help lines within 100 columns', () => {
    for (const topic of [undefined, 'dns', 'sidecar', 'probe', 'check-config', 'status'] as const) {
      for (const line of helpText(topic).split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    }
  });
});

describe('usage errors: one line each', () => {
  it.each([
    ['', 'missing command (expected dns, sidecar, probe, check-config, status)'],
    ['dnss', 'unknown command "dnss" (expected dns, sidecar, probe, check-config, status)'],
    ['dnss --config f', 'unknown command "dnss" (expected dns, sidecar, probe, check-config, status)'],
    ['help dnss', 'unknown command "dnss" (expected dns, sidecar, probe, check-config, status)'],
    ['dns', 'dns: --config FILE is required'],
    ['sidecar', 'sidecar: --config FILE is required'],
    ['dns --config', 'dns: --config needs a value'],
    ['dns --confg f', 'dns: unknown option "--confg"'],
    ['dns --config f extra', 'dns: unexpected argument "extra"'],
    ['dns --config f --target http://a/', 'dns: unknown option "--target"'],
    ['check-config', 'check-config: FILE is required'],
    ['check-config a.yaml b.yaml', 'check-config: one FILE at a time (got 2)'],
    ['probe --target http://a/', 'probe: --proxy URL is required'],
    ['probe --proxy http://squid:3128', 'probe: --target URL is required (repeat it for several)'],
    [
      'probe --proxy squid:3128 --target http://a/',
      'probe: --proxy "squid:3128" is not an http:// or https:// URL',
    ],
    [
      'probe --proxy http://squid:3128 --target www.baidu.com',
      'probe: --target "www.baidu.com" is not an http:// or https:// URL',
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --timeout 3',
      'probe: --timeout "3" is not a duration (use e.g. 500ms, 3s)',
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --timeout 0s',
      'probe: --timeout "0s" is not a duration (use e.g. 500ms, 3s)',
    ],
    ['--help=yes', '--help takes no value'],
    [
      'probe --proxy http://squid:3128 --target http://a/ --timeout 600h',
      'probe: --timeout "600h" is longer than the maximum of 24h',
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --quorum 2',
      'probe: --quorum 2 is more than the 1 target(s)',
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --quorum 0',
      'probe: --quorum "0" is not a whole number of targets (1 or more)',
    ],
    [
      'probe --proxy http://squid:3128 --target http://a/ --quorum all',
      'probe: --quorum "all" is not a whole number of targets (1 or more)',
    ],
    ['probe --proxy http://squid:3128 --target http://a/ --quorum', 'probe: --quorum needs a value'],
    [
      'probe --proxy http://squid:3128 --target http://a/ --target https://u:secret@b/',
      'probe: --target "https://***@b/" carries credentials; targets are fetched without them',
    ],
  ])('%j', (line, message) => {
    // Each a single line, so a usage error is one line on stderr.
    expect(message).not.toContain('\n');
    expect(parse(line)).toEqual({ command: 'error', message });
  });

  it('never echoes a proxy password', () => {
    const result = parse('probe --proxy socks://user:secret@squid:1080 --target http://a/');
    expect(result).toEqual({
      command: 'error',
      message: 'probe: --proxy "socks://***@squid:1080" is not an http:// or https:// URL',
    });
  });
});
