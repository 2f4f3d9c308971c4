// k8s/squid-pods-services.yaml, rendered with the base: one headless Service per pool naming every
// pod of that pool and no other, unready ones included, on the port the sidecar listens on; and the
// NetworkPolicy lets the DNS pods reach it. What the `sidecars` pool option relies on in a cluster.
import { describe, expect, it } from 'vitest';
import { BASE, pick, render, selects } from '../helpers/kustomize.js';

describe('the pods Services (k8s/squid-pods-services.yaml)', () => {
  const objects = render(BASE);

  it.each(['squid-primary', 'squid-secondary'])(
    '%s-pods: headless, unready pods published, only that pool',
    (pool) => {
      const service = pick(objects, 'Service', `${pool}-pods`);
      expect(service, `Service ${pool}-pods in the base`).toBeDefined();
      expect(service.spec.clusterIP).toBe('None');
      expect(service.spec.publishNotReadyAddresses).toBe(true);
      const deployments = objects.filter((o) => o.kind === 'Deployment');
      const selected = deployments.filter((d) =>
        selects(service.spec.selector, d.spec.template.metadata.labels),
      );
      expect(selected.map((d) => d.metadata.name)).toEqual([pool]);
      // The port named in the Service is the sidecar's container port, 8081, as the `sidecars` url says.
      const [port] = service.spec.ports;
      expect(port.port).toBe(8081);
      const containerPorts = selected[0].spec.template.spec.containers.flatMap(
        (c: { ports?: { name: string; containerPort: number }[] }) => c.ports ?? [],
      );
      expect(containerPorts.find((p: { name: string }) => p.name === port.targetPort)?.containerPort).toBe(
        8081,
      );
    },
  );

  it('lets the DNS pods reach port 8081 of the Squid pods', () => {
    const policies = objects.filter(
      (o) =>
        o.kind === 'NetworkPolicy' &&
        selects(o.spec.podSelector?.matchLabels, {
          'app.kubernetes.io/name': 'squid',
          'app.kubernetes.io/instance': 'squid-primary',
        }),
    );
    const dnsLabels = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'egress-dns')?.spec
      .template.metadata.labels;
    const open = policies.some((policy) =>
      (policy.spec.ingress ?? []).some(
        (rule: {
          from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown }[];
          ports?: { port: number }[];
        }) =>
          rule.ports?.some((p) => p.port === 8081) &&
          (rule.from ?? []).some(
            (peer) =>
              peer.podSelector !== undefined &&
              !peer.namespaceSelector &&
              selects(peer.podSelector.matchLabels, dnsLabels),
          ),
      ),
    );
    expect(open, 'an ingress rule for 8081 from the DNS pods').toBe(true);
  });
});
