// node:http for the rest of src/, loaded so that its lazy exports stay unloaded.
//
// An ESM `import ... from 'node:http'` snapshots every export of the module into its namespace,
// reading each getter. From Node.js 22 `http.WebSocket` is one, and reading it loads undici's
// WebSocket, a class we never use: 12-13 MB more RSS in a script that imports only node:http, and
// the sidecar at rest 68.3 MB instead of 64.7 (Node.js 26.12, the image's; README, Design choices).
// A CommonJS require hands back the module object itself; only the names taken below are read.
// Type-only imports of 'node:http' are erased and need no care.
import { createRequire } from 'node:module';

const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');

export const { createServer, request } = http;
