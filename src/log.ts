// The logger: JSON lines on stdout, one child per component, proxy credentials never written.
//
//   createLogger({ level, destination? }) -> Logger   (pino; destination: any writable, for tests)
//   logger.child({ component: 'dns' })                  (one per component: dns, http, health, sidecar, config)
//   LOG_LEVELS, isLogLevel(text), type LogLevel         (what --log-level and LOG_LEVEL accept)
//
// Lines look like {"level":"info","time":"2026-11-25T10:00:00.000Z","component":"dns","msg":"..."}.
// Errors go under `err`, durations carry their unit in the key (latency_ms).
import pino, { type DestinationStream, type Logger } from 'pino';
import { redactUrl } from './redact.js';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go; stdout when absent. Tests pass a stream and parse the lines back. */
  readonly destination?: DestinationStream | NodeJS.WritableStream;
}

// Proxy URLs are passed through redactUrl (src/redact.ts) before they are logged, and
// messages are built from redacted URLs. These paths are the second line of defence, for a config
// object or a request logged whole: the censor keeps the host (which an operator needs) and drops
// only the userinfo. pino's wildcards match one level, hence the explicit nestings.
const REDACT_PATHS = [
  'proxy',
  '*.proxy',
  'pools[*].proxy',
  '*.pools[*].proxy',
  'services[*].pools[*].proxy',
  'config.services[*].pools[*].proxy',
  'config.sidecar.proxy',
  'headers["proxy-authorization"]',
  '*.headers["proxy-authorization"]',
  'headers.authorization',
  '*.headers.authorization',
];

/** "http://user:pass@squid:3128" -> "http://***@squid:3128"; anything that is not a string is hidden. */
function censor(value: unknown, path: string[]): unknown {
  const key = path[path.length - 1];
  if (key === 'proxy' && typeof value === 'string') return redactUrl(value);
  return '[Redacted]';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  // Synchronous writes to fd 1, no transport: no worker thread at startup, and the last lines
  // before an exit are on stdout. We log transitions and lifecycle, never per query, so a slow
  // stdout cannot hold up the DNS path.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: options.level ?? DEFAULT_LOG_LEVEL,
      // Labels rather than pino's numbers: these lines are read with kubectl logs as often as by
      // a log pipeline, and every pipeline can map a label.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor },
    },
    destination as DestinationStream,
  );
}
