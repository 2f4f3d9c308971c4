// The servers an operator would otherwise pick, each started on loopback to serve the benchmark's
// name, in its own process group and ended by its id:
//   ceiling   node:dgram answering from one precomputed buffer (bench/servers/ceiling.mjs)
//   dns2      a plain dns2 3.1.1 server (bench/servers/dns2-plain.mjs)
//   gdnsd     3.8 (apt): a plain A record, and a DYNA record through simplefo + http_status
//   pdns      PowerDNS Authoritative 4.7 (apt), bind backend: a plain A record, and a LUA ifurlup record
// The C servers get one UDP thread each, so every server here answers on one core, as ours does.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digShort } from '../../test/helpers/dig.js';
import { endGroup, type GroupProcess, spawnGroup } from '../../test/helpers/process.js';
import { GiveUp, waitFor } from '../../test/helpers/wait.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVERS = resolve(HERE, '../servers');

export interface Peer {
  readonly name: string;
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP right now (the C servers take a port number, not 0). */
export async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, host, ok);
  });
  const address = server.address();
  await new Promise((ok) => server.close(ok));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

function peer(name: string, proc: GroupProcess, host: string, port: number, dir?: string): Peer {
  return {
    name,
    pid: proc.pid,
    host,
    port,
    async stop() {
      await endGroup(proc, 'SIGTERM', 3_000);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function startNode(name: string, script: string, host: string): Promise<Peer> {
  const proc = spawnGroup(process.execPath, [join(SERVERS, script), host]);
  const line = await waitFor(
    () => {
      if (!proc.running()) throw new GiveUp(`${name} exited:\n${proc.output()}`);
      return /\{"listening":.*\}/.exec(proc.output())?.[0];
    },
    { timeoutMs: 10_000, what: `${name} to listen` },
  );
  const { port } = (JSON.parse(line) as { listening: { port: number } }).listening;
  return peer(name, proc, host, port);
}

export const startCeiling = (host: string) => startNode('ceiling', 'ceiling.mjs', host);
export const startDns2 = (host: string) => startNode('dns2', 'dns2-plain.mjs', host);

export interface HealthChecked {
  /** The squids whose addresses are the answers: first healthy wins. */
  readonly squids: readonly { readonly host: string; readonly port: number }[];
  /** The origin the deep check fetches through a squid: http://origin.test:PORT/. */
  readonly targetUrl: string;
}

const ZONE_SOA = '@ IN SOA ns1.egress.svc. hostmaster.egress.svc. 1 7200 1800 259200 5';

/**
 * gdnsd: `plain` is a static A; `proxy` is DYNA simplefo (primary, secondary) with an http_status
 * check whose url_path is the absolute URL of the origin, so the GET goes *through* each Squid
 * to the origin: the same deep check as ours, done by gdnsd's monitor (interval 2 s, its minimum).
 */
export async function startGdnsd(host: string, health: HealthChecked): Promise<Peer> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-bench-gdnsd-'));
  const port = await freePort(host);
  const [primary, secondary] = health.squids;
  if (!primary || !secondary) throw new Error('gdnsd simplefo needs two squids');
  const vhost = new URL(health.targetUrl).host;
  await writeFile(
    join(dir, 'config'),
    `options => {
  listen => [ ${host}:${port} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => ${join(dir, 'run')}
  state_dir => ${join(dir, 'state')}
}
service_types => {
  squid_deep => {
    plugin => http_status
    port => ${primary.port}
    url_path => "${health.targetUrl}"
    vhost => "${vhost}"
    ok_codes => [ 200 ]
    interval => 2
    timeout => 1
  }
}
plugins => {
  simplefo => {
    egress => {
      service_types => [ squid_deep ]
      primary => ${primary.host}
      secondary => ${secondary.host}
    }
  }
}
`,
  );
  await mkdir(join(dir, 'zones'));
  await writeFile(
    join(dir, 'zones', 'egress.svc'),
    [
      '$TTL 5',
      ZONE_SOA,
      '@ IN NS ns1',
      'ns1 IN A 127.0.0.1',
      'plain IN A 10.0.0.1',
      'proxy DYNA simplefo!egress',
      '',
    ].join('\n'),
  );
  const proc = spawnGroup('gdnsd', ['-c', dir, 'start']);
  const server = { host, port };
  try {
    await waitFor(
      async () => {
        if (!proc.running()) throw new GiveUp(`gdnsd exited:\n${proc.output()}`);
        return (await digShort(server, 'proxy.egress.svc', 'A', '+norec'))[0] === primary.host;
      },
      { timeoutMs: 15_000, what: 'gdnsd to answer the primary squid' },
    );
  } catch (err) {
    await endGroup(proc, 'SIGKILL');
    throw err;
  }
  return peer('gdnsd', proc, host, port, dir);
}

/**
 * PowerDNS Authoritative, bind backend (needs no database, works offline), LUA records on.
 * `proxy` is `ifurlup(url, {{primary}, {secondary}})`: pdns fetches the URL from each candidate
 * address and answers the first set that is up. ifurlup cannot send its check through a proxy
 * (it connects to the candidate address itself, with a path relative to it), so its URL is a
 * Squid-internal static icon on each Squid: a check that Squid answers HTTP, not that it has egress.
 * The packet cache stays on (the default): operators run it so, and it caches LUA answers.
 */
export async function startPdns(host: string, health: HealthChecked): Promise<Peer> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-bench-pdns-'));
  const port = await freePort(host);
  const [primary, secondary] = health.squids;
  if (!primary || !secondary) throw new Error('pdns ifurlup needs two squids');
  const checkUrl = `http://squid.test:${primary.port}/squid-internal-static/icons/SN.png`;
  await writeFile(
    join(dir, 'named.conf'),
    `zone "egress.svc" { type master; file "${join(dir, 'egress.svc.zone')}"; };\n`,
  );
  await writeFile(
    join(dir, 'egress.svc.zone'),
    [
      '$TTL 5',
      ZONE_SOA,
      '@ IN NS ns1.egress.svc.',
      'ns1 IN A 127.0.0.1',
      'plain IN A 10.0.0.1',
      `proxy IN LUA A "ifurlup('${checkUrl}', {{'${primary.host}'}, {'${secondary.host}'}})"`,
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'pdns.conf'),
    [
      'launch=bind',
      `bind-config=${join(dir, 'named.conf')}`,
      `local-address=${host}`,
      `local-port=${port}`,
      `socket-dir=${dir}`,
      'daemon=no',
      'guardian=no',
      'disable-syslog=yes',
      'enable-lua-records=yes',
      // No security-status query to the internet.
      'security-poll-suffix=',
      'receiver-threads=1',
      'distributor-threads=1',
      'loglevel=4',
      '',
    ].join('\n'),
  );
  const proc = spawnGroup('pdns_server', [`--config-dir=${dir}`]);
  const server = { host, port };
  try {
    // ifurlup starts checking on the first query; until a check is done every address is answered.
    await waitFor(
      async () => {
        if (!proc.running()) throw new GiveUp(`pdns_server exited:\n${proc.output()}`);
        const answer = await digShort(server, 'proxy.egress.svc', 'A', '+norec');
        return answer.length === 1 && answer[0] === primary.host;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'pdns ifurlup to answer the primary squid alone' },
    );
  } catch (err) {
    await endGroup(proc, 'SIGKILL');
    throw err;
  }
  return peer('pdns', proc, host, port, dir);
}
