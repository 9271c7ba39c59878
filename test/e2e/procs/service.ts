// A Tierline service process for the process-level tests: `npm start` in sandbox mode, except that the sandboxes
// live in the test process (external), so what they hold survives this process being killed.
//
//   node service.ts <json ServiceChildOptions>   prints "ready <url>" once listening, stops cleanly on SIGTERM.
// First: the power-cut test's sync recorder must wrap fsync before the store's module binds it.
import './sync-recorder.ts';
import { loadEnv } from '../../../server/env.ts';
import { createLogger } from '../../../server/logger.ts';
import { startService, type ExternalSandboxes } from '../../../server/service.ts';
import type { PipelineOptions } from '../../../core/pipeline.ts';
import { stopOnSigterm } from './stop-on-sigterm.ts';

export type ServiceChildOptions = {
  dataDir: string;
  /** PUBLIC_URL: the load balancer's address, which the sandboxes deliver to and sign against. */
  publicUrl: string;
  databaseUrl?: string;
  instanceId?: string;
  adminToken: string;
  secretsKey: string;
  external: ExternalSandboxes;
  pipeline?: Partial<PipelineOptions>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
};

const o = JSON.parse(process.argv[2]!) as ServiceChildOptions;
const env = loadEnv({
  DATA_DIR: o.dataDir,
  PORT: '0',
  HOST: '127.0.0.1',
  PUBLIC_URL: o.publicUrl,
  ADMIN_TOKEN: o.adminToken,
  SECRETS_KEY: o.secretsKey,
  SAMPLE_TICKETS_PER_MINUTE: '0',
  LOG_LEVEL: o.logLevel ?? 'error',
  ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
  ...(o.instanceId ? { INSTANCE_ID: o.instanceId } : {}),
});
const logger = createLogger({ level: env.LOG_LEVEL, secrets: () => [o.adminToken, o.secretsKey], write: (line) => process.stderr.write(line + '\n') });
const service = await startService({ env, logger, simulatedAgents: false, sampleTicketsPerMinute: 0, external: o.external, ...(o.pipeline ? { pipeline: o.pipeline } : {}) });
process.stdout.write(`ready ${service.url}\n`);

stopOnSigterm(service);
