// A real recursive resolver in front of the real `dns` binary, as the cluster's CoreDNS is in
// production: Unbound (apt unbound) with a stub zone pointing at our server. CoreDNS cannot be
// installed here; Unbound's stub-zone is the same arrangement (forward the zone, cache by TTL, RD=1
// from clients). Differences that matter for timing: Unbound honours the answer's TTL as it is
// (cache-min-ttl 0), where CoreDNS's cache keeps every answer at least 5 s (coredns/README.md).
//
//   const unbound = await startUnbound({ stub: server.dnsAddress });
//   dig @127.0.0.1 -p ${unbound.address.port} proxy.egress.svc
//   afterAll(() => unbound.stop());
//
// Start it once our server answers: Unbound would otherwise cache the SERVFAIL of the pending phase.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitForPort } from './net.js';
import { endGroup, type GroupProcess, spawnGroup } from './process.js';
import { GiveUp, waitFor } from './wait.js';

const run = promisify(execFile);

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface UnboundOptions {
  /** Where the zone is forwarded: our DNS server. */
  readonly stub: Address;
  /** The stub zone; default egress.svc. */
  readonly zone?: string;
  /** Start-up deadline; default 10 s. */
  readonly startTimeoutMs?: number;
}

export interface Unbound {
  /** Where clients ask: 127.0.0.1 and a port free at start. */
  readonly address: Address;
  readonly proc: GroupProcess;
  readonly dir: string;
  /** For afterAll: ends the process and removes its temp dir. Never throws. */
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 right now (Unbound needs a fixed one). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const address = tcp.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const udp = createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    await new Promise((resolve) => tcp.close(resolve));
    if (udpFree) return port;
  }
  throw new Error('no free port for Unbound');
}

/** A stub zone to our server, nothing else resolved, quiet and self-contained in a temp dir. */
export function unboundConfig(dir: string, port: number, stub: Address, zone = 'egress.svc'): string {
  return `server:
  interface: 127.0.0.1
  port: ${port}
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  domain-insecure: "${zone}"
  # Nothing leaves the machine; the stub zone is carved out of the refusal (a local-zone "."
  # alone also refuses ${zone}, since local zones are consulted before stub zones).
  local-zone: "." refuse
  local-zone: "${zone}." transparent
  do-ip6: no
  num-threads: 1
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${join(dir, 'unbound.pid')}"
  use-syslog: no
  logfile: ""
  verbosity: 1

remote-control:
  control-enable: no

stub-zone:
  name: "${zone}"
  stub-addr: ${stub.host}@${stub.port}
`;
}

/** Writes the config, checks it with unbound-checkconf, starts `unbound -d` and waits for its port. */
export async function startUnbound(options: UnboundOptions): Promise<Unbound> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-unbound-'));
  let proc: GroupProcess | undefined;
  const stop = async () => {
    if (proc) await endGroup(proc, 'SIGTERM', 3_000).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const confPath = join(dir, 'unbound.conf');
    const address = { host: '127.0.0.1', port: await freePort() };
    await writeFile(confPath, unboundConfig(dir, address.port, options.stub, options.zone));
    await run('unbound-checkconf', [confPath]);
    const started = spawnGroup('unbound', ['-d', '-c', confPath]);
    proc = started;
    await waitFor(
      async () => {
        if (!started.running()) throw new GiveUp(`unbound exited: ${started.output()}`);
        await waitForPort(address.host, address.port, 'unbound', 200);
        return true;
      },
      {
        timeoutMs: options.startTimeoutMs ?? 10_000,
        what: `unbound listening on ${address.host}:${address.port}`,
      },
    );
    return { address, proc: started, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
