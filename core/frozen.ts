// Deep freezing for values shared instead of copied: stored connector records and parsed mappings are read on every
// webhook, and handing out one frozen object (instead of a fresh copy per read) is what keeps that read cheap. Any
// accidental mutation then throws (ES modules are strict) instead of silently changing shared state.

export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return value;
}
