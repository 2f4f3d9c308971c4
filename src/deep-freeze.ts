// Freezes a plain data tree in place: a parsed config is read by many and changed by none.

/** `value`, and everything reachable from it, frozen; returns `value`. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
