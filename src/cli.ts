// The command line, parsed: argv (and LOG_LEVEL) in, one Command out. Pure: no I/O, no exit.
//
//   parseCommandLine(argv, { env?, version? }) -> Command
//
//   { command: 'dns' | 'sidecar', configPath, logLevel }   run the server
//   { command: 'check-config', configPath, logLevel }       validate; exit 0 or 1 (EXIT.NOT_OK)
//   { command: 'probe', proxy, targets, quorum, timeoutMs, logLevel }  one deep check; exit 0 healthy, 1 not
//   { command: 'status', url, json, timeoutMs }             a dns server's /status as a table; exit 0 all answered, 1 not
//   { command: 'help' | 'version', text }                   print text on stdout, exit 0
//   { command: 'error', message }                           print message on stderr, exit 2 (USAGE)
//
// Options go before or after the command (`--log-level debug dns --config f` works too).
// --log-level wins over LOG_LEVEL, which wins over the default, info.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEFAULT_HTTP_LISTEN, DNS_DEFAULTS, PROBE_DEFAULTS, SIDECAR_DEFAULTS } from './config/defaults.js';
import { formatDuration, MAX_DURATION_MS, parseDuration } from './config/duration.js';
import type { StatusRange } from './config/schema.js';
import { DEFAULT_LOG_LEVEL, isLogLevel, LOG_LEVELS, type LogLevel } from './log.js';
import { redactUrl } from './redact.js';
import { hasCredentials, isHttpUrl } from './url.js';

export type Command =
  | { readonly command: 'dns'; readonly configPath: string; readonly logLevel: LogLevel }
  | { readonly command: 'sidecar'; readonly configPath: string; readonly logLevel: LogLevel }
  | { readonly command: 'check-config'; readonly configPath: string; readonly logLevel: LogLevel }
  | {
      readonly command: 'probe';
      readonly proxy: string;
      readonly targets: readonly string[];
      /** How many targets must pass for "healthy". */
      readonly quorum: number;
      readonly timeoutMs: number;
      readonly logLevel: LogLevel;
    }
  | {
      readonly command: 'status';
      /** The /status URL to read. */
      readonly url: string;
      /** Print the JSON as it came, not the table. */
      readonly json: boolean;
      readonly timeoutMs: number;
    }
  | { readonly command: 'help'; readonly text: string }
  | { readonly command: 'version'; readonly text: string }
  | { readonly command: 'error'; readonly message: string };

export interface CommandLineContext {
  /** The environment; only LOG_LEVEL is read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** What --version prints. */
  readonly version?: string;
}

const COMMANDS = ['dns', 'sidecar', 'probe', 'check-config', 'status'] as const;
type CommandName = (typeof COMMANDS)[number];

export const PROBE_DEFAULT_TIMEOUT_MS = 3_000;
/** As the config's probe.quorum: one passing target proves egress; more is asked for with --quorum. */
export const PROBE_DEFAULT_QUORUM = 1;
/** The dns server's HTTP port as the config's default http.listen has it, on this host. */
export const STATUS_DEFAULT_URL = `http://127.0.0.1:${DEFAULT_HTTP_LISTEN.split(':').at(-1)}`;
/** Longer than any /status takes; short enough for a script that runs it in a loop. */
export const STATUS_TIMEOUT_MS = 5_000;

const LEVELS = LOG_LEVELS.join(', ');
const FOOTER = `Options for every command:
  --log-level LEVEL   ${LEVELS}
                      (default: $LOG_LEVEL, else ${DEFAULT_LOG_LEVEL})
  -h, --help          this help

The configuration reference is in the README; error codes and exit codes in docs/ERRORS.md.`;

const STATUS_HELP = `Usage: egress-failover status [--url URL] [--json]

Reads a running dns server's /status and prints, per service, what DNS answers now and since
when, then each pool: its state as the probes see it, the operator's control (admin: drain, down,
up) with its reason and end, whether it is answered, since when, its last round's reason; then
the service's last changes (state changes and controls, newest first).

  --url URL           the dns server's HTTP endpoint (default: ${STATUS_DEFAULT_URL}, the port of
                      http.listen's default on this host); /status is added to a bare address
  --json              print the /status JSON as the server sent it

Exit 0 when every service is answered (not SERVFAIL), 1 when one is not, 2 when /status cannot be
read (one line on stderr says why). Gives up after ${formatDuration(STATUS_TIMEOUT_MS)}.
In a cluster: kubectl -n egress port-forward deploy/egress-dns 8080 & egress-failover status`;

// The defaults a help text names are read from the schema, the one place they live, so the two
// cannot drift apart (a test checks a few against it).
const statusList = (ranges: readonly StatusRange[]) =>
  ranges.map(({ min, max }) => (min === max ? `${min}` : `${min}-${max}`)).join(',');
const probeDefaults = (d: typeof PROBE_DEFAULTS) =>
  `quorum ${d.quorum}, interval ${formatDuration(d.intervalMs)}, timeout ${formatDuration(d.timeoutMs)}, ` +
  `rise ${d.rise}, fall ${d.fall}, fastInterval ${formatDuration(d.fastIntervalMs)}, ` +
  `expectStatus ${statusList(d.expectStatus)}`;
const flapDefaults = (d: typeof PROBE_DEFAULTS) =>
  `flapThreshold ${d.flapThreshold}, flapWindow ${formatDuration(d.flapWindowMs)}, ` +
  `holdDown ${formatDuration(d.holdDownMs)}, maxHoldDown ${formatDuration(d.maxHoldDownMs)}`;

/** `text` as lines of at most `width` columns, each after `indent` spaces. */
function wrap(text: string, indent: number, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((each) => `${' '.repeat(indent)}${each}`).join('\n');
}

const DNS_CONFIG_DEFAULTS = wrap(
  `defaults: dns.zone ${DNS_DEFAULTS.zone}, dns.listen ${DNS_DEFAULTS.listen}, dns.ttl ${DNS_DEFAULTS.ttl}, ` +
    `http.listen ${DEFAULT_HTTP_LISTEN} (/livez /readyz /status /metrics), ` +
    `probe: ${probeDefaults(PROBE_DEFAULTS)}, ${flapDefaults(PROBE_DEFAULTS)}; ` +
    `onAllDown ${DNS_DEFAULTS.onAllDown}. services and probe.targets have no default.`,
  22,
);
const { listen, probe: sidecarProbe } = SIDECAR_DEFAULTS;
const SIDECAR_CONFIG_DEFAULTS = wrap(
  `defaults: sidecar.listen ${listen.host}:${listen.port}, proxy ${SIDECAR_DEFAULTS.proxy}, ` +
    `${probeDefaults(sidecarProbe)}, liveness ${SIDECAR_DEFAULTS.liveness} (deep | attributed | shallow), ` +
    `readiness ${SIDECAR_DEFAULTS.readiness} (deep | attributed). targets has no default.`,
  22,
);

const HELP: Record<CommandName | 'main', string> = {
  main: `egress-failover: health-checked DNS failover for Kubernetes egress proxies (Squid)

Usage:
  egress-failover dns --config FILE          the DNS server, its probe loop and HTTP endpoints
  egress-failover sidecar --config FILE      the per-pod health endpoint for one local proxy
  egress-failover probe --proxy URL --target URL [--target URL ...] [--quorum N] [--timeout 3s]
                                             one deep check now: exit 0 healthy, 1 not
  egress-failover check-config FILE          validate a config: exit 0, or 1 with every error
  egress-failover status [--url URL] [--json]
                                             what a dns server answers and why: exit 0 every
                                             service answered, 1 not, 2 unreachable
  egress-failover COMMAND --help             help on one command
  egress-failover --version

Exit codes: 0 ok; 1 check-config found errors, probe found the proxy unhealthy, status found a
service not answered; 2 usage error, dns/sidecar could not start (bad config, port in use), or
status could not read /status; 70 internal error.

${FOOTER}`,

  dns: `Usage: egress-failover dns --config FILE

Serves the egress zone over DNS (UDP and TCP), probes every pool through its proxy, and answers
each service name with the first healthy pool in priority order. SIGHUP or a change of FILE
reloads it; an invalid new config is refused and the old one keeps serving. SIGTERM/SIGINT stop
within 5 s.

  -c, --config FILE   the DNS config (YAML or JSON), required
${DNS_CONFIG_DEFAULTS}

Exit 2 with one line per problem when the config is invalid or a listen address cannot be bound.

${FOOTER}`,

  sidecar: `Usage: egress-failover sidecar --config FILE

Runs next to one Squid: probes it in the background and answers the kubelet from the last
verdict: /livez (the proxy answers), /readyz (the deep check), /health (per sidecar.liveness).

  -c, --config FILE   the sidecar config (YAML or JSON), required
${SIDECAR_CONFIG_DEFAULTS}

Exit 2 with one line per problem when the config is invalid or the listen address cannot be bound.

${FOOTER}`,

  probe: `Usage: egress-failover probe --proxy URL --target URL [--target URL ...] [--quorum N] [--timeout 3s]

Runs one deep check now: each target is fetched through the proxy (http:// as an absolute-form
GET, https:// through CONNECT) and passes on a 200-399 status within the timeout. The proxy is
healthy when at least --quorum targets pass. Prints the verdict with its reason, then one line
per target: pass or fail, its reason, its latency. Exit 0 healthy, 1 not, 2 on a usage error.

  --proxy URL         the proxy to check, e.g. http://127.0.0.1:3128, required
  --target URL        an outside URL that proves egress, required; repeat for several
  --quorum N          how many targets must pass (default: ${PROBE_DEFAULT_QUORUM}, as probe.quorum in the config;
                      at most the number of targets)
  --timeout DURATION  per target, e.g. 500ms, 3s (default: ${formatDuration(PROBE_DEFAULT_TIMEOUT_MS)}; at most ${formatDuration(MAX_DURATION_MS)})

${FOOTER}`,

  status: `${STATUS_HELP}

${FOOTER}`,

  'check-config': `Usage: egress-failover check-config FILE

Validates a DNS or sidecar config without starting anything: one whose top level has a "sidecar"
key (in block or flow YAML, or JSON) is a sidecar config. Exit 0 when it is valid; otherwise exit 1
and print every error by its path in the file, e.g. "services[0].pools[1].proxy: ...", or
"line 3 column 1: ..." for YAML syntax.

  FILE                the config to check (also accepted as --config FILE)

${FOOTER}`,
};

/** The help text of the tool, or of one command. */
export function helpText(command?: CommandName): string {
  return HELP[command ?? 'main'];
}

const GLOBAL_OPTIONS = {
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const COMMAND_OPTIONS = {
  dns: { config: { type: 'string', short: 'c' } },
  sidecar: { config: { type: 'string', short: 'c' } },
  'check-config': { config: { type: 'string', short: 'c' } },
  status: { url: { type: 'string' }, json: { type: 'boolean' } },
  probe: {
    proxy: { type: 'string' },
    target: { type: 'string', multiple: true },
    quorum: { type: 'string' },
    timeout: { type: 'string' },
  },
} as const;

// Options that take a value, so that their value is not taken for the command's name.
const TAKES_VALUE = new Set([
  '--log-level',
  '--config',
  '-c',
  '--proxy',
  '--target',
  '--quorum',
  '--timeout',
  '--url',
]);

const isCommand = (name: string): name is CommandName => (COMMANDS as readonly string[]).includes(name);
const error = (message: string): Command => ({ command: 'error', message });

export function parseCommandLine(argv: readonly string[], context: CommandLineContext = {}): Command {
  // Find the command: the first word that is neither an option nor an option's value.
  let name: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (name === undefined && !arg.startsWith('-')) {
      name = arg;
      continue;
    }
    rest.push(arg);
    if (TAKES_VALUE.has(arg) && i + 1 < argv.length) rest.push(argv[++i] as string);
  }

  // `help` and `help dns` read as naturally as `--help` and `dns --help`.
  if (name === 'help') {
    const topic = rest.find((arg) => !arg.startsWith('-'));
    if (topic === undefined) return { command: 'help', text: helpText() };
    return isCommand(topic) ? { command: 'help', text: helpText(topic) } : unknownCommand(topic);
  }
  if (name !== undefined && !isCommand(name)) return unknownCommand(name);

  const prefix = name === undefined ? '' : `${name}: `;
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  let positionals: string[];
  const options: NonNullable<ParseArgsConfig['options']> = {
    ...GLOBAL_OPTIONS,
    ...(name === undefined ? {} : COMMAND_OPTIONS[name]),
  };
  try {
    const parsed = parseArgs({
      args: rest,
      options,
      allowPositionals: name === 'check-config',
      strict: true,
    });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (err) {
    return error(`${prefix}${describeParseError(err)}`);
  }

  if (values.help === true) return { command: 'help', text: helpText(name) };
  if (values.version === true) return { command: 'version', text: context.version ?? 'unknown' };
  if (name === undefined) {
    return error(`missing command (expected ${COMMANDS.join(', ')})`);
  }

  const level = resolveLogLevel(values['log-level'] as string | undefined, context.env?.LOG_LEVEL);
  if (typeof level === 'object') return error(level.message);
  const logLevel = level;

  switch (name) {
    case 'dns':
    case 'sidecar': {
      const configPath = values.config as string | undefined;
      if (!configPath) return error(`${name}: --config FILE is required`);
      return { command: name, configPath, logLevel };
    }
    case 'check-config': {
      const files = [...positionals, ...(values.config === undefined ? [] : [values.config as string])];
      if (files.length === 0) return error('check-config: FILE is required');
      if (files.length > 1) return error(`check-config: one FILE at a time (got ${files.length})`);
      return { command: 'check-config', configPath: files[0] as string, logLevel };
    }
    case 'status': {
      const url = (values.url as string | undefined) ?? STATUS_DEFAULT_URL;
      if (!isHttpUrl(url)) return error(`status: --url ${quoteUrl(url)} is not an http:// or https:// URL`);
      const parsed = new URL(url);
      if (parsed.pathname === '/') parsed.pathname = '/status';
      return {
        command: 'status',
        url: parsed.href,
        json: values.json === true,
        timeoutMs: STATUS_TIMEOUT_MS,
      };
    }
    case 'probe': {
      const proxy = values.proxy as string | undefined;
      const targets = (values.target as string[] | undefined) ?? [];
      if (proxy === undefined) return error('probe: --proxy URL is required');
      if (!isHttpUrl(proxy))
        return error(`probe: --proxy ${quoteUrl(proxy)} is not an http:// or https:// URL`);
      if (targets.length === 0) return error('probe: --target URL is required (repeat it for several)');
      const badTarget = targets.find((target) => !isHttpUrl(target));
      if (badTarget !== undefined) {
        return error(`probe: --target ${quoteUrl(badTarget)} is not an http:// or https:// URL`);
      }
      // As in the config: a target's userinfo is never sent, only shown.
      const withCredentials = targets.find(hasCredentials);
      if (withCredentials !== undefined) {
        return error(
          `probe: --target ${quoteUrl(withCredentials)} carries credentials; targets are fetched without them`,
        );
      }
      let quorum = PROBE_DEFAULT_QUORUM;
      if (values.quorum !== undefined) {
        const text = values.quorum as string;
        quorum = /^\d+$/.test(text) ? Number(text) : 0;
        if (quorum < 1)
          return error(`probe: --quorum "${text}" is not a whole number of targets (1 or more)`);
        if (quorum > targets.length) {
          return error(`probe: --quorum ${quorum} is more than the ${targets.length} target(s)`);
        }
      }
      let timeoutMs = PROBE_DEFAULT_TIMEOUT_MS;
      if (values.timeout !== undefined) {
        const parsed = parseDuration(values.timeout as string);
        if (parsed === undefined || parsed <= 0) {
          return error(`probe: --timeout "${values.timeout}" is not a duration (use e.g. 500ms, 3s)`);
        }
        // Node's timers cannot wait longer than 2^31-1 ms: past it they fire at once.
        if (parsed > MAX_DURATION_MS) {
          return error(
            `probe: --timeout "${values.timeout}" is longer than the maximum of ${formatDuration(MAX_DURATION_MS)}`,
          );
        }
        timeoutMs = parsed;
      }
      return { command: 'probe', proxy, targets, quorum, timeoutMs, logLevel };
    }
  }
}

function unknownCommand(name: string): Command {
  return error(`unknown command "${name}" (expected ${COMMANDS.join(', ')})`);
}

function resolveLogLevel(flag: string | undefined, env: string | undefined): LogLevel | { message: string } {
  if (flag !== undefined) {
    return isLogLevel(flag)
      ? flag
      : { message: `--log-level "${flag}" is not a log level (expected ${LEVELS})` };
  }
  // An empty LOG_LEVEL= is how a Deployment often "unsets" it: the default, not an error.
  if (env !== undefined && env !== '') {
    return isLogLevel(env) ? env : { message: `LOG_LEVEL "${env}" is not a log level (expected ${LEVELS})` };
  }
  return DEFAULT_LOG_LEVEL;
}

// The message is printed on stderr and may be logged: never with the proxy's password.
function quoteUrl(text: string): string {
  return JSON.stringify(redactUrl(text));
}

// node:util's messages are several sentences long and name internals; one short line instead.
function describeParseError(err: unknown): string {
  const { code, message } = err as { code?: string; message: string };
  const quoted = /'([^']*)'/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option "${quoted}"`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = /--[\w-]+/.exec(quoted ?? '')?.[0] ?? quoted?.split(' ')[0] ?? 'an option';
      return message.includes('argument missing')
        ? `${option} needs a value`
        : `${option} ${message.includes('does not take') ? 'takes no value' : 'has an invalid value'}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${quoted}"`;
    default:
      return message.split('\n')[0] ?? 'invalid arguments';
  }
}
