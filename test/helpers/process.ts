// Helper processes for tests and benchmarks (squid, unbound, our own binary): each one in its own
// process group, ended by its id, never by name, so parallel runs and other engineers' processes
// on the same machine are never hit.
import { type ChildProcess, spawn } from 'node:child_process';

export interface GroupProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr so far (capped), for error messages. */
  output(): string;
  /** True until the process has exited. */
  running(): boolean;
}

const OUTPUT_CAP = 64 * 1024;

/** Spawns `command` as the leader of a new process group (detached), capturing its output. */
export function spawnGroup(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): GroupProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_CAP);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      alive = false;
      collect(Buffer.from(String(err)));
      resolve({ code: null, signal: null });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return { pid: child.pid, child, exited, output: () => output, running: () => alive };
}

/** Sends `signal` to the whole group led by `proc` (its helpers too); a no-op once it has exited. */
export function signalGroup(proc: GroupProcess, signal: NodeJS.Signals): void {
  if (!proc.running()) return;
  try {
    process.kill(-proc.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Ends the group: SIGCONT first (a SIGSTOPped process cannot act on anything else), then `signal`,
 * and SIGKILL if it is still there after graceMs.
 */
export async function endGroup(proc: GroupProcess, signal: NodeJS.Signals = 'SIGKILL', graceMs = 3_000) {
  if (!proc.running()) return proc.exited;
  signalGroup(proc, 'SIGCONT');
  signalGroup(proc, signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  if ((await Promise.race([proc.exited, late])) === 'late') signalGroup(proc, 'SIGKILL');
  clearTimeout(timer);
  return proc.exited;
}
