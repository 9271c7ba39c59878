// The lowdb outbox's due-time index must hand out exactly what a scan of every pending job would: the jobs claimable
// now (next attempt reached, lease passed), earliest next attempt first, then the one created first.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DueIndex, type Schedulable } from '../../server/storage/lowdb/due-index.ts';

type Op = { kind: 'add' | 'reschedule' | 'remove'; id: number; nextAt: number; leaseUntil: number } | { kind: 'claim'; now: number; limit: number; leaseMs: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('add' as const, 'reschedule' as const, 'remove' as const), id: fc.integer({ min: 0, max: 40 }), nextAt: fc.integer({ min: 0, max: 100 }), leaseUntil: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 150 })) }),
  fc.record({ kind: fc.constant('claim' as const), now: fc.integer({ min: 0, max: 150 }), limit: fc.integer({ min: 1, max: 8 }), leaseMs: fc.integer({ min: 1, max: 60 }) }),
);

describe('lowdb due-time index', () => {
  it('claims the same jobs, in the same order, as scanning every pending job', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const index = new DueIndex();
        const model = new Map<string, Schedulable>();
        // Creation times collide (jobs made in the same millisecond); then the one added first goes first.
        let created = 0;
        const order = new Map<string, number>();
        let added = 0;
        let clock = 0;
        for (const o of ops) {
          if (o.kind === 'claim') {
            // Claims come with the service's clock, which does not go back: a lease seen to end stays ended.
            o.now = clock = Math.max(clock, o.now);
            const want = [...model.values()]
              .filter((j) => j.nextAt <= o.now && j.leaseUntil <= o.now)
              .sort((a, b) => a.nextAt - b.nextAt || a.createdAt - b.createdAt || order.get(a.id)! - order.get(b.id)!)
              .slice(0, o.limit)
              .map((j) => j.id);
            const got: string[] = [];
            for (let id = index.popDue(o.now); id !== undefined; id = got.length < o.limit ? index.popDue(o.now) : undefined) got.push(id);
            expect(got).toEqual(want);
            for (const id of got) {
              const j = model.get(id)!;
              j.leaseUntil = o.now + o.leaseMs;
              index.schedule(j);
            }
            continue;
          }
          const id = `j${o.id}`;
          if (o.kind === 'remove') {
            model.delete(id);
            order.delete(id);
            index.remove(id);
            continue;
          }
          if (o.kind === 'reschedule' && !model.has(id)) continue;
          // Creation order breaks ties; a reschedule (a failed attempt) keeps it.
          const j: Schedulable = { id, nextAt: o.nextAt, leaseUntil: o.leaseUntil, createdAt: model.get(id)?.createdAt ?? Math.floor(created++ / 3) };
          if (!order.has(id)) order.set(id, added++);
          model.set(id, j);
          index.schedule(j);
        }
        expect(index.size).toBe(model.size);
      }),
      { numRuns: 2_000 },
    );
  });

  it('stays as large as the pending jobs, not as the jobs ever leased', () => {
    const index = new DueIndex();
    // 100,000 steps, each claimed with a ten-minute lease and completed: none pending at the end.
    for (let i = 0; i < 100_000; i++) {
      const j = { id: `s${i}`, nextAt: i, createdAt: i, leaseUntil: 0 };
      index.schedule(j);
      expect(index.popDue(i)).toBe(j.id);
      index.schedule({ ...j, leaseUntil: i + 600_000 });
      index.remove(j.id);
    }
    expect(index.size).toBe(0);
    expect(index.popDue(10_000_000)).toBeUndefined();
    // Stale entries are dropped in bulk once they outnumber the live ones (private, but the bound is the point).
    const held = index as unknown as { ready: { items: unknown[] }; leased: { items: unknown[] }; added: Map<string, number> };
    expect(held.ready.items.length + held.leased.items.length).toBeLessThanOrEqual(1024 + 1);
    expect(held.added.size).toBe(0);
  });
});
