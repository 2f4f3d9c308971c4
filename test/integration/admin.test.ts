// Operator controls end to end: the real `dns` binary probing two real Squids, its config edited
// and reloaded as an operator would (file + SIGHUP), asked by real dig and `egress-failover status`.
// drain, down and up per pool, `until` ending a control by itself, an expired control at start,
// and none of it ever counted as a health transition.
// Addresses: origin 127.0.0.10:80 (origin.test), squids 127.0.0.41 (primary), 127.0.0.42 (secondary).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dig, digAnswer } from '../helpers/dig.js';
import { BINARY, type DnsProcess, type LogLine, startDnsServer } from '../helpers/dns-process.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

const PRIMARY = '10.0.0.1';
const SECONDARY = '10.0.0.2';
/** What an admin-only reload may take to move the answer: the reload applies the view at once. */
const RELOAD_BOUND_MS = 1_000;
const FLIP_BOUND_MS = 10_000;
const EXPIRED = '2026-01-01T00:00:00Z';

type Admin = { state: string; reason: string; until?: string };
type Controls = { primary?: Admin; secondary?: Admin; a?: Admin };
/** The parts of a pool in /status this file reads beyond the helper's StatusJson. */
interface AdminPool {
  readonly state: string;
  readonly since: string;
  readonly transitions: number;
  readonly admin: { state: string; reason: string; until: string | null } | null;
  readonly history: readonly { kind: string; from: string; to: string; reason: string; at: string }[];
}

function config(controls: Controls = {}) {
  const pool = (name: string, host: string, address: string, admin?: Admin) => ({
    name,
    proxy: `http://${host}:3128`,
    address,
    ...(admin ? { admin } : {}),
  });
  return {
    dns: { listen: '127.0.0.1:0', ttl: 1 },
    http: { listen: '127.0.0.1:0' },
    probe: {
      targets: ['http://origin.test/'],
      interval: '500ms',
      timeout: '400ms',
      fall: 2,
      rise: 2,
      fastInterval: '200ms',
    },
    services: [
      {
        name: 'proxy',
        onAllDown: 'servfail',
        pools: [
          pool('primary', '127.0.0.41', PRIMARY, controls.primary),
          pool('secondary', '127.0.0.42', SECONDARY, controls.secondary),
        ],
      },
      {
        name: 'all',
        onAllDown: 'all',
        pools: [pool('a', '127.0.0.41', '10.2.0.1', controls.a), pool('b', '127.0.0.42', '10.2.0.2')],
      },
    ],
  };
}

let origin: Origin;
let fleet: SquidFleet | undefined;
let primary: Squid;
let secondary: Squid;
let server: DnsProcess | undefined;

const running = (): DnsProcess => {
  if (!server) throw new Error('the dns server did not start');
  return server;
};

/** "SERVFAIL", or the A records sorted and joined by commas. */
function answer(service: string): Promise<string> {
  return digAnswer(running().dnsAddress, `${service}.egress.svc`, '+norec');
}

async function waitForAnswer(service: string, expected: string, what: string, timeoutMs = FLIP_BOUND_MS) {
  const started = Date.now();
  await waitFor(async () => (await answer(service)) === expected, {
    timeoutMs,
    intervalMs: 25,
    what: `${service}.egress.svc to answer ${expected} (${what})`,
  });
  return Date.now() - started;
}

/** The _status string of one pool (resolvers may reorder: read by pool=). */
async function statusLine(service: string, pool: string): Promise<string> {
  const reply = await dig(running().dnsAddress, `_status.${service}.egress.svc`, 'TXT', '+norec');
  const line = reply.answer.find((each) => each.includes(`pool=${pool} `)) ?? '';
  return line.slice(line.indexOf(' TXT ') + ' TXT '.length);
}

/**
 * Writes the config and sends SIGHUP (or, with `signal: false`, leaves the server to notice the file
 * as it does the kubelet's swap); resolves once the reload is logged, with when the file was written.
 */
async function reload(controls: Controls, { signal = true } = {}): Promise<number> {
  const before = reloads().length;
  await writeFile(running().configPath, `${JSON.stringify(config(controls), null, 2)}\n`);
  const written = Date.now();
  if (signal) process.kill(running().pid, 'SIGHUP');
  await waitFor(() => reloads().length > before, { what: 'the reload logged' });
  return written;
}

const reloads = () =>
  running()
    .logs()
    .filter((l) => l.msg === 'config reloaded');
const logsOf = (msg: string, pool?: string): LogLine[] =>
  running()
    .logs()
    .filter((l) => l.msg === msg && (pool === undefined || l.pool === pool));

async function metric(pattern: RegExp): Promise<string[]> {
  return (await running().get('/metrics')).body.split('\n').filter((line) => pattern.test(line));
}

async function statusCommand(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { host, port } = running().httpAddress;
  try {
    const { stdout, stderr } = await run(process.execPath, [
      BINARY,
      'status',
      '--url',
      `http://${host}:${port}`,
      ...args,
    ]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** Every squid direct, no control in force, every pool healthy, the primary answered. */
async function steady(): Promise<void> {
  for (const squid of [primary, secondary]) {
    if (!squid.pid) await squid.start();
    if (squid.mode !== 'direct') await squid.restoreEgress();
  }
  if (
    (await running().status()).services.some((s) => s.pools.some((p) => (p as { admin?: unknown }).admin))
  ) {
    await reload({});
  }
  await waitFor(
    async () => (await running().status()).services.every((s) => s.pools.every((p) => p.state === 'healthy')),
    { timeoutMs: FLIP_BOUND_MS, what: 'every pool healthy' },
  );
  await waitForAnswer('proxy', PRIMARY, 'steady state');
}

beforeAll(async () => {
  origin = await startOrigin();
  fleet = await startSquids(
    [
      { label: 'admin-primary', host: '127.0.0.41' },
      { label: 'admin-secondary', host: '127.0.0.42' },
    ],
    { probeUrl: 'http://origin.test/' },
  );
  [primary, secondary] = fleet.squids as [Squid, Squid];
  // Last winter's drain, left in the ConfigMap: it must be ignored, with one warning.
  server = await startDnsServer(
    config({ primary: { state: 'drain', reason: 'old upgrade', until: EXPIRED } }),
  );
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  await fleet?.stopAll();
  await origin?.close();
}, 30_000);

describe('an expired control at start', () => {
  it('is ignored with one warning naming its path, and the pool is answered', async () => {
    await waitForAnswer('proxy', PRIMARY, 'the expired drain ignored');
    const warnings = running()
      .logs()
      .filter((l) => l.level === 'warn' && String(l.msg).includes('admin.until'));
    expect(warnings.map((l) => l.msg)).toEqual([
      `services[0].pools[0].admin.until: ${EXPIRED} has passed; the drain of pool primary ("old upgrade") is ignored`,
    ]);
    expect(logsOf('admin control started')).toEqual([]);
    expect(await statusLine('proxy', 'primary')).not.toContain('admin=');
  });
});

describe('operator controls', () => {
  beforeEach(steady, 60_000);

  it('drain moves the answer within 1 s of the reload, shows in _status, /status and metrics, and is no transition', async () => {
    const before = (await running().status()).services[0]?.pools[0];
    const transitions = running().transitions().length;
    const sent = await reload({
      primary: { state: 'drain', reason: 'node pool upgrade', until: '2099-12-03T10:00:00Z' },
    });
    await waitForAnswer('proxy', SECONDARY, 'primary drained', RELOAD_BOUND_MS);
    expect(Date.now() - sent).toBeLessThan(RELOAD_BOUND_MS + 500);

    expect(await statusLine('proxy', 'primary')).toMatch(
      /^"pool=primary state=healthy selected=no since=\S+ reason=ok admin=drain reason=\\"node pool upgrade\\" until=2099-12-03T10:00:00Z"$/,
    );
    const after = (await running().status()).services[0]?.pools[0] as unknown as AdminPool;
    // Health untouched: same state, same since, same count; the control beside it.
    expect(after.state).toBe('healthy');
    expect(after.since).toBe((before as unknown as AdminPool).since);
    expect(after.transitions).toBe(before?.transitions);
    expect(after.admin).toEqual({
      state: 'drain',
      reason: 'node pool upgrade',
      until: '2099-12-03T10:00:00.000Z',
    });
    expect(after.history.at(-1)).toMatchObject({
      kind: 'admin',
      from: 'none',
      to: 'drain',
      reason: 'node pool upgrade',
    });
    expect(running().transitions().length).toBe(transitions);
    expect(await metric(/^egress_pool_admin\{service="proxy",pool="primary"/)).toEqual([
      'egress_pool_admin{service="proxy",pool="primary",state="none"} 0',
      'egress_pool_admin{service="proxy",pool="primary",state="drain"} 1',
      'egress_pool_admin{service="proxy",pool="primary",state="down"} 0',
      'egress_pool_admin{service="proxy",pool="primary",state="up"} 0',
    ]);
    expect(logsOf('admin control started', 'primary').at(-1)).toMatchObject({
      service: 'proxy',
      admin: 'drain',
      reason: 'node pool upgrade',
    });

    // What an operator reads at 3 a.m.
    const status = await statusCommand();
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`proxy: answering secondary (${SECONDARY})`);
    expect(status.stdout).toMatch(/primary\s+healthy\s+drain\s+no\s/);
    expect(status.stdout).toContain('admin drain: "node pool upgrade" until 2099-12-03T10:00:00Z');
    expect(status.stdout).toMatch(/primary\s+admin none -> drain\s+node pool upgrade/);
    const json = await statusCommand('--json');
    expect(JSON.parse(json.stdout).services[0].pools[0].admin.state).toBe('drain');

    // Taken out of the config: back at once, one "ended" line.
    await reload({});
    await waitForAnswer('proxy', PRIMARY, 'drain removed', RELOAD_BOUND_MS);
    expect(logsOf('admin control ended', 'primary').at(-1)).toMatchObject({
      ended: 'removed from the config',
    });
    expect(running().transitions().length).toBe(transitions);
  });

  it('a drained pool is answered when the other pool dies, and left again when it is back', async () => {
    await reload({ primary: { state: 'drain', reason: 'node pool upgrade' } });
    await waitForAnswer('proxy', SECONDARY, 'primary drained');
    await secondary.kill();
    await waitForAnswer('proxy', PRIMARY, 'the drained primary as the last resort');
    expect(await statusLine('proxy', 'primary')).toMatch(/selected=yes .*admin=drain/);
    await secondary.start();
    await waitForAnswer('proxy', SECONDARY, 'secondary back, primary still drained');
  });

  it('until ends the drain by itself, with no reload', async () => {
    const until = new Date(Date.now() + 4_000);
    until.setMilliseconds(0);
    await reload({ primary: { state: 'drain', reason: 'short test', until: until.toISOString() } });
    await waitForAnswer('proxy', SECONDARY, 'primary drained until a moment from now');
    const reloadCount = reloads().length;
    await waitForAnswer('proxy', PRIMARY, 'the drain over at its until');
    // Not before its time, and not by a reload.
    expect(Date.now()).toBeGreaterThanOrEqual(until.getTime());
    expect(reloads().length).toBe(reloadCount);
    const ended = logsOf('admin control ended', 'primary').at(-1);
    expect(ended?.ended).toBe(`until ${until.toISOString().slice(0, 19)}Z passed`);
    expect(Date.parse(String(ended?.time))).toBeLessThan(until.getTime() + 1_000);
    expect(await statusLine('proxy', 'primary')).not.toContain('admin=');
  });

  it('down is never answered, not even when every other pool is down', async () => {
    // No SIGHUP: the file's change alone, noticed within the 1 s poll, as after the kubelet's swap.
    const written = await reload(
      {
        primary: { state: 'down', reason: 'decommissioning' },
        a: { state: 'down', reason: 'decommissioning' },
      },
      { signal: false },
    );
    await waitForAnswer('proxy', SECONDARY, 'primary down');
    expect(Date.now() - written).toBeLessThan(1_000 + RELOAD_BOUND_MS);
    expect(reloads().at(-1)?.trigger).toBe('file');
    await waitForAnswer('all', '10.2.0.2', 'a down');
    const transitions = running()
      .transitions('proxy')
      .filter((t) => t.pool === 'primary').length;

    await secondary.kill();
    // proxy: onAllDown servfail, and the healthy primary is not a fallback; all: only b's address.
    await waitForAnswer('proxy', 'SERVFAIL', 'secondary dead, primary down');
    await waitForAnswer('all', '10.2.0.2', 'every pool down: the down one still left out');
    expect((await running().status()).services[0]?.pools[0]?.state).toBe('healthy');
    expect(await statusLine('all', 'a')).toMatch(/selected=no .*admin=down reason=decommissioning"$/);
    expect(
      running()
        .transitions('proxy')
        .filter((t) => t.pool === 'primary').length,
    ).toBe(transitions);

    const status = await statusCommand();
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('proxy: SERVFAIL, every pool down');
  });

  it('up is answered while its probes fail, the real verdict shown beside it', async () => {
    await primary.cutEgress();
    await waitForAnswer('proxy', SECONDARY, 'primary without egress');
    await reload({ primary: { state: 'up', reason: 'pinned: probes target is wrong' } });
    await waitForAnswer('proxy', PRIMARY, 'primary pinned up', RELOAD_BOUND_MS);
    const pool = (await running().status()).services[0]?.pools[0];
    expect(pool?.state).toBe('unhealthy');
    expect(pool?.lastRound?.reason).toContain('ERR_CONNECT_FAIL');
    expect(await statusLine('proxy', 'primary')).toMatch(
      /^"pool=primary state=unhealthy selected=yes .*admin=up reason=\\"pinned: probes target is wrong\\""$/,
    );
  });

  it('a reload with a bad admin block is refused by path, and the control in force stays', async () => {
    await reload({ primary: { state: 'drain', reason: 'node pool upgrade' } });
    await waitForAnswer('proxy', SECONDARY, 'primary drained');
    const refused = running()
      .logs()
      .filter((l) => l.msg.startsWith('config reload refused')).length;
    await writeFile(
      running().configPath,
      JSON.stringify(config({ primary: { state: 'drained', reason: 'x', until: 'tomorrow' } })),
    );
    process.kill(running().pid, 'SIGHUP');
    await waitFor(
      () =>
        running()
          .logs()
          .filter((l) => l.msg.startsWith('config reload refused')).length > refused,
      {
        what: 'the refusal logged',
      },
    );
    expect(
      running()
        .logs()
        .filter((l) => l.msg.startsWith('config reload refused'))
        .at(-1)?.errors,
    ).toEqual([
      'services[0].pools[0].admin.state: "drained" is not one of drain, down, up',
      'services[0].pools[0].admin.until: "tomorrow" is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)',
    ]);
    expect(await answer('proxy')).toBe(SECONDARY);
  });
});
