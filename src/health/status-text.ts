// Pure: a service's health view -> the strings of its `_status.<service>.<zone>` TXT record.
// One string per pool, logfmt (key=value, values with spaces quoted), so `dig +short` reads like a log
// line and the same tools parse it.
import { redactUrl } from '../redact.js';
import { isAnswered } from './select.js';
import type { PoolSnapshot, ServiceSnapshot } from './snapshot.js';

/** A TXT character-string holds at most 255 bytes. */
export const MAX_TXT_STRING_BYTES = 255;

const ELLIPSIS = '...';

/**
 * `pool=primary state=healthy selected=yes since=2026-11-25T10:00:00Z reason=ok`, then
 * `last_failure="..." last_failure_at=...` once a round has failed, `mode=...` while the service
 * is not answering a healthy pool, `outage=outside` while the outside is at fault (the answer stays),
 * `pods=READY/TOTAL` for a pool read from its pods' sidecars, `held_until=... reason=flapping` while
 * flap damping holds the pool down, and `admin=...` under an operator's control. Reasons are
 * shortened so each string fits in 255 bytes; the fixed fields are cut only where nothing else can
 * give (see `withinTxtLimit`).
 */
export function statusStrings(service: ServiceSnapshot): string[] {
  const { selection } = service;
  return service.pools.map((pool) => {
    const answered = isAnswered(selection, pool);
    const head = [
      `pool=${pool.name}`,
      `state=${pool.state}`,
      `selected=${answered ? 'yes' : 'no'}`,
      `since=${isoSeconds(pool.since)}`,
    ];
    if (pool.pods) head.push(`pods=${pool.pods.filter((pod) => pod.ready).length}/${pool.pods.length}`);
    if (selection.mode !== 'healthy') head.push(`mode=${selection.mode}`);
    if (service.outage) head.push(`outage=${service.outage}`);
    const heldUntil = pool.flaps.heldUntil;
    if (heldUntil !== undefined) head.push(`held_until=${isoSeconds(heldUntil)}`);
    // A held-down pool may pass every round: what keeps it out is the damping, so that is the reason.
    const reason =
      heldUntil !== undefined ? 'flapping' : pool.lastRound ? clean(pool.lastRound.reason) : 'pending';
    // While the pool is failing, the last failure is the current reason: saying it twice would
    // only halve the 255 bytes each gets.
    const history =
      pool.lastFailure &&
      !(pool.lastRound && !pool.lastRound.ok && pool.lastRound.reason === pool.lastFailure.reason)
        ? pool.lastFailure
        : undefined;
    const failure = history ? clean(history.reason) : undefined;
    const failureAt = history ? ` last_failure_at=${isoSeconds(history.at)}` : '';

    const unadorned = `${head.join(' ')} reason=${failure === undefined ? '' : ` last_failure=${failureAt}`}`;
    const admin = adminText(pool.admin, MAX_TXT_STRING_BYTES - unadorned.length - MIN_REASONS_BYTES);
    const budget = MAX_TXT_STRING_BYTES - unadorned.length - admin.length;
    if (failure === undefined)
      return withinTxtLimit(`${head.join(' ')} reason=${shorten(reason, budget)}${admin}`);
    // The current reason goes first, but leaves the last failure at least half the room.
    const reasonValue = shorten(reason, Math.max(budget - quoted(failure).length, Math.ceil(budget / 2)));
    const failureValue = shorten(failure, budget - reasonValue.length);
    return withinTxtLimit(
      `${head.join(' ')} reason=${reasonValue} last_failure=${failureValue}${failureAt}${admin}`,
    );
  });
}

/**
 * The last guard of the 255-byte limit: with every optional field at once and a 63-character pool
 * name, the fixed fields alone can leave the reasons no room; the string is then cut, never invalid.
 */
function withinTxtLimit(line: string): string {
  return line.length <= MAX_TXT_STRING_BYTES
    ? line
    : `${line.slice(0, MAX_TXT_STRING_BYTES - ELLIPSIS.length)}${ELLIPSIS}`;
}

/** The operator's text in a _status string: the whole of it is in /status and the log. */
const MAX_ADMIN_REASON_BYTES = 48;
/** What the round's reasons keep, at least, beside a control. */
const MIN_REASONS_BYTES = 24;

/**
 * ` admin=drain reason="node pool upgrade" until=2026-12-03T10:00:00Z` as the README shows it, last in
 * the string so it reads as one group apart from the round's own `reason`; empty without a control.
 * Within `room` bytes: where even a shortened reason does not fit, `admin=drain` alone.
 */
function adminText(admin: PoolSnapshot['admin'], room: number): string {
  if (!admin) return '';
  const state = ` admin=${admin.state}`;
  const until = admin.until === undefined ? '' : ` until=${isoSeconds(admin.until)}`;
  const reasonRoom = Math.min(MAX_ADMIN_REASON_BYTES, room - state.length - ' reason='.length - until.length);
  return reasonRoom < 12 ? state : `${state} reason=${shorten(clean(admin.reason), reasonRoom)}${until}`;
}

/** 1764064800123 -> 2026-11-25T10:00:00Z: seconds are enough for an operator and save TXT bytes. */
function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/**
 * Printable ASCII only, so characters equal bytes and a reason cannot smuggle control characters
 * into someone's terminal; credentials in any URL (a target's, say) are stripped.
 */
function clean(reason: string): string {
  return redactUrl(reason)
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/"/g, "'");
}

function quoted(text: string): string {
  return /[\s="]/.test(text) || text === '' ? `"${text}"` : text;
}

/** The logfmt value of `text` (quoted when it has spaces, = or quotes) in at most `max` bytes. */
function shorten(text: string, max: number): string {
  const whole = quoted(text);
  if (whole.length <= max) return whole;
  const room = Math.max(0, max - 2 - ELLIPSIS.length);
  return `"${text.slice(0, room)}${ELLIPSIS}"`;
}
