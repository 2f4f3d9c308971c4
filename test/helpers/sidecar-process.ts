// The real `sidecar` binary as a child process (compiled dist/, as operators run it), for tests
// and benchmarks that need it in a process of its own: its own descriptor limit (through a
// wrapper such as prlimit), its own event loop. Build first: `npx tsc -p tsconfig.build.json`.
//
//   const sidecar = await startSidecarProcess({ proxy: squid.address, targets: [url] }, {
//     wrapper: ['prlimit', '--nofile=1024:1024'],
//   });
//   await sidecar.get('/readyz');
//   await sidecar.dispose();
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Address, BINARY, type HttpAnswer, httpGet } from './dns-process.js';
import { endGroup, type GroupProcess, spawnGroup } from './process.js';
import { GiveUp, waitFor } from './wait.js';

export interface SidecarProcess {
  readonly pid: number;
  readonly proc: GroupProcess;
  readonly address: Address;
  get(path: string, timeoutMs?: number): Promise<HttpAnswer>;
  /** Ends the process if still running and removes the temp dir. Never throws. */
  dispose(): Promise<void>;
}

/** `sidecar`: the config's `sidecar:` block; `listen` defaults to 127.0.0.1:0. */
export async function startSidecarProcess(
  sidecar: Record<string, unknown>,
  options: { readonly wrapper?: readonly string[]; readonly startTimeoutMs?: number } = {},
): Promise<SidecarProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-sidecar-'));
  const configPath = join(dir, 'sidecar.yaml');
  await writeFile(
    configPath,
    `${JSON.stringify({ sidecar: { listen: '127.0.0.1:0', ...sidecar } }, null, 2)}\n`,
  );
  const [command, ...wrapperArgs] = [...(options.wrapper ?? []), process.execPath];
  const proc = spawnGroup(command as string, [...wrapperArgs, BINARY, 'sidecar', '--config', configPath]);
  const dispose = async () => {
    await endGroup(proc, 'SIGKILL').catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    // The bound port is read from its own "serving" line, so parallel runs never race for one.
    const listen = await waitFor(
      () => {
        if (!proc.running()) throw new GiveUp(`the sidecar exited during start-up:\n${proc.output()}`);
        const serving = /"listen":"([^"]+):(\d+)"[^\n]*"msg":"serving"/.exec(proc.output());
        return serving ?? undefined;
      },
      { timeoutMs: options.startTimeoutMs ?? 15_000, what: 'the sidecar to log "serving"' },
    );
    const address = { host: listen[1] as string, port: Number(listen[2]) };
    return {
      pid: proc.pid,
      proc,
      address,
      get: (path, timeoutMs) => httpGet(address, path, timeoutMs),
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
