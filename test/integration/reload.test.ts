// Live reload as Kubernetes delivers it: a mounted ConfigMap is a symlink chain
// (config.yaml -> ..data/config.yaml, ..data -> ..2026_11_25...) and the kubelet swaps `..data`.
// The running server must follow it, refuse a bad config, keep unchanged pools' state, and never
// leave a query unanswered while it swaps.
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { type DnsConfigInput, type DnsProcess, startDnsServer } from '../helpers/dns-process.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type SquidFleet, startSquids } from '../helpers/squid.js';
import { startUdpStream } from '../helpers/udp-stream.js';
import { waitFor } from '../helpers/wait.js';

const SQUID = '127.0.0.17';
const ORIGIN = '127.0.0.18';
const probe = { targets: [`http://${ORIGIN}/`], interval: '500ms', timeout: '400ms', rise: 2, fall: 2 };

function config(extra: { secondService?: boolean; ttl?: number; listen?: string } = {}): DnsConfigInput {
  const services: unknown[] = [
    {
      name: 'proxy',
      onAllDown: 'servfail',
      pools: [
        { name: 'primary', proxy: `http://${SQUID}:3128`, address: '10.0.0.1' },
        { name: 'secondary', proxy: `http://${SQUID}:3128`, address: '10.0.0.2' },
      ],
    },
  ];
  if (extra.secondService) {
    services.push({
      name: 'other',
      pools: [{ name: 'only', proxy: `http://${SQUID}:3128`, address: '10.0.9.9' }],
    });
  }
  return {
    dns: { ttl: extra.ttl ?? 5, ...(extra.listen ? { listen: extra.listen } : {}) },
    probe,
    services,
  };
}

let squids: SquidFleet;
let origin: Origin;
let server: DnsProcess;
let generation = 0;

/** Writes a new timestamped folder and swaps `..data` to it atomically, as the kubelet does. */
async function kubeletSwap(text: string): Promise<void> {
  const root = dirname(server.configPath);
  const folder = `..2026_11_25_00_00_0${++generation}`;
  await mkdir(join(root, folder));
  await writeFile(join(root, folder, 'config.yaml'), text);
  await symlink(folder, join(root, '..data_tmp'));
  await rename(join(root, '..data_tmp'), join(root, '..data'));
}

/** The file as the server was started on (port 0): a reload must not move its listen addresses. */
function asFile(input: DnsConfigInput): string {
  const full = {
    ...input,
    dns: { listen: '127.0.0.1:0', ...input.dns },
    http: { listen: '127.0.0.1:0' },
  };
  return `${JSON.stringify(full, null, 2)}\n`;
}

beforeAll(async () => {
  origin = await startOrigin({ host: ORIGIN, port: 80 });
  squids = await startSquids([{ label: 'reload', host: SQUID }]);
  server = await startDnsServer(config());
  // Turn the plain config file into the kubelet's symlink chain before any reload.
  const root = dirname(server.configPath);
  await kubeletSwap(asFile(config()));
  await symlink('..data/config.yaml', join(root, 'config.yaml.link'));
  await rename(join(root, 'config.yaml.link'), server.configPath);
  await waitFor(async () => (await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer.length === 1, {
    what: 'the first verdict',
  });
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  await squids?.stopAll();
  await origin?.close();
});

describe('live reload', () => {
  it('follows the kubelet symlink swap; unchanged pools keep their state; no query unanswered', async () => {
    await waitFor(
      async () => (await server.status()).services[0]?.pools.every((p) => p.state === 'healthy'),
      {
        what: 'both pools healthy',
      },
    );
    const before = await server.status();
    const hashBefore = (before as unknown as { config: { hash: string } }).config.hash;

    // Ask continuously while the config changes under the server.
    let asking = true;
    const statuses: string[] = [];
    const asker = (async () => {
      while (asking) statuses.push((await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).status);
    })();

    await kubeletSwap(asFile(config({ secondService: true, ttl: 7 })));
    await waitFor(async () => (await dig(server.dnsAddress, 'other.egress.svc', 'A')).answer.length === 1, {
      what: 'the added service answered',
    });
    asking = false;
    await asker;

    expect(statuses.length).toBeGreaterThan(3);
    expect(new Set(statuses)).toEqual(new Set(['NOERROR']));
    const reply = await dig(server.dnsAddress, 'proxy.egress.svc', 'A');
    expect(reply.answer).toEqual(['proxy.egress.svc. 7 IN A 10.0.0.1']);

    const after = await server.status();
    const poolsBefore = before.services.find((s) => s.name === 'proxy')?.pools ?? [];
    const poolsAfter = after.services.find((s) => s.name === 'proxy')?.pools ?? [];
    // Both pools on both sides, in order: a missing service must not leave the loop nothing to check.
    expect(poolsBefore.map((p) => p.name)).toEqual(['primary', 'secondary']);
    expect(poolsAfter.map((p) => p.name)).toEqual(['primary', 'secondary']);
    for (const [i, pool] of poolsBefore.entries()) {
      expect(poolsAfter[i]?.state).toBe(pool.state);
      expect(poolsAfter[i]?.transitions).toBe(pool.transitions);
      expect((poolsAfter[i] as unknown as { since: string }).since).toBe(
        (pool as unknown as { since: string }).since,
      );
    }
    expect((after as unknown as { config: { hash: string } }).config.hash).not.toBe(hashBefore);
    expect(server.logs().some((l) => l.msg === 'config reloaded' && l.trigger === 'file')).toBe(true);
  });

  it('refuses an invalid config, logs its errors by path, counts it, and keeps serving the old one', async () => {
    const hash = ((await server.status()) as unknown as { config: { hash: string } }).config.hash;
    await kubeletSwap('services:\n  - name: proxy\n    pools: []\n');
    await waitFor(() => server.logs().some((l) => l.msg.startsWith('config reload refused')), {
      what: 'the refusal logged',
    });
    const refusal = server.logs().find((l) => l.msg.startsWith('config reload refused'));
    expect(refusal?.errors).toEqual(['services[0].pools: needs at least one pool']);
    expect((await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer).toHaveLength(1);
    expect(((await server.status()) as unknown as { config: { hash: string } }).config.hash).toBe(hash);
    const metrics = (await server.get('/metrics')).body;
    expect(metrics).toMatch(/egress_config_reloads_total\{result="failed"\} [1-9]/);
  });

  it('refuses a moved listen address, naming the key', async () => {
    const count = server.logs().filter((l) => l.msg.startsWith('config reload refused')).length;
    await kubeletSwap(asFile({ ...config(), dns: { listen: '127.0.0.1:1' } }));
    await waitFor(
      () => server.logs().filter((l) => l.msg.startsWith('config reload refused')).length > count,
      {
        what: 'the refusal logged',
      },
    );
    const refusal = server
      .logs()
      .filter((l) => l.msg.startsWith('config reload refused'))
      .at(-1);
    expect(String(refusal?.errors)).toMatch(/^dns\.listen: changed from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:1/);
  });

  it('applies a change of dns.ttl alone (pools and their answers unchanged)', async () => {
    // In force since the first test: the second service and TTL 7. Only the TTL changes here.
    expect((await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer).toEqual([
      'proxy.egress.svc. 7 IN A 10.0.0.1',
    ]);
    await kubeletSwap(asFile(config({ secondService: true, ttl: 11 })));
    await waitFor(
      async () =>
        (await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer[0] ===
        'proxy.egress.svc. 11 IN A 10.0.0.1',
      { what: 'TTL 11 applied' },
    );
  });

  it('reloads on SIGHUP', async () => {
    // Same content under a new name would be a no-op; change the TTL so the reload shows.
    await writeFile(
      join(dirname(server.configPath), `..2026_11_25_00_00_0${generation}`, 'config.yaml'),
      asFile(config({ ttl: 9 })),
    );
    process.kill(server.pid, 'SIGHUP');
    await waitFor(
      async () => (await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer[0]?.includes(' 9 IN A'),
      {
        what: 'the TTL of the SIGHUP reload',
      },
    );
  });
  // The goal is no answer later than 50 ms (bench/reload-stall.ts measures it). The bound here
  // leaves room for a machine shared with other tests, and still fails on what it guards against:
  // parsing 1 MiB on the main thread held every answer 0.6-1.9 s, 20 MB for half a minute.
  const LATE_MS = 200;

  it('refuses a 20 MB file written over the watched config without reading it; UDP answers on time', async () => {
    const hash = ((await server.status()) as unknown as { config: { hash: string } }).config.hash;
    const refusals = () => server.logs().filter((l) => l.msg.startsWith('config reload refused'));
    const before = refusals().length;
    const stream = startUdpStream(server.dnsAddress);
    // Through the symlink chain, as `kubectl cp` or an editor would: the file grows as it is written.
    await writeFile(server.configPath, `# ${'x'.repeat(20_000_000)}\n`);
    await waitFor(
      () => refusals().some((l) => String(l.errors).includes('20.0 MB, over the limit of 1 MiB')),
      {
        what: 'the 20 MB file refused',
      },
    );
    // The refusal can come within a few queries: the stream goes on past it, as answers must.
    await waitFor(() => stream.sent() > 60, { what: 'the stream to go on past the refusal' });
    const result = await stream.stop(LATE_MS);
    expect(refusals().length).toBeGreaterThan(before);
    expect(result.sent).toBeGreaterThan(50);
    expect(result).toMatchObject({ lost: 0, late: 0 });
    expect(((await server.status()) as unknown as { config: { hash: string } }).config.hash).toBe(hash);
    expect((await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer).toHaveLength(1);
    // Never read, never parsed: the process did not grow by the file's size (it grew to 2.5 GB).
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${server.pid}/status`, 'utf8'))?.[1]);
    expect(peakKb).toBeLessThan(400_000);
  });

  it('applies a 1 MiB config under a UDP query stream, no answer lost or late', async () => {
    // Seven more services of 5,400 addresses each: a valid file just under 1 MiB, heavy to parse
    // and validate (about 38,000 values), light to apply (seven pools on the same Squid).
    const input = config({ ttl: 13 });
    const addresses = Array.from(
      { length: 5_400 },
      (_, i) => `10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    );
    for (let n = 0; n < 7; n++)
      (input.services as unknown[]).push({
        name: `wide${n}`,
        pools: [{ name: 'only', proxy: `http://${SQUID}:3128`, address: addresses }],
      });
    const text = asFile(input);
    expect(text.length).toBeGreaterThan(900_000);
    expect(text.length).toBeLessThanOrEqual(1 << 20);
    const stream = startUdpStream(server.dnsAddress);
    await kubeletSwap(text);
    await waitFor(
      async () => (await dig(server.dnsAddress, 'proxy.egress.svc', 'A')).answer[0]?.includes(' 13 IN A'),
      { what: 'the 1 MiB config in force', timeoutMs: 20_000 },
    );
    const result = await stream.stop(LATE_MS);
    expect(result.sent).toBeGreaterThan(50);
    expect(result).toMatchObject({ lost: 0, late: 0 });
  });
});

describe('a reload of many services', () => {
  it('applies 250 services, every one in order: the parser sends long lists in parts', async () => {
    // More than the parser's 100 items per part: the services arrive as three parts, and a pool's
    // 150 addresses (a long list inside a long list) as two, all put back whole and in order.
    const input = config({ ttl: 14 });
    const wide = Array.from({ length: 150 }, (_, i) => `10.4.0.${i + 1}`);
    (input.services as unknown[]).push({
      name: 'wide',
      pools: [{ name: 'only', proxy: `http://${SQUID}:3128`, address: wide }],
    });
    for (let n = 0; n < 250; n++)
      (input.services as unknown[]).push({
        name: `many${n}`,
        pools: [{ name: 'only', proxy: `http://${SQUID}:3128`, address: `10.3.${n >> 8}.${n & 255}` }],
      });
    await kubeletSwap(asFile(input));
    const names = async () =>
      ((await server.status()) as unknown as { services: { name: string }[] }).services.map((s) => s.name);
    const count = (input.services as unknown[]).length;
    await waitFor(async () => (await names()).length === count, { what: 'the 250 services in force' });
    expect(await names()).toEqual((input.services as { name: string }[]).map((s) => s.name));
    type Status = { services: { name: string; pools: { addresses: string[] }[] }[] };
    const status = (await server.status()) as unknown as Status;
    expect(status.services.find((s) => s.name === 'wide')?.pools[0]?.addresses).toEqual(wide);
    for (const n of [0, 99, 100, 249]) {
      const record = await waitFor(
        async () => {
          const [answer] = (await dig(server.dnsAddress, `many${n}.egress.svc`, 'A')).answer;
          return answer?.includes(' 14 IN A') ? answer : undefined;
        },
        { what: `many${n} answered` },
      );
      expect(record).toMatch(new RegExp(`IN A\\s+10\\.3\\.${n >> 8}\\.${n & 255}$`));
    }
  });
});
