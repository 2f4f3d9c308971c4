// roundVerdict: a probe round's target results + quorum -> pass or fail, and the reason an operator
// reads in /status, _status TXT and the transition log. Table tests; no sockets, no timers.
import { describe, expect, it } from 'vitest';
import { roundVerdict, type TargetResult } from '../../src/health/round.js';

const pass = (target: string): TargetResult => ({
  target,
  ok: true,
  reason: 'ok',
  status: 200,
  latencyMs: 4,
});
const fail = (target: string, reason: string): TargetResult => ({ target, ok: false, reason, latencyMs: 9 });

const A = 'http://a.test/';
const B = 'https://b.test/x';
const C = 'http://c.test/';

describe('roundVerdict', () => {
  it.each<[string, TargetResult[], number, boolean, string]>([
    // what, targets, quorum, ok, reason. One target: its reason alone; from two on, the counts too.
    ['one target passing', [pass(A)], 1, true, 'ok'],
    [
      'one target failing: the reason and target, no counts',
      [fail(A, 'status=500')],
      1,
      false,
      `status=500 target=${A}`,
    ],
    ['passed == quorum (1 of 2)', [fail(A, 'status=500'), pass(B)], 1, true, 'ok'],
    ['passed == quorum (2 of 3)', [pass(A), fail(B, 'timeout=1s'), pass(C)], 2, true, 'ok'],
    ['passed == quorum == every target', [pass(A), pass(B)], 2, true, 'ok'],
    [
      'passed < quorum (1 of 2, quorum 2)',
      [pass(A), fail(B, 'squid_error=ERR_CONNECT_FAIL status=503')],
      2,
      false,
      `squid_error=ERR_CONNECT_FAIL status=503 target=${B} passed=1/2 quorum=2`,
    ],
    [
      'passed < quorum names the first failure in target order',
      [fail(A, 'timeout=1s'), pass(B), fail(C, 'connection_refused')],
      2,
      false,
      `timeout=1s target=${A} passed=1/3 quorum=2`,
    ],
    [
      'every target failing, quorum 1',
      [fail(A, 'connection_refused'), fail(B, 'tls_error=CERT_HAS_EXPIRED')],
      1,
      false,
      `connection_refused target=${A} passed=0/2 quorum=1`,
    ],
    ['no targets at all', [], 1, false, 'no targets'],
  ])('%s', (_what, targets, quorum, ok, reason) => {
    const result = roundVerdict(targets, quorum, 123, 1_700_000_000_000);
    expect(result).toEqual({ ok, reason, targets, latencyMs: 123, at: 1_700_000_000_000 });
  });
});
