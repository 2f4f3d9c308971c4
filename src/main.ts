// The composition root: command line -> config -> logger -> wiring -> signals -> exit code.
// Nothing below this file calls process.exit or reads argv; everything it starts, it stops.

import { createRequire } from 'node:module';
import { type Command, parseCommandLine } from './cli.js';
import { PROBE_DEFAULTS } from './config/defaults.js';
import { type Loaded, loadAnyConfig, loadDnsConfig, loadSidecarConfig } from './config/load.js';
import { configLoadError, EXIT, isOperatorError, type OperatorError, usageError } from './errors.js';
import { expiredControls } from './health/admin.js';
import { probeRound } from './health/probe.js';
import { createLogger, type Logger } from './log.js';
import { redactUrl } from './redact.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** SIGTERM/SIGINT must end the process within 5 s (README, "Operations"); this leaves a margin. */
const SHUTDOWN_DEADLINE_MS = 4_500;

type Out = (line: string) => void;
// A stream that a closed pipe has destroyed takes no more writes: each would be one more error.
const writer =
  (stream: NodeJS.WriteStream): Out =>
  (line) => {
    if (!stream.destroyed) stream.write(`${line}\n`);
  };
const stdout = writer(process.stdout);
const stderr = writer(process.stderr);

/**
 * A reader that goes away early (`probe ... | head -1`, `check-config f | true`) closes the pipe,
 * and the next write fails with EPIPE, emitted on the stream: unhandled, it ends the process with
 * a stack trace and exit 1, in place of the exit code that carries the verdict. The text has
 * nowhere to go, so it is dropped; the exit code still says what was found.
 */
function tolerateClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  tolerateClosedPipes();
  const command = parseCommandLine(argv, { env: process.env, version });
  try {
    return await run(command);
  } catch (err) {
    if (!isOperatorError(err)) throw err;
    printError(err);
    return err.exitCode;
  }
}

function printError(err: OperatorError): void {
  for (const line of err.lines()) stderr(`egress-failover: ${line}`);
}

async function run(command: Command): Promise<number> {
  switch (command.command) {
    case 'help':
    case 'version':
      stdout(command.text);
      return EXIT.OK;
    case 'error':
      throw usageError(command.message);
    case 'check-config':
      return checkConfig(command.configPath);
    case 'probe':
      return probeOnce(command);
    case 'status': {
      const { runStatus } = await import('./commands/status/run.js');
      return runStatus(command, { stdout, stderr });
    }
    case 'dns': {
      const logger = createLogger({ level: command.logLevel });
      return startThenServe(logger, async () => {
        const config = startable(command.configPath, await loadDnsConfig(command.configPath));
        // Each command loads only its own modules: the sidecar, in every Squid pod, never pays for the
        // DNS server's, nor the DNS server for the sidecar's.
        const { runDns } = await import('./commands/dns/run.js');
        return runDns(config.config, command.configPath, config.text, logger);
      });
    }
    case 'sidecar': {
      const logger = createLogger({ level: command.logLevel });
      return startThenServe(logger, async () => {
        const config = startable(command.configPath, await loadSidecarConfig(command.configPath));
        const { runSidecar } = await import('./commands/sidecar/run.js');
        return runSidecar(config.config, logger, { file: command.configPath, text: config.text });
      });
    }
  }
}

interface Running {
  stop(): Promise<void>;
  reload(): Promise<void>;
}

/**
 * Starts a server command and serves until signalled. An error that stops the start is logged as
 * one JSON line with its stable code under err.code (docs/ERRORS.md), as every other event of a
 * server is, then rethrown for main() to print on stderr and turn into the exit code.
 */
async function startThenServe(logger: Logger, start: () => Promise<Running>): Promise<number> {
  let running: Running;
  try {
    running = await start();
  } catch (err) {
    // pino drops its lines by itself once stdout is a closed pipe (EPIPE): this cannot throw then.
    if (isOperatorError(err)) logger.child({ component: 'main' }).fatal({ err: err.toLog() }, err.message);
    throw err;
  }
  return serveUntilSignalled(
    logger,
    () => running.stop(),
    () => running.reload(),
  );
}

/** A config to start with, or the OperatorError that says why not (exit 2). */
function startable<T>(file: string, loaded: Loaded<T>): { config: T; text: string } {
  if (loaded.ok) return loaded;
  throw configLoadError(file, loaded);
}

/** A file whose top level has a `sidecar` key is a sidecar config; anything else a DNS server's. */
async function checkConfig(file: string): Promise<number> {
  const loaded = await loadAnyConfig(file);
  if (!loaded.ok) {
    for (const line of loaded.errors) stderr(line);
    return EXIT.NOT_OK;
  }
  stdout(`${file}: ok (${loaded.config.kind} config)`);
  // The dns server would log the same line at start and ignore the control: not an error.
  if (loaded.config.kind === 'dns') {
    for (const expired of expiredControls(loaded.config.config.services, Date.now())) {
      stderr(`warning: ${expired.message}`);
    }
  }
  return EXIT.OK;
}

async function probeOnce(command: Extract<Command, { command: 'probe' }>): Promise<number> {
  const result = await probeRound({
    proxy: command.proxy,
    targets: command.targets,
    quorum: command.quorum,
    timeoutMs: command.timeoutMs,
    expectStatus: PROBE_DEFAULTS.expectStatus,
  });
  stdout(`${result.ok ? 'healthy' : 'unhealthy'}: ${result.reason} (proxy ${redactUrl(command.proxy)})`);
  for (const target of result.targets) {
    stdout(
      `  ${target.ok ? 'pass' : 'fail'} ${target.target} ${target.reason} latency_ms=${Math.round(target.latencyMs)}`,
    );
  }
  return result.ok ? EXIT.OK : EXIT.NOT_OK;
}

/**
 * Serves until SIGTERM or SIGINT, then stops within the deadline; a second signal, or the
 * deadline, ends the process at once. SIGHUP reloads the config.
 */
function serveUntilSignalled(
  logger: Logger,
  stop: () => Promise<void>,
  reload: () => Promise<void>,
): Promise<number> {
  const log = logger.child({ component: 'main' });
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'reloading the config');
    void reload();
  });
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(EXIT.OK);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      const deadline = setTimeout(() => {
        log.warn({ deadline_ms: SHUTDOWN_DEADLINE_MS }, 'shutdown took too long: exiting now');
        process.exit(EXIT.OK);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      stop().then(
        () => {
          log.info('stopped');
          clearTimeout(deadline);
          resolve(EXIT.OK);
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          clearTimeout(deadline);
          resolve(EXIT.OK);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
