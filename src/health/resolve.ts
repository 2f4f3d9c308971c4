// Edge: the addresses a pool is answered with. A pool's own `address` is served as written; without
// one, the proxy host is resolved (A and AAAA) at start and every refreshMs, because a Kubernetes
// Service's ClusterIP can change when the Service is recreated.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { PoolConfig } from '../config/schema.js';
import { bareHost } from '../url.js';
import { errorCode, errorText } from './error-reason.js';
import type { ResolveError } from './snapshot.js';

/** Every address of a host name, both families. */
export type LookupAll = (host: string) => Promise<readonly string[]>;

export interface PoolAddressState {
  readonly addresses: readonly string[];
  readonly source: 'config' | 'dns';
  readonly resolveError: ResolveError | undefined;
}

export interface PoolAddressOptions {
  readonly lookup?: LookupAll;
  /** Default 30 s. */
  readonly refreshMs?: number;
  /** getaddrinfo cannot be cancelled; stop waiting for it after this long. Default 5 s. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  /** Called whenever addresses or the error change. */
  readonly onChange?: (state: PoolAddressState) => void;
}

const defaultLookup: LookupAll = async (host) => {
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((entry) => entry.address);
};

/** The host of a proxy URL, without the brackets of an IPv6 literal. */
function proxyHost(proxyUrl: string): string {
  return bareHost(new URL(proxyUrl));
}

export class PoolAddresses {
  /** Settles once the first resolution has succeeded, failed or timed out. */
  readonly ready: Promise<void>;
  #state: PoolAddressState;
  readonly #host: string | undefined;
  readonly #lookup: LookupAll;
  readonly #refreshMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #onChange: ((state: PoolAddressState) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #markReady: () => void = () => {};

  constructor(pool: PoolConfig, options: PoolAddressOptions = {}) {
    this.#lookup = options.lookup ?? defaultLookup;
    this.#refreshMs = options.refreshMs ?? 30_000;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
    const host = proxyHost(pool.proxy);
    if (pool.addresses !== undefined) {
      this.#state = { addresses: pool.addresses, source: 'config', resolveError: undefined };
    } else if (isIP(host) !== 0) {
      // An IP-literal proxy needs no resolution: the config file already says the address.
      this.#state = { addresses: [host], source: 'config', resolveError: undefined };
    } else {
      this.#host = host;
      this.#state = { addresses: [], source: 'dns', resolveError: undefined };
    }
    this.ready =
      this.#host === undefined
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.#markReady = resolve;
          });
  }

  current(): PoolAddressState {
    return this.#state;
  }

  start(): void {
    if (this.#host === undefined || this.#stopped || this.#timer !== undefined) return;
    void this.#refresh(this.#host);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#markReady();
  }

  async #refresh(host: string): Promise<void> {
    let next: PoolAddressState;
    try {
      const found = await withTimeout(this.#lookup(host), this.#timeoutMs);
      const addresses = order(found);
      if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENODATA' });
      next = { addresses, source: 'dns', resolveError: undefined };
    } catch (err) {
      // Keep serving the last good addresses: a DNS hiccup must not take a healthy pool off the air.
      const reason = `resolve_error=${errorCode(err) ?? errorText(err)} host=${host}`;
      const previous = this.#state.resolveError;
      next = {
        ...this.#state,
        resolveError: previous?.reason === reason ? previous : { reason, at: this.#now() },
      };
    }
    if (this.#stopped) return;
    const changed =
      next.resolveError !== this.#state.resolveError ||
      next.addresses.join() !== this.#state.addresses.join();
    this.#state = next;
    this.#markReady();
    if (changed) this.#onChange?.(next);
    // Chained rather than setInterval, so a slow lookup never overlaps the next one.
    this.#timer = setTimeout(() => void this.#refresh(host), this.#refreshMs);
  }
}

/** IPv4 first, then IPv6, each sorted: a stable order means no spurious "changed" events. */
function order(addresses: readonly string[]): string[] {
  const unique = [...new Set(addresses)];
  const v4 = unique.filter((a) => isIP(a) === 4).sort();
  const v6 = unique.filter((a) => isIP(a) === 6).sort();
  return [...v4, ...v6];
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
