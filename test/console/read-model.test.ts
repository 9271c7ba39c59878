import { describe, expect, it } from 'vitest';
import type { Store } from '../../core/ports.ts';
import { createReadModel } from '../../server/console/read-model.ts';
import { silentLogger } from '../../server/logger.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';
import { ManualClock } from '../pipeline/harness.ts';
import { seedOutcomes } from './fixtures.ts';

/** Counts the store calls the read model makes, to show it reads everything once and then only what changed. */
function counting(store: Store) {
  /** ticketReads: tickets read by key, one by one or in a batch. */
  const calls = { tickets: 0, ticketReads: 0, history: 0 };
  const wrapped: Store = {
    ...store,
    tickets: (f) => (calls.tickets++, store.tickets(f)),
    getTicket: (k) => (calls.ticketReads++, store.getTicket(k)),
    getTickets: (ks) => ((calls.ticketReads += ks.length), store.getTickets(ks)),
    history: (q) => (calls.history++, store.history(q)),
  };
  return { store: wrapped, calls };
}

describe('console read model', () => {
  it('loads all tickets once, then follows the history: a changed ticket is read again and the report recomputed', async () => {
    const clock = new ManualClock();
    const mem = createMemoryStore({ clock });
    const seeded = await seedOutcomes(mem, { count: 200, end: clock.now() });
    const { store, calls } = counting(mem);
    const model = createReadModel(store, clock, silentLogger, { maxAgeMs: 1_000 });

    const first = await model.report(null);
    expect(first.tickets).toBe(200);
    expect(calls.tickets).toBe(1);
    const open = first.report.overall.open;

    // Within maxAge: served as is, no store reads.
    clock.advance(500);
    const again = await model.report(null);
    expect(again.report).toBe(first.report);
    expect(calls.history).toBe(0);

    // A ticket is resolved: one history entry; after maxAge the model reads that ticket only.
    const t = structuredClone(seeded.tickets.find((x) => x.status !== 'resolved')!);
    clock.advance(1_000);
    t.status = 'resolved';
    t.resolvedAt = clock.now();
    t.updatedAt = clock.now();
    t.seq += 1;
    await mem.commit({ tickets: [t], history: [{ key: `${t.key}#${t.seq}`, ticketKey: t.key, seq: t.seq, kind: 'resolved', at: clock.now(), queueId: t.queueId!, agentId: t.agentId, ruleId: t.ruleId, tier: t.segment!.tier, text: 'Resolved' }] });
    clock.advance(1_000);
    const after = await model.report(null);
    expect(calls.tickets).toBe(1);
    expect(calls.ticketReads).toBeGreaterThanOrEqual(1);
    const reads = calls.ticketReads;
    expect(after.snapshot.version).toBe(first.snapshot.version + 1);
    expect(after.report.overall.open).toBe(open - 1);

    // Nothing changed: same version, the cached report object.
    clock.advance(1_500);
    const quiet = await model.report(null);
    expect(quiet.snapshot.version).toBe(after.snapshot.version);
    expect(quiet.report).toBe(after.report);
    // Entries seen on the last look are not read again, however wide the overlap window.
    expect(calls.ticketReads).toBe(reads);
  });

  it('keeps records slim: no subject, names or explanation text beyond the missing-data line the report needs', async () => {
    const clock = new ManualClock();
    const mem = createMemoryStore({ clock });
    await seedOutcomes(mem, { count: 300, end: clock.now() });
    const model = createReadModel(mem, clock, silentLogger);
    const snap = await model.snapshot();
    const all = [...snap.tickets.values()];
    expect(all.every((t) => t.subject === '' && t.customerName === null && t.topic === null)).toBe(true);
    expect(all.every((t) => t.explanation.length <= 1)).toBe(true);
    const full = await mem.tickets();
    expect((await model.report(null)).report.staleness).toEqual((await import('../../core/report.ts')).performanceReport(full).staleness);
  });

  it('reloads everything when more tickets changed than reading them one by one is worth', async () => {
    const clock = new ManualClock();
    const mem = createMemoryStore({ clock });
    await seedOutcomes(mem, { count: 50, end: clock.now() });
    const { store, calls } = counting(mem);
    const model = createReadModel(store, clock, silentLogger, { maxAgeMs: 1, reloadAbove: 10 });
    await model.snapshot();
    clock.advance(10);
    await seedOutcomes(mem, { count: 30, end: clock.now(), spanMs: 60_000, seed: 9, crm: 'salesforce' });
    clock.advance(10);
    const snap = await model.snapshot();
    expect(snap.tickets.size).toBe(80);
    expect(calls.tickets).toBe(2);
    expect(calls.ticketReads).toBe(0);
  });
});
