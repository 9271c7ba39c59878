// The Store on PostgreSQL, for several Tierline instances sharing one state. Semantics match the memory store
// (server/storage/memory-store.ts, checked by the shared contract suite); what PostgreSQL adds is safety across
// processes:
//  - exclusive(fn) runs fn inside one transaction that holds a transaction-level advisory lock, so routing decisions
//    from every instance take turns, and the counters fn reads and the batch it commits form one atomic unit.
//  - claimJobs / dueTimers claim with FOR UPDATE SKIP LOCKED and a lease: concurrent workers never get the same
//    step, and a crashed instance's steps are taken over once their lease runs out.
//  - commit(batch) is one statement (tierline_commit), so one round trip and all-or-nothing.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { AppError } from '../../../core/errors.ts';
import type { RoutingConfig } from '../../../core/config.ts';
import type { Batch, Clock, ConfigVersion, Counters, HistoryEntry, HistoryQuery, Job, JobKind, Logger, RoutingCounters, Store, TicketRecord, Timer } from '../../../core/ports.ts';
import { runMigrations } from './migrate.ts';
import { retentionCutoff } from '../retention.ts';
import { LOCK_CLAIM, LOCK_CONFIG, LOCK_ROUTING, LOCK_SPACE, PG_TYPES, describeDatabase, pgError } from './pg-util.ts';

/** Inbound event keys are remembered this long (the memory store's window; Salesforce retries for 24 hours). */
export const DEDUPE_WINDOW_MS = 7 * 24 * 3600_000;

export type PostgresStoreOptions = {
  url: string;
  clock?: Clock;
  logger?: Logger;
  /** Shown in pg_stat_activity (application_name) and in logs, to tell instances apart. */
  instanceId?: string;
  /** Connections per instance (default 10). The worker runs up to its batch size of steps at once. */
  poolSize?: number;
  /**
   * Routing history entries older than this, and tickets closed longer ago, are forgotten (default: kept for good):
   * reads leave them out at once, and an hourly sweep deletes them.
   */
  retentionMs?: number;
  /** Run the schema migrations on open (default true). */
  migrate?: boolean;
  /**
   * How long a timer returned by dueTimers stays with the instance that got it (default 60 s). Firing a timer
   * cancels it; if the instance dies first, another fires it after this lease.
   */
  timerLeaseMs?: number;
  /**
   * Job kinds this instance must not claim right now. The Telegram steps (topic, post, close_topic) belong to the
   * instance holding the MTProto connection (see leader.ts); followers pass `() => leader.isLeader() ? [] : MESSENGER_JOB_KINDS`.
   */
  excludeKinds?: () => readonly JobKind[];
  /**
   * A decision that sits idle this long between statements (a frozen or partitioned instance) is ended by the server,
   * freeing the decision lock for the other instances (default 30 s).
   */
  decisionIdleTimeoutMs?: number;
  /** How often expired connector records are deleted (default a minute). */
  expiredSweepMs?: number;
};

export type PostgresStore = Store & {
  readonly pool: pg.Pool;
  readonly instanceId: string;
  /** Database description without credentials, for logs and /readyz. */
  readonly describe: string;
  /** A round trip to the database, for readiness checks. */
  ping(): Promise<void>;
};

const KV_UPSERT = 'ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at';

type ConfigHead = { version: number; saved_at: number; author: string; note: string };
type TxContext = {
  client: pg.PoolClient;
  done: boolean;
  failed: unknown;
  wrote: boolean;
  /**
   * Writes made inside the section and not yet sent (batches, connector records), as SQL statements with their values
   * inlined: they go with the next statement, or with COMMIT.
   */
  pending: string[];
  /** The newest config version, read with the lock (no round trip for getConfig when it is unchanged). */
  head: ConfigHead | null;
};

type JobRow = { id: string; kind: JobKind; ticket_key: string; payload: Record<string, unknown>; attempts: number; next_at: number; status: 'pending' | 'dead'; last_error: string | null; lease_until: number; created_at: number; n: number; claims: number };
type TimerRow = { id: string; kind: Timer['kind']; at: number; ticket_key: string | null; agent_id: string | null; n: number };
type ConfigRow = { version: number; config: RoutingConfig | null; saved_at: number; author: string; note: string };

const JOB_COLUMNS = 'id, kind, ticket_key, payload, attempts, next_at, status, last_error, lease_until, created_at, n, claims';

function toJob(r: JobRow): Job {
  return { id: r.id, kind: r.kind, ticketKey: r.ticket_key, payload: r.payload, attempts: r.attempts, nextAt: r.next_at, status: r.status, lastError: r.last_error, leaseUntil: r.lease_until, createdAt: r.created_at, ...(r.claims ? { claims: r.claims } : {}) };
}

function toTimer(r: TimerRow): Timer {
  const t: Timer = { id: r.id, kind: r.kind, at: r.at };
  if (r.ticket_key !== null) t.ticketKey = r.ticket_key;
  if (r.agent_id !== null) t.agentId = r.agent_id;
  return t;
}

const byJobOrder = (a: JobRow, b: JobRow) => a.next_at - b.next_at || a.created_at - b.created_at || a.n - b.n;

/** Opens (and by default migrates) the PostgreSQL store. */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const clock = opts.clock ?? { now: () => Date.now() };
  const log = opts.logger;
  const instanceId = opts.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const describe = describeDatabase(opts.url);
  const timerLeaseMs = opts.timerLeaseMs ?? 60_000;
  const excludeKinds = opts.excludeKinds ?? (() => []);
  const decisionIdleMs = Math.max(1_000, Math.round(opts.decisionIdleTimeoutMs ?? 30_000));
  const keepMs = opts.retentionMs ?? Infinity;
  const cutoffNow = () => retentionCutoff(clock.now(), keepMs);
  /** Leaves out closed tickets that left the retention window (the same rule as retention.ts's `forgotten`). */
  const RETAINED = (param: string) => `(open OR coalesce((doc->>'resolvedAt')::double precision, (doc->>'updatedAt')::double precision) >= ${param})`;

  const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10, application_name: `tierline:${instanceId}`.slice(0, 63), types: PG_TYPES, keepAlive: true });
  // An idle connection that the server drops (restart, failover) must not crash the process; the pool reconnects.
  pool.on('error', (err) => log?.warn('idle PostgreSQL connection dropped', { error: err.message, code: (err as { code?: string }).code }));

  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw pgError(err, `connecting to ${describe}`);
  }
  try {
    if (opts.migrate !== false) await runMigrations(pool, log);
    else await pool.query('SELECT 1 FROM tierline_migrations LIMIT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw pgError(err, `opening ${describe}`);
  }

  const tx = new AsyncLocalStorage<TxContext>();
  let localTurn: Promise<unknown> = Promise.resolve();
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  /**
   * Runs a statement. Reads and writes that belong to a decision (tickets, counters, config, history, commit) run on
   * the exclusive section's transaction when called inside one; everything else uses the pool directly.
   */
  async function q<R extends pg.QueryResultRow>(doing: string, text: string, params: unknown[] = [], decision = false): Promise<pg.QueryResult<R>> {
    if (closed) throw new AppError('internal', `The PostgreSQL store is closed (${doing}); this is a shutdown-order bug.`);
    const ctx = decision ? tx.getStore() : undefined;
    if (ctx && !ctx.done) {
      try {
        // Read-your-writes inside the section: writes held back for COMMIT go first.
        if (ctx.pending.length) await ctx.client.query(ctx.pending.splice(0).join(' '));
        return await ctx.client.query<R>(text, params);
      } catch (err) {
        ctx.failed ??= err;
        throw pgError(err, doing);
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await pool.query<R>(text, params);
      } catch (err) {
        // Only errors where the statement certainly did not take effect are retried here (deadlock victim,
        // serialization failure); a dropped connection mid-commit is ambiguous and goes back to the caller.
        const code = (err as { code?: string }).code;
        if ((code === '40P01' || code === '40001') && attempt < 5) continue;
        throw pgError(err, doing);
      }
    }
  }

  async function runExclusive<T>(fn: () => Promise<T>, turnOver: () => void): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw pgError(err, 'starting a routing decision');
    }
    const ctx: TxContext = { client, done: false, failed: undefined, wrote: false, pending: [], head: null };
    let broken = false;
    // A connection that drops between statements (server restart, terminated backend) reports here; without a
    // listener the process would crash. The decision then fails as a whole.
    const onError = (err: Error) => {
      ctx.failed ??= err;
      broken = true;
    };
    client.on('error', onError);
    try {
      try {
        // Round trips while the lock is held are what limits decisions per second across all instances, so the
        // section costs three: lock (+ newest config version), whatever fn reads, and its batch sent with COMMIT.
        // The commit waits for no disk flush while the lock is held; the flush below makes it durable before
        // exclusive() resolves, so no side effect can ever follow a decision that a database crash could lose.
        const results = (await client.query(
          `BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL idle_in_transaction_session_timeout = ${decisionIdleMs}; SELECT pg_advisory_xact_lock(${LOCK_SPACE}, ${LOCK_ROUTING}); SELECT version, saved_at, author, note FROM configs ORDER BY version DESC LIMIT 1`,
        )) as unknown as pg.QueryResult<ConfigHead>[];
        ctx.head = results.at(-1)?.rows[0] ?? null;
      } catch (err) {
        broken = true;
        throw pgError(err, 'taking the routing lock');
      }
      let result: T | undefined;
      let threw = false;
      let error: unknown;
      try {
        result = await tx.run(ctx, fn);
      } catch (err) {
        threw = true;
        error = err;
      }
      ctx.done = true;
      if (ctx.failed !== undefined) {
        await client.query('ROLLBACK').catch(() => void (broken = true));
        if (threw) throw error;
        throw pgError(ctx.failed, 'a routing decision');
      }
      // Like the memory store, what fn committed before throwing stays committed.
      const finish = [...ctx.pending, 'COMMIT'].join(' ');
      try {
        await client.query(finish);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => void (broken = true));
        if (threw) throw error;
        throw pgError(err, 'committing a routing decision');
      }
      // The next decision in this process may start now; this one resolves once it is on disk.
      turnOver();
      if (ctx.wrote) {
        try {
          await client.query('SELECT txid_current()');
        } catch (err) {
          broken = true;
          throw pgError(err, 'flushing a routing decision to disk');
        }
      }
      if (threw) throw error;
      return result as T;
    } finally {
      ctx.done = true;
      client.off('error', onError);
      client.release(broken);
    }
  }

  let cachedConfig: ConfigVersion | null = null;
  /**
   * A private copy of a config version whose (large) config is copied only when read: the pipeline asks for the
   * config on every decision but looks past the version number only when it changed.
   */
  const lazyCopy = (v: ConfigVersion): ConfigVersion => {
    let config: RoutingConfig | undefined;
    const out = { version: v.version, savedAt: v.savedAt, author: v.author, note: v.note } as ConfigVersion;
    Object.defineProperty(out, 'config', {
      enumerable: true,
      configurable: true,
      get: () => (config ??= structuredClone(v.config)),
      set: (c: RoutingConfig) => void (config = c),
    });
    return out;
  };
  const toConfig = (r: ConfigRow & { config: RoutingConfig }): ConfigVersion => ({ version: r.version, config: r.config, savedAt: r.saved_at, author: r.author, note: r.note });

  let lastInboundPurge = 0;

  const store: PostgresStore = {
    pool,
    instanceId,
    describe,

    async ping() {
      await q('checking the database', 'SELECT 1');
    },

    async getConfig() {
      const ctx = tx.getStore();
      if (ctx && !ctx.done && cachedConfig && ctx.head?.version === cachedConfig.version) return lazyCopy(cachedConfig);
      if (ctx && !ctx.done && !ctx.head) return null;
      // The routing config can be large (hundreds of agents) and every decision reads it: send it only when changed.
      const r = await q<ConfigRow>('reading the routing configuration', 'SELECT version, saved_at, author, note, CASE WHEN version = $1 THEN NULL ELSE config END AS config FROM configs ORDER BY version DESC LIMIT 1', [cachedConfig?.version ?? -1], true);
      const row = r.rows[0];
      if (!row) return null;
      if (row.config !== null || !cachedConfig) cachedConfig = toConfig(row as ConfigRow & { config: RoutingConfig });
      return lazyCopy(cachedConfig);
    },

    async saveConfig(config, meta) {
      // Versions are consecutive across instances: a transaction-level lock orders concurrent saves. The lock is taken
      // in its own statement so that the INSERT's snapshot (READ COMMITTED: one per statement) sees the previous save.
      if (closed) throw new AppError('internal', 'The PostgreSQL store is closed (saving the routing configuration); this is a shutdown-order bug.');
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw pgError(err, 'saving the routing configuration');
      }
      try {
        await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_SPACE}, ${LOCK_CONFIG})`);
        const r = await client.query<ConfigRow & { config: RoutingConfig }>(
          `INSERT INTO configs (version, config, saved_at, author, note)
           SELECT coalesce((SELECT max(version) FROM configs), 0) + 1, $1::json, $2, $3, $4
           RETURNING version, config, saved_at, author, note`,
          [JSON.stringify(config), meta.at, meta.author, meta.note],
        );
        await client.query('COMMIT');
        return toConfig(r.rows[0]!);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw pgError(err, 'saving the routing configuration');
      } finally {
        client.release();
      }
    },

    async configVersions() {
      const r = await q<ConfigRow & { config: RoutingConfig }>('listing configuration versions', 'SELECT version, config, saved_at, author, note FROM configs ORDER BY version DESC');
      return r.rows.map(toConfig);
    },

    async recordInbound(keys, at) {
      if (!keys.length) return [];
      const unique = [...new Set(keys)];
      const cutoff = at - DEDUPE_WINDOW_MS;
      // A key older than the window counts as new again (and is refreshed), exactly as if it had been purged.
      const r = await q<{ key: string }>(
        'recording inbound events',
        'INSERT INTO inbound (key, at) SELECT k, $2 FROM unnest($1::text[]) AS k ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at WHERE inbound.at < $3 RETURNING key',
        [unique, at, cutoff],
      );
      const fresh = new Set(r.rows.map((x) => x.key));
      const seen = new Set<string>();
      const out = keys.map((k) => {
        if (seen.has(k)) return false;
        seen.add(k);
        return fresh.has(k);
      });
      if (at - lastInboundPurge > 60_000) {
        lastInboundPurge = at;
        await q('purging old inbound keys', 'DELETE FROM inbound WHERE at < $1', [cutoff]);
      }
      return out;
    },

    async getTicket(key) {
      const r = await q<{ doc: TicketRecord }>('reading a ticket', `SELECT doc FROM tickets WHERE key = $1 AND ${RETAINED('$2')}`, [key, cutoffNow()], true);
      return r.rows[0]?.doc ?? null;
    },

    async getTickets(keys) {
      if (!keys.length) return [];
      const r = await q<{ doc: TicketRecord }>('reading tickets', `SELECT doc FROM tickets WHERE key = ANY($1::text[]) AND ${RETAINED('$2')}`, [[...new Set(keys)], cutoffNow()], true);
      return r.rows.map((x) => x.doc);
    },

    async findTicketByTopic(groupId, topicId) {
      const r = await q<{ doc: TicketRecord }>('finding a ticket by topic', `SELECT doc FROM tickets WHERE topic_group = $1 AND topic_id = $2 AND ${RETAINED('$3')} ORDER BY n LIMIT 1`, [groupId, topicId, cutoffNow()], true);
      return r.rows[0]?.doc ?? null;
    },

    async tickets(filter = {}) {
      const params: unknown[] = [cutoffNow()];
      const where: string[] = [RETAINED('$1')];
      if (filter.open !== undefined) where.push(filter.open ? 'open' : 'NOT open');
      if (filter.agentId) where.push(`agent_id = $${params.push(filter.agentId)}`);
      if (filter.queueId) where.push(`queue_id = $${params.push(filter.queueId)}`);
      if (filter.status) where.push(`doc->>'status' = $${params.push(filter.status)}`);
      const r = await q<{ doc: TicketRecord }>('listing tickets', `SELECT doc FROM tickets ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY n`, params, true);
      return r.rows.map((x) => x.doc);
    },

    async openTicketsPerGroup() {
      // A ticket with a topic is in its topic's group (the topic_group column); only the few still waiting for
      // their topic have the document parsed for the group chosen for them.
      const r = await q<{ g: string; n: number }>(
        'counting open tickets per group',
        `SELECT g, count(*)::int AS n FROM (SELECT coalesce(topic_group, doc->>'topicGroupId') AS g FROM tickets WHERE open) t WHERE g IS NOT NULL GROUP BY g`,
        [],
        true,
      );
      return Object.fromEntries(r.rows.map((x) => [x.g, x.n]));
    },

    async counters() {
      const r = await q<{ c: Counters }>('reading routing counters', 'SELECT tierline_counters() AS c', [], true);
      return r.rows[0]!.c;
    },

    async routingCounters() {
      const r = await q<{ c: RoutingCounters }>('reading routing counters', 'SELECT tierline_routing_counters() AS c', [], true);
      return r.rows[0]!.c;
    },

    async waitingTickets(queueIds, page) {
      if (page.limit <= 0 || !queueIds.length) return [];
      const a = page.after;
      const r = await q<{ key: string; queue_id: string; since: number }>(
        'reading waiting tickets',
        `SELECT ticket_key AS key, queue_id, since FROM counter_waiting
          WHERE queue_id = ANY($1::text[])
            AND ($2::double precision IS NULL OR since > $2 OR (since = $2 AND (ticket_key COLLATE "C" > $3::text OR (ticket_key = $3::text AND queue_id COLLATE "C" > $4::text))))
          ORDER BY since, ticket_key COLLATE "C", queue_id COLLATE "C" LIMIT $5`,
        [[...new Set(queueIds)], a?.since ?? null, a?.key ?? null, a?.queueId ?? null, page.limit],
        true,
      );
      return r.rows.map((x) => ({ key: x.key, queueId: x.queue_id, since: Number(x.since) }));
    },

    async commit(batch: Batch) {
      const b: Batch = {};
      // Empty lists are left out so the statement skips their part entirely.
      if (batch.tickets?.length) b.tickets = batch.tickets;
      if (batch.completeJobs?.length) b.completeJobs = batch.completeJobs;
      if (batch.jobs?.length) b.jobs = batch.jobs;
      if (batch.cancelTimers?.length) b.cancelTimers = batch.cancelTimers;
      if (batch.timers?.length) b.timers = batch.timers;
      if (batch.history?.length) b.history = batch.history;
      if (batch.counters?.length) b.counters = batch.counters;
      if (Object.keys(b).length === 0) return;
      const ctx = tx.getStore();
      if (ctx && !ctx.done) {
        // Inside a decision the batch travels with COMMIT (or with the next read, if fn reads again first).
        ctx.wrote = true;
        const now = clock.now();
        ctx.pending.push(`SELECT tierline_commit(${ctx.client.escapeLiteral(JSON.stringify(b))}::json, ${Number.isFinite(now) ? now : 0});`);
        return;
      }
      await q('saving a pipeline step', 'SELECT tierline_commit($1::json, $2)', [JSON.stringify(b), clock.now()], true);
    },

    // A change is committed (and its steps visible to every instance) once its call, or its decision, has returned;
    // stepsBeforeSaved changes nothing here.
    async saved() {},

    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      // One waiter per process on the database lock; the rest queue here, in call order, like the memory store.
      let turnOver!: () => void;
      const turn = new Promise<void>((resolve) => (turnOver = resolve));
      const start = () => runExclusive(fn, turnOver);
      const run = localTurn.then(start, start);
      run.then(turnOver, turnOver);
      localTurn = turn;
      inflight.add(run);
      const forget = () => void inflight.delete(run);
      run.then(forget, forget);
      return run;
    },

    async claimJobs(now, limit, leaseMs) {
      if (limit <= 0) return [];
      const exclude = [...excludeKinds()];
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw pgError(err, 'claiming pipeline steps');
      }
      let broken = false;
      const onError = () => void (broken = true);
      client.on('error', onError);
      try {
        // Claims take turns across instances (a short lock), so each claim sees the leases the previous one took:
        // a ticket whose step another instance is running is left alone until that lease ends, which keeps one
        // ticket's steps in order however many instances run them. SKIP LOCKED keeps claims off rows that a commit
        // is completing right now.
        await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_SPACE}, ${LOCK_CLAIM})`);
        const r = await client.query<JobRow>(
          `WITH c AS (
             SELECT id FROM jobs j
             WHERE status = 'pending' AND next_at <= $1 AND lease_until <= $1 AND NOT (kind = ANY($4::text[]))
               AND NOT EXISTS (
                 SELECT 1 FROM jobs o WHERE o.ticket_key = j.ticket_key AND o.status = 'pending' AND o.lease_until > $1 AND o.leased_by IS DISTINCT FROM $5
               )
             ORDER BY next_at, created_at, n
             LIMIT $2
             FOR UPDATE SKIP LOCKED
           )
           UPDATE jobs SET lease_until = $1::double precision + $3::double precision, leased_by = $5, claims = jobs.claims + 1 FROM c WHERE jobs.id = c.id
           RETURNING ${JOB_COLUMNS.split(', ').map((c) => `jobs.${c}`).join(', ')}`,
          [now, limit, leaseMs, exclude, instanceId],
        );
        await client.query('COMMIT');
        return r.rows.sort(byJobOrder).map(toJob);
      } catch (err) {
        broken = true;
        await client.query('ROLLBACK').catch(() => undefined);
        throw pgError(err, 'claiming pipeline steps');
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },

    async failJob(id, error, retryAt) {
      await q(
        'recording a failed step',
        `UPDATE jobs SET attempts = attempts + 1, last_error = $2, lease_until = 0, leased_by = NULL,
           status = CASE WHEN $3::double precision IS NULL THEN 'dead' ELSE status END,
           next_at = coalesce($3::double precision, next_at)
         WHERE id = $1`,
        [id, error, retryAt],
      );
    },

    async deadJobs() {
      const r = await q<JobRow>('listing dead letters', `SELECT ${JOB_COLUMNS} FROM jobs WHERE status = 'dead' ORDER BY n`);
      return r.rows.map(toJob);
    },

    async retryDeadJob(id, now) {
      const r = await q('retrying a dead letter', `UPDATE jobs SET status = 'pending', next_at = $2, attempts = 0 WHERE id = $1 AND status = 'dead'`, [id, now]);
      return (r.rowCount ?? 0) > 0;
    },

    async pendingJobs() {
      const r = await q<{ n: number }>('counting pending steps', `SELECT count(*) AS n FROM jobs WHERE status = 'pending'`);
      return r.rows[0]!.n;
    },

    async dueTimers(now, limit) {
      if (limit <= 0) return [];
      const r = await q<TimerRow>(
        'claiming due timers',
        `WITH c AS (
           SELECT id FROM timers WHERE at <= $1 AND lease_until <= $1 ORDER BY at, n LIMIT $2 FOR UPDATE SKIP LOCKED
         )
         UPDATE timers SET lease_until = $1::double precision + $3::double precision FROM c WHERE timers.id = c.id
         RETURNING timers.id, timers.kind, timers.at, timers.ticket_key, timers.agent_id, timers.n`,
        [now, limit, timerLeaseMs],
      );
      return r.rows.sort((a, b) => a.at - b.at || a.n - b.n).map(toTimer);
    },

    async history(query: HistoryQuery) {
      const where: string[] = [];
      const params: unknown[] = [];
      const p = (v: unknown) => `$${params.push(v)}`;
      if (query.ticketKey) where.push(`h.ticket_key = ${p(query.ticketKey)}`);
      if (query.companyId) where.push(`EXISTS (SELECT 1 FROM tickets t WHERE t.key = h.ticket_key AND t.company_id = ${p(query.companyId)})`);
      if (query.tier) where.push(`coalesce(h.tier, 'unknown') = ${p(query.tier)}`);
      if (query.queueId) where.push(`h.queue_id = ${p(query.queueId)}`);
      if (query.agentId) where.push(`h.agent_id = ${p(query.agentId)}`);
      if (query.kind) where.push(`h.kind = ${p(query.kind)}`);
      const from = Math.max(query.from ?? -Infinity, cutoffNow());
      if (from !== -Infinity) where.push(`h.at >= ${p(from)}`);
      if (query.to !== undefined) where.push(`h.at <= ${p(query.to)}`);
      const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const offset = Math.max(0, query.offset ?? 0);
      const limit = Math.max(0, query.limit ?? 50);
      const r = await q<{ total: number; entries: HistoryEntry[] | null }>(
        'reading routing history',
        // The page is found first (on the history_at index: n, at and seq are in it) and its documents read after,
        // by n, so the rows before a deep page are skipped without reading the table (migration 0004).
        `SELECT (SELECT count(*) FROM history h ${filter}) AS total,
                (SELECT json_agg(d.doc ORDER BY d.at DESC, d.seq DESC, d.n) FROM (
                   SELECT h.n FROM history h ${filter} ORDER BY h.at DESC, h.seq DESC, h.n OFFSET ${p(offset)} LIMIT ${p(limit)}
                 ) page JOIN history d ON d.n = page.n) AS entries`,
        params,
        true,
      );
      return { total: r.rows[0]!.total, entries: r.rows[0]!.entries ?? [] };
    },

    async kvGet<T>(ns: string, key: string) {
      // Inside a decision (a connector reserving its record with the pipeline's commit) on the decision's connection.
      const r = await q<{ value: T | null }>('reading a connector record', 'SELECT value FROM kv WHERE ns = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)', [ns, key, clock.now()], true);
      return r.rows[0]?.value ?? null;
    },

    async kvPut(ns, key, value, opts) {
      const now = clock.now();
      const expiresAt = opts?.ttlMs === undefined ? null : now + opts.ttlMs;
      const json = value === undefined ? null : JSON.stringify(value);
      const ctx = tx.getStore();
      if (ctx && !ctx.done) {
        // Inside a decision (a connector reserving its record with the pipeline's commit) it travels with COMMIT like
        // the decision's batch: saved atomically with it and flushed with it, at no round trip of its own while the
        // decision lock is held.
        ctx.wrote = true;
        const lit = (v: string | null) => (v === null ? 'NULL' : ctx.client.escapeLiteral(v));
        const exp = expiresAt !== null && Number.isFinite(expiresAt) ? String(expiresAt) : 'NULL';
        ctx.pending.push(`INSERT INTO kv (ns, key, value, expires_at) VALUES (${lit(ns)}, ${lit(key)}, ${lit(json)}::json, ${exp}) ${KV_UPSERT};`);
        return;
      }
      await q('saving a connector record', `INSERT INTO kv (ns, key, value, expires_at) VALUES ($1, $2, $3::json, $4) ${KV_UPSERT}`, [ns, key, json, expiresAt]);
    },

    async kvDelete(ns, key) {
      const r = await q('deleting a connector record', 'DELETE FROM kv WHERE ns = $1 AND key = $2', [ns, key]);
      return (r.rowCount ?? 0) > 0;
    },

    async kvList<T>(ns: string) {
      const r = await q<{ key: string; value: T }>('listing connector records', 'SELECT key, value FROM kv WHERE ns = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY n', [ns, clock.now()]);
      return r.rows.map((x) => ({ key: x.key, value: x.value }));
    },

    async close() {
      if (closed) return;
      clearInterval(kvSweep);
      // Let queued decisions finish before the connections go.
      await Promise.allSettled([localTurn, ...inflight]);
      closed = true;
      await pool.end();
    },
  };
  // Expired connector records are filtered out by every read; this sweep deletes them once a minute, off the request
  // path (each instance sweeps; the DELETE is idempotent and cheap on the expires_at index). What left the retention
  // window, also left out by every read, goes hourly: closed tickets have no index on when they closed, so that
  // DELETE reads the whole table.
  let retentionSweptAt = -Infinity;
  const kvSweep = setInterval(() => {
    if (closed) return;
    const now = clock.now();
    const cutoff = retentionCutoff(now, keepMs);
    const retention = cutoff !== -Infinity && now - retentionSweptAt >= 3600_000;
    if (retention) retentionSweptAt = now;
    const sweep = (async () => {
      await q('deleting expired connector records', 'DELETE FROM kv WHERE expires_at <= $1', [now]);
      if (!retention) return;
      await q('deleting routing history older than the retention window', 'DELETE FROM history WHERE at < $1', [cutoff]);
      await q('deleting tickets closed before the retention window', `DELETE FROM tickets WHERE NOT ${RETAINED('$1')}`, [cutoff]);
    })();
    inflight.add(sweep);
    sweep.then(
      () => inflight.delete(sweep),
      (err: unknown) => {
        inflight.delete(sweep);
        log?.warn('expired records could not be deleted; trying again in a minute', { error: err instanceof Error ? err.message : String(err) });
      },
    );
  }, opts.expiredSweepMs ?? 60_000);
  kvSweep.unref();
  log?.info('PostgreSQL store open', { database: describe, instance: instanceId });
  return store;
}
