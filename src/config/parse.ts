// Pure: a config text -> YAML -> schema -> config, or every problem as one "path: message" line an
// operator can act on. Run in a child process (parse-process.ts), and under vitest inline: the
// process that reads the file (load.ts) never loads the YAML parser or zod itself, which a sidecar
// in every Squid pod would otherwise carry at rest (about 20 MB of its RSS), and the dns server
// about 6 MB.
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { Loaded } from './load.js';
import {
  configKind,
  type DnsConfig,
  dnsConfigSchema,
  type SidecarConfig,
  sidecarConfigSchema,
} from './schema.js';

/** ['services', 0, 'pools', 1, 'proxy'] -> services[0].pools[1].proxy */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

// Operators write YAML, so the messages speak of lists and mappings, not arrays and objects.
function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return String(value);
  return `${typeof value} ${String(value)}`;
}

const EXPECTED: Record<string, string> = {
  array: 'a list',
  object: 'a mapping',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

// Zod's stock messages ("Invalid input: expected array, received undefined") describe the
// validator; these describe the file. Messages set in the schema itself take precedence.
const operatorMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${kind(issue.input)}`;
    case 'invalid_value':
      return `${JSON.stringify(issue.input)} is not one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'number' || issue.origin === 'int') return `must be at least ${issue.minimum}`;
      return undefined;
    case 'too_big':
      if (issue.origin === 'number' || issue.origin === 'int') return `must be at most ${issue.maximum}`;
      return undefined;
    default:
      return undefined;
  }
};

/** The YAML document as plain data, or its syntax errors as "line N column M: message" lines. */
function readYaml(
  text: string,
): { ok: true; data: unknown } | { ok: false; reason: 'invalid'; errors: string[] } {
  // prettyErrors would put the position in the message with a code excerpt over several lines;
  // a LineCounter gives the bare position for one line per error.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      reason: 'invalid',
      errors: doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `line ${line} column ${col}: ${e.message.split('\n')[0]}`;
      }),
    };
  }
  try {
    return { ok: true, data: doc.toJS() ?? {} };
  } catch (err) {
    // toJS throws on alias bombs (more alias expansions than maxAliasCount allows).
    return { ok: false, reason: 'invalid', errors: [`yaml: ${(err as Error).message.split('\n')[0]}`] };
  }
}

function validate<T>(data: unknown, text: string, schema: z.ZodType<T>): Loaded<T> {
  const result = schema.safeParse(data, { error: operatorMessages });
  if (result.success) return { ok: true, config: result.data, text };
  return {
    ok: false,
    reason: 'invalid',
    errors: result.error.issues.flatMap((issue) =>
      // zod reports a strict object's extra keys once, on the parent: name each key's own path.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key (check the spelling)`)
        : [`${formatPath(issue.path) || '(root)'}: ${issue.message}`],
    ),
  };
}

export function parseConfigText<T>(text: string, schema: z.ZodType<T>): Loaded<T> {
  const yaml = readYaml(text);
  return yaml.ok ? validate(yaml.data, text, schema) : yaml;
}

export type AnyConfig = { kind: 'dns'; config: DnsConfig } | { kind: 'sidecar'; config: SidecarConfig };

/**
 * For check-config, which is not told the kind: it is read from the parsed document (configKind
 * in schema.ts), so flow-style YAML, JSON and quoted keys are told apart as block YAML is.
 */
export function parseAnyConfigText(text: string): Loaded<AnyConfig> {
  const yaml = readYaml(text);
  if (!yaml.ok) return yaml;
  if (configKind(yaml.data) === 'sidecar') {
    const loaded = validate(yaml.data, text, sidecarConfigSchema);
    return loaded.ok ? { ...loaded, config: { kind: 'sidecar', config: loaded.config } } : loaded;
  }
  const loaded = validate(yaml.data, text, dnsConfigSchema);
  return loaded.ok ? { ...loaded, config: { kind: 'dns', config: loaded.config } } : loaded;
}

/** What each loader parses; a name rather than a schema, so that the parser process can be told it. */
export type ParseKind = 'dns' | 'sidecar' | 'any';

/** For parse-process.ts, and inline where it cannot run. */
export function parseByKind(kind: ParseKind, text: string): Loaded<unknown> {
  if (kind === 'dns') return parseConfigText(text, dnsConfigSchema);
  if (kind === 'sidecar') return parseConfigText(text, sidecarConfigSchema);
  return parseAnyConfigText(text);
}

/** "20.0 MB", "1.0 MiB" is the limit's own spelling; "812 bytes" below a KB. */
