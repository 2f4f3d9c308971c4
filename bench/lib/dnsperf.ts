// One bounded dnsperf run and its statistics, with the server's CPU time and memory around it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpuSeconds, type Memory, memory, udpReceiveBufferErrors } from './proc.js';

const run = promisify(execFile);

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  /** dnsperf -d: one "name TYPE" per line. */
  readonly queryFile: string;
  readonly seconds: number;
  /** dnsperf -Q: a fixed rate; unset = as fast as the server answers (-q outstanding). */
  readonly rate?: number;
  readonly clients?: number;
  readonly outstanding?: number;
  /** Run dnsperf under `taskset -c CORE`. */
  readonly core?: number;
}

export interface LoadResult {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly lostPct: number;
  readonly qps: number;
  readonly avgLatencyMs: number;
  readonly maxLatencyMs: number;
  readonly rcodes: string;
}

export interface Measured extends LoadResult {
  /** Server CPU time (all threads) per completed query, µs. */
  readonly cpuUsPerQuery: number;
  /** Share of one core the server used during the run. */
  readonly cpuCores: number;
  /** Memory right after the run (VmRSS) and the peak so far (VmHWM). */
  readonly memory: Memory;
  /** Machine-wide UDP receive-buffer drops during the run. */
  readonly udpRcvbufErrors: number;
}

function field(text: string, pattern: RegExp): number {
  const match = pattern.exec(text);
  if (!match) throw new Error(`dnsperf output lacks ${pattern}:\n${text}`);
  return Number(match[1]);
}

export function parseDnsperf(text: string): LoadResult {
  const sent = field(text, /Queries sent:\s+(\d+)/);
  const completed = field(text, /Queries completed:\s+(\d+)/);
  const lost = field(text, /Queries lost:\s+(\d+)/);
  return {
    sent,
    completed,
    lost,
    lostPct: sent ? (100 * lost) / sent : 0,
    qps: field(text, /Queries per second:\s+([\d.]+)/),
    avgLatencyMs: 1000 * field(text, /Average Latency \(s\):\s+([\d.]+)/),
    maxLatencyMs: 1000 * field(text, /Average Latency \(s\):.*max ([\d.]+)\)/),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? '',
  };
}

export async function dnsperf(options: LoadOptions): Promise<LoadResult> {
  const args = [
    '-s',
    options.host,
    '-p',
    String(options.port),
    '-d',
    options.queryFile,
    '-l',
    String(options.seconds),
    '-c',
    String(options.clients ?? 4),
    '-q',
    String(options.outstanding ?? 200),
    // Queries unanswered after 2 s count as lost (default 5 s would stretch a bounded run).
    '-t',
    '2',
  ];
  if (options.rate !== undefined) args.push('-Q', String(Math.round(options.rate)));
  const [command, argv] =
    options.core === undefined
      ? ['dnsperf', args]
      : ['taskset', ['-c', String(options.core), 'dnsperf', ...args]];
  const { stdout } = await run(command, argv as string[], {
    timeout: (options.seconds + 15) * 1000,
    maxBuffer: 1 << 20,
  });
  return parseDnsperf(stdout);
}

/** A dnsperf run with the server's CPU and memory read around it. */
export async function measure(pid: number, options: LoadOptions): Promise<Measured> {
  const cpuBefore = cpuSeconds(pid);
  const dropsBefore = udpReceiveBufferErrors();
  const started = process.hrtime.bigint();
  const result = await dnsperf(options);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds(pid) - cpuBefore;
  return {
    ...result,
    cpuUsPerQuery: result.completed ? (cpu * 1e6) / result.completed : Number.NaN,
    cpuCores: cpu / elapsed,
    memory: memory(pid),
    udpRcvbufErrors: udpReceiveBufferErrors() - dropsBefore,
  };
}
