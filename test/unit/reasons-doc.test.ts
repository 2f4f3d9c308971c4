// docs/reasons.md is the one list of failure reasons: every reason token the code can produce is
// on it. The tokens are read out of the source, so a new reason without a line there fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT, sourceFiles } from '../helpers/source-files.js';

/** Where reasons are made: the checks, the sidecar's verdicts, and the commands that run them. */
const SOURCES = ['src/health', 'src/sidecar', 'src/commands'];
/** Made but never shown: a round abandoned by stop() is dropped, not published. */
const NEVER_SHOWN = new Set(['stopped']);

const KEY = /(?:^|[\s(;,])([a-z][a-z0-9_]*)=/g;
const SNAKE_WORD = /^([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![a-z0-9_=])/;
const LEADING_WORD = /^([a-z][a-z0-9_]*)(?![a-z0-9_=])/;
const AFTER_PLACEHOLDER = /^[\s;,:()/]*([a-z][a-z0-9_]*)(?![a-z0-9_=])/;

/** The literal parts of a string literal or template (the text between its `${...}`). */
function literalParts(node: ts.Node): string[] | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isTemplateExpression(node)) {
    return [node.head.text, ...node.templateSpans.map((span) => span.literal.text)];
  }
  return undefined;
}

/**
 * `key=` tokens, and the leading word where `anyWord` or where it is snake_case (`connection_refused`).
 * Where `anyWord`, also the first word after each `${...}`: `${reason}; not counted: ...` is `not`.
 */
function tokensOf(parts: readonly string[], anyWord: boolean): string[] {
  const tokens = parts.flatMap((part) => [...part.matchAll(KEY)].map((m) => `${m[1]}=`));
  const words = [(anyWord ? LEADING_WORD : SNAKE_WORD).exec(parts[0] ?? '')?.[1]];
  if (anyWord) words.push(...parts.slice(1).map((part) => AFTER_PLACEHOLDER.exec(part)?.[1]));
  for (const word of words) if (word !== undefined && !word.startsWith('egress_')) tokens.push(word);
  return tokens;
}

/**
 * A literal stands where a reason goes: `reason: '...'`, `reason = '...'` (or `detail`, a reason's
 * first part), `new XAborted('...')`, or `finish(false, '...')` (a verdict and its reason).
 */
function inReasonPosition(literal: ts.Node): boolean {
  // Through `a ? '...' : '...'`, `(...)` and `x ?? '...'` to where the value goes.
  let node = literal;
  while (
    ts.isConditionalExpression(node.parent) ||
    ts.isParenthesizedExpression(node.parent) ||
    (ts.isBinaryExpression(node.parent) &&
      node.parent.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken)
  ) {
    node = node.parent;
  }
  const parent = node.parent;
  if (ts.isPropertyAssignment(parent) || ts.isVariableDeclaration(parent)) {
    return parent.initializer === node && /reason|detail/i.test(parent.name.getText());
  }
  if (ts.isBinaryExpression(parent) && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
    return parent.right === node && /reason/i.test(parent.left.getText());
  }
  if (ts.isNewExpression(parent)) return /Aborted|Abandoned/.test(parent.expression.getText());
  if (ts.isCallExpression(parent)) {
    const [first, second] = parent.arguments;
    return second === node && first !== undefined && /^(true|false)$/.test(first.getText());
  }
  return false;
}

/** A metric's `help: '...'` text may say `path=direct` of a label: words for people, not a reason. */
function isMetricHelp(node: ts.Node): boolean {
  const parent = node.parent as ts.Node | undefined;
  return parent !== undefined && ts.isPropertyAssignment(parent) && parent.name.getText() === 'help';
}

/** Every reason token in the source, with the files it comes from. */
function reasonTokensInCode(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const file of SOURCES.flatMap(sourceFiles)) {
    const source = ts.createSourceFile(
      file,
      readFileSync(join(ROOT, file), 'utf8'),
      ts.ScriptTarget.Latest,
      true,
    );
    // A constant named in a reason position (`reason: PENDING`) counts as its literal.
    const constants = new Map<string, ts.Node>();
    const visit = (node: ts.Node): void => {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
        constants.set(node.name.text, node.initializer);
      }
      let parts = isMetricHelp(node) ? undefined : literalParts(node);
      let anyWord = parts !== undefined && inReasonPosition(node);
      if (ts.isIdentifier(node) && inReasonPosition(node)) {
        const literal = constants.get(node.text);
        parts = literal && literalParts(literal);
        anyWord = true;
      }
      if (parts !== undefined) {
        for (const token of tokensOf(parts, anyWord)) {
          if (NEVER_SHOWN.has(token)) continue;
          found.set(token, (found.get(token) ?? new Set()).add(file));
        }
      }
      // Within a template only the whole counts; its parts are not literals of their own.
      if (!ts.isTemplateExpression(node)) ts.forEachChild(node, visit);
      else for (const span of node.templateSpans) ts.forEachChild(span.expression, visit);
    };
    visit(source);
  }
  return found;
}

const DOC = readFileSync(join(ROOT, 'docs', 'reasons.md'), 'utf8');

/** From each code span of `text`, its `key=` tokens and its leading word. */
const spanTokens = (text: string) =>
  [...text.matchAll(/`([^`\n]+)`/g)].flatMap((m) => tokensOf([m[1] as string], true));

/** The tokens docs/reasons.md mentions anywhere: those of its code spans, and every word in them. */
function reasonTokensInDoc(): Set<string> {
  const words = [...DOC.matchAll(/`([^`\n]+)`/g)].flatMap(
    (m) => (m[1] as string).match(/[a-z][a-z0-9_]*/g) ?? [],
  );
  return new Set([...spanTokens(DOC), ...words]);
}

/** The tokens the page's tables list as reasons or `_status` fields: each row's first cell. */
function listedTokens(): Set<string> {
  // The first table says where reasons are shown, not what they are.
  const lists = DOC.slice(DOC.indexOf('## One target'));
  const firstCells = [...lists.matchAll(/^\| ([^|]+) \|/gm)].map((m) => m[1] as string);
  return new Set(firstCells.flatMap(spanTokens));
}

describe('docs/reasons.md', () => {
  const code = reasonTokensInCode();

  it('finds the reasons in the source (the scan itself works)', () => {
    for (const known of [
      'ok',
      'aborted',
      'connection_refused',
      'proxy_dns_failure',
      'timeout=',
      'squid_error=',
      'status=',
      'tls_error=',
      'probe_error=',
      'round_timeout=',
      'resolve_error=',
      'passed=',
      'outside_at_fault',
      'pending',
      'recovering',
      'no',
    ]) {
      expect([...code.keys()]).toContain(known);
    }
  });

  it('lists every reason token the code can produce', () => {
    const doc = reasonTokensInDoc();
    const missing = [...code]
      .filter(([token]) => !doc.has(token))
      .map(([token, files]) => `${token} (${[...files].join(', ')})`);
    expect(missing, 'reasons made in the code but not listed in docs/reasons.md').toEqual([]);
  });

  it('lists no reason the code cannot produce', () => {
    const listed = listedTokens();
    expect(listed.size, 'the tables of docs/reasons.md were not found').toBeGreaterThan(20);
    const stale = [...listed].filter((token) => !code.has(token));
    expect(stale, 'listed in docs/reasons.md but made nowhere in the code').toEqual([]);
  });
});
