// `npm run migrate-store`: moves an existing single-instance data directory (the lowdb store) into PostgreSQL, so an
// installation can scale out without losing its tickets, history, pending steps, timers, counters, connector
// records (tokens, replay ids) or config versions. Stop Tierline first; the import is one transaction into an
// empty database, so it either lands whole or not at all, and running it twice is refused rather than doubled.
//
//   DATABASE_URL=postgres://... npm run migrate-store -- --from ./data
import pg from 'pg';
import { AppError } from '../../../core/errors.ts';
import type { Batch, CounterOp, Logger } from '../../../core/ports.ts';
import type { MemoryState } from '../memory-store.ts';
import { runMigrations } from './migrate.ts';
import { PG_TYPES, describeDatabase, pgError } from './pg-util.ts';

export type ImportCounts = {
  configs: number;
  tickets: number;
  history: number;
  jobs: number;
  completedJobs: number;
  timers: number;
  inboundKeys: number;
  kv: number;
  counterEntries: number;
};

const CHUNK = 1_000;

function chunks<T>(xs: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** The routing counters as operations that rebuild them on an empty database. */
export function counterOps(c: MemoryState['counters']): CounterOp[] {
  const ops: CounterOp[] = [];
  for (const [agentId, status] of Object.entries(c.status)) ops.push({ op: 'status', agentId, status });
  for (const [agentId, v] of Object.entries(c.load)) ops.push({ op: 'load', agentId, delta: v });
  for (const [queueId, value] of Object.entries(c.rr)) ops.push({ op: 'rr', queueId, value });
  for (const [queueId, value] of Object.entries(c.rotation)) ops.push({ op: 'rotation', queueId, value });
  for (const [queueId, w] of Object.entries(c.waiting)) for (const [ticketKey, since] of Object.entries(w)) ops.push({ op: 'wait', queueId, ticketKey, since });
  return ops;
}

/**
 * Copies a store's whole state into an empty, migrated PostgreSQL database in one transaction. Leases are cleared:
 * the instance that held them is stopped, so the steps are free for whichever instance starts first.
 */
export async function importState(url: string, state: MemoryState, opts: { logger?: Logger; now?: number } = {}): Promise<ImportCounts> {
  await runMigrations(url, opts.logger);
  const client = new pg.Client({ connectionString: url, application_name: 'tierline:migrate-store', types: PG_TYPES });
  try {
    await client.connect();
  } catch (err) {
    throw pgError(err, `connecting to ${describeDatabase(url)}`);
  }
  const now = opts.now ?? Date.now();
  const commit = (b: Batch) => client.query('SELECT tierline_commit($1::json, $2)', [JSON.stringify(b), now]);
  const ops = counterOps(state.counters);
  const counts: ImportCounts = {
    configs: state.configs.length,
    tickets: state.tickets.size,
    history: state.history.length,
    jobs: state.jobs.size,
    completedJobs: state.doneJobs.size,
    timers: state.timers.size,
    inboundKeys: state.inbound.size,
    kv: [...state.kv.values()].reduce((n, m) => n + m.size, 0),
    counterEntries: ops.length,
  };
  try {
    await client.query('BEGIN');
    const existing = (
      await client.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM configs) + (SELECT count(*) FROM tickets) + (SELECT count(*) FROM history) + (SELECT count(*) FROM jobs) + (SELECT count(*) FROM kv) + (SELECT count(*) FROM done_jobs) AS n`,
      )
    ).rows[0]!.n;
    if (existing > 0)
      throw new AppError(
        'conflict',
        `${describeDatabase(url)} already holds Tierline data (${existing} records), so nothing was imported. migrate-store only fills an empty database: point DATABASE_URL at a new database (createdb), or drop this one's tables, and run it again.`,
      );
    for (const part of chunks(state.configs))
      await client.query(
        `INSERT INTO configs (version, config, saved_at, author, note)
         SELECT (j->>'version')::integer, e->'config', (j->>'savedAt')::double precision, j->>'author', j->>'note'
         FROM (SELECT e, e::jsonb AS j FROM json_array_elements($1::json) AS a(e)) s`,
        [JSON.stringify(part)],
      );
    for (const part of chunks([...state.tickets.values()])) await commit({ tickets: part });
    for (const part of chunks(state.history)) await commit({ history: part });
    for (const part of chunks([...state.jobs.values()].map((j) => ({ ...j, leaseUntil: 0 })))) await commit({ jobs: part });
    for (const part of chunks([...state.timers.values()])) await commit({ timers: part });
    for (const part of chunks(ops)) await commit({ counters: part });
    for (const part of chunks([...state.doneJobs.entries()]))
      await client.query('INSERT INTO done_jobs (id, done_at) SELECT * FROM unnest($1::text[], $2::double precision[])', [part.map((d) => d[0]), part.map((d) => d[1])]);
    for (const part of chunks([...state.inbound.entries()]))
      await client.query('INSERT INTO inbound (key, at) SELECT * FROM unnest($1::text[], $2::double precision[])', [part.map((d) => d[0]), part.map((d) => d[1])]);
    const kv = [...state.kv.entries()].flatMap(([ns, m]) => [...m.entries()].map(([key, value]) => ({ ns, key, value })));
    for (const part of chunks(kv))
      await client.query(
        `INSERT INTO kv (ns, key, value)
         SELECT e->>'ns', e->>'key', e->'value' FROM json_array_elements($1::json) WITH ORDINALITY AS a(e, i) ORDER BY i`,
        [JSON.stringify(part.map((r) => ({ ns: r.ns, key: r.key, value: r.value === undefined ? null : r.value })))],
      );
    await client.query('COMMIT');
    opts.logger?.info('store imported', { database: describeDatabase(url), ...counts });
    return counts;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err instanceof AppError ? err : pgError(err, 'importing the data directory');
  } finally {
    await client.end().catch(() => undefined);
  }
}
