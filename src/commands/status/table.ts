// Pure: the dns server's /status JSON -> the table `egress-failover status` prints, and whether
// every service is answered. Reads only the fields it shows, so an older or newer server still reads.

/** How many of a service's latest changes (state and operator controls) the table lists. */
export const CHANGES_SHOWN = 6;

interface HistoryJson {
  readonly at?: string;
  readonly kind?: string;
  readonly from?: string;
  readonly to?: string;
  readonly reason?: string;
}

interface PoolJson {
  readonly name: string;
  readonly state?: string;
  readonly since?: string;
  readonly lastRound?: { readonly reason?: string } | null;
  readonly heldDownUntil?: string | null;
  readonly admin?: { readonly state: string; readonly reason: string; readonly until?: string | null } | null;
  readonly history?: readonly HistoryJson[];
}

interface ServiceJson {
  readonly name: string;
  readonly ready?: boolean;
  readonly mode?: string;
  readonly outage?: string | null;
  readonly selected?: string | null;
  readonly since?: string;
  readonly addresses?: readonly string[];
  readonly pools?: readonly PoolJson[];
}

export interface StatusReport {
  readonly lines: readonly string[];
  /** Every service has a verdict and an address to answer with (no SERVFAIL). */
  readonly allAnswered: boolean;
}

/** The services of a /status reply, or undefined when `body` is not one. */
export function servicesOf(body: unknown): readonly ServiceJson[] | undefined {
  const services = (body as { services?: unknown } | null)?.services;
  if (!Array.isArray(services)) return undefined;
  return services.every((s) => typeof s?.name === 'string') ? (services as ServiceJson[]) : undefined;
}

/** Whether DNS answers the service with addresses, rather than SERVFAIL. */
export function isServiceAnswered(service: ServiceJson): boolean {
  return service.ready === true && (service.addresses?.length ?? 0) > 0;
}

export function allAnswered(services: readonly ServiceJson[]): boolean {
  return services.every(isServiceAnswered);
}

/** The table for `services` as of `now` (epoch ms, for the ages). */
export function statusReport(services: readonly ServiceJson[], now: number): StatusReport {
  const lines: string[] = [];
  for (const service of services) {
    if (lines.length > 0) lines.push('');
    lines.push(headline(service, now));
    const pools = service.pools ?? [];
    const rows = pools.map((pool) => [
      pool.name,
      pool.state ?? '?',
      pool.admin?.state ?? '-',
      answered(service, pool) ? 'yes' : 'no',
      pool.since ? seconds(pool.since) : '-',
      pool.heldDownUntil
        ? `flapping, held until ${seconds(pool.heldDownUntil)}`
        : (pool.lastRound?.reason ?? 'pending'),
    ]);
    const table = columns([['POOL', 'STATE', 'ADMIN', 'ANSWERED', 'SINCE', 'LAST ROUND'], ...rows]);
    lines.push(`  ${table[0]}`);
    pools.forEach((pool, i) => {
      lines.push(`  ${table[i + 1]}`);
      if (pool.admin) lines.push(`      ${adminLine(pool.admin)}`);
    });
    const changes = pools
      .flatMap((pool) => (pool.history ?? []).map((entry) => ({ pool: pool.name, entry })))
      .filter(({ entry }) => entry.at !== undefined)
      .sort((a, b) => String(b.entry.at).localeCompare(String(a.entry.at)))
      .slice(0, CHANGES_SHOWN);
    if (changes.length > 0) {
      lines.push('  last changes:');
      const changeRows = columns(
        changes.map(({ pool, entry }) => [
          seconds(String(entry.at)),
          pool,
          `${entry.kind === 'admin' ? 'admin ' : ''}${entry.from ?? '?'} -> ${entry.to ?? '?'}`,
          entry.reason ?? '',
        ]),
      );
      for (const row of changeRows) lines.push(`    ${row}`);
    }
  }
  return { lines, allAnswered: allAnswered(services) };
}

function headline(service: ServiceJson, now: number): string {
  const since = service.since ? ` since ${seconds(service.since)} (${age(service.since, now)})` : '';
  const outage = service.outage ? `; outage=${service.outage}: the outside fails through every pool` : '';
  const addresses = (service.addresses ?? []).join(', ');
  if (!service.ready) return `${service.name}: SERVFAIL, waiting for the first verdict${since}`;
  switch (service.mode) {
    case 'healthy':
      return `${service.name}: answering ${service.selected} (${addresses})${since}${outage}`;
    case 'all-down-last':
      return service.selected && addresses
        ? `${service.name}: every pool down; answering the last healthy, ${service.selected} (${addresses})${since}${outage}`
        : `${service.name}: SERVFAIL, every pool down and none was ever healthy${since}${outage}`;
    case 'all-down-all':
      return addresses
        ? `${service.name}: every pool down; answering all of them (${addresses})${since}${outage}`
        : `${service.name}: SERVFAIL, every pool down and none has an address${since}${outage}`;
    default:
      return `${service.name}: SERVFAIL, every pool down (onAllDown: servfail)${since}${outage}`;
  }
}

function answered(service: ServiceJson, pool: PoolJson): boolean {
  if (!isServiceAnswered(service)) return false;
  return service.mode === 'all-down-all' ? pool.admin?.state !== 'down' : service.selected === pool.name;
}

function adminLine(admin: NonNullable<PoolJson['admin']>): string {
  const until = admin.until ? ` until ${seconds(admin.until)}` : ' (no end set)';
  return `admin ${admin.state}: ${JSON.stringify(admin.reason)}${until}`;
}

/** Rows of cells -> lines with each column padded to its widest cell (the last one left as is). */
function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
  );
}

/** 2026-11-25T10:00:00.123Z -> 2026-11-25T10:00:00Z */
function seconds(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

/** How long ago, in the largest two units: 45s, 12m30s, 3h05m, 2d04h. */
function age(iso: string, now: number): string {
  const total = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (Number.isNaN(total)) return '?';
  const [d, h, m, s] = [
    Math.floor(total / 86_400),
    Math.floor(total / 3_600) % 24,
    Math.floor(total / 60) % 60,
    total % 60,
  ];
  const two = (n: number) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h ago`;
  if (h > 0) return `${h}h${two(m)}m ago`;
  if (m > 0) return `${m}m${two(s)}s ago`;
  return `${s}s ago`;
}
