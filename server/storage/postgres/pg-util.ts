// Shared by the PostgreSQL store, the migration runner and the leader lock: advisory lock ids, error translation,
// and a printable description of a database URL that never includes its password.
import pg from 'pg';
import { AppError } from '../../../core/errors.ts';

/** First key of every Tierline advisory lock ('TRLN'), so they cannot collide with another app's locks. */
export const LOCK_SPACE = 0x54524c4e;
export const LOCK_ROUTING = 1;
export const LOCK_MIGRATE = 2;
export const LOCK_CONFIG = 3;
export const LOCK_CLAIM = 4;

/** Second key for a named single-holder role (e.g. `telegram:<account>`): a stable 31-bit FNV-1a hash, never 1-15. */
export function lockIdOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const id = (h >>> 1) & 0x7fffffff;
  return id < 16 ? id + 16 : id;
}

/** host:port/database for messages; user and password are left out. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `PostgreSQL at ${host}${u.port ? `:${u.port}` : ''}/${decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)'}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL could not be parsed)';
  }
}

/** int8 (counts) as numbers; everything Tierline stores in int8 is far below 2^53. */
export const PG_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (o: number, f?: 'text' | 'binary') => (v: string) => unknown)(oid, format);
  },
} as pg.CustomTypesConfig;

const TRANSIENT = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300', '08000', '08003', '08006', '08001', '08004']);

/** Deadlocks, serialization failures, dropped connections: the same statement may succeed if run again. */
export function isTransientPgError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TRANSIENT.has(code)) return true;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code);
}

/**
 * An AppError a database operator can act on. Codes other than misconfigured are retryable, so a pipeline step
 * that hit a restarting database is retried rather than dead-lettered. Messages carry no connection secrets.
 */
export function pgError(err: unknown, doing: string): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  const detail = (e?.message ?? String(err)).replace(/postgres(ql)?:\/\/[^\s]*/gi, '<DATABASE_URL>');
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new AppError('upstream', `PostgreSQL is unreachable while ${doing} (${code}); check DATABASE_URL's host and port and that the server is running.`, { cause: err });
  if (code === '28P01' || code === '28000')
    return new AppError('misconfigured', `PostgreSQL rejected the login while ${doing}; check the user and password in DATABASE_URL and pg_hba.conf.`, { cause: err });
  if (code === '3D000') return new AppError('misconfigured', `The database named in DATABASE_URL does not exist (${doing}); create it with \`createdb\` or fix the name.`, { cause: err });
  if (code === '42501') return new AppError('misconfigured', `The PostgreSQL user lacks a privilege while ${doing}: ${detail}. Grant it, or run \`npm run migrate\` as the schema owner.`, { cause: err });
  if (code === '42P01' || code === '42883')
    return new AppError('misconfigured', `The Tierline schema is missing or outdated while ${doing} (${detail}); run \`npm run migrate\` with this DATABASE_URL.`, { cause: err });
  if (code === '53100') return new AppError('internal', `PostgreSQL is out of disk space while ${doing}; free space on the database server.`, { cause: err });
  return new AppError('internal', `PostgreSQL failed while ${doing}: ${detail}${code ? ` (SQLSTATE ${code})` : ''}.`, { cause: err });
}
