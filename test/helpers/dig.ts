// Real `dig` (bind9-dnsutils) as the client: what an operator types is what the tests run.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DigReply {
  readonly status: string;
  readonly flags: readonly string[];
  readonly counts: { query: number; answer: number; authority: number; additional: number };
  /** Record lines of each section, whitespace collapsed: "proxy.egress.svc. 5 IN A 10.96.0.10". */
  readonly question: readonly string[];
  readonly answer: readonly string[];
  readonly authority: readonly string[];
  readonly edns: string | undefined;
  readonly raw: string;
}

/** Runs dig; `args` are dig's own (name, type, +tcp, ...). Resolves whatever dig printed. */
export async function digRaw(
  server: { host: string; port: number },
  args: readonly string[],
): Promise<string> {
  const { stdout } = await run(
    'dig',
    [`@${server.host}`, '-p', String(server.port), '+time=2', '+tries=1', ...args],
    {
      timeout: 15_000,
    },
  );
  return stdout;
}

/** Splits dig's output into one reply per ";; ->>HEADER<<-" (several with +keepopen and many names). */
export function parseDig(output: string): DigReply[] {
  const parts = output.split(/(?=;; ->>HEADER<<-)/).filter((p) => p.includes('->>HEADER<<-'));
  return parts.map((raw) => {
    const status = /status: (\w+)/.exec(raw)?.[1] ?? 'none';
    const flagsLine = /;; flags: ([^;]*);/.exec(raw)?.[1] ?? '';
    const count = (name: string) => Number(new RegExp(`${name}: (\\d+)`).exec(raw)?.[1] ?? 0);
    const section = (title: string) => {
      const match = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(raw);
      return (match?.[1] ?? '')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.replace(/^;/, '').trim().split(/\s+/).join(' '));
    };
    return {
      status,
      flags: flagsLine.trim().split(/\s+/).filter(Boolean),
      counts: {
        query: count('QUERY'),
        answer: count('ANSWER'),
        authority: count('AUTHORITY'),
        additional: count('ADDITIONAL'),
      },
      question: section('QUESTION'),
      answer: section('ANSWER'),
      authority: section('AUTHORITY'),
      edns: /; EDNS: (.*)/.exec(raw)?.[1],
      raw,
    };
  });
}

export async function dig(server: { host: string; port: number }, ...args: string[]): Promise<DigReply> {
  const output = await digRaw(server, args);
  const [reply] = parseDig(output);
  if (!reply) throw new Error(`dig printed no reply:\n${output}`);
  return reply;
}

/** `dig +short`: the answer's data, one per line. */
export async function digShort(server: { host: string; port: number }, ...args: string[]): Promise<string[]> {
  const output = await digRaw(server, [...args, '+short']);
  return output.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';'));
}

/**
 * What a client gets for `name`: the rcode when it is not NOERROR ("SERVFAIL"), else the A records'
 * addresses sorted and joined by commas ("10.0.0.1,10.0.0.2"). `args` are extra dig options.
 */
export async function digAnswer(
  server: { host: string; port: number },
  name: string,
  ...args: string[]
): Promise<string> {
  const reply = await dig(server, name, 'A', ...args);
  if (reply.status !== 'NOERROR') return reply.status;
  return reply.answer
    .map((line) => line.split(' ').at(-1))
    .sort()
    .join(',');
}
