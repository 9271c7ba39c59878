// Field mappings keep their history like the routing configuration does: every replacement is a numbered version
// (who, when, why), the one in force before the first replacement is kept as version 0, and any version can be made
// current again (saved as a new version, so a rollback can itself be rolled back). Shared by both CRM connectors;
// the connector's own put still validates and saves.
import { AppError } from '../../core/errors.ts';
import type { Clock, Store } from '../../core/ports.ts';
import type { ConnectorMappings, MappingVersion } from '../../server/contracts.ts';

/** Versions kept per account; older ones are dropped (the routing configuration keeps every version, mappings change rarely). */
const KEEP = 50;

type Stored = MappingVersion & { mapping: unknown };

export function versionedMappings(inner: Omit<ConnectorMappings, 'versions' | 'rollback'>, deps: { store: Store; clock: Clock; ns: string; normalise: (account: string) => string }): ConnectorMappings {
  const { store, clock, ns } = deps;
  // One replacement at a time per process, so two saves cannot number the same version.
  let turn: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = turn.then(fn, fn);
    turn = run.catch(() => undefined);
    return run;
  };
  const list = async (account: string) => (await store.kvGet<Stored[]>(ns, account)) ?? [];

  async function save(account: string, value: unknown, meta: { author: string; note: string }): Promise<unknown> {
    const key = deps.normalise(account);
    return serial(async () => {
      const before = await list(key);
      const previous = before.length ? null : await inner.get(key);
      const saved = await inner.put(key, value);
      const next = before.length ? before.at(-1)!.version + 1 : 1;
      const rows: Stored[] = [...before];
      if (previous !== null) rows.push({ version: 0, savedAt: clock.now(), author: 'tierline', note: 'in force before the first change', mapping: previous });
      rows.push({ version: next, savedAt: clock.now(), author: meta.author, note: meta.note, mapping: saved });
      await store.kvPut(ns, key, rows.slice(-KEEP));
      return saved;
    });
  }

  return {
    ...inner,
    put: (account, value, meta) => save(account, value, { author: meta?.author ?? 'admin', note: meta?.note ?? '' }),
    async versions(account) {
      return (await list(deps.normalise(account))).map(({ mapping: _m, ...v }) => v).reverse();
    },
    async rollback(account, version, author) {
      const key = deps.normalise(account);
      const found = (await list(key)).find((v) => v.version === version);
      if (!found) throw new AppError('not_found', `Mapping version ${version} of ${key} is not kept; GET its versions to see which are.`);
      return save(key, found.mapping, { author, note: `rollback to version ${version}` });
    },
  };
}
