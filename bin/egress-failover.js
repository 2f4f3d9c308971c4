#!/usr/bin/env node
// Thin launcher: the compiled composition root does the work and hands back an exit code.
import { internalError } from '../dist/errors.js';
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    // The last resort, for what main() did not turn into an operator error itself: a bug, so the
    // catalogue's INTERNAL (exit 70) with its hint, and the stack for the report it asks for.
    const error = internalError(err);
    process.stderr.write(`egress-failover: ${error.message} (${error.hint})\n${err?.stack ?? ''}\n`);
    process.exit(error.exitCode);
  },
);
