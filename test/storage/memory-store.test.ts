// The memory store against the store contract (it is the reference the other adapters are held to).
import { createMemoryStore } from '../../server/storage/memory-store.ts';
import { runStoreContract } from './contract.ts';

runStoreContract('memory', async ({ clock, retentionMs }) => createMemoryStore({ clock, retentionMs }));
