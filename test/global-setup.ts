// Before any test: the system tools the suite talks to are on PATH, or the run stops at once with
// one line naming what is missing and how to install it, instead of a wall of `spawn ... ENOENT`.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A command the tests run, and the Debian 12 package `bash .ci/run` installs it from. */
export interface Tool {
  readonly command: string;
  /** undefined: not from apt (comes with the machine image). */
  readonly apt: string | undefined;
}

export const TOOLS: readonly Tool[] = [
  { command: 'squid', apt: 'squid' },
  { command: 'unbound', apt: 'unbound' },
  { command: 'unbound-checkconf', apt: 'unbound' },
  { command: 'dig', apt: 'bind9-dnsutils' },
  { command: 'dnsperf', apt: 'dnsperf' },
  { command: 'promtool', apt: 'prometheus' },
  { command: 'kubectl', apt: undefined },
  { command: 'openssl', apt: 'openssl' },
  { command: 'curl', apt: 'curl' },
  { command: 'python3', apt: 'python3' },
  { command: 'gdnsd', apt: 'gdnsd' },
  { command: 'pdns_server', apt: 'pdns-server' },
];

// Debian puts squid, unbound, gdnsd and pdns_server in /usr/sbin, which a non-root user's PATH lacks.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The one line that says what is missing from `path` (a PATH value) and how to get it, or
 * undefined when nothing is. `elsewhere`: where an installed tool may be that PATH leaves out.
 */
export function missingToolsLine(
  path: string,
  tools: readonly Tool[] = TOOLS,
  elsewhere: readonly string[] = SBIN,
): string | undefined {
  const dirs = path.split(delimiter).filter((dir) => dir !== '');
  const missing = tools.filter((tool) => !dirs.some((dir) => isExecutable(join(dir, tool.command))));
  if (missing.length === 0) return undefined;
  const fromApt: Tool[] = [];
  const notApt: Tool[] = [];
  const offPath = new Map<string, string[]>();
  for (const tool of missing) {
    const dir = elsewhere.find((d) => isExecutable(join(d, tool.command)));
    if (dir !== undefined) offPath.set(dir, [...(offPath.get(dir) ?? []), tool.command]);
    else (tool.apt === undefined ? notApt : fromApt).push(tool);
  }
  const parts: string[] = [];
  if (fromApt.length > 0) {
    const named = fromApt.map((t) => (t.apt === t.command ? t.command : `${t.command} (${t.apt})`));
    parts.push(
      `${named.join(', ')} not installed: run \`bash .ci/run\` as root first (it apt-installs them on Debian 12, then runs the tests)`,
    );
  }
  if (notApt.length > 0) {
    parts.push(
      `${notApt.map((t) => t.command).join(', ')} not installed: it comes with the machine image, not from apt or .ci/run`,
    );
  }
  for (const [dir, commands] of offPath) {
    parts.push(`${commands.join(', ')} installed in ${dir}, which is not on PATH: add it`);
  }
  return `npm test: ${parts.join('; ')}`;
}

export default function setup(): void {
  const line = missingToolsLine(process.env.PATH ?? '');
  if (line === undefined) return;
  // One line and out: a thrown error would be printed with a frame and a banner around it.
  process.stderr.write(`${line}\n`);
  process.exit(1);
}
