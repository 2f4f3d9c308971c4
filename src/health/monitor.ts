// Edge: runs the deep check of every pool of every service on its own timer, feeds the rise/fall
// machine, and publishes an immutable view of all services after every change.
import type { PoolConfig, ServiceConfig } from '../config/schema.js';
import { deepFreeze } from '../deep-freeze.js';
import { redactUrl } from '../redact.js';
import { runInSlices, runToEnd } from '../slices.js';
import { type AdminCarry, AdminControls } from './admin-controls.js';
import { blame, type JudgedRound, outsideOutage, type PoolEvidence } from './attribution.js';
import { combineAddressRounds, proxyAt } from './per-address.js';
import { type PodStatus, podStatuses } from './pods-verdict.js';
import { type LookupAll, PoolAddresses } from './resolve.js';
import type { AddressResult, RoundResult } from './round.js';
import { failedRound, RoundLoop, StartPacer } from './round-loop.js';
import { type Selection, select } from './select.js';
import type { HealthSnapshot, PoolSnapshot, ServiceSnapshot } from './snapshot.js';
import {
  type Excuse,
  initialHealth,
  inTransition,
  next,
  nextDelayMs,
  type PoolHealth,
  type Transition,
} from './state.js';

/** One deep-check round of a pool. It should honour `signal`; the monitor does not rely on it. */
export type RunRound = (pool: PoolConfig, signal: AbortSignal) => Promise<RoundResult>;

/** The part of a pino logger the monitor uses. */
export interface MonitorLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface RoundEvent {
  readonly service: string;
  readonly pool: string;
  readonly result: RoundResult;
  /** The pool's health after the round. */
  readonly health: PoolHealth;
}

export interface TransitionEvent {
  readonly service: string;
  readonly pool: string;
  readonly transition: Transition;
}

/** A pool's recovery refused because it flaps: a hold-down began, until `heldUntil`. */
export interface FlapEvent {
  readonly service: string;
  readonly pool: string;
  readonly heldUntil: number;
}

/** What a config reload hands from the old monitor to the new one. */
export interface CarriedState {
  /** By `poolKey`: only a pool whose proxy and probe settings are unchanged keeps its health. */
  readonly pools: ReadonlyMap<string, PoolHealth>;
  /** By service name: keeps `onAllDown: last` memory and readiness across the reload. */
  readonly selections: ReadonlyMap<string, Selection>;
  /** The process was ready (/readyz 200) before the reload. */
  readonly ready: boolean;
  /** Operator controls and history, by service and pool name (admin-controls.ts). */
  readonly admin?: AdminCarry;
}

export interface MonitorOptions {
  readonly services: readonly ServiceConfig[];
  readonly runRound: RunRound;
  readonly logger: MonitorLogger;
  /** Per round, e.g. for probe counters and latency histograms. */
  readonly onRound?: (event: RoundEvent) => void;
  /** Per state change, after it has been logged. */
  readonly onTransition?: (event: TransitionEvent) => void;
  /** Per hold-down begun by flap damping. */
  readonly onFlap?: (event: FlapEvent) => void;
  /** Per round that failed for a local reason (EMFILE, ...) and so did not count. */
  readonly onLocalError?: (event: RoundEvent) => void;
  readonly previous?: CarriedState;
  /** Host resolution for pools without `address`; node:dns lookup by default. */
  readonly lookup?: LookupAll;
  /** Default 30 s. */
  readonly resolveRefreshMs?: number;
  /** How long past `timeout` a round may run before the monitor gives up on it. Default 250 ms. */
  readonly abortSlackMs?: number;
  /**
   * A round that changes no pool's state is published within this (default 250 ms), together with
   * any others that finish meanwhile; a state change is published at once. Default 250 ms.
   */
  readonly detailPublishMs?: number;
  /**
   * State changes are published at once, but at most one publication per this many ms (or four
   * times what the last one took, if more): the rest that arrive meanwhile go out together at its
   * end. Default 10 ms.
   */
  readonly stateGapMs?: number;
  /** First rounds start at a random point within this (capped at 10% of interval). Default 100 ms. */
  readonly firstRoundSpreadMs?: number;
  readonly random?: () => number;
  readonly now?: () => number;
}

/** Identity of a pool across config reloads: same service, name, proxy, probe and sidecars settings. */
function poolKey(service: string, pool: PoolConfig): string {
  return JSON.stringify([service, pool.name, pool.proxy, pool.probe, pool.sidecars]);
}

/** Tells the constructor that `assemble` builds the runners and the first view, in slices. */
const ASSEMBLED_LATER: unique symbol = Symbol('assembled later');

interface Runner {
  readonly service: ServiceConfig;
  readonly pool: PoolConfig;
  readonly key: string;
  readonly addresses: PoolAddresses;
  health: PoolHealth;
  readonly loop: RoundLoop<RoundResult>;
  /** The pool's part of the last view; undefined once its health or addresses changed since. */
  snapshot: PoolSnapshot | undefined;
  /** The pool's last finished round, as the other pools of its service compare against it. */
  evidence: PoolEvidence | undefined;
  /** The pool's last round and who was blamed for it, for the service's outside-outage flag. */
  judged: JudgedRound | undefined;
  /** The last round failed for a local reason: one warning per burst, not per round. */
  localBurst: boolean;
  /** Epoch ms at which the first round of the pool's current run of failing rounds began. */
  failingSince: number | undefined;
  /** Its failing round is being judged: other pools must not wait for it (it is waiting for them). */
  judging: boolean;
  /** A proxy host with several addresses: how each did in the last round (per-address.ts). */
  probed: readonly AddressResult[] | undefined;
  /** A pool with `sidecars`: its pods as the last round found them (none before it). */
  pods: readonly PodStatus[] | undefined;
}

export class HealthMonitor {
  readonly #options: MonitorOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #runners: Runner[] = [];
  readonly #selections = new Map<string, Selection>();
  readonly #subscribers = new Set<(snapshot: HealthSnapshot) => void>();
  readonly #runnersByService = new Map<ServiceConfig, Runner[]>();
  /** Rounds coming due together start in batches, with I/O between (round-loop.ts). */
  readonly #pacer: StartPacer;
  /** Each service's part of the last view, reused by the next one while none of its pools changed. */
  readonly #serviceSnapshots = new Map<ServiceConfig, ServiceSnapshot>();
  /** Services in an outside outage, so its start and end are logged once each. */
  readonly #outages = new Set<ServiceConfig>();
  /** Operator controls: never a health transition; an `until` passing republishes the pool. */
  readonly #admin: AdminControls;
  #snapshot: HealthSnapshot;
  /** A publication of round details waiting to be batched with others. */
  #pending: ReturnType<typeof setTimeout> | undefined;
  /** A publication of state changes waiting for the gap after the last one to pass. */
  #urgent: ReturnType<typeof setTimeout> | undefined;
  #publishedAt = Number.NEGATIVE_INFINITY;
  /** The least time between two publications: `stateGapMs`, or more after a costly one. */
  #gapMs = 0;
  #started = false;
  #stopped = false;
  /**
   * Readiness, once reached, is kept, across reloads too. A service a reload adds answers SERVFAIL
   * until its first verdict, but must not take the replica out of its Service: every replica
   * reloads the same ConfigMap at about the same time, and all of them dropping out together
   * would leave CoreDNS nowhere to forward the zone, for the services that were fine as well.
   */
  #wasReady: boolean;

  /**
   * Builds every pool's runner and the first view in one piece. A reload that brings thousands of
   * pools should use `assemble`, which does the same in slices.
   */
  constructor(options: MonitorOptions, assembly?: typeof ASSEMBLED_LATER) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#wasReady = options.previous?.ready ?? false;
    this.#pacer = new StartPacer();
    for (const [name, selection] of options.previous?.selections ?? []) this.#selections.set(name, selection);
    this.#snapshot = { at: this.#now(), ready: this.#wasReady, services: [] };
    this.#admin = new AdminControls({
      services: options.services,
      previous: options.previous?.admin,
      logger: options.logger,
      now: this.#now,
      onChange: (service, pool) => {
        for (const runner of this.#runners) {
          if (runner.service.name === service && runner.pool.name === pool) this.#changed(runner);
        }
        this.#publish();
      },
    });
    if (assembly !== ASSEMBLED_LATER) runToEnd(this.#assembly());
  }

  /**
   * As the constructor, in slices of about `sliceMs` with I/O served between them. Building the
   * runners and the first view of 5,500 pools took a quarter to most of a second, every DNS answer
   * waiting; the old view keeps answering meanwhile.
   */
  static async assemble(options: MonitorOptions, sliceMs?: number): Promise<HealthMonitor> {
    const monitor = new HealthMonitor(options, ASSEMBLED_LATER);
    await runInSlices(monitor.#assembly(), sliceMs);
    return monitor;
  }

  /** The runners of every pool, then the first view; one step per service. */
  *#assembly(): Generator<void, void> {
    const now = this.#now();
    for (const service of this.#options.services) {
      const runners = service.pools.map((pool) => this.#runner(service, pool, now));
      this.#runnersByService.set(service, runners);
      this.#runners.push(...runners);
      yield;
    }
    this.#snapshot = yield* this.#building();
  }

  #runner(service: ServiceConfig, pool: PoolConfig, now: number): Runner {
    const options = this.#options;
    const key = poolKey(service.name, pool);
    const runner: Runner = {
      service,
      pool,
      key,
      health: options.previous?.pools.get(key) ?? initialHealth(now),
      loop: new RoundLoop<RoundResult>({
        run: (signal) => this.#runRound(runner, signal),
        failed: (failure) => {
          if (failure.error !== undefined) {
            options.logger.warn(
              { service: service.name, pool: pool.name, err: failure.error },
              'probe round threw',
            );
          }
          return failedRound(failure);
        },
        settle: (result) => this.#settle(runner, result),
        limitMs: pool.probe.timeoutMs + (options.abortSlackMs ?? 250),
        pacer: this.#pacer,
        now: this.#now,
      }),
      snapshot: undefined,
      evidence: undefined,
      judged: undefined,
      localBurst: false,
      failingSince: undefined,
      judging: false,
      probed: undefined,
      pods: pool.sidecars ? [] : undefined,
      addresses: new PoolAddresses(pool, {
        lookup: options.lookup,
        refreshMs: options.resolveRefreshMs,
        now: this.#now,
        onChange: (state) => {
          const where = { service: service.name, pool: pool.name };
          if (state.resolveError) {
            options.logger.warn(
              { ...where, reason: state.resolveError.reason, addresses: state.addresses },
              'proxy host resolution failed; serving the last good addresses',
            );
          } else {
            options.logger.info({ ...where, addresses: state.addresses }, 'proxy host resolved');
          }
          this.#changed(runner);
          this.#publish();
        },
      }),
    };
    return runner;
  }

  /**
   * Starts every pool's rounds and host resolution, in slices with I/O between them (5,500 pools
   * took 30 ms in one piece). Idempotent; a stopped monitor stays stopped.
   */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#admin.start();
    void runInSlices(this.#starting());
    this.#publish();
  }

  *#starting(): Generator<void, void> {
    for (const runner of this.#runners) {
      if (this.#stopped) return;
      runner.addresses.start();
      // Until its first verdict a service answers SERVFAIL, so first rounds start at once; the
      // small spread only keeps every pool from hitting the network in the same millisecond.
      const spread = Math.min(this.#options.firstRoundSpreadMs ?? 100, runner.pool.probe.intervalMs / 10);
      runner.loop.start(Math.round(this.#random() * spread));
      yield;
    }
  }

  /** Clears every timer and aborts in-flight rounds; resolves once no round is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#admin.stop();
    clearTimeout(this.#pending);
    clearTimeout(this.#urgent);
    for (const runner of this.#runners) runner.addresses.stop();
    await Promise.allSettled(this.#runners.map((runner) => runner.loop.stop()));
  }

  current(): HealthSnapshot {
    return this.#snapshot;
  }

  /** Calls `subscriber` with every new snapshot; returns the unsubscribe function. */
  onSnapshot(subscriber: (snapshot: HealthSnapshot) => void): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  /** The state a reloaded config's monitor should start from. */
  carryOver(): CarriedState {
    return {
      pools: new Map(this.#runners.map((runner) => [runner.key, runner.health])),
      selections: new Map(this.#selections),
      ready: this.#snapshot.ready,
      admin: this.#admin.carryOver(),
    };
  }

  /**
   * One round of a pool. A proxy host that resolves to several addresses has each address probed
   * (its proxy URL pointed at the address), since each is served; with one address, or addresses
   * given in the config, the proxy URL is probed as written (its host looked up by the probe itself).
   * A pool read from its pods (`sidecars`) sends nothing through its proxy: one round asks every pod.
   */
  #runRound(runner: Runner, signal: AbortSignal): Promise<RoundResult> {
    const { addresses, source } = runner.addresses.current();
    const { pool } = runner;
    if (pool.sidecars || source !== 'dns' || addresses.length < 2)
      return this.#options.runRound(pool, signal);
    return Promise.all(
      addresses.map(async (address) => ({
        address,
        round: await this.#options.runRound({ ...pool, proxy: proxyAt(pool.proxy, address) }, signal),
      })),
    ).then(combineAddressRounds);
  }

  /** Applies a pool's round; returns the delay until its next one, none once stopped. */
  async #settle(runner: Runner, result: RoundResult): Promise<number | undefined> {
    const { pool, service } = runner;
    // Recorded before anything is awaited: a pool this one asks for a confirming round must find
    // this round already there, or the two would wait on each other.
    runner.evidence = {
      pool: pool.name,
      at: result.at,
      proxyAnswers: result.ok || result.proxyAnswers === true,
      targets: result.outsideTargets ?? result.targets,
    };
    // A round the loop gave up on (no pods in it) leaves the last pods shown, with their own times.
    if (runner.pods && result.pods) runner.pods = podStatuses(result);
    // The first verdict must not be published with no addresses to answer when resolution is merely
    // slower than the round; `ready` is bounded by the resolver's own timeout.
    await runner.addresses.ready;
    runner.probed = result.addresses;
    const excuse = await this.#excuse(runner, result);
    if (this.#stopped) return undefined;

    const now = this.#now();
    const step = next(runner.health, result, now, pool.probe, excuse);
    runner.health = step.health;
    // By when the round was measured, not when it was judged: a judgement may wait for other pools.
    runner.judged = {
      at: result.at,
      ok: result.ok,
      ...(result.ok || excuse === 'local' ? {} : { party: excuse ?? 'proxy' }),
    };
    this.#changed(runner);
    const where = { service: service.name, pool: pool.name };
    const event = { ...where, result, health: step.health };
    safely(this.#options.logger, () => this.#options.onRound?.(event));
    this.#noteLocal(runner, event, excuse === 'local');
    if (step.transition) {
      const { from, to, reason } = step.transition;
      this.#options.logger.info({ ...where, from, to, reason }, 'pool state changed');
      const transition = step.transition;
      this.#admin.recordTransition(service.name, pool.name, transition);
      safely(this.#options.logger, () => this.#options.onTransition?.({ ...where, transition }));
    }
    const heldUntil = step.health.flaps.heldUntil;
    if (step.flapped && heldUntil !== undefined) {
      this.#options.logger.warn(
        {
          ...where,
          held_until: new Date(heldUntil).toISOString(),
          changes: step.health.flaps.changes.length,
        },
        'pool is flapping: held down',
      );
      safely(this.#options.logger, () => this.#options.onFlap?.({ ...where, heldUntil }));
    }
    const outageChanged = this.#noteOutage(service);
    this.#publish(step.transition !== undefined || step.flapped === true || outageChanged);
    return this.#delay(runner);
  }

  /**
   * Whether a failing round is excused: `local` when this process could not make the check, and
   * `outside` when no other pool of the service whose proxy answers passes what this one failed
   * (attribution.ts). Only what the other pools saw since this pool started failing is evidence: a
   * pass from before proves nothing about now (the outside may have gone down in between). A pool
   * with a state to lose (healthy, or awaiting its first verdict) that has no such evidence from
   * another pool has that pool probed at once. Once per run of failing rounds, so confirming adds at
   * most one probe's latency to a failover; during a long outside outage the other pools' own rounds
   * are evidence enough, and nothing more is probed.
   */
  async #excuse(runner: Runner, result: RoundResult): Promise<Excuse | undefined> {
    if (result.ok) {
      runner.failingSince = undefined;
      return undefined;
    }
    runner.failingSince ??= result.at - result.latencyMs;
    if (result.local) return 'local';
    const evidence = runner.evidence;
    if (result.proxyAnswers !== true || evidence === undefined) return undefined;
    const freshSince = runner.failingSince;
    const peers = (this.#runnersByService.get(runner.service) ?? []).filter((other) => other !== runner);
    // A peer whose own failing round is being judged is waiting for this one: its round is as fresh
    // as evidence gets, and waiting for another of its rounds would deadlock the two.
    const others = () =>
      peers.map((other) => ({
        pool: other.pool.name,
        evidence:
          other.judging && other.evidence
            ? { ...other.evidence, at: Number.POSITIVE_INFINITY }
            : other.evidence,
      }));
    const atStake = runner.health.state !== 'unhealthy';
    let verdict = blame(evidence, others(), freshSince, !atStake);
    if (verdict.party === 'confirm') {
      const asked = new Set(verdict.pools);
      runner.judging = true;
      try {
        const rounds = peers
          .filter((other) => asked.has(other.pool.name))
          .map((other) => other.loop.runNow());
        // Settled by the first pass of a failed target through another pool, or once all have answered.
        await new Promise<void>((resolve) => {
          let left = rounds.length;
          const heard = () => {
            left -= 1;
            if (left <= 0 || blame(evidence, others(), freshSince, true).party === 'proxy') resolve();
          };
          for (const round of rounds) round.then(heard, heard);
        });
      } finally {
        runner.judging = false;
      }
      verdict = blame(evidence, others(), freshSince, true);
    }
    return verdict.party === 'outside' ? 'outside' : undefined;
  }

  /** One warning when a pool's rounds start failing for local reasons, one line when they stop. */
  #noteLocal(runner: Runner, event: RoundEvent, local: boolean): void {
    const where = { service: event.service, pool: event.pool };
    if (local) {
      safely(this.#options.logger, () => this.#options.onLocalError?.(event));
      if (!runner.localBurst) {
        this.#options.logger.warn(
          { ...where, reason: event.result.reason },
          'probe failed for a local reason (not counted against the pool)',
        );
      }
    } else if (runner.localBurst) {
      this.#options.logger.info(where, 'probes no longer fail for local reasons');
    }
    runner.localBurst = local;
  }

  /** Logs the start and the end of a service's outside outage; true when it changed. */
  #noteOutage(service: ServiceConfig): boolean {
    const runners = this.#runnersByService.get(service) ?? [];
    const now = outsideOutage(runners.map((runner) => runner.judged));
    if (now === this.#outages.has(service)) return false;
    if (now) this.#outages.add(service);
    else this.#outages.delete(service);
    const reasons = runners.map(
      (runner) => `${runner.pool.name}: ${runner.health.lastRound?.reason ?? 'pending'}`,
    );
    this.#options.logger.warn(
      { service: service.name, reasons },
      now
        ? 'outside outage: every pool whose proxy answers fails the same targets; the answer stays'
        : 'outside outage over',
    );
    return true;
  }

  #delay(runner: Runner): number {
    const base = nextDelayMs(runner.health, runner.pool.probe);
    if (inTransition(runner.health)) return base;
    // +-5% on the regular interval keeps pools that started together from probing in lockstep
    // forever; the fast re-check gets none, as it is the path that bounds detection time.
    return Math.round(base * (1 + (this.#random() - 0.5) * 0.1));
  }

  #changed(runner: Runner): void {
    runner.snapshot = undefined;
    this.#serviceSnapshots.delete(runner.service);
  }

  // A publication rebuilds only the services whose pools changed (subscribers may rely on that:
  // an unchanged service is the same object), but still walks every service and wakes every
  // subscriber, so with many pools publishing per round would cost pools x rounds. State changes,
  // which move DNS answers, go out at once; rounds that only refresh details (latency, reason)
  // are batched. And state changes that come in a burst (thousands of first verdicts after a
  // reload that adds services) go out at most once per `stateGapMs`: one publication per verdict
  // walked every service each time, and stalled DNS answers for most of a second with 5,500 of
  // them. A change waits at most that gap, nothing beside a failover's second or so.
  #publish(urgent = true): void {
    if (this.#stopped) return;
    if (!urgent) {
      this.#pending ??= setTimeout(() => {
        this.#pending = undefined;
        this.#publish();
      }, this.#options.detailPublishMs ?? 250);
      return;
    }
    if (this.#urgent !== undefined) return;
    const waitMs = this.#publishedAt + this.#gapMs - this.#now();
    if (waitMs > 0) {
      this.#urgent = setTimeout(() => {
        this.#urgent = undefined;
        this.#publish();
      }, waitMs);
      return;
    }
    clearTimeout(this.#pending);
    this.#pending = undefined;
    this.#publishedAt = this.#now();
    this.#snapshot = this.#build();
    const snapshot = this.#snapshot;
    for (const subscriber of this.#subscribers) safely(this.#options.logger, () => subscriber(snapshot));
    // A publication walks every service, here and in the subscribers (the zone view): with
    // thousands of services it costs over 10 ms, and back to back they would leave DNS little
    // of the thread. The next waits at least four times as long as this one took.
    this.#gapMs = Math.max(this.#options.stateGapMs ?? 10, 4 * (this.#now() - this.#publishedAt));
  }

  #build(): HealthSnapshot {
    return runToEnd(this.#building());
  }

  /** The view, one step per service: only services with a changed pool are built anew. */
  *#building(): Generator<void, HealthSnapshot> {
    const now = this.#now();
    const services: ServiceSnapshot[] = [];
    for (const service of this.#options.services) {
      services.push(this.#serviceSnapshot(service, now));
      yield;
    }
    this.#wasReady ||= services.every((s) => s.selection.ready);
    return deepFreeze({ at: now, ready: this.#wasReady, services });
  }

  #serviceSnapshot(service: ServiceConfig, now: number): ServiceSnapshot {
    const cached = this.#serviceSnapshots.get(service);
    if (cached) return cached;
    const pools = (this.#runnersByService.get(service) ?? []).map((runner): PoolSnapshot => {
      if (runner.snapshot) return runner.snapshot;
      const { health } = runner;
      const addresses = runner.addresses.current();
      runner.snapshot = deepFreeze({
        ...health,
        name: runner.pool.name,
        proxy: redactUrl(runner.pool.proxy),
        addresses: servedAddresses(addresses.addresses, runner.probed),
        addressSource: addresses.source,
        ...(runner.probed ? { probedAddresses: runner.probed } : {}),
        resolveError: addresses.resolveError,
        inTransition: inTransition(health),
        admin: this.#admin.control(runner.service.name, runner.pool.name),
        history: this.#admin.history(runner.service.name, runner.pool.name),
        ...(runner.pods ? { pods: runner.pods } : {}),
      });
      return runner.snapshot;
    });
    // With none of its pools changed, select() would give the previous selection again (its
    // `since` moves only with mode or pool), which is why an unchanged service can be reused.
    const selection = select(pools, service.onAllDown, this.#selections.get(service.name), now);
    this.#selections.set(service.name, selection);
    const outage = this.#outages.has(service) ? ({ outage: 'outside' } as const) : {};
    const built = deepFreeze({
      name: service.name,
      onAllDown: service.onAllDown,
      selection,
      pools,
      ...outage,
    });
    this.#serviceSnapshots.set(service, built);
    return built;
  }
}

/**
 * An address whose last probe failed is not served, while any other can be: a client sent to an
 * address that refuses would fail however healthy the rest of the pool is. An address not probed yet
 * (the host re-resolved since the last round) is served until its first round says otherwise. With
 * none left (the pool is failing), all are kept, for `onAllDown: all` and `last` to answer with.
 */
function servedAddresses(addresses: readonly string[], probed: readonly AddressResult[] | undefined) {
  const failing = new Set(probed?.filter((p) => !p.ok).map((p) => p.address));
  const served = addresses.filter((address) => !failing.has(address));
  return served.length > 0 ? served : addresses;
}

/** A subscriber or metrics hook that throws must not stop the probe loop. */
function safely(logger: MonitorLogger, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.warn({ err }, 'health monitor callback threw');
  }
}
