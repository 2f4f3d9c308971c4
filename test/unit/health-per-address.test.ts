import { describe, expect, it } from 'vitest';
import { combineAddressRounds, proxyAt } from '../../src/health/per-address.js';
import type { RoundResult } from '../../src/health/round.js';

const SITE = 'http://site.test/';
const pass = (at = 10): RoundResult => ({
  ok: true,
  reason: 'ok',
  targets: [{ target: SITE, ok: true, reason: 'ok', status: 200, latencyMs: 5 }],
  latencyMs: 5,
  at,
  proxyAnswers: true,
});
const refused = (at = 10): RoundResult => ({
  ok: false,
  reason: `connection_refused target=${SITE}`,
  targets: [{ target: SITE, ok: false, reason: 'connection_refused', latencyMs: 1 }],
  latencyMs: 1,
  at,
  proxyAnswers: false,
});

describe('proxyAt', () => {
  it('points the proxy URL at one address, keeping credentials and port', () => {
    expect(proxyAt('http://u:p@squids.test:3128', '10.0.0.7')).toBe('http://u:p@10.0.0.7:3128/');
    expect(proxyAt('http://squids.test:3128', 'fd00::7')).toBe('http://[fd00::7]:3128/');
  });
});

describe('combineAddressRounds', () => {
  it('passes while any address passes, and lists each', () => {
    const round = combineAddressRounds([
      { address: '10.0.0.1', round: refused() },
      { address: '10.0.0.2', round: pass(20) },
    ]);
    expect(round).toMatchObject({ ok: true, reason: 'ok', proxyAnswers: true, at: 20 });
    expect(round.addresses).toEqual([
      { address: '10.0.0.1', ok: false, reason: `connection_refused target=${SITE}` },
      { address: '10.0.0.2', ok: true, reason: 'ok' },
    ]);
    // A target passed through any address passed: what other pools compare against.
    expect(round.targets).toEqual([expect.objectContaining({ target: SITE, ok: true })]);
  });

  it('fails when none passes, naming the first failing address', () => {
    const round = combineAddressRounds([
      { address: '10.0.0.1', round: refused() },
      { address: '10.0.0.2', round: refused() },
    ]);
    expect(round.ok).toBe(false);
    expect(round.proxyAnswers).toBe(false);
    expect(round.reason).toBe(`connection_refused target=${SITE} address=10.0.0.1 passed_addresses=0/2`);
  });

  it('is local when any address failed for a local reason and none passed', () => {
    const local: RoundResult = { ...refused(), reason: 'probe_error=local:EMFILE', local: true };
    expect(
      combineAddressRounds([
        { address: 'a', round: refused() },
        { address: 'b', round: local },
      ]).local,
    ).toBe(true);
    expect(
      combineAddressRounds([
        { address: 'a', round: pass() },
        { address: 'b', round: local },
      ]).local,
    ).toBeUndefined();
  });
});
