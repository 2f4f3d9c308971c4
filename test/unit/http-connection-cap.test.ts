// How many connections an operator endpoint holds, and whom it closes for a newcomer.
import { describe, expect, it } from 'vitest';
import {
  ConnectionSlots,
  connectionCap,
  FALLBACK_CONNECTIONS,
  MAX_CONNECTIONS,
  MIN_CONNECTIONS,
  softFileLimit,
} from '../../src/http/connection-cap.js';

const limits = (soft: number | string, hard: number | string = soft) =>
  [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             62987                62987                processes ',
    `Max open files            ${soft}                 ${hard}                 files     `,
    'Max locked memory         8388608              8388608              bytes     ',
  ].join('\n');

describe('connectionCap: a quarter of the soft descriptor limit, within bounds', () => {
  const cases: [string, string | undefined, number][] = [
    ['the usual smallest limit, 1024', limits(1024, 524288), 256],
    ['a tiny limit: never fewer than the minimum', limits(20), MIN_CONNECTIONS],
    ['a container limit of 1048576: never more than the maximum', limits(1048576), MAX_CONNECTIONS],
    ['20000', limits(20000), MAX_CONNECTIONS],
    ['2048', limits(2048), 512],
    ['/proc unreadable', undefined, FALLBACK_CONNECTIONS],
    ['a text without the line', 'Max processes 5 5 processes', FALLBACK_CONNECTIONS],
  ];
  for (const [name, text, cap] of cases) it(name, () => expect(connectionCap(text)).toBe(cap));

  it('reads the soft limit, not the hard one', () => {
    expect(softFileLimit(limits(1024, 4096))).toBe(1024);
  });
});

describe('ConnectionSlots', () => {
  // The clock only orders and ages: each call below is one ms later than the one before.
  let clock = 0;
  const now = () => ++clock;

  it('admits up to the cap without closing anyone', () => {
    const slots = new ConnectionSlots<string>(2);
    expect(slots.admit('a', now())).toEqual({ admitted: true, evicted: undefined });
    expect(slots.admit('b', now())).toEqual({ admitted: true, evicted: undefined });
    expect(slots.size).toBe(2);
  });

  it('past the cap, closes the connection idle the longest for the newcomer', () => {
    const slots = new ConnectionSlots<string>(3);
    for (const c of ['a', 'b', 'c']) slots.admit(c, now());
    // a answered a request: idle again, now the newest idle; b is the oldest idle.
    slots.busy('a');
    slots.idle('a', now());
    expect(slots.admit('d', now())).toEqual({ admitted: true, evicted: 'b' });
    expect(slots.admit('e', now())).toEqual({ admitted: true, evicted: 'c' });
    expect(slots.size).toBe(3);
  });

  it('never closes a connection with a request in flight; refuses the newcomer when all are busy', () => {
    const slots = new ConnectionSlots<string>(2);
    slots.admit('a', now());
    slots.admit('b', now());
    slots.busy('a');
    expect(slots.admit('c', now())).toEqual({ admitted: true, evicted: 'b' });
    slots.busy('c');
    expect(slots.admit('d', now())).toEqual({ admitted: false });
    slots.closed('a');
    expect(slots.admit('d', now())).toEqual({ admitted: true, evicted: undefined });
  });

  it('forgets a closed connection: it is never evicted, and idle() on it does not bring it back', () => {
    const slots = new ConnectionSlots<string>(2);
    slots.admit('a', now());
    slots.admit('b', now());
    slots.closed('a');
    slots.idle('a', now());
    expect(slots.size).toBe(1);
    slots.admit('c', now());
    expect(slots.admit('d', now())).toEqual({ admitted: true, evicted: 'b' });
  });

  it('a connection with pipelined requests stays busy until the last of them is answered', () => {
    const slots = new ConnectionSlots<string>(2);
    slots.admit('a', now());
    slots.admit('b', now());
    slots.busy('a');
    slots.busy('a'); // a second request, pipelined behind the first
    slots.idle('a', now()); // the first answered
    expect(slots.admit('c', now())).toEqual({ admitted: true, evicted: 'b' });
    slots.busy('c');
    expect(slots.admit('d', now())).toEqual({ admitted: false });
    slots.idle('a', now()); // the second answered: idle now
    expect(slots.admit('d', now())).toEqual({ admitted: true, evicted: 'a' });
  });

  it('idleSince: the connections waiting since then or earlier, oldest first, busy ones never', () => {
    const slots = new ConnectionSlots<string>(10);
    slots.admit('a', 100);
    slots.admit('b', 200);
    slots.admit('c', 300);
    slots.admit('d', 400);
    slots.busy('b'); // a request in flight: not waiting, however long ago it came
    slots.busy('c');
    slots.idle('c', 500); // answered at 500: waiting from then on
    expect(slots.idleSince(99)).toEqual([]);
    expect(slots.idleSince(100)).toEqual(['a']);
    expect(slots.idleSince(450)).toEqual(['a', 'd']);
    expect(slots.idleSince(1_000)).toEqual(['a', 'd', 'c']);
    // Listed, not dropped: a connection is held until it is closed.
    expect(slots.size).toBe(4);
    slots.closed('a');
    expect(slots.idleSince(1_000)).toEqual(['d', 'c']);
    expect(slots.all().sort()).toEqual(['b', 'c', 'd']);
  });
});
