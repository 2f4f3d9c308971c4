// Flags for the server's node that NODE_OPTIONS refuses (--cpu-prof, --trace-gc, ...). The test
// helpers spawn `[...wrapper, node, binary, ...]`: this wrapper is a shell that drops the node it is
// handed and runs one with the flags.

/** The wrapper for startDnsServer / startSidecarProcess; `before` goes first (e.g. taskset). */
export function withNodeFlags(flags: string | undefined, before: readonly string[] = []): string[] {
  if (flags === undefined) return [...before];
  return [...before, 'sh', '-c', `shift; exec "${process.execPath}" ${flags} "$@"`, 'sh'];
}
