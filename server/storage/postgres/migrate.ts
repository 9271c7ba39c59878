// Versioned schema migrations: numbered .sql files in ./migrations, each applied once, in order, in its own
// transaction. Every instance runs them at start; a session advisory lock makes concurrent starts take turns, so
// three instances booting at once apply each file exactly once. `npm run migrate` runs the same thing by hand.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { AppError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/ports.ts';
import { LOCK_SPACE, LOCK_MIGRATE, describeDatabase, pgError } from './pg-util.ts';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

export type Migration = { version: number; name: string; sql: string; checksum: string };

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f));
  const out: Migration[] = [];
  for (const f of files) {
    const sql = await readFile(new URL(f, MIGRATIONS_DIR), 'utf8');
    out.push({ version: Number(f.split('_')[0]), name: f.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) if (out[i]!.version === out[i - 1]!.version) throw new AppError('internal', `Two migrations share version ${out[i]!.version} (${out[i - 1]!.name}, ${out[i]!.name}); renumber one of them.`);
  return out;
}

export type MigrateResult = { applied: string[]; version: number };

/** Brings the schema up to date. Safe to call from every instance at once. */
export async function runMigrations(target: pg.Pool | pg.Client | string, logger?: Logger): Promise<MigrateResult> {
  const migrations = await loadMigrations();
  const owned = typeof target === 'string';
  const client = owned ? new pg.Client({ connectionString: target, application_name: 'tierline:migrate' }) : target;
  let conn: pg.PoolClient | pg.Client;
  try {
    if (owned) await (client as pg.Client).connect();
    conn = client instanceof pg.Pool ? await client.connect() : (client as pg.Client);
  } catch (err) {
    throw pgError(err, `connecting to ${owned ? describeDatabase(target) : 'the database'} to migrate the schema`);
  }
  const applied: string[] = [];
  try {
    await conn.query('SELECT pg_advisory_lock($1, $2)', [LOCK_SPACE, LOCK_MIGRATE]);
    try {
      await conn.query(`CREATE TABLE IF NOT EXISTS tierline_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Map((await conn.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM tierline_migrations')).rows.map((r) => [r.version, r]));
      const newest = Math.max(0, ...done.keys());
      const known = migrations.at(-1)?.version ?? 0;
      if (newest > known) {
        throw new AppError('misconfigured', `The database schema is at version ${newest}, newer than this Tierline build knows (${known}); run the Tierline release that migrated it (or newer) against this database.`);
      }
      for (const m of migrations) {
        const prior = done.get(m.version);
        if (prior) {
          if (prior.checksum !== m.checksum) logger?.warn('applied migration differs from its file', { migration: m.name, hint: 'migrations are append-only; put schema changes in a new numbered file' });
          continue;
        }
        try {
          await conn.query('BEGIN');
          await conn.query(m.sql);
          await conn.query('INSERT INTO tierline_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
          await conn.query('COMMIT');
        } catch (err) {
          await conn.query('ROLLBACK').catch(() => undefined);
          throw pgError(err, `applying migration ${m.name}`);
        }
        applied.push(m.name);
        logger?.info('migration applied', { migration: m.name });
      }
      return { applied, version: Math.max(newest, known) };
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_SPACE, LOCK_MIGRATE]).catch(() => undefined);
    }
  } catch (err) {
    throw err instanceof AppError ? err : pgError(err, 'migrating the schema');
  } finally {
    if (client instanceof pg.Pool) (conn as pg.PoolClient).release();
    if (owned) await (client as pg.Client).end().catch(() => undefined);
  }
}

// `npm run migrate`: DATABASE_URL names the database.
if (import.meta.main) {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('DATABASE_URL is not set; set it to postgres://user:password@host:5432/dbname and run `npm run migrate` again.\n');
    process.exit(2);
  }
  try {
    const r = await runMigrations(url);
    process.stdout.write(r.applied.length ? `Applied ${r.applied.join(', ')}; ${describeDatabase(url)} is at schema version ${r.version}.\n` : `${describeDatabase(url)} is up to date (schema version ${r.version}).\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
