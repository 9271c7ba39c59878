// Shared by the PostgreSQL store tests: one throwaway cluster per test file, a fresh database per store, and
// record builders.
import pg from 'pg';
import type { HistoryEntry, Job, Logger, TicketRecord, Timer } from '../../../core/ports.ts';
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions } from '../../../server/storage/postgres/postgres-store.ts';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from '../../setup/postgres.ts';

export { postgresSkipReason };

export const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

/**
 * A cluster (or, with TIERLINE_TEST_DATABASE_URL, a database) per test file, and a fresh schema per store: the
 * returned URL sets search_path, so each test starts from an empty Tierline schema in a few milliseconds instead of
 * the third of a second a CREATE DATABASE takes.
 */
export function usePostgres() {
  let cluster: TestPostgres | null = null;
  let base = '';
  let schemas = 0;
  const opened: PostgresStore[] = [];
  async function database(): Promise<string> {
    const schema = `t${++schemas}`;
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA ${schema}`);
    } finally {
      await c.end();
    }
    const u = new URL(base);
    u.searchParams.set('options', `-c search_path=${schema}`);
    return u.toString();
  }
  return {
    async start() {
      cluster = await startTestPostgres();
      base = await cluster.createDatabase();
    },
    database,
    async open(opts: Partial<PostgresStoreOptions> & { url?: string } = {}): Promise<PostgresStore> {
      const url = opts.url ?? (await database());
      const s = await openPostgresStore({ logger: silent, ...opts, url });
      opened.push(s);
      return s;
    },
    async stop() {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await cluster?.stop();
    },
  };
}

export function job(id: string, over: Partial<Job> = {}): Job {
  return { id, kind: 'route', ticketKey: `t-${id}`, payload: { id }, attempts: 0, nextAt: 1_000, status: 'pending', lastError: null, leaseUntil: 0, createdAt: 1_000, ...over };
}

export function ticket(key: string, over: Partial<TicketRecord> = {}): TicketRecord {
  return {
    key,
    ref: { crm: 'hubspot', account: '42', ticketId: key },
    status: 'assigned',
    receivedAt: 1_000,
    updatedAt: 1_000,
    subject: `Subject ${key}`,
    customerName: 'Pat Doe',
    companyName: 'Acme',
    companyId: 'co-1',
    recordUrl: null,
    segment: null,
    issues: [],
    tierSource: null,
    queueId: 'general',
    agentId: 'ivan',
    ruleId: null,
    summary: null,
    explanation: [],
    enqueuedAt: 1_000,
    routedAt: 1_000,
    slaDueAt: null,
    topic: null,
    topicRandomId: null,
    topicGroupId: null,
    topicGeneration: 0,
    firstResponseAt: null,
    firstResponderId: null,
    resolvedAt: null,
    slaMet: null,
    overflowCount: 0,
    reassignCount: 0,
    escalated: false,
    seq: 0,
    ...over,
  };
}

export function historyEntry(ticketKey: string, seq: number, over: Partial<HistoryEntry> = {}): HistoryEntry {
  return { key: `${ticketKey}#${seq}`, ticketKey, seq, kind: 'routed', at: 1_000 + seq, queueId: 'general', agentId: 'ivan', ruleId: null, tier: 'standard', text: `entry ${seq}`, ...over };
}

export function timer(id: string, at: number, over: Partial<Timer> = {}): Timer {
  return { id, kind: 'sla_breach', at, ticketKey: `t-${id}`, ...over };
}
