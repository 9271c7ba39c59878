// The console's read model of ticket outcomes. Performance, the overview's daily figures and what-if replays need
// every ticket, and reading 100,000 records from the store on each request costs seconds (the memory store clones
// each one; PostgreSQL parses each document). So the console loads all tickets once, then follows the history: every
// change that matters for the reports (routed, first reply, SLA breach, overflow, reassignment, resolution) writes a
// history entry, so the tickets named by entries since the last look are the ones to read again.
//
// Records are kept slim (no subject, names or explanation text; see slim()) to hold 100,000 in a few tens of MB;
// pages that show a ticket read it from the store.
import type { Clock, Logger, Store, TicketRecord } from '../../core/ports.ts';
import { performanceReport, type PerformanceReport } from '../../core/report.ts';

export type Snapshot = {
  /** Bumped whenever a ticket changed, so derived reports can be cached per version. */
  version: number;
  /** When the snapshot was last brought up to date (ms, the console's clock). */
  at: number;
  tickets: ReadonlyMap<string, TicketRecord>;
};

export type ReadModel = {
  snapshot(): Promise<Snapshot>;
  /** Starts the first load in the background, so the first admin to open a report does not wait for it. */
  warm(): void;
  /** The performance report over tickets routed at or after `since` (ms), cached per snapshot version. */
  report(since: number | null): Promise<{ report: PerformanceReport; snapshot: Snapshot; tickets: number }>;
};

export type ReadModelOptions = {
  /** A snapshot younger than this is served as it is. */
  maxAgeMs?: number;
  /** Entries are re-read from this long before the last look: a commit can carry an `at` in the past. */
  overlapMs?: number;
  /** Beyond this many changed tickets, reloading everything is cheaper than reading each. */
  reloadAbove?: number;
};

const MISSING_LINE = /^Segment data missing:.*default queue/;

/** Keeps what the reports and replays read; drops the text a page reads fresh from the store anyway. */
export function slim(t: TicketRecord): TicketRecord {
  const line = t.explanation.find((l) => MISSING_LINE.test(l));
  return { ...t, subject: '', customerName: null, companyName: null, recordUrl: null, summary: null, explanation: line ? [line] : [], topic: null, topicRandomId: null };
}

export function createReadModel(store: Store, clock: Clock, logger: Logger, opts: ReadModelOptions = {}): ReadModel {
  const maxAgeMs = opts.maxAgeMs ?? 2_000;
  // Generous: entries are written with the writer's clock, which may run behind ours (another instance), and a
  // commit's `at` is taken before it lands. Only unseen entries cost a read, so a wide window is cheap.
  const overlapMs = opts.overlapMs ?? 10 * 60_000;
  const reloadAbove = opts.reloadAbove ?? 20_000;
  let snap: { version: number; at: number; tickets: Map<string, TicketRecord>; scannedFrom: number } | null = null;
  let inflight: Promise<Snapshot> | null = null;
  /** History entries already applied, within the overlap window. */
  const seen = new Map<string, number>();
  const reports = new Map<string, { report: PerformanceReport; tickets: number }>();

  async function loadAll(): Promise<void> {
    const started = clock.now();
    const all = await store.tickets();
    const tickets = new Map<string, TicketRecord>();
    for (const t of all) tickets.set(t.key, slim(t));
    snap = { version: (snap?.version ?? 0) + 1, at: started, tickets, scannedFrom: started };
  }

  async function follow(): Promise<void> {
    const s = snap!;
    const started = clock.now();
    const keys = new Set<string>();
    const page = 1_000;
    const from = s.scannedFrom - overlapMs;
    for (let offset = 0; ; offset += page) {
      const r = await store.history({ from, offset, limit: page });
      for (const e of r.entries) {
        // Entries inside the overlap come back on every look; only new ones name a ticket to read again.
        if (seen.has(e.key)) continue;
        seen.set(e.key, e.at);
        keys.add(e.ticketKey);
      }
      if (keys.size > reloadAbove) return loadAll();
      if (offset + page >= r.total) break;
    }
    for (const [k, at] of seen) if (at < from) seen.delete(k);
    let changed = false;
    const list = [...keys];
    for (let i = 0; i < list.length; i += 500) {
      for (const t of await store.getTickets(list.slice(i, i + 500))) {
        const prev = s.tickets.get(t.key);
        if (!prev || prev.updatedAt !== t.updatedAt || prev.seq !== t.seq) {
          s.tickets.set(t.key, slim(t));
          changed = true;
        }
      }
    }
    if (changed) s.version++;
    s.at = started;
    s.scannedFrom = started;
  }

  async function refresh(): Promise<Snapshot> {
    try {
      if (!snap) await loadAll();
      else await follow();
    } catch (err) {
      logger.warn('console could not refresh its ticket snapshot', { error: err instanceof Error ? err.message : String(err) });
      if (!snap) throw err;
    }
    return view();
  }

  const view = (): Snapshot => ({ version: snap!.version, at: snap!.at, tickets: snap!.tickets });

  async function snapshot(): Promise<Snapshot> {
    if (snap && clock.now() - snap.at < maxAgeMs) return view();
    // One refresh at a time; concurrent requests share it.
    inflight ??= refresh().finally(() => (inflight = null));
    return inflight;
  }

  return {
    snapshot,
    warm() {
      snapshot().catch((err: unknown) => logger.warn('console could not load its ticket snapshot yet; it retries on the next page view', { error: err instanceof Error ? err.message : String(err) }));
    },
    async report(since) {
      const s = await snapshot();
      const key = `${s.version}:${since ?? 'all'}`;
      let r = reports.get(key);
      if (!r) {
        const tickets: TicketRecord[] = [];
        for (const t of s.tickets.values()) if (since === null || (t.routedAt ?? t.receivedAt) >= since) tickets.push(t);
        r = { report: performanceReport(tickets), tickets: tickets.length };
        // A handful of periods per version is all the page offers; older versions are never asked for again.
        for (const k of reports.keys()) if (!k.startsWith(`${s.version}:`)) reports.delete(k);
        reports.set(key, r);
      }
      return { ...r, snapshot: s };
    },
  };
}
