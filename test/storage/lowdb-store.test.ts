// The lowdb store: the store contract (reopening from the same data directory for the persistence checks), then what
// only a file-backed store must show: crash safety under SIGKILL, the lock, rotation into dated files, bounded growth.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppError } from '../../core/errors.ts';
import type { Batch, Clock, HistoryQuery, Store, TicketRecord } from '../../core/ports.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';
import { LIVE_FILE, LOCK_FILE, WAL_FILE, openLowdbStore, readLowdbState, type LowdbStore, type LowdbStoreOptions } from '../../server/storage/lowdb-store.ts';
import { runStoreContract } from './contract.ts';
import { DAY, HOUR, T0, entry, fakeClock, job, routingConfig, silentLogger, ticket } from './fixtures.ts';

runStoreContract('lowdb', async ({ clock, retentionMs }) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierline-lowdb-'));
  const open = () => openLowdbStore({ dir, clock, retentionMs, logger: silentLogger });
  return { store: await open(), reopen: open, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// ---------------------------------------------------------------- what only a file-backed store must show

const WRITER = fileURLToPath(new URL('./procs/lowdb-writer.ts', import.meta.url));

type Child = { proc: ChildProcess; acks: Set<number>; opened: Promise<void>; exited: Promise<void>; stderr: () => string };

function startWriter(dir: string, first: number): Child {
  const proc = spawn(process.execPath, [WRITER, dir, String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acks = new Set<number>();
  let err = '';
  let buf = '';
  let onOpen!: () => void;
  const opened = new Promise<void>((r) => (onOpen = r));
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'open') onOpen();
      else if (line.startsWith('ack ')) acks.add(Number(line.slice(4)));
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, acks, opened, exited, stderr: () => err };
}

async function until(cond: () => boolean, what: () => string): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`gave up waiting: ${what()}`);
}

describe('lowdb store on disk', () => {
  let dir: string;
  const stores: Store[] = [];
  const children: ChildProcess[] = [];
  const open = async (over: Partial<LowdbStoreOptions> = {}, clock: Clock = fakeClock()) => {
    const s = await openLowdbStore({ dir, clock, logger: silentLogger, compactEveryMs: 0, ...over });
    stores.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tierline-lowdb-'));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const s of stores.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('survives SIGKILL at random moments: every acknowledged outcome is there whole, the live file parses', async () => {
    const rand = rng(20250106);
    const acked = new Set<number>();
    for (let round = 0; round < 6; round++) {
      const child = startWriter(dir, round * 100_000);
      children.push(child.proc);
      await child.opened;
      const want = 10 + Math.floor(rand() * 250);
      await until(() => child.acks.size >= want || child.proc.exitCode !== null, () => `${want} acks from the writer (stderr: ${child.stderr()})`);
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 12)));
      child.proc.kill('SIGKILL');
      await child.exited;
      expect(child.stderr()).toBe('');
      for (const n of child.acks) acked.add(n);

      // The live file is always whole JSON (temp + rename), whatever moment the kill hit.
      expect(() => JSON.parse(readFileSync(join(dir, LIVE_FILE), 'utf8'))).not.toThrow();
      const s = await openLowdbStore({ dir, clock: { now: () => Date.now() }, logger: silentLogger, compactEveryMs: 0 });
      const present = new Set((await s.tickets()).map((t) => Number(t.key.split(':')[2])));
      for (const n of acked) expect(present.has(n), `acknowledged outcome ${n} after round ${round}`).toBe(true);
      // All or nothing: each outcome that is there has its entry, step and timer, and the load counts each once.
      const history = await s.history({ limit: 1_000_000 });
      expect(new Set(history.entries.map((e) => Number(e.ticketKey.split(':')[2])))).toEqual(present);
      expect(history.total).toBe(present.size);
      expect(await s.pendingJobs()).toBe(present.size);
      expect((await s.dueTimers(Date.now() + DAY, 1_000_000)).length).toBe(present.size);
      expect((await s.counters()).load.alice).toBe(present.size);
      await s.close();
    }
    expect(acked.size).toBeGreaterThan(60);
    // Compactions ran under the writers, so closed tickets and entries were moved to dated files along the way.
    expect(readdirSync(join(dir, 'history')).some((n) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(n))).toBe(true);
  }, 60_000);

  it('refuses a second owner of the data directory, in this process or another, and takes over after a crash', async () => {
    const s = await open();
    await expect(openLowdbStore({ dir, clock: fakeClock() })).rejects.toThrow(/already open in this process/);
    await s.close();
    stores.pop();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

    const child = startWriter(dir, 0);
    children.push(child.proc);
    await child.opened;
    const err = await openLowdbStore({ dir, clock: fakeClock() }).then(
      () => null,
      (e: unknown) => e as AppError,
    );
    expect(err?.code).toBe('conflict');
    expect(err?.message).toContain(`pid ${child.proc.pid}`);
    expect(err?.message).toMatch(/Stop that process, or give this one its own DATA_DIR/);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(child.proc.pid);

    child.proc.kill('SIGKILL');
    await child.exited;
    // The lock names a process that is gone: the next start takes the directory over.
    const after = await open();
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    for (const n of child.acks) expect(await after.getTicket(`hubspot:42:${n}`)).not.toBeNull();
  }, 30_000);

  it('moves history entries, and tickets closed for over an hour, into dated files, and still finds them', async () => {
    const clock = fakeClock(T0);
    const s = await open({}, clock);
    const topic = { groupId: 'grp-vip', topicId: 41, link: 'https://t.me/c/100/41' };
    await s.commit({
      tickets: [ticket('hubspot:42:1', { topic, companyId: 'co-acme' }), ticket('hubspot:42:2', { companyId: 'co-globex' })],
      history: [entry('hubspot:42:1', 1, { at: T0 }), entry('hubspot:42:2', 1, { at: T0 + 1 })],
    });
    clock.set(T0 + DAY + HOUR);
    const resolved = ticket('hubspot:42:1', { topic, companyId: 'co-acme', status: 'resolved', resolvedAt: T0 + DAY + HOUR, updatedAt: T0 + DAY + HOUR, seq: 2 });
    await s.commit({ tickets: [resolved], history: [entry('hubspot:42:1', 2, { at: T0 + DAY + HOUR, kind: 'resolved' })] });
    await s.compact();
    const day1 = join(dir, 'history', '2025-01-06.jsonl');
    const day2 = join(dir, 'history', '2025-01-07.jsonl');
    const lines = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, { key: string }>);
    expect(lines(day1).map((l) => l.h?.key)).toEqual(['hubspot:42:1#1', 'hubspot:42:2#1']);
    expect(lines(day2).map((l) => l.h?.key)).toEqual(['hubspot:42:1#2']);
    // Just resolved: still live for a while (the close-topic and write-back steps that follow read it from memory).
    expect(liveFile().tickets.map((t) => t.key)).toEqual(['hubspot:42:1', 'hubspot:42:2']);
    expect(liveFile().history).toEqual([]);

    clock.set(T0 + 2 * DAY + 2 * HOUR);
    await s.compact();
    expect(liveFile().tickets.map((t) => t.key)).toEqual(['hubspot:42:2']);
    expect(lines(day2).map((l) => l.t?.key ?? l.h?.key)).toEqual(['hubspot:42:1#2', 'hubspot:42:1']);
    expect(s.stats()).toMatchObject({ liveTickets: 1, knownTickets: 2, historyEntries: 3, historyInMemory: 0 });

    const check = async (st: Store) => {
      expect(await st.getTicket('hubspot:42:1')).toEqual(resolved);
      // A page's tickets in one read: the moved one from its file, the live one from memory.
      expect((await st.getTickets(['hubspot:42:2', 'hubspot:42:1', 'hubspot:42:9'])).sort((a, b) => a.key.localeCompare(b.key))).toEqual([resolved, expect.objectContaining({ key: 'hubspot:42:2' })]);
      expect((await st.findTicketByTopic('grp-vip', 41))?.key).toBe('hubspot:42:1');
      expect((await st.tickets()).map((t) => t.key)).toEqual(['hubspot:42:1', 'hubspot:42:2']);
      expect((await st.tickets({ open: false })).map((t) => t.key)).toEqual(['hubspot:42:1']);
      expect((await st.tickets({ open: true })).map((t) => t.key)).toEqual(['hubspot:42:2']);
      expect((await st.tickets({ agentId: 'alice', queueId: 'vip' })).length).toBe(2);
      expect((await st.history({ companyId: 'co-acme' })).entries.map((e) => e.key)).toEqual(['hubspot:42:1#2', 'hubspot:42:1#1']);
      expect((await st.history({ from: T0 + DAY })).entries.map((e) => e.key)).toEqual(['hubspot:42:1#2']);
    };
    await check(s);
    await s.close();
    stores.pop();
    const again = await open({}, clock);
    await check(again);

    // Reopened: live again, and the newer version wins over the one in the dated file, across restarts too.
    const reopened = { ...resolved, status: 'assigned' as const, resolvedAt: null, updatedAt: T0 + 3 * DAY, seq: 3 };
    clock.set(T0 + 3 * DAY);
    await again.commit({ tickets: [reopened] });
    expect(await again.getTicket('hubspot:42:1')).toEqual(reopened);
    expect((await again.tickets({ open: true })).map((t) => t.key)).toEqual(['hubspot:42:1', 'hubspot:42:2']);
    const reresolved = { ...reopened, status: 'resolved' as const, resolvedAt: T0 + 3 * DAY, updatedAt: T0 + 3 * DAY + 1, seq: 4 };
    await again.commit({ tickets: [reresolved] });
    clock.set(T0 + 5 * DAY);
    await again.compact();
    await again.close();
    stores.pop();
    const third = await open({}, clock);
    expect(await third.getTicket('hubspot:42:1')).toEqual(reresolved);
    expect(liveFile().tickets.map((t) => t.key)).toEqual(['hubspot:42:2']);
  });

  it('keeps a ticket reopened while a compaction is moving it out', async () => {
    const clock = fakeClock(T0);
    const s = await open({}, clock);
    const closed = ticket('hubspot:42:1', { status: 'resolved', resolvedAt: T0, updatedAt: T0, agentId: 'alice', companyId: 'co-old' });
    await s.commit({ tickets: [closed], history: [entry('hubspot:42:1', 1)] });
    clock.set(T0 + 2 * DAY);
    const moving = s.compact();
    await Promise.resolve();
    await Promise.resolve();
    const reopened = { ...closed, status: 'assigned' as const, resolvedAt: null, agentId: 'bruno', companyId: 'co-new', updatedAt: T0 + 2 * DAY };
    await s.commit({ tickets: [reopened] });
    await moving;
    expect(await s.getTicket('hubspot:42:1')).toEqual(reopened);
    expect((await s.tickets({ open: true, agentId: 'bruno' })).map((t) => t.key)).toEqual(['hubspot:42:1']);
    expect(await s.tickets({ agentId: 'alice' })).toEqual([]);
    expect((await s.history({ companyId: 'co-new' })).total).toBe(1);
    expect((await s.history({ companyId: 'co-old' })).total).toBe(0);
    await s.compact();
    await s.close();
    stores.pop();
    const again = await open({}, clock);
    expect(await again.getTicket('hubspot:42:1')).toEqual(reopened);
    expect(await again.tickets({ agentId: 'alice' })).toEqual([]);
  });

  it('keeps the live file and the log bounded while outcomes pile up, and forgets dedupe keys after the window', async () => {
    const clock = fakeClock(T0);
    const s = (await open({ compactWalBytes: 256 << 10, compactWalRecords: 1_000 }, clock)) as LowdbStore;
    const sizes: number[] = [];
    let maxWal = 0;
    for (let n = 1; n <= 3_000; n++) {
      // One outcome every 10 minutes, resolved 2 hours after it was routed (about 12 open at any time).
      clock.advance(10 * 60_000);
      const key = `hubspot:42:${n}`;
      await s.recordInbound([`in:${key}`], clock.now());
      await s.commit({ tickets: [ticket(key, { updatedAt: clock.now() })], jobs: [job(`route:${key}`, { ticketKey: key })], history: [entry(key, 1, { at: clock.now() })], counters: [{ op: 'load', agentId: 'alice', delta: 1 }] });
      await s.commit({ completeJobs: [`route:${key}`] });
      const old = `hubspot:42:${n - 12}`;
      if (n > 12) await s.commit({ tickets: [ticket(old, { status: 'resolved', resolvedAt: clock.now(), updatedAt: clock.now() })], history: [entry(old, 2, { at: clock.now(), kind: 'resolved' })], counters: [{ op: 'load', agentId: 'alice', delta: -1 }] });
      maxWal = Math.max(maxWal, s.stats().walBytes);
      if (n % 1_000 === 0) {
        await s.compact();
        sizes.push(s.stats().liveFileBytes);
      }
    }
    // 3,000 outcomes over 3 weeks: the live file holds the open tickets and the last hour's closed ones either way.
    expect(sizes[2]!).toBeLessThan(sizes[0]! * 1.5);
    expect(maxWal).toBeLessThan(2 * (256 << 10));
    expect(s.stats()).toMatchObject({ historyEntries: 3_000 * 2 - 12, knownTickets: 3_000 });
    expect(s.stats().liveTickets).toBeLessThan(12 + 6 + 6);
    // Inbound keys and completed step ids are remembered for a week, then forgotten.
    expect(await s.recordInbound(['in:hubspot:42:3000'], clock.now())).toEqual([false]);
    expect(await s.recordInbound(['in:hubspot:42:1'], clock.now())).toEqual([true]);
    await s.commit({ jobs: [job('route:hubspot:42:3000')] });
    expect(await s.pendingJobs()).toBe(0);
    await s.close();
    stores.pop();
    const again = await open({}, clock);
    expect(await again.recordInbound(['in:hubspot:42:2990'], clock.now())).toEqual([false]);
    await again.commit({ jobs: [job('route:hubspot:42:2990')] });
    expect(await again.pendingJobs()).toBe(0);
    expect((await again.history({ limit: 1 })).total).toBe(3_000 * 2 - 12);
  }, 60_000);

  it('remembers event keys and finished steps for the dedupe window it is given, then lets them go', async () => {
    const clock = fakeClock(T0);
    const s = (await open({ dedupeWindowMs: 5 * 60_000 }, clock)) as LowdbStore;
    for (let n = 1; n <= 100; n++) {
      clock.advance(6_000);
      await s.recordInbound([`in:${n}`], clock.now());
      await s.commit({ jobs: [job(`route:${n}`)] });
      await s.commit({ completeJobs: [`route:${n}`] });
    }
    // Ten minutes of traffic, a five-minute window: what is older (the first 49 of each) goes at the next compaction.
    await s.compact();
    expect(s.stats().dedupeKeys).toBe(2 * 51);
    expect(await s.recordInbound(['in:1', 'in:100'], clock.now())).toEqual([true, false]);
    await s.commit({ jobs: [job('route:1'), job('route:100')] });
    expect((await s.claimJobs(clock.now(), 10, 1000)).map((j) => j.id)).toEqual(['route:1']);
  });

  it('frees the memory and the dated files of what left the retention window, and stays so across a restart', async () => {
    const clock = fakeClock(T0);
    const s = (await open({ retentionMs: 10 * DAY, dedupeWindowMs: DAY, closedTicketRetentionMs: HOUR }, clock)) as LowdbStore;
    // 500 tickets on the first day, each routed and resolved, with its topic and company.
    for (let n = 0; n < 500; n++) {
      const key = `hubspot:42:${n}`;
      const at = T0 + n * 60_000;
      const topic = { groupId: 'grp-vip', topicId: n, link: `https://t.me/c/1/${n}` };
      await s.commit({
        tickets: [ticket(key, { status: 'resolved', companyId: `co-${n % 7}`, topic, receivedAt: at, resolvedAt: at + 1_000, updatedAt: at + 1_000 })],
        history: [entry(key, 1, { at }), entry(key, 2, { at: at + 1_000, kind: 'resolved' })],
      });
    }
    clock.set(T0 + DAY);
    await s.compact();
    expect(s.stats()).toMatchObject({ liveTickets: 0, knownTickets: 500, historyEntries: 1_000 });
    expect(readdirSync(join(dir, 'history'))).toEqual(['2025-01-06.jsonl']);

    // Eleven days later one ticket arrives: the first day has left the window (and the dedupe window).
    clock.set(T0 + 11 * DAY);
    await s.commit({ tickets: [ticket('hubspot:42:9000', { receivedAt: clock.now(), updatedAt: clock.now() })], history: [entry('hubspot:42:9000', 1, { at: clock.now() })] });
    await s.compact();
    expect(s.stats()).toMatchObject({ liveTickets: 1, knownTickets: 1, historyEntries: 1 });
    expect(readdirSync(join(dir, 'history')).filter((f) => f.startsWith('2025-01-06'))).toEqual([]);
    const check = async (st: Store) => {
      expect(await st.getTicket('hubspot:42:3')).toBeNull();
      expect(await st.findTicketByTopic('grp-vip', 3)).toBeNull();
      expect((await st.history({ companyId: 'co-3' })).total).toBe(0);
      expect((await st.history({})).entries.map((e) => e.key)).toEqual(['hubspot:42:9000#1']);
      expect((await st.tickets()).map((t) => t.key)).toEqual(['hubspot:42:9000']);
    };
    await check(s);
    await s.close();
    const again = (await open({ retentionMs: 10 * DAY, dedupeWindowMs: DAY }, clock)) as LowdbStore;
    expect(again.stats()).toMatchObject({ knownTickets: 1, historyEntries: 1 });
    await check(again);
    await again.close();
  });

  it('rewrites a large live file only after as many bytes of changes, so compaction costs the same per change at any size', async () => {
    const clock = fakeClock(T0);
    const s = (await open({ compactWalBytes: 16 << 10, compactWalRecords: 50 }, clock)) as LowdbStore;
    // 2,000 open tickets: a live file far larger than the thresholds.
    for (let i = 0; i < 20; i++) await s.commit({ tickets: Array.from({ length: 100 }, (_, j) => ticket(`hubspot:42:${i * 100 + j}`)) });
    await s.compact();
    const { liveFileBytes, compactions } = s.stats();
    let written = 0;
    for (let n = 0; n < 1_000; n++) {
      const before = s.stats().walBytes;
      clock.advance(1_000);
      await s.commit({ tickets: [ticket(`hubspot:42:${n % 2_000}`, { updatedAt: clock.now(), queueId: `q${n}` })] });
      written += Math.max(0, s.stats().walBytes - before);
    }
    await s.compact();
    // The thresholds alone (50 records) rewrote the live file 71 times; tied to its size, it is
    // rewritten about once per live file's worth of changes.
    const rewrites = s.stats().compactions - compactions - 1;
    expect(rewrites).toBeLessThanOrEqual(Math.ceil(written / liveFileBytes) + 1);
    expect(rewrites).toBeLessThan(20);
    expect(s.stats().walBytes).toBe(0);
    expect(await s.tickets({ status: 'assigned' })).toHaveLength(2_000);
  });

  it('marks steps done without waiting for the flush when asked, and the mark is on disk once the store is idle', async () => {
    const s = (await open()) as LowdbStore;
    await s.commit({ tickets: [ticket('hubspot:42:1')], jobs: [job('post:hubspot:42:1', { ticketKey: 'hubspot:42:1' })] });
    expect(await s.pendingJobs()).toBe(1);
    await s.commit({ completeJobs: ['post:hubspot:42:1'] }, { awaitFlush: false });
    expect(await s.pendingJobs()).toBe(0);
    await s.close();
    stores.pop();
    const again = await open();
    expect(await again.pendingJobs()).toBe(0);
    await again.commit({ jobs: [job('post:hubspot:42:1', { ticketKey: 'hubspot:42:1' })] });
    expect(await again.pendingJobs()).toBe(0);
  });

  it('hands out the steps of a commit made with stepsBeforeSaved before its fdatasync, and of any other commit only after it', async () => {
    const s = (await open()) as LowdbStore;
    const syncs = s.stats().syncs;
    // Nothing between the commit and the claim yields to the event loop, so the fdatasync cannot have finished.
    await s.commit({ jobs: [job('route:hubspot:42:1', { ticketKey: 'hubspot:42:1', kind: 'route' })] }, { stepsBeforeSaved: true });
    expect((await s.claimJobs(T0, 10, 60_000)).map((j) => j.id)).toEqual(['route:hubspot:42:1']);
    expect(s.stats().syncs).toBe(syncs);
    await s.saved();
    expect(s.stats().syncs).toBe(syncs + 1);

    // The same without the option (a commit that only does not wait): visible, but its step waits for the disk.
    await s.commit({ jobs: [job('route:hubspot:42:2', { ticketKey: 'hubspot:42:2', kind: 'route' })] }, { awaitFlush: false });
    expect(await s.claimJobs(T0, 10, 60_000)).toEqual([]);
    await s.saved();
    expect((await s.claimJobs(T0, 10, 60_000)).map((j) => j.id)).toEqual(['route:hubspot:42:2']);
  });

  it('saved() waits for every change made before it, lazy ones included, and returns at once when all is on disk', async () => {
    const s = (await open()) as LowdbStore;
    await s.kvPut('hubspot:notes', 'n1', { status: 'done' }, { awaitFlush: false });
    const syncs = s.stats().syncs;
    await s.saved();
    expect(s.stats().syncs).toBe(syncs + 1);
    await s.saved();
    expect(s.stats().syncs).toBe(syncs + 1);
    await s.close();
    stores.pop();
    expect(await (await open()).kvGet('hubspot:notes', 'n1')).toEqual({ status: 'done' });
  });

  it('saved() keeps working while the log is switched for a compaction (it once spun, waiting for a change not yet written)', async () => {
    const s = (await open({ compactWalRecords: 5 })) as LowdbStore;
    const deadline = Date.now() + 10_000;
    const early = (i: number) => s.commit({ jobs: [job(`route:hubspot:42:${i}`, { ticketKey: `hubspot:42:${i}`, kind: 'route' })] }, { stepsBeforeSaved: true });
    for (let i = 0; i < 40 && Date.now() < deadline; i += 2) {
      // One change written and syncing, the next still queued behind a compaction that waits for that sync.
      await early(i);
      await Promise.all([early(i + 1), s.saved()]);
    }
    expect(await s.pendingJobs()).toBe(40);
    expect(s.stats().compactions).toBeGreaterThan(0);
  }, 15_000);

  it('keeps a connector record put without waiting for the flush, readable at once and on disk after the next write', async () => {
    const s = (await open()) as LowdbStore;
    const syncs = s.stats().syncs;
    await s.kvPut('telegram:topics', 'r1', { topicId: 7 }, { ttlMs: 60_000, awaitFlush: false });
    expect(await s.kvGet('telegram:topics', 'r1')).toEqual({ topicId: 7 });
    // It starts no fdatasync of its own (one would hold up the next write somebody waits for)...
    await new Promise((r) => setTimeout(r, 50));
    expect(s.stats().syncs).toBe(syncs);
    // ...the next write that is waited for saves it too (the log is written in order), in one fdatasync.
    await s.commit({ tickets: [ticket('hubspot:42:1')] });
    expect(s.stats().syncs).toBe(syncs + 1);
    const wal = readFileSync(join(dir, WAL_FILE), 'utf8');
    expect(wal.indexOf('"r1"')).toBeGreaterThan(-1);
    expect(wal.indexOf('"r1"')).toBeLessThan(wal.indexOf('hubspot:42:1'));
    await s.close();
    stores.pop();
    const again = await open();
    expect(await again.kvGet('telegram:topics', 'r1')).toEqual({ topicId: 7 });
  });

  it('drops a torn last line of the log (never acknowledged) and keeps the rest', async () => {
    const s = await open();
    await s.commit({ tickets: [ticket('hubspot:42:1')] });
    await s.commit({ tickets: [ticket('hubspot:42:2')] });
    // What a kill in the middle of a write leaves: close without compacting by copying the files aside first.
    const wal = readFileSync(join(dir, WAL_FILE), 'utf8');
    await s.close();
    stores.pop();
    writeFileSync(join(dir, WAL_FILE), wal + wal.split('\n')[1]!.replace('"n":2', '"n":3').slice(0, 40));
    rmSync(join(dir, LIVE_FILE));
    const again = await open();
    expect((await again.tickets()).map((t) => t.key)).toEqual(['hubspot:42:1', 'hubspot:42:2']);
    await again.commit({ tickets: [ticket('hubspot:42:3')] });
    await again.close();
    stores.pop();
    const third = await open();
    expect((await third.tickets()).map((t) => t.key)).toEqual(['hubspot:42:1', 'hubspot:42:2', 'hubspot:42:3']);
  });

  it('refuses to start over a damaged live file instead of starting empty', async () => {
    const s = await open();
    await s.commit({ tickets: [ticket('hubspot:42:1')] });
    await s.close();
    stores.pop();
    writeFileSync(join(dir, LIVE_FILE), '{"format":"tierline-lowdb","tick');
    await expect(openLowdbStore({ dir, clock: fakeClock() })).rejects.toThrow(/not valid JSON.*Restore the file from a backup/);
    writeFileSync(join(dir, LIVE_FILE), '{"tickets": 3}');
    await expect(openLowdbStore({ dir, clock: fakeClock() })).rejects.toThrow(/not a Tierline lowdb store file/);
    // The failed opens released the lock.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('rejects a malformed batch without saving any of it', async () => {
    const s = await open();
    const bad = { tickets: [ticket('hubspot:42:1')], history: [{ ...entry('hubspot:42:1', 1), at: 'yesterday' }] } as unknown as Batch;
    await expect(s.commit(bad)).rejects.toThrow(/malformed change \(history\[0\]\.at is not a number\); nothing was saved/);
    expect(await s.getTicket('hubspot:42:1')).toBeNull();
    await s.commit({ tickets: [ticket('hubspot:42:1')] });
    expect(await s.getTicket('hubspot:42:1')).not.toBeNull();
  });

  it('exports the whole state, closed history included (what migrate-store imports)', async () => {
    const clock = fakeClock(T0);
    const s = await open({}, clock);
    await s.saveConfig(routingConfig(), { author: 'ana', note: 'first', at: T0 });
    await s.commit({ tickets: [ticket('hubspot:42:1', { status: 'resolved', resolvedAt: T0 })], history: [entry('hubspot:42:1', 1)], jobs: [job('j1')] });
    await s.commit({ completeJobs: ['j0'] });
    await s.recordInbound(['in:1'], T0);
    await s.kvPut('hubspot:tokens', 'p', { sealed: 'x' });
    clock.set(T0 + 2 * DAY);
    await s.compact();
    await s.close();
    stores.pop();
    const state = await readLowdbState(dir, { clock });
    expect(state.configs.map((c) => c.version)).toEqual([1]);
    expect([...state.tickets.keys()]).toEqual(['hubspot:42:1']);
    expect(state.history.map((h) => h.key)).toEqual(['hubspot:42:1#1']);
    expect([...state.jobs.keys()]).toEqual(['j1']);
    expect([...state.doneJobs.keys()]).toEqual(['j0']);
    expect([...state.inbound.keys()]).toEqual(['in:1']);
    expect(state.kv.get('hubspot:tokens')?.get('p')).toEqual({ sealed: 'x' });
  });

  it('answers history queries exactly as the memory store does, from memory, dated files, after a restart and once the retention window has moved', async () => {
    const r = rng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const clock = fakeClock(T0);
    const retentionMs = 30 * DAY;
    const mem = createMemoryStore({ clock, retentionMs });
    const s = await open({ retentionMs }, clock);
    const seqs = new Map<string, number>();
    const tickets = Array.from({ length: 400 }, (_, i) => `hubspot:42:${i}`);
    const both = async (b: Batch) => {
      await mem.commit(b);
      await s.commit(b);
    };
    for (let i = 0; i < 300; i++) {
      const b: Batch = { history: [], tickets: [] };
      for (let k = 0; k < 10; k++) {
        const t = pick(tickets);
        const seq = r() < 0.05 ? 1 : (seqs.get(t) ?? 0) + 1;
        seqs.set(t, Math.max(seq, seqs.get(t) ?? 0));
        // Coarse times, so many entries tie on at and the seq and insertion order decide.
        b.history!.push(entry(t, seq, { at: T0 + Math.floor(r() * 40) * HOUR, kind: pick(['routed', 'first_reply', 'resolved', 'overflow'] as const), agentId: r() < 0.1 ? null : pick(['alice', 'bruno', 'chen']), queueId: pick(['vip', 'general']), tier: r() < 0.2 ? null : pick(['free', 'enterprise'] as const) }));
        if (r() < 0.3) b.tickets!.push(ticket(t, { companyId: r() < 0.1 ? null : r() < 0.05 ? 'co-small' : pick(['co-a', 'co-b', 'co-c']) }));
      }
      await both(b);
      if (i === 150) await s.compact();
    }
    const queries: HistoryQuery[] = [];
    for (let i = 0; i < 150; i++) {
      const q: HistoryQuery = { offset: pick([0, 0, 3, 40, 500]), limit: pick([1, 10, 50, 200]) };
      if (r() < 0.2) q.ticketKey = pick(tickets);
      if (r() < 0.3) q.companyId = pick(['co-a', 'co-small', 'co-none']);
      if (r() < 0.3) q.tier = pick(['free', 'enterprise', 'unknown'] as const);
      if (r() < 0.3) q.queueId = pick(['vip', 'general']);
      if (r() < 0.3) q.agentId = pick(['alice', 'chen']);
      if (r() < 0.3) q.kind = pick(['routed', 'resolved'] as const);
      if (r() < 0.3) q.from = T0 + Math.floor(r() * 40) * HOUR;
      if (r() < 0.3) q.to = T0 + Math.floor(r() * 40) * HOUR;
      queries.push(q);
    }
    const check = async (st: Store) => {
      for (const q of queries) expect(await st.history(q), JSON.stringify(q)).toEqual(await mem.history(q));
    };
    await check(s);
    await s.close();
    stores.pop();
    const again = await open({ retentionMs }, clock);
    await check(again);

    // The window moves past the first 20 of the 40 hours: both forget the same entries, and the index, rebuilt
    // without them, still answers every query alike, before and after a restart.
    const held = again.stats().historyEntries;
    clock.set(T0 + 20 * HOUR + retentionMs);
    await mem.commit({ tickets: [ticket('hubspot:42:late', { receivedAt: clock.now(), updatedAt: clock.now() })] });
    await again.commit({ tickets: [ticket('hubspot:42:late', { receivedAt: clock.now(), updatedAt: clock.now() })] });
    await again.compact();
    expect(again.stats().historyEntries).toBe((await mem.history({ limit: 0 })).total);
    expect(again.stats().historyEntries).toBeLessThan(held * 0.6);
    await check(again);
    await again.close();
    stores.pop();
    await check(await open({ retentionMs }, clock));
  });

  function liveFile(): { tickets: TicketRecord[]; history: unknown[] } {
    return JSON.parse(readFileSync(join(dir, LIVE_FILE), 'utf8')) as { tickets: TicketRecord[]; history: unknown[] };
  }
});

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
