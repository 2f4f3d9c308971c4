// Pure: the `dns` command's health view -> /livez, /readyz, /status replies.
import type { HealthSnapshot, PoolSnapshot, ServiceSnapshot } from '../health/snapshot.js';
import { type HttpReply, json, text } from './reply.js';

export interface ConfigInForce {
  readonly file: string;
  /** sha256 of the file's text, first 12 hex digits: enough to tell two versions apart. */
  readonly hash: string;
  readonly loadedAt: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function poolStatus(pool: PoolSnapshot) {
  return {
    name: pool.name,
    proxy: pool.proxy,
    state: pool.state,
    since: iso(pool.since),
    inTransition: pool.inTransition,
    passes: pool.passes,
    failures: pool.failures,
    addresses: pool.addresses,
    addressSource: pool.addressSource,
    // A proxy host with several addresses: each one's last round; only passing ones are served.
    probedAddresses: pool.probedAddresses ?? null,
    resolveError: pool.resolveError && { reason: pool.resolveError.reason, at: iso(pool.resolveError.at) },
    heldDownUntil: iso(pool.flaps.heldUntil) ?? null,
    lastRound: pool.lastRound && {
      ok: pool.lastRound.ok,
      reason: pool.lastRound.reason,
      excused: pool.lastRound.excused ?? null,
      at: iso(pool.lastRound.at),
      latency_ms: pool.lastRound.latencyMs,
    },
    lastFailure: pool.lastFailure && { reason: pool.lastFailure.reason, at: iso(pool.lastFailure.at) },
    lastTransition: pool.lastTransition && {
      from: pool.lastTransition.from,
      to: pool.lastTransition.to,
      reason: pool.lastTransition.reason,
      at: iso(pool.lastTransition.at),
    },
    transitions: pool.transitions,
    // The operator's control beside the probes' own verdict (`state`): never a health state.
    admin: pool.admin
      ? { state: pool.admin.state, reason: pool.admin.reason, until: iso(pool.admin.until) ?? null }
      : null,
    history: (pool.history ?? []).map((entry) => ({ ...entry, at: iso(entry.at) })),
    // A pool read from its pods' sidecars: each pod as the last round found it; null for the others.
    pods:
      pool.pods?.map((pod) => ({
        address: pod.address,
        ready: pod.ready,
        reason: pod.reason,
        lastCheck: iso(pod.at),
        latency_ms: pod.latencyMs,
      })) ?? null,
  };
}

function serviceStatus(service: ServiceSnapshot) {
  const { selection } = service;
  return {
    name: service.name,
    onAllDown: service.onAllDown,
    ready: selection.ready,
    mode: selection.mode,
    outage: service.outage ?? null,
    selected: selection.selected ?? null,
    since: iso(selection.since),
    addresses: selection.addresses,
    pools: service.pools.map(poolStatus),
  };
}

export function dnsRoute(
  path: string,
  snapshot: HealthSnapshot,
  config: ConfigInForce,
): HttpReply | undefined {
  switch (path) {
    case '/livez':
      return text(200, 'ok');
    case '/readyz': {
      if (snapshot.ready) return text(200, 'ok');
      const pending = snapshot.services.filter((s) => !s.selection.ready).map((s) => s.name);
      return text(503, `waiting for the first verdict of: ${pending.join(', ')}`);
    }
    case '/status':
      return json(200, {
        ready: snapshot.ready,
        at: iso(snapshot.at),
        config: { file: config.file, hash: config.hash, loadedAt: iso(config.loadedAt) },
        services: snapshot.services.map(serviceStatus),
      });
    default:
      return undefined;
  }
}
