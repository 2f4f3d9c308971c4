// Metric definitions the `dns` and `sidecar` commands share, so one dashboard and one alert cover both.
import { Counter, type Gauge, type Registry } from 'prom-client';

/** Probe latency histogram buckets (seconds), the same for the dns server's and the sidecar's. */
export const PROBE_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * `egress_config_reloads_total`, the same in `dns` and `sidecar` so one alert covers both; returns
 * what counts a reload. Both series exist from the start at 0: increase() cannot see a series'
 * first sample as a rise, so an alert on the first refused reload would otherwise never fire.
 */
export function reloadCounter(registry: Registry): (ok: boolean) => void {
  const reloads = new Counter({
    name: 'egress_config_reloads_total',
    help: 'Config reloads, by result (failed: the old config keeps serving).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  for (const result of ['ok', 'failed']) reloads.inc({ result }, 0);
  return (ok) => reloads.inc({ result: ok ? 'ok' : 'failed' });
}

/**
 * A state gauge's series for one subject: 1 for `current` under the label `key`, 0 for every other
 * value, so a query for any state finds a series (and a state left shows 0, not a stale 1).
 */
export function setOneOf<K extends string>(
  gauge: Gauge<K>,
  labels: Partial<Record<K, string>>,
  key: K,
  values: readonly string[],
  current: string | undefined,
): void {
  for (const value of values)
    gauge.set({ ...labels, [key]: value } as Partial<Record<K, string>>, value === current ? 1 : 0);
}
