// The PostgreSQL store against the memory store (the reference semantics), operation by operation: long seeded
// random sequences of commits, claims, failures, timers, history queries, kv and config calls must give identical
// answers from both. Catches the differences a hand-written case list forgets (ordering, ties, clamps, duplicates).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, CounterOp, HistoryQuery, Store } from '../../../core/ports.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';
import { historyEntry, job, postgresSkipReason, ticket, timer, usePostgres } from './helpers.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op = { name: string; run: (s: Store) => Promise<unknown> };

function scenario(seed: number, steps: number): Op[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (n: number) => Math.floor(r() * n);
  const keys = ['t1', 't2', 't3', 't4', 't5', 't6'];
  const agents = ['ann', 'bob', 'cy'];
  const queues = ['general', 'vip'];
  const seqs = new Map<string, number>();
  let now = 10_000;
  const ops: Op[] = [];
  for (let i = 0; i < steps; i++) {
    now += int(3) * 500;
    const at = now;
    const roll = r();
    if (roll < 0.3) {
      const b: Batch = {};
      if (r() < 0.6)
        b.tickets = Array.from({ length: 1 + int(2) }, () => {
          const k = pick(keys);
          return ticket(k, {
            status: pick(['waiting', 'assigned', 'answered', 'resolved', 'failed'] as const),
            agentId: r() < 0.2 ? null : pick(agents),
            queueId: pick(queues),
            companyId: r() < 0.2 ? null : pick(['co-1', 'co-2']),
            topic: r() < 0.5 ? null : { groupId: pick(['g1', 'g2']), topicId: 1 + int(3), link: 'https://t.me/c/1/1' },
            updatedAt: at,
            seq: int(5),
          });
        });
      if (r() < 0.5) b.jobs = Array.from({ length: 1 + int(3) }, () => job(`j${int(12)}`, { ticketKey: pick(keys), nextAt: at + (int(3) - 1) * 1000, createdAt: at - int(3) }));
      if (r() < 0.3) b.completeJobs = [`j${int(12)}`];
      if (r() < 0.3) {
        const id = `tm${int(6)}`;
        const due = at + (int(5) - 2) * 1000;
        b.timers = [r() < 0.3 ? { id, kind: 'offline_grace', at: due, agentId: pick(agents) } : timer(id, due)];
      }
      if (r() < 0.2) b.cancelTimers = [`tm${int(6)}`];
      if (r() < 0.5)
        b.history = Array.from({ length: 1 + int(2) }, () => {
          const k = pick(keys);
          const seq = r() < 0.2 ? Math.max(1, seqs.get(k) ?? 1) : (seqs.get(k) ?? 0) + 1;
          seqs.set(k, Math.max(seq, seqs.get(k) ?? 0));
          return historyEntry(k, seq, { at: at - int(4) * 1000, kind: pick(['routed', 'assigned', 'resolved'] as const), agentId: r() < 0.2 ? null : pick(agents), queueId: pick(queues), tier: r() < 0.3 ? null : pick(['free', 'enterprise'] as const), ...(r() < 0.3 ? { explanation: ['why'] } : {}) });
        });
      if (r() < 0.6)
        b.counters = Array.from({ length: 1 + int(4) }, (): CounterOp => {
          switch (int(6)) {
            case 0:
              return { op: 'load', agentId: pick(agents), delta: pick([1, 1, -1, -2]) };
            case 1:
              return { op: 'rr', queueId: pick(queues), value: int(7) };
            case 2:
              return { op: 'rotation', queueId: pick(queues), value: r() };
            case 3:
              return { op: 'status', agentId: pick(agents), status: pick(['available', 'away', 'offline'] as const) };
            case 4:
              return { op: 'wait', queueId: pick(queues), ticketKey: pick(keys), since: at - int(5) };
            default:
              return { op: 'unwait', queueId: pick(queues), ticketKey: pick(keys) };
          }
        });
      const viaDecision = r() < 0.4;
      const k = pick(keys);
      ops.push({
        name: `${viaDecision ? 'exclusive commit+read' : 'commit'} ${JSON.stringify(b).slice(0, 80)}`,
        // Inside a decision the batch must be visible to reads that follow it in the same section.
        run: (s) => (viaDecision ? s.exclusive(async () => (await s.commit(b), [await s.counters(), await s.getTicket(k)])) : s.commit(b)),
      });
    } else if (roll < 0.4) {
      const limit = 1 + int(3);
      const lease = int(3) * 1000;
      ops.push({ name: `claimJobs(${at}, ${limit}, ${lease})`, run: (s) => s.claimJobs(at, limit, lease) });
    } else if (roll < 0.45) {
      const id = `j${int(12)}`;
      const retry = r() < 0.4 ? null : at + 500 + r() * 100;
      ops.push({ name: `failJob(${id}, ${retry})`, run: (s) => s.failJob(id, `boom ${i}`, retry) });
    } else if (roll < 0.48) {
      const id = `j${int(12)}`;
      ops.push({ name: `retryDeadJob(${id})`, run: (s) => s.retryDeadJob(id, at) });
    } else if (roll < 0.52) {
      ops.push({ name: 'deadJobs + pendingJobs', run: async (s) => [await s.deadJobs(), await s.pendingJobs()] });
    } else if (roll < 0.57) {
      const limit = 1 + int(4);
      ops.push({ name: `dueTimers(${at}, ${limit})`, run: (s) => s.dueTimers(at, limit) });
    } else if (roll < 0.67) {
      const q: HistoryQuery = {};
      if (r() < 0.3) q.ticketKey = pick(keys);
      if (r() < 0.2) q.companyId = pick(['co-1', 'co-2']);
      if (r() < 0.2) q.tier = pick(['free', 'enterprise', 'unknown'] as const);
      if (r() < 0.2) q.queueId = pick(queues);
      if (r() < 0.2) q.agentId = pick(agents);
      if (r() < 0.2) q.kind = pick(['routed', 'resolved'] as const);
      if (r() < 0.2) q.from = at - 3000;
      if (r() < 0.2) q.to = at - 1000;
      if (r() < 0.3) q.offset = int(4);
      if (r() < 0.3) q.limit = int(5);
      ops.push({ name: `history(${JSON.stringify(q)})`, run: (s) => s.history(q) });
    } else if (roll < 0.75) {
      const f = pick([{}, { open: true }, { open: false }, { agentId: pick(agents) }, { queueId: pick(queues), open: true }]);
      const k = pick(keys);
      const page = { limit: 1 + int(3), ...(r() < 0.5 ? { after: { key: pick(keys), queueId: pick(queues), since: at - int(6) } } : {}) };
      const qs = r() < 0.5 ? queues : [pick(queues)];
      ops.push({
        name: `tickets(${JSON.stringify(f)}) + counters + routingCounters + waitingTickets(${JSON.stringify(qs)}, ${JSON.stringify(page)}) + getTicket(${k})`,
        run: async (s) => [await s.tickets(f), await s.counters(), await s.routingCounters(), await s.waitingTickets(qs, page), await s.getTicket(k)],
      });
    } else if (roll < 0.78) {
      const g = pick(['g1', 'g2']);
      const id = 1 + int(3);
      ops.push({ name: `findTicketByTopic(${g}, ${id})`, run: (s) => s.findTicketByTopic(g, id) });
    } else if (roll < 0.86) {
      const ns = pick(['hubspot:tokens', 'salesforce:replay']);
      const key = pick(['a', 'b', 'c']);
      const v = pick([{ token: 'x', n: int(9) }, [1, 2, { z: null }], 'text', 42, null, true]);
      const which = int(4);
      ops.push({
        name: `kv ${which} ${ns} ${key}`,
        run: async (s) => {
          if (which === 0) await s.kvPut(ns, key, v);
          if (which === 1) return s.kvDelete(ns, key);
          if (which === 2) return s.kvGet(ns, key);
          return s.kvList(ns);
        },
      });
    } else if (roll < 0.93) {
      const ks = Array.from({ length: 1 + int(3) }, () => `in:${int(8)}`);
      const when = r() < 0.1 ? at + 8 * 24 * 3600_000 : at;
      if (when !== at) now = when;
      ops.push({ name: `recordInbound(${ks})`, run: (s) => s.recordInbound(ks, when) });
    } else if (roll < 0.96) {
      const cfg = { rules: [], defaultQueue: `q${int(3)}`, queues: [], agents: [], groups: [] } as unknown as Parameters<Store['saveConfig']>[0];
      ops.push({ name: 'saveConfig', run: (s) => s.saveConfig(cfg, { author: 'amy', note: `v${i}`, at }) });
    } else {
      ops.push({ name: 'getConfig + configVersions', run: async (s) => [await s.getConfig(), await s.configVersions()] });
    }
  }
  return ops;
}

describe.skipIf(postgresSkipReason !== null)('PostgreSQL store answers exactly like the memory store', () => {
  const pg = usePostgres();
  beforeAll(() => pg.start(), 60_000);
  afterAll(() => pg.stop());

  it.each([1, 2, 3, 4])('random scenario %i (500 operations)', async (seed) => {
    // timerLeaseMs 0: one instance may see a due timer again until it is cancelled, as with the memory store.
    const p = await pg.open({ timerLeaseMs: 0 });
    const m = createMemoryStore({ clock: { now: () => 0 } });
    for (const [i, op] of scenario(seed, 500).entries()) {
      const want = await op.run(m);
      const got = await op.run(p);
      expect(got, `step ${i}: ${op.name}`).toEqual(want);
    }
    // A full read-back at the end, including every history entry.
    expect(await p.history({ limit: 10_000 })).toEqual(await m.history({ limit: 10_000 }));
    expect(await p.tickets()).toEqual(await m.tickets());
    expect(await p.counters()).toEqual(await m.counters());
  });
});
