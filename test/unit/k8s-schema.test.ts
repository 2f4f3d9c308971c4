// Every object that the base k8s/ and each example overlay (examples/kustomize/*) render to, as
// `kubectl kustomize` prints them, validates against the Kubernetes API schema of its apiVersion and
// kind (kubernetes-models: the OpenAPI schemas of Kubernetes 1.27, compiled with ajv, shipped in the
// package, so no cluster and no network). On top of the schema, unknown fields are errors, as
// `kubectl apply` (server-side strict field validation, the default since 1.27) makes them: a typo
// such as `readOnlyRootFileSystem` passes a plain schema check, and a cluster applying with
// `--validate=false` would silently drop it, security setting and all. An overlay that renders an
// object the schemas reject fails here.
//
// The Prometheus Operator's kinds (PodMonitor, PrometheusRule) are CRDs, not in kubernetes-models:
// their fields are checked against the operator's v1 types below, as far as these manifests use them.
// kustomization.yaml files are not API objects (kustomize reads them on the client); their fields
// are checked against kustomize's types below. The cross-checks between manifests, config and
// Corefile are in deploy-static.test.ts, k8s-manifests.test.ts and k8s-render.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as models from 'kubernetes-models';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { BASE, COMPONENTS_DIR, folders, overlays, ROOT, render, where } from '../helpers/kustomize.js';

type Json = Record<string, unknown>;
/** What the tests use of a kubernetes-models class: it copies the data and validates itself. */
interface Model {
  validate(): void;
}
type ModelClass = new (data: Json) => Model;

interface Manifest {
  readonly where: string;
  readonly doc: Json;
}

/** Every object of every render: the base and each overlay. */
function manifests(): Manifest[] {
  return [BASE, ...overlays()].flatMap((dir) =>
    render(dir).map((doc: Json) => ({ where: `${dir}: ${where(doc)}`, doc })),
  );
}

const isCrd = (doc: Json) => String(doc.apiVersion).startsWith('monitoring.coreos.com/');

/**
 * The model class of an apiVersion and kind, from the package's index: `networking.k8s.io/v1` +
 * NetworkPolicy -> models.networkingK8sIo.v1.NetworkPolicy; the core group `v1` is models.v1.
 */
function modelFor(apiVersion: string, kind: string): ModelClass {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [undefined, apiVersion];
  const groupKey = group?.replace(/\.([a-z])/g, (_, c: string) => c.toUpperCase());
  const index = models as unknown as Record<string, Record<string, Record<string, unknown>>>;
  const versions = groupKey === undefined ? index : index[groupKey];
  const model = versions?.[version ?? '']?.[kind];
  if (typeof model !== 'function') throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  return model as ModelClass;
}

/** The schema's own messages ("data/spec/replicas must be integer"), or [] when it passes. */
function schemaErrors(model: Model): string[] {
  try {
    model.validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

/**
 * Fields the schema does not know, as JSON paths. The compiled validator reads exactly the
 * properties its schema declares (`data.spec`, `data.replicas`, ...) and enumerates the keys of maps
 * (labels, ConfigMap data); so running it over a proxy that records reads leaves unread exactly the
 * keys of objects it never enumerated that no schema property names.
 */
function unknownFields(model: Model): string[] {
  const read = new Map<object, Set<PropertyKey>>();
  const enumerated = new Set<object>();
  const paths = new Map<object, string>();
  const proxies = new WeakMap<object, object>();
  const wrap = (target: object, path: string): object => {
    const cached = proxies.get(target);
    if (cached) return cached;
    paths.set(target, path);
    read.set(target, new Set());
    const proxy = new Proxy(target, {
      get(obj, key, receiver) {
        read.get(obj)?.add(key);
        const value = Reflect.get(obj, key, receiver) as unknown;
        const child = typeof key === 'string' && Object.hasOwn(obj, key);
        return child && value !== null && typeof value === 'object' ? wrap(value, `${path}/${key}`) : value;
      },
      ownKeys(obj) {
        enumerated.add(obj);
        return Reflect.ownKeys(obj);
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  try {
    // validate() hands `this` to the compiled validator: here, the recording proxy.
    model.validate.call(wrap(model, ''));
  } catch {
    // Schema errors are schemaErrors()'s to report.
  }
  const unknown: string[] = [];
  for (const [obj, keys] of read) {
    if (Array.isArray(obj) || enumerated.has(obj)) continue;
    for (const key of Object.keys(obj)) {
      if (!keys.has(key)) unknown.push(`${paths.get(obj)}/${key}`);
    }
  }
  return unknown;
}

describe('every rendered object against the Kubernetes API schemas', () => {
  const all = manifests();

  it('finds the objects of the base and of every overlay', () => {
    expect(overlays().length).toBeGreaterThanOrEqual(3);
    expect(all.filter((m) => m.where.startsWith(`${BASE}: `)).length).toBeGreaterThanOrEqual(10);
    for (const dir of overlays())
      expect(
        all.some((m) => m.where.startsWith(`${dir}: `)),
        dir,
      ).toBe(true);
  });

  it.each(all.filter((m) => !isCrd(m.doc)).map((m) => [m.where, m.doc] as const))('%s', (_where, doc) => {
    const Model = modelFor(String(doc.apiVersion), String(doc.kind));
    const model = new Model(doc);
    expect(schemaErrors(model)).toEqual([]);
    expect(unknownFields(model)).toEqual([]);
  });

  it.each(all.filter((m) => isCrd(m.doc)).map((m) => [m.where, m.doc] as const))('%s', (_where, doc) => {
    expect(crdErrors(doc)).toEqual([]);
  });
});

describe('the validation itself', () => {
  // The checks above pass on good manifests; these show they would fail on bad ones.
  const deployment = () => manifests().find((m) => m.where === `${BASE}: Deployment/egress-dns`)?.doc as Json;

  it('rejects a wrong type', () => {
    const Deployment = modelFor('apps/v1', 'Deployment');
    const doc = deployment();
    const model = new Deployment({ ...doc, spec: { ...(doc.spec as Json), replicas: 'two' } });
    expect(schemaErrors(model).join()).toMatch(/spec\/replicas must be integer/);
  });

  it('rejects a misspelled field, deep in a container, and a misspelled top-level field', () => {
    const Deployment = modelFor('apps/v1', 'Deployment');
    const doc = structuredClone(deployment());
    // biome-ignore lint/suspicious/noExplicitAny: reaching into a parsed manifest.
    const container = (doc as any).spec.template.spec.containers[0];
    container.securityContext.readOnlyRootFileSystem = true;
    const model = new Deployment({ ...doc, metdata: {} });
    expect(schemaErrors(model)).toEqual([]);
    expect(unknownFields(model).sort()).toEqual([
      '/metdata',
      '/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem',
    ]);
  });

  it('accepts any key in maps: labels, annotations, ConfigMap data', () => {
    const ConfigMap = modelFor('v1', 'ConfigMap');
    const model = new ConfigMap({
      metadata: { name: 'x', labels: { 'any.key/name': 'v' }, annotations: { whatever: 'v' } },
      data: { 'config.yaml': 'a: 1' },
    });
    expect(schemaErrors(model)).toEqual([]);
    expect(unknownFields(model)).toEqual([]);
  });

  it('fails an overlay that renders objects the schemas reject', () => {
    // An overlay of one's own, outside the repository: a wrong type, a misspelled field, and a
    // PodMonitor endpoint with a misspelled field and a duration Prometheus cannot read.
    const dir = mkdtempSync(join(tmpdir(), 'ef-overlay-'));
    const base = (path: string) => relative(dir, join(ROOT, path));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      stringify({
        resources: [base(BASE)],
        components: [base(`${COMPONENTS_DIR}/prometheus-operator`)],
        patches: [
          {
            target: { kind: 'Deployment', name: 'egress-dns' },
            patch: stringify([
              { op: 'replace', path: '/spec/replicas', value: 'two' },
              {
                op: 'add',
                path: '/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem',
                value: true,
              },
            ]),
          },
          {
            target: { kind: 'PodMonitor', name: 'egress-dns' },
            patch: stringify([
              { op: 'add', path: '/spec/podMetricsEndpoints/0/intervall', value: '15s' },
              { op: 'replace', path: '/spec/podMetricsEndpoints/0/interval', value: '15 s' },
            ]),
          },
        ],
      }),
    );
    try {
      const objects = render(relative(ROOT, dir));
      const deployment = new (modelFor('apps/v1', 'Deployment'))(
        objects.find((o: Json) => where(o) === 'Deployment/egress-dns'),
      );
      expect(schemaErrors(deployment).join()).toMatch(/spec\/replicas must be integer/);
      expect(unknownFields(deployment)).toEqual([
        '/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem',
      ]);
      expect(crdErrors(objects.find((o: Json) => where(o) === 'PodMonitor/egress-dns')).sort()).toEqual([
        '/spec/podMetricsEndpoints/0/interval is not a duration: 15 s',
        '/spec/podMetricsEndpoints/0/intervall is not a field',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a kind it has no schema for', () => {
    expect(() => modelFor('apps/v1', 'Deploymnt')).toThrow(/no apps\/v1 Deploymnt/);
    expect(() => modelFor('apps/v1beta9', 'Deployment')).toThrow();
  });
});

// kustomize's Kustomization (api/types/kustomization.go), the fields a file may use. Not served by
// the API server, so not in kubernetes-models: a misspelled key would be ignored by older kustomize
// builds, and e.g. a lost `images` entry would deploy the wrong tag.
const KUSTOMIZATION_FIELDS: Record<string, 'string' | 'array' | 'object' | 'boolean'> = {
  apiVersion: 'string',
  kind: 'string',
  metadata: 'object',
  openAPI: 'object',
  namePrefix: 'string',
  nameSuffix: 'string',
  namespace: 'string',
  commonLabels: 'object',
  labels: 'array',
  commonAnnotations: 'object',
  patches: 'array',
  patchesStrategicMerge: 'array',
  patchesJson6902: 'array',
  images: 'array',
  imageTags: 'array',
  replacements: 'array',
  replicas: 'array',
  vars: 'array',
  sortOptions: 'object',
  resources: 'array',
  bases: 'array',
  components: 'array',
  crds: 'array',
  configMapGenerator: 'array',
  secretGenerator: 'array',
  helmGlobals: 'object',
  helmCharts: 'array',
  helmChartInflationGenerator: 'array',
  generatorOptions: 'object',
  configurations: 'array',
  generators: 'array',
  transformers: 'array',
  validators: 'array',
  buildMetadata: 'array',
};
const KUSTOMIZE_LABEL_FIELDS = ['pairs', 'includeSelectors', 'includeTemplates', 'fields'];
const KUSTOMIZE_IMAGE_FIELDS = ['name', 'newName', 'newTag', 'digest', 'tagSuffix'];

const KUSTOMIZE_GENERATOR_FIELDS = [
  'name',
  'namespace',
  'behavior',
  'files',
  'literals',
  'envs',
  'env',
  'options',
];
const KUSTOMIZE_PATCH_FIELDS = ['path', 'patch', 'target', 'options'];
const KUSTOMIZE_TARGET_FIELDS = [
  'group',
  'version',
  'kind',
  'name',
  'namespace',
  'labelSelector',
  'annotationSelector',
];

/** Every kustomization.yaml: the base, its components, k8s/monitoring, the example overlays. */
const kustomizationFiles = () =>
  [BASE, 'k8s/monitoring', ...folders(COMPONENTS_DIR), ...overlays()].map((dir) =>
    relative(ROOT, join(ROOT, dir, 'kustomization.yaml')),
  );

describe.each(kustomizationFiles())('%s (not an API object: kustomize fields instead)', (file) => {
  const kustomization = parseYaml(readFileSync(join(ROOT, file), 'utf8')) as Json;
  const typeOf = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

  it('is a Kustomization or a Component, using only their fields, each of its type', () => {
    expect([
      ['kustomize.config.k8s.io/v1beta1', 'Kustomization'],
      ['kustomize.config.k8s.io/v1alpha1', 'Component'],
    ]).toContainEqual([kustomization.apiVersion, kustomization.kind]);
    for (const [key, value] of Object.entries(kustomization)) {
      expect(KUSTOMIZATION_FIELDS[key], `unknown field ${key}`).toBeDefined();
      expect(typeOf(value), key).toBe(KUSTOMIZATION_FIELDS[key]);
    }
  });

  it('labels, images, generators and patches entries use only their own fields', () => {
    const only = (entries: unknown, allowed: string[], what: string) => {
      for (const entry of (entries ?? []) as Json[])
        for (const key of Object.keys(entry)) expect(allowed, `${what}[].${key}`).toContain(key);
    };
    only(kustomization.labels, KUSTOMIZE_LABEL_FIELDS, 'labels');
    for (const label of (kustomization.labels ?? []) as Json[]) {
      for (const value of Object.values((label.pairs ?? {}) as Json)) expect(typeof value).toBe('string');
    }
    only(kustomization.images, KUSTOMIZE_IMAGE_FIELDS, 'images');
    for (const image of (kustomization.images ?? []) as Json[]) {
      expect(typeof image.name).toBe('string');
      for (const key of ['newName', 'newTag', 'digest']) {
        if (image[key] !== undefined) expect(typeof image[key], `images[].${key}`).toBe('string');
      }
    }
    only(kustomization.configMapGenerator, KUSTOMIZE_GENERATOR_FIELDS, 'configMapGenerator');
    only(kustomization.patches, KUSTOMIZE_PATCH_FIELDS, 'patches');
    only(
      ((kustomization.patches ?? []) as Json[]).map((p) => p.target ?? {}),
      KUSTOMIZE_TARGET_FIELDS,
      'patches[].target',
    );
  });
});

// ---- the Prometheus Operator's kinds --------------------------------------------------------

/**
 * A field's type in the operator's monitoring.coreos.com/v1 CRDs: a scalar, a map of strings, an
 * object of known fields, or a list of one of these.
 */
type Shape = 'string' | 'integer' | 'boolean' | 'duration' | 'strings' | { [field: string]: Shape } | [Shape];

// The CRDs' duration pattern (e.g. 30s, 1m, 1h30m).
const DURATION =
  /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const RELABEL_ACTIONS = [
  'replace',
  'keep',
  'drop',
  'hashmod',
  'labelmap',
  'labeldrop',
  'labelkeep',
  'lowercase',
  'uppercase',
  'keepequal',
  'dropequal',
];

const META: Shape = { name: 'string', namespace: 'string', labels: 'strings', annotations: 'strings' };
const LABEL_SELECTOR: Shape = {
  matchLabels: 'strings',
  matchExpressions: [{ key: 'string', operator: 'string', values: ['string'] }],
};
const RELABEL: Shape = {
  action: 'string',
  sourceLabels: ['string'],
  separator: 'string',
  targetLabel: 'string',
  regex: 'string',
  modulus: 'integer',
  replacement: 'string',
};
const CRD_SHAPES: Record<string, Shape> = {
  PodMonitor: {
    apiVersion: 'string',
    kind: 'string',
    metadata: META,
    spec: {
      jobLabel: 'string',
      podTargetLabels: ['string'],
      selector: LABEL_SELECTOR,
      namespaceSelector: { any: 'boolean', matchNames: ['string'] },
      sampleLimit: 'integer',
      targetLimit: 'integer',
      podMetricsEndpoints: [
        {
          port: 'string',
          portNumber: 'integer',
          path: 'string',
          scheme: 'string',
          interval: 'duration',
          scrapeTimeout: 'duration',
          honorLabels: 'boolean',
          honorTimestamps: 'boolean',
          relabelings: [RELABEL],
          metricRelabelings: [RELABEL],
        },
      ],
    },
  },
  PrometheusRule: {
    apiVersion: 'string',
    kind: 'string',
    metadata: META,
    spec: {
      groups: [
        {
          name: 'string',
          interval: 'duration',
          labels: 'strings',
          rules: [
            {
              alert: 'string',
              record: 'string',
              expr: 'string',
              for: 'duration',
              keep_firing_for: 'duration',
              labels: 'strings',
              annotations: 'strings',
            },
          ],
        },
      ],
    },
  },
};

/** What the CRD would reject or drop: unknown fields, wrong types, bad durations and actions. */
function crdErrors(doc: Json): string[] {
  const errors: string[] = [];
  const shape = CRD_SHAPES[String(doc.kind)];
  if (doc.apiVersion !== 'monitoring.coreos.com/v1' || shape === undefined) {
    return [`no schema for ${String(doc.apiVersion)} ${String(doc.kind)}`];
  }
  const walk = (value: unknown, s: Shape, path: string) => {
    if (Array.isArray(s)) {
      if (!Array.isArray(value)) errors.push(`${path} must be a list`);
      else for (const [i, item] of value.entries()) walk(item, s[0], `${path}/${i}`);
    } else if (typeof s === 'object') {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        errors.push(`${path} must be an object`);
      else
        for (const [key, child] of Object.entries(value)) {
          if (s[key] === undefined) errors.push(`${path}/${key} is not a field`);
          else walk(child, s[key], `${path}/${key}`);
        }
    } else if (s === 'strings') {
      const ok =
        value !== null &&
        typeof value === 'object' &&
        Object.values(value).every((v) => typeof v === 'string');
      if (!ok) errors.push(`${path} must map to strings`);
    } else if (s === 'integer') {
      if (!Number.isInteger(value)) errors.push(`${path} must be an integer`);
    } else if (s === 'boolean') {
      if (typeof value !== 'boolean') errors.push(`${path} must be a boolean`);
    } else if (typeof value !== 'string') {
      errors.push(`${path} must be a string`);
    } else if (s === 'duration' && !DURATION.test(value)) {
      errors.push(`${path} is not a duration: ${value}`);
    }
  };
  walk(doc, shape, '');
  const spec = doc.spec as Json | undefined;
  const endpoints = (spec?.podMetricsEndpoints ?? []) as Json[];
  for (const relabel of endpoints.flatMap((e) => [
    ...((e.relabelings ?? []) as Json[]),
    ...((e.metricRelabelings ?? []) as Json[]),
  ])) {
    if (!RELABEL_ACTIONS.includes(String(relabel.action ?? 'replace')))
      errors.push(`unknown relabel action ${String(relabel.action)}`);
  }
  return errors;
}

describe('the CRD check itself', () => {
  const podMonitor = () => render('k8s/monitoring').find((d: Json) => d.kind === 'PodMonitor') as Json;

  it('passes the shipped PodMonitor and rejects a misspelled field, a bad duration and type', () => {
    expect(crdErrors(podMonitor())).toEqual([]);
    const bad = structuredClone(podMonitor());
    // biome-ignore lint/suspicious/noExplicitAny: reaching into a parsed manifest.
    const endpoint = (bad as any).spec.podMetricsEndpoints[0];
    endpoint.intervall = '15s';
    endpoint.scrapeTimeout = '15 seconds';
    endpoint.portNumber = '8080';
    expect(crdErrors(bad).sort()).toEqual([
      '/spec/podMetricsEndpoints/0/intervall is not a field',
      '/spec/podMetricsEndpoints/0/portNumber must be an integer',
      '/spec/podMetricsEndpoints/0/scrapeTimeout is not a duration: 15 seconds',
    ]);
  });

  it('names a kind it has no schema for', () => {
    expect(crdErrors({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitr' })).toEqual([
      'no schema for monitoring.coreos.com/v1 ServiceMonitr',
    ]);
  });
});
