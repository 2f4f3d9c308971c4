// Probe settings for tests that drive the monitor directly: the schema's defaults (damping off, so
// a test breaking a pool on purpose is not held down), with what the test cares about set.
import { PROBE_DEFAULTS } from '../../src/config/defaults.js';
import type { ProbeSettings } from '../../src/config/schema.js';

/** The test config's timing (interval 500 ms, timeout 400 ms, fastInterval 200 ms), damping off. */
export function probeSettings(over: Partial<ProbeSettings> = {}): ProbeSettings {
  return {
    ...PROBE_DEFAULTS,
    targets: ['http://origin.test/'],
    intervalMs: 500,
    timeoutMs: 400,
    fastIntervalMs: 200,
    flapThreshold: 0,
    ...over,
  };
}
