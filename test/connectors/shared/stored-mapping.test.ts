import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { storedMappingReader } from '../../../connectors/shared/stored-mapping.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';
import { openLowdbStore } from '../../../server/storage/lowdb-store.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const Schema = z.object({ tier: z.array(z.string()).default(() => ['company.tier']), scale: z.number().positive().default(1) }).strict();

describe('stored field mappings', () => {
  for (const [name, open] of [
    ['memory', async () => createMemoryStore()],
    ['lowdb', async () => openLowdbStore({ dir: mkdtempSync(join(tmpdir(), 'tierline-mapping-')), clock: { now: () => Date.now() } })],
  ] as const) {
    it(`${name}: the default until one is saved, each replacement from the next read on, and an invalid one falls back with a warning`, async () => {
      const store = await open();
      const invalid: string[] = [];
      const read = storedMappingReader({ store, ns: 'test:mappings', schema: Schema, onInvalid: (a) => invalid.push(a) });
      expect(await read('42')).toEqual({ tier: ['company.tier'], scale: 1 });
      await store.kvPut('test:mappings', '42', { tier: ['company.plan'] });
      expect(await read('42')).toEqual({ tier: ['company.plan'], scale: 1 });
      expect(await read('42')).toBe(await read('42'));
      await store.kvPut('test:mappings', '42', { tier: ['company.plan'], scale: 2 });
      expect((await read('42')).scale).toBe(2);
      // Readers share the mapping; changing it by accident throws instead of changing every later read.
      await expect((async () => (await read('42')).tier.push('x'))()).rejects.toThrow(TypeError);
      await store.kvPut('test:mappings', '42', { scale: -1 });
      expect(await read('42')).toEqual({ tier: ['company.tier'], scale: 1 });
      expect(await read('42')).toEqual({ tier: ['company.tier'], scale: 1 });
      // Warned once per stored version, not on every webhook.
      expect(invalid).toEqual(['42']);
      await store.close();
    });
  }
});
