// The sidecar in-process against a real Squid (apt squid 5.7) and a real loopback origin, with the
// faults a Squid pod meets: egress cut, outside site failing, hung (SIGSTOP), killed. Four
// sidecars watch the same Squid, one per liveness mode (readiness deep) and one with
// `readiness: attributed` (liveness deep), so every fault is seen by every mode.
// Addresses: squid 127.0.0.14:3128, origin 127.0.0.16:80, sidecars on 127.0.0.1 port 0.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsMetrics } from '../../src/commands/dns/metrics.js';
import { type RunningSidecar, runSidecar } from '../../src/commands/sidecar/run.js';
import {
  type LivenessMode,
  type ReadinessMode,
  type SidecarConfig,
  sidecarConfigSchema,
} from '../../src/config/schema.js';
import { isOperatorError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { SidecarBody } from '../../src/sidecar/routes.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { type Squid, type SquidFleet, startSquids } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const ORIGIN_HOST = '127.0.0.16';
const TARGET = `http://${ORIGIN_HOST}/`;
const INTERVAL_MS = 300;
const TIMEOUT_MS = 250;
const FAST_MS = 100;
const RISE = 2;
const FALL = 2;
/** fall rounds at the fast pace, plus the round already under way when the fault began, plus slack. */
const DETECT_MS = FALL * (TIMEOUT_MS + FAST_MS) + INTERVAL_MS + TIMEOUT_MS + 1_500;
const RECOVER_MS = RISE * (TIMEOUT_MS + FAST_MS) + INTERVAL_MS + TIMEOUT_MS + 1_500;

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ destination }) };
}

function config(liveness: LivenessMode, listen = '127.0.0.1:0', readiness?: ReadinessMode): SidecarConfig {
  return sidecarConfigSchema.parse(configFile(liveness, listen, readiness));
}

/** The config as written to a file (JSON is YAML), for the sidecars that reload. */
function configFile(liveness: LivenessMode, listen = '127.0.0.1:0', readiness?: ReadinessMode) {
  return {
    sidecar: {
      listen,
      proxy: 'http://127.0.0.14:3128',
      targets: [TARGET],
      interval: `${INTERVAL_MS}ms`,
      timeout: `${TIMEOUT_MS}ms`,
      fastInterval: `${FAST_MS}ms`,
      rise: RISE,
      fall: FALL,
      liveness,
      ...(readiness ? { readiness } : {}),
    },
  };
}

interface Watched {
  readonly running: RunningSidecar;
  readonly lines: Record<string, unknown>[];
}

/** The sidecars under test: one per liveness mode, and `ready`: readiness attributed, liveness deep. */
type Which = LivenessMode | 'ready';

let origin: Origin;
let fleet: SquidFleet | undefined;
let squid: Squid;
const sidecars = new Map<Which, Watched>();
const extra: RunningSidecar[] = [];

async function start(which: Which): Promise<Watched> {
  const { lines, logger } = capture();
  const chosen = which === 'ready' ? config('deep', undefined, 'attributed') : config(which);
  return { running: await runSidecar(chosen, logger), lines };
}

beforeAll(async () => {
  origin = await startOrigin({ host: ORIGIN_HOST, name: 'sidecar-origin.test' });
  fleet = await startSquids([{ label: 'sidecar', host: '127.0.0.14' }], { probeUrl: TARGET });
  [squid] = fleet.squids as [Squid];
  for (const which of ['deep', 'attributed', 'shallow', 'ready'] as const)
    sidecars.set(which, await start(which));
});

afterAll(async () => {
  await Promise.allSettled([...sidecars.values()].map((s) => s.running.stop()));
  await Promise.allSettled(extra.map((s) => s.stop()));
  await fleet?.stopAll();
  await origin?.close();
});

const CONNECTIONS = 'egress_squid_client_connections';

/** One GET through the Squid on a keep-alive agent, which keeps the connection afterwards. */
function fetchThroughSquid(agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: squid.host, port: squid.port, path: TARGET, agent }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
}

const sidecar = (which: Which) => sidecars.get(which)?.running as RunningSidecar;

async function get(running: RunningSidecar, path: string): Promise<{ status: number; body: SidecarBody }> {
  const { host, port } = running.address;
  const response = await fetch(`http://${host}:${port}${path}`);
  return { status: response.status, body: (await response.json()) as SidecarBody };
}

/** /metrics as "name{labels}" (as printed) -> value. */
async function scrape(running: RunningSidecar): Promise<Map<string, number>> {
  const { host, port } = running.address;
  const text = await (await fetch(`http://${host}:${port}/metrics`)).text();
  const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  return new Map(
    samples.map((line) => [
      line.slice(0, line.lastIndexOf(' ')),
      Number(line.slice(line.lastIndexOf(' ') + 1)),
    ]),
  );
}

/** Scrapes until `until` holds; the last scrape. */
const scrapeUntil = (
  running: RunningSidecar,
  until: (samples: Map<string, number>) => boolean,
  what: string,
) =>
  waitFor(
    async () => {
      const samples = await scrape(running);
      return until(samples) ? samples : undefined;
    },
    { timeoutMs: 5_000, what },
  );

/** The series of the attributed mode: its machine's state and the direct-route gauge. */
const attributedSeries = (samples: Map<string, number>) =>
  [...samples.keys()].filter(
    (key) =>
      key.startsWith('egress_sidecar_state{check="attributed"') ||
      key.startsWith('egress_sidecar_direct_ever_succeeded'),
  );

const statusOf = async (which: Which, path: string) => (await get(sidecar(which), path)).status;

/** Waits until every listed endpoint answers `status` and returns the last bodies. */
async function waitForStatus(
  checks: readonly [Which, string][],
  status: number,
  timeoutMs: number,
): Promise<SidecarBody[]> {
  return waitFor(
    async () => {
      const replies = await Promise.all(checks.map(([mode, path]) => get(sidecar(mode), path)));
      return replies.every((r) => r.status === status) ? replies.map((r) => r.body) : undefined;
    },
    { timeoutMs, what: `${checks.map(([m, p]) => `${m} ${p}`).join(', ')} to answer ${status}` },
  );
}

/** A sidecar started from a file in a temp directory, so reload() and the file watch re-read it. */
async function startReloading(liveness: LivenessMode) {
  const dir = await mkdtemp(join(tmpdir(), 'ef-sidecar-reload-'));
  const file = join(dir, 'sidecar.yaml');
  const text = JSON.stringify(configFile(liveness));
  await writeFile(file, text);
  const running = await runSidecar(config(liveness), capture().logger, { file, text });
  return {
    running,
    /** Replaced by rename, as the kubelet swaps a ConfigMap: one change of the file per write. */
    async replace(content: unknown) {
      await writeFile(`${file}.new`, JSON.stringify(content));
      await rename(`${file}.new`, file);
    },
    async stop() {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const reloads = (samples: Map<string, number>) => ({
  ok: samples.get('egress_config_reloads_total{result="ok"}'),
  failed: samples.get('egress_config_reloads_total{result="failed"}'),
});

const ALL_HEALTH: [Which, string][] = [
  ['deep', '/health'],
  ['attributed', '/health'],
  ['shallow', '/health'],
];
const READY_ATTRIBUTED: [Which, string] = ['ready', '/readyz'];

describe('sidecar against a real squid', () => {
  it('healthy: /readyz, /health and /livez 200 in every mode', async () => {
    const modes = ['deep', 'attributed', 'shallow', 'ready'] as const;
    const [readyz] = await waitForStatus(
      ['/readyz', '/health', '/livez'].flatMap((path) => modes.map((mode): [Which, string] => [mode, path])),
      200,
      5_000,
    );
    expect(readyz).toMatchObject({ status: 'ok', reason: 'ok', targets: [{ target: TARGET, ok: true }] });
    expect(readyz?.latency_ms).toEqual(expect.any(Number));
    const health = await get(sidecar('attributed'), '/health');
    expect(health.body).toMatchObject({
      mode: 'attributed',
      evidence: { proxy: { ok: true }, direct: { ok: true }, directEverSucceeded: true, fault: 'none' },
    });
    expect((await get(sidecar('deep'), '/readyz')).body).toMatchObject({ mode: 'deep', fault: null });
    expect((await get(sidecar('ready'), '/readyz')).body).toMatchObject({
      mode: 'attributed',
      fault: 'none',
      evidence: { direct: { ok: true }, directEverSucceeded: true },
    });
    // Readiness attributed makes the direct fetches, though liveness is deep.
    expect((await get(sidecar('ready'), '/health')).body).toMatchObject({ mode: 'deep', fault: null });
  });

  it('serves its own metrics', async () => {
    const { host, port } = sidecar('attributed').address;
    const text = await (await fetch(`http://${host}:${port}/metrics`)).text();
    expect(text).toContain('egress_sidecar_state{check="deep",state="healthy"} 1');
    expect(text).toMatch(
      /egress_sidecar_probe_results_total\{path="direct",target="http:\/\/127\.0\.0\.16\/",result="pass"\} \d+/,
    );
    expect(text).toContain('egress_sidecar_direct_ever_succeeded 1');
    expect(text).toContain('egress_sidecar_state{check="attributed",state="healthy"} 1');
    expect(text).toContain('egress_sidecar_endpoint_mode{endpoint="health",mode="attributed"} 1');
    expect(text).toContain('egress_sidecar_endpoint_mode{endpoint="readyz",mode="deep"} 1');
    expect(text).toContain('egress_probe_local_errors_total{check="direct"} 0');
  });

  it('readiness attributed: the mode gauge says so, and the attributed series are there', async () => {
    const samples = await scrape(sidecar('ready'));
    expect(samples.get('egress_sidecar_endpoint_mode{endpoint="readyz",mode="attributed"}')).toBe(1);
    expect(samples.get('egress_sidecar_endpoint_mode{endpoint="readyz",mode="deep"}')).toBe(0);
    expect(samples.get('egress_sidecar_endpoint_mode{endpoint="health",mode="deep"}')).toBe(1);
    expect(samples.get('egress_sidecar_state{check="attributed",state="healthy"}')).toBe(1);
    expect(samples.get('egress_sidecar_direct_ever_succeeded')).toBe(1);
    expect(samples.get('egress_sidecar_endpoint_ok{endpoint="readyz"}')).toBe(1);
  });

  it('egress_squid_client_connections counts the clients that keep their connection to Squid', async () => {
    const HELD = 12;
    const count = (m: Map<string, number>) => m.get(CONNECTIONS);
    await scrapeUntil(
      sidecar('deep'),
      (m) => count(m) !== undefined,
      'the connections gauge from the cache manager',
    );
    // Keep-alive clients, as Node's Agent, Go's Transport or a requests.Session keep them.
    const agents = Array.from({ length: HELD }, () => new Agent({ keepAlive: true }));
    try {
      await Promise.all(agents.map((agent) => fetchThroughSquid(agent)));
      // The sidecars' own probes come and go beside them (a fetch and a shallow check each, per round).
      const held = await scrapeUntil(
        sidecar('deep'),
        (m) => (count(m) ?? 0) >= HELD,
        `the ${HELD} held clients counted`,
      );
      expect(count(held)).toBeLessThanOrEqual(HELD + 2 * sidecars.size);
    } finally {
      for (const agent of agents) agent.destroy();
    }
    await scrapeUntil(sidecar('deep'), (m) => (count(m) ?? HELD) < HELD, 'the count to fall once they close');
  });

  // Regression: deep and shallow pods exported the unused attributed machine as healthy and
  // egress_sidecar_direct_ever_succeeded 0 ("no direct route"), while /health said null.
  it.each(['deep', 'shallow'] as const)('%s: exports no attributed-mode series', async (mode) => {
    const samples = await scrape(sidecar(mode));
    expect(samples.get('egress_sidecar_state{check="deep",state="healthy"}')).toBe(1);
    expect(samples.get('egress_sidecar_endpoint_ok{endpoint="health"}')).toBe(1);
    expect(attributedSeries(samples)).toEqual([]);
    expect((await get(sidecar(mode), '/health')).body.evidence?.directEverSucceeded).toBeNull();
  });

  it('config reloads (SIGHUP, file change) are counted by result, named as the dns server counts them', async () => {
    const reloading = await startReloading('deep');
    const { running } = reloading;
    try {
      const { host, port } = running.address;
      const own = await (await fetch(`http://${host}:${port}/metrics`)).text();
      // Same name, help, type and labels as the dns server's, so one alert covers both.
      const header = (text: string) =>
        text.split('\n').filter((line) => / egress_config_reloads_total /.test(line));
      expect(header(own)).toHaveLength(2);
      expect(header(own)).toEqual(
        header(await createDnsMetrics({ processMetrics: false }).registry.metrics()),
      );
      // Both at 0 from the start, so increase() sees the first refused reload as a rise.
      expect(reloads(await scrape(running))).toEqual({ ok: 0, failed: 0 });

      await reloading.replace(configFile('attributed'));
      await running.reload();
      expect(reloads(await scrape(running))).toEqual({ ok: 1, failed: 0 });

      // An invalid file (a typo'd key), seen by the file watch alone: refused and counted.
      await reloading.replace({ sidecar: { ...configFile('attributed').sidecar, livenes: 'deep' } });
      const samples = await scrapeUntil(
        running,
        (m) => reloads(m).failed === 1,
        'the invalid config refused',
      );
      expect(reloads(samples)).toEqual({ ok: 1, failed: 1 });
      expect((await get(running, '/health')).body.mode).toBe('attributed');
    } finally {
      await reloading.stop();
    }
  });

  it('a reload that changes liveness brings the attributed series and takes them away', async () => {
    const reloading = await startReloading('deep');
    const { running } = reloading;
    try {
      let samples = await scrapeUntil(
        running,
        (m) => m.get('egress_sidecar_state{check="deep",state="healthy"}') === 1,
        'the reloading sidecar healthy',
      );
      expect(attributedSeries(samples)).toEqual([]);

      await reloading.replace(configFile('attributed'));
      await running.reload();
      // At once, and started afresh: in deep mode no direct fetch was made, so the attributed
      // machine's old blame is not carried into a mode that answers /health from it.
      samples = await scrape(running);
      expect(samples.get('egress_sidecar_state{check="attributed",state="unknown"}')).toBe(1);
      expect(samples.get('egress_sidecar_endpoint_ok{endpoint="health"}')).toBe(1);
      await scrapeUntil(
        running,
        (m) =>
          m.get('egress_sidecar_direct_ever_succeeded') === 1 &&
          m.get('egress_sidecar_state{check="attributed",state="healthy"}') === 1,
        'a direct fetch to pass and the attributed verdict to form after the reload to attributed',
      );

      await reloading.replace(configFile('deep'));
      await running.reload();
      samples = await scrape(running);
      expect(attributedSeries(samples)).toEqual([]);
      expect(samples.get('egress_sidecar_state{check="deep",state="healthy"}')).toBe(1);
      expect(samples.get('egress_sidecar_endpoint_ok{endpoint="health"}')).toBe(1);
      expect((await get(running, '/health')).body.evidence?.directEverSucceeded).toBeNull();
    } finally {
      await reloading.stop();
    }
  });

  it('egress cut: 503 within fall rounds naming ERR_CONNECT_FAIL; deep and attributed /health 503', async () => {
    await squid.cutEgress();
    // The bound is the wait itself: DETECT_MS, derived from interval, timeout, fastInterval and fall.
    const [readyz, deep, attributed, ready] = await waitForStatus(
      [['deep', '/readyz'], ['deep', '/health'], ['attributed', '/health'], READY_ATTRIBUTED],
      503,
      DETECT_MS,
    );
    expect(readyz?.reason).toContain('squid_error=ERR_CONNECT_FAIL');
    expect(deep).toMatchObject({ status: 'error', mode: 'deep' });
    expect(attributed?.reason).toContain('direct=ok');
    expect(attributed?.evidence).toMatchObject({ fault: 'proxy', direct: { ok: true } });
    // Readiness attributed: the proxy fails what the pod reaches, so the pod leaves its Service.
    expect(ready).toMatchObject({ mode: 'attributed', fault: 'proxy' });
    expect(ready?.reason).toContain('squid_error=ERR_CONNECT_FAIL');
    expect(ready?.reason).toContain('direct=ok');
    // Squid still answers HTTP: the shallow views stay up.
    expect(await statusOf('shallow', '/health')).toBe(200);
    expect(await statusOf('deep', '/livez')).toBe(200);
  });

  it('egress restored: back to 200 after rise', async () => {
    await squid.restoreEgress();
    await waitForStatus([['deep', '/readyz'], READY_ATTRIBUTED, ...ALL_HEALTH], 200, RECOVER_MS);
  });

  it('outside site failing (origin 500), squid fine: attributed /health and /readyz stay 200, deep /readyz and /health 503', async () => {
    // A fresh attributed sidecar that has never seen a direct fetch pass warns about it.
    const fresh = capture();
    origin.status(500);
    const late = await runSidecar(config('attributed'), fresh.logger);
    extra.push(late);
    try {
      const attributedSeen: number[] = [];
      const readySeen: number[] = [];
      const look = async () => {
        attributedSeen.push(await statusOf('attributed', '/health'));
        readySeen.push(await statusOf('ready', '/readyz'));
      };
      await waitFor(
        async () => {
          await look();
          return (await statusOf('deep', '/health')) === 503 && (await statusOf('deep', '/readyz')) === 503;
        },
        { timeoutMs: DETECT_MS, what: 'deep /health and /readyz to answer 503' },
      );
      // The whole window: a further fall + 1 rounds after the deep verdict turned.
      const { body } = await get(sidecar('attributed'), '/health');
      const lastCheck = body.lastCheck;
      await waitFor(
        async () => {
          const reply = await get(sidecar('attributed'), '/health');
          await look();
          return reply.body.lastCheck !== lastCheck && reply;
        },
        { timeoutMs: DETECT_MS, what: 'another attributed round' },
      );
      for (let i = 0; i < FALL + 1; i++) {
        const before = (await get(sidecar('attributed'), '/health')).body.lastCheck;
        await waitFor(
          async () => {
            const reply = await get(sidecar('attributed'), '/health');
            await look();
            return reply.body.lastCheck !== before;
          },
          { timeoutMs: DETECT_MS, what: 'the next attributed round' },
        );
      }
      expect(attributedSeen.every((s) => s === 200)).toBe(true);
      // Readiness attributed: the pod stays in its Service through the whole outside outage.
      expect(readySeen.length).toBeGreaterThan(FALL + 2);
      expect(readySeen.every((s) => s === 200)).toBe(true);
      expect((await get(sidecar('ready'), '/readyz')).body).toMatchObject({
        status: 'ok',
        mode: 'attributed',
        fault: 'outside',
        reason: expect.stringContaining('outside_at_fault'),
      });
      const attributed = await get(sidecar('attributed'), '/health');
      expect(attributed.body.reason).toContain('outside_at_fault');
      expect(attributed.body.evidence).toMatchObject({
        fault: 'outside',
        direct: { ok: false, reason: `status=500 target=${TARGET}` },
      });
      expect(await statusOf('attributed', '/readyz')).toBe(503);
      expect(await statusOf('shallow', '/health')).toBe(200);

      const warned = await waitFor(
        () =>
          fresh.lines.find(
            (l) => l.level === 'warn' && String(l.msg).includes('no direct fetch has succeeded'),
          ),
        { timeoutMs: DETECT_MS, what: 'the no-direct-route warning' },
      );
      expect(warned).toMatchObject({
        component: 'sidecar',
        check: 'attributed',
        reason: `status=500 target=${TARGET}`,
      });
      expect((await get(late, '/health')).status).toBe(200);
      expect((await get(late, '/health')).body.evidence?.directEverSucceeded).toBe(false);
      // The original attributed sidecar did see direct fetches pass, so it never warned.
      const original = sidecars.get('attributed')?.lines ?? [];
      expect(original.some((l) => l.level === 'warn')).toBe(false);

      origin.ok();
      await waitForStatus([['deep', '/readyz'], READY_ATTRIBUTED, ...ALL_HEALTH], 200, RECOVER_MS);
      await waitFor(() => fresh.lines.some((l) => String(l.msg).includes('a direct fetch passed')), {
        timeoutMs: RECOVER_MS,
        what: 'the direct-route recovery line',
      });
    } finally {
      origin.ok();
      await late.stop();
    }
  });

  it('squid SIGSTOPped: every /readyz answers without waiting on the hung probe, and the verdict turns 503', async () => {
    // /readyz answers from the last verdict (sidecar/routes.ts): were it to wait on the probe in
    // flight, which the hung Squid holds for the whole probe timeout, a reply would take that long.
    const probeTimeoutMs = config('deep').probe.timeoutMs;
    squid.stop();
    try {
      const slowest = { ms: 0 };
      const bodies = await waitFor(
        async () => {
          const started = performance.now();
          const replies = await Promise.all(
            (['deep', 'attributed', 'shallow', 'ready'] as const).map((mode) =>
              get(sidecar(mode), '/readyz'),
            ),
          );
          slowest.ms = Math.max(slowest.ms, performance.now() - started);
          const health = await get(sidecar('attributed'), '/health');
          return replies.every((r) => r.status === 503) && health.status === 503
            ? [...replies, health]
            : undefined;
        },
        { timeoutMs: DETECT_MS, intervalMs: 20, what: '/readyz to answer 503 with squid stopped' },
      );
      expect(slowest.ms, 'the slowest round of /readyz replies').toBeLessThan(probeTimeoutMs);
      expect(bodies[0]?.body.reason).toContain('timeout=250ms');
      expect(bodies[3]?.body).toMatchObject({ mode: 'attributed', fault: 'proxy' });
      expect(bodies[3]?.body.reason).toContain('proxy_not_answering');
      expect(bodies[4]?.body.reason).toContain('proxy_not_answering');
      // A hung Squid answers nothing: /livez, and so shallow /health, go down as well.
      await waitForStatus([['shallow', '/health']], 503, DETECT_MS);
    } finally {
      squid.cont();
    }
    await waitForStatus([['deep', '/readyz'], READY_ATTRIBUTED, ...ALL_HEALTH], 200, RECOVER_MS);
  });

  it('squid killed: /livez 503 and /health 503 in every mode; restarted: back to 200 after rise', async () => {
    await squid.kill();
    const bodies = await waitForStatus(
      [['deep', '/livez'], ['deep', '/readyz'], READY_ATTRIBUTED, ...ALL_HEALTH],
      503,
      DETECT_MS,
    );
    expect(bodies[0]?.reason).toBe('connection_refused');
    expect(bodies[2]).toMatchObject({ fault: 'proxy', reason: 'proxy_not_answering connection_refused' });
    // No cache manager to ask: the connections gauge is left out, and nothing else minds.
    await scrapeUntil(sidecar('deep'), (m) => !m.has(CONNECTIONS), 'the connections gauge to go');
    await squid.start();
    await waitForStatus(
      [['deep', '/livez'], ['deep', '/readyz'], READY_ATTRIBUTED, ...ALL_HEALTH],
      200,
      RECOVER_MS + 2_000,
    );
  });

  it('a listen address in use is an operator error naming sidecar.listen', async () => {
    const { host, port } = sidecar('deep').address;
    const err = await runSidecar(config('deep', `${host}:${port}`), capture().logger).then(
      (s) => {
        extra.push(s);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isOperatorError(err) && err.code).toBe('ADDRESS_IN_USE');
    expect((err as Error).message).toBe(`sidecar.listen ${host}:${port}: address already in use`);
  });
});
