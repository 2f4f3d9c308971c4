// Edge of `egress-failover status`: GET the dns server's /status, then print the table (or the JSON
// as it came) and say with the exit code whether every service is answered.
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { EXIT } from '../../errors.js';
import { request as httpRequest } from '../../node-http.js';
import { redactUrl } from '../../redact.js';
import { servicesOf, statusReport } from './table.js';

export interface StatusOptions {
  /** The /status URL (cli.ts completes a bare http://HOST:PORT with /status). */
  readonly url: string;
  readonly json: boolean;
  readonly timeoutMs: number;
}

export interface StatusOutput {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

/** Larger than any /status a server sends (a few KB per pool); a bound against a wrong URL. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** 0 every service answered, 1 some not, 2 no /status to read (one line on stderr says why). */
export async function runStatus(options: StatusOptions, out: StatusOutput): Promise<number> {
  const shown = redactUrl(options.url);
  let body: string;
  try {
    body = await get(options.url, options.timeoutMs);
  } catch (err) {
    out.stderr(`egress-failover: status: cannot read ${shown}: ${(err as Error).message}`);
    return EXIT.CANNOT_START;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const services = servicesOf(parsed);
  if (!services) {
    out.stderr(`egress-failover: status: ${shown} is not the /status of an egress-failover dns server`);
    return EXIT.CANNOT_START;
  }
  const report = statusReport(services, Date.now());
  if (options.json) out.stdout(body.trimEnd());
  else for (const line of report.lines) out.stdout(line);
  return report.allAnswered ? EXIT.OK : EXIT.NOT_OK;
}

function get(url: string, timeoutMs: number): Promise<string> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode} (is it the dns server's http.listen?)`));
        return;
      }
      readBody(res).then(resolve, reject);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code ? `${err.code} (is the dns server running there? see --url)` : err.message)),
    );
    req.end();
  });
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) res.destroy(new Error(`the reply is larger than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
  });
}
