// The service process the soak measures: `npm start` in sandbox mode on the lowdb store (or PostgreSQL), with the sandboxes in the
// soak process (external), so the resident memory and the data directory measured here are Tierline's alone.
//
//   node test/soak/service.ts <json SoakServiceOptions>   prints "ready <url>", stops cleanly on SIGTERM.
import type { ExternalSandboxes } from '../../server/service.ts';
import { loadEnv } from '../../server/env.ts';
import { createLogger } from '../../server/logger.ts';
import { startService } from '../../server/service.ts';
import { openLowdbStore } from '../../server/storage/lowdb-store.ts';
import { openPostgresStore } from '../../server/storage/postgres/postgres-store.ts';
import { stopOnSigterm } from '../e2e/procs/stop-on-sigterm.ts';

export type SoakServiceOptions = { dataDir: string; publicUrl: string; adminToken: string; secretsKey: string; external: ExternalSandboxes; closedTicketRetentionMs: number; databaseUrl?: string };

const o = JSON.parse(process.argv[2]!) as SoakServiceOptions;
const env = loadEnv({ DATA_DIR: o.dataDir, PORT: '0', HOST: '127.0.0.1', PUBLIC_URL: o.publicUrl, ADMIN_TOKEN: o.adminToken, SECRETS_KEY: o.secretsKey, SAMPLE_TICKETS_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
const logger = createLogger({ level: 'warn', secrets: () => [o.adminToken, o.secretsKey], write: (line) => process.stderr.write(line + '\n') });
const clock = { now: () => Date.now() };
// The store as startService would open it, except for how long closed tickets and the connectors' idempotency
// records of finished work (a day by default) stay in the live file, how long event keys and finished steps' ids
// are remembered against duplicates (seven days by default) and how long routing history and closed tickets are kept
// at all (RETENTION_DAYS, 400 by default): all four set to the soak's retention, so the store's steady state (every
// window full) arrives within the run.
// On PostgreSQL (--store postgres) the store keeps nothing per ticket in the process; one instance holds Telegram.
const store = o.databaseUrl
  ? await openPostgresStore({ url: o.databaseUrl, clock, logger: logger.child({ component: 'store' }) })
  : await openLowdbStore({ dir: o.dataDir, clock, logger: logger.child({ component: 'store' }), closedTicketRetentionMs: o.closedTicketRetentionMs, expiringRecordsMaxMs: o.closedTicketRetentionMs, dedupeWindowMs: o.closedTicketRetentionMs, retentionMs: o.closedTicketRetentionMs });
const service = await startService({ env, logger, clock, store, simulatedAgents: false, sampleTicketsPerMinute: 0, external: o.external });
process.stdout.write(`ready ${service.url}\n`);
// The soak reads the heap alongside the RSS it samples from /proc (is growth live data or just an unreturned heap?).
setInterval(() => {
  const m = process.memoryUsage();
  process.stdout.write(`mem ${JSON.stringify({ heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
}, 2_000).unref();

stopOnSigterm(service);
