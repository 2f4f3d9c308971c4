// Edge: a process of its own that parses and validates one config text (load.ts): the text on
// stdin, the verdict v8-serialized on stdout (a config in parts, parts.ts), then it exits.
import { serialize } from 'node:v8';
import { type ParseKind, parseByKind } from './parse.js';
import { inParts } from './parts.js';

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const loaded = parseByKind(process.argv[2] as ParseKind, Buffer.concat(chunks).toString('utf8'));
// The text is the caller's already: only the verdict travels back.
process.stdout.write(serialize(loaded.ok ? { ok: true, parts: inParts(loaded.config) } : loaded));
