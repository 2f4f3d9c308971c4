// The Squid pools as `kubectl apply -k k8s/` would create them (rendered by kubectl's kustomize,
// client only) are safe to run: a PodDisruptionBudget per pool, a drain before Squid stops that
// fits the grace period and squid.conf's shutdown_lifetime, descriptors the memory limit carries, a
// PriorityClass that exists, a NetworkPolicy that lets the clients, the DNS server's probes and the
// scrapes in and nothing else, and an image pinned by digest. Recommended labels on every pod:
// k8s-render.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASE, type K8sObject, pick, render, selects, where } from '../helpers/kustomize.js';
import { SHIPPED_SQUID_DIR } from '../helpers/squid.js';

const objects = render(BASE);
const POOLS = ['squid-primary', 'squid-secondary'];
const SQUID_CONF = readFileSync(join(SHIPPED_SQUID_DIR, 'squid.conf'), 'utf8');

/** The value words of a squid.conf directive (its last occurrence). */
function directive(name: string): string[] {
  const lines = SQUID_CONF.split('\n').filter((line) => line.startsWith(`${name} `));
  const last = lines.at(-1);
  if (!last) throw new Error(`squid.conf has no ${name}`);
  return last.split(/\s+/).slice(1);
}

/** "5 seconds" -> 5; only the units squid.conf uses here. */
function seconds([value, unit]: string[]): number {
  const scale = { second: 1, seconds: 1, minute: 60, minutes: 60 }[unit ?? 'seconds'];
  if (scale === undefined) throw new Error(`unexpected time unit ${unit}`);
  return Number(value) * scale;
}

/** Kubernetes memory quantity in bytes: 512Mi, 1Gi, 500M. */
function bytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  if (!match) throw new Error(`unexpected quantity ${quantity}`);
  const scale = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * scale;
}

const container = (deployment: K8sObject, name: string) =>
  deployment.spec.template.spec.containers.find((c: K8sObject) => c.name === name);

describe.each(POOLS)('%s (kubectl kustomize k8s)', (pool) => {
  const deployment = pick(objects, 'Deployment', pool);
  const podLabels = deployment.spec.template.metadata.labels;
  const pod = deployment.spec.template.spec;

  it('has a PodDisruptionBudget that keeps all but one of its pods through a drain', () => {
    const budgets = objects.filter(
      (o) => o.kind === 'PodDisruptionBudget' && selects(o.spec.selector.matchLabels, podLabels),
    );
    expect(budgets.map(where)).toEqual([`PodDisruptionBudget/${pool}`]);
    const [budget] = budgets;
    // Only this pool's pods: a budget across both pools would let a drain take one whole pool.
    for (const other of POOLS.filter((p) => p !== pool)) {
      const otherLabels = pick(objects, 'Deployment', other).spec.template.metadata.labels;
      expect(selects(budget.spec.selector.matchLabels, otherLabels), other).toBe(false);
    }
    expect(budget.spec.maxUnavailable).toBe(1);
    expect(deployment.spec.replicas).toBeGreaterThan(budget.spec.maxUnavailable);
    expect(budget.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
  });

  it("drains before Squid stops, within a grace period that also covers Squid's shutdown_lifetime", () => {
    const drain = container(deployment, 'squid').lifecycle?.preStop?.sleep?.seconds;
    expect(drain).toBeGreaterThanOrEqual(5);
    // The sidecar keeps answering /readyz and /metrics through the drain.
    expect(container(deployment, 'sidecar').lifecycle?.preStop?.sleep?.seconds).toBe(drain);
    const shutdown = seconds(directive('shutdown_lifetime'));
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drain + shutdown + 5);
  });

  it("sizes max_filedescriptors to the squid container's memory limit", () => {
    // Measured with Squid 5.7 (squid.conf's comment): a transaction holds 2 descriptors and up to
    // ~90 KB when its client stops reading a tunnel; Squid at rest ~30 MB plus cache_mem.
    const fds = Number(directive('max_filedescriptors')[0]);
    const cacheMem = Number(directive('cache_mem')[0]) * 2 ** 20;
    const need = (fds / 2) * 90 * 1024 + 30 * 2 ** 20 + cacheMem;
    const limit = bytes(container(deployment, 'squid').resources.limits.memory);
    expect(need).toBeLessThanOrEqual(limit);
    // And not so low that an ordinary pod runs out (1024 is a common soft limit).
    expect(fds).toBeGreaterThan(1024);
  });

  it('runs at a PriorityClass the install creates, above the default and below the system classes', () => {
    const name = pod.priorityClassName;
    const priority = objects.find((o) => o.kind === 'PriorityClass' && o.metadata.name === name);
    expect(priority, `PriorityClass ${name}`).toBeDefined();
    expect(priority.value).toBeGreaterThan(0);
    expect(priority.value).toBeLessThanOrEqual(1_000_000_000);
    expect(priority.globalDefault).toBe(false);
  });

  it('runs a Squid image pinned by digest, its version in the pod labels', () => {
    const image: string = container(deployment, 'squid').image;
    expect(image).toMatch(/:[\w.-]+@sha256:[0-9a-f]{64}$/);
    const tag = /:([\w.-]+)@/.exec(image)?.[1] ?? '';
    expect(tag.startsWith(`${podLabels['app.kubernetes.io/version']}.`), tag).toBe(true);
  });
});

describe('NetworkPolicy for the Squid pods', () => {
  const squidPods = POOLS.map((p) => pick(objects, 'Deployment', p));
  const policies = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      squidPods.some((d) => selects(o.spec.podSelector.matchLabels, d.spec.template.metadata.labels)),
  );
  const [policy] = policies;

  it('one policy selects the pods of both pools, for ingress', () => {
    expect(policies.map(where)).toEqual(['NetworkPolicy/squid']);
    for (const d of squidPods)
      expect(selects(policy.spec.podSelector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
  });

  it("lets in 3128 only from the listed namespaces and the DNS server's probes, and the sidecar's port from monitoring and the DNS pods", () => {
    const byPort = new Map<number, K8sObject[]>();
    for (const rule of policy.spec.ingress) {
      for (const port of rule.ports) {
        expect(port.protocol).toBe('TCP');
        byPort.set(port.port, rule.from);
      }
    }
    expect([...byPort.keys()].sort()).toEqual([3128, 8081]);
    const squidPorts = container(squidPods[0], 'squid').ports.map((p: K8sObject) => p.containerPort);
    const sidecarPorts = container(squidPods[0], 'sidecar').ports.map((p: K8sObject) => p.containerPort);
    expect(squidPorts).toContain(3128);
    expect(sidecarPorts).toContain(8081);

    const proxyFrom = byPort.get(3128) ?? [];
    // The operator's list: namespaces carrying one label, no namespace by default.
    expect(proxyFrom).toContainEqual({
      namespaceSelector: { matchLabels: { 'egress-failover.io/proxy-client': 'true' } },
    });
    // The DNS server's pods, in this namespace (a bare podSelector), probe each pool through 3128.
    const dnsLabels = pick(objects, 'Deployment', 'egress-dns').spec.template.metadata.labels;
    const dnsPeer = proxyFrom.find((peer: K8sObject) => peer.podSelector && !peer.namespaceSelector);
    expect(selects(dnsPeer?.podSelector.matchLabels, dnsLabels)).toBe(true);
    expect(proxyFrom).toHaveLength(2);
    // Nothing opens 3128 to every namespace.
    for (const peer of proxyFrom) expect(peer.namespaceSelector).not.toEqual({});

    // The sidecar's port: Prometheus's namespace (labelled as for the DNS pods' HTTP port) and the
    // DNS pods (a pool with `sidecars`); never every namespace, whose floods compete with the kubelet.
    const sidecarFrom = byPort.get(8081) ?? [];
    expect(sidecarFrom).toContainEqual({
      namespaceSelector: { matchLabels: { 'egress-failover.io/monitoring': 'true' } },
    });
    const dnsSidecarPeer = sidecarFrom.find((peer: K8sObject) => peer.podSelector && !peer.namespaceSelector);
    expect(selects(dnsSidecarPeer?.podSelector.matchLabels, dnsLabels)).toBe(true);
    expect(sidecarFrom).toHaveLength(2);
  });
});
