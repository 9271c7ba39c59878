// The lowdb store against the store contract, reopening from the same data directory for the persistence checks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLowdbStore } from '../../server/storage/lowdb-store.ts';
import { runStoreContract } from './contract.ts';
import { silentLogger } from './fixtures.ts';

runStoreContract('lowdb', async ({ clock }) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierline-lowdb-'));
  const open = () => openLowdbStore({ dir, clock, logger: silentLogger });
  return { store: await open(), reopen: open, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
