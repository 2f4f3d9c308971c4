// `egress-failover status`'s table from /status JSON: what an operator reads at 3 a.m., and the exit
// code's rule (every service answered, or not). The spawned command is tested in test/integration/admin.
import { describe, expect, it } from 'vitest';
import { allAnswered, servicesOf, statusReport } from '../../src/commands/status/table.js';

const NOW = Date.parse('2026-12-02T15:10:00Z');

const drained = {
  name: 'proxy',
  ready: true,
  mode: 'healthy',
  outage: null,
  selected: 'secondary',
  since: '2026-12-02T15:00:00.000Z',
  addresses: ['10.0.0.2'],
  pools: [
    {
      name: 'primary',
      state: 'healthy',
      since: '2026-12-01T09:00:00.000Z',
      lastRound: { reason: 'ok' },
      heldDownUntil: null,
      admin: { state: 'drain', reason: 'node pool upgrade', until: '2026-12-03T10:00:00.000Z' },
      history: [
        { at: '2026-12-01T09:00:00.000Z', kind: 'health', from: 'unknown', to: 'healthy', reason: 'ok' },
        {
          at: '2026-12-02T15:00:00.000Z',
          kind: 'admin',
          from: 'none',
          to: 'drain',
          reason: 'node pool upgrade',
        },
      ],
    },
    {
      name: 'secondary',
      state: 'healthy',
      since: '2026-12-01T09:00:01.000Z',
      lastRound: { reason: 'ok' },
      admin: null,
      history: [
        { at: '2026-12-01T09:00:01.000Z', kind: 'health', from: 'unknown', to: 'healthy', reason: 'ok' },
      ],
    },
  ],
};

describe('status table', () => {
  it('shows the answer, each pool with its control beside its state, and the last changes newest first', () => {
    expect(statusReport([drained], NOW)).toEqual({
      allAnswered: true,
      lines: [
        'proxy: answering secondary (10.0.0.2) since 2026-12-02T15:00:00Z (10m00s ago)',
        '  POOL       STATE    ADMIN  ANSWERED  SINCE                 LAST ROUND',
        '  primary    healthy  drain  no        2026-12-01T09:00:00Z  ok',
        '      admin drain: "node pool upgrade" until 2026-12-03T10:00:00Z',
        '  secondary  healthy  -      yes       2026-12-01T09:00:01Z  ok',
        '  last changes:',
        '    2026-12-02T15:00:00Z  primary    admin none -> drain  node pool upgrade',
        '    2026-12-01T09:00:01Z  secondary  unknown -> healthy   ok',
        '    2026-12-01T09:00:00Z  primary    unknown -> healthy   ok',
      ],
    });
  });

  it.each([
    // ready, mode, addresses -> answered (exit 0) or not (exit 1)
    [true, 'healthy', ['10.0.0.2'], true, 'proxy: answering secondary'],
    [true, 'all-down-all', ['10.0.0.1', '10.0.0.2'], true, 'proxy: every pool down; answering all of them'],
    [true, 'all-down-last', ['10.0.0.1'], true, 'proxy: every pool down; answering the last healthy'],
    [true, 'all-down-servfail', [], false, 'proxy: SERVFAIL, every pool down (onAllDown: servfail)'],
    [true, 'all-down-last', [], false, 'proxy: SERVFAIL, every pool down and none was ever healthy'],
    [false, 'pending', [], false, 'proxy: SERVFAIL, waiting for the first verdict'],
  ])('ready=%s %s %j -> answered %s', (ready, mode, addresses, answered, headline) => {
    const service = {
      ...drained,
      ready,
      mode,
      addresses,
      selected: mode === 'all-down-all' ? null : 'secondary',
    };
    const report = statusReport([service], NOW);
    expect(report.allAnswered).toBe(answered);
    expect(report.lines[0]).toContain(headline);
    expect(allAnswered([drained, service])).toBe(answered);
  });

  it('under onAllDown: all, a pool taken down is not shown as answered', () => {
    const service = {
      ...drained,
      mode: 'all-down-all',
      selected: null,
      pools: [
        { name: 'a', state: 'unhealthy', admin: { state: 'down', reason: 'gone', until: null } },
        { name: 'b', state: 'unhealthy', admin: null },
      ],
    };
    const lines = statusReport([service], NOW).lines;
    expect(lines).toContain('      admin down: "gone" (no end set)');
    expect(lines.find((line) => line.startsWith('  a '))).toMatch(/unhealthy\s+down\s+no\s/);
    expect(lines.find((line) => line.startsWith('  b '))).toMatch(/unhealthy\s+-\s+yes\s/);
  });

  it('reads only what it shows: a reply that is not /status is refused', () => {
    expect(servicesOf({ services: [drained] })).toHaveLength(1);
    for (const body of [undefined, null, 'ok', {}, { services: {} }, { services: [{ pools: [] }] }]) {
      expect(servicesOf(body)).toBeUndefined();
    }
    // An older server without admin or history still reads.
    const old = {
      name: 'proxy',
      ready: true,
      mode: 'healthy',
      selected: 'a',
      addresses: ['10.0.0.1'],
      pools: [{ name: 'a' }],
    };
    expect(statusReport([old], NOW).lines[2]).toMatch(/^ {2}a\s+\?\s+-\s+yes\s+-\s+pending$/);
  });
});
