// The Squid pool manifests agree with what the sidecar serves: they parse, the probes hit paths and
// ports the sidecar answers, the embedded sidecar config passes the schema, the command line is
// the CLI's, and no Service named `proxy` shadows proxy.egress.svc through the search suffix.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/parse.js';
import { sidecarConfigSchema } from '../../src/config/schema.js';
import { sidecarRoute } from '../../src/sidecar/routes.js';
import { initialSidecarState } from '../../src/sidecar/verdict.js';

const K8S = join(import.meta.dirname, '..', '..', 'k8s');

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML; the tests check their shape.
type Doc = any;

function documents(file: string): Doc[] {
  const parsed = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'));
  if (!Array.isArray(parsed)) throw new Error(`${file}: not a YAML stream`);
  for (const doc of parsed) expect(doc.errors, file).toEqual([]);
  return parsed.map((doc) => doc.toJS()).filter((doc) => doc !== null);
}

const byKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);

describe.each(['primary', 'secondary'])('k8s/squid-%s.yaml', (pool) => {
  const docs = documents(`squid-${pool}.yaml`);
  const name = `squid-${pool}`;
  const [deployment] = byKind(docs, 'Deployment');
  const [service] = byKind(docs, 'Service');
  const podSpec = deployment?.spec.template.spec;
  const container = (n: string) => podSpec.containers.find((c: Doc) => c.name === n);
  const configMap = (n: string) => byKind(docs, 'ConfigMap').find((c) => c.metadata.name === n);

  it('holds a Deployment, a ClusterIP Service and its ConfigMaps, all in namespace egress', () => {
    // Squid's own ConfigMap is generated from k8s/squid/ (kustomization.yaml, test/unit/squid-conf.test.ts).
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
    ]);
    for (const doc of docs) expect(doc.metadata.namespace).toBe('egress');
    expect(deployment.metadata.name).toBe(name);
    expect(service.metadata.name).toBe(name);
    expect(service.spec.type).toBe('ClusterIP');
  });

  it('the Service selects the pods and sends port 3128 to Squid', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(service.spec.selector);
    for (const [key, value] of Object.entries(service.spec.selector)) expect(labels[key]).toBe(value);
    expect(service.spec.ports).toEqual([{ name: 'proxy', port: 3128, targetPort: 'proxy', protocol: 'TCP' }]);
    expect(container('squid').ports).toContainEqual({ name: 'proxy', containerPort: 3128, protocol: 'TCP' });
  });

  it('embeds a sidecar config that passes the schema and matches the pod', () => {
    const sidecar = container('sidecar');
    expect(sidecar.image).toBe('egress-failover:0.1.0');
    expect(sidecar.args).toEqual(['sidecar', '--config', '/etc/egress-failover/sidecar.yaml']);
    const mount = sidecar.volumeMounts.find((m: Doc) => m.mountPath === '/etc/egress-failover');
    const volume = podSpec.volumes.find((v: Doc) => v.name === mount.name);
    const text = configMap(volume.configMap.name)?.data['sidecar.yaml'];
    const loaded = parseConfigText(text, sidecarConfigSchema);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const config = loaded.config;
    // An outside site's outage must neither empty the pools' Services nor restart every Squid:
    // both verdicts blame only this proxy, against at least two targets, any one of which suffices.
    expect(config.liveness).toBe('attributed');
    expect(config.readiness).toBe('attributed');
    expect(config.probe.targets.length).toBeGreaterThanOrEqual(2);
    expect(config.probe.quorum).toBe(1);
    expect(new URL(config.proxy).port).toBe('3128');
    expect(sidecar.ports).toContainEqual({
      name: 'health',
      containerPort: config.listen.port,
      protocol: 'TCP',
    });

    const squid = container('squid');
    const served = (path: string) =>
      sidecarRoute(path, initialSidecarState(0), config, config.probe) !== undefined;
    expect(squid.readinessProbe.httpGet).toEqual({ path: '/readyz', port: config.listen.port });
    expect(squid.livenessProbe.httpGet).toEqual({ path: '/health', port: config.listen.port });
    expect(served('/readyz') && served('/health')).toBe(true);
  });

  it('probes Squid with patient timing: liveness period 20 s x 3, startup on tcp 3128', () => {
    const squid = container('squid');
    expect(squid.livenessProbe).toMatchObject({ periodSeconds: 20, failureThreshold: 3 });
    expect(squid.startupProbe.tcpSocket).toEqual({ port: 3128 });
    // Answers come from the last verdict at once: one second is plenty.
    expect(squid.readinessProbe.timeoutSeconds).toBe(1);
    expect(squid.livenessProbe.timeoutSeconds).toBe(1);
  });

  it('squid.conf listens on 3128 and lets the sidecar in from localhost', () => {
    const mount = container('squid').volumeMounts.find((m: Doc) => m.mountPath === '/etc/squid/k8s');
    const volume = podSpec.volumes.find((v: Doc) => v.name === mount.name);
    expect(volume.configMap.name).toBe(`${name}-squid`);
    const conf = readFileSync(join(K8S, 'squid', 'squid.conf'), 'utf8');
    expect(conf).toMatch(/^http_port 3128$/m);
    expect(conf).toMatch(/^http_access allow localhost$/m);
    expect(container('squid').command).toEqual(['squid', '-N', '-f', '/etc/squid/k8s/squid.conf']);
  });

  it('runs non-root with resources on every container', () => {
    expect(podSpec.securityContext.runAsNonRoot).toBe(true);
    for (const c of podSpec.containers) {
      expect(c.resources.requests, c.name).toMatchObject({
        cpu: expect.any(String),
        memory: expect.any(String),
      });
      expect(c.resources.limits.memory, c.name).toEqual(expect.any(String));
      expect(c.securityContext, c.name).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.securityContext.runAsUser, c.name).toBeGreaterThan(0);
    }
  });
});

describe('every manifest in k8s/', () => {
  it('never names a Service `proxy` in namespace egress (it would shadow proxy.egress.svc)', () => {
    const files = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const doc of documents(file)) {
        if (doc.kind !== 'Service') continue;
        const shadowing =
          doc.metadata?.name === 'proxy' && (doc.metadata?.namespace ?? 'egress') === 'egress';
        expect(shadowing, `${file}: Service ${doc.metadata?.name}`).toBe(false);
      }
    }
  });
});

describe("the sidecar container's NODE_OPTIONS (bench/sidecar-rss.ts measures them)", () => {
  const nodeOptions = (pool: string): string => {
    const [deployment] = byKind(documents(`squid-${pool}.yaml`), 'Deployment');
    const sidecar = deployment.spec.template.spec.containers.find((c: Doc) => c.name === 'sidecar');
    return sidecar.env.find((e: Doc) => e.name === 'NODE_OPTIONS').value;
  };

  it('are the same in both pools', () => {
    expect(nodeOptions('secondary')).toBe(nodeOptions('primary'));
  });

  // Node.js refuses to start on a flag it does not take from NODE_OPTIONS (--no-opt, --lite-mode).
  it('hold only flags Node.js takes from NODE_OPTIONS', () => {
    for (const flag of nodeOptions('primary').split(' ')) {
      expect(process.allowedNodeEnvironmentFlags.has(flag.split('=')[0] as string), flag).toBe(true);
    }
  });
});
