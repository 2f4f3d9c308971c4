// Edge: a process of its own that parses and validates one config text (load.ts), for the sidecar:
// the text on stdin, the verdict v8-serialized on stdout, then it exits. A worker thread would do
// the same work, but its memory stays in the sidecar's process after it ends (3-7 MB, in every
// Squid pod); a process returns all of its memory when it exits.
import { serialize } from 'node:v8';
import { type ParseKind, parseByKind } from './parse.js';

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const loaded = parseByKind(process.argv[2] as ParseKind, Buffer.concat(chunks).toString('utf8'));
// The text is the caller's already: only the verdict travels back.
process.stdout.write(serialize(loaded.ok ? { ok: true, config: loaded.config } : loaded));
