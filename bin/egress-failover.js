#!/usr/bin/env node
// Thin launcher: the compiled composition root does the work and hands back an exit code.
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`egress-failover: internal error: ${err?.stack ?? err}\n`);
    process.exit(70);
  },
);
