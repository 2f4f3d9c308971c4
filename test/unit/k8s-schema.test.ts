// Every object in every k8s/*.yaml validates against the Kubernetes API schema of its apiVersion and
// kind (kubernetes-models: the OpenAPI schemas of Kubernetes 1.27, compiled with ajv, shipped in the
// package, so no cluster and no network). On top of the schema, unknown fields are errors, as
// `kubectl apply` (server-side strict field validation, the default since 1.27) makes them: a typo
// such as `readOnlyRootFileSystem` passes a plain schema check, and a cluster applying with
// `--validate=false` would silently drop it, security setting and all.
//
// kustomization.yaml is not an API object (kustomize reads it on the client); it has no schema in
// kubernetes-models, so its fields are checked against kustomize's v1beta1 Kustomization type
// below. The cross-checks between manifests, config and Corefile are in deploy-static.test.ts and
// k8s-manifests.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as models from 'kubernetes-models';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

const K8S = join(import.meta.dirname, '..', '..', 'k8s');

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

function manifests(): Manifest[] {
  const files = readdirSync(K8S)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .sort();
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))
      .map((doc) => doc.toJS() as Json | null)
      .filter((doc): doc is Json => doc !== null)
      .map((doc) => ({
        where: `${file}: ${String(doc.kind)}/${String((doc.metadata as Json | undefined)?.name)}`,
        doc,
      })),
  );
}

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

describe('k8s/*.yaml against the Kubernetes API schemas', () => {
  const all = manifests();

  it('finds the objects of every manifest', () => {
    expect(all.length).toBeGreaterThanOrEqual(10);
  });

  it.each(all.map((m) => [m.where, m.doc] as const))('%s', (_where, doc) => {
    const Model = modelFor(String(doc.apiVersion), String(doc.kind));
    const model = new Model(doc);
    expect(schemaErrors(model)).toEqual([]);
    expect(unknownFields(model)).toEqual([]);
  });
});

describe('the validation itself', () => {
  // The checks above pass on good manifests; these show they would fail on bad ones.
  const deployment = () =>
    manifests().find((m) => m.doc.kind === 'Deployment' && m.where.startsWith('dns.yaml'))?.doc as Json;

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

describe('k8s/kustomization.yaml (not an API object: kustomize fields instead)', () => {
  const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Json;
  const typeOf = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

  it('uses only Kustomization fields, each of its type', () => {
    for (const [key, value] of Object.entries(kustomization)) {
      expect(KUSTOMIZATION_FIELDS[key], `unknown field ${key}`).toBeDefined();
      expect(typeOf(value), key).toBe(KUSTOMIZATION_FIELDS[key]);
    }
  });

  it('labels and images entries use only their own fields', () => {
    for (const label of (kustomization.labels ?? []) as Json[]) {
      for (const key of Object.keys(label)) expect(KUSTOMIZE_LABEL_FIELDS, `labels[].${key}`).toContain(key);
      for (const value of Object.values((label.pairs ?? {}) as Json)) expect(typeof value).toBe('string');
    }
    for (const image of (kustomization.images ?? []) as Json[]) {
      expect(typeof image.name).toBe('string');
      for (const key of Object.keys(image)) expect(KUSTOMIZE_IMAGE_FIELDS, `images[].${key}`).toContain(key);
      for (const key of ['newName', 'newTag', 'digest']) {
        if (image[key] !== undefined) expect(typeof image[key], `images[].${key}`).toBe('string');
      }
    }
  });
});
