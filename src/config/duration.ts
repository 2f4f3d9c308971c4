// Durations in config files and on the command line are strings such as "500ms", "2s", "1m", "1h",
// or compounds of them as Go and Kubernetes write them ("1m30s", "1h0m0s"); internally milliseconds.

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const UNITS = ['h', 'm', 's', 'ms'];
const PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/**
 * The longest duration a config or a flag may give. Node's timers hold at most 2^31-1 ms (24.8
 * days): past that, setTimeout warns (TimeoutOverflowWarning) and fires after 1 ms, so an interval
 * of "600h" would probe without pause. A day is far beyond any sensible probe period and leaves
 * room for the +5 % jitter the monitor adds to an interval.
 */
export const MAX_DURATION_MS = 24 * 3_600_000;

/** "2s" -> 2000, "1m30s" -> 90000; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  // Units largest first, each at most once: "30s1m" or "1m1m" is more likely a slip than meant.
  let ms = 0;
  let lastUnit = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const match = PART.exec(trimmed);
    if (!match) return undefined;
    const [, amount, unit] = match as unknown as [string, string, string];
    const rank = UNITS.indexOf(unit);
    if (rank <= lastUnit) return undefined;
    lastUnit = rank;
    ms += Number(amount) * (UNIT_MS[unit] as number);
  }
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/**
 * For messages and reasons: under a minute, the shortest exact single unit ("500ms", "1500ms",
 * "2s"), as operators write timeouts; from a minute on, a compound without its zero parts ("2m",
 * "1m30s", "1h5s"), any milliseconds as a fraction of the seconds ("1m1.5s"). parseDuration reads
 * back every form it prints.
 */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return ms >= 1_000 && ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1_000;
  return `${hours ? `${hours}h` : ''}${minutes ? `${minutes}m` : ''}${seconds ? `${seconds}s` : ''}`;
}
