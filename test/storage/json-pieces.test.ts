// The lowdb live file is written in pieces so a compaction does not hold the event loop for the whole document; the
// pieces must add up to exactly what JSON.stringify would have written, and a large file must really be cut.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DurableJsonFile, jsonPieces } from '../../server/storage/lowdb/files.ts';

describe('live file written in pieces', () => {
  it('pieces join to exactly JSON.stringify of any document', () => {
    const doc = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(fc.string(), fc.oneof(fc.array(fc.oneof(fc.jsonValue(), fc.constant(undefined))), fc.jsonValue(), fc.constant(undefined))),
    );
    fc.assert(
      fc.property(doc, fc.integer({ min: 1, max: 64 }), (d, size) => {
        expect([...jsonPieces(d, size)].join('')).toBe(JSON.stringify(d) ?? 'null');
      }),
      { numRuns: 3_000 },
    );
  });

  it('writes a 20 MB live file in pieces that a reader gets back whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tierline-pieces-'));
    try {
      const tickets = Array.from({ length: 12_000 }, (_, i) => ({ key: `hubspot:42:${i}`, status: 'resolved', explanation: Array.from({ length: 8 }, (_, k) => `line ${k} ${'x'.repeat(180)}`) }));
      const doc = { format: 'tierline-lowdb', version: 1, tickets, jobs: [], note: undefined, counters: { load: { ann: 1 } } };
      expect([...jsonPieces(doc)].length).toBeGreaterThan(10);
      const file = new DurableJsonFile<typeof doc>(join(dir, 'tierline.json'), 'test file');
      await file.write(doc);
      expect(await readFile(join(dir, 'tierline.json'), 'utf8')).toBe(JSON.stringify(doc));
      expect(await file.read()).toEqual(JSON.parse(JSON.stringify(doc)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
