// The shipped squid.conf (k8s/squid/) keeps the directives clients and the cluster rely on, and
// kustomize's configMapGenerator turns an edit of it into a new ConfigMap name, so the pods roll.
// Client-side only: `kubectl kustomize` renders, nothing contacts a cluster. Squid's own parse and
// behaviour on this file: test/integration/squid-conf.test.ts.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { POD_SQUID_DIR, SHIPPED_SQUID_DIR } from '../helpers/squid.js';

const K8S = join(import.meta.dirname, '..', '..', 'k8s');
const SHIPPED = readFileSync(join(SHIPPED_SQUID_DIR, 'squid.conf'), 'utf8');

/** Directive lines (comments and blanks dropped), each split into words. */
const directives = (text: string): string[][] =>
  text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .map((line) => line.split(/\s+/));

const SECONDS: Record<string, number> = {
  second: 1,
  seconds: 1,
  minute: 60,
  minutes: 60,
  hour: 3600,
  hours: 3600,
};

/** A Squid time value ("30 seconds", "2 minutes") in seconds; NaN when it is not one. */
const seconds = (words: string[]): number =>
  Number(words[0]) * (SECONDS[words[1] ?? 'seconds'] ?? Number.NaN);

/**
 * What a squid.conf lacks of the shipped guarantees, one line per problem; [] when it has them all.
 * The bounds are the ones docs/squid.md states.
 */
function squidConfProblems(text: string): string[] {
  const lines = directives(text);
  const problems: string[] = [];
  const last = (name: string) =>
    lines
      .filter((d) => d[0] === name)
      .at(-1)
      ?.slice(1);
  const timeBound = (name: string, atMost: number) => {
    const value = last(name);
    const s = value ? seconds(value) : Number.NaN;
    if (!(s > 0 && s <= atMost))
      problems.push(`${name}: ${value?.join(' ') ?? 'missing'} (want 1..${atMost} s)`);
  };
  if (last('persistent_connection_after_error')?.[0] !== 'off')
    problems.push('persistent_connection_after_error off: missing');
  timeBound('pconn_lifetime', 60);
  timeBound('client_idle_pconn_timeout', 60);
  timeBound('shutdown_lifetime', 10);
  const fds = Number(last('max_filedescriptors')?.[0]);
  if (!(fds >= 1024 && fds <= 65536)) problems.push(`max_filedescriptors: ${fds} (want 1024..65536)`);

  const acl = (name: string) =>
    lines.filter((d) => d[0] === 'acl' && d[1] === name && d[2] === 'dst').flatMap((d) => d.slice(3));
  for (const range of ['169.254.0.0/16', 'fe80::/10']) {
    if (!acl('link_local').includes(range)) problems.push(`acl link_local dst: ${range} missing`);
  }
  if (acl('cluster_internal').join(' ') !== `"${POD_SQUID_DIR}/internal-ranges.txt"`)
    problems.push(`acl cluster_internal dst: not read from ${POD_SQUID_DIR}/internal-ranges.txt`);

  // First match wins: every deny must come before the first allow for clients.
  const access = lines.filter((d) => d[0] === 'http_access').map((d) => d.slice(1).join(' '));
  const allowLocalnet = access.indexOf('allow localnet');
  if (allowLocalnet < 0) problems.push('http_access allow localnet: missing');
  for (const deny of ['deny to_localhost', 'deny link_local', 'deny cluster_internal']) {
    const at = access.indexOf(deny);
    if (at < 0 || at > allowLocalnet) problems.push(`http_access ${deny}: missing or after allow localnet`);
    const firstClientAllow = access.findIndex(
      (rule) => rule.startsWith('allow') && !rule.endsWith(' manager'),
    );
    if (at > firstClientAllow) problems.push(`http_access ${deny}: after ${access[firstClientAllow]}`);
  }
  if (access.at(-1) !== 'deny all') problems.push('http_access deny all: not the last rule');
  return problems;
}

describe('k8s/squid/squid.conf', () => {
  it('has every directive clients and the cluster rely on', () => {
    expect(squidConfProblems(SHIPPED)).toEqual([]);
  });

  // The check above must be able to fail: each line it guards, removed or moved, is reported.
  const guarded = [
    /^persistent_connection_after_error off$/m,
    /^pconn_lifetime .*$/m,
    /^client_idle_pconn_timeout .*$/m,
    /^max_filedescriptors .*$/m,
    /^shutdown_lifetime .*$/m,
    /^acl link_local .*$/m,
    /^acl cluster_internal .*$/m,
    /^http_access deny to_localhost$/m,
    /^http_access deny link_local$/m,
    /^http_access deny cluster_internal$/m,
  ];
  it.each(guarded.map((pattern) => [pattern.source, pattern]))('reports the loss of %s', (_, pattern) => {
    expect(SHIPPED).toMatch(pattern);
    expect(squidConfProblems(SHIPPED.replace(pattern, ''))).not.toEqual([]);
  });

  it.each([['deny to_localhost'], ['deny link_local'], ['deny cluster_internal']])(
    'reports http_access %s moved after allow localnet',
    (deny) => {
      const moved = SHIPPED.replace(`http_access ${deny}\n`, '').replace(
        'http_access allow localnet\n',
        `http_access allow localnet\nhttp_access ${deny}\n`,
      );
      expect(squidConfProblems(moved)).toContainEqual(expect.stringContaining(deny));
    },
  );

  it('reports an unbounded client connection', () => {
    const unbounded = SHIPPED.replace(/^pconn_lifetime .*$/m, 'pconn_lifetime 0').replace(
      /^client_idle_pconn_timeout .*$/m,
      'client_idle_pconn_timeout 2 hours',
    );
    expect(squidConfProblems(unbounded)).toEqual([
      expect.stringContaining('pconn_lifetime'),
      expect.stringContaining('client_idle_pconn_timeout'),
    ]);
  });

  it('lists internal ranges as CIDRs, the private ones by default', () => {
    const ranges = directives(readFileSync(join(SHIPPED_SQUID_DIR, 'internal-ranges.txt'), 'utf8')).map(
      ([cidr]) => cidr,
    );
    for (const cidr of ranges) expect(cidr).toMatch(/^[0-9a-f.:]+\/\d+$/);
    expect(ranges).toEqual(
      expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']),
    );
  });
});

// ---- kustomize: an edit rolls the pods ---------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form YAML.
type K8sObject = any;

const kustomize = (dir: string): K8sObject[] =>
  parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' }))
    .map((doc) => doc.toJS())
    .filter((o) => o !== null);

/** Per pool: the ConfigMap the Squid container's /etc/squid/k8s volume names, and its data. */
function squidConfigMaps(objects: K8sObject[]): Map<string, { name: string; data: Record<string, string> }> {
  const result = new Map<string, { name: string; data: Record<string, string> }>();
  for (const deployment of objects.filter(
    (o) => o.kind === 'Deployment' && /^squid-/.test(o.metadata.name),
  )) {
    const pod = deployment.spec.template.spec;
    const squid = pod.containers.find((c: K8sObject) => c.name === 'squid');
    const mount = squid.volumeMounts.find((m: K8sObject) => m.mountPath === POD_SQUID_DIR);
    const name = pod.volumes.find((v: K8sObject) => v.name === mount.name).configMap.name;
    const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    expect(map, `${deployment.metadata.name}: ConfigMap ${name} is rendered`).toBeDefined();
    result.set(deployment.metadata.name, { name, data: map.data });
  }
  return result;
}

describe('kubectl kustomize k8s (client only)', () => {
  const copy = mkdtempSync(join(tmpdir(), 'ef-kustomize-'));
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  const shipped = squidConfigMaps(kustomize(K8S));

  it('mounts, in each pool, a ConfigMap holding exactly the files of k8s/squid/', () => {
    expect([...shipped.keys()].sort()).toEqual(['squid-primary', 'squid-secondary']);
    for (const [pool, { name, data }] of shipped) {
      expect(name, pool).toMatch(new RegExp(`^${pool}-squid-[a-z0-9]{10}$`));
      expect(data['squid.conf'], pool).toBe(SHIPPED);
      expect(data['internal-ranges.txt'], pool).toBe(
        readFileSync(join(SHIPPED_SQUID_DIR, 'internal-ranges.txt'), 'utf8'),
      );
    }
  });

  it('gives the ConfigMaps new names when squid.conf changes, and the Deployments follow', () => {
    const edited = join(copy, 'k8s');
    cpSync(K8S, edited, { recursive: true });
    writeFileSync(
      join(edited, 'squid', 'squid.conf'),
      SHIPPED.replace(/^pconn_lifetime .*$/m, 'pconn_lifetime 20 seconds'),
    );
    const after = squidConfigMaps(kustomize(edited));
    for (const [pool, before] of shipped) {
      const now = after.get(pool);
      expect(now?.name, pool).not.toBe(before.name);
      expect(now?.data['squid.conf'], pool).toMatch(/^pconn_lifetime 20 seconds$/m);
    }
  });
});
