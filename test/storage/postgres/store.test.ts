// What the PostgreSQL store adds over the memory store: migrations, leases shared between instances, a decision
// section that is one transaction, completed-step memory, and errors an operator can act on.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { loadMigrations, runMigrations } from '../../../server/storage/postgres/migrate.ts';
import { openPostgresStore } from '../../../server/storage/postgres/postgres-store.ts';
import { historyEntry, job, postgresSkipReason, silent, ticket, timer, usePostgres } from './helpers.ts';

const run = promisify(execFile);
const MIGRATE = fileURLToPath(new URL('../../../server/storage/postgres/migrate.ts', import.meta.url));

describe.skipIf(postgresSkipReason !== null)('PostgreSQL store', () => {
  const db = usePostgres();
  beforeAll(() => db.start(), 60_000);
  afterAll(() => db.stop());

  async function sql<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<R>(text, params)).rows;
    } finally {
      await c.end();
    }
  }

  describe('migrations', () => {
    it('three instances starting at once on an empty database apply each migration exactly once', async () => {
      const url = await db.database();
      await Promise.all([db.open({ url }), db.open({ url }), db.open({ url })]);
      const files = await loadMigrations();
      const rows = await sql<{ version: number }>(url, 'SELECT version FROM tierline_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
      expect(await runMigrations(url)).toEqual({ applied: [], version: files.at(-1)!.version });
    });

    it('`npm run migrate` migrates DATABASE_URL and says so; a second run finds it up to date', async () => {
      const url = await db.database();
      const first = await run(process.execPath, [MIGRATE], { env: { ...process.env, DATABASE_URL: url } });
      expect(first.stdout).toMatch(/^Applied 0001_init, 0002_kv_expiry, 0003_routing_counters, 0004_history_by_n, 0005_job_claims; PostgreSQL at 127\.0\.0\.1:\d+\/\S+ is at schema version 5\.$/m);
      const second = await run(process.execPath, [MIGRATE], { env: { ...process.env, DATABASE_URL: url } });
      expect(second.stdout).toMatch(/is up to date \(schema version 5\)/);
      const missing = await run(process.execPath, [MIGRATE], { env: { ...process.env, DATABASE_URL: '' } }).catch((e: { code: number; stderr: string }) => e);
      expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('DATABASE_URL is not set') });
    });

    it('refuses a database migrated by a newer Tierline, naming both versions', async () => {
      const url = await db.database();
      await runMigrations(url);
      await sql(url, `INSERT INTO tierline_migrations (version, name, checksum) VALUES (999, '0999_future', 'x')`);
      const err = await openPostgresStore({ url, logger: silent }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('misconfigured');
      expect((err as AppError).message).toMatch(/schema is at version 999, newer than this Tierline build knows \(5\)/);
    });

    it('has the indexes the history and report views filter on', async () => {
      const store = await db.open();
      const defs = (await store.pool.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE tablename IN ('history', 'tickets', 'jobs', 'timers')`)).rows.map((r) => r.indexdef).join('\n');
      for (const cols of ['history USING btree (at DESC, seq DESC, n)', 'history USING btree (ticket_key, at DESC', "COALESCE(tier, 'unknown'::text)", 'history USING btree (queue_id, at DESC)', 'history USING btree (agent_id, at DESC)', 'history USING btree (kind, at DESC)', 'tickets USING btree (company_id)', 'tickets USING btree (topic_group, topic_id)'])
        expect(defs).toContain(cols);
    });
  });

  describe('outbox across instances', () => {
    it('a job id enqueued twice is one job, and enqueuing it after it completed does nothing', async () => {
      const url = await db.database();
      const a = await db.open({ url });
      const b = await db.open({ url });
      await a.commit({ jobs: [job('route:t1')] });
      await b.commit({ jobs: [job('route:t1', { payload: { other: true } })] });
      expect(await a.pendingJobs()).toBe(1);
      const [claimed] = await b.claimJobs(2_000, 10, 60_000);
      expect(claimed).toMatchObject({ id: 'route:t1', payload: { id: 'route:t1' } });
      await b.commit({ completeJobs: ['route:t1'] });
      await a.commit({ jobs: [job('route:t1')] }); // a redelivered webhook, a replayed crash
      expect(await a.pendingJobs()).toBe(0);
      expect(await a.claimJobs(10_000, 10, 60_000)).toEqual([]);
    });

    it('a claimed job is invisible to other instances until its lease ends, then another instance takes it over', async () => {
      const url = await db.database();
      const a = await db.open({ url, instanceId: 'a' });
      const b = await db.open({ url, instanceId: 'b' });
      await a.commit({ jobs: [job('j1'), job('j2')] });
      expect((await a.claimJobs(1_000, 1, 1_000)).map((j) => j.id)).toEqual(['j1']);
      expect((await b.claimJobs(1_500, 10, 1_000)).map((j) => j.id)).toEqual(['j2']);
      expect(await b.claimJobs(1_999, 10, 1_000)).toEqual([]);
      // Instance a died holding j1: at the end of its lease, b gets it.
      const [taken] = await b.claimJobs(2_000, 10, 1_000);
      expect(taken).toMatchObject({ id: 'j1', attempts: 0, leaseUntil: 3_000 });
    });

    it("one ticket's steps stay in order across instances: while one instance runs a step, others leave that ticket alone", async () => {
      const url = await db.database();
      const a = await db.open({ url, instanceId: 'a' });
      const b = await db.open({ url, instanceId: 'b' });
      await a.commit({ jobs: [job('e1', { ticketKey: 'T', nextAt: 1_000 }), job('e2', { ticketKey: 'T', nextAt: 1_001 }), job('x', { ticketKey: 'U', nextAt: 1_002 })] });
      expect((await a.claimJobs(2_000, 1, 60_000)).map((j) => j.id)).toEqual(['e1']);
      expect((await b.claimJobs(2_000, 10, 60_000)).map((j) => j.id)).toEqual(['x']);
      // The instance running e1 may take e2 (it runs them in order itself), exactly as with one store.
      expect((await a.claimJobs(2_000, 10, 60_000)).map((j) => j.id)).toEqual(['e2']);
      await a.failJob('e2', 'upstream: HubSpot 503', 2_500);
      await a.commit({ completeJobs: ['e1'] });
      expect((await b.claimJobs(3_000, 10, 60_000)).map((j) => j.id)).toEqual(['e2']);
    });

    it('a due timer goes to one instance; another gets it only after the timer lease, and re-arming frees it', async () => {
      const url = await db.database();
      const a = await db.open({ url, timerLeaseMs: 5_000 });
      const b = await db.open({ url, timerLeaseMs: 5_000 });
      await a.commit({ timers: [timer('sla_breach:t1', 1_000), timer('sla_breach:t2', 1_100)] });
      expect((await a.dueTimers(2_000, 1)).map((t) => t.id)).toEqual(['sla_breach:t1']);
      expect((await b.dueTimers(2_500, 10)).map((t) => t.id)).toEqual(['sla_breach:t2']);
      expect(await b.dueTimers(6_999, 10)).toEqual([]);
      // a died holding t1: b fires it once a's lease is over (t2 is still b's own until 7,500).
      expect((await b.dueTimers(7_000, 10)).map((t) => t.id)).toEqual(['sla_breach:t1']);
      await a.commit({ timers: [timer('sla_breach:t2', 7_000)] });
      expect(await a.dueTimers(7_000, 10)).toEqual([timer('sla_breach:t2', 7_000)]);
    });
  });

  describe('exclusive decisions', () => {
    it('never overlap, across instances and within one', async () => {
      const url = await db.database();
      const stores = [await db.open({ url }), await db.open({ url }), await db.open({ url })];
      let inside = 0;
      let most = 0;
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          stores[i % 3]!.exclusive(async () => {
            inside++;
            most = Math.max(most, inside);
            await stores[i % 3]!.counters();
            await new Promise((r) => setTimeout(r, 1));
            await stores[i % 3]!.commit({ counters: [{ op: 'load', agentId: 'ann', delta: 1 }] });
            order.push(i);
            inside--;
          }),
        ),
      );
      expect(most).toBe(1);
      expect(order).toHaveLength(30);
      expect((await stores[0]!.counters()).load).toEqual({ ann: 30 });
    });

    it('a decision whose database connection dies is not applied at all, and fails with a retryable error', async () => {
      const url = await db.database();
      const store = await db.open({ url });
      await store.commit({ tickets: [ticket('t1', { status: 'waiting', agentId: null })] });
      const err = await store
        .exclusive(async () => {
          await store.commit({ tickets: [ticket('t1', { agentId: 'ann' })], counters: [{ op: 'load', agentId: 'ann', delta: 1 }], history: [historyEntry('t1', 1)] });
          // The database restarts (or the connection drops) before the decision finishes.
          await sql(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'`);
          await store.counters();
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(['internal', 'upstream']).toContain((err as AppError).code);
      expect((await store.getTicket('t1'))?.agentId).toBeNull();
      expect((await store.counters()).load).toEqual({});
      expect((await store.history({})).total).toBe(0);
      // The next decision runs normally.
      await store.exclusive(() => store.commit({ counters: [{ op: 'load', agentId: 'ann', delta: 1 }] }));
      expect((await store.counters()).load).toEqual({ ann: 1 });
    });

    it('a batch that cannot be applied fails the whole decision, which leaves no trace', async () => {
      const store = await db.open();
      const err = await store
        .exclusive(async () => {
          await store.commit({ counters: [{ op: 'load', agentId: 'ann', delta: 1 }] });
          await store.commit({ counters: [{ op: 'bogus' } as never] });
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).message).toMatch(/unknown counter op bogus/);
      expect((await store.counters()).load).toEqual({});
    });

    it('a connector record put inside a decision is part of it: kept when the decision commits, gone when it fails', async () => {
      const url = await db.database();
      const store = await db.open({ url });
      const other = await db.open({ url });
      await store.exclusive(async () => {
        await Promise.all([store.kvPut('tg', 'r1', { topicId: null }), store.commit({ counters: [{ op: 'load', agentId: 'ann', delta: 1 }] })]);
        expect(await store.kvGet('tg', 'r1')).toEqual({ topicId: null }); // read back inside the decision
        expect(await other.kvGet('tg', 'r1')).toBeNull(); // not before the decision commits
      });
      expect(await other.kvGet('tg', 'r1')).toEqual({ topicId: null });
      const err = await store
        .exclusive(async () => {
          await store.kvPut('tg', 'r2', { topicId: null });
          await store.commit({ counters: [{ op: 'bogus' } as never] });
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(await other.kvGet('tg', 'r2')).toBeNull();
    });

    it('an instance that freezes inside a decision loses the lock to the others instead of stalling routing', async () => {
      const url = await db.database();
      const frozen = await db.open({ url, decisionIdleTimeoutMs: 1_000 });
      const healthy = await db.open({ url });
      const events: string[] = [];
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const stuck = frozen
        .exclusive(async () => {
          await frozen.commit({ counters: [{ op: 'load', agentId: 'ann', delta: 1 }] });
          entered();
          await new Promise((r) => setTimeout(r, 2_500)); // a long GC pause, SIGSTOP, a partition
          events.push('frozen resumed');
          await frozen.counters();
        })
        .catch((e: unknown) => e);
      await inside;
      await healthy.exclusive(async () => {
        events.push('healthy decided');
        await healthy.commit({ counters: [{ op: 'load', agentId: 'bob', delta: 1 }] });
      });
      const err = await stuck;
      expect(events).toEqual(['healthy decided', 'frozen resumed']);
      expect(err).toBeInstanceOf(AppError);
      expect((await healthy.counters()).load).toEqual({ bob: 1 });
    });

    it('keeps what fn committed when fn then throws (as the memory store does), and passes the error on', async () => {
      const store = await db.open();
      const err = await store
        .exclusive(async () => {
          await store.commit({ counters: [{ op: 'rr', queueId: 'general', value: 3 }] });
          throw new AppError('upstream', 'HubSpot timed out');
        })
        .catch((e: unknown) => e);
      expect((err as AppError).message).toBe('HubSpot timed out');
      expect((await store.counters()).rr).toEqual({ general: 3 });
    });

    it('work started inside fn that outlives it (a worker woken by the commit) does not run inside the finished decision', async () => {
      const store = await db.open();
      let late: Promise<unknown> = Promise.resolve();
      const seen: string[] = [];
      await store.exclusive(async () => {
        await store.commit({ jobs: [job('topic:t1')] });
        late = (async () => {
          // A nested decision waits for this one to end instead of running inside it.
          await store.exclusive(async () => void seen.push('nested'));
          await new Promise((r) => setTimeout(r, 20));
          await store.commit({ completeJobs: ['topic:t1'] });
        })();
        await new Promise((r) => setTimeout(r, 20));
        seen.push('outer done');
      });
      await late;
      expect(seen).toEqual(['outer done', 'nested']);
      expect(await store.pendingJobs()).toBe(0);
    });
  });

  describe('connector records', () => {
    it('expired records are deleted by a background sweep, not by whoever writes next', async () => {
      let now = 1_000_000;
      const url = await db.database();
      const store = await db.open({ url, clock: { now: () => now }, expiredSweepMs: 50 });
      await store.kvPut('telegram:topics', 'done', { topicId: 1 }, { ttlMs: 1_000 });
      await store.kvPut('telegram:topics', 'kept', { topicId: 2 });
      now += 2_000;
      expect(await store.kvGet('telegram:topics', 'done')).toBeNull();
      for (let i = 0; i < 100 && (await sql(url, "SELECT 1 FROM kv WHERE key = 'done'")).length; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await sql<{ key: string }>(url, "SELECT key FROM kv WHERE ns = 'telegram:topics' ORDER BY key")).toEqual([{ key: 'kept' }]);
    });
  });

  describe('retention window', () => {
    it('rows that left the window are deleted by the sweep; open tickets and recent rows stay', async () => {
      const DAY = 24 * 3600_000;
      const T0 = 1_000;
      let now = T0 + 500 * DAY;
      const url = await db.database();
      const store = await db.open({ url, clock: { now: () => now }, expiredSweepMs: 50, retentionMs: 400 * DAY });
      await store.commit({
        tickets: [ticket('hubspot:42:1', { status: 'resolved', resolvedAt: T0, updatedAt: T0 }), ticket('hubspot:42:2'), ticket('hubspot:42:3', { status: 'resolved', resolvedAt: now, updatedAt: now })],
        history: [historyEntry('hubspot:42:1', 1, { at: T0 }), historyEntry('hubspot:42:2', 1, { at: T0 }), historyEntry('hubspot:42:3', 1, { at: now })],
      });
      now += 1_000;
      for (let i = 0; i < 100 && (await sql(url, 'SELECT 1 FROM history WHERE at < $1', [now - 400 * DAY])).length; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await sql<{ key: string }>(url, 'SELECT key FROM tickets ORDER BY key')).toEqual([{ key: 'hubspot:42:2' }, { key: 'hubspot:42:3' }]);
      expect(await sql<{ key: string }>(url, 'SELECT key FROM history ORDER BY key')).toEqual([{ key: 'hubspot:42:3#1' }]);
    });
  });

  describe('operator-facing errors', () => {
    it('an unreachable server names host and port and never the password', async () => {
      const err = await openPostgresStore({ url: 'postgres://tierline:s3cr3t-pw@127.0.0.1:1/tierline', logger: silent }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('upstream');
      expect((err as AppError).message).toMatch(/PostgreSQL is unreachable .*127\.0\.0\.1:1\/tierline.*check DATABASE_URL/);
      expect((err as AppError).message).not.toContain('s3cr3t-pw');
    });

    it('a missing database says to create it', async () => {
      const u = new URL(await db.database());
      u.pathname = '/no_such_db';
      const err = await openPostgresStore({ url: u.toString(), logger: silent }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'misconfigured', message: expect.stringContaining('does not exist') });
    });
  });
});
