// Edge: the sidecar's rounds. Each checks the local proxy three ways at once (deep check through it,
// the shallow "does it answer HTTP", and while an endpoint is attributed the same targets fetched
// directly), feeds src/sidecar/verdict.ts, and keeps the state the HTTP endpoints answer from.
import type { Logger } from 'pino';
import type { SidecarConfig } from '../../config/schema.js';
import { probeErrorReason } from '../../health/error-reason.js';
import { answersHttp, probeRound } from '../../health/probe.js';
import type { RoundResult } from '../../health/round.js';
import { failedRound, type RoundFailure, RoundLoop } from '../../health/round-loop.js';
import {
  applyRound,
  initialSidecarState,
  localFailures,
  nextRoundDelayMs,
  type RoundEvidence,
  type ShallowResult,
  type SidecarModes,
  type SidecarState,
  type SidecarStep,
  usesAttribution,
} from '../../sidecar/verdict.js';

/** The shallow check must answer well inside a round and inside kubelet's patience: 1 s at most. */
const SHALLOW_BOUND_MS = 1_000;
/** How often the "no direct route" warning repeats while it stays true. */
const NO_DIRECT_WARN_EVERY_MS = 10 * 60_000;
/** How long past `timeout` a round may run before the loop gives up on it (as the monitor's). */
const ABORT_SLACK_MS = 250;

export type OnSidecarStep = (step: SidecarStep, evidence: RoundEvidence, modes: SidecarModes) => void;

/**
 * Rounds one after another, never overlapping (src/health/round-loop.ts): the next starts
 * `interval` (or `fastInterval` while a verdict is changing) after the last one ended.
 */
export class SidecarLoop {
  #state: SidecarState;
  readonly #config: SidecarConfig;
  readonly #log: Logger;
  readonly #onStep: OnSidecarStep;
  readonly #now: () => number;
  readonly #loop: RoundLoop<RoundEvidence>;
  #lastNoDirectWarning: number | undefined;
  /** Rounds in a row in which a check failed for a local reason; 0 outside such a burst. */
  #localBurst = 0;

  constructor(options: {
    readonly config: SidecarConfig;
    readonly log: Logger;
    readonly onStep: OnSidecarStep;
    /** A reload carries the verdicts over: /readyz and /health never flap because the file changed. */
    readonly carried?: SidecarState;
    readonly now?: () => number;
  }) {
    this.#config = options.config;
    this.#log = options.log;
    this.#onStep = options.onStep;
    this.#now = options.now ?? Date.now;
    this.#state = options.carried ?? initialSidecarState(this.#now());
    this.#loop = new RoundLoop<RoundEvidence>({
      run: (signal) => this.#round(signal),
      failed: (failure) => this.#failed(failure),
      settle: (evidence) => this.#settle(evidence),
      limitMs: this.#config.probe.timeoutMs + ABORT_SLACK_MS,
      now: this.#now,
    });
  }

  /** The state after the last round, which every endpoint answers from. */
  get state(): SidecarState {
    return this.#state;
  }

  start(): void {
    this.#loop.start();
  }

  /** Ends the loop, aborting a round in flight, and resolves once it is over. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #round(signal: AbortSignal): Promise<RoundEvidence> {
    const { proxy, probe } = this.#config;
    const fetchAll = (via: string | undefined) =>
      probeRound({
        proxy: via,
        targets: probe.targets,
        quorum: probe.quorum,
        timeoutMs: probe.timeoutMs,
        expectStatus: probe.expectStatus,
        signal,
      }).catch((err: unknown) => this.#thrown(err));
    // All three at once, so the attribution compares the proxy and the direct path at the same
    // moment, and a round costs one timeout however many checks it holds.
    const [viaProxy, direct, shallow] = await Promise.all([
      fetchAll(proxy),
      usesAttribution(this.#config) ? fetchAll(undefined) : Promise.resolve(undefined),
      answersHttp(proxy, Math.min(probe.timeoutMs, SHALLOW_BOUND_MS)).then(
        (r): ShallowResult => ({ ...r, at: this.#now() }),
      ),
    ]);
    return { proxy: viaProxy, direct, shallow };
  }

  /** probeRound bounds and reports its own failures; a throw is a bug, recorded as a failed round. */
  #thrown(err: unknown): RoundResult {
    this.#log.warn({ err }, 'probe round threw');
    const at = this.#now();
    return { ok: false, reason: probeErrorReason(err), targets: [], latencyMs: 0, at };
  }

  /** A round that threw or outlived its bound is a bug of a check: every check it held failed. */
  #failed(failure: RoundFailure): RoundEvidence {
    if (failure.error !== undefined) this.#log.warn({ err: failure.error }, 'sidecar round threw');
    const round = failedRound(failure);
    const shallow: ShallowResult = {
      ok: false,
      reason: failure.reason,
      latencyMs: round.latencyMs,
      at: round.at,
    };
    return { proxy: round, direct: usesAttribution(this.#config) ? round : undefined, shallow };
  }

  #settle(evidence: RoundEvidence): number {
    const { probe } = this.#config;
    const now = this.#now();
    const step = applyRound(this.#state, evidence, now, probe);
    this.#state = step.state;
    this.#logStep(step, now);
    this.#logLocal(evidence);
    try {
      this.#onStep(step, evidence, this.#config);
    } catch (err) {
      this.#log.warn({ err }, 'sidecar metrics update threw');
    }
    return nextRoundDelayMs(this.#state, probe);
  }

  #logStep(step: SidecarStep, now: number): void {
    const { state } = step;
    const attributed = usesAttribution(this.#config);
    const { liveness, readiness } = this.#config;
    // Which endpoints answer from each machine, for the reader of the log line.
    const answering = (mode: 'deep' | 'attributed') =>
      [readiness === mode ? '/readyz' : undefined, liveness === mode ? '/health' : undefined]
        .filter((path) => path !== undefined)
        .join(', ') || 'no endpoint';
    if (step.deepTransition) {
      const { from, to, reason } = step.deepTransition;
      this.#log.info({ check: 'deep', from, to, reason }, `deep check state changed (${answering('deep')})`);
    }
    if (step.attributedTransition && attributed) {
      const { from, to, reason } = step.attributedTransition;
      this.#log.info(
        { check: 'attributed', from, to, reason },
        `attributed verdict changed (${answering('attributed')})`,
      );
    }
    if (step.shallowChanged && state.shallow) {
      const { ok, reason } = state.shallow;
      this.#log.info(
        { check: 'shallow', ok, reason },
        ok ? 'proxy answers HTTP' : 'proxy does not answer HTTP',
      );
    }
    // A pod chained to a parent proxy has no direct route: both paths then fail together and the
    // attributed verdict blames the outside, so only "Squid does not answer" can restart it.
    // That must not go unnoticed, hence a warning that repeats while it stays true.
    if (!attributed) return;
    const direct = state.lastEvidence?.direct;
    if (state.directEverOk) {
      if (this.#lastNoDirectWarning !== undefined) {
        this.#log.info('a direct fetch passed: attributed liveness can now tell proxy faults apart');
        this.#lastNoDirectWarning = undefined;
      }
    } else if (
      direct &&
      (this.#lastNoDirectWarning === undefined || now - this.#lastNoDirectWarning >= NO_DIRECT_WARN_EVERY_MS)
    ) {
      this.#lastNoDirectWarning = now;
      this.#log.warn(
        { check: 'attributed', reason: direct.reason, rounds: state.rounds },
        `${answering('attributed')} answer(s) from attribution, but no direct fetch has succeeded since start: with no ` +
          'direct route (e.g. Squid chained to a parent proxy) an attributed endpoint fails only when ' +
          'the proxy does not answer at all',
      );
    }
  }

  /**
   * One warning when checks start failing for a local reason (this process is out of descriptors,
   * buffers or ports), one line when they stop: not one per round, which at the fast pace would
   * flood the log of a process that is already short of resources.
   */
  #logLocal(evidence: RoundEvidence): void {
    const reasons = localFailures(evidence);
    if (reasons.length > 0) {
      if (this.#localBurst === 0) {
        this.#log.warn(
          { reasons },
          'checks failed for a local reason of the sidecar (not counted against the proxy)',
        );
      }
      this.#localBurst += 1;
    } else if (this.#localBurst > 0) {
      this.#log.info({ rounds: this.#localBurst }, 'checks no longer fail for local reasons');
      this.#localBurst = 0;
    }
  }
}
