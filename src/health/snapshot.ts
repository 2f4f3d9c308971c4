// The health view the monitor publishes: every service's pools, their health and the selection made
// from them. Immutable values, read by DNS (through a zone view), the HTTP routes and the metrics.
import type { AdminControl, OnAllDown } from '../config/schema.js';
import type { HistoryEntry } from './admin.js';
import type { PodStatus } from './pods-verdict.js';
import type { AddressResult } from './round.js';
import type { Selection } from './select.js';
import type { PoolHealth } from './state.js';

export interface ResolveError {
  readonly reason: string;
  readonly at: number;
}

/** A pool as the monitor publishes it: its health (state.ts), and where it stands in the service. */
export interface PoolSnapshot extends PoolHealth {
  readonly name: string;
  /** The proxy URL with any credentials removed. */
  readonly proxy: string;
  readonly addresses: readonly string[];
  /** `config`: the pool's `address` (or an IP-literal proxy host); `dns`: the proxy host, resolved. */
  readonly addressSource: 'config' | 'dns';
  /**
   * A proxy host with several addresses: how each did in the last round. `addresses` then holds
   * only those that passed (all of them when none did).
   */
  readonly probedAddresses?: readonly AddressResult[];
  /** Set while the last re-resolution failed; `addresses` are then the last good ones. */
  readonly resolveError: ResolveError | undefined;
  /** The next round follows after fastInterval rather than interval. */
  readonly inTransition: boolean;
  /** The operator's control in force (config `admin`, its `until` not passed); never a health state. */
  readonly admin?: AdminControl | undefined;
  /** The last state changes and control changes, oldest first (admin.ts, HISTORY_LENGTH). */
  readonly history?: readonly HistoryEntry[];
  /** A pool with `sidecars`: its pods as its last round found them. */
  readonly pods?: readonly PodStatus[];
}

export interface ServiceSnapshot {
  readonly name: string;
  readonly onAllDown: OnAllDown;
  readonly selection: Selection;
  /** In priority order. */
  readonly pools: readonly PoolSnapshot[];
  /**
   * Set while every pool whose proxy answers fails the same targets: the outside is at fault, and
   * no pool's state moves for it (attribution.ts).
   */
  readonly outage?: 'outside';
}

export interface HealthSnapshot {
  /** Epoch ms of publication. */
  readonly at: number;
  /** Every service has had a verdict (kept once reached, across reloads): /readyz may answer 200. */
  readonly ready: boolean;
  readonly services: readonly ServiceSnapshot[];
}
