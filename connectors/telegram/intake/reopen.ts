// Reopening a resolved ticket when the customer writes again within the reopen window. The pipeline has no reopen
// step yet (core/pipeline.ts is not ours to change), so this applies one the way the pipeline applies its own steps:
// one atomic Store.commit under the exclusive section with the ticket back to its agent if they can take it (available
// and under capacity), else waiting in its queue with an immediate placement check (the pipeline's overflow_check
// timer routes it to whoever in the queue can take it), a "reopened" history entry, and the pipeline's own job kinds to
// write it back to the CRM and post it in the topic. Job ids are derived from the entry key, so a repeat after a crash
// is ignored by the store.
import { createRouter } from '../../../core/route.ts';
import type { Batch, Clock, CounterOp, HistoryEntry, Job, Store, Timer } from '../../../core/ports.ts';

function job(kind: Job['kind'], id: string, ticketKey: string, payload: Record<string, unknown>, now: number): Job {
  return { id, kind, ticketKey, payload, attempts: 0, nextAt: now, status: 'pending', lastError: null, leaseUntil: 0, createdAt: now };
}

/** Returns false when the ticket is not resolved (already reopened, or unknown). */
export async function reopenTicket(store: Store, clock: Clock, key: string, why: string): Promise<boolean> {
  return store.exclusive(async () => {
    const t0 = await store.getTicket(key);
    if (!t0 || t0.status !== 'resolved') return false;
    const t = structuredClone(t0);
    const now = clock.now();
    const cfg = (await store.getConfig())?.config;
    const previous = t.agentId ? cfg?.agents.find((a) => a.id === t.agentId) : undefined;
    // The previous agent knows the case, but only gets it back if they can take it now (as the router would judge).
    let busy: string | null = null;
    if (previous && cfg) {
      const c = await store.routingCounters();
      const status = c.status[previous.id] ?? previous.status;
      const capacity = createRouter(cfg).capacity(previous.id);
      if (status !== 'available') busy = `${previous.name} is ${status}`;
      else if ((c.load[previous.id] ?? 0) >= capacity) busy = `${previous.name} is at capacity (${capacity})`;
    }
    const agent = busy ? undefined : previous;
    const counters: CounterOp[] = [];
    const timers: Timer[] = [];
    if (agent) {
      t.status = t.firstResponseAt ? 'answered' : 'assigned';
      counters.push({ op: 'load', agentId: agent.id, delta: 1 });
    } else {
      t.status = 'waiting';
      t.agentId = null;
      if (t.queueId) {
        t.enqueuedAt = now;
        counters.push({ op: 'wait', queueId: t.queueId, ticketKey: t.key, since: now });
        timers.push({ id: `overflow_check:${t.key}`, kind: 'overflow_check', at: now, ticketKey: t.key });
      }
    }
    t.resolvedAt = null;
    t.updatedAt = now;
    t.seq += 1;
    const text = `Reopened: ${why}${busy ? `; ${busy}, so it waits in its queue for the next agent who can take it` : ''}`;
    const e: HistoryEntry = { key: `${t.key}#${t.seq}`, ticketKey: t.key, seq: t.seq, kind: 'reopened', at: now, queueId: t.queueId ?? '', agentId: t.agentId, ruleId: t.ruleId, tier: t.segment?.tier ?? null, text };
    const mention = agent?.telegramUserId ? { name: agent.name, telegramUserId: agent.telegramUserId } : agent ? { name: agent.name } : undefined;
    const batch: Batch = {
      tickets: [t],
      history: [e],
      counters,
      timers,
      jobs: [job('writeback', `wb:${e.key}`, t.key, { entryKey: e.key }, now), job('post', `post:${e.key}`, t.key, { text: `🔄 ${text}`, ...(mention ? { mention } : {}), priority: 30 }, now)],
    };
    await store.commit(batch);
    return true;
  });
}
