// Reading a config file: YAML (JSON is valid YAML) -> schema -> frozen config, or every problem
// as one "path: message" line an operator can act on.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type DnsConfig, dnsConfigSchema, type SidecarConfig, sidecarConfigSchema } from './schema.js';

export type Loaded<T> = { ok: true; config: T; text: string } | { ok: false; errors: string[] };

/** ['services', 0, 'pools', 1, 'proxy'] -> services[0].pools[1].proxy */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

export function parseConfigText<T>(text: string, schema: z.ZodType<T>): Loaded<T> {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const where = e.linePos?.[0];
        return `${where ? `line ${where.line} column ${where.col}` : 'yaml'}: ${e.message.split('\n')[0]}`;
      }),
    };
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return { ok: true, config: result.data, text };
  return {
    ok: false,
    errors: result.error.issues.flatMap((issue) =>
      // zod reports a strict object's extra keys once, on the parent: name each key's own path.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key (check the spelling)`)
        : [`${formatPath(issue.path) || '(root)'}: ${issue.message}`],
    ),
  };
}

async function loadFile<T>(file: string, schema: z.ZodType<T>): Promise<Loaded<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, errors: [`${file}: cannot read the config file (${code})`] };
  }
  return parseConfigText(text, schema);
}

export const loadDnsConfig = (file: string): Promise<Loaded<DnsConfig>> => loadFile(file, dnsConfigSchema);
export const loadSidecarConfig = (file: string): Promise<Loaded<SidecarConfig>> =>
  loadFile(file, sidecarConfigSchema);
