// Time to shift: what a client observes, not only what DNS answers. Two real Squids run the shipped
// k8s/squid/squid.conf (rendered for loopback), the real `dns` binary probes them, a real caching
// Unbound sits between the clients and our server as CoreDNS does in a cluster, and real clients of
// each kind (test/helpers/clients.ts) send a request every 200 ms (test/helpers/shift-rig.ts).
// For each fault of the primary, every client must get its first 200 through the secondary within
// the bound of test/helpers/shift-bound.ts, the formula the docs state:
//   flip (1.05 x interval + fall x (timeout + fastInterval)) + TTL (one cache layer) + the
//   client's own term (its 3 s request timeout after a hang, its 30 s DNS cache) + 1.5 s margin.
// Keep-alive clients moved to the secondary come back to the primary within the failback bound
// plus Squid's pconn_lifetime. A CONNECT tunnel opened before egress broke keeps working (Squid
// only relays its bytes): it must pass every request, and move once it ends.
//
// The shipped client-connection directives are what make kept connections follow: without
// `persistent_connection_after_error off` a keep-alive client stays on a primary without egress,
// without `pconn_lifetime` it never comes back. To see this test fail without them:
//   EF_SQUID_DROP="persistent_connection_after_error pconn_lifetime client_idle_pconn_timeout" \
//     flock /tmp/ef-integration.lock npx vitest run test/integration/time-to-shift.test.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, type ClientKind, JVM_DNS_CACHE_MS } from '../helpers/clients.js';
import { type ShiftTiming, shiftBackBoundMs, shiftBoundMs } from '../helpers/shift-bound.js';
import {
  connectionLifetimeMs,
  describeAttempts,
  FAULTS,
  PRIMARY,
  SECONDARY,
  type Shift,
  type ShiftRig,
  startShiftRig,
} from '../helpers/shift-rig.js';

const PROBE = { interval: '500ms', timeout: '400ms', fastInterval: '200ms', fall: 2, rise: 2 };
const TTL_S = 5;
const TIMING: ShiftTiming = {
  intervalMs: 500,
  timeoutMs: 400,
  fastIntervalMs: 200,
  fall: PROBE.fall,
  rise: PROBE.rise,
  // Unbound keeps an answer for its TTL, no longer (cache-min-ttl 0).
  cacheS: TTL_S,
};
/** Every client's own request timeout (curl --max-time, Node's socket timeout, Python's). */
const CLIENT_TIMEOUT_MS = 3_000;
/**
 * Unbound's whole-second TTL clock (it serves an answer at TTL 0 for up to a second more), the
 * clients' 200 ms pace, dig and curl start-up, scheduling on a shared 2-core machine.
 */
const MARGIN_MS = 1_500;
/** Every kind but the 30 s DNS cache, which runs in the kill round only: its bound is 30 s longer. */
const KINDS: readonly ClientKind[] = ['curl', 'node-keepalive', 'python-keepalive', 'https-tunnel'];

let rig: ShiftRig | undefined;
const theRig = (): ShiftRig => {
  if (!rig) throw new Error('the rig did not start');
  return rig;
};

beforeAll(async () => {
  rig = await startShiftRig({
    probe: { primary: PROBE, secondary: PROBE },
    ttlS: TTL_S,
    clientTimeoutMs: CLIENT_TIMEOUT_MS,
    dropDirectives: (process.env.EF_SQUID_DROP ?? '').split(/\s+/).filter(Boolean),
  });
}, 60_000);

afterAll(() => rig?.stop(), 30_000);

const boundFor = (hangs: boolean) => (kind: ClientKind) =>
  shiftBoundMs(TIMING, {
    requestTimeoutMs: hangs ? CLIENT_TIMEOUT_MS : 0,
    dnsCacheMs: kind === 'dns-cache-30s' ? JVM_DNS_CACHE_MS : 0,
  }) + MARGIN_MS;

/** Logs the shifts as a small table, then asserts each against its bound. */
function check(what: string, shifts: readonly Shift[], clients: readonly Client[]): void {
  const lines = shifts.map(
    (s) =>
      `  ${s.kind.padEnd(17)} ${s.ms === undefined ? 'never' : `${(s.ms / 1000).toFixed(2)} s`} ` +
      `(bound ${(s.boundMs / 1000).toFixed(2)} s), ${s.failures.length} failed requests before`,
  );
  console.info(`time-to-shift, ${what}:\n${lines.join('\n')}`);
  for (const shift of shifts) {
    const client = clients.find((c) => c.kind === shift.kind);
    expect(shift.ms, `${shift.kind}: ${describeAttempts(client?.attempts ?? [])}`).toBeDefined();
    expect(shift.ms, shift.kind).toBeLessThanOrEqual(shift.boundMs);
  }
}

describe('time to shift: from a fault of the primary to each client first getting through the secondary', () => {
  let afterKill: Client[] = [];

  it('the primary killed: every client kind, the 30 s DNS cache included', async () => {
    const r = theRig();
    await r.steadyOnPrimary();
    afterKill = await r.startClients([...KINDS, 'dns-cache-30s']);
    const killedAt = Date.now();
    await r.primary.kill();
    check(
      'primary killed',
      await r.measureShifts(afterKill, SECONDARY, killedAt, boundFor(false)),
      afterKill,
    );
  }, 90_000);

  it("the primary back: kept connections return within the failback bound plus Squid's pconn_lifetime", async () => {
    const r = theRig();
    try {
      await r.primary.start();
      const backAt = Date.now();
      const kept = afterKill.filter((c) => c.kind === 'node-keepalive' || c.kind === 'python-keepalive');
      const bound =
        shiftBackBoundMs(TIMING, { connectionLifetimeMs: connectionLifetimeMs(r.squidConf) }) + MARGIN_MS;
      check('primary back after the kill', await r.measureShifts(kept, PRIMARY, backAt, () => bound), kept);
    } finally {
      await r.stopClients(afterKill);
    }
  }, 90_000);

  for (const fault of FAULTS.filter((f) => f.name !== 'kill')) {
    it(`the primary ${fault.title}: curl, keep-alive and tunnel clients`, async () => {
      const r = theRig();
      await r.steadyOnPrimary();
      const clients = await r.startClients(KINDS);
      try {
        await fault.inject(r.primary);
        const faultAt = Date.now();
        const tunnels = fault.keepsTunnels ? clients.filter((c) => c.kind === 'https-tunnel') : [];
        const moving = clients.filter((c) => !tunnels.includes(c));
        check(
          `primary ${fault.title}`,
          await r.measureShifts(moving, SECONDARY, faultAt, boundFor(fault.hangs)),
          moving,
        );
        // An error reply closes the connection: a kept client reconnects, never waits on it.
        for (const client of moving.filter((c) => c.kind !== 'curl')) {
          for (const error of client.attempts.filter((a) => a.at > faultAt && a.squidError)) {
            expect(error.closed, `${client.kind}: ${error.squidError}`).toBe(true);
          }
        }
        for (const tunnel of tunnels) {
          const during = tunnel.attempts.filter((a) => a.at > faultAt);
          expect(during.length, 'requests in the tunnel during the fault').toBeGreaterThan(0);
          for (const attempt of during)
            expect(attempt, tunnel.kind).toMatchObject({ ok: true, proxy: PRIMARY });
          // The origin ends it, as its idle timeout would: the next tunnel goes where DNS says.
          r.tlsOrigin.server.closeAllConnections();
          const endedAt = Date.now();
          check(
            `primary ${fault.title}, ${during.length} requests in the open tunnel passed; once the origin closed it`,
            await r.measureShifts([tunnel], SECONDARY, endedAt, () => MARGIN_MS),
            [tunnel],
          );
        }
      } finally {
        await r.stopClients(clients);
        await fault.restore(r.primary);
      }
    }, 90_000);
  }
});
