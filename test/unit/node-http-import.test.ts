// node:http is loaded through src/node-http.ts only. An ESM value import of 'node:http' reads every
// export, and on Node.js 22 and later (the image's runtime) that loads undici's WebSocket, which
// no part of ours uses (the sidecar at rest: 68.3 MB instead of 64.7). Node.js 20 has no such getter,
// so a test of the running process could not fail here; the source is what is checked.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, sourceFiles } from '../helpers/source-files.js';

const LOADER = 'src/node-http.ts';

/** Each import or re-export of 'node:http' that is not type-only: `import type`/`export type`. */
function valueImportsOfNodeHttp(source: string): string[] {
  const statements = source.match(/^\s*(?:import|export)\b[^;]*?from\s+['"]node:http['"]/gms) ?? [];
  const dynamic = source.match(/\bimport\(\s*['"]node:http['"]\s*\)/g) ?? [];
  return [...statements.filter((s) => !/^\s*(?:import|export)\s+type\b/.test(s)), ...dynamic];
}

describe('src/ loads node:http without its lazy exports', () => {
  it('tells value imports from type-only ones', () => {
    expect(valueImportsOfNodeHttp("import http from 'node:http';")).toHaveLength(1);
    expect(valueImportsOfNodeHttp("import { request, type IncomingMessage } from 'node:http';")).toHaveLength(
      1,
    );
    expect(valueImportsOfNodeHttp("export { request } from 'node:http';")).toHaveLength(1);
    expect(valueImportsOfNodeHttp("const h = await import('node:http');")).toHaveLength(1);
    expect(valueImportsOfNodeHttp("import type { IncomingMessage } from 'node:http';")).toEqual([]);
    expect(valueImportsOfNodeHttp("import { request } from 'node:https';")).toEqual([]);
  });

  it("no module but src/node-http.ts imports 'node:http' for its values", () => {
    const offenders = sourceFiles('src')
      .filter((path) => path !== LOADER)
      .filter((path) => valueImportsOfNodeHttp(readFileSync(join(ROOT, path), 'utf8')).length > 0);
    expect(offenders).toEqual([]);
  });
});
