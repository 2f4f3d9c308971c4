// Edge: asks the Squid in this pod how many client connections it holds, through its cache manager
// (GET /squid-internal-mgr/filedescriptors on the proxy port; src/sidecar/squid-fds.ts reads the
// page). Asked at scrape time, so the number is as fresh as the scrape and costs nothing between
// scrapes; one fresh connection, bounded by a short timeout and a size limit, and shared by the
// scrapes that come within two timeouts of it. Where the manager does not answer (refused by
// http_access, not Squid, hung) the answer is undefined: the metric is absent, never an error, and
// nothing else depends on it.
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { formatDuration } from '../../config/duration.js';
import { errorCode } from '../../health/error-reason.js';
import { request } from '../../node-http.js';
import { clientConnections } from '../../sidecar/squid-fds.js';

const PAGE = '/squid-internal-mgr/filedescriptors';
/** A page lists every descriptor: about 80 bytes each, 16384 of them at most with the shipped config. */
const PAGE_LIMIT_BYTES = 4 * 1024 * 1024;

type Outcome = { readonly count: number } | { readonly failed: string };

/**
 * What reads the count; logs once each time the manager starts or stops answering. A read is shared
 * by every scrape within 2 x `timeoutMs` of its start (it ends within `timeoutMs`): however often
 * /metrics is asked (a neighbour hammering it), Squid's manager is asked at most that often.
 */
export function squidClientReader(
  proxy: string,
  timeoutMs: number,
  log: Logger,
): () => Promise<number | undefined> {
  let answering: boolean | undefined;
  let last: { readonly at: number; readonly count: Promise<number | undefined> } | undefined;
  const read = async () => {
    const outcome = await readClientConnections(proxy, timeoutMs);
    const ok = 'count' in outcome;
    if (ok !== answering) {
      if (ok) log.info('squid cache manager answers: egress_squid_client_connections is exported');
      else {
        log.info(
          { reason: outcome.failed },
          'squid cache manager does not answer: egress_squid_client_connections is absent',
        );
      }
      answering = ok;
    }
    return ok ? outcome.count : undefined;
  };
  return () => {
    const now = Date.now();
    if (last === undefined || now - last.at >= timeoutMs * 2) last = { at: now, count: read() };
    return last.count;
  };
}

function readClientConnections(proxy: string, timeoutMs: number): Promise<Outcome> {
  const url = new URL(proxy);
  if (url.protocol !== 'http:') return Promise.resolve({ failed: 'error=https_proxy' });
  const headers: Record<string, string> = {
    host: url.host,
    'user-agent': 'egress-failover',
    connection: 'close',
  };
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return new Promise((resolve) => {
    let self: string | undefined;
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const req = request({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port) || 80,
      path: PAGE,
      headers,
      agent: false,
    });
    const timer = setTimeout(() => finish({ failed: `timeout=${formatDuration(timeoutMs)}` }), timeoutMs);
    // Squid lists the page's own connection by the address it came from: left out of the count.
    req.once('socket', (socket) => {
      socket.once('connect', () => {
        const { localAddress, localPort } = socket;
        if (localAddress === undefined || localPort === undefined) return;
        self = isIPv6(localAddress) ? `[${localAddress}]:${localPort}` : `${localAddress}:${localPort}`;
      });
    });
    req.once('error', (err) => finish({ failed: `error=${errorCode(err) ?? 'unknown'}` }));
    req.once('response', (response) => {
      if (response.statusCode !== 200) {
        finish({ failed: `status=${response.statusCode}` });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > PAGE_LIMIT_BYTES) finish({ failed: 'error=page_too_large' });
        else chunks.push(chunk);
      });
      response.once('end', () => {
        const count = clientConnections(Buffer.concat(chunks).toString('latin1'), self);
        finish(count === undefined ? { failed: 'error=not_a_filedescriptors_page' } : { count });
      });
      response.once('error', (err) => finish({ failed: `error=${errorCode(err) ?? 'unknown'}` }));
    });
    req.end();
  });
}
