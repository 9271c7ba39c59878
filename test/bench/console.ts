// Console benchmark: the history and performance pages over 100,000 stored outcomes (≈200,000 history entries),
// requested through the real console app (sign-in, session lookup, rendering), with tickets changing between
// performance requests so the report is recomputed every time (the worst case; unchanged data is served cached).
//
// Stores: lowdb, the default single-instance store (the headline figures), filled through its own commit(); the
// in-memory store's semantics; PostgreSQL too when a server is available (test/setup/postgres.ts).
// The in-memory store is filled directly: seeding it through commit() is quadratic (each history entry is checked
// against all stored ones), which takes many minutes at this size. Its queries here are the memory store's own
// (matchesHistory, the same sort and clone), so the figures are what a memory-backed service would see.
//
// `node --expose-gc test/bench/console.ts [--json]` runs it alone; test/bench/run.ts can call benchConsole().
// CONSOLE_BENCH_STORES=pg (a comma list of lowdb, memory, pg) measures only those.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConsole } from '../../server/console/index.ts';
import { openLowdbStore } from '../../server/storage/lowdb-store.ts';
import { silentLogger } from '../../server/logger.ts';
import { emptyState, matchesHistory, type MemoryState } from '../../server/storage/memory-store.ts';
import { applyCounterOps } from '../../core/route.ts';
import type { Batch, Clock, HistoryEntry, Store, TicketRecord } from '../../core/ports.ts';
import { isOpenTicket } from '../../core/ports.ts';
import { quantile } from '../../core/report.ts';
import { buildOutcomes, type Seeded } from '../console/fixtures.ts';

const OUTCOMES = Number(process.env.CONSOLE_BENCH_OUTCOMES ?? 100_000);
const REQUESTS = Number(process.env.CONSOLE_BENCH_REQUESTS ?? 40);
const STORES = new Set((process.env.CONSOLE_BENCH_STORES ?? 'lowdb,memory,pg').split(',').map((x) => x.trim()));
const TOKEN = 'bench-admin-token-0123456789';

class BenchClock implements Clock {
  t: number;
  constructor(t: number) {
    this.t = t;
  }
  now = () => this.t;
}

const clone = <T>(v: T): T => structuredClone(v);

/** The memory store's read semantics over a state filled in bulk; commit() appends without the quadratic check. */
function memoryStoreOver(s: MemoryState): Store {
  const unsupported = async (): Promise<never> => {
    throw new Error('not used by the console bench');
  };
  return {
    getConfig: async () => (s.configs.at(-1) ? clone(s.configs.at(-1)!) : null),
    saveConfig: unsupported,
    configVersions: async () => clone([...s.configs].reverse()),
    recordInbound: unsupported,
    getTicket: async (key) => (s.tickets.has(key) ? clone(s.tickets.get(key)!) : null),
    getTickets: async (keys) => [...new Set(keys)].flatMap((k) => (s.tickets.has(k) ? [clone(s.tickets.get(k)!)] : [])),
    findTicketByTopic: async () => null,
    openTicketsPerGroup: unsupported,
    async tickets(filter = {}) {
      const out: TicketRecord[] = [];
      for (const t of s.tickets.values()) {
        if (filter.open !== undefined && isOpenTicket(t) !== filter.open) continue;
        if (filter.agentId && t.agentId !== filter.agentId) continue;
        if (filter.queueId && t.queueId !== filter.queueId) continue;
        if (filter.status && t.status !== filter.status) continue;
        out.push(clone(t));
      }
      return out;
    },
    counters: async () => clone(s.counters),
    routingCounters: unsupported,
    waitingTickets: unsupported,
    async commit(b: Batch) {
      for (const t of b.tickets ?? []) s.tickets.set(t.key, clone(t));
      for (const h of b.history ?? []) s.history.push(clone(h));
      if (b.counters?.length) applyCounterOps(s.counters, b.counters);
    },
    saved: async () => {},
    exclusive: (fn) => fn(),
    claimJobs: async () => [],
    failJob: unsupported,
    deadJobs: async () => [],
    retryDeadJob: async () => false,
    pendingJobs: async () => 0,
    dueTimers: async () => [],
    async history(q) {
      const all = s.history.filter((e) => matchesHistory(e, q, s.tickets.get(e.ticketKey))).sort((a, b) => b.at - a.at || b.seq - a.seq);
      const offset = q.offset ?? 0;
      return { total: all.length, entries: clone(all.slice(offset, offset + (q.limit ?? 50))) };
    },
    async kvGet<T>(ns: string, key: string) {
      const v = s.kv.get(ns)?.get(key);
      return v === undefined ? null : (clone(v) as T);
    },
    async kvPut(ns, key, value) {
      let m = s.kv.get(ns);
      if (!m) s.kv.set(ns, (m = new Map()));
      m.set(key, clone(value));
    },
    kvDelete: async (ns, key) => s.kv.get(ns)?.delete(key) ?? false,
    kvList: async <T>(ns: string) => [...(s.kv.get(ns) ?? new Map<string, unknown>()).entries()].map(([key, value]) => ({ key, value: clone(value) as T })),
    close: async () => {},
  };
}

function stateOf(seeded: Seeded, at: number): MemoryState {
  const s = emptyState();
  s.configs.push({ version: 1, config: seeded.config, savedAt: at, author: 'bench', note: '' });
  for (const t of seeded.tickets) s.tickets.set(t.key, t);
  s.history = seeded.history;
  for (const t of seeded.tickets) {
    if (t.status === 'resolved' || !t.queueId) continue;
    if (t.agentId) applyCounterOps(s.counters, [{ op: 'load', agentId: t.agentId, delta: 1 }]);
    else applyCounterOps(s.counters, [{ op: 'wait', queueId: t.queueId, ticketKey: t.key, since: t.enqueuedAt ?? t.receivedAt }]);
  }
  return s;
}

async function signIn(app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> }): Promise<string> {
  const page = await app.request('/login');
  const nonceCookie = page.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
  const r = await app.request('/login', { method: 'POST', headers: { cookie: nonceCookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: TOKEN, _login: nonce }).toString() });
  const cookie = r.headers.getSetCookie().find((c) => c.includes('tierline_session='));
  if (!cookie) throw new Error(`bench sign-in failed (${r.status})`);
  return cookie.split(';')[0]!;
}

const round = (x: number) => Math.round(x * 10) / 10;
function summary(prefix: string, samples: number[]): Record<string, number> {
  const s = [...samples].sort((a, b) => a - b);
  return { [`${prefix}.median`]: round(quantile(s, 0.5)!), [`${prefix}.p95`]: round(quantile(s, 0.95)!), [`${prefix}.max`]: round(s.at(-1)!) };
}

async function measure(name: string, store: Store, clock: BenchClock, seeded: Seeded): Promise<Record<string, number>> {
  const app = createConsole({
    store,
    clock,
    logger: silentLogger,
    adminToken: TOKEN,
    publicUrl: 'http://localhost:3000',
    connectors: async () => [],
    installLinks: {},
    mappings: {},
    saveConfig: async () => {
      throw new Error('not used');
    },
    rollbackConfig: async () => {
      throw new Error('not used');
    },
  });
  const cookie = await signIn(app);
  const timed = async (path: string): Promise<number> => {
    const t0 = performance.now();
    const r = await app.request(path, { headers: { cookie } });
    const body = await r.text();
    const ms = performance.now() - t0;
    if (r.status !== 200 || body.length < 1000) throw new Error(`${path} answered ${r.status}`);
    return ms;
  };
  const out: Record<string, number> = {};

  // First performance request: the read model loads every ticket once.
  out[`console.${name}.performanceFirstLoadMs`] = round(await timed('/performance?period=all'));

  const history: number[] = [];
  const historyFiltered: number[] = [];
  const perf: number[] = [];
  const total = seeded.history.length;
  const pages = Math.floor(total / 50);
  const tickets = seeded.tickets;
  for (let i = 0; i < REQUESTS; i++) {
    // Paginated: first, middle and last pages, 50 rows each.
    const page = [1, Math.floor(pages / 2), pages, 1 + ((i * 7919) % pages)][i % 4]!;
    history.push(await timed(`/history?page=${page}`));
    historyFiltered.push(await timed(`/history?tier=${['enterprise', 'premium', 'standard', 'free'][i % 4]}&kind=routed&page=${1 + (i % 5)}`));

    // A ticket changes (a first reply), time passes beyond the snapshot's age: the next performance request follows
    // the history, reads the changed ticket and recomputes the whole report.
    clock.t += 2_500;
    const t = structuredClone(tickets[(i * 104_729) % tickets.length]!);
    t.seq += 1;
    t.updatedAt = clock.now();
    const e: HistoryEntry = { key: `${t.key}#${t.seq}`, ticketKey: t.key, seq: t.seq, kind: 'reopened', at: clock.now(), queueId: t.queueId ?? '', agentId: t.agentId, ruleId: t.ruleId, tier: t.segment?.tier ?? null, text: 'bench change' };
    await store.commit({ tickets: [t], history: [e] });
    perf.push(await timed(i % 2 ? '/performance?period=all' : '/performance'));
  }
  Object.assign(out, summary(`console.${name}.historyPageMs`, history), summary(`console.${name}.historyFilteredPageMs`, historyFiltered), summary(`console.${name}.performancePageMs`, perf));
  return out;
}

export async function benchConsole(): Promise<Record<string, number>> {
  const end = Date.UTC(2026, 10, 2, 12);
  const t0 = performance.now();
  const seeded = buildOutcomes({ count: OUTCOMES, end, spanMs: 30 * 86400_000 });
  const out: Record<string, number> = { 'console.outcomes': seeded.tickets.length, 'console.historyEntries': seeded.history.length, 'console.seedMs': Math.round(performance.now() - t0) };

  // lowdb, as `npm start` runs it: outcomes committed in batches on a clock at the end of the month, so resolved
  // tickets older than the retention have moved to the dated history files, as in a real installation.
  if (STORES.has('lowdb')) {
    const dir = await mkdtemp(join(tmpdir(), 'tierline-bench-console-'));
    try {
      const lowClock = new BenchClock(end);
      const low = await openLowdbStore({ dir, clock: lowClock, logger: silentLogger, compactEveryMs: 0 });
      try {
        const l0 = performance.now();
        await low.saveConfig(seeded.config, { author: 'bench', note: '', at: end - 31 * 86400_000 });
        const historyOf = new Map<string, HistoryEntry[]>();
        for (const e of seeded.history) (historyOf.get(e.ticketKey) ?? historyOf.set(e.ticketKey, []).get(e.ticketKey)!).push(e);
        const BATCH = 500;
        for (let i = 0; i < seeded.tickets.length; i += BATCH) {
          const tickets = seeded.tickets.slice(i, i + BATCH);
          await low.commit({ tickets, history: tickets.flatMap((t) => historyOf.get(t.key) ?? []) });
        }
        out['console.lowdb.seedMs'] = Math.round(performance.now() - l0);
        Object.assign(out, await measure('lowdb', low, lowClock, seeded));
      } finally {
        await low.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The headline figures: lowdb, the default single-instance store.
    out['console.historyPageMs'] = out['console.lowdb.historyPageMs.median']!;
    out['console.historyPageMs.p95'] = out['console.lowdb.historyPageMs.p95']!;
    out['console.performancePageMs'] = out['console.lowdb.performancePageMs.median']!;
    out['console.performancePageMs.p95'] = out['console.lowdb.performancePageMs.p95']!;
  }

  if (STORES.has('memory')) Object.assign(out, await measure('memory', memoryStoreOver(stateOf(seeded, end - 31 * 86400_000)), new BenchClock(end), seeded));
  if (!STORES.has('pg')) return out;

  const pg = await import('../setup/postgres.ts').catch((err: unknown) => ({ error: err }));
  if ('error' in pg || pg.postgresSkipReason) {
    process.stderr.write(`console bench: PostgreSQL part skipped (${'error' in pg ? String(pg.error) : pg.postgresSkipReason})\n`);
    return out;
  }
  const { importState } = await import('../../server/storage/postgres/migrate-store.ts');
  const { openPostgresStore } = await import('../../server/storage/postgres/postgres-store.ts');
  const cluster = await pg.startTestPostgres();
  try {
    const url = await cluster.createDatabase('console_bench');
    const i0 = performance.now();
    await importState(url, stateOf(buildOutcomes({ count: OUTCOMES, end, spanMs: 30 * 86400_000 }), end - 31 * 86400_000), { now: end });
    out['console.pg.importMs'] = Math.round(performance.now() - i0);
    const clock = new BenchClock(end);
    const store = await openPostgresStore({ url, clock, logger: silentLogger });
    try {
      Object.assign(out, await measure('pg', store, clock, seeded));
    } finally {
      await store.close();
    }
  } finally {
    await cluster.stop();
  }
  return out;
}

if (import.meta.main) {
  const r = await benchConsole();
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(44)} ${v}\n`);
}
