// A parsed config is read by many and changed by none (src/deep-freeze.ts): this checks all of it.
import { expect } from 'vitest';

/** Fails naming the first path below `value` that is not frozen. */
export function expectDeeplyFrozen(value: unknown, path = '(root)'): void {
  if (value === null || typeof value !== 'object') return;
  expect(Object.isFrozen(value), `${path} is frozen`).toBe(true);
  for (const [key, inner] of Object.entries(value)) expectDeeplyFrozen(inner, `${path}.${key}`);
}
