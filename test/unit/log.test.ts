// Logs are data: the logger writes to a given stream and these tests read the JSON lines back.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel, LOG_LEVELS } from '../../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes one JSON object per line, level as a label, time in ISO form', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).info({ latency_ms: 12 }, 'started');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'started', latency_ms: 12 });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('defaults to info and honours the level it is given', () => {
    const quiet = capture();
    createLogger({ destination: quiet.destination }).debug('hidden');
    expect(quiet.lines).toEqual([]);
    const chatty = capture();
    createLogger({ level: 'debug', destination: chatty.destination }).debug('shown');
    expect(chatty.lines).toHaveLength(1);
  });

  it('tags every line of a child with its component', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).child({ component: 'dns' }).warn('x');
    expect(lines[0]).toMatchObject({ component: 'dns', level: 'warn' });
  });

  it('logs an error under err with its type, message and stack', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).error(
      { err: Object.assign(new Error('boom'), { code: 'EADDRINUSE' }) },
      'failed',
    );
    expect(lines[0]?.err).toMatchObject({ type: 'Error', message: 'boom', code: 'EADDRINUSE' });
  });

  it('strips credentials from proxy URLs and hides proxy authorization headers', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination });
    logger.info({ proxy: 'http://user:secret@squid:3128' }, 'a');
    logger.info({ pool: { name: 'primary', proxy: 'http://u:secret@squid-a:3128/' } }, 'b');
    logger.info({ config: { services: [{ pools: [{ proxy: 'http://u:secret@squid-b:3128' }] }] } }, 'c');
    logger.info({ req: { headers: { 'proxy-authorization': 'Basic c2VjcmV0' } } }, 'd');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('secret');
    expect(text).not.toContain('c2VjcmV0');
    expect(lines[0]?.proxy).toBe('http://***@squid:3128');
    expect(lines[1]?.pool).toEqual({ name: 'primary', proxy: 'http://***@squid-a:3128/' });
    expect(lines[3]?.req).toEqual({ headers: { 'proxy-authorization': '[Redacted]' } });
  });

  it('leaves a proxy URL without credentials as it is', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).info({ proxy: 'http://squid:3128' }, 'a');
    expect(lines[0]?.proxy).toBe('http://squid:3128');
  });
});

describe('log levels', () => {
  it('accepts pino levels and nothing else', () => {
    for (const level of LOG_LEVELS) expect(isLogLevel(level)).toBe(true);
    expect(isLogLevel('verbose')).toBe(false);
    expect(isLogLevel('INFO')).toBe(false);
  });
});
