// Every way the manifests are meant to be applied renders to a coherent install: k8s/ itself (no
// CRDs: the variant for clusters without the Prometheus Operator) and each overlay under
// examples/kustomize/, each rendered by kubectl's built-in kustomize as `kubectl apply -k` would.
// Each render: the recommended labels on every pod, configs that pass the schemas, PodMonitors that
// select pods and ports that exist, scrape alerts that select what the PodMonitors scrape. Each
// overlay: the knob it is for (zone, clusterIP, targets, images, NodeLocal DNSCache, monitoring) took
// effect. Schema validation of every rendered object is k8s-schema.test.ts's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfigText } from '../../src/config/parse.js';
import { type DnsConfig, dnsConfigSchema, sidecarConfigSchema } from '../../src/config/schema.js';
import {
  BASE,
  COMPONENTS_DIR,
  folders,
  type K8sObject,
  OVERLAYS_DIR,
  overlays,
  pick,
  podTemplates,
  ROOT,
  render,
  selects,
  where,
} from '../helpers/kustomize.js';

const RECOMMENDED_LABELS = ['name', 'instance', 'version', 'component', 'part-of', 'managed-by'].map(
  (l) => `app.kubernetes.io/${l}`,
);

/** `registry/name:tag@sha256:...` -> its parts (a port in the registry is not a tag). */
function imageRef(image: string): { name: string; tag?: string; digest?: string } {
  const [rest = '', digest] = image.split('@');
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  return colon > slash
    ? { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest }
    : { name: rest, tag: undefined, digest };
}

/** The text of a ConfigMap's key that a container mounts (the volume's configMap), in one render. */
function mountedConfig(objects: K8sObject[], owner: K8sObject, container: string, key: string): string {
  const spec = owner.spec.template.spec;
  const mounts = spec.containers.find((c: K8sObject) => c.name === container)?.volumeMounts ?? [];
  for (const mount of mounts) {
    const volume = spec.volumes.find((v: K8sObject) => v.name === mount.name);
    const text = volume?.configMap && pick(objects, 'ConfigMap', volume.configMap.name)?.data?.[key];
    if (typeof text === 'string') return text;
  }
  throw new Error(`${where(owner)}: container ${container} mounts no ConfigMap with ${key}`);
}

/** Every target some pool of the DNS server probes. */
const dnsTargets = (config: DnsConfig) =>
  [...new Set(config.services.flatMap((s) => s.pools.flatMap((p) => p.probe.targets)))].sort();

function dnsConfigOf(objects: K8sObject[]) {
  const loaded = parseConfigText(
    mountedConfig(objects, pick(objects, 'Deployment', 'egress-dns'), 'dns', 'config.yaml'),
    dnsConfigSchema,
  );
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

/** The Deployments that run the sidecar, with the sidecar config each one mounts. */
function sidecarConfigsOf(objects: K8sObject[]) {
  return podTemplates(objects)
    .filter(({ template }) => template.spec.containers.some((c: K8sObject) => c.name === 'sidecar'))
    .map(({ owner }) => {
      const loaded = parseConfigText(
        mountedConfig(objects, owner, 'sidecar', 'sidecar.yaml'),
        sidecarConfigSchema,
      );
      if (!loaded.ok) throw new Error(`${where(owner)}: ${loaded.errors.join('\n')}`);
      return { owner, config: loaded.config };
    });
}

/** The label matchers of every `up{...}` selector in a PrometheusRule. */
function upSelectors(rule: K8sObject): Record<string, string>[] {
  const exprs: string[] = rule.spec.groups.flatMap((g: K8sObject) => g.rules.map((r: K8sObject) => r.expr));
  return exprs.flatMap((expr) =>
    [...expr.matchAll(/\bup\{([^}]*)\}/g)].map((m) =>
      Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)\s*=\s*"([^"]*)"/g)].map((l) => [l[1], l[2]])),
    ),
  );
}

/** The pod label a labelmap'd series label comes from: app_kubernetes_io_part_of -> app.kubernetes.io/part-of. */
const podLabelOf = (seriesLabel: string) =>
  seriesLabel.replace(/^app_kubernetes_io_/, 'app.kubernetes.io/').replace(/_/g, '-');

/** Whether a PodMonitor endpoint's relabelings put a pod label onto the series under `seriesLabel`. */
function attaches(endpoint: K8sObject, seriesLabel: string): boolean {
  const meta = `__meta_kubernetes_pod_label_${podLabelOf(seriesLabel).replace(/[./-]/g, '_')}`;
  return (endpoint.relabelings ?? []).some((r: K8sObject) => {
    if (r.action !== 'labelmap') return false;
    const match = new RegExp(`^(?:${r.regex})$`).exec(meta);
    return (
      match !== null &&
      String(r.replacement).replace(/\$(\d)/g, (_, i) => match[Number(i)] ?? '') === seriesLabel
    );
  });
}

const renders = [BASE, ...overlays()].map((dir) => ({ dir, objects: render(dir) }));

describe.each(renders)('$dir renders', ({ objects }) => {
  const templates = podTemplates(objects);

  it('the recommended app.kubernetes.io labels on every pod', () => {
    expect(templates.length).toBeGreaterThanOrEqual(3);
    for (const { owner, template } of templates) {
      for (const label of RECOMMENDED_LABELS)
        expect(template.metadata.labels?.[label], `${where(owner)}: ${label}`).toEqual(expect.any(String));
      expect(template.metadata.labels['app.kubernetes.io/part-of']).toBe('egress-failover');
      expect(template.metadata.labels['app.kubernetes.io/managed-by']).toBe('kustomize');
    }
  });

  it("the DNS server's version label is its image's tag", () => {
    const deployment = pick(objects, 'Deployment', 'egress-dns');
    const image = imageRef(
      deployment.spec.template.spec.containers.find((c: K8sObject) => c.name === 'dns').image,
    );
    expect(image.tag).toBeDefined();
    expect(deployment.spec.template.metadata.labels['app.kubernetes.io/version']).toBe(image.tag);
  });

  it('configs that pass the schemas: the DNS server and every sidecar, probing the same targets', () => {
    const dns = dnsConfigOf(objects);
    const sidecars = sidecarConfigsOf(objects);
    expect(sidecars.length).toBe(2);
    // The sidecar takes its pod out of the Service when its check fails. Probing fewer sites than
    // DNS, or with a stricter quorum, one site's outage would empty every pool's Service while DNS
    // still answers it as healthy; the reverse keeps pods Ready behind a pool DNS has dropped.
    const quorums = new Set(dns.services.flatMap((svc) => svc.pools.map((p) => p.probe.quorum)));
    for (const { owner, config } of sidecars) {
      expect([...config.probe.targets].sort(), where(owner)).toEqual(dnsTargets(dns));
      expect([...quorums], where(owner)).toEqual([config.probe.quorum]);
    }
  });

  it('prometheus.io annotations, where present, name a port of the pod and /metrics', () => {
    const annotated = templates.filter(
      ({ template }) => template.metadata.annotations?.['prometheus.io/scrape'],
    );
    expect(annotated.map(({ owner }) => owner.metadata.name)).toContain('egress-dns');
    for (const { owner, template } of annotated) {
      const ports = template.spec.containers.flatMap((c: K8sObject) => c.ports ?? []);
      const port = Number(template.metadata.annotations['prometheus.io/port']);
      expect(
        ports.some((p: K8sObject) => p.containerPort === port),
        where(owner),
      ).toBe(true);
      expect(template.metadata.annotations['prometheus.io/path']).toBe('/metrics');
    }
  });

  const podMonitors = objects.filter((o) => o.kind === 'PodMonitor');
  const rule = objects.find((o) => o.kind === 'PrometheusRule');

  it.runIf(podMonitors.length > 0)(
    'PodMonitors select pods of this render and scrape /metrics on a named port they have',
    () => {
      // One per pod kind: the DNS replicas and the Squid pods' sidecars.
      expect(podMonitors.map((m) => m.metadata.name).sort()).toEqual(['egress-dns', 'egress-sidecar']);
      for (const monitor of podMonitors) {
        const scraped = templates.filter(({ template }) =>
          selects(monitor.spec.selector.matchLabels, template.metadata.labels),
        );
        expect(scraped.length, where(monitor)).toBeGreaterThan(0);
        expect(monitor.spec.namespaceSelector, 'same namespace only').toBeUndefined();
        for (const endpoint of monitor.spec.podMetricsEndpoints) {
          expect(endpoint.path).toBe('/metrics');
          for (const { owner, template } of scraped) {
            const names = template.spec.containers.flatMap((c: K8sObject) =>
              (c.ports ?? []).map((p: K8sObject) => p.name),
            );
            expect(names, `${where(monitor)} -> ${where(owner)}`).toContain(endpoint.port);
          }
        }
      }
      const dns = podMonitors.find((m) => m.metadata.name === 'egress-dns');
      expect(
        selects(
          dns.spec.selector.matchLabels,
          pick(objects, 'Deployment', 'egress-dns').spec.template.metadata.labels,
        ),
      ).toBe(true);
    },
  );

  it.runIf(rule !== undefined)(
    "the scrape alerts' `up` selectors match the pods the PodMonitors scrape",
    () => {
      const selectors = upSelectors(rule);
      expect(selectors.length).toBeGreaterThanOrEqual(2);
      for (const selector of selectors) {
        const podLabels = Object.fromEntries(Object.entries(selector).map(([k, v]) => [podLabelOf(k), v]));
        // Some PodMonitor scrapes such pods and attaches each label the selector reads.
        const monitor = podMonitors.find((m) =>
          templates.some(
            ({ template }) =>
              selects(m.spec.selector.matchLabels, template.metadata.labels) &&
              selects(podLabels, template.metadata.labels),
          ),
        );
        expect(monitor, `up${JSON.stringify(selector)}: no PodMonitor scrapes such pods`).toBeDefined();
        for (const label of Object.keys(selector)) {
          expect(
            monitor.spec.podMetricsEndpoints.every((e: K8sObject) => attaches(e, label)),
            `${where(monitor)} attaches ${label}`,
          ).toBe(true);
        }
      }
    },
  );
});

describe('the variants', () => {
  const base = render(BASE);
  const overlay = (name: string) => render(`${OVERLAYS_DIR}/${name}`);
  const crds = (objects: K8sObject[]) =>
    objects.filter((o) => String(o.apiVersion).startsWith('monitoring.coreos.com/'));

  it('k8s/ alone needs no CRD: nothing of the Prometheus Operator', () => {
    expect(crds(base)).toEqual([]);
    expect(base.every((o) => /^(v1|[a-z.]+\.k8s\.io\/v1|apps\/v1|policy\/v1)$/.test(o.apiVersion))).toBe(
      true,
    );
  });

  it('kube-prometheus-stack: both PodMonitors and the alerts, labelled for the chart selectors', () => {
    const objects = overlay('kube-prometheus-stack');
    expect(crds(objects).map(where).sort()).toEqual([
      'PodMonitor/egress-dns',
      'PodMonitor/egress-sidecar',
      'PrometheusRule/egress-failover',
    ]);
    for (const o of crds(objects)) expect(o.metadata.labels.release, where(o)).toBe('kube-prometheus-stack');
    // Everything else is the base, unchanged.
    expect(objects.filter((o) => !crds(objects).includes(o))).toEqual(base);
  });

  it('node-local-dns: the DNS port admits the kube-dns pods and the nodes, nothing else changes', () => {
    const objects = overlay('node-local-dns');
    const policy = pick(objects, 'NetworkPolicy', 'egress-dns');
    const dnsRule = policy.spec.ingress.find((r: K8sObject) =>
      r.ports.some((p: K8sObject) => p.protocol === 'UDP'),
    );
    expect(dnsRule.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      },
      { ipBlock: { cidr: '10.0.0.0/16' } },
    ]);
    expect(objects.filter((o) => o !== policy)).toEqual(
      base.filter((o) => where(o) !== 'NetworkPolicy/egress-dns'),
    );
  });

  it('my-cluster: its zone, targets, clusterIP, images, node addresses and release label, all applied', () => {
    const objects = overlay('my-cluster');
    const dir = join(ROOT, OVERLAYS_DIR, 'my-cluster');
    const ownConfig = parseConfigText(readFileSync(join(dir, 'config.yaml'), 'utf8'), dnsConfigSchema);
    const ownSidecar = parseConfigText(readFileSync(join(dir, 'sidecar.yaml'), 'utf8'), sidecarConfigSchema);
    if (!ownConfig.ok || !ownSidecar.ok) throw new Error('my-cluster: a config fails the schema');

    // The configs are the overlay's files, and differ from the base's where it says they do.
    const dns = dnsConfigOf(objects);
    expect(dns).toEqual(ownConfig.config);
    expect(dns.dns.zone).toBe('egress.internal');
    expect(dns.dns.zone).not.toBe(dnsConfigOf(base).dns.zone);
    expect(dnsTargets(dns)).not.toEqual(dnsTargets(dnsConfigOf(base)));
    for (const { config } of sidecarConfigsOf(objects)) expect(config).toEqual(ownSidecar.config);

    expect(pick(objects, 'Service', 'egress-dns').spec.clusterIP).toBe('10.100.0.53');
    const policy = pick(objects, 'NetworkPolicy', 'egress-dns');
    expect(policy.spec.ingress[0].from).toContainEqual({ ipBlock: { cidr: '192.168.16.0/20' } });
    for (const o of crds(objects)) expect(o.metadata.labels.release, where(o)).toBe('monitoring');
    expect(crds(objects).length).toBe(3);

    // Every container image from the overlay's registry; its own image pinned by digest.
    const images = podTemplates(objects).flatMap(({ template }) =>
      template.spec.containers.map((c: K8sObject) => c.image),
    );
    for (const image of images) expect(image).toMatch(/^registry\.example\.internal\//);
    const own = images.filter((i) => imageRef(i).name.endsWith('/egress-failover'));
    expect(own.length).toBe(3);
    for (const image of own) expect(imageRef(image).digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('every kustomization', () => {
  const baseImages = new Set(
    podTemplates(render(BASE)).flatMap(({ template }) =>
      template.spec.containers.map((c: K8sObject) => imageRef(c.image).name),
    ),
  );
  const files = [BASE, ...folders(COMPONENTS_DIR), ...overlays()].map((dir) =>
    join(dir, 'kustomization.yaml'),
  );

  it.each(files)(
    '%s: each `images` entry names an image the base runs (a rename there cannot leave it idle)',
    (file) => {
      const kustomization = parseYaml(readFileSync(join(ROOT, file), 'utf8'));
      // The base's own entries have already renamed what it renders; an overlay's see that.
      const isBase = file === join(BASE, 'kustomization.yaml');
      for (const entry of kustomization.images ?? []) {
        const rendered = isBase ? (entry.newName ?? entry.name) : entry.name;
        expect(baseImages.has(rendered), `${file}: ${entry.name}`).toBe(true);
      }
    },
  );
});
