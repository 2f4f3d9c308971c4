// The health -> DNS adapter: when a publication makes a new zone view, and how its SOA serial moves.
import { describe, expect, it } from 'vitest';
import { nextZoneView } from '../../src/commands/dns/zone-view-of.js';
import { type DnsConfig, dnsConfigSchema } from '../../src/config/schema.js';
import { NO_FLAPS } from '../../src/health/damping.js';
import type { HealthSnapshot, PoolSnapshot, ServiceSnapshot } from '../../src/health/snapshot.js';

const T = Date.UTC(2026, 10, 25, 10);
const NOW = Math.floor(T / 1000);

function config(dns: { zone?: string; nameserver?: string; ttl?: number } = {}): DnsConfig {
  return dnsConfigSchema.parse({
    dns,
    probe: { targets: ['http://origin.test/'] },
    services: [
      { name: 'proxy', pools: [{ name: 'primary', proxy: 'http://10.0.0.1:3128' }] },
      { name: 'other', pools: [{ name: 'primary', proxy: 'http://10.0.0.9:3128' }] },
    ],
  });
}

function pool(name: string, addresses: readonly string[], reason = 'ok'): PoolSnapshot {
  return {
    name,
    proxy: `http://${name}:3128`,
    addresses,
    addressSource: 'config',
    resolveError: undefined,
    state: 'healthy',
    since: T,
    inTransition: false,
    passes: 2,
    failures: 0,
    lastRound: { ok: true, reason, latencyMs: 5, at: T },
    lastFailure: undefined,
    lastTransition: undefined,
    transitions: 1,
    flaps: NO_FLAPS,
  };
}

/** A service answered with `addresses` (undefined: no verdict yet); `reason` shows only in _status. */
function service(name: string, addresses: readonly string[] | undefined, reason = 'ok'): ServiceSnapshot {
  const p = pool('primary', addresses ?? [], reason);
  return {
    name,
    onAllDown: 'servfail',
    pools: [p],
    selection: {
      ready: addresses !== undefined,
      mode: addresses === undefined ? 'pending' : 'healthy',
      selected: addresses === undefined ? undefined : 'primary',
      addresses: addresses ?? [],
      since: T,
      lastHealthy: undefined,
    },
  };
}

function snapshot(...services: ServiceSnapshot[]): HealthSnapshot {
  return { at: T, ready: true, services };
}

describe('nextZoneView', () => {
  const cfg = config();

  it('builds the first view from the snapshot and the config, its serial from the clock', () => {
    const view = nextZoneView(
      undefined,
      cfg,
      snapshot(service('proxy', ['10.0.0.1']), service('other', undefined)),
      NOW,
    );
    expect(view.serial).toBe(NOW);
    expect(view).toMatchObject({ zone: cfg.dns.zone, nameserver: cfg.dns.nameserver, ttl: cfg.dns.ttl });
    expect(view.services.get('proxy')?.addresses).toEqual({ a: ['10.0.0.1'], aaaa: [] });
    expect(view.services.get('proxy')?.status[0]).toMatch(/^pool=primary state=healthy selected=yes /);
    // No verdict yet: SERVFAIL, not an empty answer.
    expect(view.services.get('other')?.addresses).toBeUndefined();
  });

  it("splits a dual-stack selection by family once, each family in the selection's order", () => {
    const selected = ['10.0.0.2', 'fd00::2', '10.0.0.1', '::ffff:10.0.0.3', 'fd00::1'];
    const view = nextZoneView(undefined, cfg, snapshot(service('proxy', selected)), NOW);
    expect(view.services.get('proxy')?.addresses).toEqual({
      a: ['10.0.0.2', '10.0.0.1'],
      // IPv4-mapped is IPv6 (node:net's isIPv6 says so): served as AAAA, as before the split.
      aaaa: ['fd00::2', '::ffff:10.0.0.3', 'fd00::1'],
    });
  });

  it('answers an empty selection of a ready service with SERVFAIL too', () => {
    const view = nextZoneView(undefined, cfg, snapshot(service('proxy', [])), NOW);
    expect(view.services.get('proxy')?.addresses).toBeUndefined();
  });

  // Each row: what changes between two publications -> new view?, serial moved?
  const cases: {
    name: string;
    before: ServiceSnapshot[];
    after: ServiceSnapshot[];
    config?: DnsConfig;
    newView: boolean;
    bumped: boolean;
  }[] = [
    {
      name: 'equal snapshots (new objects): the same view object',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.1'])],
      newView: false,
      bumped: false,
    },
    {
      name: 'only a _status reason changes: a new view, the serial kept',
      before: [service('proxy', ['10.0.0.1'], 'ok')],
      after: [service('proxy', ['10.0.0.1'], 'ok latency')],
      newView: true,
      bumped: false,
    },
    {
      name: 'an address changes: the serial moves',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.2'])],
      newView: true,
      bumped: true,
    },
    {
      name: 'only the IPv6 address changes: the serial moves',
      before: [service('proxy', ['10.0.0.1', 'fd00::1'])],
      after: [service('proxy', ['10.0.0.1', 'fd00::2'])],
      newView: true,
      bumped: true,
    },
    {
      name: 'the same addresses, the families interleaved differently: no answer changes, the same view',
      before: [service('proxy', ['10.0.0.1', 'fd00::1'])],
      after: [service('proxy', ['fd00::1', '10.0.0.1'])],
      newView: false,
      bumped: false,
    },
    {
      name: 'a service gets its first verdict: the serial moves',
      before: [service('proxy', undefined)],
      after: [service('proxy', ['10.0.0.1'])],
      newView: true,
      bumped: true,
    },
    {
      name: 'a reload adds a service: the serial moves',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.1']), service('other', ['10.0.0.9'])],
      newView: true,
      bumped: true,
    },
    {
      name: 'a reload removes a service: the serial moves',
      before: [service('proxy', ['10.0.0.1']), service('other', ['10.0.0.9'])],
      after: [service('proxy', ['10.0.0.1'])],
      newView: true,
      bumped: true,
    },
    {
      name: 'a reload changes only the ttl: a new view, the serial moves',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.1'])],
      config: config({ ttl: 30 }),
      newView: true,
      bumped: true,
    },
    {
      name: 'a reload changes only the zone: a new view, the serial moves',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.1'])],
      config: config({ zone: 'other.svc', nameserver: 'ns.other.svc' }),
      newView: true,
      bumped: true,
    },
    {
      name: 'a reload changes only the nameserver: a new view, the serial moves',
      before: [service('proxy', ['10.0.0.1'])],
      after: [service('proxy', ['10.0.0.1'])],
      config: config({ nameserver: 'ns2.egress.svc' }),
      newView: true,
      bumped: true,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const first = nextZoneView(undefined, cfg, snapshot(...c.before), NOW);
      const next = nextZoneView(first, c.config ?? cfg, snapshot(...c.after), NOW + 60);
      expect(next === first).toBe(!c.newView);
      expect(next.serial).toBe(c.bumped ? NOW + 60 : NOW);
      const wanted = (c.config ?? cfg).dns;
      expect(next).toMatchObject({ zone: wanted.zone, nameserver: wanted.nameserver, ttl: wanted.ttl });
    });
  }

  it('never moves the serial backwards: a clock behind the serial still gets serial + 1', () => {
    const first = nextZoneView(undefined, cfg, snapshot(service('proxy', ['10.0.0.1'])), NOW);
    // Two changes in the same second, then one with the clock stepped back an hour.
    const second = nextZoneView(first, cfg, snapshot(service('proxy', ['10.0.0.2'])), NOW);
    const third = nextZoneView(second, cfg, snapshot(service('proxy', ['10.0.0.3'])), NOW);
    const fourth = nextZoneView(third, cfg, snapshot(service('proxy', ['10.0.0.1'])), NOW - 3600);
    expect([first, second, third, fourth].map((v) => v.serial)).toEqual([NOW, NOW + 1, NOW + 2, NOW + 3]);
  });

  it('derives a service view once per ServiceSnapshot object: an unchanged service is reused', () => {
    const proxy = service('proxy', ['10.0.0.1']);
    const first = nextZoneView(undefined, cfg, snapshot(proxy, service('other', ['10.0.0.9'])), NOW);
    const second = nextZoneView(first, cfg, snapshot(proxy, service('other', ['10.0.0.8'])), NOW + 1);
    expect(second).not.toBe(first);
    expect(second.services.get('proxy')).toBe(first.services.get('proxy'));
    expect(second.services.get('other')).not.toBe(first.services.get('other'));
    // Another config reuses it too: the service view holds nothing of the config.
    const third = nextZoneView(second, config({ ttl: 30 }), snapshot(proxy), NOW + 2);
    expect(third.services.get('proxy')).toBe(first.services.get('proxy'));
  });
});
