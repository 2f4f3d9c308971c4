// The config contract of ../shared/SPEC.md as zod schemas. This is the only place defaults live.
// Files use the SPEC's keys ("interval: 2s"); the parsed, frozen result uses milliseconds with the
// unit in the name (intervalMs) so no later code has to remember which numbers are durations.
import { isIP } from 'node:net';
import { z } from 'zod';
import { redactUrl } from '../redact.js';
import { formatDuration, parseDuration } from './duration.js';

export type OnAllDown = 'servfail' | 'last' | 'all';
export type LivenessMode = 'deep' | 'attributed' | 'shallow';

/** Inclusive status range, e.g. 200-399. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** What one deep check needs, with every default filled in. */
export interface ProbeSettings {
  readonly targets: readonly string[];
  readonly quorum: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly fastIntervalMs: number;
  readonly expectStatus: readonly StatusRange[];
}

export interface PoolConfig {
  readonly name: string;
  /** Proxy URL as written, credentials included: never log it unredacted. */
  readonly proxy: string;
  /** Addresses to answer with; undefined: resolve the proxy host and serve its addresses. */
  readonly addresses: readonly string[] | undefined;
  readonly probe: ProbeSettings;
}

export interface ServiceConfig {
  readonly name: string;
  readonly onAllDown: OnAllDown;
  readonly pools: readonly PoolConfig[];
}

export interface DnsConfig {
  readonly dns: {
    readonly zone: string;
    readonly listen: ListenAddress;
    readonly ttl: number;
    readonly nameserver: string;
  };
  readonly http: { readonly listen: ListenAddress };
  readonly services: readonly ServiceConfig[];
}

export interface SidecarConfig {
  readonly listen: ListenAddress;
  readonly proxy: string;
  readonly probe: ProbeSettings;
  readonly liveness: LivenessMode;
}

// ---- building blocks --------------------------------------------------------------------------

const duration = z
  .string({ error: (issue) => `${JSON.stringify(issue.input)} is not a duration (use e.g. 500ms, 2s, 1m)` })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (use e.g. 500ms, 2s, 1m)` });
      return z.NEVER;
    }
    if (ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must be longer than zero` });
      return z.NEVER;
    }
    return ms;
  });

const positiveInt = z.number().int().min(1);

const LISTEN_HINT = 'is not an IP:port listen address (e.g. 0.0.0.0:5353 or [::]:5353)';
const listenAddress = z
  .string({ error: (issue) => `${JSON.stringify(issue.input)} ${LISTEN_HINT}` })
  .transform((text, ctx): ListenAddress => {
    // host:port, or [v6]:port
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
    const host = match?.[1] ?? match?.[2];
    const port = Number(match?.[3]);
    if (!match || !host || !isIP(host) || port > 65535) {
      ctx.addIssue({
        code: 'custom',
        message: `"${text}" ${LISTEN_HINT}`,
      });
      return z.NEVER;
    }
    return { host, port };
  });

const statusRanges = z
  .union([z.string(), z.number()], { error: 'expected a status list such as 200-399 or 200,204' })
  .transform((value, ctx): StatusRange[] => {
    const ranges: StatusRange[] = [];
    for (const part of String(value).split(',')) {
      const match = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(part);
      const min = Number(match?.[1]);
      const max = Number(match?.[2] ?? match?.[1]);
      if (!match || min < 100 || max > 599 || min > max) {
        ctx.addIssue({
          code: 'custom',
          message: `"${value}" is not a status list (e.g. 200-399 or 200,204)`,
        });
        return z.NEVER;
      }
      ranges.push({ min, max });
    }
    return ranges;
  });

// A URL that fails to parse may still carry a password; messages go to stderr and logs.
const withoutUserinfo = redactUrl;

const httpUrl = (what: string) =>
  z.string().refine(
    (text) => {
      try {
        const url = new URL(text);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
      } catch {
        return false;
      }
    },
    {
      error: (issue) =>
        typeof issue.input === 'string'
          ? `"${withoutUserinfo(issue.input)}" is not an http:// or https:// ${what} URL`
          : `expected an http:// or https:// ${what} URL`,
    },
  );

const dnsLabel = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'must be a DNS label (letters, digits, hyphens)')
  .transform((label) => label.toLowerCase());

const dnsName = z
  .string()
  .transform((name) => name.toLowerCase().replace(/\.$/, ''))
  .refine(
    (name) =>
      name.length > 0 &&
      name.length <= 253 &&
      name.split('.').every((label) => /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/.test(label)),
    'must be a domain name such as egress.svc',
  );

const ipAddress = z.string().refine((text) => isIP(text) !== 0, {
  error: (issue) => `${JSON.stringify(issue.input)} is not an IPv4 or IPv6 address`,
});

// Every key optional: the same shape serves the probe block and per-pool overrides.
const probeFields = {
  targets: z.array(httpUrl('target')).min(1, 'needs at least one target').optional(),
  quorum: positiveInt.optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  rise: positiveInt.optional(),
  fall: positiveInt.optional(),
  fastInterval: duration.optional(),
  expectStatus: statusRanges.optional(),
};
const probeOverrides = z.strictObject(probeFields);
type ProbeOverrides = z.output<typeof probeOverrides>;

const PROBE_DEFAULTS = {
  quorum: 1,
  interval: 2_000,
  timeout: 1_000,
  rise: 2,
  fall: 2,
  fastInterval: 200,
  expectStatus: [{ min: 200, max: 399 }],
} as const;

const SIDECAR_DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8081 },
  proxy: 'http://127.0.0.1:3128',
  quorum: 1,
  interval: 5_000,
  timeout: 3_000,
  rise: 1,
  fall: 3,
  expectStatus: [{ min: 200, max: 399 }],
  liveness: 'deep',
} as const;

type Path = (string | number)[];
type Issue = { path: Path; message: string };

/** One block of probe keys and where it sits in the file, for messages. */
interface ProbeLayer {
  readonly values: ProbeOverrides;
  readonly path: Path;
}

/**
 * Merges layers (later ones win) onto defaults and reports what is missing or inconsistent.
 * Each issue is reported in the deepest layer that set one of the keys involved: that is where
 * the operator made the combination, and a shared block's mistake is not blamed on a pool that
 * only changed, say, rise.
 */
function resolveProbe(
  layers: readonly ProbeLayer[],
  defaults: Omit<ProbeSettings, 'targets'>,
  missingTargets: Issue,
  issues: Issue[],
): ProbeSettings {
  const pick = <K extends keyof ProbeOverrides>(key: K) =>
    layers.reduce<ProbeOverrides[K]>((found, layer) => layer.values[key] ?? found, undefined);
  const setIn = (key: keyof ProbeOverrides) =>
    layers.findLastIndex((layer) => layer.values[key] !== undefined);
  const blame = (first: keyof ProbeOverrides, second: keyof ProbeOverrides): Path => {
    const a = setIn(first);
    const b = setIn(second);
    const layer = layers[Math.max(a, b, 0)] as ProbeLayer;
    return [...layer.path, a >= b ? first : second];
  };
  const targets = pick('targets') ?? [];
  const settings: ProbeSettings = {
    targets,
    quorum: pick('quorum') ?? defaults.quorum,
    intervalMs: pick('interval') ?? defaults.intervalMs,
    timeoutMs: pick('timeout') ?? defaults.timeoutMs,
    rise: pick('rise') ?? defaults.rise,
    fall: pick('fall') ?? defaults.fall,
    fastIntervalMs: pick('fastInterval') ?? defaults.fastIntervalMs,
    expectStatus: pick('expectStatus') ?? defaults.expectStatus,
  };
  if (targets.length === 0) {
    issues.push(missingTargets);
  } else if (settings.quorum > targets.length) {
    issues.push({
      path: blame('quorum', 'targets'),
      message: `quorum ${settings.quorum} is more than the ${targets.length} target(s)`,
    });
  }
  // Equal is allowed, as Prometheus allows scrape_timeout == scrape_interval: rounds never overlap
  // (the next starts `interval` after the last one ended), and the SPEC's own example sets a pool's
  // interval to 1s under the default 1s timeout. Longer is refused: a verdict would then describe
  // a round that outlived the period it reports on.
  if (settings.timeoutMs > settings.intervalMs) {
    issues.push({
      path: blame('timeout', 'interval'),
      message: `timeout (${formatDuration(settings.timeoutMs)}) must not be longer than interval (${formatDuration(settings.intervalMs)})`,
    });
  }
  return settings;
}

function flagDuplicates(names: string[], where: Path, what: string, issues: Issue[]): void {
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (seen.has(name))
      issues.push({ path: [...where, index, 'name'], message: `duplicate ${what} "${name}"` });
    seen.add(name);
  });
}

function report(ctx: z.RefinementCtx, issues: Issue[]): void {
  for (const issue of issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

// ---- the DNS server's config --------------------------------------------------------------------

const poolSchema = z.strictObject({
  name: dnsLabel,
  proxy: httpUrl('proxy'),
  address: z
    .union([ipAddress, z.array(ipAddress).min(1, 'needs at least one address')], {
      error: 'expected an IP address or a list of them',
    })
    .optional(),
  probe: probeOverrides.optional(),
});

const serviceSchema = z.strictObject({
  name: dnsLabel.refine((name) => name !== '_status', 'is reserved'),
  onAllDown: z.enum(['servfail', 'last', 'all']).default('servfail'),
  pools: z.array(poolSchema).min(1, 'needs at least one pool'),
});

export const dnsConfigSchema = z
  .strictObject({
    dns: z
      .strictObject({
        zone: dnsName.default('egress.svc'),
        listen: listenAddress.prefault('0.0.0.0:5353'),
        ttl: z.number().int().min(0).max(86_400).default(5),
        nameserver: dnsName.optional(),
      })
      .prefault({}),
    http: z.strictObject({ listen: listenAddress.prefault('0.0.0.0:8080') }).prefault({}),
    probe: probeOverrides.prefault({}),
    services: z.array(serviceSchema).min(1, 'needs at least one service'),
  })
  .transform((raw, ctx): DnsConfig => {
    const issues: Issue[] = [];
    const defaults = {
      quorum: PROBE_DEFAULTS.quorum,
      intervalMs: PROBE_DEFAULTS.interval,
      timeoutMs: PROBE_DEFAULTS.timeout,
      rise: PROBE_DEFAULTS.rise,
      fall: PROBE_DEFAULTS.fall,
      fastIntervalMs: PROBE_DEFAULTS.fastInterval,
      expectStatus: PROBE_DEFAULTS.expectStatus,
    };
    flagDuplicates(
      raw.services.map((s) => s.name),
      ['services'],
      'service name',
      issues,
    );
    // Where no pool lists its own targets, the operator meant the shared block: one line there.
    // Where some do, the ones that do not are named, since those are the pools to fix.
    const perPoolTargets = raw.services.some((service) => service.pools.some((pool) => pool.probe?.targets));
    const services = raw.services.map((service, s) => {
      flagDuplicates(
        service.pools.map((p) => p.name),
        ['services', s, 'pools'],
        'pool name',
        issues,
      );
      return {
        name: service.name,
        onAllDown: service.onAllDown,
        pools: service.pools.map((pool, p): PoolConfig => {
          const poolProbe: Path = ['services', s, 'pools', p, 'probe'];
          const missingTargets: Issue = perPoolTargets
            ? {
                path: [...poolProbe, 'targets'],
                message: 'required (this pool lists no targets and the top-level probe block has none)',
              }
            : {
                path: ['probe', 'targets'],
                message: "required (list the outside URLs that prove egress, here or in every pool's probe)",
              };
          return {
            name: pool.name,
            proxy: pool.proxy,
            addresses: pool.address === undefined ? undefined : [pool.address].flat(),
            probe: resolveProbe(
              [
                { values: raw.probe, path: ['probe'] },
                { values: pool.probe ?? {}, path: poolProbe },
              ],
              defaults,
              missingTargets,
              issues,
            ),
          };
        }),
      };
    });
    // An error in the shared probe block would otherwise repeat once per pool that inherits it.
    const unique = issues.filter(
      (issue, i) =>
        issues.findIndex((o) => o.message === issue.message && o.path.join('.') === issue.path.join('.')) ===
        i,
    );
    report(ctx, unique);
    return deepFreeze({
      dns: {
        zone: raw.dns.zone,
        listen: raw.dns.listen,
        ttl: raw.dns.ttl,
        nameserver: raw.dns.nameserver ?? `ns.${raw.dns.zone}`,
      },
      http: { listen: raw.http.listen },
      services,
    });
  });

// ---- the sidecar's config -----------------------------------------------------------------------

export const sidecarConfigSchema = z
  .strictObject({
    sidecar: z.strictObject({
      listen: listenAddress.optional(),
      proxy: httpUrl('proxy').default(SIDECAR_DEFAULTS.proxy),
      ...probeFields,
      liveness: z.enum(['deep', 'attributed', 'shallow']).default(SIDECAR_DEFAULTS.liveness),
    }),
  })
  .transform((raw, ctx): SidecarConfig => {
    const issues: Issue[] = [];
    const { listen, proxy, liveness, ...overrides } = raw.sidecar;
    const probe = resolveProbe(
      [{ values: overrides, path: ['sidecar'] }],
      {
        quorum: SIDECAR_DEFAULTS.quorum,
        intervalMs: SIDECAR_DEFAULTS.interval,
        timeoutMs: SIDECAR_DEFAULTS.timeout,
        rise: SIDECAR_DEFAULTS.rise,
        fall: SIDECAR_DEFAULTS.fall,
        // Not in the SPEC's sidecar block: kubelet polls at its own period, so a quick re-check
        // mostly buys a faster /readyz. Half a second keeps a hung proxy from being hammered.
        fastIntervalMs: 500,
        expectStatus: SIDECAR_DEFAULTS.expectStatus,
      },
      { path: ['sidecar', 'targets'], message: 'required (list the outside URLs that prove egress)' },
      issues,
    );
    report(ctx, issues);
    return deepFreeze({ listen: listen ?? SIDECAR_DEFAULTS.listen, proxy, probe, liveness });
  });
