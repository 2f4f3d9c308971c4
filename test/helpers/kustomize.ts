// What `kubectl apply -k` would send, without a cluster: the base k8s/ and every example overlay
// rendered by kubectl's built-in kustomize (client only), parsed into objects. Tests read these
// rather than the files, so generated names (a ConfigMap's hash suffix), the labels transformer,
// images and patches are checked as applied.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The base: k8s/kustomization.yaml. */
export const BASE = 'k8s';
/** Complete overlays (kustomize refuses an overlay inside its base's folder, so not under k8s/). */
export const OVERLAYS_DIR = 'examples/kustomize';
export const COMPONENTS_DIR = 'k8s/components';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form; tests check their shape.
export type K8sObject = any;

/** Sub-folders of a repository folder, as repository paths, sorted. */
export function folders(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => relative(ROOT, join(ROOT, dir, entry.name)))
    .sort();
}

/** Every overlay under examples/kustomize/. */
export const overlays = (): string[] => folders(OVERLAYS_DIR);

/** The YAML stream `kubectl kustomize` prints for a kustomization folder; throws with its stderr. */
export function renderText(dir: string): string {
  try {
    return execFileSync('kubectl', ['kustomize', join(ROOT, dir)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const { code, stderr } = err as { code?: string; stderr?: string };
    if (code === 'ENOENT')
      throw new Error('kubectl not found: the render tests need kubectl (kustomize built in)');
    throw new Error(`kubectl kustomize ${dir}: ${String(stderr).trim()}`);
  }
}

const cache = new Map<string, K8sObject[]>();

/** The objects a kustomization renders to; each folder is rendered once per test file. */
export function render(dir: string): K8sObject[] {
  const cached = cache.get(dir);
  if (cached) return structuredClone(cached);
  const objects = parseAllDocuments(renderText(dir)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors.join('; ')}`);
    return doc.toJS() as K8sObject;
  });
  cache.set(
    dir,
    objects.filter((o) => o !== null),
  );
  return structuredClone(cache.get(dir) ?? []);
}

/** The object of a kind and name in namespace egress (the Namespace itself has none). */
export function pick(objects: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find(
    (o) =>
      o.kind === kind &&
      o.metadata?.name === name &&
      (o.metadata?.namespace === 'egress' || (kind === 'Namespace' && o.metadata?.namespace === undefined)),
  );
}

/** `kind/name` of an object, for messages. */
export const where = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

/** Every workload's pod template in a render. */
export function podTemplates(objects: K8sObject[]): { owner: K8sObject; template: K8sObject }[] {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((owner) => ({ owner, template: owner.spec.template }));
}

/** Whether a matchLabels selector selects a set of labels. */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}
