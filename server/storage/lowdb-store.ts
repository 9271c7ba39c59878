// The default Store: one process, one data directory, no database server. Semantics match the memory store
// (server/storage/memory-store.ts; the contract suite in test/storage/contract.ts runs against both).
//
// Layout of DATA_DIR:
//   tierline.json               live state, written through lowdb's Low with a durable adapter (temp file, fsync,
//                               rename, fsync dir): config versions, live tickets (open, and closed ones for an hour),
//                               pending and dead jobs, timers, counters, connector records, and walSeq, the last
//                               log record it includes.
//   tierline.wal                write-ahead log, one JSON record per line ({n, op, ...}): every change since the
//                               live file was written. tierline.wal.<n> are older logs whose snapshot is in progress.
//   history/YYYY-MM-DD.jsonl    closed history, append-only, dated by each line's time: history entries ({"h":..}),
//                               closed tickets moved out of the live file ({"t":..}), completed job ids ({"d":..}) and
//                               inbound event keys ({"i":..}) for the dedupe windows.
//   tierline.lock               pid of the process that owns the directory.
//
// Writing: a change is one log record. Records are appended in groups (everything submitted in the same turn of the
// event loop), applied to the in-memory state once the OS holds them (a killed process can no longer lose them), and
// fdatasync'd (one sync covers every group appended while the previous one ran); a commit resolves, and the jobs and
// timers it created are handed out, only after the flush. So no side effect follows a change that even a power cut
// could take back, except where the caller says a lost change only repeats idempotent steps (stepsBeforeSaved: the
// jobs go out once applied, while the sync runs; saved() waits for it). Persisting one outcome costs one
// append + fdatasync whatever the store holds (the requirement: < 2 ms median, < 2x growth from 1k to 100k
// outcomes). Inside an exclusive section a commit returns once applied and the section resolves after the flush, so
// routing decisions take turns for a write, not a flush (PostgreSQL's sections do the same with an asynchronous
// commit). A change nobody waits for (awaitFlush false: marking a step done after its side effect, a connector's
// record of a call's outcome) starts no fdatasync of its own; the next awaited one saves it, or a sync a second later.
// A crash tears at most the last line, which was never acknowledged; opening drops it.
//
// Compaction, when the log passes a size (and at least the live file's), on a timer, and on close: between two log
// writes, the state is frozen (which records it covers, which entries and tickets move out), the log is switched to a
// new file, and then, while new records keep flowing into the new log, new history lines are appended (and fsync'd)
// to the dated files, the live file is written, and logs it covers are deleted. A crash at any point replays the same records again at open;
// history lines repeated that way are deduped by key, tickets by updatedAt. Nothing ever rewrites a large file.
//
// Reading: everything live is in memory. History is an in-memory columnar index (history-index.ts) pointing at the
// lines in the dated files, which are read by offset for the page asked; closed tickets moved out of the live file
// are likewise read from their line. Opening scans the dated files once to rebuild the indexes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, existsSync, fsyncSync, openSync, statSync, renameSync, writeSync, fdatasync as fsFdatasync } from 'node:fs';
import { mkdir, readdir, truncate, unlink } from 'node:fs/promises';
import { deepFreeze } from '../../core/frozen.ts';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Low } from 'lowdb';
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import { copyCounters, emptyCounters, OldestWaiting, waitingPage } from '../../core/route.ts';
import type { RoutingConfig } from '../../core/config.ts';
import type { Batch, Clock, ConfigVersion, Counters, HistoryEntry, HistoryQuery, Job, Logger, Store, TicketRecord, Timer } from '../../core/ports.ts';
import { isOpenTicket } from '../../core/ports.ts';
import { DEDUPE_WINDOW_MS as DEFAULT_DEDUPE_WINDOW_MS, type MemoryState } from './memory-store.ts';
import { acquireLock, appendLines, DurableJsonFile, fsyncDir, readRanges, scanLines, tempNameOf } from './lowdb/files.ts';
import { DueIndex } from './lowdb/due-index.ts';
import { HistoryIndex, type Loc } from './lowdb/history-index.ts';
import { closedAt, forgotten, retentionCutoff } from './retention.ts';
import { copyData as clone } from './copy.ts';

export const LIVE_FILE = 'tierline.json';
export const WAL_FILE = 'tierline.wal';
export const LOCK_FILE = 'tierline.lock';
export const HISTORY_DIR = 'history';

export type LowdbStoreOptions = {
  dir: string;
  clock: Clock;
  logger?: Logger;
  /**
   * Closed (resolved or failed) tickets stay in the live file this long before moving to the dated files (1 h). They
   * stay readable (getTicket, tickets(), by topic) from there; the live file and each compaction stay small.
   */
  closedTicketRetentionMs?: number;
  /**
   * Caps the time to live of records put with one (kvPut ttlMs: connectors' idempotency records of finished work).
   * The soak shortens it, as it shortens closedTicketRetentionMs, to reach its steady state within the run.
   */
  expiringRecordsMaxMs?: number;
  /**
   * How long inbound event keys and finished steps' ids are remembered to drop duplicates (seven days, as on
   * PostgreSQL). Kept in memory, so the store grows with the traffic of one window; the soak shortens it with the
   * other two to see the steady state within its run.
   */
  dedupeWindowMs?: number;
  /**
   * Routing history entries older than this, and tickets closed longer ago, are forgotten (default: kept for
   * good). Reads stop showing them at once; each compaction frees their memory, and a dated file goes once the
   * whole of its day has left the window (and the dedupe window). The in-memory indexes are what bounds the
   * process's memory: about 1 KB per retained ticket.
   */
  retentionMs?: number;
  /**
   * Compact once the log holds this many bytes (default 4 MiB) or records (default 20,000), and at least as many
   * bytes as the live file: rewriting the live file costs its size, so tying it to the log written since keeps the
   * cost per change constant however many tickets are live (a fixed threshold rewrote a large live file every few
   * seconds under load, blocking the event loop each time).
   */
  compactWalBytes?: number;
  compactWalRecords?: number;
  /** Also compact on this interval (wall time) when anything changed (default 5 minutes; 0 turns the timer off). */
  compactEveryMs?: number;
};

export type LowdbStats = {
  dir: string;
  liveFileBytes: number;
  walBytes: number;
  walRecords: number;
  liveTickets: number;
  knownTickets: number;
  historyEntries: number;
  historyInMemory: number;
  /** Inbound event keys and finished steps' ids remembered against duplicates (pruned at compaction). */
  dedupeKeys: number;
  compactions: number;
  /** fdatasyncs of the log since open. */
  syncs: number;
};

export type LowdbStore = Store & {
  readonly dir: string;
  /** Moves closed history out and rewrites the live file now (also runs on its own; tests and backups call it). */
  compact(): Promise<void>;
  stats(): LowdbStats;
  /** The whole state (history and closed tickets read from their files), for migrate-store and backups. */
  exportState(): Promise<MemoryState>;
};

type WalRecord =
  | { n: number; op: 'commit'; now: number; b: Batch }
  | { n: number; op: 'config'; v: ConfigVersion }
  | { n: number; op: 'inbound'; at: number; keys: string[] }
  | { n: number; op: 'fail'; id: string; error: string; retryAt: number | null }
  | { n: number; op: 'retry'; id: string; now: number }
  | { n: number; op: 'kvput'; ns: string; key: string; value: unknown; expiresAt?: number }
  | { n: number; op: 'kvdel'; ns: string; key: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type NewRecord = DistributiveOmit<WalRecord, 'n'>;

type LiveFile = {
  format: 'tierline-lowdb';
  version: 1;
  /** The last log record this file includes; replay starts after it. */
  walSeq: number;
  savedAt: number;
  configs: ConfigVersion[];
  tickets: TicketRecord[];
  jobs: Job[];
  timers: Timer[];
  counters: Counters;
  kv: { ns: string; key: string; value: unknown; expiresAt?: number }[];
  /** Kept empty: these live in the dated history files (the keys are here so tools reading the file see a store). */
  inbound: [string, number][];
  doneJobs: [string, number][];
  history: HistoryEntry[];
};

const LiveFileSchema = z.object({
  format: z.literal('tierline-lowdb'),
  version: z.literal(1),
  walSeq: z.number().int().nonnegative(),
  savedAt: z.number(),
  configs: z.array(z.object({ version: z.number().int(), savedAt: z.number(), author: z.string(), note: z.string(), config: z.unknown() })),
  tickets: z.array(z.object({ key: z.string(), status: z.string(), updatedAt: z.number() }).passthrough()),
  jobs: z.array(z.object({ id: z.string(), status: z.enum(['pending', 'dead']), nextAt: z.number(), createdAt: z.number() }).passthrough()),
  timers: z.array(z.object({ id: z.string(), at: z.number() }).passthrough()),
  counters: z.object({ status: z.record(z.string(), z.string()), load: z.record(z.string(), z.number()), rr: z.record(z.string(), z.number()), rotation: z.record(z.string(), z.number()), waiting: z.record(z.string(), z.record(z.string(), z.number())) }),
  kv: z.array(z.object({ ns: z.string(), key: z.string(), value: z.unknown(), expiresAt: z.number().optional() })),
  inbound: z.array(z.tuple([z.string(), z.number()])).default([]),
  doneJobs: z.array(z.tuple([z.string(), z.number()])).default([]),
  history: z.array(z.unknown()).default([]),
});

type TicketMeta = {
  /** First-seen order: tickets() lists in it, like the memory store lists in insertion order. */
  ord: number;
  /** When it closed (retention), or null while open. */
  closedAt: number | null;
  companyId: string | null;
  agentId: string | null;
  queueId: string | null;
  topic: string | null;
  updatedAt: number;
  /** The ticket's line in a dated file, once it has been moved out of the live file. */
  loc: Loc | null;
};

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const topicKey = (groupId: string, topicId: number) => `${groupId}\u0000${topicId}`;
const DATED = /^(\d{4}-\d{2}-\d{2}|undated)\.jsonl$/;
const OLD_WAL = /^tierline\.wal\.(\d+)$/;
/** The longest a record nobody waits for stays unsynced when no other write comes (see the log writer). */
const LAZY_SYNC_MS = 1_000;

/** Files that exist only while a compaction runs: the previous log, and the next live file being written. */
export const isCompactionFile = (name: string): boolean => OLD_WAL.test(name) || name === tempNameOf(LIVE_FILE);
const datasyncFd = promisify(fsFdatasync);

function dateName(at: number): string {
  // Dates outside what Date can show (bad clocks, synthetic tests) still need a file.
  if (!Number.isFinite(at) || Math.abs(at) > 8.64e15) return 'undated.jsonl';
  return `${new Date(at).toISOString().slice(0, 10)}.jsonl`;
}

/**
 * Structural checks on a batch before it is logged: applying a logged record must not fail halfway, or the memory
 * state and the log would disagree (and the same record would fail again at every open).
 */
function checkBatch(b: Batch): void {
  const bad = (what: string) => {
    throw new AppError('internal', `A pipeline step tried to save a malformed change (${what}); nothing was saved. This is a bug in Tierline; the step will be retried.`);
  };
  const list = (v: unknown, name: string) => {
    if (v !== undefined && !Array.isArray(v)) bad(`${name} is not a list`);
    return (v ?? []) as unknown[];
  };
  const obj = (v: unknown, name: string) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`${name} is not a record`);
    return v as Record<string, unknown>;
  };
  const str = (v: unknown, name: string) => typeof v === 'string' || bad(`${name} is not text`);
  const num = (v: unknown, name: string) => typeof v === 'number' || bad(`${name} is not a number`);
  list(b.tickets, 'tickets').forEach((x, i) => {
    const t = obj(x, `tickets[${i}]`);
    str(t.key, `tickets[${i}].key`);
    str(t.status, `tickets[${i}].status`);
    num(t.updatedAt, `tickets[${i}].updatedAt`);
    if (t.topic !== null && t.topic !== undefined) {
      const tp = obj(t.topic, `tickets[${i}].topic`);
      str(tp.groupId, `tickets[${i}].topic.groupId`);
      num(tp.topicId, `tickets[${i}].topic.topicId`);
    }
  });
  list(b.jobs, 'jobs').forEach((x, i) => {
    const j = obj(x, `jobs[${i}]`);
    str(j.id, `jobs[${i}].id`);
    num(j.nextAt, `jobs[${i}].nextAt`);
    num(j.createdAt, `jobs[${i}].createdAt`);
    num(j.attempts, `jobs[${i}].attempts`);
  });
  list(b.completeJobs, 'completeJobs').forEach((x, i) => str(x, `completeJobs[${i}]`));
  list(b.cancelTimers, 'cancelTimers').forEach((x, i) => str(x, `cancelTimers[${i}]`));
  list(b.timers, 'timers').forEach((x, i) => {
    const t = obj(x, `timers[${i}]`);
    str(t.id, `timers[${i}].id`);
    num(t.at, `timers[${i}].at`);
  });
  list(b.history, 'history').forEach((x, i) => {
    const h = obj(x, `history[${i}]`);
    str(h.key, `history[${i}].key`);
    str(h.ticketKey, `history[${i}].ticketKey`);
    str(h.kind, `history[${i}].kind`);
    str(h.queueId, `history[${i}].queueId`);
    num(h.at, `history[${i}].at`);
    num(h.seq, `history[${i}].seq`);
  });
  list(b.counters, 'counters').forEach((x, i) => {
    const o = obj(x, `counters[${i}]`);
    if (!['load', 'rr', 'rotation', 'status', 'wait', 'unwait'].includes(o.op as string)) bad(`counters[${i}].op is unknown`);
  });
}

/** Opens (creating if needed) the lowdb store in dir; fails if another process has it open. */
export async function openLowdbStore(opts: LowdbStoreOptions): Promise<LowdbStore> {
  const dir = resolve(opts.dir);
  const histDir = join(dir, HISTORY_DIR);
  const walPath = join(dir, WAL_FILE);
  const livePath = join(dir, LIVE_FILE);
  try {
    await mkdir(histDir, { recursive: true });
  } catch (err) {
    throw new AppError('misconfigured', `Cannot create the data directory ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); set DATA_DIR to a writable directory.`);
  }
  const releaseLock = acquireLock(dir, join(dir, LOCK_FILE));
  try {
    return await build(opts, { dir, histDir, walPath, livePath, releaseLock });
  } catch (err) {
    releaseLock();
    throw err;
  }
}

async function build(opts: LowdbStoreOptions, paths: { dir: string; histDir: string; walPath: string; livePath: string; releaseLock: () => void }): Promise<LowdbStore> {
  const { dir, histDir, walPath, livePath } = paths;
  const clock = opts.clock;
  const log = opts.logger ?? silent;
  const retentionMs = opts.closedTicketRetentionMs ?? 3600_000;
  const keepMs = opts.retentionMs ?? Infinity;
  const cutoffNow = () => retentionCutoff(clock.now(), keepMs);
  const expiringCapMs = opts.expiringRecordsMaxMs ?? Infinity;
  const dedupeWindowMs = opts.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
  const compactWalBytes = opts.compactWalBytes ?? 4 << 20;
  const compactWalRecords = opts.compactWalRecords ?? 20_000;
  const compactEveryMs = opts.compactEveryMs ?? 5 * 60_000;

  // ------------------------------------------------------------ state
  const configs: ConfigVersion[] = [];
  const live = new Map<string, TicketRecord>();
  const metas = new Map<string, TicketMeta>();
  const topics = new Map<string, string[]>();
  /** Company id -> its tickets' keys, for the history company filter (which follows each ticket's current company). */
  const companies = new Map<string, Set<string>>();
  const jobs = new Map<string, Job>();
  /** The pending jobs by when they can next be claimed (dead and completed ones are not in it). */
  const due = new DueIndex();
  const doneJobs = new Map<string, number>();
  const inbound = new Map<string, number>();
  const timers = new Map<string, Timer>();
  /** The earliest deadline among the timers, or null when unknown (a timer at or before it went away). */
  let earliestTimer: number | null = null;
  const openGroups = new Map<string, string>();
  let counters: Counters = emptyCounters();
  const oldest = new OldestWaiting();
  const kv = new Map<string, Map<string, unknown>>();
  const kvId = (ns: string, key: string) => `${ns}\u0000${key}`;
  /** When records put with a time to live expire (ns\0key -> time); they are dropped at the next compaction. */
  const kvExpiry = new Map<string, number>();
  const expired = (ns: string, key: string) => {
    const at = kvExpiry.size ? kvExpiry.get(kvId(ns, key)) : undefined;
    return at !== undefined && at <= clock.now();
  };
  const index = new HistoryIndex();
  const files: string[] = [];
  const fileIds = new Map<string, number>();
  /** Dedupe keys since the last compaction, to be appended to the dated files. */
  let newInbound: [string, number][] = [];
  let newDone: [string, number][] = [];
  let nextOrd = 0;

  const fileId = (name: string) => {
    let id = fileIds.get(name);
    if (id === undefined) {
      id = files.length;
      files.push(name);
      fileIds.set(name, id);
    }
    return id;
  };

  /** Takes a ticket out of the ticket lists of its topic and its company (kept as tickets change or are forgotten). */
  function untrack(key: string, topic: string | null, company: string | null): void {
    if (topic) {
      const l = topics.get(topic)?.filter((k) => k !== key);
      if (l?.length) topics.set(topic, l);
      else topics.delete(topic);
    }
    if (company !== null) {
      const set = companies.get(company);
      set?.delete(key);
      if (set?.size === 0) companies.delete(company);
    }
  }

  function noteTicket(t: TicketRecord, loc: Loc | null): void {
    let m = metas.get(t.key);
    if (!m) {
      m = { ord: nextOrd++, closedAt: null, companyId: null, agentId: null, queueId: null, topic: null, updatedAt: t.updatedAt, loc: null };
      metas.set(t.key, m);
    }
    const topic = t.topic ? topicKey(t.topic.groupId, t.topic.topicId) : null;
    if (m.topic !== topic) {
      untrack(t.key, m.topic, null);
      if (topic) {
        const l = topics.get(topic) ?? [];
        l.push(t.key);
        // First ticket (by first-seen order) wins a shared topic, as in the memory store.
        l.sort((a, b) => (metas.get(a)?.ord ?? 0) - (metas.get(b)?.ord ?? 0));
        topics.set(topic, l);
      }
      m.topic = topic;
    }
    const company = t.companyId ?? null;
    if (m.companyId !== company) {
      untrack(t.key, null, m.companyId);
      if (company !== null) {
        let set = companies.get(company);
        if (!set) companies.set(company, (set = new Set()));
        set.add(t.key);
      }
      m.companyId = company;
    }
    m.agentId = t.agentId ?? null;
    m.queueId = t.queueId ?? null;
    m.updatedAt = t.updatedAt;
    m.closedAt = isOpenTicket(t) ? null : closedAt(t);
    if (loc) m.loc = loc;
  }

  /** retention.ts's `forgotten`, for a ticket known only by its metadata. */
  const metaForgotten = (m: TicketMeta, cutoff: number) => m.closedAt !== null && m.closedAt < cutoff;

  /** Forgets a closed ticket that left the retention window: its metadata and its place in the topic and company maps. */
  function forgetTicket(key: string): void {
    const m = metas.get(key);
    if (!m) return;
    metas.delete(key);
    untrack(key, m.topic, m.companyId);
  }

  /**
   * Closed tickets in the dated files, oldest closing first (roughly: each compaction adds its batch in order), so
   * forgetting the ones that left the window looks only at those. An entry whose ticket changed since is skipped.
   */
  const closedLine: { key: string; loc: Loc; closedAt: number }[] = [];
  let closedHead = 0;

  /** Frees what left the retention window: history index entries and closed tickets' metadata. */
  function forgetBefore(cutoff: number): void {
    if (cutoff === -Infinity) return;
    const entries = index.dropBefore(cutoff);
    let tickets = 0;
    while (closedHead < closedLine.length && closedLine[closedHead]!.closedAt < cutoff) {
      const c = closedLine[closedHead++]!;
      const m = metas.get(c.key);
      if (!m || m.loc !== c.loc || live.has(c.key)) continue;
      forgetTicket(c.key);
      tickets++;
    }
    if (closedHead > 1024 && closedHead * 2 > closedLine.length) {
      closedLine.splice(0, closedHead);
      closedHead = 0;
    }
    if (entries || tickets) log.debug('forgot what left the retention window', { historyEntries: entries, closedTickets: tickets });
  }

  /** A closed ticket read from a dated file at open: the newest version (by updatedAt, then file order) wins. */
  function noteClosedTicket(t: TicketRecord, loc: Loc): void {
    const m = metas.get(t.key);
    if (m?.loc && m.updatedAt > t.updatedAt) return;
    noteTicket(t, loc);
  }

  /** Open tickets' Telegram groups (the topic's, else the one chosen), kept as tickets change: counted per new topic. */
  function trackOpen(t: TicketRecord): void {
    const g = t.topic?.groupId ?? t.topicGroupId;
    if (isOpenTicket(t) && g) openGroups.set(t.key, g);
    else openGroups.delete(t.key);
  }

  function applyRecord(r: WalRecord): void {
    switch (r.op) {
      case 'commit': {
        const b = r.b;
        for (const t of b.tickets ?? []) {
          live.set(t.key, t);
          trackOpen(t);
          noteTicket(t, null);
        }
        for (const id of b.completeJobs ?? []) {
          jobs.delete(id);
          due.remove(id);
          doneJobs.set(id, r.now);
          newDone.push([id, r.now]);
        }
        for (const j of b.jobs ?? []) {
          if (jobs.has(j.id)) continue;
          const done = doneJobs.get(j.id);
          if (done !== undefined && done >= r.now - dedupeWindowMs) continue;
          jobs.set(j.id, j);
          if (j.status === 'pending') due.schedule(j);
        }
        for (const id of b.cancelTimers ?? []) {
          const t = timers.get(id);
          if (t && earliestTimer !== null && t.at <= earliestTimer) earliestTimer = null;
          timers.delete(id);
        }
        for (const t of b.timers ?? []) {
          const old = timers.get(t.id);
          if (old && earliestTimer !== null && old.at <= earliestTimer) earliestTimer = null;
          timers.set(t.id, t);
          if (earliestTimer !== null) earliestTimer = Math.min(earliestTimer, t.at);
        }
        for (const h of b.history ?? []) index.add(h, null);
        if (b.counters?.length) oldest.apply(counters, b.counters);
        return;
      }
      case 'config':
        configs.push(r.v);
        return;
      case 'inbound':
        for (const k of r.keys) {
          inbound.set(k, r.at);
          newInbound.push([k, r.at]);
        }
        return;
      case 'fail': {
        const j = jobs.get(r.id);
        if (!j) return;
        j.attempts += 1;
        j.lastError = r.error;
        j.leaseUntil = 0;
        if (r.retryAt === null) {
          j.status = 'dead';
          due.remove(j.id);
        } else {
          j.nextAt = r.retryAt;
          due.schedule(j);
        }
        return;
      }
      case 'retry': {
        const j = jobs.get(r.id);
        if (!j || j.status !== 'dead') return;
        j.status = 'pending';
        j.nextAt = r.now;
        j.attempts = 0;
        due.schedule(j);
        return;
      }
      case 'kvput': {
        let m = kv.get(r.ns);
        if (!m) kv.set(r.ns, (m = new Map()));
        m.set(r.key, r.value === undefined ? null : deepFreeze(r.value));
        if (r.expiresAt !== undefined) kvExpiry.set(kvId(r.ns, r.key), r.expiresAt);
        else kvExpiry.delete(kvId(r.ns, r.key));
        return;
      }
      case 'kvdel':
        kv.get(r.ns)?.delete(r.key);
        kvExpiry.delete(kvId(r.ns, r.key));
        return;
    }
  }

  // ------------------------------------------------------------ open: dated files, live file, log
  const openedAt = clock.now();
  const openCutoff = retentionCutoff(openedAt, keepMs);
  const startedMs = performance.now();
  let torn = 0;
  const histNames = (await readdir(histDir)).filter((n) => DATED.test(n)).sort();
  for (const name of histNames) {
    const id = fileId(name);
    const path = join(histDir, name);
    let bad = 0;
    const { end, size } = await scanLines(path, (line, off) => {
      let rec: { h?: HistoryEntry; t?: TicketRecord; d?: string; i?: string; at?: number };
      try {
        rec = JSON.parse(line.toString('utf8')) as typeof rec;
      } catch {
        bad++;
        return;
      }
      const loc = { file: id, off, len: line.length };
      if (rec.h) {
        if (rec.h.at >= openCutoff) index.add(rec.h, loc, true);
      } else if (rec.t) {
        if (!forgotten(rec.t, openCutoff)) noteClosedTicket(rec.t, loc);
      }
      // Dedupe keys a little past the window: log records replayed below judge with their own time.
      else if (typeof rec.d === 'string' && typeof rec.at === 'number') {
        if (rec.at >= openedAt - 2 * dedupeWindowMs && (doneJobs.get(rec.d) ?? -Infinity) < rec.at) doneJobs.set(rec.d, rec.at);
      } else if (typeof rec.i === 'string' && typeof rec.at === 'number') {
        if (rec.at >= openedAt - 2 * dedupeWindowMs && (inbound.get(rec.i) ?? -Infinity) < rec.at) inbound.set(rec.i, rec.at);
      }
    });
    if (bad) log.warn('skipped unreadable lines in a history file', { file: path, lines: bad });
    if (end < size) {
      // A torn last line from a crash during an append: the same lines are written again from the log.
      await truncate(path, end);
      torn++;
    }
  }

  const db = new Low<LiveFile | null>(new DurableJsonFile<LiveFile | null>(livePath, 'The Tierline live state file'), null);
  await db.read();
  let walSeq = 0;
  if (db.data) {
    const parsed = LiveFileSchema.safeParse(db.data);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new AppError('misconfigured', `${livePath} is not a Tierline lowdb store file (${i?.path.join('.')}: ${i?.message}), so Tierline did not start rather than overwrite it. Point DATA_DIR at a Tierline data directory, or move the file away to start empty.`);
    }
    const f = db.data;
    walSeq = f.walSeq;
    configs.push(...f.configs);
    for (const t of f.tickets) {
      live.set(t.key, t);
      trackOpen(t);
      noteTicket(t, null);
    }
    for (const j0 of f.jobs) {
      const j = { ...j0, leaseUntil: 0 };
      jobs.set(j.id, j);
      if (j.status === 'pending') due.schedule(j);
    }
    for (const t of f.timers) timers.set(t.id, t);
    earliestTimer = null;
    counters = f.counters;
    oldest.reset();
    for (const r of f.kv) applyRecord({ n: 0, op: 'kvput', ns: r.ns, key: r.key, value: r.value, ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}) });
    for (const [k, at] of f.inbound ?? []) inbound.set(k, Math.max(at, inbound.get(k) ?? -Infinity));
    for (const [k, at] of f.doneJobs ?? []) doneJobs.set(k, Math.max(at, doneJobs.get(k) ?? -Infinity));
    for (const h of (f.history ?? []) as HistoryEntry[]) index.add(h, null);
    db.data = null;
  }

  // Replay the logs: older ones (a compaction that had not finished) first, then the current one.
  const oldWals = (await readdir(dir))
    .map((n) => ({ n, m: OLD_WAL.exec(n) }))
    .filter((x) => x.m)
    .map((x) => ({ name: x.n, upTo: Number(x.m![1]) }))
    .sort((a, b) => a.upTo - b.upTo);
  let lastApplied = walSeq;
  let replayed = 0;
  let replayedCurrent = 0;
  const walFiles = [...oldWals.map((w) => join(dir, w.name)), walPath];
  for (let fi = 0; fi < walFiles.length; fi++) {
    const path = walFiles[fi]!;
    const isLast = fi === walFiles.length - 1;
    let cutAt: number | null = null;
    let dropped = 0;
    let result: { end: number; size: number };
    try {
      result = await scanLines(path, (line, off) => {
        if (cutAt !== null) {
          dropped++;
          return;
        }
        let r: WalRecord;
        try {
          r = JSON.parse(line.toString('utf8')) as WalRecord;
        } catch {
          if (!isLast) throw new AppError('misconfigured', `The write-ahead log ${path} is damaged at byte ${off}, so Tierline did not start rather than lose changes. Restore DATA_DIR from a backup.`);
          cutAt = off;
          dropped++;
          return;
        }
        if (typeof r.n !== 'number' || r.n <= lastApplied) return;
        if (r.n !== lastApplied + 1) throw new AppError('misconfigured', `The write-ahead log ${path} skips from change ${lastApplied} to ${r.n}, so Tierline did not start rather than apply changes out of order. Restore DATA_DIR from a backup.`);
        applyRecord(r);
        lastApplied = r.n;
        replayed++;
        if (isLast) replayedCurrent++;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (isLast) {
      const keep: number = cutAt ?? result.end;
      if (keep < result.size) {
        // The torn tail was never acknowledged (acknowledgement waits for the fsync of the whole line).
        log.warn('dropped an unfinished change at the end of the write-ahead log (the process stopped while writing it)', { bytes: result.size - keep, lines: dropped });
        await truncate(path, keep);
      }
    }
  }
  // The dedupe windows are measured from the records' own times; what is older than the window now can go.
  const cutoff = openedAt - dedupeWindowMs;
  for (const [k, at] of inbound) if (at < cutoff) inbound.delete(k);
  for (const [k, at] of doneJobs) if (at < cutoff) doneJobs.delete(k);
  index.query({ limit: 0 }, null);
  for (const [key, m] of metas) if (m.loc && m.closedAt !== null && !live.has(key)) closedLine.push({ key, loc: m.loc, closedAt: m.closedAt });
  closedLine.sort((a, b) => a.closedAt - b.closedAt);

  let walFd = openSync(walPath, 'a');
  fsyncDir(dir);
  let walBytes = statSync(walPath).size;
  let walRecords = replayedCurrent;
  /** The live file's size when last written: the log must grow at least this much before the next compaction. */
  let liveBytes = existsSync(livePath) ? statSync(livePath).size : 0;
  let lastSeq = lastApplied;
  log.info('lowdb store open', { dir, tickets: live.size, closedTickets: metas.size - live.size, historyEntries: index.n, replayed, tornFiles: torn, ms: Math.round(performance.now() - startedMs) });

  // ------------------------------------------------------------ the log writer
  // Two loops. The writer appends each group of records to the log and, once the OS has the bytes (a killed process
  // can no longer lose them), applies them in memory. The syncer then fdatasyncs, and only then do the records count
  // as saved: their commit() resolves, and the jobs and timers they created can be claimed, so no side effect ever
  // follows a change that a power cut could still take back. While one fdatasync runs, the writer goes on appending
  // the next group, which the next fdatasync covers.
  //
  // Inside an exclusive section, a commit resolves as soon as it is applied, so the next routing decision can start
  // (and sees it) without waiting for the disk; exclusive() itself resolves only once everything the section wrote is
  // saved. Decisions hold their turn for a write, not a flush: the turn was the pipeline's bottleneck under load.
  //
  // A record nobody waits for (awaitFlush false, outside a section, creating no job or timer) does not start an
  // fdatasync of its own: it is saved by the next one somebody waits for (the log is written in order), or after
  // LAZY_SYNC_MS if none comes. Syncing it at once made the next awaited write wait for that sync to end first.
  //
  // A commit with stepsBeforeSaved hands its jobs out once applied, and is not one its section waits for: the next
  // step of a ticket then starts while the disk syncs (the syncer still starts at once: it creates jobs).
  type Waiting = { line: string; rec: WalRecord; lazy: boolean; early: boolean; applied: () => void; resolve: () => void; reject: (e: unknown) => void };
  let queue: Waiting[] = [];
  let flushing: Promise<void> | null = null;
  let unsynced: Waiting[] = [];
  let syncing: Promise<void> | null = null;
  let lazySync: ReturnType<typeof setTimeout> | null = null;
  /** Jobs and timers applied in memory whose record is not yet flushed: not handed out until it is. */
  const unsaved = new Set<string>();
  /** The newest record submitted and its "saved" promise: saved() waits for it (the log is synced in order). */
  let newest: { w: Waiting; saved: Promise<void> } | null = null;
  let compacting: Promise<void> | null = null;
  let wantCompact = false;
  let broken: AppError | null = null;
  let closing = false;
  let closed = false;
  let compactions = 0;
  let syncs = 0;
  const section = new AsyncLocalStorage<Promise<void>[]>();

  const closedError = () => new AppError('internal', `The store in ${dir} is closed; this is a shutdown-order bug.`);
  /** The jobs and timers a record creates, as keys of `unsaved`. */
  const handedOutAfterFlush = (r: WalRecord): string[] => (r.op === 'commit' ? [...(r.b.jobs ?? []).map((j) => `j:${j.id}`), ...(r.b.timers ?? []).map((t) => `t:${t.id}`)] : []);
  const quiet = () => !flushing && !syncing && !unsynced.length;

  function submit(rec: NewRecord, awaitFlush = true, early = false): Promise<void> {
    if (broken) return Promise.reject(broken);
    if (closed) return Promise.reject(closedError());
    const full = { n: ++lastSeq, ...rec } as WalRecord;
    const line = JSON.stringify(full) + '\n';
    // Applied from its own serialisation, so the state in memory is exactly what a replay would rebuild, and
    // nothing the caller changes afterwards reaches the store.
    const copy = JSON.parse(line) as WalRecord;
    let applied!: () => void;
    const appliedP = new Promise<void>((res) => (applied = res));
    const inSection = section.getStore();
    const lazy = !awaitFlush && !inSection && handedOutAfterFlush(copy).length === 0;
    let w!: Waiting;
    const saved = new Promise<void>((res, rej) => {
      w = { line, rec: copy, lazy, early, applied, resolve: res, reject: rej };
      queue.push(w);
      startFlush();
    });
    newest = { w, saved };
    if (early) {
      saved.catch(() => undefined);
      return Promise.race([appliedP, saved]);
    }
    if (!inSection && awaitFlush) return saved;
    // The section waits for it (or nobody: the caller accepts losing it in a crash); marked handled here so a failure
    // between now and then is not an unhandled rejection.
    saved.catch(() => undefined);
    inSection?.push(saved);
    return Promise.race([appliedP, saved]);
  }

  function fail(err: AppError, waiting: Waiting[]): void {
    broken = err;
    for (const w of waiting) w.reject(err);
  }

  /**
   * Resolves once every record submitted so far is on disk: once the newest is (groups are synced in log order). A
   * lazy one is made awaited, so the sync starts now rather than a second later.
   */
  function allSaved(): Promise<void> {
    if (broken) return Promise.reject(broken);
    if (!newest) return Promise.resolve();
    newest.w.lazy = false;
    wantSync();
    return newest.saved;
  }

  // The append is synchronous: it only copies the group into the page cache (tens of microseconds for the few KB a
  // group holds), where an asynchronous write costs a round trip through the I/O thread pool, which under load waits
  // for a free thread and a core (measured at 2-9 ms). The slow part, fdatasync, stays off the event loop.
  function writeAll(fd: number, data: Buffer): void {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
  }

  const ioError = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    log.error('write-ahead log write failed; the store is read-only until restart', { dir, error: code });
    // Memory and disk may now disagree; refusing further writes is the only safe answer.
    return new AppError('internal', `Tierline could not write its data directory ${dir} (${code}); the last changes were not saved and the store stopped accepting more. Free disk space or fix permissions, then restart Tierline.`);
  };

  // Each loop runs while it has work and then clears its flag; a record queued after the loop's last check but
  // before the flag is cleared (a continuation of a resolved commit that commits again) would otherwise wait for the
  // next commit, so the loop is started again if work arrived in between.
  function startFlush(): void {
    if (flushing) return;
    flushing = flushLoop().finally(() => {
      flushing = null;
      if (queue.length && !broken) startFlush();
    });
  }

  function startSync(): void {
    if (syncing) return;
    syncing = syncLoop().finally(() => {
      syncing = null;
      if (!broken) wantSync();
    });
  }

  /** Syncs now if someone waits for an unsynced record, else saves the others later (if nothing else does first). */
  function wantSync(): void {
    if (unsynced.some((w) => !w.lazy)) startSync();
    else if (unsynced.length) lazySync ??= setTimeout(() => !broken && startSync(), LAZY_SYNC_MS).unref();
  }

  async function flushLoop(): Promise<void> {
    // Let the callers of this tick join the first group.
    await Promise.resolve();
    while (queue.length && !broken) {
      if (wantCompact && !compacting) {
        // The log file is switched between two writes, with everything written so far flushed.
        while (syncing || unsynced.length) {
          startSync();
          await syncing;
        }
        if (broken) return;
        startCompaction();
      }
      const group = queue;
      queue = [];
      const data = Buffer.from(group.map((w) => w.line).join(''), 'utf8');
      try {
        writeAll(walFd, data);
      } catch (err) {
        fail(ioError(err), [...group, ...queue]);
        queue = [];
        return;
      }
      walBytes += data.length;
      walRecords += group.length;
      for (const w of group) {
        try {
          applyRecord(w.rec);
          if (!w.early) for (const id of handedOutAfterFlush(w.rec)) unsaved.add(id);
        } catch (err) {
          // checkBatch makes this unreachable for commits; if it happens, the log holds the record and a restart applies it.
          log.error('could not apply a logged change in memory', { n: w.rec.n, op: w.rec.op, error: err instanceof Error ? err.message : String(err) });
        }
        lastApplied = w.rec.n;
        w.applied();
      }
      unsynced.push(...group);
      wantSync();
      if ((walBytes >= compactWalBytes || walRecords >= compactWalRecords) && walBytes >= liveBytes) wantCompact = true;
    }
    if (wantCompact && !compacting && !broken && !syncing && !unsynced.length) startCompaction();
  }

  async function syncLoop(): Promise<void> {
    if (lazySync) clearTimeout(lazySync);
    lazySync = null;
    while (unsynced.length) {
      const group = unsynced;
      unsynced = [];
      try {
        await datasyncFd(walFd);
        syncs++;
      } catch (err) {
        fail(broken ?? ioError(err), [...group, ...unsynced, ...queue]);
        unsynced = [];
        queue = [];
        return;
      }
      for (const w of group) {
        if (!w.early) for (const id of handedOutAfterFlush(w.rec)) unsaved.delete(id);
        w.resolve();
      }
      // Everything written so far is saved; go on only if somebody waits for what came meanwhile (wantSync).
      if (!unsynced.some((w) => !w.lazy)) break;
    }
    if (wantCompact && !compacting && !broken && !flushing && !unsynced.length) startCompaction();
  }

  // ------------------------------------------------------------ compaction
  type Frozen = { seq: number; historyIds: number[]; rotating: TicketRecord[]; dedupe: { inbound: [string, number][]; done: [string, number][] }; snapshot: LiveFile };

  /** Runs between two log writes: captures what the next live file holds and switches the log to a new file. */
  function freeze(): Frozen {
    const now = clock.now();
    const cutoff = now - dedupeWindowMs;
    for (const [k, at] of inbound) if (at < cutoff) inbound.delete(k);
    for (const [k, at] of doneJobs) if (at < cutoff) doneJobs.delete(k);
    const dedupe = { inbound: newInbound, done: newDone };
    newInbound = [];
    newDone = [];
    const rotating: TicketRecord[] = [];
    for (const t of live.values()) if (!isOpenTicket(t) && (t.resolvedAt ?? t.updatedAt) < now - retentionMs) rotating.push(t);
    const leaving = new Set(rotating.map((t) => t.key));
    const kvRows: LiveFile['kv'] = [];
    for (const [ns, m] of kv) {
      for (const [key, value] of m) {
        // Expired records are dropped here, so the live file holds only what may still be asked for.
        const id = kvId(ns, key);
        const exp = kvExpiry.get(id);
        if (exp !== undefined && exp <= now) {
          m.delete(key);
          kvExpiry.delete(id);
          continue;
        }
        kvRows.push(exp === undefined ? { ns, key, value } : { ns, key, value, expiresAt: exp });
      }
    }
    // Records are replaced, never changed in place, once stored (jobs excepted: copied), so these references stay
    // as they are now until the file is written.
    const snapshot: LiveFile = {
      format: 'tierline-lowdb',
      version: 1,
      walSeq: lastApplied,
      savedAt: now,
      configs: [...configs],
      tickets: [...live.values()].filter((t) => !leaving.has(t.key)),
      jobs: [...jobs.values()].map((j) => ({ ...j, leaseUntil: 0 })),
      timers: [...timers.values()],
      counters: clone(counters),
      kv: kvRows,
      inbound: [],
      doneJobs: [],
      history: [],
    };
    // Records in the current log are all newer than any older log's, so its name is free whenever it holds one.
    if (walRecords > 0 && !existsSync(`${walPath}.${lastApplied}`)) {
      closeSync(walFd);
      renameSync(walPath, `${walPath}.${lastApplied}`);
      walFd = openSync(walPath, 'a');
      fsyncDir(dir);
      walBytes = 0;
      walRecords = 0;
    }
    return { seq: lastApplied, historyIds: [...index.pending.keys()], rotating, dedupe, snapshot };
  }

  async function writeOut(f: Frozen): Promise<void> {
    const byFile = new Map<string, { lines: string[]; done: ((loc: Loc) => void)[] }>();
    const put = (name: string, line: string, done: (loc: Loc) => void) => {
      let g = byFile.get(name);
      if (!g) byFile.set(name, (g = { lines: [], done: [] }));
      g.lines.push(line);
      g.done.push(done);
    };
    const none = () => {};
    for (const id of f.historyIds) {
      const e = index.pending.get(id);
      if (e) put(dateName(e.at), JSON.stringify({ h: e }), (loc) => index.locate(id, loc));
    }
    for (const t of [...f.rotating].sort((a, b) => closedAt(a) - closedAt(b)))
      put(dateName(closedAt(t)), JSON.stringify({ t }), (loc) => {
        metas.get(t.key)!.loc = loc;
        closedLine.push({ key: t.key, loc, closedAt: closedAt(t) });
        // Unless it changed since the freeze (reopened), it now lives in its dated file only; if it changed, the
        // live version (and its metadata) wins until it is closed and moved out again.
        if (live.get(t.key) === t) live.delete(t.key);
      });
    for (const [k, at] of f.dedupe.inbound) put(dateName(at), JSON.stringify({ i: k, at }), none);
    for (const [k, at] of f.dedupe.done) put(dateName(at), JSON.stringify({ d: k, at }), none);

    let created = false;
    try {
      for (const [name, g] of [...byFile.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        const r = await appendLines(join(histDir, name), g.lines);
        created ||= r.created;
        const id = fileId(name);
        g.done.forEach((cb, i) => cb({ file: id, off: r.offsets[i]!, len: r.lengths[i]! }));
      }
      if (created) fsyncDir(histDir);
    } catch (err) {
      // Entries and tickets not yet located stay in memory and go out with the next compaction; the dedupe keys
      // are queued again (a key written twice is harmless).
      newInbound = [...f.dedupe.inbound, ...newInbound];
      newDone = [...f.dedupe.done, ...newDone];
      throw err;
    }
    db.data = f.snapshot;
    await db.write();
    db.data = null;
    liveBytes = statSync(livePath).size;
    for (const name of await readdir(dir)) {
      const m = OLD_WAL.exec(name);
      if (m && Number(m[1]) <= f.seq) await unlink(join(dir, name)).catch(() => undefined);
    }
    // Only now, with every frozen entry and ticket written out and located: forgetting renumbers the index's entries.
    forgetBefore(retentionCutoff(clock.now(), keepMs));
    await dropExpiredFiles();
    compactions++;
  }

  /**
   * Deletes the dated files whose whole day left both the retention window (nothing in them is shown any more) and
   * twice the dedupe window (the keys in them are not read back at open any more).
   */
  async function dropExpiredFiles(): Promise<void> {
    const now = clock.now();
    const before = Math.min(retentionCutoff(now, keepMs), now - 2 * dedupeWindowMs);
    if (before === -Infinity) return;
    for (const name of await readdir(histDir)) {
      const day = DATED.exec(name)?.[1];
      if (!day || day === 'undated' || Date.parse(`${day}T00:00:00Z`) + 86_400_000 > before) continue;
      await unlink(join(histDir, name)).catch(() => undefined);
      log.info('deleted a history file that left the retention window', { file: name });
    }
  }

  function startCompaction(): void {
    if (compacting) {
      wantCompact = true;
      return;
    }
    wantCompact = false;
    const f = freeze();
    compacting = writeOut(f)
      .catch((err: unknown) => log.warn('compaction failed; the write-ahead log keeps every change and compaction is tried again', { dir, error: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        compacting = null;
        if (wantCompact && quiet() && !broken && !closed) startCompaction();
      });
  }

  async function idle(): Promise<void> {
    for (;;) {
      // Records nobody waited for are saved before the store counts as idle.
      if (!flushing && unsynced.length) startSync();
      const busy = flushing ?? syncing ?? compacting;
      if (!busy) return;
      await busy;
    }
  }

  async function compactNow(): Promise<void> {
    await idle();
    if (broken) throw broken;
    startCompaction();
    await idle();
  }

  const timer =
    compactEveryMs > 0
      ? setInterval(() => {
          if (broken || closed || closing) return;
          const now = clock.now();
          let due = walRecords > 0;
          if (!due) for (const t of live.values()) if (!isOpenTicket(t) && (t.resolvedAt ?? t.updatedAt) < now - retentionMs) due = true;
          if (!due) return;
          wantCompact = true;
          if (quiet() && !compacting) startCompaction();
        }, compactEveryMs)
      : null;
  timer?.unref();

  // ------------------------------------------------------------ reads
  /**
   * Reads lines of a dated file; none if the file is gone (a reader that looked just before the retention window
   * moved past the file's day, while a compaction deleted it).
   */
  async function readLines(file: number, ranges: readonly { off: number; len: number }[]): Promise<(Buffer | undefined)[]> {
    try {
      return await readRanges(join(histDir, files[file]!), ranges);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async function readTicketAt(loc: Loc): Promise<TicketRecord | null> {
    const [buf] = await readLines(loc.file, [loc]);
    if (!buf) return null;
    try {
      return (JSON.parse(buf!.toString('utf8')) as { t: TicketRecord }).t;
    } catch {
      return null;
    }
  }

  async function readClosedTickets(list: { key: string; loc: Loc }[]): Promise<Map<string, TicketRecord>> {
    const byFile = new Map<number, { key: string; loc: Loc }[]>();
    for (const x of list) {
      const l = byFile.get(x.loc.file) ?? [];
      l.push(x);
      byFile.set(x.loc.file, l);
    }
    const out = new Map<string, TicketRecord>();
    for (const [file, xs] of byFile) {
      const bufs = await readLines(
        file,
        xs.map((x) => x.loc),
      );
      bufs.forEach((b, i) => {
        if (!b) return;
        try {
          out.set(xs[i]!.key, (JSON.parse(b.toString('utf8')) as { t: TicketRecord }).t);
        } catch {
          log.warn('a closed ticket could not be read from its history file', { ticket: xs[i]!.key, file: files[file] });
        }
      });
    }
    return out;
  }

  type Located = { out: (HistoryEntry | undefined)[]; byFile: Map<number, { i: number; off: number; len: number }[]> };

  /** Where the entries are, read at once: ids are only good until the next compaction forgets entries. */
  function locateEntries(ids: number[]): Located {
    const out: (HistoryEntry | undefined)[] = new Array(ids.length);
    const byFile = new Map<number, { i: number; off: number; len: number }[]>();
    ids.forEach((id, i) => {
      const p = index.pending.get(id);
      if (p) out[i] = clone(p);
      else {
        const f = index.file[id]!;
        const l = byFile.get(f) ?? [];
        l.push({ i, off: index.off[id]!, len: index.len[id]! });
        byFile.set(f, l);
      }
    });
    return { out, byFile };
  }

  async function loadEntries(ids: number[]): Promise<HistoryEntry[]> {
    return readLocated(locateEntries(ids));
  }

  async function readLocated({ out, byFile }: Located): Promise<HistoryEntry[]> {
    for (const [file, xs] of byFile) {
      const bufs = await readLines(file, xs);
      bufs.forEach((b, k) => {
        if (!b) return;
        out[xs[k]!.i] = (JSON.parse(b.toString('utf8')) as { h: HistoryEntry }).h;
      });
    }
    return out.filter((e): e is HistoryEntry => e !== undefined);
  }

  /** A private copy whose (large) config is copied only if read: the pipeline reads the version on every decision. */
  const lazyCopy = (v: ConfigVersion): ConfigVersion => {
    let config: RoutingConfig | undefined;
    const out = { version: v.version, savedAt: v.savedAt, author: v.author, note: v.note } as ConfigVersion;
    Object.defineProperty(out, 'config', {
      enumerable: true,
      configurable: true,
      get: () => (config ??= clone(v.config)),
      set: (c: RoutingConfig) => void (config = c),
    });
    return out;
  };

  let chain: Promise<unknown> = Promise.resolve();
  let configTurn: Promise<unknown> = Promise.resolve();
  const inboundInFlight = new Map<string, number>();
  const retryInFlight = new Set<string>();
  const kvPutsInFlight = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string, d: number) => {
    const v = (m.get(k) ?? 0) + d;
    if (v > 0) m.set(k, v);
    else m.delete(k);
  };
  const guard = () => {
    if (closed) throw closedError();
  };

  const store: LowdbStore = {
    dir,

    async getConfig() {
      const v = configs.at(-1);
      return v ? lazyCopy(v) : null;
    },

    saveConfig(config: RoutingConfig, meta) {
      // Versions are consecutive: each save waits for the previous one to land.
      const run = async () => {
        guard();
        const v: ConfigVersion = { version: (configs.at(-1)?.version ?? 0) + 1, config, savedAt: meta.at, author: meta.author, note: meta.note };
        await submit({ op: 'config', v });
        return clone(configs.at(-1)!);
      };
      const p = configTurn.then(run, run);
      configTurn = p.catch(() => undefined);
      return p;
    },

    async configVersions() {
      return clone([...configs].reverse());
    },

    async recordInbound(keys, at) {
      guard();
      const fresh: string[] = [];
      const inCall = new Set<string>();
      const out = keys.map((k) => {
        if (inCall.has(k)) return false;
        inCall.add(k);
        const seen = inbound.get(k);
        // A key older than the window counts as new again; one being saved right now by another call does not.
        if ((seen !== undefined && seen >= at - dedupeWindowMs) || inboundInFlight.has(k)) return false;
        fresh.push(k);
        return true;
      });
      if (!fresh.length) return out;
      for (const k of fresh) bump(inboundInFlight, k, 1);
      try {
        await submit({ op: 'inbound', at, keys: fresh });
      } finally {
        for (const k of fresh) bump(inboundInFlight, k, -1);
      }
      return out;
    },

    async getTicket(key) {
      const cutoff = cutoffNow();
      const t = live.get(key);
      if (t) return forgotten(t, cutoff) ? null : clone(t);
      const m = metas.get(key);
      return m?.loc && !metaForgotten(m, cutoff) ? readTicketAt(m.loc) : null;
    },

    async getTickets(keys) {
      // Live ones from memory; those moved to the dated files in one pass over their lines.
      const cutoff = cutoffNow();
      const out: TicketRecord[] = [];
      const want: { key: string; loc: Loc }[] = [];
      for (const key of new Set(keys)) {
        const t = live.get(key);
        if (t) {
          if (!forgotten(t, cutoff)) out.push(clone(t));
          continue;
        }
        const m = metas.get(key);
        if (m?.loc && !metaForgotten(m, cutoff)) want.push({ key, loc: m.loc });
      }
      if (want.length) for (const [key, t] of await readClosedTickets(want)) if (!live.has(key)) out.push(t);
      return out;
    },

    async findTicketByTopic(groupId, topicId) {
      const k = topicKey(groupId, topicId);
      for (const key of topics.get(k) ?? []) {
        if (metas.get(key)?.topic !== k) continue;
        const t = await store.getTicket(key);
        if (t?.topic && t.topic.groupId === groupId && t.topic.topicId === topicId) return t;
      }
      return null;
    },

    async openTicketsPerGroup() {
      const out: Record<string, number> = {};
      for (const g of openGroups.values()) out[g] = (out[g] ?? 0) + 1;
      return out;
    },

    async tickets(filter = {}) {
      const cutoff = cutoffNow();
      const out: { ord: number; t: TicketRecord }[] = [];
      for (const t of live.values()) {
        if (forgotten(t, cutoff)) continue;
        if (filter.open !== undefined && isOpenTicket(t) !== filter.open) continue;
        if (filter.agentId && t.agentId !== filter.agentId) continue;
        if (filter.queueId && t.queueId !== filter.queueId) continue;
        if (filter.status && t.status !== filter.status) continue;
        out.push({ ord: metas.get(t.key)!.ord, t: clone(t) });
      }
      if (filter.open !== true && (!filter.status || filter.status === 'resolved' || filter.status === 'failed')) {
        // Closed tickets moved to the dated files are closed by construction.
        const want: { key: string; loc: Loc; ord: number }[] = [];
        for (const [key, m] of metas) {
          if (!m.loc || live.has(key)) continue;
          if (metaForgotten(m, cutoff)) continue;
          if (filter.agentId && m.agentId !== filter.agentId) continue;
          if (filter.queueId && m.queueId !== filter.queueId) continue;
          want.push({ key, loc: m.loc, ord: m.ord });
        }
        const ords = new Map(want.map((w) => [w.key, w.ord]));
        if (want.length) for (const [key, t] of await readClosedTickets(want)) if (!live.has(key) && (!filter.status || t.status === filter.status)) out.push({ ord: ords.get(key)!, t });
      }
      return out.sort((a, b) => a.ord - b.ord).map((x) => x.t);
    },

    async counters() {
      return copyCounters(counters);
    },

    async routingCounters() {
      return oldest.read(counters);
    },

    async waitingTickets(queueIds, page) {
      return waitingPage(counters, queueIds, page);
    },

    async commit(batch, opts) {
      guard();
      checkBatch(batch);
      const b: Batch = {};
      if (batch.tickets?.length) b.tickets = batch.tickets;
      if (batch.completeJobs?.length) b.completeJobs = batch.completeJobs;
      if (batch.jobs?.length) b.jobs = batch.jobs;
      if (batch.cancelTimers?.length) b.cancelTimers = batch.cancelTimers;
      if (batch.timers?.length) b.timers = batch.timers;
      if (batch.history?.length) b.history = batch.history;
      if (batch.counters?.length) b.counters = batch.counters;
      if (Object.keys(b).length === 0) return;
      await submit({ op: 'commit', now: clock.now(), b }, opts?.awaitFlush ?? true, opts?.stepsBeforeSaved ?? false);
    },

    saved: () => {
      guard();
      return allSaved();
    },

    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      // Sections take turns; each resolves once what it wrote is saved (see the log writer).
      const writes: Promise<void>[] = [];
      const inTurn = () => section.run(writes, fn);
      const run = chain.then(inTurn, inTurn);
      chain = run.catch(() => undefined);
      return run.then(
        async (v) => {
          await Promise.all(writes);
          return v;
        },
        async (err: unknown) => {
          await Promise.allSettled(writes);
          throw err;
        },
      );
    },

    async claimJobs(now, limit, leaseMs) {
      guard();
      if (limit <= 0) return [];
      // The `limit` earliest due jobs from the due-time index (a scan of every job on each claim, and a claim follows
      // every finished step, kept a backlog from ever draining).
      const out: Job[] = [];
      const notYet: Job[] = [];
      while (out.length < limit) {
        const id = due.popDue(now);
        if (id === undefined) break;
        const j = jobs.get(id)!;
        // Created by a record not yet flushed: handed out once it is.
        if (unsaved.size && unsaved.has(`j:${id}`)) notYet.push(j);
        else out.push(j);
      }
      // Leases live in memory only: one process owns the directory, and opening clears them. Claim counts need not
      // be durable here either: only this process runs steps, and a restart empties what connectors reserved in memory.
      for (const j of out) {
        j.leaseUntil = now + leaseMs;
        j.claims = (j.claims ?? 0) + 1;
        due.schedule(j);
      }
      for (const j of notYet) due.schedule(j);
      // Most claims (the worker's idle polls) find nothing: no copy to make.
      return out.length ? clone(out) : [];
    },

    async failJob(id, error, retryAt) {
      guard();
      if (!jobs.has(id)) return;
      await submit({ op: 'fail', id, error, retryAt });
    },

    async deadJobs() {
      const out: Job[] = [];
      for (const j of jobs.values()) if (j.status === 'dead') out.push(j);
      return clone(out);
    },

    async retryDeadJob(id, now) {
      guard();
      const j = jobs.get(id);
      if (!j || j.status !== 'dead' || retryInFlight.has(id)) return false;
      retryInFlight.add(id);
      try {
        await submit({ op: 'retry', id, now });
      } finally {
        retryInFlight.delete(id);
      }
      return true;
    },

    async pendingJobs() {
      return due.size;
    },

    async dueTimers(now, limit) {
      // Most polls find nothing due (SLA and overflow timers lie minutes ahead): the earliest deadline, kept as
      // timers come and go, answers them without walking every open ticket's timers.
      if (earliestTimer !== null && earliestTimer > now) return [];
      const due: Timer[] = [];
      let earliest = Infinity;
      for (const t of timers.values()) {
        if (t.at <= now && !(unsaved.size && unsaved.has(`t:${t.id}`))) due.push(t);
        if (t.at < earliest) earliest = t.at;
      }
      earliestTimer = earliest;
      return due.length ? clone(due.sort((a, b) => a.at - b.at).slice(0, Math.max(0, limit))) : [];
    },

    async history(q: HistoryQuery) {
      let company: Set<number> | null = null;
      if (q.companyId) {
        company = new Set();
        for (const key of companies.get(q.companyId) ?? []) {
          const id = index.tickets.get(key);
          if (id !== undefined) company.add(id);
        }
      }
      const cutoff = cutoffNow();
      const { total, ids } = index.query(cutoff > (q.from ?? -Infinity) ? { ...q, from: cutoff } : q, company);
      return { total, entries: await loadEntries(ids) };
    },

    async kvGet<T>(ns: string, key: string) {
      const v = kv.get(ns)?.get(key);
      if (v === undefined || v === null || expired(ns, key)) return null;
      return v as T;
    },

    async kvPut(ns, key, value, opts) {
      guard();
      const id = kvId(ns, key);
      bump(kvPutsInFlight, id, 1);
      try {
        const ttl = opts?.ttlMs === undefined ? undefined : Math.min(opts.ttlMs, expiringCapMs);
        // The value applied is submit's own copy (the caller keeps its object), then shared frozen by every read.
        await submit({ op: 'kvput', ns, key, value: value === undefined ? null : value, ...(ttl !== undefined ? { expiresAt: clock.now() + ttl } : {}) }, opts?.awaitFlush ?? true);
      } finally {
        bump(kvPutsInFlight, id, -1);
      }
    },

    async kvDelete(ns, key) {
      guard();
      const existed = (kv.get(ns)?.has(key) ?? false) || kvPutsInFlight.has(kvId(ns, key));
      if (!existed) return false;
      await submit({ op: 'kvdel', ns, key });
      return true;
    },

    async kvList<T>(ns: string) {
      return [...(kv.get(ns) ?? new Map<string, unknown>()).entries()].filter(([key]) => !expired(ns, key)).map(([key, value]) => ({ key, value: value as T }));
    },

    async close() {
      if (closed || closing) return;
      closing = true;
      if (timer) clearInterval(timer);
      await Promise.allSettled([chain, configTurn]);
      await idle();
      // A clean stop leaves a complete live file and an empty log (what a backup or migrate-store reads).
      if (!broken) {
        try {
          await compactNow();
        } catch (err) {
          log.warn('final compaction failed; the write-ahead log still holds every change', { dir, error: err instanceof Error ? err.message : String(err) });
        }
      }
      closed = true;
      try {
        fsyncSync(walFd);
      } catch {
        // Nothing unacknowledged is left to flush; a failing fsync here changes nothing already confirmed.
      }
      closeSync(walFd);
      paths.releaseLock();
      log.info('lowdb store closed', { dir });
    },

    compact: compactNow,

    stats() {
      let liveFileBytes = 0;
      try {
        liveFileBytes = statSync(livePath).size;
      } catch {
        // Not written yet.
      }
      return { dir, liveFileBytes, walBytes, walRecords, liveTickets: live.size, knownTickets: metas.size, historyEntries: index.n, historyInMemory: index.pending.size, dedupeKeys: inbound.size + doneJobs.size, compactions, syncs };
    },

    async exportState() {
      const all = await store.tickets();
      const ticketMap = new Map<string, TicketRecord>();
      for (const t of all) ticketMap.set(t.key, t);
      const history: HistoryEntry[] = [];
      const ids = index.allIds();
      const where = [];
      for (let i = 0; i < ids.length; i += 5_000) where.push(locateEntries(ids.slice(i, i + 5_000)));
      for (const w of where) history.push(...(await readLocated(w)));
      const kvCopy = new Map<string, Map<string, unknown>>();
      for (const [ns, m] of kv) kvCopy.set(ns, new Map([...m].filter(([k]) => !expired(ns, k))));
      return {
        configs: clone(configs),
        inbound: new Map(inbound),
        tickets: ticketMap,
        jobs: new Map([...jobs].map(([k, j]) => [k, { ...clone(j), leaseUntil: 0 }])),
        doneJobs: new Map(doneJobs),
        timers: new Map([...timers].map(([k, t]) => [k, clone(t)])),
        history,
        counters: clone(counters),
        kv: kvCopy,
      };
    },
  };
  return store;
}

/** Reads a whole lowdb data directory (Tierline must be stopped: this takes the directory's lock). */
export async function readLowdbState(dir: string, opts: { clock?: Clock; logger?: Logger } = {}): Promise<MemoryState> {
  const store = await openLowdbStore({ dir, clock: opts.clock ?? { now: () => Date.now() }, logger: opts.logger, compactEveryMs: 0 });
  try {
    return await store.exportState();
  } finally {
    await store.close();
  }
}
