// Edge: a worker thread that parses and validates one config text (load.ts), so that a large file
// holds up this thread and not the one answering DNS. It answers once and exits.
import { parentPort, workerData } from 'node:worker_threads';
import { type ParseKind, parseByKind } from './parse.js';

const { kind, text } = workerData as { kind: ParseKind; text: string };
const loaded = parseByKind(kind, text);
// The text is the caller's already: only the verdict travels back.
parentPort?.postMessage(loaded.ok ? { ok: true, config: loaded.config } : loaded);
