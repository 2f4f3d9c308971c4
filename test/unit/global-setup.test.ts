// A fresh machine: the suite's first words say which system tool is missing and how to install it.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { missingToolsLine, TOOLS } from '../global-setup.js';

const ROOT = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'ef-global-setup-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A directory holding an executable stand-in for each of `commands`. */
function binDir(name: string, commands: readonly string[]): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  for (const command of commands) {
    writeFileSync(join(dir, command), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, command), 0o755);
  }
  return dir;
}

const all = TOOLS.map((tool) => tool.command);
const without = (...gone: string[]) => all.filter((command) => !gone.includes(command));

describe('missingToolsLine', () => {
  it('says nothing when every tool is on PATH, wherever in PATH it is', () => {
    const path = [binDir('half-a', all.slice(0, 5)), binDir('half-b', all.slice(5))].join(delimiter);
    expect(missingToolsLine(path, TOOLS, [])).toBeUndefined();
  });

  it('names a missing apt tool with its package and the command that installs it', () => {
    const line = missingToolsLine(binDir('no-dig-squid', without('dig', 'squid')), TOOLS, []);
    expect(line).toBe(
      'npm test: squid, dig (bind9-dnsutils) not installed: run `bash .ci/run` as root first (it apt-installs them on Debian 12, then runs the tests)',
    );
  });

  it('does not send kubectl to apt: it comes with the machine image', () => {
    const line = missingToolsLine(binDir('no-kubectl', without('kubectl')), TOOLS, []);
    expect(line).toBe(
      'npm test: kubectl not installed: it comes with the machine image, not from apt or .ci/run',
    );
  });

  it('names the directory of a tool that is installed but off PATH', () => {
    const sbin = binDir('sbin', ['squid', 'unbound']);
    const line = missingToolsLine(binDir('no-sbin', without('squid', 'unbound')), TOOLS, [sbin]);
    expect(line).toBe(`npm test: squid, unbound installed in ${sbin}, which is not on PATH: add it`);
  });

  it('ignores a file of the right name that is not executable', () => {
    const dir = binDir('not-executable', without('curl'));
    writeFileSync(join(dir, 'curl'), 'not a program');
    expect(missingToolsLine(dir, TOOLS, [])).toMatch(/^npm test: curl not installed: run `bash \.ci\/run`/);
  });
});

describe('the suite on a machine without dig', () => {
  it('stops before any test with the one line on stderr', async () => {
    const path = binDir('vitest-no-dig', without('dig'));
    const vitest = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
    const run = promisify(execFile)(process.execPath, [vitest, 'run', 'test/unit/log.test.ts'], {
      cwd: ROOT,
      env: { ...process.env, PATH: path, NO_COLOR: '1', FORCE_COLOR: '0' },
      timeout: 60_000,
    });
    const failed = await run.then(
      () => undefined,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(
      'npm test: dig (bind9-dnsutils) not installed: run `bash .ci/run` as root first (it apt-installs them on Debian 12, then runs the tests)\n',
    );
    expect(failed?.stdout).not.toMatch(/Test Files|passed/);
  });
});
