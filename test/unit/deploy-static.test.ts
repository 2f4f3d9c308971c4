// What can be checked of the image, the DNS server's manifests and the CoreDNS block without a
// Docker engine or a cluster: the Dockerfile builds from files that exist and reach the context,
// runs a Node LTS that satisfies `engines` as a numeric non-root user, and is called
// `egress-failover`; every manifest parses and sits in namespace egress; the Deployment, Service,
// ConfigMap, NetworkPolicy and Corefile agree with each other and with the config they ship.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfigText } from '../../src/config/parse.js';
import { type DnsConfig, dnsConfigSchema } from '../../src/config/schema.js';
import { dnsRoute } from '../../src/http/routes.js';
import { BASE, pick, render } from '../helpers/kustomize.js';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'k8s');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML; the tests check their shape.
type Doc = any;

// ---- Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  readonly op: string;
  readonly args: string;
  /** Index of the stage (FROM) it belongs to. */
  readonly stage: number;
}

/** Instructions in order, continuation lines joined, comments dropped. */
function dockerfile(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const op = match[1].toUpperCase();
    if (op === 'FROM') stage += 1;
    out.push({ op, args: match[2].replace(/\s+/g, ' '), stage });
  }
  return out;
}

/** `.dockerignore` as Docker applies it: the last matching rule wins, and a rule matching a parent
 * directory matches everything inside it. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split(/(\*\*|\*|\?)/)
        .map((part) => {
          if (part === '**') return '.*';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negated, regex: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const parts = path.replace(/^\.\/|\/+$/g, '').split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) {
      if (prefixes.some((prefix) => rule.regex.test(prefix))) excluded = !rule.negated;
    }
    return excluded;
  };
}

/** Every file under a folder of the repository, relative to the root; [] for a file. */
function filesUnder(path: string): string[] {
  if (!statSync(join(ROOT, path)).isDirectory()) return [];
  return readdirSync(join(ROOT, path), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** COPY/ADD sources and destination, flags (--from=...) apart. JSON form or shell form. */
function copyArgs(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(' ');
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (const word of words) {
    const flag = /^--([a-z-]+)=(.*)$/.exec(word);
    if (flag?.[1] && flag[2] !== undefined) flags[flag[1]] = flag[2];
    else rest.push(word);
  }
  const dest = rest.pop() ?? '';
  return { flags, sources: rest, dest };
}

/** Node.js lines that are LTS: the even majors, and every major from 27 on (one release a year). */
const isLtsMajor = (major: number) => major >= 27 || major % 2 === 0;

describe('Dockerfile', () => {
  const instructions = dockerfile(read('Dockerfile'));
  const pkg = JSON.parse(read('package.json'));
  const stages = instructions.filter((i) => i.op === 'FROM');
  const runtime = stages.length - 1;
  const inStage = (stage: number, op: string) => instructions.filter((i) => i.stage === stage && i.op === op);
  const last = (op: string) => instructions.filter((i) => i.op === op).at(-1)?.args;
  const ignored = dockerignore(existsSync(join(ROOT, '.dockerignore')) ? read('.dockerignore') : '');

  it('is multi-stage: build with dev dependencies, runtime with production ones only', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.findIndex((s) => / AS build$/i.test(s.args));
    expect(build).toBeGreaterThanOrEqual(0);
    const buildRuns = inStage(build, 'RUN').map((r) => r.args);
    expect(buildRuns.some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(buildRuns.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const runtimeRuns = inStage(runtime, 'RUN').map((r) => r.args);
    expect(runtimeRuns.some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    // `prepare` runs tsc, which the runtime stage does not have (and the build stage has no
    // sources yet when it installs): every npm ci must skip scripts while `prepare` exists.
    if (pkg.scripts?.prepare) {
      for (const run of [...buildRuns, ...runtimeRuns].filter((r) => /\bnpm ci\b/.test(r))) {
        expect(run).toMatch(/--ignore-scripts/);
      }
    }
  });

  it('runs a Node.js LTS image that satisfies package.json engines, the same in every stage', () => {
    const engines = /^>=\s*(\d+)(?:\.(\d+))?/.exec(pkg.engines.node);
    expect(engines, `engines.node ${pkg.engines.node}`).not.toBeNull();
    const minMajor = Number(engines?.[1]);
    const minMinor = Number(engines?.[2] ?? 0);
    expect(minMajor).toBeGreaterThanOrEqual(20);
    for (const from of stages) {
      const image = /^(?:--platform=\S+ )?(\S+)/.exec(from.args)?.[1] ?? '';
      const tag =
        /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:\.(\d+))?[^@\s]*(@sha256:[0-9a-f]{64})?$/.exec(image);
      expect(tag, `FROM ${image}`).not.toBeNull();
      const major = Number(tag?.[1]);
      const minor = tag?.[2] === undefined ? undefined : Number(tag[2]);
      expect(isLtsMajor(major), `node ${major} is not an LTS line`).toBe(true);
      // A bare major tag floats to its newest minor; only the engines' own major needs a minor.
      const satisfies = major > minMajor || (major === minMajor && minor !== undefined && minor >= minMinor);
      expect(satisfies, `node:${major}${minor === undefined ? '' : `.${minor}`} vs ${pkg.engines.node}`).toBe(
        true,
      );
      expect(image).toMatch(/-slim\b/);
    }
    const images = new Set(stages.map((s) => s.args.split(' ')[0]));
    expect(images.size).toBe(1);
  });

  it('runs as a numeric non-root user, so runAsNonRoot can be verified', () => {
    const user = last('USER');
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user?.split(':')[0])).toBeGreaterThan(0);
    expect(inStage(runtime, 'USER').length).toBeGreaterThan(0);
    expect(read('k8s/dns.yaml')).toContain(`runAsUser: ${user?.split(':')[0]}`);
  });

  it('is called egress-failover: ENTRYPOINT, CMD --help, and the name resolves to the package bin', () => {
    expect(JSON.parse(last('ENTRYPOINT') ?? 'null')).toEqual(['egress-failover']);
    expect(JSON.parse(last('CMD') ?? 'null')).toEqual(['--help']);
    const workdir = inStage(runtime, 'WORKDIR').at(-1)?.args;
    const binPath = pkg.bin['egress-failover'];
    expect(binPath).toBe('bin/egress-failover.js');
    const link = inStage(runtime, 'RUN')
      .map((r) => /ln -s(?:f)? (\S+) (\/usr\/local\/bin\/egress-failover)\b/.exec(r.args))
      .find((m) => m !== null);
    expect(link?.[1]).toBe(`${workdir}/${binPath}`);
    // Executed directly through the symlink: it needs its shebang.
    expect(read(binPath).startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('copies only files that exist and are not excluded by .dockerignore', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' || i.op === 'ADD').map((i) => copyArgs(i.args));
    const fromContext = copies.filter((c) => c.flags.from === undefined).flatMap((c) => c.sources);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const source of fromContext) {
      expect(existsSync(join(ROOT, source)), `COPY ${source}: missing`).toBe(true);
      // A folder is copied without the files .dockerignore excludes: none may be.
      for (const path of [source, ...filesUnder(source)]) {
        expect(ignored(path), `COPY ${source}: ${path} excluded by .dockerignore`).toBe(false);
      }
    }
    // The build reads what tsconfig.build.json names: its base config and its include folders.
    const buildConfig = parseYaml(read('tsconfig.build.json'));
    const needed = [
      'package.json',
      'package-lock.json',
      'tsconfig.build.json',
      ...(buildConfig.include ?? []),
    ];
    if (buildConfig.extends) needed.push(buildConfig.extends.replace(/^\.\//, ''));
    for (const path of needed) expect(fromContext, `the build needs ${path}`).toContain(path);
    // A local build output or node_modules never reaches the context.
    expect(ignored('node_modules')).toBe(true);
    expect(ignored('dist')).toBe(true);
  });

  it('takes dist/ from the build stage, where the bin imports it', () => {
    const build = stages.findIndex((s) => / AS build$/i.test(s.args));
    const buildDir = inStage(build, 'WORKDIR').at(-1)?.args;
    const runtimeDir = inStage(runtime, 'WORKDIR').at(-1)?.args;
    const outDir = parseYaml(read('tsconfig.build.json')).compilerOptions.outDir.replace(/^\.\//, '');
    const copies = inStage(runtime, 'COPY').map((i) => copyArgs(i.args));
    expect(copies).toContainEqual({
      flags: { from: 'build' },
      sources: [`${buildDir}/${outDir}`],
      dest: `./${outDir}`,
    });
    expect(read(pkg.bin['egress-failover'])).toContain(`'../${outDir}/main.js'`);
    expect(runtimeDir).toBe('/app');
  });

  it('exposes the DNS port on UDP and TCP and the HTTP port', () => {
    const exposed = instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(' '));
    expect(exposed).toEqual(expect.arrayContaining(['5353/udp', '5353/tcp', '8080']));
  });
});

// ---- Kubernetes manifests ---------------------------------------------------------------------

function documents(file: string): Doc[] {
  const parsed = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'));
  if (!Array.isArray(parsed)) throw new Error(`${file}: not a YAML stream`);
  for (const doc of parsed) expect(doc.errors, file).toEqual([]);
  return parsed.map((doc) => doc.toJS()).filter((doc) => doc !== null);
}

const manifestFiles = readdirSync(K8S)
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .sort();
// What `kubectl apply -k k8s/` applies: generated ConfigMaps and the labels transformer included.
const objects = render(BASE);
const find = (kind: string, name: string) => pick(objects, kind, name);

// The API group/version each kind is served under today (none of these has a newer one).
const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Service: 'v1',
  ServiceAccount: 'v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  PriorityClass: 'scheduling.k8s.io/v1',
};
const CLUSTER_SCOPED = ['Namespace', 'PriorityClass'];

describe('k8s/', () => {
  it('every manifest parses, and every rendered object has apiVersion, kind, metadata.name in namespace egress', () => {
    expect(manifestFiles).toEqual(expect.arrayContaining(['namespace.yaml', 'dns.yaml']));
    for (const file of manifestFiles) documents(file);
    for (const doc of objects) {
      const where = `${doc.kind}/${doc.metadata?.name}`;
      expect(typeof doc.apiVersion, where).toBe('string');
      expect(typeof doc.kind, where).toBe('string');
      expect(doc.metadata?.name, where).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      expect(API_VERSIONS[doc.kind], `${where}: unexpected kind`).toBeDefined();
      expect(doc.apiVersion, where).toBe(API_VERSIONS[doc.kind]);
      if (doc.kind === 'Namespace') expect(doc.metadata.name).toBe('egress');
      if (CLUSTER_SCOPED.includes(doc.kind)) {
        expect(doc.metadata.namespace, where).toBeUndefined();
      } else {
        expect(doc.metadata.namespace, where).toBe('egress');
      }
    }
    const names = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(names).size, 'duplicate objects').toBe(names.length);
  });

  it('kustomization.yaml lists every manifest, and only files that exist', () => {
    const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'));
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    const resources: string[] = kustomization.resources;
    for (const resource of resources) expect(existsSync(join(K8S, resource)), resource).toBe(true);
    expect([...resources].sort()).toEqual(manifestFiles);
    expect(resources).toEqual(
      expect.arrayContaining(['namespace.yaml', 'dns.yaml', 'squid-primary.yaml', 'squid-secondary.yaml']),
    );
  });

  it('creates no Service that shadows a served name through the search suffixes', () => {
    const services = objects.filter((o) => o.kind === 'Service');
    expect(services.map((s) => s.metadata.name)).not.toContain('proxy');
    // With ndots:5, <service>.<zone> is tried as <service>.<zone>.cluster.local first: for the
    // zone egress.svc that is the Service <service> in namespace egress.
    const config = shippedConfig();
    const zone = /^([a-z0-9-]+)\.svc$/.exec(config.dns.zone);
    for (const service of config.services) {
      const shadow = services.find(
        (s) => s.metadata.name === service.name && s.metadata.namespace === zone?.[1],
      );
      expect(shadow, `Service ${service.name} in namespace ${zone?.[1]}`).toBeUndefined();
    }
  });
});

// ---- the DNS server ---------------------------------------------------------------------------

const CONFIG_DIR = '/etc/egress-failover';

function dnsObjects() {
  const deployment = find('Deployment', 'egress-dns');
  const podSpec = deployment?.spec.template.spec;
  const container = podSpec?.containers.find((c: Doc) => c.name === 'dns');
  return { deployment, podSpec, container, service: find('Service', 'egress-dns') };
}

/** The config the Deployment reads: the ConfigMap mounted at CONFIG_DIR, key config.yaml. */
function shippedConfig(): DnsConfig {
  const { podSpec, container } = dnsObjects();
  const mount = container.volumeMounts.find((m: Doc) => m.mountPath === CONFIG_DIR);
  const volume = podSpec.volumes.find((v: Doc) => v.name === mount.name);
  const item = volume.configMap.items?.find((i: Doc) => i.path === 'config.yaml');
  const text = find('ConfigMap', volume.configMap.name)?.data?.[item?.key ?? 'config.yaml'];
  expect(typeof text).toBe('string');
  const loaded = parseConfigText(text, dnsConfigSchema);
  if (!loaded.ok) throw new Error(`k8s/dns.yaml config.yaml:\n${loaded.errors.join('\n')}`);
  return loaded.config;
}

/** A Service's targetPort (a name or a number) -> the container port number. */
function containerPort(container: Doc, target: string | number, protocol: string): number | undefined {
  if (typeof target === 'number') return target;
  return container.ports.find((p: Doc) => p.name === target && (p.protocol ?? 'TCP') === protocol)
    ?.containerPort;
}

/** Parses a Corefile's server blocks: zone -> directive lines (nested blocks flattened). */
function corefile(text: string): Map<string, string[][]> {
  const blocks = new Map<string, string[][]>();
  let zone: string | undefined;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    if (depth === 0) {
      const open = /^(\S+)\s*\{$/.exec(line);
      if (!open?.[1]) throw new Error(`Corefile: expected a server block, got "${line}"`);
      zone = open[1];
      blocks.set(zone, []);
      depth = 1;
      continue;
    }
    if (line === '}') {
      depth -= 1;
      continue;
    }
    const words = line.replace(/\{$/, '').trim().split(/\s+/);
    if (line.endsWith('{')) depth += 1;
    if (zone) blocks.get(zone)?.push(words);
  }
  expect(depth, 'Corefile: unbalanced braces').toBe(0);
  return blocks;
}

describe('k8s/dns.yaml', () => {
  const { deployment, podSpec, container, service } = dnsObjects();
  const config = shippedConfig();
  const podLabels = deployment.spec.template.metadata.labels;
  const selects = (selector: Record<string, string>) =>
    Object.entries(selector).every(([key, value]) => podLabels[key] === value);

  it('ships a config that passes the schema, listening on all interfaces of the pod', () => {
    expect(config.dns.zone).toBe('egress.svc');
    expect(config.dns.listen.host).toBe('0.0.0.0');
    expect(config.http.listen.host).toBe('0.0.0.0');
    expect(config.services.map((s) => s.name)).toContain('proxy');
  });

  it("probes pools through Services that exist, on their port, and answers with those Services' addresses", () => {
    for (const pool of config.services.flatMap((s) => s.pools)) {
      const url = new URL(pool.proxy);
      const svc = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(url.hostname);
      expect(svc, `${pool.name}: ${url.hostname} is not a cluster Service name`).not.toBeNull();
      const target = objects.find(
        (o) => o.kind === 'Service' && o.metadata.name === svc?.[1] && o.metadata.namespace === svc?.[2],
      );
      expect(target, `${pool.name}: no Service ${svc?.[1]} in ${svc?.[2]}`).toBeDefined();
      expect(target.spec.ports.map((p: Doc) => p.port)).toContain(Number(url.port));
      if (pool.addresses === undefined) {
        // Resolved: a headless Service would hand out pod IPs that change with every restart.
        expect(target.spec.clusterIP ?? '', `${pool.name}: headless Service`).not.toBe('None');
      }
    }
  });

  it('runs the dns command with the config mounted from the ConfigMap as a directory', () => {
    expect(container.args).toEqual(['dns', '--config', `${CONFIG_DIR}/config.yaml`]);
    const mount = container.volumeMounts.find((m: Doc) => m.mountPath === CONFIG_DIR);
    // A subPath mount is never updated, so a ConfigMap edit would not reach the reload.
    expect(mount.subPath).toBeUndefined();
    expect(mount.readOnly).toBe(true);
  });

  it('runs 2 replicas spread across nodes, with a PodDisruptionBudget of minAvailable 1', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    const spread = (podSpec.topologySpreadConstraints ?? []).find(
      (c: Doc) => c.topologyKey === 'kubernetes.io/hostname',
    );
    const antiAffinity =
      podSpec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.some(
        (t: Doc) => t.topologyKey === 'kubernetes.io/hostname',
      ) ?? false;
    expect(spread !== undefined || antiAffinity).toBe(true);
    if (spread) {
      expect(spread.whenUnsatisfiable).toBe('DoNotSchedule');
      expect(selects(spread.labelSelector.matchLabels)).toBe(true);
    }
    const pdb = objects.find(
      (o) =>
        o.kind === 'PodDisruptionBudget' &&
        o.metadata.namespace === 'egress' &&
        selects(o.spec.selector.matchLabels),
    );
    expect(pdb?.spec.minAvailable).toBe(1);
  });

  it('is locked down: non-root 10001, read-only root, no privilege escalation, no capabilities, RuntimeDefault', () => {
    expect(podSpec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext.capabilities.add).toBeUndefined();
    expect(container.securityContext.privileged ?? false).toBe(false);
    // Dropping every capability rules out ports below 1024.
    expect(config.dns.listen.port).toBeGreaterThanOrEqual(1024);
    expect(container.resources.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
  });

  it('probes /livez and /readyz on the HTTP port, paths the server answers', () => {
    const http = container.ports.find((p: Doc) => p.name === 'http');
    expect(http.containerPort).toBe(config.http.listen.port);
    expect(container.livenessProbe.httpGet.path).toBe('/livez');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      const port = probe.httpGet.port;
      expect(typeof port === 'number' ? port : containerPort(container, port, 'TCP')).toBe(
        config.http.listen.port,
      );
      const reply = dnsRoute(
        probe.httpGet.path,
        { at: 0, ready: true, services: [] },
        { file: '', hash: '', loadedAt: 0 },
      );
      expect(reply, probe.httpGet.path).toBeDefined();
    }
  });

  it('has a ClusterIP Service sending UDP and TCP 53 to the DNS port, its address left to the cluster', () => {
    expect(service.spec.type ?? 'ClusterIP').toBe('ClusterIP');
    // Any fixed address is outside some clusters' Service range, where the apply would fail:
    // k8s/components/fixed-cluster-ip pins one, and the patch script reads the live one.
    expect(service.spec.clusterIP).toBeUndefined();
    expect(isIPv4(FIXED_CLUSTER_IP), `fixed-cluster-ip: ${FIXED_CLUSTER_IP}`).toBe(true);
    expect(selects(service.spec.selector)).toBe(true);
    for (const protocol of ['UDP', 'TCP']) {
      const port = service.spec.ports.find((p: Doc) => p.port === 53 && p.protocol === protocol);
      expect(port, `53/${protocol}`).toBeDefined();
      expect(containerPort(container, port.targetPort, protocol)).toBe(config.dns.listen.port);
    }
    const http = service.spec.ports.find((p: Doc) => containerPort(container, p.targetPort, 'TCP') === 8080);
    expect(http?.protocol ?? 'TCP').toBe('TCP');
    expect(config.http.listen.port).toBe(8080);
  });

  it('lets only the cluster DNS pods reach the DNS port, and labelled monitoring the HTTP port', () => {
    const policy = objects.find(
      (o) =>
        o.kind === 'NetworkPolicy' &&
        o.metadata.namespace === 'egress' &&
        selects(o.spec.podSelector.matchLabels),
    );
    expect(policy).toBeDefined();
    expect(policy.spec.policyTypes).toContain('Ingress');
    const portOf = (p: Doc) =>
      typeof p.port === 'number' ? p.port : containerPort(container, p.port, p.protocol);
    const rulesFor = (port: number, protocol: string) =>
      policy.spec.ingress.filter((rule: Doc) =>
        (rule.ports ?? [{}]).some(
          (p: Doc) => (p.port === undefined || portOf(p) === port) && (p.protocol ?? 'TCP') === protocol,
        ),
      );
    for (const protocol of ['UDP', 'TCP']) {
      const rules = rulesFor(config.dns.listen.port, protocol);
      expect(rules.length, `DNS ${protocol}`).toBe(1);
      expect(rules[0].from).toEqual([
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        },
      ]);
    }
    const http = rulesFor(config.http.listen.port, 'TCP');
    expect(http.length).toBeGreaterThan(0);
    for (const rule of http) {
      // Never open to everyone: every peer names the namespaces it admits.
      expect(rule.from?.length).toBeGreaterThan(0);
      for (const peer of rule.from)
        expect(Object.keys(peer.namespaceSelector?.matchLabels ?? {})).not.toEqual([]);
    }
  });
});

// ---- CoreDNS ----------------------------------------------------------------------------------

/** The address k8s/components/fixed-cluster-ip pins, the one the Corefile and the docs show. */
const FIXED_CLUSTER_IP: string = (() => {
  const component = parseYaml(read('k8s/components/fixed-cluster-ip/kustomization.yaml'));
  const ops = parseYaml(component.patches[0].patch) as Doc[];
  return ops.find((op) => op.path === '/spec/clusterIP')?.value;
})();

describe('coredns/', () => {
  const config = shippedConfig();
  const blocks = corefile(read('coredns/Corefile.egress'));

  it('forwards exactly the zone the server is authoritative for, to the pinned clusterIP it shows', () => {
    expect([...blocks.keys()]).toEqual([`${config.dns.zone}:53`]);
    const directives = blocks.get(`${config.dns.zone}:53`) ?? [];
    const forward = directives.find((d) => d[0] === 'forward');
    // patch-configmap.sh writes the live Service's address over this one.
    expect(forward).toEqual(['forward', '.', FIXED_CLUSTER_IP]);
    expect(directives.map((d) => d[0])).toEqual(expect.arrayContaining(['errors', 'log', 'cache']));
  });

  it("keeps CoreDNS's own metrics for the zone: prometheus on the port the main block uses", () => {
    // Each server block records metrics only with its own `prometheus`; the kubeadm Corefile's
    // `.:53` block serves them on :9153, and blocks may share that listener.
    const directives = blocks.get(`${config.dns.zone}:53`) ?? [];
    expect(directives).toContainEqual(['prometheus', ':9153']);
  });

  it('caches no longer than our TTL, and never serves stale answers', () => {
    const directives = blocks.get(`${config.dns.zone}:53`) ?? [];
    const cache = directives.find((d) => d[0] === 'cache');
    expect(cache?.[1], 'cache needs an explicit TTL: the default is an hour').toMatch(/^\d+$/);
    expect(Number(cache?.[1])).toBeLessThanOrEqual(config.dns.ttl);
    expect(directives.some((d) => d[0] === 'serve_stale')).toBe(false);
  });

  it('the README and the docs show the same forward address and no longer cache', () => {
    // Each file's own wording, pattern by pattern. Every pattern must match at least once: one that
    // a rewording no longer fits would otherwise check nothing and pass (docs/kubernetes.md has no
    // `forward` line at all, so a check for that alone never ran there).
    const claims: { path: string; address: RegExp[]; cache: RegExp[] }[] = [
      {
        path: 'coredns/README.md',
        address: [/forward \. (\d{1,3}(?:\.\d{1,3}){3})/g],
        // Corefile lines in code blocks; the prose also names NodeLocal's own `cache 30`, not ours.
        cache: [/^\s*cache (\d+)\s*$/gm],
      },
      {
        path: 'docs/kubernetes.md',
        address: [
          /The component's own `(\d{1,3}(?:\.\d{1,3}){3})`/g,
          /clusterIP \((\d{1,3}(?:\.\d{1,3}){3}); override it\)/g,
          /grep -x (\d{1,3}(?:\.\d{1,3}){3})/g,
        ],
        // It shows no cache of ours: the only `cache` it names is NodeLocal DNSCache's own.
        cache: [],
      },
    ];
    for (const { path, address, cache } of claims) {
      const text = read(path);
      for (const pattern of address) {
        const matches = [...text.matchAll(pattern)];
        expect(matches.length, `${path}: ${pattern} matches nothing`).toBeGreaterThan(0);
        for (const match of matches) expect(match[1], `${path}: ${match[0]}`).toBe(FIXED_CLUSTER_IP);
      }
      for (const pattern of cache) {
        const matches = [...text.matchAll(pattern)];
        expect(matches.length, `${path}: ${pattern} matches nothing`).toBeGreaterThan(0);
        for (const match of matches)
          expect(Number(match[1]), `${path}: ${match[0].trim()}`).toBeLessThanOrEqual(config.dns.ttl);
      }
    }
  });

  it('ships an executable patch script that reads the block it documents', () => {
    const script = join(ROOT, 'coredns/patch-configmap.sh');
    expect(statSync(script).mode & 0o111).not.toBe(0);
    const text = read('coredns/patch-configmap.sh');
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toContain('Corefile.egress');
    expect(text).toContain('get service egress-dns');
  });
});
