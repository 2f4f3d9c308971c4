// The `dns` command's metrics, read back as Prometheus text: the series an operator alerts on.
import { describe, expect, it } from 'vitest';
import { createDnsMetrics } from '../../src/commands/dns/metrics.js';
import { NO_FLAPS } from '../../src/health/damping.js';
import type { HealthSnapshot } from '../../src/health/snapshot.js';

const T = Date.UTC(2026, 10, 25, 10);

function snapshot(selected: string | undefined, mode: 'healthy' | 'all-down-all'): HealthSnapshot {
  const pool = (name: string, state: 'healthy' | 'unhealthy') => ({
    name,
    proxy: `http://${name}:3128`,
    addresses: [name === 'primary' ? '10.0.0.1' : '10.0.0.2'],
    addressSource: 'config' as const,
    resolveError: undefined,
    state,
    since: T,
    inTransition: false,
    passes: 0,
    failures: 0,
    lastRound: undefined,
    lastFailure: undefined,
    lastTransition: undefined,
    transitions: 1,
    flaps: NO_FLAPS,
  });
  return {
    at: T,
    ready: true,
    services: [
      {
        name: 'proxy',
        onAllDown: 'all',
        selection: {
          ready: true,
          mode,
          selected,
          addresses: ['10.0.0.2'],
          since: T,
          lastHealthy: undefined,
        },
        pools: [
          pool('primary', 'unhealthy'),
          pool('secondary', mode === 'healthy' ? 'healthy' : 'unhealthy'),
        ],
      },
    ],
  };
}

const lines = async (metrics: ReturnType<typeof createDnsMetrics>) =>
  (await metrics.registry.metrics()).split('\n').filter((l) => !l.startsWith('#') && l !== '');

describe('dns metrics', () => {
  it('count probe results and rounds per target and pool, with latency', async () => {
    const metrics = createDnsMetrics({ processMetrics: false });
    const targets = [
      { target: 'http://a/', ok: true, reason: 'ok', latencyMs: 12 },
      { target: 'http://b/', ok: false, reason: 'status=500', latencyMs: 30 },
    ];
    const result = { ok: true, reason: 'ok', targets, latencyMs: 31, at: T };
    metrics.onRound({ service: 'proxy', pool: 'primary', result, health: undefined as never });
    const text = await lines(metrics);
    expect(text).toContain(
      'egress_probe_results_total{service="proxy",pool="primary",target="http://a/",result="pass"} 1',
    );
    expect(text).toContain(
      'egress_probe_results_total{service="proxy",pool="primary",target="http://b/",result="fail"} 1',
    );
    expect(text).toContain('egress_probe_rounds_total{service="proxy",pool="primary",result="pass"} 1');
    expect(text).toContain(
      'egress_probe_duration_seconds_sum{service="proxy",pool="primary",target="http://b/"} 0.03',
    );
  });

  it('show pool state, the selected pool and readiness from the view in force; stale series go away', async () => {
    let view = snapshot('secondary', 'healthy');
    const metrics = createDnsMetrics({ processMetrics: false, snapshot: () => view });
    metrics.onTransition({
      service: 'proxy',
      pool: 'primary',
      transition: { from: 'healthy', to: 'unhealthy', reason: 'connection_refused', at: T },
    });
    let text = await lines(metrics);
    expect(text).toContain('egress_pool_state{service="proxy",pool="primary",state="unhealthy"} 1');
    expect(text).toContain('egress_pool_state{service="proxy",pool="primary",state="healthy"} 0');
    expect(text).toContain('egress_pool_selected{service="proxy",pool="secondary"} 1');
    expect(text).toContain('egress_pool_selected{service="proxy",pool="primary"} 0');
    // Priority order as configured, so an alert can tell "failed over" from "on the primary".
    expect(text).toContain('egress_pool_priority{service="proxy",pool="primary"} 1');
    expect(text).toContain('egress_pool_priority{service="proxy",pool="secondary"} 2');
    expect(text).toContain('egress_service_ready{service="proxy",mode="healthy"} 1');
    expect(text).toContain(
      'egress_pool_transitions_total{service="proxy",pool="primary",from="healthy",to="unhealthy"} 1',
    );
    // Transitions not made yet are there at 0, so increase() counts a pool's first fall.
    const transitionLines = text.filter((l) => l.startsWith('egress_pool_transitions_total{'));
    expect(transitionLines).toHaveLength(8);
    expect(text).toContain(
      'egress_pool_transitions_total{service="proxy",pool="secondary",from="healthy",to="unhealthy"} 0',
    );
    expect(text).toContain(
      'egress_pool_transitions_total{service="proxy",pool="primary",from="unknown",to="healthy"} 0',
    );

    view = snapshot(undefined, 'all-down-all');
    text = await lines(metrics);
    expect(text).toContain('egress_service_ready{service="proxy",mode="all-down-all"} 1');
    expect(text.some((l) => l.includes('mode="healthy"'))).toBe(false);
    expect(text).toContain('egress_pool_selected{service="proxy",pool="primary"} 1');
  });

  it('count DNS messages by transport, type and rcode, unnamed types folded into OTHER', async () => {
    const metrics = createDnsMetrics({ processMetrics: false });
    for (let i = 0; i < 3; i++)
      metrics.onDnsOutcome({ qtype: 1, rcode: 0, dropped: false, truncated: false }, 'udp');
    metrics.onDnsOutcome({ qtype: 99, rcode: 3, dropped: false, truncated: false }, 'tcp');
    metrics.onDnsOutcome({ qtype: undefined, rcode: undefined, dropped: true, truncated: false }, 'udp');
    const first = await lines(metrics);
    expect(first).toContain('egress_dns_queries_total{transport="udp",qtype="A",rcode="NOERROR"} 3');
    expect(first).toContain('egress_dns_queries_total{transport="tcp",qtype="OTHER",rcode="NXDOMAIN"} 1');
    expect(first).toContain('egress_dns_queries_total{transport="udp",qtype="NONE",rcode="DROPPED"} 1');
    // A second scrape shows running totals, not what came since the last one.
    metrics.onDnsOutcome({ qtype: 1, rcode: 0, dropped: false, truncated: false }, 'udp');
    expect(await lines(metrics)).toContain(
      'egress_dns_queries_total{transport="udp",qtype="A",rcode="NOERROR"} 4',
    );
  });

  it('count reloads by result, both from 0 so the first refused reload shows as a rise', async () => {
    const metrics = createDnsMetrics({ processMetrics: false });
    const before = await lines(metrics);
    expect(before).toContain('egress_config_reloads_total{result="ok"} 0');
    expect(before).toContain('egress_config_reloads_total{result="failed"} 0');
    metrics.onReload(true);
    metrics.onReload(false);
    metrics.onReload(false);
    const text = await lines(metrics);
    expect(text).toContain('egress_config_reloads_total{result="ok"} 1');
    expect(text).toContain('egress_config_reloads_total{result="failed"} 2');
  });

  it('count DNS-over-TCP connections shed by reason, every reason from 0', async () => {
    const metrics = createDnsMetrics({ processMetrics: false });
    const before = await lines(metrics);
    for (const reason of ['evicted', 'source_limit', 'message_deadline', 'idle_timeout'])
      expect(before).toContain(`egress_dns_tcp_shed_total{reason="${reason}"} 0`);
    metrics.onTcpShed('evicted');
    metrics.onTcpShed('evicted');
    expect(await lines(metrics)).toContain('egress_dns_tcp_shed_total{reason="evicted"} 2');
  });
});
