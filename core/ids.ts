// Deterministic ids: the same input gives the same id after a crash and restart, which is what lets Telegram's
// random_id and our job ids deduplicate retries. FNV-1a 64-bit is enough: these are idempotency keys, not secrets.
const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

/** A positive decimal int64 (Telegram's random_id is a signed int64; we keep to the positive half). */
export function fnv64(input: string): string {
  let h = OFFSET;
  const bytes = new TextEncoder().encode(input);
  for (const b of bytes) h = ((h ^ BigInt(b)) * PRIME) & MASK;
  return (h & ((1n << 63n) - 1n)).toString();
}
