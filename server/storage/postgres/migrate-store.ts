// `npm run migrate-store`: moves an existing single-instance data directory (the lowdb store) into PostgreSQL, so an
// installation can scale out without losing its tickets, history, pending steps, timers, counters, connector
// records (tokens, replay ids) or config versions. Stop Tierline first; the import is one transaction into an
// empty database, so it either lands whole or not at all, and running it twice is refused rather than doubled.
//
//   DATABASE_URL=postgres://... npm run migrate-store -- --from ./data
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { AppError } from '../../../core/errors.ts';
import type { Batch, ConfigVersion, CounterOp, HistoryEntry, Job, Logger, TicketRecord, Timer } from '../../../core/ports.ts';
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
    // PostgreSQL's advice after a bulk load: statistics for the planner and the visibility map (history pages are
    // read from an index alone). Autovacuum would get there within minutes; until then the console's pages were slow.
    await client.query('VACUUM (ANALYZE)');
    opts.logger?.info('store imported', { database: describeDatabase(url), ...counts });
    return counts;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err instanceof AppError ? err : pgError(err, 'importing the data directory');
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- reading the data directory

/** Map-like fields may be saved as [key, value] pairs, as a plain object, or as a list of records carrying their key. */
function toMap<V>(raw: unknown, keyOf: (v: V) => string | undefined, field: string): Map<string, V> {
  const m = new Map<string, V>();
  if (raw === undefined || raw === null) return m;
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (Array.isArray(item) && item.length === 2 && typeof item[0] === 'string') m.set(item[0], item[1] as V);
      else {
        const k = keyOf(item as V);
        if (typeof k !== 'string') throw new AppError('invalid_input', `The data file's "${field}" list has an entry without a key; the file may be damaged. Restore it from a backup and run migrate-store again.`);
        m.set(k, item as V);
      }
    }
    return m;
  }
  if (typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw as Record<string, V>)) m.set(k, v);
    return m;
  }
  throw new AppError('invalid_input', `The data file's "${field}" is neither a list nor an object; the file may be damaged.`);
}

const StateFileSchema = z
  .object({
    configs: z.array(z.object({ version: z.number().int(), config: z.unknown(), savedAt: z.number(), author: z.string(), note: z.string() }).passthrough()).default([]),
    inbound: z.unknown(),
    tickets: z.unknown(),
    jobs: z.unknown(),
    doneJobs: z.unknown(),
    timers: z.unknown(),
    history: z.unknown(),
    counters: z
      .object({ status: z.record(z.string(), z.string()).default({}), load: z.record(z.string(), z.number()).default({}), rr: z.record(z.string(), z.number()).default({}), rotation: z.record(z.string(), z.number()).default({}), waiting: z.record(z.string(), z.record(z.string(), z.number())).default({}) })
      .default({ status: {}, load: {}, rr: {}, rotation: {}, waiting: {} }),
    kv: z.unknown(),
  })
  .passthrough();

/** A store state from the parsed JSON of a data file (the memory store's state, as the lowdb store saves it). */
export function stateFromJson(raw: unknown): MemoryState {
  const parsed = StateFileSchema.safeParse(raw);
  if (!parsed.success) throw new AppError('invalid_input', `The data file does not look like a Tierline store (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}); point --from at the DATA_DIR of a Tierline instance.`);
  const f = parsed.data;
  const history = Array.isArray(f.history) ? (f.history as HistoryEntry[]) : [...toMap<HistoryEntry>(f.history, (h) => h.key, 'history').values()];
  const kv = new Map<string, Map<string, unknown>>();
  if (Array.isArray(f.kv) && f.kv.every((r) => r && typeof r === 'object' && !Array.isArray(r) && 'ns' in r)) {
    for (const r of f.kv as { ns: string; key: string; value: unknown }[]) {
      let m = kv.get(r.ns);
      if (!m) kv.set(r.ns, (m = new Map()));
      m.set(r.key, r.value);
    }
  } else for (const [ns, inner] of toMap<unknown>(f.kv, () => undefined, 'kv')) kv.set(ns, toMap<unknown>(inner, () => undefined, `kv.${ns}`));
  return {
    configs: f.configs as unknown as ConfigVersion[],
    inbound: toMap<number>(f.inbound, () => undefined, 'inbound'),
    tickets: toMap<TicketRecord>(f.tickets, (t) => t.key, 'tickets'),
    jobs: toMap<Job>(f.jobs, (j) => j.id, 'jobs'),
    doneJobs: toMap<number>(f.doneJobs, () => undefined, 'doneJobs'),
    timers: toMap<Timer>(f.timers, (t) => t.id, 'timers'),
    history,
    counters: f.counters as MemoryState['counters'],
    kv,
  };
}

/** Finds and parses the store file in a data directory (the JSON file that holds tickets and history). */
export async function readDataDir(dir: string): Promise<{ file: string; state: MemoryState }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch {
    throw new AppError('invalid_input', `Cannot read the data directory ${dir}; pass the DATA_DIR of the Tierline instance with --from.`);
  }
  const candidates: { file: string; raw: Record<string, unknown> }[] = [];
  for (const n of names) {
    const file = join(dir, n);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      continue;
    }
    if (raw && typeof raw === 'object' && !Array.isArray(raw) && ('tickets' in raw || 'history' in raw || 'configs' in raw)) candidates.push({ file, raw: raw as Record<string, unknown> });
  }
  if (candidates.length === 0) throw new AppError('not_found', `No Tierline store file (a .json file with tickets and history) in ${dir}; pass the DATA_DIR of the Tierline instance with --from.`);
  if (candidates.length > 1) throw new AppError('invalid_input', `Several store files in ${dir} (${candidates.map((c) => basename(c.file)).join(', ')}); move the stale ones away and run again.`);
  return { file: candidates[0]!.file, state: stateFromJson(candidates[0]!.raw) };
}

// `npm run migrate-store -- --from ./data`: DATABASE_URL names the (empty) target database.
if (import.meta.main) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--from');
  const from = resolve(at >= 0 && args[at + 1] ? args[at + 1]! : (process.env.DATA_DIR ?? './data'));
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('DATABASE_URL is not set; set it to the new, empty PostgreSQL database (postgres://user:password@host:5432/dbname) and run again.\n');
    process.exit(2);
  }
  try {
    const { file, state } = await readDataDir(from);
    const c = await importState(url, state);
    process.stdout.write(
      `Imported ${file} into ${describeDatabase(url)}: ${c.tickets} tickets, ${c.history} history entries, ${c.jobs} pending or dead steps, ${c.completedJobs} completed step ids, ${c.timers} timers, ${c.kv} connector records, ${c.configs} config versions, ${c.inboundKeys} recent webhook keys, ${c.counterEntries} counter entries.\nStart the instances with DATABASE_URL set; keep ${from} as a backup until they run well.\n`,
    );
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
