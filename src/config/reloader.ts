// Edge: keeps a running command in step with its config file, on SIGHUP and whenever the file
// changes. A new config is validated whole first (off the main thread, load.ts); an invalid or
// oversized one, or one the command refuses (a moved listen address), is logged by path and the
// config in force keeps serving.
import { createHash } from 'node:crypto';
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import type { Loaded } from './load.js';

export type ReloadTrigger = 'SIGHUP' | 'file';

const MAX_LOGGED_ERRORS = 20;

/** sha256 of the file's text, first 12 hex digits: enough to tell two versions apart. */
const configHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

export interface ReloaderOptions<T> {
  readonly file: string;
  /** The text of the config in force at start. */
  readonly text: string;
  readonly load: (file: string) => Promise<Loaded<T>>;
  /** Why `next` cannot replace the config in force, one line each naming its key; empty: it can. */
  readonly refuse: (next: T) => readonly string[];
  /** Puts `next` in force; resolves once it serves. */
  readonly apply: (next: T) => Promise<void>;
  readonly log: {
    info(obj: Record<string, unknown>, msg: string): void;
    error(obj: Record<string, unknown>, msg: string): void;
  };
  /** Each reload that changed something or was refused, by result (for a metric). */
  readonly onResult?: (ok: boolean) => void;
  /** How often the file is checked (default 1 s). */
  readonly pollMs?: number;
}

export interface Reloader {
  /** The config in force: its hash and when it was loaded (epoch ms). */
  readonly inForce: { readonly hash: string; readonly loadedAt: number };
  reload(trigger: ReloadTrigger): Promise<void>;
  /** Stops watching; resolves once a reload under way has finished. */
  stop(): Promise<void>;
}

export function startReloader<T>(options: ReloaderOptions<T>): Reloader {
  const { file, log } = options;
  let inForce = { hash: configHash(options.text), loadedAt: Date.now() };

  const refused = (trigger: ReloadTrigger, errors: readonly string[]) => {
    options.onResult?.(false);
    // A large broken file can have thousands of errors: the first ones say what is wrong, and
    // one log line must stay a line (check-config lists them all).
    const shown =
      errors.length > MAX_LOGGED_ERRORS
        ? { errors: errors.slice(0, MAX_LOGGED_ERRORS), errors_total: errors.length }
        : { errors };
    log.error(
      { trigger, ...shown, config_hash: inForce.hash },
      'config reload refused: the config in force keeps serving',
    );
  };

  const reloadOnce = async (trigger: ReloadTrigger) => {
    const next = await options.load(file);
    if (!next.ok) return refused(trigger, next.errors);
    const hash = configHash(next.text);
    if (hash === inForce.hash) return;
    const reasons = options.refuse(next.config);
    if (reasons.length > 0) return refused(trigger, reasons);
    await options.apply(next.config);
    inForce = { hash, loadedAt: Date.now() };
    options.onResult?.(true);
    log.info({ trigger, config_hash: hash }, 'config reloaded');
  };

  // Reloads run one after another: a burst of SIGHUPs and file changes never interleaves two.
  let reloading = Promise.resolve();
  const reload = (trigger: ReloadTrigger) => {
    reloading = reloading
      .then(() => reloadOnce(trigger))
      .catch((err: unknown) => {
        log.error({ err, trigger }, 'config reload failed: the config in force keeps serving');
      });
    return reloading;
  };

  // Polling stat follows the symlinks a mounted ConfigMap is made of, so the kubelet's swap of
  // `..data` shows as a new inode; fs.watch would keep watching the unlinked old file.
  const onFileChange = (now: Stats, before: Stats) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
      void reload('file');
  };
  watchFile(file, { interval: options.pollMs ?? 1_000, persistent: false }, onFileChange);

  return {
    get inForce() {
      return inForce;
    },
    reload,
    async stop() {
      unwatchFile(file, onFileChange);
      await reloading;
    },
  };
}

/** "dns.listen: changed from A to B; ..." for each listen address that moved. */
export function movedListenAddresses(
  pairs: readonly (readonly [key: string, before: string, after: string])[],
): string[] {
  return pairs
    .filter(([, before, after]) => before !== after)
    .map(
      ([key, before, after]) =>
        `${key}: changed from ${before} to ${after}; listen addresses change only on a restart`,
    );
}
