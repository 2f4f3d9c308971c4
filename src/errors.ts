// The operator-facing errors: each has a stable code (documented in docs/ERRORS.md, a test keeps
// the two in step), a one-line message naming what is wrong and where, a hint, and an exit code.
//
//   class OperatorError { code, message, hint, exitCode, details, cause; lines(): string[]; toLog() }
//   configInvalid(file, errors)          CONFIG_INVALID     exit 2
//   unreadableLine(file, errnoCode)      the line of CONFIG_UNREADABLE (exit 2), as the loader reports it
//   (a file over 1 MiB)                  CONFIG_TOO_LARGE   exit 2
//   configLoadError(file, failure)       one of the three, from a failed Loaded of src/config/load.ts
//   bindError(err, listenKey, address)   ADDRESS_IN_USE | ADDRESS_NOT_AVAILABLE | PERMISSION_DENIED | BIND_FAILED, exit 2
//   usageError(message)                  USAGE              exit 2
//   internalError(cause)                 INTERNAL           exit 70
//   EXIT                                 the exit codes, by meaning
//
// What a command exits with:
//   0   success; `probe`: healthy
//   1   `check-config`: the config is invalid or unreadable; `probe`: not healthy
//   2   usage error; `dns`/`sidecar`: bad or unreadable config, a listen address that cannot be bound
//   70  a bug (EX_SOFTWARE from sysexits.h), so that it is never read as "unhealthy"
// check-config answers a question ("is this file good?") and 1 is its "no"; for dns and sidecar
// the same finding means they could not start, which is exit 2 (README, docs/ERRORS.md).

import { formatAddress } from './listen-address.js';

export const EXIT = {
  OK: 0,
  /** check-config: the config is not good; probe: the proxy is not healthy. */
  NOT_OK: 1,
  /** Usage errors, and dns/sidecar refusing to start (bad config, listen address). */
  CANNOT_START: 2,
  INTERNAL: 70,
} as const;

export interface CatalogueEntry {
  readonly exitCode: number;
  /** What to do about it, in a few words: printed after the message, in parentheses. */
  readonly hint: string;
}

export const CATALOGUE = {
  CONFIG_INVALID: {
    exitCode: EXIT.CANNOT_START,
    hint: 'fix each field named; `egress-failover check-config FILE` lists them all',
  },
  CONFIG_UNREADABLE: {
    exitCode: EXIT.CANNOT_START,
    hint: 'check the path, and that the file or mounted ConfigMap is readable by this user',
  },
  CONFIG_TOO_LARGE: {
    exitCode: EXIT.CANNOT_START,
    hint: 'a config is a few KB; check that --config names the config file and not something else',
  },
  ADDRESS_IN_USE: { exitCode: EXIT.CANNOT_START, hint: 'another server is running?' },
  ADDRESS_NOT_AVAILABLE: {
    exitCode: EXIT.CANNOT_START,
    hint: 'not an address of this host; use 0.0.0.0, [::] or an interface address',
  },
  PERMISSION_DENIED: {
    exitCode: EXIT.CANNOT_START,
    hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port such as 5353',
  },
  BIND_FAILED: { exitCode: EXIT.CANNOT_START, hint: 'see the logged error for the cause' },
  USAGE: { exitCode: EXIT.CANNOT_START, hint: 'see egress-failover --help' },
  INTERNAL: { exitCode: EXIT.INTERNAL, hint: 'a bug: please report it with the log lines around it' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

export class OperatorError extends Error {
  override readonly name = 'OperatorError';
  readonly code: ErrorCode;
  readonly hint: string;
  readonly exitCode: number;
  /** One line per finding, when there are several (the config's "path: message" lines). */
  readonly details: readonly string[];

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: readonly string[]; cause?: unknown; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint ?? CATALOGUE[code].hint;
    this.exitCode = CATALOGUE[code].exitCode;
    this.details = options.details ?? [];
  }

  /**
   * What to print on stderr, without a stack: the findings one per line where there are some
   * (they name their field and need no hint), else the message with its hint.
   */
  lines(): string[] {
    return this.details.length > 0 ? [...this.details] : [`${this.message} (${this.hint})`];
  }

  /**
   * What `dns` and `sidecar` log under `err` when they cannot start (the message is the line's
   * `msg`): the stable code to search by, the findings, and the system error behind a bind failure
   * with its errno. No stack: the fault is in the config or the host, not in the code. (Without a
   * `message` of its own, pino's error serializer leaves the object as it is.)
   */
  toLog(): Record<string, unknown> {
    const cause = this.cause as NodeJS.ErrnoException | undefined;
    return {
      code: this.code,
      hint: this.hint,
      ...(this.details.length > 0 ? { details: this.details } : {}),
      ...(cause instanceof Error
        ? { cause: { message: cause.message, ...(cause.code === undefined ? {} : { code: cause.code }) } }
        : {}),
    };
  }
}

export function isOperatorError(value: unknown): value is OperatorError {
  return value instanceof OperatorError;
}

/** `errors` are the "path: message" lines of src/config/load.ts. */
export function configInvalid(file: string, errors: readonly string[]): OperatorError {
  const count = errors.length === 1 ? '1 error' : `${errors.length} errors`;
  return new OperatorError('CONFIG_INVALID', `${file}: invalid config (${count})`, { details: errors });
}

/** The one line of CONFIG_UNREADABLE, built here for the loader (which reports it) and for us. */
export function unreadableLine(file: string, errnoCode: string | undefined): string {
  return `${file}: cannot read the config file (${errnoCode ?? 'error'})`;
}

/** The failed result of loadDnsConfig/loadSidecarConfig as the error that stops a start. */
export function configLoadError(
  file: string,
  failure: { readonly reason: 'invalid' | 'unreadable' | 'too_large'; readonly errors: readonly string[] },
): OperatorError {
  if (failure.reason === 'invalid') return configInvalid(file, failure.errors);
  // The loader's line already names the file and the errno, or the size and the limit.
  if (failure.reason === 'too_large')
    return new OperatorError(
      'CONFIG_TOO_LARGE',
      failure.errors[0] ?? `${file}: the config file is too large`,
    );
  return new OperatorError('CONFIG_UNREADABLE', failure.errors[0] ?? unreadableLine(file, undefined));
}

export function usageError(message: string): OperatorError {
  return new OperatorError('USAGE', message);
}

export function internalError(cause: unknown): OperatorError {
  const text = cause instanceof Error ? cause.message : String(cause);
  return new OperatorError('INTERNAL', `internal error: ${text.split('\n')[0]}`, { cause });
}

/**
 * A failed bind or listen (net, dgram, http) as the line an operator needs, e.g.
 * `dns.listen 127.0.0.1:5353: address already in use (another server is running?)`.
 * `listenKey` is the config key the address came from, so the message names the field to change.
 */
export function bindError(
  err: unknown,
  listenKey: string,
  address: { readonly host: string; readonly port: number },
): OperatorError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${listenKey} ${formatAddress(address)}`;
  switch (errno) {
    case 'EADDRINUSE':
      return new OperatorError('ADDRESS_IN_USE', `${where}: address already in use`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new OperatorError('ADDRESS_NOT_AVAILABLE', `${where}: address not available`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new OperatorError('PERMISSION_DENIED', `${where}: permission denied`, {
        cause: err,
        // The usual cause is a privileged port; above 1024 it is a policy (SELinux, seccomp, a PSP).
        ...(address.port >= 1024 ? { hint: 'a security policy refuses this address to this user' } : {}),
      });
    default:
      return new OperatorError('BIND_FAILED', `${where}: cannot listen (${errno ?? String(err)})`, {
        cause: err,
      });
  }
}
