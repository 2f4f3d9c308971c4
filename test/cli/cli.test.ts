// The spawned binary, as an operator or the kubelet runs it: exit codes, the one-line errors on
// stderr, serving, and shutdown on SIGTERM.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const BIN = resolve('bin/egress-failover.js');
const FIXTURES = resolve('test/fixtures/config');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runBin(args: string[], timeoutMs = 15_000): Promise<Ran> {
  return new Promise((done) => {
    execFile('node', [BIN, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0;
      done({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'egress-cli-'));
function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const serving = (dnsPort: number, httpPort: number) => `
dns: { listen: 127.0.0.31:${dnsPort} }
http: { listen: 127.0.0.31:${httpPort} }
probe: { targets: [http://127.0.0.30/], interval: 1s, timeout: 200ms }
services:
  - name: proxy
    onAllDown: all
    pools:
      - { name: primary, proxy: http://127.0.0.30:3128, address: 10.0.0.1 }
`;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/**
 * Runs the binary with one of its output pipes closed before it writes, as `... | true` or
 * `... | head -1` leaves it; what it writes to the other one is returned.
 */
function runWithClosedPipe(args: string[], closed: 'stdout' | 'stderr'): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn('node', [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child[closed]?.destroy();
    let text = '';
    (closed === 'stdout' ? child.stderr : child.stdout)?.on('data', (chunk) => {
      text += chunk;
    });
    child.on('close', (code) =>
      done({ code, stdout: closed === 'stdout' ? '' : text, stderr: closed === 'stderr' ? '' : text }),
    );
  });
}

/** A stand-in proxy that answers absolute-form GETs itself: 200 for a path ending in /ok, else 500. */
// `probe` against a real Squid (127.0.0.11:3128) and a real origin (127.0.0.10:80, as origin.test),
// started once for the tests that need a healthy proxy: a target passes (/) or fails (/status/500).
let realProxy: { origin: Origin; fleet: SquidFleet; url: string } | undefined;
async function squid(): Promise<string> {
  if (!realProxy) {
    const origin = await startOrigin();
    const fleet = await startSquids([{ label: 'cli', host: '127.0.0.11' }], {
      probeUrl: 'http://origin.test/',
    });
    realProxy = { origin, fleet, url: fleet.squids[0]?.proxyUrl ?? '' };
  }
  return realProxy.url;
}
afterAll(async () => {
  await realProxy?.fleet.stopAll();
  await realProxy?.origin.close();
});
const PASSING = 'http://origin.test/';
const FAILING = 'http://origin.test/status/500';

/** The JSON lines of an output, skipping anything else. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function start(args: string[]): { child: ChildProcess; exit: Promise<number | null>; output: () => string } {
  const child = spawn('node', [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, exit, output: () => output };
}

describe('help and usage', () => {
  it('--help lists every command, exit 0', async () => {
    const ran = await runBin(['--help']);
    expect(ran.code).toBe(0);
    for (const command of [
      'dns --config',
      'sidecar --config',
      'probe --proxy',
      'check-config FILE',
      'status [--url URL]',
    ]) {
      expect(ran.stdout).toContain(command);
    }
  });

  it('an unknown command: one line on stderr, exit 2', async () => {
    const ran = await runBin(['dnss']);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toHaveLength(1);
    expect(ran.stderr).toMatch(/unknown command "dnss"/);
  });
});

describe('check-config', () => {
  it('accepts the shipped examples, exit 0', async () => {
    for (const file of ['examples/local.yaml', 'examples/egress.yaml', 'examples/sidecar.yaml']) {
      const ran = await runBin(['check-config', file]);
      expect(ran.code, `${file}: ${ran.stderr}`).toBe(0);
    }
  });

  it('prints every error by its path, field and cross-field ones in one run, exit 1', async () => {
    const ran = await runBin(['check-config', join(FIXTURES, 'invalid-several-errors.yaml')]);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'dns.ttl: expected a number, got the text "ten"',
      'services[0].onAllDown: "none" is not one of servfail, last, all',
      'services[0].pools[1].proxy: "squid-secondary" is not an http:// or https:// proxy URL',
      'probe.timeout: timeout (5s) must not be longer than interval (2s)',
    ]);
  });

  // Regression: the kind was guessed with a regex over the text (/^sidecar\s*:/m), so flow-style
  // YAML and a quoted key were judged DNS configs while `sidecar --config` accepted them.
  it.each(['valid-sidecar-flow-style.yaml', 'valid-sidecar-quoted-key.yaml'])(
    'tells %s for a sidecar config by its parsed document, exit 0',
    async (name) => {
      const ran = await runBin(['check-config', join(FIXTURES, name)]);
      expect(ran.stderr).toBe('');
      expect(ran.code).toBe(0);
      expect(ran.stdout.trim()).toBe(`${join(FIXTURES, name)}: ok (sidecar config)`);
    },
  );

  // Regression: check-config passed it, then `dns` bound DNS and failed on http.listen with
  // "address already in use", as if another server held the port.
  it('refuses http.listen on the port of dns.listen, naming the clash', async () => {
    const file = configFile('clash.yaml', serving(15398, 15398));
    const line =
      'http.listen: 127.0.0.31:15398 clashes with dns.listen 127.0.0.31:15398 (the DNS server takes TCP on that port too); use another port';
    const checked = await runBin(['check-config', file]);
    expect(checked.code).toBe(1);
    expect(checked.stderr.trim()).toBe(line);
    const started = await runBin(['dns', '--config', file]);
    expect(started.code).toBe(2);
    expect(started.stderr.trim()).toBe(`egress-failover: ${line}`);
  });

  // Regression: "interval: 600h" passed, then Node warned TimeoutOverflowWarning and probed
  // every millisecond.
  it('refuses a duration beyond the maximum', async () => {
    const ran = await runBin(['check-config', join(FIXTURES, 'invalid-duration-too-long.yaml')]);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'probe.interval: "600h" is longer than the maximum of 24h',
      'services[0].pools[0].probe.timeout: "25h" is longer than the maximum of 24h',
    ]);
  });

  it('refuses bad admin blocks by their paths, exit 1', async () => {
    const file = configFile(
      'bad-admin.yaml',
      `probe: { targets: [http://a/] }
services:
  - name: proxy
    pools:
      - { name: primary, proxy: http://sq:3128, admin: { state: drained, reason: x } }
      - { name: secondary, proxy: http://sq:3128, admin: { state: drain, until: 2026-12-03 } }
      - { name: tertiary, proxy: http://sq:3128, admin: { state: up, reason: x, until: 2026-12-03T10:00:00 } }
`,
    );
    const ran = await runBin(['check-config', file]);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'services[0].pools[0].admin.state: "drained" is not one of drain, down, up',
      'services[0].pools[1].admin.reason: required',
      'services[0].pools[1].admin.until: "2026-12-03" is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)',
      'services[0].pools[2].admin.until: "2026-12-03T10:00:00" is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)',
    ]);
  });

  it('warns of a control whose until has passed, and still exits 0', async () => {
    const file = configFile(
      'expired-admin.yaml',
      `probe: { targets: [http://a/] }
services:
  - name: proxy
    pools:
      - { name: primary, proxy: http://sq:3128, admin: { state: down, reason: "OPS-1 squid 6", until: "2026-01-01T00:00:00+01:00" } }
      - { name: secondary, proxy: http://sq:3128, admin: { state: drain, reason: later, until: 2999-01-01T00:00:00Z } }
`,
    );
    const ran = await runBin(['check-config', file]);
    expect(ran.code).toBe(0);
    expect(ran.stdout.trim()).toBe(`${file}: ok (dns config)`);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'warning: services[0].pools[0].admin.until: 2025-12-31T23:00:00Z has passed; the down of pool primary ("OPS-1 squid 6") is ignored',
    ]);
  });

  it('a missing file: one line, exit 1', async () => {
    const ran = await runBin(['check-config', join(dir, 'absent.yaml')]);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim().split('\n')).toHaveLength(1);
    expect(ran.stderr).toContain('ENOENT');
  });
});

describe('status', () => {
  it('nothing listening: one line naming the URL and the cause, exit 2', async () => {
    const ran = await runBin(['status', '--url', 'http://127.0.0.31:1']);
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe('');
    expect(ran.stderr.trim().split('\n')).toEqual([
      'egress-failover: status: cannot read http://127.0.0.31:1/status: ECONNREFUSED (is the dns server running there? see --url)',
    ]);
  });

  it('a server that is not ours: one line, exit 2', async () => {
    const server = net.createServer((socket) =>
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n<html></html>'),
    );
    await new Promise<void>((done) => server.listen(0, '127.0.0.31', done));
    const { port } = server.address() as net.AddressInfo;
    try {
      const ran = await runBin(['status', '--url', `http://127.0.0.31:${port}`]);
      expect(ran.code).toBe(2);
      expect(ran.stderr.trim()).toBe(
        `egress-failover: status: http://127.0.0.31:${port}/status is not the /status of an egress-failover dns server`,
      );
    } finally {
      server.close();
    }
  });
});

describe('dns', () => {
  it('a bad config: one line per error, no stack trace, exit 2', async () => {
    const ran = await runBin(['dns', '--config', join(FIXTURES, 'invalid-several-errors.yaml')]);
    expect(ran.code).toBe(2);
    const lines = ran.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toContain('dns.ttl: expected a number');
    expect(ran.stderr).not.toMatch(/\n\s+at /);
  });

  // Regression: docs/ERRORS.md promised this line, and only the stderr lines were written.
  it('a bad config is also one JSON log line on stdout, with its code under err.code', async () => {
    const file = join(FIXTURES, 'invalid-several-errors.yaml');
    const ran = await runBin(['dns', '--config', file]);
    expect(ran.code).toBe(2);
    expect(jsonLines(ran.stdout)).toEqual([
      expect.objectContaining({
        level: 'fatal',
        component: 'main',
        msg: `${file}: invalid config (4 errors)`,
        err: expect.objectContaining({
          code: 'CONFIG_INVALID',
          details: ran.stderr
            .trim()
            .split('\n')
            .map((line) => line.replace('egress-failover: ', '')),
        }),
      }),
    ]);
    expect(ran.stdout).not.toContain('"stack"');
  });

  it('a sidecar config: one line that says so', async () => {
    const ran = await runBin(['dns', '--config', 'examples/sidecar.yaml']);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'egress-failover: (root): this is a sidecar config (top-level sidecar:), the dns server reads dns:, http:, probe: and services:',
    ]);
  });

  it('a port in use: one line naming the key and the address, exit 2', async () => {
    const blocker = net.createServer();
    await new Promise<void>((done) => blocker.listen(15391, '127.0.0.31', done));
    try {
      const ran = await runBin(['dns', '--config', configFile('busy.yaml', serving(15391, 15392))]);
      expect(ran.code).toBe(2);
      expect(ran.stderr.trim().split('\n')).toEqual([
        'egress-failover: dns.listen 127.0.0.31:15391: address already in use (another server is running?)',
      ]);
      expect(jsonLines(ran.stdout).find((line) => line.level === 'fatal')).toMatchObject({
        component: 'main',
        msg: 'dns.listen 127.0.0.31:15391: address already in use',
        err: { code: 'ADDRESS_IN_USE', cause: { code: 'EADDRINUSE' } },
      });
    } finally {
      blocker.close();
    }
  });

  it('serves DNS and HTTP, then stops on SIGTERM with exit 0 within 5 s', async () => {
    const server = start(['dns', '--config', configFile('ok.yaml', serving(15393, 15394))]);
    const at = { host: '127.0.0.31', port: 15393 };
    // No proxy listens: the first round fails, and onAllDown: all answers the pool anyway.
    const reply = await waitFor(
      async () => {
        const r = await dig(at, 'proxy.egress.svc', 'A');
        return r.status === 'NOERROR' ? r : undefined;
      },
      { what: `an answer from the dns command\n${server.output()}`, timeoutMs: 15_000 },
    );
    expect(reply.answer).toEqual(['proxy.egress.svc. 5 IN A 10.0.0.1']);
    const ready = await fetch('http://127.0.0.31:15394/readyz');
    expect(ready.status).toBe(200);
    const logLine = JSON.parse(server.output().split('\n')[0] as string);
    expect(logLine).toMatchObject({ level: expect.any(String), component: expect.any(String) });

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
  });

  it('SIGHUP does not kill the server', async () => {
    const server = start(['dns', '--config', configFile('hup.yaml', serving(15395, 15396))]);
    const at = { host: '127.0.0.31', port: 15395 };
    await waitFor(async () => (await dig(at, 'egress.svc', 'SOA')).status === 'NOERROR', {
      what: 'the dns command serving',
    });
    server.child.kill('SIGHUP');
    expect((await dig(at, 'egress.svc', 'SOA')).status).toBe('NOERROR');
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
  });
});

describe('sidecar', () => {
  it('a bad config: the exact line, no stack trace, exit 2', async () => {
    const ran = await runBin(['sidecar', '--config', join(FIXTURES, 'invalid-sidecar-liveness.yaml')]);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'egress-failover: sidecar.liveness: "deeep" is not one of deep, attributed, shallow',
    ]);
  });

  // Regression: the lines were only "sidecar: required" and an "unknown key" per DNS key.
  it('a dns config: the first line says so, exit 2', async () => {
    const ran = await runBin(['sidecar', '--config', 'examples/local.yaml']);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')[0]).toBe(
      'egress-failover: (root): this is a dns config (top-level dns:, http:, probe:, services:), the sidecar reads a sidecar: block',
    );
    expect(jsonLines(ran.stdout)[0]).toMatchObject({ level: 'fatal', err: { code: 'CONFIG_INVALID' } });
  });

  it('check-config tells a sidecar config by its top-level block', async () => {
    const ran = await runBin(['check-config', join(FIXTURES, 'invalid-sidecar-liveness.yaml')]);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim()).toBe('sidecar.liveness: "deeep" is not one of deep, attributed, shallow');
  });
});

describe('sidecar reload', () => {
  it('follows its config file and SIGHUP; refuses an invalid one and keeps serving', async () => {
    const sidecarConfig = (liveness: string) =>
      `sidecar:\n  listen: 127.0.0.31:15397\n  proxy: http://127.0.0.30:3128\n  targets: [http://127.0.0.30/]\n  interval: 1s\n  timeout: 200ms\n  liveness: ${liveness}\n`;
    const file = configFile('sidecar.yaml', sidecarConfig('deep'));
    const sidecar = start(['sidecar', '--config', file]);
    const mode = async () => {
      const res = await fetch('http://127.0.0.31:15397/health');
      return ((await res.json()) as { mode: string }).mode;
    };
    await waitFor(async () => (await mode()) === 'deep', {
      what: `the sidecar serving\n${sidecar.output()}`,
    });

    writeFileSync(file, sidecarConfig('shallow'));
    await waitFor(async () => (await mode()) === 'shallow', { what: 'the file change applied' });

    writeFileSync(file, 'sidecar:\n  liveness: shallow\n');
    await waitFor(() => sidecar.output().includes('config reload refused'), { what: 'the refusal logged' });
    expect(sidecar.output()).toContain('sidecar.targets: required');
    expect(await mode()).toBe('shallow');

    writeFileSync(file, sidecarConfig('attributed'));
    sidecar.child.kill('SIGHUP');
    await waitFor(async () => (await mode()) === 'attributed', { what: 'the SIGHUP reload applied' });
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exit).toBe(0);
  });
});

describe('probe', () => {
  it('a proxy that is not there: the verdict and the reason, exit 1', async () => {
    const ran = await runBin([
      'probe',
      '--proxy',
      'http://127.0.0.30:3128',
      '--target',
      'http://127.0.0.30/',
    ]);
    expect(ran.code).toBe(1);
    expect(ran.stdout).toMatch(/^unhealthy: connection_refused/);
  });

  it('credentials in the proxy URL never reach the output', async () => {
    const ran = await runBin([
      'probe',
      '--proxy',
      'http://alice:s3cret@127.0.0.30:3128',
      '--target',
      'http://127.0.0.30/',
      '--timeout',
      '500ms',
    ]);
    expect(ran.code).toBe(1);
    expect(ran.stdout + ran.stderr).not.toContain('s3cret');
  });

  it('a usage error: exit 2', async () => {
    const ran = await runBin(['probe', '--proxy', 'http://127.0.0.30:3128']);
    expect(ran.code).toBe(2);
  });

  // Regression: several --target made every one required (quorum = number of targets), unlike
  // the config's default quorum of 1.
  it('is healthy when one of several targets passes, and prints a line per target', async () => {
    const proxy = await squid();
    const ran = await runBin(['probe', '--proxy', proxy, '--target', PASSING, '--target', FAILING]);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const lines = ran.stdout.trim().split('\n');
    expect(lines[0]).toBe(`healthy: ok (proxy ${proxy})`);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}pass http:\/\/origin\.test\/ ok latency_ms=\d+$/),
      expect.stringMatching(/^ {2}fail http:\/\/origin\.test\/status\/500 status=500 latency_ms=\d+$/),
    ]);
  });

  it('--quorum asks for more passing targets', async () => {
    const proxy = await squid();
    const ran = await runBin([
      'probe',
      '--proxy',
      proxy,
      '--target',
      PASSING,
      '--target',
      FAILING,
      '--quorum',
      '2',
    ]);
    expect(ran.code).toBe(1);
    expect(ran.stdout.split('\n')[0]).toBe(
      `unhealthy: status=500 target=${FAILING} passed=1/2 quorum=2 (proxy ${proxy})`,
    );
  });
});

// Regression: `probe ... | true` died of an unhandled EPIPE with a 25-line stack trace and exit 1,
// whatever the verdict.
describe('a reader that goes away early', () => {
  it('probe keeps the verdict as its exit code, with no stack trace: unhealthy, 1', async () => {
    const ran = await runWithClosedPipe(
      ['probe', '--proxy', 'http://127.0.0.30:3128', '--target', 'http://127.0.0.30/'],
      'stdout',
    );
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(1);
  });

  it('probe keeps the verdict as its exit code, with no stack trace: healthy, 0', async () => {
    const ran = await runWithClosedPipe(['probe', '--proxy', await squid(), '--target', PASSING], 'stdout');
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
  });

  it.each([
    [['--help'], 'stdout', 0],
    [['probe', '--help'], 'stdout', 0],
    [['check-config', 'examples/local.yaml'], 'stdout', 0],
    [['check-config', 'test/fixtures/config/invalid-several-errors.yaml'], 'stderr', 1],
    [['dnss'], 'stderr', 2],
    [['dns', '--config', 'test/fixtures/config/invalid-several-errors.yaml'], 'stdout', 2],
  ] as const)('%j with its %s closed exits %i, quietly', async (args, closed, code) => {
    const ran = await runWithClosedPipe([...args], closed);
    expect(ran.code).toBe(code);
    expect(ran.stdout + ran.stderr).not.toMatch(/EPIPE|\n\s+at /);
  });
});
