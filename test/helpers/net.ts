// Small socket probes for fixtures: is something listening, and wait until it is (or is not).
import { connect } from 'node:net';
import { waitFor } from './wait.js';

/** True when a TCP connection to host:port is accepted within timeoutMs. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitForPort(
  host: string,
  port: number,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(() => canConnect(host, port), { timeoutMs, intervalMs: 50, what });
}
