// The catalogue of operator-facing errors and docs/ERRORS.md must agree: a code an operator can
// see is documented, and a documented code exists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bindError,
  CATALOGUE,
  configInvalid,
  configLoadError,
  EXIT,
  internalError,
  isOperatorError,
  OperatorError,
  unreadableLine,
  usageError,
} from '../../src/errors.js';

const doc = readFileSync(join(import.meta.dirname, '../../docs/ERRORS.md'), 'utf8');
const codes = Object.keys(CATALOGUE).sort();

describe('docs/ERRORS.md', () => {
  it('has a section for every code, and no section without one', () => {
    const sections = [...doc.matchAll(/^### ([A-Z_]+)$/gm)].map((m) => m[1]).sort();
    expect(sections).toEqual(codes);
  });

  it('lists every code with its exit code in the table, and nothing else', () => {
    const rows = [...doc.matchAll(/^\| ([A-Z_]+) *\| (\d+) *\|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(CATALOGUE).map(([code, entry]) => [code, entry.exitCode])),
    );
    expect(rows).toHaveLength(codes.length);
  });

  it('documents every exit code the program uses', () => {
    const documented = [...doc.matchAll(/^\| (\d+) *\|/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
    expect(documented).toEqual([...new Set(Object.values(EXIT))].sort((a, b) => a - b));
  });
});

describe('OperatorError', () => {
  it('carries its code, hint and exit code', () => {
    const err = usageError('unknown command "dnss" (expected dns, sidecar, probe, check-config)');
    expect(err).toBeInstanceOf(Error);
    expect(isOperatorError(err)).toBe(true);
    expect(isOperatorError(new Error('x'))).toBe(false);
    expect(err).toMatchObject({ code: 'USAGE', exitCode: 2, hint: 'see egress-failover --help' });
    expect(err.lines()).toEqual([
      'unknown command "dnss" (expected dns, sidecar, probe, check-config) (see egress-failover --help)',
    ]);
  });

  it('prints an invalid config as its "path: message" lines, one per error', () => {
    const errors = ['dns.ttl: must be at least 0', 'services: required'];
    const err = configInvalid('x.yaml', errors);
    expect(err).toMatchObject({
      code: 'CONFIG_INVALID',
      exitCode: 2,
      message: 'x.yaml: invalid config (2 errors)',
    });
    expect(err.lines()).toEqual(errors);
  });

  it('names an unreadable file and its errno, in one line the loader and the error share', () => {
    expect(unreadableLine('/etc/egress/config.yaml', 'ENOENT')).toBe(
      '/etc/egress/config.yaml: cannot read the config file (ENOENT)',
    );
  });

  it('turns a failed load into the matching error', () => {
    const unreadable = configLoadError('x.yaml', {
      reason: 'unreadable',
      errors: ['x.yaml: cannot read the config file (EACCES)'],
    });
    expect(unreadable).toMatchObject({ code: 'CONFIG_UNREADABLE', exitCode: 2 });
    expect(unreadable.lines()).toEqual([
      'x.yaml: cannot read the config file (EACCES) (check the path, and that the file or mounted ConfigMap is readable by this user)',
    ]);
    const invalid = configLoadError('x.yaml', { reason: 'invalid', errors: ['services: required'] });
    expect(invalid).toMatchObject({ code: 'CONFIG_INVALID', exitCode: 2 });
    expect(invalid.lines()).toEqual(['services: required']);
  });

  it('names the size and the limit of a file too large to read', () => {
    const err = configLoadError('x.yaml', {
      reason: 'too_large',
      errors: ['x.yaml: the config file is 20.0 MB, over the limit of 1 MiB'],
    });
    expect(err).toMatchObject({ code: 'CONFIG_TOO_LARGE', exitCode: 2 });
    expect(err.lines()).toEqual([
      `x.yaml: the config file is 20.0 MB, over the limit of 1 MiB (${CATALOGUE.CONFIG_TOO_LARGE.hint})`,
    ]);
  });

  it('keeps a bug apart from "unhealthy"', () => {
    const err = internalError(new TypeError('x is undefined\n    at f'));
    expect(err).toMatchObject({ code: 'INTERNAL', exitCode: 70, message: 'internal error: x is undefined' });
    expect(err.cause).toBeInstanceOf(TypeError);
  });
});

describe('the log line of an error that stops a start', () => {
  it('carries the stable code, the findings and no stack', () => {
    const err = configInvalid('x.yaml', ['services: required']);
    expect(err.toLog()).toEqual({
      code: 'CONFIG_INVALID',
      hint: CATALOGUE.CONFIG_INVALID.hint,
      details: ['services: required'],
    });
  });

  it('keeps the errno of a failed bind', () => {
    const cause = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:5353'), {
      code: 'EADDRINUSE',
    });
    const err = bindError(cause, 'dns.listen', { host: '127.0.0.1', port: 5353 });
    expect(err.toLog()).toEqual({
      code: 'ADDRESS_IN_USE',
      hint: 'another server is running?',
      cause: { code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 127.0.0.1:5353' },
    });
  });

  // pino's error serializer takes any object with a string `message` for an Error and adds a type
  // and an empty stack: the message travels as the line's msg instead.
  it('has no message of its own', () => {
    expect(usageError('x').toLog()).not.toHaveProperty('message');
  });

  it('is what docs/ERRORS.md promises', () => {
    expect(doc).toContain('`err.code`');
    expect(doc).toMatch(/`dns` and `sidecar`[^.]*log/);
  });
});

describe('bindError', () => {
  const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen' });

  it('names the key and the address of a port in use', () => {
    const err = bindError(errno('EADDRINUSE'), 'dns.listen', { host: '127.0.0.1', port: 5353 });
    expect(err.code).toBe('ADDRESS_IN_USE');
    expect(err.exitCode).toBe(2);
    expect(err.lines()).toEqual([
      'dns.listen 127.0.0.1:5353: address already in use (another server is running?)',
    ]);
  });

  it('brackets IPv6 addresses', () => {
    const err = bindError(errno('EADDRNOTAVAIL'), 'http.listen', { host: 'fd00::1', port: 8080 });
    expect(err.code).toBe('ADDRESS_NOT_AVAILABLE');
    expect(err.message).toBe('http.listen [fd00::1]:8080: address not available');
  });

  it('explains a privileged port, and a refusal elsewhere differently', () => {
    const low = bindError(errno('EACCES'), 'dns.listen', { host: '0.0.0.0', port: 53 });
    expect(low.code).toBe('PERMISSION_DENIED');
    expect(low.hint).toContain('CAP_NET_BIND_SERVICE');
    const high = bindError(errno('EACCES'), 'dns.listen', { host: '0.0.0.0', port: 5353 });
    expect(high.code).toBe('PERMISSION_DENIED');
    expect(high.hint).not.toContain('1024');
  });

  it('keeps any other errno, and the original error as the cause', () => {
    const cause = errno('EINVAL');
    const err = bindError(cause, 'sidecar.listen', { host: '0.0.0.0', port: 8081 });
    expect(err).toMatchObject({
      code: 'BIND_FAILED',
      message: 'sidecar.listen 0.0.0.0:8081: cannot listen (EINVAL)',
    });
    expect(err.cause).toBe(cause);
  });

  it('every code it can return is in the catalogue', () => {
    for (const code of ['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES', 'EPERM', 'EINVAL']) {
      const err = bindError(errno(code), 'dns.listen', { host: '0.0.0.0', port: 5353 });
      expect(err).toBeInstanceOf(OperatorError);
      expect(Object.keys(CATALOGUE)).toContain(err.code);
    }
  });
});
