// Moving a single-instance store into PostgreSQL: everything arrives (tickets, history in order, pending and dead
// steps, completed-step memory, timers, counters, connector records, config versions, seen webhook keys), and a
// second run is refused instead of doubling anything.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { RoutingConfig } from '../../../core/config.ts';
import { applyBatch, emptyState, type MemoryState } from '../../../server/storage/memory-store.ts';
import { importState, stateFromJson } from '../../../server/storage/postgres/migrate-store.ts';
import { historyEntry, job, postgresSkipReason, ticket, timer, usePostgres } from './helpers.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../server/storage/postgres/migrate-store.ts', import.meta.url));

/** Maps as [key, value] pairs: how a JSON file keeps the memory store's state. */
const asJson = (s: MemoryState) => JSON.stringify(s, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v));

function sampleState(): MemoryState {
  const s = emptyState();
  const cfg = (q: string) => ({ rules: [], defaultQueue: q, queues: [], agents: [], groups: [] }) as unknown as RoutingConfig;
  s.configs.push({ version: 1, config: cfg('general'), savedAt: 1_000, author: 'amy', note: 'first' }, { version: 2, config: cfg('vip'), savedAt: 2_000, author: 'bo', note: 'second' });
  applyBatch(
    s,
    {
      tickets: [ticket('hubspot:42:1', { topic: { groupId: 'g1', topicId: 7, link: 'https://t.me/c/1/7' } }), ticket('hubspot:42:2', { status: 'resolved', agentId: 'bob' }), ticket('salesforce:00D:3', { status: 'waiting', agentId: null })],
      history: [historyEntry('hubspot:42:1', 1), historyEntry('hubspot:42:2', 1, { at: 900 }), historyEntry('hubspot:42:2', 2, { kind: 'resolved', at: 5_000, explanation: ['done'] })],
      jobs: [job('post:hubspot:42:1#1', { kind: 'post', ticketKey: 'hubspot:42:1', leaseUntil: 99_999 }), job('wb:hubspot:42:2#2', { kind: 'writeback', ticketKey: 'hubspot:42:2' })],
      timers: [timer('sla_breach:hubspot:42:1', 9_000), { id: 'offline_grace:bob', kind: 'offline_grace', at: 8_000, agentId: 'bob' }],
      counters: [
        { op: 'load', agentId: 'ivan', delta: 2 },
        { op: 'load', agentId: 'bob', delta: 0 },
        { op: 'status', agentId: 'bob', status: 'away' },
        { op: 'rr', queueId: 'general', value: 3 },
        { op: 'rotation', queueId: 'vip', value: 0.25 },
        { op: 'wait', queueId: 'general', ticketKey: 'salesforce:00D:3', since: 1_500 },
      ],
    },
    3_000,
  );
  applyBatch(s, { completeJobs: ['route:hubspot:42:1', 'route:hubspot:42:2'] }, 3_500);
  s.jobs.get('wb:hubspot:42:2#2')!.status = 'dead';
  s.jobs.get('wb:hubspot:42:2#2')!.lastError = 'upstream: HubSpot 503';
  s.inbound.set('in:hubspot:evt-1', 1_000);
  s.kv.set('hubspot:tokens', new Map<string, unknown>([['42', { enc: 'v1:abc', expiresAt: 10 }], ['43', { enc: 'v1:def' }]]));
  s.kv.set('salesforce:replay', new Map<string, unknown>([['00D', 1234]]));
  return s;
}

describe.skipIf(postgresSkipReason !== null)('migrate-store: lowdb data into PostgreSQL', () => {
  const db = usePostgres();
  beforeAll(() => db.start(), 60_000);
  afterAll(() => db.stop());

  it('imports everything, so the PostgreSQL store answers as the old store did', async () => {
    const url = await db.database();
    const state = sampleState();
    const counts = await importState(url, state);
    expect(counts).toEqual({ configs: 2, tickets: 3, history: 3, jobs: 2, completedJobs: 2, timers: 2, inboundKeys: 1, kv: 3, counterEntries: 6 });

    const store = await db.open({ url, timerLeaseMs: 0 });
    expect(await store.configVersions()).toEqual([...state.configs].reverse());
    expect(await store.tickets()).toEqual([...state.tickets.values()]);
    expect(await store.findTicketByTopic('g1', 7)).toEqual(state.tickets.get('hubspot:42:1'));
    expect((await store.history({ limit: 100 })).entries.map((e) => e.key)).toEqual(['hubspot:42:2#2', 'hubspot:42:1#1', 'hubspot:42:2#1']);
    expect((await store.history({ ticketKey: 'hubspot:42:2' })).entries[0]).toEqual(state.history[2]);
    expect(await store.counters()).toEqual(state.counters);
    expect(await store.kvList('hubspot:tokens')).toEqual([
      { key: '42', value: { enc: 'v1:abc', expiresAt: 10 } },
      { key: '43', value: { enc: 'v1:def' } },
    ]);
    expect(await store.kvGet('salesforce:replay', '00D')).toBe(1234);
    expect(await store.dueTimers(10_000, 10)).toEqual([{ id: 'offline_grace:bob', kind: 'offline_grace', at: 8_000, agentId: 'bob' }, timer('sla_breach:hubspot:42:1', 9_000)]);
    expect(await store.deadJobs()).toEqual([{ ...state.jobs.get('wb:hubspot:42:2#2')!, leaseUntil: 0 }]);
    // The lease of the stopped instance is cleared: the step is free at once.
    expect((await store.claimJobs(2_000, 10, 1_000)).map((j) => j.id)).toEqual(['post:hubspot:42:1#1']);
    // What was already done or already seen stays done and seen.
    await store.commit({ jobs: [job('route:hubspot:42:1')] });
    expect(await store.pendingJobs()).toBe(1);
    expect(await store.recordInbound(['in:hubspot:evt-1', 'in:hubspot:evt-2'], 2_000)).toEqual([false, true]);
  });

  it('refuses a database that already has data, and leaves it untouched', async () => {
    const url = await db.database();
    await importState(url, sampleState());
    const err = await importState(url, sampleState()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('conflict');
    expect((err as AppError).message).toMatch(/already holds Tierline data .* nothing was imported/);
    const store = await db.open({ url });
    expect(await store.tickets()).toHaveLength(3);
    expect((await store.history({})).total).toBe(3);
  });

  it('`npm run migrate-store -- --from <DATA_DIR>` finds the store file, imports it and says what moved', async () => {
    const url = await db.database();
    const dir = await mkdtemp(join(tmpdir(), 'tierline-data-'));
    try {
      await writeFile(join(dir, 'admin-token'), 'not json');
      await writeFile(join(dir, 'tierline.json'), asJson(sampleState()));
      const out = await run(process.execPath, [CLI, '--from', dir], { env: { ...process.env, DATABASE_URL: url } });
      expect(out.stdout).toMatch(/^Imported .*tierline\.json into PostgreSQL at 127\.0\.0\.1:\d+\/\S+: 3 tickets, 3 history entries, 2 pending or dead steps, 2 completed step ids, 2 timers, 3 connector records, 2 config versions, 1 recent webhook keys, 6 counter entries\./);
      const store = await db.open({ url });
      expect((await store.getTicket('hubspot:42:1'))?.topic?.topicId).toBe(7);
      expect(await store.kvGet('hubspot:tokens', '42')).toEqual({ enc: 'v1:abc', expiresAt: 10 });
      // Run twice by mistake: refused, nothing doubled.
      const again = await run(process.execPath, [CLI, '--from', dir], { env: { ...process.env, DATABASE_URL: url } }).catch((e: { code: number; stderr: string }) => e);
      expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('already holds Tierline data') });
      const empty = await mkdtemp(join(tmpdir(), 'tierline-empty-'));
      const none = await run(process.execPath, [CLI, '--from', empty], { env: { ...process.env, DATABASE_URL: url } }).catch((e: { code: number; stderr: string }) => e);
      expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining('No Tierline store file') });
      await rm(empty, { recursive: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads maps saved as pairs, as objects, or as records carrying their key alike', () => {
    const s = sampleState();
    const pairs = stateFromJson(JSON.parse(asJson(s)));
    const objects = stateFromJson(JSON.parse(JSON.stringify(s, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v))));
    const records = stateFromJson({
      ...JSON.parse(asJson(s)),
      tickets: [...s.tickets.values()],
      jobs: [...s.jobs.values()],
      timers: [...s.timers.values()],
      kv: [...s.kv.entries()].flatMap(([ns, m]) => [...m.entries()].map(([key, value]) => ({ ns, key, value }))),
    });
    for (const r of [pairs, objects, records]) expect(r).toEqual(s);
    expect(() => stateFromJson({ configs: 'nope' })).toThrow(/does not look like a Tierline store/);
  });
});
