// The shared store contract suite (test/storage/contract.ts, the memory store's semantics) against PostgreSQL.
// Timer leases are off here (timerLeaseMs 0): one instance then sees a due timer again until it is cancelled, exactly
// like the memory store; the lease that keeps two instances off one timer is tested in store.test.ts.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Clock, Store } from '../../../core/ports.ts';
import { postgresSkipReason, usePostgres } from './helpers.ts';

type Contract = { runStoreContract(name: string, open: (arg?: unknown) => Promise<Store>): void };

const contractFile = new URL('../contract.ts', import.meta.url);
const contract: Contract | null = existsSync(contractFile) ? ((await import(contractFile.href)) as Contract) : null;

const isClock = (x: unknown): x is Clock => typeof (x as Clock | null)?.now === 'function';

if (!contract) {
  describe.skip('store contract suite on PostgreSQL', () => it('waits for test/storage/contract.ts', () => {}));
} else if (postgresSkipReason !== null) {
  describe.skip(`store contract suite on PostgreSQL (${postgresSkipReason})`, () => it('needs PostgreSQL', () => {}));
} else {
  const db = usePostgres();
  beforeAll(() => db.start(), 60_000);
  afterAll(() => db.stop());
  // open(clock) or open({ clock }): each call is a fresh, empty store in its own schema.
  contract.runStoreContract('postgres', (arg?: unknown) => {
    const clock = isClock(arg) ? arg : isClock((arg as { clock?: unknown } | undefined)?.clock) ? (arg as { clock: Clock }).clock : undefined;
    const retentionMs = (arg as { retentionMs?: unknown } | undefined)?.retentionMs;
    return db.open({ timerLeaseMs: 0, ...(clock ? { clock } : {}), ...(typeof retentionMs === 'number' ? { retentionMs } : {}) });
  });
}
