// The config of the README's "Configuration" as zod schemas, which fill in the defaults of defaults.ts.
// Files use the README's keys ("interval: 2s"); the parsed, frozen result uses milliseconds with the
// unit in the name (intervalMs) so no later code has to remember which numbers are durations.
//
// A file is judged in three steps, so that one run of check-config lists every error:
//   1. its kind: a DNS config handed to the sidecar (or the reverse) is said so, in one line;
//   2. every field on its own: types, ranges, URLs, unknown keys;
//   3. the cross-field checks (unique names, quorum <= targets, timeout <= interval, dns.listen
//      apart from http.listen) on every part that step 2 accepted. A check that would compare a
//      value step 2 refused is skipped: it would judge a value that is itself wrong.
import { isIP } from 'node:net';
import { z } from 'zod';
import { deepFreeze } from '../deep-freeze.js';
import { formatAddress, type ListenAddress } from '../listen-address.js';
import { redactUrl } from '../redact.js';
import { hasCredentials, isHttpUrl } from '../url.js';
import {
  ADMIN_STATES,
  DEFAULT_HTTP_LISTEN,
  DNS_DEFAULTS,
  PROBE_DEFAULTS,
  type ProbeDefaults,
  SIDECAR_DEFAULTS,
} from './defaults.js';
import { formatDuration, MAX_DURATION_MS, parseDuration } from './duration.js';

export type OnAllDown = 'servfail' | 'last' | 'all';
export type LivenessMode = 'deep' | 'attributed' | 'shallow';
export type ReadinessMode = 'deep' | 'attributed';
/** An operator's control over a pool (README, "Operator controls"): drain, down or up. */
export type AdminState = 'drain' | 'down' | 'up';

/** A pool's `admin` block: what the operator set, why, and until when (epoch ms; undefined: no end). */
export interface AdminControl {
  readonly state: AdminState;
  readonly reason: string;
  readonly until: number | undefined;
}

/** Inclusive status range, e.g. 200-399. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

export type { ListenAddress } from '../listen-address.js';

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
  /** More state changes than this within flapWindowMs holds the pool down (0: no damping). */
  readonly flapThreshold: number;
  readonly flapWindowMs: number;
  /** The first hold-down of a flapping pool; each further flap doubles it, up to maxHoldDownMs. */
  readonly holdDownMs: number;
  readonly maxHoldDownMs: number;
}

export interface PoolConfig {
  readonly name: string;
  /** Proxy URL as written, credentials included: never log it unredacted. */
  readonly proxy: string;
  /** Addresses to answer with; undefined: resolve the proxy host and serve its addresses. */
  readonly addresses: readonly string[] | undefined;
  readonly probe: ProbeSettings;
  /** Not part of the pool's identity across reloads: changing it keeps the pool's health. */
  readonly admin?: AdminControl | undefined;
  /** Health read from the pool's pods (their sidecars' /readyz) instead of probes through the proxy. */
  readonly sidecars?: SidecarsSettings | undefined;
}

/** A pool's `sidecars` block: where its pods' sidecars answer, and how many must be ready. */
export interface SidecarsSettings {
  /** http://, no credentials; its host names every pod (a headless Service). */
  readonly url: string;
  readonly minReady: number;
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
  readonly readiness: ReadinessMode;
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
    if (ms > MAX_DURATION_MS) {
      ctx.addIssue({
        code: 'custom',
        message: `"${text}" is longer than the maximum of ${formatDuration(MAX_DURATION_MS)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

const positiveInt = z.number().int().min(1);

// RFC 3339 with its offset required (a time without one means a different moment on every
// machine); Date.parse alone would also take 2026-02-30 as 2 March.
const RFC3339_HINT = 'is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)';
const rfc3339 = z
  .string({ error: (issue) => `${JSON.stringify(issue.input)} ${RFC3339_HINT}` })
  .transform((text, ctx) => {
    const match = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(
      text,
    );
    const [year, month, day] = [match?.[1], match?.[2], match?.[3]].map(Number) as [number, number, number];
    const ms = match ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(ms) || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) {
      ctx.addIssue({ code: 'custom', message: `"${text}" ${RFC3339_HINT}` });
      return z.NEVER;
    }
    return ms;
  });

/** Long enough for a ticket number and a sentence; short enough for a _status TXT string. */
export const MAX_ADMIN_REASON = 100;
const adminSchema = z.strictObject({
  state: z.enum(ADMIN_STATES, { error: (issue) => (issue.input === undefined ? 'required' : undefined) }),
  reason: z
    .string()
    .trim()
    .min(1, 'must not be empty (say why, e.g. "node pool upgrade")')
    .max(MAX_ADMIN_REASON, `must be at most ${MAX_ADMIN_REASON} characters`),
  until: rfc3339.optional(),
});

// The sidecar serves plain HTTP on the pod network; its URL is shown in /status, so no credentials.
const SIDECARS_URL_HINT =
  'is not an http:// sidecar URL (e.g. http://squid-primary-pods.egress.svc.cluster.local:8081/readyz)';
const sidecarsSchema = z.strictObject({
  url: z
    .string({
      error: (issue) => (issue.input === undefined ? 'required' : `expected a URL ${SIDECARS_URL_HINT}`),
    })
    .refine(
      (text) => URL.canParse(text) && new URL(text).protocol === 'http:' && new URL(text).hostname !== '',
      {
        error: (issue) => `"${redactUrl(String(issue.input))}" ${SIDECARS_URL_HINT}`,
      },
    )
    .refine((text) => !hasCredentials(text), {
      error: (issue) =>
        `"${redactUrl(String(issue.input))}" carries credentials: the sidecar asks for none, and this URL is shown in /status`,
    }),
  minReady: positiveInt.default(1),
});

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

// "200-399" -> { min: 200, max: 399 }; "404" -> { min: 404, max: 404 }
function statusRange(text: string): StatusRange | undefined {
  const match = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(text);
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  return match && min >= 100 && max <= 599 && min <= max ? { min, max } : undefined;
}

// A text ("200-399", "200,204,300-399"), one status (404), or a YAML list of either ([200, 404],
// ["200-299", 404]): operators write all three, and each reads the same way.
const statusItem = z.union([z.string(), z.number()]);
const statusRanges = z
  .union([statusItem, z.array(statusItem).min(1, 'needs at least one status')], {
    error: 'expected a status list such as 200-399, 200,204 or [200, 404]',
  })
  .transform((value, ctx): StatusRange[] => {
    const ranges: StatusRange[] = [];
    let failed = false;
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, index) => {
      const parts = String(item).split(',').map(statusRange);
      if (parts.every((range) => range !== undefined)) {
        ranges.push(...parts);
        return;
      }
      failed = true;
      ctx.addIssue(
        Array.isArray(value)
          ? {
              code: 'custom',
              path: [index],
              message: `${JSON.stringify(item)} is not a status or a range (e.g. 404 or 200-399)`,
            }
          : { code: 'custom', message: `"${value}" is not a status list (e.g. 200-399 or 200,204)` },
      );
    });
    return failed ? z.NEVER : ranges;
  });

// A URL that fails to parse may still carry a password; messages go to stderr and logs.
const httpUrl = (what: string) =>
  z.string().refine(isHttpUrl, {
    error: (issue) =>
      typeof issue.input === 'string'
        ? `"${redactUrl(issue.input)}" is not an http:// or https:// ${what} URL`
        : `expected an http:// or https:// ${what} URL`,
  });

// A probe never sends a target's userinfo, and a target URL is shown everywhere (reasons in /status
// and _status TXT, metric labels, the sidecar's JSON): a password there would be published, not used.
// (An unparsable URL is httpUrl's error alone: hasCredentials is false for it.)
const targetUrl = httpUrl('target').refine((text) => !hasCredentials(text), {
  error: (issue) =>
    `"${redactUrl(String(issue.input))}" carries credentials: a target is fetched without them and shown in status and metrics, so it must not have any`,
});

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
  targets: z.array(targetUrl).min(1, 'needs at least one target').optional(),
  quorum: positiveInt.optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  rise: positiveInt.optional(),
  fall: positiveInt.optional(),
  fastInterval: duration.optional(),
  expectStatus: statusRanges.optional(),
  flapThreshold: z.number().int().min(0).optional(),
  flapWindow: duration.optional(),
  holdDown: duration.optional(),
  maxHoldDown: duration.optional(),
};
const probeOverrides = z.strictObject(probeFields);
type ProbeKey = keyof typeof probeFields;

// The defaults live in defaults.ts, which loads without zod (for --help and the commands' own
// process); the schema is their only user that fills them in.
export { DEFAULT_HTTP_LISTEN, DNS_DEFAULTS, PROBE_DEFAULTS, SIDECAR_DEFAULTS } from './defaults.js';

// ---- reading what step 2 accepted ---------------------------------------------------------------

type Path = (string | number)[];
type Issue = { path: Path; message: string };

/** Where a field check refused the value, or a part of it: cross-field checks that need it skip. */
const REFUSED = Symbol('refused');

/**
 * The document as step 2 left it: parsed values where fields passed, the input (or a zod marker)
 * where they failed, so every read of a value goes through `leaf`, which knows which is which.
 */
interface Parsed {
  /** The parsed value at `path`; undefined where the file leaves it out; REFUSED where it failed. */
  leaf(path: Path): unknown;
  /** The number of items of the list at `path` (0 where there is no list). */
  count(path: Path): number;
  /** Whether the file sets `path` at all, well or not. */
  has(path: Path): boolean;
}

const isMapping = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

const startsWith = (path: readonly PropertyKey[], prefix: readonly PropertyKey[]) =>
  prefix.length <= path.length && prefix.every((key, i) => path[i] === key);

function parsedView(root: unknown, issues: readonly { code?: string; path?: PropertyKey[] }[]): Parsed {
  // An unknown key is reported on its block, whose known keys are still good.
  const refused = issues
    .filter((issue) => issue.code !== 'unrecognized_keys')
    .map((issue) => issue.path ?? []);
  const walk = (path: Path): unknown => {
    let value = root;
    for (const key of path) {
      if (value === null || typeof value !== 'object') return undefined;
      value = (value as Record<string | number, unknown>)[key];
    }
    return value;
  };
  return {
    // Refused at the path or under it (a bad item of a list), or above it (a block that is not a mapping).
    leaf: (path) =>
      refused.some((at) => startsWith(at, path) || startsWith(path, at)) ? REFUSED : walk(path),
    count: (path) => {
      const value = walk(path);
      return Array.isArray(value) ? value.length : 0;
    },
    has: (path) => walk(path) !== undefined,
  };
}

// ---- cross-field checks ---------------------------------------------------------------------------

/** A probe key's setting at `layers`: from the last layer that sets it (layer -1: none does, the default). */
function settingAt(parsed: Parsed, layers: readonly Path[], key: ProbeKey) {
  for (let layer = layers.length - 1; layer >= 0; layer--) {
    const value = parsed.leaf([...(layers[layer] as Path), key]);
    if (value === REFUSED) return REFUSED;
    if (value !== undefined) return { value, layer };
  }
  return { value: undefined, layer: -1 };
}

/**
 * Merges the probe blocks at `layers` (later ones win) onto `defaults`. Only for a document
 * every field of which passed: the values are then the parsed ones.
 */
function resolveProbe(parsed: Parsed, layers: readonly Path[], defaults: ProbeDefaults): ProbeSettings {
  const pick = <T>(key: ProbeKey, fallback: T): T => {
    const found = settingAt(parsed, layers, key);
    return found === REFUSED || found.value === undefined ? fallback : (found.value as T);
  };
  return {
    targets: pick<readonly string[]>('targets', []),
    quorum: pick('quorum', defaults.quorum),
    intervalMs: pick('interval', defaults.intervalMs),
    timeoutMs: pick('timeout', defaults.timeoutMs),
    rise: pick('rise', defaults.rise),
    fall: pick('fall', defaults.fall),
    fastIntervalMs: pick('fastInterval', defaults.fastIntervalMs),
    expectStatus: pick('expectStatus', defaults.expectStatus),
    flapThreshold: pick('flapThreshold', defaults.flapThreshold),
    flapWindowMs: pick('flapWindow', defaults.flapWindowMs),
    holdDownMs: pick('holdDown', defaults.holdDownMs),
    maxHoldDownMs: pick('maxHoldDown', defaults.maxHoldDownMs),
  };
}

/**
 * What is missing or inconsistent in the probe settings that `layers` make. Each issue is reported
 * in the deepest layer that set one of the keys involved: that is where the operator made the
 * combination, and a shared block's mistake is not blamed on a pool that only changed, say, rise.
 */
function probeIssues(
  parsed: Parsed,
  layers: readonly Path[],
  defaults: ProbeDefaults,
  /** Undefined where the pool needs no targets (it reads its pods' sidecars). */
  missingTargets: Issue | undefined,
): Issue[] {
  const issues: Issue[] = [];
  const blame = (first: ProbeKey, a: { layer: number }, second: ProbeKey, b: { layer: number }): Path => [
    ...(layers[Math.max(a.layer, b.layer, 0)] as Path),
    a.layer >= b.layer ? first : second,
  ];
  const targets = settingAt(parsed, layers, 'targets');
  const quorum = settingAt(parsed, layers, 'quorum');
  if (targets !== REFUSED && targets.value === undefined) {
    if (missingTargets) issues.push(missingTargets);
  } else if (targets !== REFUSED && quorum !== REFUSED) {
    const count = (targets.value as readonly string[]).length;
    const wanted = (quorum.value as number | undefined) ?? defaults.quorum;
    if (wanted > count) {
      issues.push({
        path: blame('quorum', quorum, 'targets', targets),
        message: `quorum ${wanted} is more than the ${count} target(s)`,
      });
    }
  }
  // Equal is allowed, as Prometheus allows scrape_timeout == scrape_interval: rounds never overlap
  // (the next starts `interval` after the last one ended), and a pool's `interval: 1s` under the
  // default 1s timeout is a natural thing to write. Longer is refused: a verdict would then describe
  // a round that outlived the period it reports on.
  // `shorter` must not be longer than `longer`, each from its layer or the default.
  const notLonger = (shorter: 'timeout' | 'holdDown', longer: 'interval' | 'maxHoldDown') => {
    const a = settingAt(parsed, layers, shorter);
    const b = settingAt(parsed, layers, longer);
    if (a === REFUSED || b === REFUSED) return;
    const aMs = (a.value as number | undefined) ?? defaults[`${shorter}Ms`];
    const bMs = (b.value as number | undefined) ?? defaults[`${longer}Ms`];
    if (aMs > bMs) {
      issues.push({
        path: blame(shorter, a, longer, b),
        message: `${shorter} (${formatDuration(aMs)}) must not be longer than ${longer} (${formatDuration(bMs)})`,
      });
    }
  };
  notLonger('timeout', 'interval');
  // A first hold-down longer than the longest would make the maximum a lie.
  notLonger('holdDown', 'maxHoldDown');
  return issues;
}

/** Names (lowercased by the schema) that repeat, each reported at its second and later uses. */
function duplicates(parsed: Parsed, list: Path, what: string): Issue[] {
  const issues: Issue[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < parsed.count(list); index++) {
    const name = parsed.leaf([...list, index, 'name']);
    if (typeof name !== 'string') continue;
    if (seen.has(name))
      issues.push({ path: [...list, index, 'name'], message: `duplicate ${what} "${name}"` });
    seen.add(name);
  }
  return issues;
}

// An address as bind() sees it: IPv6 in its canonical form, an IPv4-mapped one as IPv4.
function bindHost(host: string): string {
  if (!host.includes(':')) return host;
  let canonical: string;
  try {
    canonical = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host; // a scope id (fe80::1%eth0): compared as written
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const high = Number.parseInt(mapped[1] as string, 16);
  const low = Number.parseInt(mapped[2] as string, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/**
 * Whether two TCP listeners would fight over a port (DNS serves TCP on dns.listen too). 0.0.0.0
 * takes the port on every IPv4 address; [::] on every address of both families, since Node leaves
 * IPv6 sockets dual-stack. Port 0 is a fresh free port each time: never a clash.
 */
function sameTcpPort(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const x = bindHost(a.host);
  const y = bindHost(b.host);
  if (x === y || x === '::' || y === '::') return true;
  return (x === '0.0.0.0' && isIP(y) === 4) || (y === '0.0.0.0' && isIP(x) === 4);
}

function dnsIssues(parsed: Parsed): Issue[] {
  const issues: Issue[] = [];
  const dnsListen = parsed.leaf(['dns', 'listen']);
  const httpListen = parsed.leaf(['http', 'listen']);
  // Without this, `dns` binds DNS first and then fails on http.listen with "address in use",
  // as if another server held the port.
  if (
    isMapping(dnsListen) &&
    isMapping(httpListen) &&
    sameTcpPort(dnsListen as unknown as ListenAddress, httpListen as unknown as ListenAddress)
  ) {
    issues.push({
      path: ['http', 'listen'],
      message: `${formatAddress(httpListen as unknown as ListenAddress)} clashes with dns.listen ${formatAddress(dnsListen as unknown as ListenAddress)} (the DNS server takes TCP on that port too); use another port`,
    });
  }
  issues.push(...duplicates(parsed, ['services'], 'service name'));
  // Where no pool lists its own targets, the operator meant the shared block: one line there.
  // Where some do, the ones that do not are named, since those are the pools to fix.
  const pools = (s: number) => parsed.count(['services', s, 'pools']);
  const services = parsed.count(['services']);
  let perPoolTargets = false;
  for (let s = 0; s < services; s++) {
    for (let p = 0; p < pools(s); p++) {
      perPoolTargets ||= parsed.has(['services', s, 'pools', p, 'probe', 'targets']);
    }
  }
  for (let s = 0; s < services; s++) {
    issues.push(...duplicates(parsed, ['services', s, 'pools'], 'pool name'));
    for (let p = 0; p < pools(s); p++) {
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
      // A pool with `sidecars` sends no probe of its own: its pods' sidecars fetch their targets.
      const needsTargets = !parsed.has(['services', s, 'pools', p, 'sidecars']);
      issues.push(
        ...probeIssues(
          parsed,
          [['probe'], poolProbe],
          PROBE_DEFAULTS,
          needsTargets ? missingTargets : undefined,
        ),
      );
    }
  }
  // An error in the shared probe block would otherwise repeat once per pool that inherits it.
  return issues.filter(
    (issue, i) =>
      issues.findIndex((o) => o.message === issue.message && o.path.join('.') === issue.path.join('.')) === i,
  );
}

function sidecarIssues(parsed: Parsed): Issue[] {
  return probeIssues(parsed, [['sidecar']], SIDECAR_DEFAULTS.probe, {
    path: ['sidecar', 'targets'],
    message: 'required (list the outside URLs that prove egress)',
  });
}

// ---- assembling the steps -------------------------------------------------------------------------

export type ConfigKind = 'dns' | 'sidecar';

/** A mapping with a top-level `sidecar` key is a sidecar config; anything else is read as a DNS server's. */
export function configKind(document: unknown): ConfigKind {
  return isMapping(document) && 'sidecar' in document ? 'sidecar' : 'dns';
}

const DNS_KEYS = ['dns', 'http', 'probe', 'services'];

/** Step 1: a file of the other kind gets one line that says so, instead of a list of unknown keys. */
function kindGuard(expected: ConfigKind) {
  return z.unknown().superRefine((document, ctx) => {
    if (!isMapping(document) || configKind(document) === expected) return;
    if (expected === 'dns') {
      ctx.addIssue({
        code: 'custom',
        message:
          'this is a sidecar config (top-level sidecar:), the dns server reads dns:, http:, probe: and services:',
      });
      return;
    }
    const found = DNS_KEYS.filter((key) => key in document);
    if (found.length === 0) return; // nothing to tell it by: "sidecar: required" says enough
    ctx.addIssue({
      code: 'custom',
      message: `this is a dns config (top-level ${found.map((key) => `${key}:`).join(', ')}), the sidecar reads a sidecar: block`,
    });
  });
}

/** Step 3 runs whenever the document is a mapping, whatever step 2 found. */
const whenMapping = { when: (payload: { value: unknown }) => isMapping(payload.value) };

function report(ctx: z.RefinementCtx, issues: readonly Issue[]): void {
  for (const issue of issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
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
  admin: adminSchema.optional(),
  sidecars: sidecarsSchema.optional(),
});

const serviceSchema = z.strictObject({
  // A label cannot start with "_", so no service can take the name `_status.<service>` answers under.
  name: dnsLabel,
  onAllDown: z.enum(['servfail', 'last', 'all']).default(DNS_DEFAULTS.onAllDown),
  pools: z.array(poolSchema).min(1, 'needs at least one pool'),
});

const dnsFields = z.strictObject({
  dns: z
    .strictObject({
      zone: dnsName.default(DNS_DEFAULTS.zone),
      listen: listenAddress.prefault(DNS_DEFAULTS.listen),
      ttl: z.number().int().min(0).max(86_400).default(DNS_DEFAULTS.ttl),
      nameserver: dnsName.optional(),
    })
    .prefault({}),
  http: z.strictObject({ listen: listenAddress.prefault(DEFAULT_HTTP_LISTEN) }).prefault({}),
  probe: probeOverrides.prefault({}),
  services: z.array(serviceSchema).min(1, 'needs at least one service'),
});

export const dnsConfigSchema = kindGuard('dns').pipe(
  dnsFields
    .superRefine((raw, ctx) => report(ctx, dnsIssues(parsedView(raw, ctx.issues))), whenMapping)
    .transform((raw): DnsConfig => {
      const parsed = parsedView(raw, []);
      return deepFreeze({
        dns: {
          zone: raw.dns.zone,
          listen: raw.dns.listen,
          ttl: raw.dns.ttl,
          nameserver: raw.dns.nameserver ?? `ns.${raw.dns.zone}`,
        },
        http: { listen: raw.http.listen },
        services: raw.services.map((service, s) => ({
          name: service.name,
          onAllDown: service.onAllDown,
          pools: service.pools.map(
            (pool, p): PoolConfig => ({
              name: pool.name,
              proxy: pool.proxy,
              addresses: pool.address === undefined ? undefined : [pool.address].flat(),
              probe: resolveProbe(parsed, [['probe'], ['services', s, 'pools', p, 'probe']], PROBE_DEFAULTS),
              admin: pool.admin && {
                state: pool.admin.state,
                reason: pool.admin.reason,
                until: pool.admin.until,
              },
              sidecars: pool.sidecars && { url: pool.sidecars.url, minReady: pool.sidecars.minReady },
            }),
          ),
        })),
      });
    }),
);

// ---- the sidecar's config -----------------------------------------------------------------------

const sidecarFields = z.strictObject({
  sidecar: z.strictObject({
    listen: listenAddress.optional(),
    proxy: httpUrl('proxy').default(SIDECAR_DEFAULTS.proxy),
    ...probeFields,
    liveness: z.enum(['deep', 'attributed', 'shallow']).default(SIDECAR_DEFAULTS.liveness),
    readiness: z.enum(['deep', 'attributed']).default(SIDECAR_DEFAULTS.readiness),
  }),
});

export const sidecarConfigSchema = kindGuard('sidecar').pipe(
  sidecarFields
    .superRefine((raw, ctx) => report(ctx, sidecarIssues(parsedView(raw, ctx.issues))), whenMapping)
    .transform(
      (raw): SidecarConfig =>
        deepFreeze({
          listen: raw.sidecar.listen ?? SIDECAR_DEFAULTS.listen,
          proxy: raw.sidecar.proxy,
          probe: resolveProbe(parsedView(raw, []), [['sidecar']], SIDECAR_DEFAULTS.probe),
          liveness: raw.sidecar.liveness,
          readiness: raw.sidecar.readiness,
        }),
    ),
);
