// The Store in memory: the reference semantics every adapter must match (the contract suite runs against it),
// and the store unit tests use. Values are cloned in and out so callers can never mutate stored state by accident.
import { deepFreeze } from '../../core/frozen.ts';
import { applyCounterOps, copyCounters, emptyCounters, OldestWaiting, waitingPage } from '../../core/route.ts';
import type { RoutingConfig } from '../../core/config.ts';
import type { Batch, Clock, ConfigVersion, Counters, HistoryEntry, HistoryQuery, Job, Store, TicketRecord, Timer } from '../../core/ports.ts';
import { isOpenTicket } from '../../core/ports.ts';
import { forgotten, retentionCutoff } from './retention.ts';
import { copyData as clone } from './copy.ts';

/** How long completed job ids and inbound event keys are remembered (Salesforce retries for 24 hours). */
export const DEDUPE_WINDOW_MS = 7 * 24 * 3600_000;

export type MemoryState = {
  configs: ConfigVersion[];
  inbound: Map<string, number>;
  tickets: Map<string, TicketRecord>;
  jobs: Map<string, Job>;
  doneJobs: Map<string, number>;
  timers: Map<string, Timer>;
  history: HistoryEntry[];
  counters: Counters;
  kv: Map<string, Map<string, unknown>>;
};

export function emptyState(): MemoryState {
  return { configs: [], inbound: new Map(), tickets: new Map(), jobs: new Map(), doneJobs: new Map(), timers: new Map(), history: [], counters: emptyCounters(), kv: new Map() };
}

/**
 * History keys already stored, per state: deduping a batch's entries by scanning the whole history made each commit
 * O(history), which the pipeline and console tests feel at tens of thousands of entries. Rebuilt if the history
 * array changed behind applyBatch's back (callers that seed a state directly).
 */
const historyKeys = new WeakMap<MemoryState, { keys: Set<string>; length: number }>();

function keysOf(s: MemoryState): Set<string> {
  let k = historyKeys.get(s);
  if (!k || k.length !== s.history.length) {
    k = { keys: new Set(s.history.map((h) => h.key)), length: s.history.length };
    historyKeys.set(s, k);
  }
  return k.keys;
}

/**
 * Drops completed job ids or inbound keys older than the dedupe window (they only matter within it). Each map is
 * pruned on its own time line: job ids by the store's clock (commits), inbound keys by the times callers pass.
 */
export function pruneOlder(m: Map<string, number>, now: number): void {
  const cutoff = now - DEDUPE_WINDOW_MS;
  for (const [k, at] of m) if (at < cutoff) m.delete(k);
}

/** Applies a batch to the state (shared with adapters that keep state in memory and persist elsewhere). */
export function applyBatch(s: MemoryState, b: Batch, now: number): void {
  for (const t of b.tickets ?? []) s.tickets.set(t.key, clone(t));
  for (const id of b.completeJobs ?? []) {
    s.jobs.delete(id);
    s.doneJobs.set(id, now);
  }
  for (const j of b.jobs ?? []) if (!s.jobs.has(j.id) && !s.doneJobs.has(j.id)) s.jobs.set(j.id, clone(j));
  for (const id of b.cancelTimers ?? []) s.timers.delete(id);
  for (const t of b.timers ?? []) s.timers.set(t.id, clone(t));
  if (b.history?.length) {
    const keys = keysOf(s);
    for (const h of b.history) {
      if (keys.has(h.key)) continue;
      keys.add(h.key);
      s.history.push(clone(h));
    }
    historyKeys.get(s)!.length = s.history.length;
  }
  if (b.counters?.length) applyCounterOps(s.counters, b.counters);
}

export function matchesHistory(e: HistoryEntry, q: HistoryQuery, ticket: TicketRecord | undefined): boolean {
  if (q.ticketKey && e.ticketKey !== q.ticketKey) return false;
  if (q.companyId && ticket?.companyId !== q.companyId) return false;
  if (q.tier && (e.tier ?? 'unknown') !== q.tier) return false;
  if (q.queueId && e.queueId !== q.queueId) return false;
  if (q.agentId && e.agentId !== q.agentId) return false;
  if (q.kind && e.kind !== q.kind) return false;
  if (q.from !== undefined && e.at < q.from) return false;
  if (q.to !== undefined && e.at > q.to) return false;
  return true;
}

/** retentionMs: routing history and closed tickets older than this are forgotten (default: kept for good). */
export function createMemoryStore(opts: { clock?: Clock; retentionMs?: number } = {}): Store {
  const clock = opts.clock ?? { now: () => Date.now() };
  const keepMs = opts.retentionMs ?? Infinity;
  const cutoffNow = () => retentionCutoff(clock.now(), keepMs);
  const s = emptyState();
  let chain: Promise<unknown> = Promise.resolve();
  /** Records put with a time to live: ns\0key -> when they expire. */
  const kvExpiry = new Map<string, number>();
  const kvId = (ns: string, key: string) => `${ns}\u0000${key}`;
  const expired = (ns: string, key: string) => {
    const at = kvExpiry.size ? kvExpiry.get(kvId(ns, key)) : undefined;
    return at !== undefined && at <= clock.now();
  };
  // Pruning walks a whole map, so it runs at most once per (simulated) minute rather than on every call.
  const prunedAt = new Map<Map<string, number>, number>();
  const prune = (m: Map<string, number>, now: number) => {
    if (now - (prunedAt.get(m) ?? -Infinity) < 60_000) return;
    prunedAt.set(m, now);
    pruneOlder(m, now);
  };
  let forgotAt = -Infinity;
  /** Frees what left the retention window (reads hide it at once), at most once a (simulated) minute. */
  const forget = (now: number) => {
    if (keepMs === Infinity || now - forgotAt < 60_000) return;
    forgotAt = now;
    const cutoff = retentionCutoff(now, keepMs);
    for (const [k, t] of s.tickets) if (forgotten(t, cutoff)) s.tickets.delete(k);
    if (s.history.some((e) => e.at < cutoff)) {
      s.history = s.history.filter((e) => e.at >= cutoff);
      historyKeys.delete(s);
    }
  };


  return {
    async getConfig() {
      const v = s.configs.at(-1);
      return v ? clone(v) : null;
    },
    async saveConfig(config: RoutingConfig, meta) {
      const v: ConfigVersion = { version: (s.configs.at(-1)?.version ?? 0) + 1, config: clone(config), savedAt: meta.at, author: meta.author, note: meta.note };
      s.configs.push(v);
      return clone(v);
    },
    async configVersions() {
      return clone([...s.configs].reverse());
    },
    async recordInbound(keys, at) {
      prune(s.inbound, at);
      // A key seen longer ago than the window counts as new again, whether or not pruning has dropped it yet.
      return keys.map((k) => {
        const seen = s.inbound.get(k);
        if (seen !== undefined && seen >= at - DEDUPE_WINDOW_MS) return false;
        s.inbound.set(k, at);
        return true;
      });
    },
    async getTicket(key) {
      const t = s.tickets.get(key);
      return t && !forgotten(t, cutoffNow()) ? clone(t) : null;
    },
    async getTickets(keys) {
      const cutoff = cutoffNow();
      return [...new Set(keys)].flatMap((k) => {
        const t = s.tickets.get(k);
        return t && !forgotten(t, cutoff) ? [clone(t)] : [];
      });
    },
    async findTicketByTopic(groupId, topicId) {
      const cutoff = cutoffNow();
      for (const t of s.tickets.values()) if (t.topic && t.topic.groupId === groupId && t.topic.topicId === topicId && !forgotten(t, cutoff)) return clone(t);
      return null;
    },
    async tickets(filter = {}) {
      const cutoff = cutoffNow();
      const out: TicketRecord[] = [];
      for (const t of s.tickets.values()) {
        if (forgotten(t, cutoff)) continue;
        if (filter.open !== undefined && isOpenTicket(t) !== filter.open) continue;
        if (filter.agentId && t.agentId !== filter.agentId) continue;
        if (filter.queueId && t.queueId !== filter.queueId) continue;
        if (filter.status && t.status !== filter.status) continue;
        out.push(clone(t));
      }
      return out;
    },
    async openTicketsPerGroup() {
      const out: Record<string, number> = {};
      for (const t of s.tickets.values()) {
        const g = t.topic?.groupId ?? t.topicGroupId;
        if (isOpenTicket(t) && g) out[g] = (out[g] ?? 0) + 1;
      }
      return out;
    },
    async counters() {
      return copyCounters(s.counters);
    },
    async routingCounters() {
      // Nothing remembered between reads: this store serves tests and replays, where the lists stay short.
      return new OldestWaiting().read(s.counters);
    },
    async waitingTickets(queueIds, page) {
      return waitingPage(s.counters, queueIds, page);
    },
    async commit(batch) {
      const now = clock.now();
      applyBatch(s, batch, now);
      prune(s.doneJobs, now);
      forget(now);
    },
    // Nothing to wait for: memory is all there is.
    async saved() {},
    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      const run = chain.then(fn, fn);
      chain = run.catch(() => undefined);
      return run;
    },
    async claimJobs(now, limit, leaseMs) {
      const due = [...s.jobs.values()].filter((j) => j.status === 'pending' && j.nextAt <= now && j.leaseUntil <= now).sort((a, b) => a.nextAt - b.nextAt || a.createdAt - b.createdAt);
      const out = due.slice(0, limit);
      for (const j of out) {
        j.leaseUntil = now + leaseMs;
        j.claims = (j.claims ?? 0) + 1;
      }
      return clone(out);
    },
    async failJob(id, error, retryAt) {
      const j = s.jobs.get(id);
      if (!j) return;
      j.attempts += 1;
      j.lastError = error;
      j.leaseUntil = 0;
      if (retryAt === null) j.status = 'dead';
      else j.nextAt = retryAt;
    },
    async deadJobs() {
      return clone([...s.jobs.values()].filter((j) => j.status === 'dead'));
    },
    async retryDeadJob(id, now) {
      const j = s.jobs.get(id);
      if (!j || j.status !== 'dead') return false;
      j.status = 'pending';
      j.nextAt = now;
      j.attempts = 0;
      return true;
    },
    async pendingJobs() {
      let n = 0;
      for (const j of s.jobs.values()) if (j.status === 'pending') n++;
      return n;
    },
    async dueTimers(now, limit) {
      return clone([...s.timers.values()].filter((t) => t.at <= now).sort((a, b) => a.at - b.at).slice(0, limit));
    },
    async history(q) {
      const cutoff = cutoffNow();
      const all = s.history.filter((e) => e.at >= cutoff && matchesHistory(e, q, s.tickets.get(e.ticketKey))).sort((a, b) => b.at - a.at || b.seq - a.seq);
      const offset = q.offset ?? 0;
      return { total: all.length, entries: clone(all.slice(offset, offset + (q.limit ?? 50))) };
    },
    async kvGet<T>(ns: string, key: string) {
      const v = s.kv.get(ns)?.get(key);
      return v === undefined || expired(ns, key) ? null : (v as T);
    },
    async kvPut(ns, key, value, opts) {
      let m = s.kv.get(ns);
      if (!m) s.kv.set(ns, (m = new Map()));
      m.set(key, deepFreeze(clone(value)));
      if (opts?.ttlMs !== undefined) kvExpiry.set(kvId(ns, key), clock.now() + opts.ttlMs);
      else kvExpiry.delete(kvId(ns, key));
    },
    async kvDelete(ns, key) {
      kvExpiry.delete(kvId(ns, key));
      return s.kv.get(ns)?.delete(key) ?? false;
    },
    async kvList<T>(ns: string) {
      return [...(s.kv.get(ns) ?? new Map<string, unknown>()).entries()].filter(([key]) => !expired(ns, key)).map(([key, value]) => ({ key, value: value as T }));
    },
    async close() {},
  };
}
