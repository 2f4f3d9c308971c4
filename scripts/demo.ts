// The local tour: `npm run demo`. On loopback, an origin standing in for the outside, two real
// Squids (the primary and secondary pools) and the real DNS server from dist/; shows what dig
// answers and why (`_status` TXT), breaks the primary twice (no egress, then killed), shows the
// flip with the time it took and the failback, and cleans up everything, also on Ctrl-C or an
// error. Bounded: a deadline ends it well within a minute.
//
//   npm run demo          (tsc -p tsconfig.build.json && node --import ./bench/register.js scripts/demo.ts)
//
// Needs root (the origin binds port 80; Squid started as root drops to `proxy`, whose folders the
// helpers chown), apt squid and dig. Addresses: origin 127.0.0.60:80 (origin.test in the squids'
// hosts_file), squids 127.0.0.61 and 127.0.0.62 on :3128, the DNS server on 127.0.0.1 at free
// ports. It reuses the test helpers: the same Squid faults the integration tests inject.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { digRaw, digShort } from '../test/helpers/dig.js';
import { type DnsProcess, startDnsServer } from '../test/helpers/dns-process.js';
import { type Origin, startOrigin } from '../test/helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../test/helpers/squid.js';
import { waitFor } from '../test/helpers/wait.js';

const run = promisify(execFile);

const ORIGIN = '127.0.0.60';
const PRIMARY = '127.0.0.61';
const SECONDARY = '127.0.0.62';
const TARGET = 'http://origin.test/';
/** The whole tour, start-up included; usually about 20 s. */
const DEADLINE_MS = 55_000;
const PROBE = { interval: '1s', timeout: '500ms', fastInterval: '200ms', fall: 2, rise: 2 } as const;

let origin: Origin | undefined;
let fleet: SquidFleet | undefined;
let server: DnsProcess | undefined;
let cleaning: Promise<void> | undefined;

const started = Date.now();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (line = '') => process.stdout.write(`${line}\n`);
const step = (title: string) => say(`\n== ${title} ${'='.repeat(Math.max(3, 76 - title.length))}`);

/** Ends every process the tour started, once, whatever state it is in. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await server?.dispose();
    await fleet?.stopAll();
    await origin?.close();
  })();
  return cleaning;
}

async function installed(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args);
    return true;
  } catch {
    return false;
  }
}

async function preflight(): Promise<void> {
  const [squid, dig] = await Promise.all([installed('squid', ['-v']), installed('dig', ['-v'])]);
  if (!squid || !dig) {
    const missing = [squid ? undefined : 'squid', dig ? undefined : 'dig'].filter(Boolean).join(' and ');
    process.stderr.write(
      `demo: ${missing} not found. On Debian/Ubuntu, install with this and run it again:\n` +
        '  apt-get install -y squid bind9-dnsutils\n',
    );
    process.exit(1);
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'demo: run it as root (sudo npm run demo): the origin listens on port 80, and Squid started as\n' +
        'root switches to the `proxy` user, which must own its folders.\n',
    );
    process.exit(1);
  }
}

function dns(): DnsProcess {
  if (!server) throw new Error('the dns server is not running');
  return server;
}

/** Runs dig with `args` and prints the command and its real output lines. */
async function showDig(...args: string[]): Promise<void> {
  const { host, port } = dns().dnsAddress;
  say(`$ dig @${host} -p ${port} ${args.join(' ')}`);
  const output = await digRaw(dns().dnsAddress, args);
  for (const line of output.split('\n').filter((l) => l.trim() !== '')) say(`  ${line}`);
}

const answer = async () => (await digShort(dns().dnsAddress, 'proxy.egress.svc', 'A')).join(',');

/** A GET through a squid, as a client given that answer would send it. */
async function fetchThrough(address: string): Promise<void> {
  const squid = fleet?.squids.find((s) => s.host === address);
  if (!squid) {
    say(`  (no squid at ${address})`);
    return;
  }
  try {
    const reply = await squid.get(TARGET);
    const error = reply.squidError ? ` X-Squid-Error: ${reply.squidError}` : '';
    say(`  GET ${TARGET} via ${address}:3128 -> ${reply.status}${error}`);
  } catch (err) {
    say(`  GET ${TARGET} via ${address}:3128 -> ${(err as Error).message}`);
  }
}

/** Polls dig until the answer is `expected`; prints how long it took since `since`. */
async function watchFlip(expected: string, since: number, what: string): Promise<void> {
  const before = await answer();
  say(`  dig answers ${before || '(nothing)'}; asking every 100 ms until it answers ${expected} ...`);
  await waitFor(async () => (await answer()) === expected, {
    timeoutMs: 15_000,
    intervalMs: 100,
    what: `dig to answer ${expected}`,
  });
  say(`  -> ${what}: dig answers ${expected} after ${seconds(Date.now() - since)}`);
}

/** The "pool state changed" log lines of the server since index `from`, one line each. */
function showTransitions(from: number): number {
  const lines = dns().transitions('proxy');
  for (const t of lines.slice(from)) {
    say(`  log: pool ${t.pool} ${t.from} -> ${t.to} (${t.reason})`);
  }
  return lines.length;
}

async function tour(): Promise<void> {
  step('1. Start an origin, two Squids and the DNS server (all on loopback)');
  origin = await startOrigin({ host: ORIGIN, port: 80 });
  say(
    `  origin      http://origin.test/ -> ${ORIGIN}:80 (the "outside"; origin.test via Squid's hosts_file)`,
  );
  fleet = await startSquids(
    [
      { label: 'demoprimary', host: PRIMARY, hosts: { 'origin.test': ORIGIN } },
      { label: 'demosecondary', host: SECONDARY, hosts: { 'origin.test': ORIGIN } },
    ],
    { probeUrl: TARGET },
  );
  say(`  squids      primary ${PRIMARY}:3128, secondary ${SECONDARY}:3128 (squid -N, memory only)`);
  server = await startDnsServer({
    dns: { zone: 'egress.svc', ttl: 5 },
    probe: { targets: [TARGET], ...PROBE },
    services: [
      {
        name: 'proxy',
        pools: [
          // `address` is the squid's own address: the DNS answer is the proxy a client uses.
          { name: 'primary', proxy: `http://${PRIMARY}:3128`, address: PRIMARY },
          { name: 'secondary', proxy: `http://${SECONDARY}:3128`, address: SECONDARY },
        ],
      },
    ],
  });
  const { dnsAddress, httpAddress } = dns();
  say(
    `  dns server  DNS ${dnsAddress.host}:${dnsAddress.port}, HTTP ${httpAddress.host}:${httpAddress.port}`,
  );
  say(
    `  probes      GET ${TARGET} through each squid every ${PROBE.interval}, timeout ${PROBE.timeout}, ` +
      `fall ${PROBE.fall}, rise ${PROBE.rise}, fastInterval ${PROBE.fastInterval}`,
  );
  await waitFor(async () => (await answer()) === PRIMARY, {
    timeoutMs: 10_000,
    what: 'the first answer (both pools probed)',
  });

  step('2. Ask it: the primary is healthy, so it is the answer');
  await showDig('+short', 'proxy.egress.svc');
  await showDig('+short', '_status.proxy.egress.svc', 'TXT');
  await fetchThrough(PRIMARY);
  let seen = showTransitions(0);

  const primary = fleet.squids[0] as Squid;

  step('3. Break the primary: alive, but no egress (Squid answers 503 ERR_CONNECT_FAIL)');
  const cutAt = Date.now();
  await primary.cutEgress();
  say(`  squid -k reconfigure onto an unusable outgoing address (took ${seconds(Date.now() - cutAt)})`);
  await fetchThrough(PRIMARY);
  await watchFlip(SECONDARY, cutAt, 'failover');
  await showDig('+short', '_status.proxy.egress.svc', 'TXT');
  seen = showTransitions(seen);

  step('4. Repair it: failback once the primary passes `rise` rounds again');
  const restoredAt = Date.now();
  await primary.restoreEgress();
  await watchFlip(PRIMARY, restoredAt, 'failback');
  seen = showTransitions(seen);

  step('5. Break it harder: SIGKILL the primary Squid');
  const killedAt = Date.now();
  await primary.kill();
  await fetchThrough(PRIMARY);
  await watchFlip(SECONDARY, killedAt, 'failover');
  await showDig('+short', 'proxy.egress.svc');
  await showDig('+short', '_status.proxy.egress.svc', 'TXT');
  await fetchThrough(SECONDARY);
  seen = showTransitions(seen);

  step('6. Start it again: failback');
  const restartedAt = Date.now();
  await primary.start();
  say(`  squid started (took ${seconds(Date.now() - restartedAt)})`);
  await watchFlip(PRIMARY, restartedAt, 'failback');
  await showDig('+short', '_status.proxy.egress.svc', 'TXT');
  showTransitions(seen);
}

async function main(): Promise<number> {
  await preflight();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\ndemo: ${signal}, cleaning up ...\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const deadline = setTimeout(() => {
    process.stderr.write(`\ndemo: still running after ${seconds(DEADLINE_MS)}, giving up; cleaning up ...\n`);
    void cleanup().finally(() => process.exit(1));
  }, DEADLINE_MS);
  try {
    await tour();
    step('7. Clean up');
    await cleanup();
    say('  origin, squids and dns server stopped; temp folders removed');
    say(
      `\nDone in ${seconds(Date.now() - started)}. Next: README.md, docs/kubernetes.md, coredns/README.md.`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`\ndemo: ${(err as Error).message}\n`);
    if (server) process.stderr.write(`\nlast lines of the dns server:\n${server.output().slice(-2_000)}\n`);
    process.stderr.write(
      'Another Squid on *:3128 (a system one: systemctl stop squid) or a test run using the same\n' +
        'addresses can stop it from starting.\n',
    );
    await cleanup();
    return 1;
  } finally {
    clearTimeout(deadline);
  }
}

process.exitCode = await main();
