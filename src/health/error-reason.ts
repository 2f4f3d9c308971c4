// Pure: errors as short, stable tokens for reasons (`probe_error=`, `resolve_error=`, `error=`):
// one word, bounded, never a stack, so a reason fits a TXT string and a log field as it is.

/** The most specific code along the error's cause chain (wrapped errors carry the socket's in `cause`). */
export function errorCode(err: unknown): string | undefined {
  let found: string | undefined;
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') found = code;
    e = (e as { cause?: unknown }).cause;
  }
  return found;
}

/** The error's message as one token of at most 80 characters. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, '_').slice(0, 80) || 'unknown';
}

/** The reason of a check that threw rather than reporting its failure: a bug, named by its message. */
export function probeErrorReason(err: unknown): string {
  return `probe_error=${errorText(err)}`;
}

/**
 * Errors of this process or host, not of the network or the peer: out of file descriptors, buffers,
 * memory, local ports or addresses. A check that meets one has measured nothing about the proxy.
 */
const LOCAL_CODES = new Set([
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
  'EAGAIN',
]);

export function isLocalErrorCode(code: string | undefined): boolean {
  return code !== undefined && LOCAL_CODES.has(code);
}

/** The reason of a check that could not be made for a local reason: `probe_error=local:EMFILE`. */
export const LOCAL_ERROR_PREFIX = 'probe_error=local:';

export function isLocalReason(reason: string): boolean {
  return reason.startsWith(LOCAL_ERROR_PREFIX);
}
