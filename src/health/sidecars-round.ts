// Edge: one round of a pool that reads its health from its pods (config `sidecars`): the URL's host
// re-resolved (every address: a headless Service names every pod), then its /readyz asked of every
// pod at once. Nothing goes through the proxy. Decisions on the answers are in pods-verdict.ts.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { formatDuration } from '../config/duration.js';
import type { SidecarsSettings } from '../config/schema.js';
import { bareHost } from '../url.js';
import { errorCode, errorText } from './error-reason.js';
import { podsVerdict } from './pods-verdict.js';
import { getFromEach } from './probe.js';
import type { LookupAll } from './resolve.js';
import type { RoundResult } from './round.js';

export interface SidecarsRoundOptions {
  readonly sidecars: SidecarsSettings;
  /** For the whole round: the name's lookup and every pod's answer. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** node:dns lookup (getaddrinfo, /etc/hosts and the search path included) by default. */
  readonly lookup?: LookupAll;
}

const lookupAll: LookupAll = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/**
 * Each round looks the name up again, so a pod that comes or goes is counted from the next round
 * on. A name that does not resolve, or to nothing, fails the round with the lookup's reason.
 */
export async function sidecarsRound(options: SidecarsRoundOptions): Promise<RoundResult> {
  const started = performance.now();
  const { url, minReady } = options.sidecars;
  const host = bareHost(new URL(url));
  const finish = (answers: Parameters<typeof podsVerdict>[0], noPods?: string) =>
    podsVerdict(answers, minReady, Math.round(performance.now() - started), Date.now(), noPods);

  let addresses: readonly string[];
  let timer: NodeJS.Timeout | undefined;
  try {
    addresses =
      isIP(host) !== 0
        ? [host]
        : await Promise.race([
            (options.lookup ?? lookupAll)(host),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
                options.timeoutMs,
              );
            }),
          ]);
  } catch (err) {
    const code = errorCode(err);
    const why =
      code === 'ETIMEOUT' ? `timeout=${formatDuration(options.timeoutMs)}` : (code ?? errorText(err));
    return finish([], `resolve_error=${why} host=${host}`);
  } finally {
    clearTimeout(timer);
  }
  const unique = [...new Set(addresses)];
  if (unique.length === 0) return finish([], `resolve_error=ENODATA host=${host}`);
  // Whatever the lookup took is taken from the pods' share: the round stays within `timeout`.
  const spentMs = performance.now() - started;
  return finish(await getFromEach(url, unique, options.timeoutMs, { signal: options.signal, spentMs }));
}
