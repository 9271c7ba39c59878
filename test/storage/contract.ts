// The Store contract: every behaviour the pipeline, the worker, the console and the connectors rely on, run against
// each adapter (memory, lowdb, PostgreSQL). The memory store's semantics are the reference.
//
// open({ clock, retentionMs }) returns a fresh, empty store, either bare or as { store, reopen, cleanup }. With
// reopen, the suite also checks that everything survives closing and opening again. The clock is the suite's: stores
// read it for the time of a commit (completed-job ids, inbound windows) and for the retention window (RETENTION_MS,
// longer than any other test's span of time).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Batch, Clock, Store, WaitingTicket } from '../../core/ports.ts';
import { DAY, HOUR, T0, entry, fakeClock, job, routingConfig, ticket, timer, type FakeClock } from './fixtures.ts';

export type StoreHandle = { store: Store; reopen?: () => Promise<Store>; cleanup: () => Promise<void> };
export type OpenStore = (opts: { clock: Clock; retentionMs: number }) => Promise<StoreHandle | Store>;

export const RETENTION_MS = 400 * DAY;

const isStore = (x: StoreHandle | Store): x is Store => typeof (x as Store).commit === 'function';

export function runStoreContract(name: string, open: OpenStore): void {
  describe(`Store contract: ${name}`, () => {
    let clock: FakeClock;
    let handle: StoreHandle;
    let store: Store;

    beforeEach(async () => {
      clock = fakeClock();
      const h = await open({ clock, retentionMs: RETENTION_MS });
      handle = isStore(h) ? { store: h, cleanup: async () => {} } : h;
      store = handle.store;
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup();
    });

    /** Closes and opens the store again; the test is skipped for adapters that cannot (PostgreSQL here). */
    async function reopened(skip: () => void): Promise<Store> {
      if (!handle.reopen) {
        skip();
        throw new Error('unreachable');
      }
      await store.close();
      store = await handle.reopen();
      return store;
    }

    describe('configuration versions', () => {
      it('starts with no configuration', async () => {
        expect(await store.getConfig()).toBeNull();
        expect(await store.configVersions()).toEqual([]);
      });

      it('keeps every version, numbered from 1, newest first, the latest in force', async () => {
        const v1 = await store.saveConfig(routingConfig('one'), { author: 'ana', note: 'first', at: T0 });
        const v2 = await store.saveConfig(routingConfig('two'), { author: 'ben', note: 'second', at: T0 + 1000 });
        expect(v1).toMatchObject({ version: 1, author: 'ana', note: 'first', savedAt: T0 });
        expect(v2.version).toBe(2);
        const cur = await store.getConfig();
        expect(cur?.version).toBe(2);
        expect(cur?.config).toEqual(routingConfig('two'));
        const all = await store.configVersions();
        expect(all.map((v) => [v.version, v.author, v.note])).toEqual([
          [2, 'ben', 'second'],
          [1, 'ana', 'first'],
        ]);
        expect(all[1]!.config).toEqual(routingConfig('one'));
      });

      it('gives concurrent saves distinct consecutive versions', async () => {
        const saved = await Promise.all([1, 2, 3, 4, 5].map((i) => store.saveConfig(routingConfig(`v${i}`), { author: 'ops', note: `save ${i}`, at: T0 + i })));
        expect(saved.map((v) => v.version).sort()).toEqual([1, 2, 3, 4, 5]);
        expect((await store.getConfig())?.version).toBe(5);
      });

      it('hands out copies: changing a returned config changes nothing stored', async () => {
        await store.saveConfig(routingConfig(), { author: 'ana', note: '', at: T0 });
        const got = (await store.getConfig())!;
        got.config.queues[0]!.name = 'changed by a caller';
        expect((await store.getConfig())!.config.queues[0]!.name).not.toBe('changed by a caller');
      });
    });

    describe('inbound event keys', () => {
      it('says which keys are new; a repeat, even within one call, is a duplicate', async () => {
        expect(await store.recordInbound(['a', 'b', 'a'], T0)).toEqual([true, true, false]);
        expect(await store.recordInbound(['b', 'c'], T0 + 1)).toEqual([false, true]);
        expect(await store.recordInbound([], T0 + 2)).toEqual([]);
      });

      it('still knows a key after 25 hours (Salesforce retries an outbound message for 24 hours)', async () => {
        await store.recordInbound(['sf-delivery-1'], T0);
        expect(await store.recordInbound(['sf-delivery-1'], T0 + 25 * HOUR)).toEqual([false]);
      });

      it('forgets keys older than the dedupe window (a week)', async () => {
        await store.recordInbound(['old'], T0);
        expect(await store.recordInbound(['old'], T0 + 8 * DAY)).toEqual([true]);
        expect(await store.recordInbound(['old'], T0 + 8 * DAY + 1)).toEqual([false]);
      });

      it('accepts a key once when two deliveries race', async () => {
        const [a, b] = await Promise.all([store.recordInbound(['race'], T0), store.recordInbound(['race'], T0)]);
        expect([a![0], b![0]].filter(Boolean)).toHaveLength(1);
      });
    });

    describe('tickets', () => {
      it('upserts by key and returns null for an unknown key', async () => {
        expect(await store.getTicket('hubspot:42:1')).toBeNull();
        await store.commit({ tickets: [ticket('hubspot:42:1')] });
        expect(await store.getTicket('hubspot:42:1')).toEqual(ticket('hubspot:42:1'));
        const answered = ticket('hubspot:42:1', { status: 'answered', firstResponseAt: T0 + 60_000, firstResponderId: 'alice', updatedAt: T0 + 60_000, seq: 2 });
        await store.commit({ tickets: [answered] });
        expect(await store.getTicket('hubspot:42:1')).toEqual(answered);
        expect(await store.tickets()).toHaveLength(1);
      });

      it('reads a page of tickets at once: those that exist, each once, as copies', async () => {
        await store.commit({ tickets: [ticket('hubspot:42:1'), ticket('hubspot:42:2'), ticket('hubspot:42:3')] });
        expect(await store.getTickets([])).toEqual([]);
        const got = await store.getTickets(['hubspot:42:3', 'hubspot:42:1', 'hubspot:42:404', 'hubspot:42:1']);
        expect(got.map((t) => t.key).sort()).toEqual(['hubspot:42:1', 'hubspot:42:3']);
        expect(got.find((t) => t.key === 'hubspot:42:1')).toEqual(ticket('hubspot:42:1'));
        got[0]!.status = 'failed';
        expect((await store.getTickets([got[0]!.key]))[0]!.status).toBe(ticket(got[0]!.key).status);
      });

      it('hands out copies: changing a returned ticket changes nothing stored', async () => {
        const t = ticket('hubspot:42:1');
        await store.commit({ tickets: [t] });
        t.status = 'failed';
        const got = (await store.getTicket('hubspot:42:1'))!;
        got.status = 'resolved';
        got.explanation.push('tampered');
        expect(await store.getTicket('hubspot:42:1')).toEqual(ticket('hubspot:42:1'));
      });

      it('lists open tickets (not resolved or failed), by agent and by queue', async () => {
        await store.commit({
          tickets: [
            ticket('hubspot:42:1', { status: 'waiting', agentId: null, queueId: 'general' }),
            ticket('hubspot:42:2', { status: 'assigned', agentId: 'alice', queueId: 'vip' }),
            ticket('hubspot:42:3', { status: 'answered', agentId: 'bruno', queueId: 'vip' }),
            ticket('hubspot:42:4', { status: 'resolved', agentId: 'alice', queueId: 'vip', resolvedAt: T0 }),
            ticket('salesforce:00D1:5', { status: 'failed', agentId: null, queueId: 'general' }),
            ticket('hubspot:42:6', { status: 'received', agentId: null, queueId: null }),
          ],
        });
        const keys = (ts: { key: string }[]) => ts.map((t) => t.key).sort();
        expect(keys(await store.tickets())).toEqual(['hubspot:42:1', 'hubspot:42:2', 'hubspot:42:3', 'hubspot:42:4', 'hubspot:42:6', 'salesforce:00D1:5']);
        expect(keys(await store.tickets({ open: true }))).toEqual(['hubspot:42:1', 'hubspot:42:2', 'hubspot:42:3', 'hubspot:42:6']);
        expect(keys(await store.tickets({ open: false }))).toEqual(['hubspot:42:4', 'salesforce:00D1:5']);
        expect(keys(await store.tickets({ agentId: 'alice' }))).toEqual(['hubspot:42:2', 'hubspot:42:4']);
        expect(keys(await store.tickets({ open: true, agentId: 'alice' }))).toEqual(['hubspot:42:2']);
        expect(keys(await store.tickets({ open: true, queueId: 'vip' }))).toEqual(['hubspot:42:2', 'hubspot:42:3']);
        expect(keys(await store.tickets({ queueId: 'general' }))).toEqual(['hubspot:42:1', 'salesforce:00D1:5']);
        expect(keys(await store.tickets({ open: true, queueId: 'general', status: 'waiting' }))).toEqual(['hubspot:42:1']);
        expect(keys(await store.tickets({ status: 'assigned' }))).toEqual(['hubspot:42:2']);
        expect(keys(await store.tickets({ status: 'resolved' }))).toEqual(['hubspot:42:4']);
        expect(await store.tickets({ open: true, status: 'resolved' })).toEqual([]);
      });

      it('counts open tickets per Telegram group (the topic\'s, else the one chosen for it), as a scan would', async () => {
        await store.commit({
          tickets: [
            ticket('hubspot:42:1', { topicGroupId: 'support-1' }),
            ticket('hubspot:42:2', { topicGroupId: 'support-1', topic: { groupId: 'support-1', topicId: 7, link: 'https://t.me/c/1/7' } }),
            ticket('hubspot:42:3', { topicGroupId: 'support-2' }),
            ticket('hubspot:42:4', { topicGroupId: 'support-2', status: 'resolved', resolvedAt: T0 }),
            ticket('hubspot:42:5', { topicGroupId: null }),
          ],
        });
        expect(await store.openTicketsPerGroup()).toEqual({ 'support-1': 2, 'support-2': 1 });
        const scan: Record<string, number> = {};
        for (const t of await store.tickets({ open: true })) if (t.topicGroupId) scan[t.topicGroupId] = (scan[t.topicGroupId] ?? 0) + 1;
        expect(await store.openTicketsPerGroup()).toEqual(scan);
      });

      it('finds a ticket by its Telegram topic, and not by a topic it left', async () => {
        const topic = { groupId: 'grp-vip', topicId: 17, link: 'https://t.me/c/100/17' };
        await store.commit({ tickets: [ticket('hubspot:42:1', { topic }), ticket('hubspot:42:2', { topic: { ...topic, topicId: 18 } })] });
        expect((await store.findTicketByTopic('grp-vip', 17))?.key).toBe('hubspot:42:1');
        expect((await store.findTicketByTopic('grp-vip', 18))?.key).toBe('hubspot:42:2');
        expect(await store.findTicketByTopic('grp-vip', 19)).toBeNull();
        expect(await store.findTicketByTopic('grp-other', 17)).toBeNull();
        // The topic was deleted and recreated: the old topic id no longer leads to the ticket.
        await store.commit({ tickets: [ticket('hubspot:42:1', { topic: { ...topic, topicId: 30 }, topicGeneration: 1 })] });
        expect(await store.findTicketByTopic('grp-vip', 17)).toBeNull();
        expect((await store.findTicketByTopic('grp-vip', 30))?.topicGeneration).toBe(1);
      });
    });

    describe('counters', () => {
      it('start empty', async () => {
        expect(await store.counters()).toEqual({ status: {}, load: {}, rr: {}, rotation: {}, waiting: {} });
      });

      it('apply operations in order: load never below zero, positions set, waiting tickets added and removed', async () => {
        await store.commit({
          counters: [
            { op: 'load', agentId: 'alice', delta: 2 },
            { op: 'load', agentId: 'bruno', delta: 1 },
            { op: 'load', agentId: 'bruno', delta: -3 },
            { op: 'rr', queueId: 'vip', value: 3 },
            { op: 'rotation', queueId: 'vip', value: 0.25 },
            { op: 'status', agentId: 'alice', status: 'away' },
            { op: 'wait', queueId: 'general', ticketKey: 't1', since: T0 },
            { op: 'wait', queueId: 'general', ticketKey: 't2', since: T0 + 5 },
            { op: 'wait', queueId: 'vip', ticketKey: 't3', since: T0 + 9 },
            { op: 'unwait', queueId: 'vip', ticketKey: 't3' },
          ],
        });
        await store.commit({ counters: [{ op: 'load', agentId: 'alice', delta: -1 }, { op: 'unwait', queueId: 'general', ticketKey: 't1' }, { op: 'rr', queueId: 'vip', value: 4 }] });
        expect(await store.counters()).toEqual({
          status: { alice: 'away' },
          load: { alice: 1, bruno: 0 },
          rr: { vip: 4 },
          rotation: { vip: 0.25 },
          waiting: { general: { t2: T0 + 5 } },
        });
      });

      it('hands out copies', async () => {
        await store.commit({ counters: [{ op: 'load', agentId: 'alice', delta: 1 }] });
        const c = await store.counters();
        c.load.alice = 99;
        const r = await store.routingCounters();
        r.load.alice = 98;
        r.oldestWaiting.general = 1;
        expect((await store.counters()).load.alice).toBe(1);
        expect(await store.routingCounters()).toEqual({ status: {}, load: { alice: 1 }, rr: {}, rotation: {}, oldestWaiting: {} });
      });

      it("give a decision each queue's oldest waiting time, kept right as the oldest leaves, re-waits and returns", async () => {
        const oldest = async () => (await store.routingCounters()).oldestWaiting;
        await store.commit({ counters: [{ op: 'status', agentId: 'alice', status: 'away' }, { op: 'rr', queueId: 'vip', value: 2 }] });
        expect(await store.routingCounters()).toEqual({ status: { alice: 'away' }, load: {}, rr: { vip: 2 }, rotation: {}, oldestWaiting: {} });
        await store.commit({ counters: [3, 1, 2].map((i) => ({ op: 'wait' as const, queueId: 'general', ticketKey: `t${i}`, since: T0 + i * 10 })) });
        expect(await oldest()).toEqual({ general: T0 + 10 });
        await store.commit({ counters: [{ op: 'unwait', queueId: 'general', ticketKey: 't1' }, { op: 'wait', queueId: 'vip', ticketKey: 't1', since: T0 + 10 }] });
        expect(await oldest()).toEqual({ general: T0 + 20, vip: T0 + 10 });
        // The oldest waits again from now (a reopened ticket): the next one is the oldest.
        await store.commit({ counters: [{ op: 'wait', queueId: 'general', ticketKey: 't2', since: T0 + 99 }] });
        expect(await oldest()).toEqual({ general: T0 + 30, vip: T0 + 10 });
        await store.commit({ counters: [{ op: 'wait', queueId: 'general', ticketKey: 't0', since: T0 }] });
        expect(await oldest()).toEqual({ general: T0, vip: T0 + 10 });
        await store.commit({ counters: ['t0', 't2', 't3'].map((k) => ({ op: 'unwait' as const, queueId: 'general', ticketKey: k })) });
        expect(await oldest()).toEqual({ vip: T0 + 10 });
        // The same as the full counters say.
        const full = await store.counters();
        expect(Object.fromEntries(Object.entries(full.waiting).map(([q, w]) => [q, Math.min(...Object.values(w))]))).toEqual(await oldest());
      });

      it('page through the waiting tickets of some queues, oldest first, ties by ticket key', async () => {
        await store.commit({
          counters: [
            { op: 'wait', queueId: 'general', ticketKey: 'c', since: T0 + 5 },
            { op: 'wait', queueId: 'general', ticketKey: 'a', since: T0 + 5 },
            { op: 'wait', queueId: 'vip', ticketKey: 'b', since: T0 + 5 },
            { op: 'wait', queueId: 'vip', ticketKey: 'z', since: T0 },
            { op: 'wait', queueId: 'general', ticketKey: 'y', since: T0 + 9 },
            { op: 'wait', queueId: 'other', ticketKey: 'x', since: T0 - 100 },
          ],
        });
        const all = await store.waitingTickets(['general', 'vip', 'general'], { limit: 100 });
        expect(all.map((w) => `${w.queueId}/${w.key}@${w.since - T0}`)).toEqual(['vip/z@0', 'general/a@5', 'vip/b@5', 'general/c@5', 'general/y@9']);
        const pages: string[][] = [];
        let after: WaitingTicket | undefined;
        for (;;) {
          const page = await store.waitingTickets(['general', 'vip'], { limit: 2, ...(after ? { after } : {}) });
          if (!page.length) break;
          pages.push(page.map((w) => w.key));
          after = page.at(-1);
        }
        expect(pages).toEqual([['z', 'a'], ['b', 'c'], ['y']]);
        expect(await store.waitingTickets(['nobody'], { limit: 10 })).toEqual([]);
        expect(await store.waitingTickets(['general'], { limit: 0 })).toEqual([]);
      });
    });

    describe('commit', () => {
      it('applies a whole routing outcome at once', async () => {
        const k = 'hubspot:42:1';
        const batch: Batch = {
          tickets: [ticket(k)],
          jobs: [job('topic:1', { kind: 'topic', ticketKey: k }), job('post:1', { kind: 'post', ticketKey: k }), job('writeback:1', { kind: 'writeback', ticketKey: k })],
          timers: [timer(`sla_reminder:${k}`, T0 + 12 * 60_000, { kind: 'sla_reminder', ticketKey: k }), timer(`sla_breach:${k}`, T0 + 15 * 60_000, { ticketKey: k })],
          history: [entry(k, 1, { explanation: ['Rule "enterprise" matched', 'Alice picked: least busy'] })],
          counters: [{ op: 'load', agentId: 'alice', delta: 1 }, { op: 'rr', queueId: 'vip', value: 1 }],
        };
        await store.commit(batch);
        expect(await store.getTicket(k)).toEqual(ticket(k));
        expect(await store.pendingJobs()).toBe(3);
        expect((await store.dueTimers(T0 + DAY, 10)).map((t) => t.id)).toEqual([`sla_reminder:${k}`, `sla_breach:${k}`]);
        expect((await store.history({ ticketKey: k })).entries).toEqual([entry(k, 1, { explanation: ['Rule "enterprise" matched', 'Alice picked: least busy'] })]);
        expect((await store.counters()).load).toEqual({ alice: 1 });
      });

      it('accepts an empty batch', async () => {
        await store.commit({});
        await store.commit({ tickets: [], jobs: [], history: [] });
        expect(await store.tickets()).toEqual([]);
      });

      it('does not let a caller change a committed batch afterwards', async () => {
        const b: Batch = { tickets: [ticket('hubspot:42:1')], jobs: [job('j1')], history: [entry('hubspot:42:1', 1)] };
        await store.commit(b);
        b.tickets![0]!.status = 'failed';
        b.jobs![0]!.payload.text = 'changed';
        b.history![0]!.text = 'changed';
        expect((await store.getTicket('hubspot:42:1'))!.status).toBe('assigned');
        expect((await store.claimJobs(T0, 10, 1000))[0]!.payload).toEqual({ text: 'step j1' });
        expect((await store.history({})).entries[0]!.text).toBe(entry('hubspot:42:1', 1).text);
      });
    });

    describe('jobs (the outbox)', () => {
      it('claims due jobs oldest nextAt first (then createdAt), up to the limit, leasing them', async () => {
        await store.commit({
          jobs: [
            job('later', { nextAt: T0 + 5000 }),
            job('b', { nextAt: T0 + 1000, createdAt: T0 + 2 }),
            job('a', { nextAt: T0 + 1000, createdAt: T0 + 1 }),
            job('first', { nextAt: T0 - 1000 }),
            job('future', { nextAt: T0 + DAY }),
          ],
        });
        const got = await store.claimJobs(T0 + 5000, 3, 30_000);
        expect(got.map((j) => j.id)).toEqual(['first', 'a', 'b']);
        for (const j of got) {
          expect(j.leaseUntil).toBe(T0 + 5000 + 30_000);
          expect(j.attempts).toBe(0);
          expect(j.claims).toBe(1);
        }
        expect((await store.claimJobs(T0 + 5000, 10, 30_000)).map((j) => j.id)).toEqual(['later']);
        // Leased jobs stay pending but are not handed out again until the lease ends.
        expect(await store.claimJobs(T0 + 5000, 10, 30_000)).toEqual([]);
        expect(await store.pendingJobs()).toBe(5);
        // Handed out again once the lease ends, and counted: a connector may then no longer assume nothing was sent.
        expect((await store.claimJobs(T0 + 5000 + 30_000, 10, 30_000)).map((j) => [j.id, j.claims])).toEqual([['first', 2], ['a', 2], ['b', 2], ['later', 2]]);
        expect(await store.claimJobs(T0, 0, 1000)).toEqual([]);
      });

      it('claims jobs created in the same millisecond in the order they were enqueued, across a reopen', async () => {
        // A reply and a /resolve fetched together after a restart become two steps of one topic with one timestamp.
        await store.commit({ jobs: [job('reply', { nextAt: T0, createdAt: T0 }), job('resolve', { nextAt: T0, createdAt: T0 })] });
        await store.commit({ jobs: [job('third', { nextAt: T0, createdAt: T0 })] });
        expect((await store.claimJobs(T0, 10, 1000)).map((j) => j.id)).toEqual(['reply', 'resolve', 'third']);
        if (!handle.reopen) return;
        store = await reopened(() => undefined);
        expect((await store.claimJobs(T0, 10, 1000)).map((j) => j.id)).toEqual(['reply', 'resolve', 'third']);
      });

      it('ignores a second enqueue of the same id, pending or completed', async () => {
        await store.commit({ jobs: [job('topic:t1', { payload: { first: true } })] });
        await store.commit({ jobs: [job('topic:t1', { payload: { first: false } })] });
        expect(await store.pendingJobs()).toBe(1);
        expect((await store.claimJobs(T0, 10, 1000))[0]!.payload).toEqual({ first: true });
        await store.commit({ completeJobs: ['topic:t1'] });
        expect(await store.pendingJobs()).toBe(0);
        clock.advance(HOUR);
        // A crashed step replayed after its job completed must not run the side effect again.
        await store.commit({ jobs: [job('topic:t1', { nextAt: T0 + HOUR })] });
        expect(await store.pendingJobs()).toBe(0);
        expect(await store.claimJobs(T0 + 2 * HOUR, 10, 1000)).toEqual([]);
      });

      it('completes before enqueuing within one batch (a step that re-enqueues itself as it finishes is done)', async () => {
        await store.commit({ jobs: [job('route:t1')] });
        await store.commit({ completeJobs: ['route:t1'], jobs: [job('route:t1'), job('topic:t1')] });
        expect((await store.claimJobs(T0, 10, 1000)).map((j) => j.id)).toEqual(['topic:t1']);
      });

      it('a failure with a retry time counts the attempt, keeps the error and frees the lease', async () => {
        await store.commit({ jobs: [job('post:1')] });
        await store.claimJobs(T0, 1, 60_000);
        await store.failJob('post:1', 'upstream: HubSpot answered 502', T0 + 10_000);
        expect(await store.claimJobs(T0 + 9_999, 10, 60_000)).toEqual([]);
        const [again] = await store.claimJobs(T0 + 10_000, 10, 60_000);
        expect(again).toMatchObject({ id: 'post:1', attempts: 1, lastError: 'upstream: HubSpot answered 502', nextAt: T0 + 10_000, status: 'pending', claims: 2 });
        await store.failJob('post:1', 'upstream: HubSpot answered 503', T0 + 20_000);
        expect((await store.claimJobs(T0 + 20_000, 10, 60_000))[0]).toMatchObject({ attempts: 2, lastError: 'upstream: HubSpot answered 503' });
      });

      it('a failure without a retry time makes a dead letter, which an admin can retry', async () => {
        await store.commit({ jobs: [job('writeback:1'), job('writeback:2')] });
        await store.failJob('writeback:1', 'invalid_input: property tierline_queue does not exist', null);
        expect((await store.deadJobs()).map((j) => [j.id, j.status, j.attempts, j.lastError])).toEqual([['writeback:1', 'dead', 1, 'invalid_input: property tierline_queue does not exist']]);
        expect(await store.pendingJobs()).toBe(1);
        expect((await store.claimJobs(T0 + DAY, 10, 1000)).map((j) => j.id)).toEqual(['writeback:2']);
        await store.commit({ completeJobs: ['writeback:2'] });

        expect(await store.retryDeadJob('writeback:1', T0 + 2 * DAY)).toBe(true);
        expect(await store.deadJobs()).toEqual([]);
        expect(await store.pendingJobs()).toBe(1);
        const [retried] = await store.claimJobs(T0 + 2 * DAY, 1, 1000);
        expect(retried).toMatchObject({ id: 'writeback:1', status: 'pending', nextAt: T0 + 2 * DAY, attempts: 0 });
        expect(await store.retryDeadJob('writeback:1', T0 + 2 * DAY)).toBe(false);
        expect(await store.retryDeadJob('no-such-job', T0)).toBe(false);
      });

      it('failing an unknown or completed job is harmless', async () => {
        await store.failJob('nope', 'x', null);
        await store.commit({ jobs: [job('j')] });
        await store.commit({ completeJobs: ['j'] });
        await store.failJob('j', 'late failure report', T0 + 1000);
        expect(await store.pendingJobs()).toBe(0);
        expect(await store.deadJobs()).toEqual([]);
      });
    });

    describe('timers', () => {
      it('returns due timers earliest first, up to the limit, until they are cancelled', async () => {
        await store.commit({
          timers: [timer('sla_breach:t2', T0 + 2000), timer('sla_reminder:t1', T0 + 1000, { kind: 'sla_reminder' }), timer('overflow_check:t3', T0 + 60_000, { kind: 'overflow_check' })],
        });
        expect((await store.dueTimers(T0 + 999, 10)).map((t) => t.id)).toEqual([]);
        expect((await store.dueTimers(T0 + 5000, 10)).map((t) => t.id)).toEqual(['sla_reminder:t1', 'sla_breach:t2']);
        expect((await store.dueTimers(T0 + 5000, 1)).map((t) => t.id)).toEqual(['sla_reminder:t1']);
        // Firing a timer is the pipeline cancelling it in its commit; until then it stays due.
        await store.commit({ cancelTimers: ['sla_reminder:t1'] });
        expect((await store.dueTimers(T0 + 5000, 10)).map((t) => t.id)).toEqual(['sla_breach:t2']);
      });

      it('re-arming a timer moves its deadline', async () => {
        await store.commit({ timers: [timer('sla_breach:t1', T0 + 1000)] });
        await store.commit({ timers: [timer('sla_breach:t1', T0 + HOUR)] });
        expect(await store.dueTimers(T0 + 1000, 10)).toEqual([]);
        expect(await store.dueTimers(T0 + HOUR, 10)).toEqual([timer('sla_breach:t1', T0 + HOUR)]);
      });

      it('sees a timer armed earlier than every one it saw before, and a re-armed earliest timer move later', async () => {
        await store.commit({ timers: [timer('sla_breach:t1', T0 + HOUR), timer('sla_breach:t2', T0 + 2 * HOUR)] });
        expect(await store.dueTimers(T0, 10)).toEqual([]);
        await store.commit({ timers: [timer('sla_reminder:t3', T0 + 1000, { kind: 'sla_reminder' })] });
        expect((await store.dueTimers(T0 + 1000, 10)).map((t) => t.id)).toEqual(['sla_reminder:t3']);
        await store.commit({ cancelTimers: ['sla_reminder:t3'], timers: [timer('sla_breach:t1', T0 + 3 * HOUR)] });
        expect(await store.dueTimers(T0 + HOUR, 10)).toEqual([]);
        expect((await store.dueTimers(T0 + 2 * HOUR, 10)).map((t) => t.id)).toEqual(['sla_breach:t2']);
        expect((await store.dueTimers(T0 + 3 * HOUR, 10)).map((t) => t.id)).toEqual(['sla_breach:t2', 'sla_breach:t1']);
      });

      it('keeps agent timers (offline grace) with their agent', async () => {
        const t = { id: 'offline_grace:bruno', kind: 'offline_grace' as const, at: T0 + 300_000, agentId: 'bruno' };
        await store.commit({ timers: [t] });
        expect(await store.dueTimers(T0 + 300_000, 10)).toEqual([t]);
        await store.commit({ cancelTimers: ['offline_grace:bruno', 'never-armed'] });
        expect(await store.dueTimers(T0 + DAY, 10)).toEqual([]);
      });
    });

    describe('history', () => {
      const A = 'hubspot:42:1';
      const B = 'hubspot:42:2';
      const C = 'salesforce:00D1:3';
      async function seed(): Promise<void> {
        await store.commit({
          tickets: [ticket(A, { companyId: 'co-acme' }), ticket(B, { companyId: 'co-globex' }), ticket(C, { companyId: 'co-acme' })],
          history: [
            entry(A, 1, { at: T0 + 1000, kind: 'routed', tier: 'enterprise', queueId: 'vip', agentId: 'alice' }),
            entry(B, 1, { at: T0 + 2000, kind: 'routed', tier: null, queueId: 'general', agentId: null }),
            entry(A, 2, { at: T0 + 3000, kind: 'first_reply', tier: 'enterprise', queueId: 'vip', agentId: 'alice' }),
          ],
        });
        await store.commit({
          history: [
            entry(C, 1, { at: T0 + 4000, kind: 'routed', tier: 'premium', queueId: 'priority', agentId: 'bruno' }),
            entry(B, 2, { at: T0 + 5000, kind: 'overflow', tier: null, queueId: 'vip', agentId: 'alice' }),
            entry(A, 3, { at: T0 + 6000, kind: 'resolved', tier: 'enterprise', queueId: 'vip', agentId: 'alice' }),
          ],
        });
      }
      const keys = (r: { entries: { key: string }[] }) => r.entries.map((e) => e.key);

      it('lists newest first with the total', async () => {
        await seed();
        const r = await store.history({});
        expect(r.total).toBe(6);
        expect(keys(r)).toEqual([`${A}#3`, `${B}#2`, `${C}#1`, `${A}#2`, `${B}#1`, `${A}#1`]);
        expect(r.entries[0]).toEqual(entry(A, 3, { at: T0 + 6000, kind: 'resolved', tier: 'enterprise', queueId: 'vip', agentId: 'alice' }));
      });

      it('filters by ticket, company, tier (unknown for none), queue, agent, kind and time', async () => {
        await seed();
        expect(keys(await store.history({ ticketKey: A }))).toEqual([`${A}#3`, `${A}#2`, `${A}#1`]);
        expect(keys(await store.history({ companyId: 'co-acme' }))).toEqual([`${A}#3`, `${C}#1`, `${A}#2`, `${A}#1`]);
        expect(keys(await store.history({ tier: 'unknown' }))).toEqual([`${B}#2`, `${B}#1`]);
        expect(keys(await store.history({ tier: 'premium' }))).toEqual([`${C}#1`]);
        expect(keys(await store.history({ queueId: 'vip' }))).toEqual([`${A}#3`, `${B}#2`, `${A}#2`, `${A}#1`]);
        expect(keys(await store.history({ agentId: 'alice' }))).toEqual([`${A}#3`, `${B}#2`, `${A}#2`, `${A}#1`]);
        expect(keys(await store.history({ kind: 'routed' }))).toEqual([`${C}#1`, `${B}#1`, `${A}#1`]);
        expect(keys(await store.history({ from: T0 + 2000, to: T0 + 5000 }))).toEqual([`${B}#2`, `${C}#1`, `${A}#2`, `${B}#1`]);
        expect(keys(await store.history({ from: T0 + 6000 }))).toEqual([`${A}#3`]);
        expect(keys(await store.history({ to: T0 + 1000 }))).toEqual([`${A}#1`]);
        expect(keys(await store.history({ companyId: 'co-acme', kind: 'routed', queueId: 'priority' }))).toEqual([`${C}#1`]);
        expect(keys(await store.history({ ticketKey: A, from: T0 + 2000, to: T0 + 4000 }))).toEqual([`${A}#2`]);
        for (const q of [{ ticketKey: 'hubspot:42:404' }, { companyId: 'co-none' }, { queueId: 'nope' }, { agentId: 'nobody' }, { kind: 'escalated' as const }, { from: T0 + 7000 }])
          expect(await store.history(q)).toEqual({ total: 0, entries: [] });
      });

      it('follows the ticket when its company changes', async () => {
        await seed();
        await store.commit({ tickets: [ticket(B, { companyId: 'co-acme' })] });
        expect((await store.history({ companyId: 'co-acme' })).total).toBe(6);
        expect((await store.history({ companyId: 'co-globex' })).total).toBe(0);
      });

      it('pages with offset and limit; the total counts every match', async () => {
        await seed();
        const p1 = await store.history({ limit: 2 });
        const p2 = await store.history({ limit: 2, offset: 2 });
        const p3 = await store.history({ limit: 2, offset: 4 });
        const p4 = await store.history({ limit: 2, offset: 6 });
        expect([p1.total, p2.total, p3.total, p4.total]).toEqual([6, 6, 6, 6]);
        expect([...keys(p1), ...keys(p2), ...keys(p3)]).toEqual(keys(await store.history({})));
        expect(p4.entries).toEqual([]);
        expect(keys(await store.history({ agentId: 'alice', offset: 1, limit: 2 }))).toEqual([`${B}#2`, `${A}#2`]);
      });

      it('returns 50 entries unless asked for more', async () => {
        await store.commit({ history: Array.from({ length: 60 }, (_, i) => entry(A, i + 1)) });
        const r = await store.history({});
        expect(r.total).toBe(60);
        expect(r.entries).toHaveLength(50);
        expect(r.entries[0]!.seq).toBe(60);
        expect((await store.history({ limit: 100 })).entries).toHaveLength(60);
      });

      it('orders entries at the same time by seq, newest first', async () => {
        await store.commit({ history: [entry(A, 1, { at: T0 }), entry(A, 3, { at: T0 }), entry(A, 2, { at: T0 })] });
        expect(keys(await store.history({}))).toEqual([`${A}#3`, `${A}#2`, `${A}#1`]);
      });

      it('keeps the first entry written under a key (a retried step writes the same entry again)', async () => {
        await store.commit({ history: [entry(A, 1, { text: 'first write' })] });
        await store.commit({ history: [entry(A, 1, { text: 'second write' }), entry(A, 2)] });
        const r = await store.history({ ticketKey: A });
        expect(r.total).toBe(2);
        expect(r.entries.find((e) => e.seq === 1)!.text).toBe('first write');
      });
    });

    describe('retention window', () => {
      it('forgets history entries and closed tickets that leave the window, across a restart; open tickets stay', async (ctx) => {
        const OLD = 'hubspot:42:1';
        const OPEN = 'hubspot:42:2';
        const RECENT = 'salesforce:00D1:3';
        const topic = (topicId: number) => ({ groupId: 'support-1', topicId, link: `https://t.me/c/1/${topicId}` });
        await store.commit({
          tickets: [
            ticket(OLD, { status: 'resolved', resolvedAt: T0 + HOUR, updatedAt: T0 + HOUR, topic: topic(7) }),
            ticket(OPEN, { topic: topic(8) }),
            ticket(RECENT, { status: 'resolved', receivedAt: T0 + 300 * DAY, resolvedAt: T0 + 300 * DAY, updatedAt: T0 + 300 * DAY, topic: topic(9) }),
          ],
          history: [entry(OLD, 1), entry(OPEN, 1), entry(RECENT, 1, { at: T0 + 300 * DAY })],
        });
        clock.set(T0 + HOUR + RETENTION_MS - 1);
        expect(await store.getTicket(OLD)).not.toBeNull();

        // A day past the window of the old ticket's resolution and the first two entries.
        clock.set(T0 + HOUR + RETENTION_MS + DAY);
        const check = async (s: Store, also: string[] = []) => {
          expect(await s.getTicket(OLD)).toBeNull();
          expect((await s.getTickets([OLD, OPEN])).map((t) => t.key)).toEqual([OPEN]);
          expect(await s.findTicketByTopic('support-1', 7)).toBeNull();
          expect((await s.getTicket(OPEN))?.status).toBe('assigned');
          expect((await s.findTicketByTopic('support-1', 9))?.key).toBe(RECENT);
          expect((await s.tickets()).map((t) => t.key).sort()).toEqual([OPEN, ...also, RECENT]);
          expect((await s.tickets({ open: false })).map((t) => t.key)).toEqual([RECENT]);
          const h = await s.history({});
          expect(h.total).toBe(1);
          expect(h.entries.map((e) => e.key)).toEqual([`${RECENT}#1`]);
          expect((await s.history({ ticketKey: OLD })).total).toBe(0);
          expect((await s.history({ from: T0 - DAY })).total).toBe(1);
        };
        await check(store);
        // Another commit (and, in stores that have one, a compaction) frees the space; nothing that is kept changes.
        await store.commit({ tickets: [ticket('hubspot:42:4', { receivedAt: clock.now(), updatedAt: clock.now() })] });
        await check(store, ['hubspot:42:4']);
        await check(await reopened(() => ctx.skip()), ['hubspot:42:4']);
      });
    });

    describe('connector records (kv)', () => {
      it('puts, overwrites, lists per namespace and deletes', async () => {
        expect(await store.kvGet('hubspot:tokens', 'portal-42')).toBeNull();
        await store.kvPut('hubspot:tokens', 'portal-42', { sealed: 'v1.abc', expiresAt: T0 + HOUR });
        await store.kvPut('hubspot:tokens', 'portal-43', { sealed: 'v1.def', expiresAt: T0 + HOUR });
        await store.kvPut('salesforce:replay', '00D1', 'replay-id-99');
        await store.kvPut('hubspot:tokens', 'portal-42', { sealed: 'v1.xyz', expiresAt: T0 + 2 * HOUR });
        expect(await store.kvGet('hubspot:tokens', 'portal-42')).toEqual({ sealed: 'v1.xyz', expiresAt: T0 + 2 * HOUR });
        expect(await store.kvGet('salesforce:replay', '00D1')).toBe('replay-id-99');
        const list = await store.kvList<{ sealed: string }>('hubspot:tokens');
        expect(list.map((r) => [r.key, r.value.sealed]).sort()).toEqual([
          ['portal-42', 'v1.xyz'],
          ['portal-43', 'v1.def'],
        ]);
        expect(await store.kvList('telegram:hashes')).toEqual([]);
        expect(await store.kvDelete('hubspot:tokens', 'portal-42')).toBe(true);
        expect(await store.kvDelete('hubspot:tokens', 'portal-42')).toBe(false);
        expect(await store.kvGet('hubspot:tokens', 'portal-42')).toBeNull();
        expect((await store.kvList('hubspot:tokens')).map((r) => r.key)).toEqual(['portal-43']);
      });

      it('forgets a record put with a time to live once it expires, and keeps it across a restart until then', async (ctx) => {
        await store.kvPut('telegram:topics', 'r-1', { topicId: 7 }, { ttlMs: HOUR });
        await store.kvPut('telegram:topics', 'r-2', { topicId: 8 });
        await store.kvPut('telegram:topics', 'r-3', { topicId: 9 }, { ttlMs: HOUR });
        await store.kvPut('telegram:topics', 'r-3', { topicId: 9 }); // put again without one: kept for good
        clock.advance(HOUR - 1);
        expect(await store.kvGet('telegram:topics', 'r-1')).toEqual({ topicId: 7 });
        if (handle.reopen) store = await reopened(() => ctx.skip());
        expect(await store.kvGet('telegram:topics', 'r-1')).toEqual({ topicId: 7 });
        clock.advance(1);
        expect(await store.kvGet('telegram:topics', 'r-1')).toBeNull();
        expect((await store.kvList('telegram:topics')).map((r) => r.key)).toEqual(['r-2', 'r-3']);
        if (handle.reopen) store = await reopened(() => ctx.skip());
        expect(await store.kvGet('telegram:topics', 'r-1')).toBeNull();
        expect((await store.kvList('telegram:topics')).map((r) => r.key)).toEqual(['r-2', 'r-3']);
      });

      it('keeps numbers, lists and nested records; neither the writer nor a reader can change what is stored', async () => {
        const v = { hashes: { '1001': '-8812', '1002': '77' }, list: [1, 2, 3], n: 0, flag: false, none: null };
        const written = structuredClone(v);
        await store.kvPut('telegram:hashes', 'acct', written);
        written.list.push(9);
        written.hashes['1001'] = 'changed';
        const got = await store.kvGet<typeof v>('telegram:hashes', 'acct');
        expect(got).toEqual(v);
        // A store may share one frozen value between readers (mutation throws) or hand out a copy (mutation is lost).
        try {
          got!.list.push(4);
          got!.hashes['1002'] = 'changed';
        } catch (e) {
          expect(e).toBeInstanceOf(TypeError);
        }
        expect(await store.kvGet('telegram:hashes', 'acct')).toEqual(v);
        expect((await store.kvList('telegram:hashes')).map((r) => r.value)).toEqual([v]);
      });
    });

    describe('exclusive sections', () => {
      it('run one at a time, in call order, and a failing one does not block the next', async () => {
        const events: string[] = [];
        const section = (name: string, fail = false) =>
          store.exclusive(async () => {
            events.push(`${name}:in`);
            await new Promise((r) => setTimeout(r, 2));
            await store.counters();
            events.push(`${name}:out`);
            if (fail) throw new Error(`${name} failed`);
            return name;
          });
        const results = await Promise.allSettled([section('a'), section('b', true), section('c')]);
        expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a', 'b failed', 'c']);
        expect(events).toEqual(['a:in', 'a:out', 'b:in', 'b:out', 'c:in', 'c:out']);
      });

      it('make read-then-commit decisions on counters safe from each other', async () => {
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.exclusive(async () => {
              const c = await store.counters();
              await new Promise((r) => setTimeout(r, 0));
              await store.commit({ counters: [{ op: 'rr', queueId: 'vip', value: (c.rr.vip ?? 0) + 1 }, { op: 'load', agentId: 'alice', delta: 1 }] });
            }),
          ),
        );
        expect(await store.counters()).toMatchObject({ rr: { vip: 20 }, load: { alice: 20 } });
      });
    });

    describe('persistence across a restart', () => {
      it('keeps configuration, tickets, jobs, timers, history, counters, connector records and dedupe keys', async ({ skip }) => {
        const k = 'hubspot:42:1';
        const topic = { groupId: 'grp-vip', topicId: 7, link: 'https://t.me/c/100/7' };
        await store.saveConfig(routingConfig('one'), { author: 'ana', note: 'first', at: T0 });
        await store.saveConfig(routingConfig('two'), { author: 'ana', note: 'second', at: T0 + 1 });
        expect(await store.recordInbound(['in:evt-1', 'in:evt-2'], T0)).toEqual([true, true]);
        await store.commit({
          tickets: [ticket(k, { topic }), ticket('hubspot:42:2', { status: 'resolved', resolvedAt: T0 })],
          jobs: [job('post:1', { ticketKey: k }), job('writeback:1', { ticketKey: k, nextAt: T0 + 1000 }), job('done:1', { ticketKey: k }), job('dead:1', { ticketKey: k })],
          timers: [timer(`sla_breach:${k}`, T0 + 15 * 60_000, { ticketKey: k }), { id: 'offline_grace:bruno', kind: 'offline_grace', at: T0 + 60_000, agentId: 'bruno' }],
          history: [entry(k, 1), entry(k, 2, { tier: null, explanation: ['why'] })],
          counters: [{ op: 'load', agentId: 'alice', delta: 2 }, { op: 'rr', queueId: 'vip', value: 5 }, { op: 'wait', queueId: 'general', ticketKey: 'hubspot:42:9', since: T0 }, { op: 'status', agentId: 'bruno', status: 'offline' }],
        });
        await store.commit({ completeJobs: ['done:1'] });
        await store.failJob('dead:1', 'invalid_input: no such property', null);
        await store.failJob('writeback:1', 'upstream: 502', T0 + 5000);
        await store.kvPut('hubspot:tokens', 'portal-42', { sealed: 'v1.abc' });
        await store.kvPut('hubspot:tokens', 'portal-43', { sealed: 'v1.def' });
        await store.kvDelete('hubspot:tokens', 'portal-43');
        // A claimed job whose process died is free again after the restart.
        expect((await store.claimJobs(T0, 1, HOUR)).map((j) => j.id)).toEqual(['post:1']);

        const before = {
          config: await store.getConfig(),
          versions: await store.configVersions(),
          tickets: await store.tickets(),
          counters: await store.counters(),
          history: await store.history({ limit: 100 }),
          timers: await store.dueTimers(T0 + DAY, 10),
          dead: await store.deadJobs(),
          kv: await store.kvList('hubspot:tokens'),
        };
        const s = await reopened(skip);
        expect(await s.getConfig()).toEqual(before.config);
        expect(await s.configVersions()).toEqual(before.versions);
        expect(await s.tickets()).toEqual(before.tickets);
        expect((await s.findTicketByTopic('grp-vip', 7))?.key).toBe(k);
        expect(await s.counters()).toEqual(before.counters);
        expect(await s.history({ limit: 100 })).toEqual(before.history);
        expect((await s.history({ tier: 'unknown' })).total).toBe(1);
        expect(await s.dueTimers(T0 + DAY, 10)).toEqual(before.timers);
        expect(await s.deadJobs()).toEqual(before.dead);
        expect(await s.kvList('hubspot:tokens')).toEqual(before.kv);
        expect(await s.recordInbound(['in:evt-1', 'in:evt-3'], T0 + HOUR)).toEqual([false, true]);
        await s.commit({ jobs: [job('done:1', { ticketKey: k })] });
        expect(await s.pendingJobs()).toBe(2);
        const claimed = await s.claimJobs(T0 + 5000, 10, 1000);
        expect(claimed.map((j) => [j.id, j.attempts])).toEqual([
          ['post:1', 0],
          ['writeback:1', 1],
        ]);
        expect(await s.retryDeadJob('dead:1', T0 + 6000)).toBe(true);
        // And again: what the reopened store wrote survives too.
        await s.saveConfig(routingConfig('three'), { author: 'ben', note: 'third', at: T0 + 2 });
        const s2 = await reopened(skip);
        expect((await s2.getConfig())?.version).toBe(3);
        expect(await s2.deadJobs()).toEqual([]);
        expect(await s2.pendingJobs()).toBe(3);
        expect(await s2.recordInbound(['in:evt-3'], T0 + 2 * HOUR)).toEqual([false]);
      });
    });
  });
}
