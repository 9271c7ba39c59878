// Reading an account's field mapping, which every webhook and every CRM read needs. The stored value is validated
// once per stored version, not once per read: the file and memory stores hand out the same frozen object until the
// mapping is replaced, so the parse is remembered against that object (a store that returns a fresh copy per read,
// like PostgreSQL, simply parses each time and is never stale). The default mapping is parsed once.
import type { z } from 'zod';
import { deepFreeze } from '../../core/frozen.ts';
import type { Store } from '../../core/ports.ts';

export function storedMappingReader<S extends z.ZodType>(o: { store: Store; ns: string; schema: S; onInvalid: (account: string) => void }): (account: string) => Promise<z.infer<S>> {
  type M = z.infer<S>;
  let fallback: M | undefined;
  const defaults = (): M => (fallback ??= deepFreeze(o.schema.parse({})));
  const parsed = new WeakMap<object, M | null>();

  return async (account) => {
    const saved = await o.store.kvGet<unknown>(o.ns, account);
    if (!saved || typeof saved !== 'object') return defaults();
    let m = parsed.get(saved);
    if (m === undefined) {
      const p = o.schema.safeParse(saved);
      m = p.success ? deepFreeze(p.data as M) : null;
      parsed.set(saved, m);
      // Said once per stored version (on stores that share it), not on every webhook.
      if (!m) o.onInvalid(account);
    }
    return m ?? defaults();
  };
}
