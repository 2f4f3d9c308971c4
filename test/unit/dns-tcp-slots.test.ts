// The DNS-over-TCP slot policy with no sockets: who is let in, who makes room, and when each
// connection's deadline falls.
import { describe, expect, it } from 'vitest';
import { type TcpLimits, TcpSlots } from '../../src/dns/tcp-slots.js';

const limits: TcpLimits = {
  maxConnections: 3,
  maxPerSource: 2,
  idleTimeoutMs: 10_000,
  messageDeadlineMs: 3_000,
};

describe('TcpSlots', () => {
  it('lets connections in up to the cap, then closes the oldest idle one to admit the next', () => {
    const slots = new TcpSlots<string>(limits);
    expect(slots.admit('a', '10.0.0.1', 0)).toEqual({ admitted: true, evicted: undefined });
    expect(slots.admit('b', '10.0.0.2', 1)).toEqual({ admitted: true, evicted: undefined });
    expect(slots.admit('c', '10.0.0.3', 2)).toEqual({ admitted: true, evicted: undefined });
    // "a" answered a query at 5: now "b" has been idle longest.
    slots.startMessage('a', 4);
    slots.becomeIdle('a', 5);
    expect(slots.admit('d', '10.0.0.4', 6)).toEqual({ admitted: true, evicted: 'b' });
    expect(slots.size).toBe(3);
    expect(slots.deadline('b')).toBeUndefined();
  });

  it('closes whoever has gone longest without progress: a message begun long ago before a fresh idle one', () => {
    const slots = new TcpSlots<string>(limits);
    slots.admit('a', '10.0.0.1', 0);
    slots.admit('b', '10.0.0.2', 0);
    slots.admit('c', '10.0.0.3', 0);
    slots.startMessage('b', 1);
    slots.startMessage('a', 2);
    slots.startMessage('c', 3);
    expect(slots.admit('d', '10.0.0.4', 4)).toEqual({ admitted: true, evicted: 'b' });
    // "d" has not sent its query yet: a moment after connecting is no reason to lose its slot.
    expect(slots.admit('e', '10.0.0.5', 5)).toEqual({ admitted: true, evicted: 'a' });
    expect(slots.admit('f', '10.0.0.6', 6)).toEqual({ admitted: true, evicted: 'c' });
    // Now only idle ones: the oldest goes.
    expect(slots.admit('g', '10.0.0.7', 7)).toEqual({ admitted: true, evicted: 'd' });
  });

  it('refuses a source at its limit, and lets it in again once one of its connections is gone', () => {
    const slots = new TcpSlots<string>({ ...limits, maxConnections: 10 });
    slots.admit('a', '10.0.0.1', 0);
    slots.admit('b', '10.0.0.1', 0);
    expect(slots.admit('c', '10.0.0.1', 0)).toEqual({ admitted: false });
    expect(slots.admit('d', '10.0.0.2', 0).admitted).toBe(true);
    slots.release('a');
    slots.release('a');
    expect(slots.admit('e', '10.0.0.1', 0).admitted).toBe(true);
    expect(slots.admit('f', '10.0.0.1', 0)).toEqual({ admitted: false });
  });

  it('a refused source takes nobody else out', () => {
    const slots = new TcpSlots<string>({ ...limits, maxPerSource: 1 });
    slots.admit('a', '10.0.0.1', 0);
    slots.admit('b', '10.0.0.2', 0);
    slots.admit('c', '10.0.0.3', 0);
    expect(slots.admit('d', '10.0.0.1', 1)).toEqual({ admitted: false });
    expect(slots.size).toBe(3);
    expect(slots.deadline('a')).toBe(10_000);
  });

  it('a message has a deadline from its first byte; between messages the idle timeout runs', () => {
    const slots = new TcpSlots<string>(limits);
    slots.admit('a', '10.0.0.1', 1_000);
    expect(slots.deadline('a')).toBe(11_000);
    expect(slots.isIdle('a')).toBe(true);
    slots.startMessage('a', 2_000);
    expect(slots.deadline('a')).toBe(5_000);
    expect(slots.isIdle('a')).toBe(false);
    slots.becomeIdle('a', 2_500);
    expect(slots.deadline('a')).toBe(12_500);
  });
});
