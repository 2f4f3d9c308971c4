// Section 3: the sidecar. From spawn to its first HTTP answer on /readyz (200 or 503: the process is
// serving) and to its first 200 (a deep round passed through the Squid), its RSS, and how fast
// /readyz answers while its Squid is hung (SIGSTOP): it must answer from the last round at once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BINARY, httpGet } from '../test/helpers/dns-process.js';
import { endGroup, spawnGroup } from '../test/helpers/process.js';
import { GiveUp, waitFor } from '../test/helpers/wait.js';
import type { Fleet } from './lib/fleet.js';
import { SIDECAR_NODE_OPTIONS } from './lib/image-env.js';
import { freePort } from './lib/peers.js';
import { memory } from './lib/proc.js';
import { type Summary, summarize } from './lib/stats.js';

export interface SidecarResult {
  readonly startToFirstAnswerMs: Summary;
  readonly startToReadyMs: Summary;
  readonly rssMb: Summary;
  readonly hwmMb: Summary;
  /** /readyz answer times while the Squid is SIGSTOPped, ms. */
  readonly hungReadyzMs: Summary;
  readonly hungReadyzStatuses: readonly number[];
  /** From SIGSTOP until /readyz says 503. */
  readonly hungDetectMs: number;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

export async function runSidecar(
  fleet: Fleet,
  reps: number,
  log: (line: string) => void,
): Promise<SidecarResult> {
  const squid = fleet.squids[2] ?? fleet.squids[0];
  if (!squid) throw new Error('no squid');
  const dir = await mkdtemp(join(tmpdir(), 'ef-bench-sidecar-'));
  const host = '127.0.0.1';
  const first: number[] = [];
  const ready: number[] = [];
  const rss: number[] = [];
  const hwm: number[] = [];
  let hung: number[] = [];
  const statuses: number[] = [];
  let hungDetectMs = Number.NaN;
  try {
    for (let rep = 0; rep < reps; rep++) {
      const port = await freePort(host);
      const configPath = join(dir, `sidecar-${rep}.yaml`);
      const config = {
        sidecar: {
          listen: `${host}:${port}`,
          proxy: squid.address,
          targets: [fleet.targetUrl],
          interval: '1s',
          timeout: '500ms',
          fall: 2,
          fastInterval: '200ms',
        },
      };
      await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
      const address = { host, port };
      const started = now();
      // As its container runs it: the manifest's NODE_OPTIONS in place of the image's.
      const proc = spawnGroup(process.execPath, [BINARY, 'sidecar', '--config', configPath], {
        env: { ...process.env, NODE_OPTIONS: SIDECAR_NODE_OPTIONS },
      });
      try {
        const alive = () => {
          if (!proc.running()) throw new GiveUp(`sidecar exited:\n${proc.output()}`);
        };
        await waitFor(
          async () => {
            alive();
            const { status } = await httpGet(address, '/readyz', 1_000);
            return status === 200 || status === 503;
          },
          { timeoutMs: 15_000, intervalMs: 5, what: 'the sidecar to answer /readyz' },
        );
        first.push(now() - started);
        await waitFor(
          async () => {
            alive();
            return (await httpGet(address, '/readyz', 1_000)).status === 200;
          },
          { timeoutMs: 15_000, intervalMs: 5, what: 'the sidecar /readyz to be 200' },
        );
        ready.push(now() - started);
        // A few rounds in: the steady-state footprint.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const mem = memory(proc.pid);
        rss.push(mem.rssMb);
        hwm.push(mem.hwmMb);
        if (rep === reps - 1) {
          squid.stop();
          const stopped = now();
          try {
            await waitFor(async () => (await httpGet(address, '/readyz', 1_000)).status === 503, {
              timeoutMs: 15_000,
              intervalMs: 20,
              what: '/readyz to turn 503 with the squid hung',
            });
            hungDetectMs = now() - stopped;
            hung = [];
            for (let i = 0; i < 50; i++) {
              const t = now();
              const { status } = await httpGet(address, '/readyz', 2_000);
              hung.push(now() - t);
              statuses.push(status);
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          } finally {
            squid.cont();
          }
        }
      } finally {
        await endGroup(proc, 'SIGTERM', 3_000);
      }
      log(
        `  sidecar rep ${rep + 1}: first answer ${first.at(-1)?.toFixed(0)} ms, ready ${ready.at(-1)?.toFixed(0)} ms, rss ${rss.at(-1)?.toFixed(0)} MB`,
      );
    }
    log(
      `  hung squid: /readyz 503 after ${hungDetectMs.toFixed(0)} ms; answer time median ${summarize(hung).median.toFixed(2)} ms, max ${summarize(hung).max.toFixed(2)} ms`,
    );
    return {
      startToFirstAnswerMs: summarize(first),
      startToReadyMs: summarize(ready),
      rssMb: summarize(rss),
      hwmMb: summarize(hwm),
      hungReadyzMs: summarize(hung),
      hungReadyzStatuses: [...new Set(statuses)],
      hungDetectMs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
