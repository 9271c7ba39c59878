// Service configuration from the environment, validated once at start. Every problem names the variable and the fix;
// secret values never appear in the messages.
import { z } from 'zod';
import { intakeEnv } from '../connectors/telegram/intake/config.ts';

const url = (name: string) =>
  z
    .string()
    .url(`${name} must be a URL such as https://tierline.example.com`)
    .transform((u) => u.replace(/\/+$/, ''));

const EnvSchema = z.object({
  PORT: z.coerce.number({ error: 'PORT must be a number' }).int().min(0).max(65535).default(8787),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  PUBLIC_URL: url('PUBLIC_URL').optional(),
  ADMIN_TOKEN: z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 24`').optional(),
  SECRETS_KEY: z.string().optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must start with postgres://').optional(),
  INSTANCE_ID: z.string().regex(/^[\w.-]{1,64}$/, 'INSTANCE_ID may use letters, digits, dot, dash and underscore (up to 64)').optional(),
  SAMPLE_TICKETS_PER_MINUTE: z.coerce.number().min(0).max(6000).default(6),
  // Routing history and closed tickets older than this are forgotten (the CRM record keeps its history for good).
  // At least a month (reports compare months) and the intake bot's reopen window (checked below).
  RETENTION_DAYS: z.coerce
    .number({ error: 'RETENTION_DAYS must be a whole number of days (0 keeps everything for good)' })
    .int('RETENTION_DAYS must be a whole number of days (0 keeps everything for good)')
    .refine((n) => n === 0 || n >= 30, 'RETENTION_DAYS must be 0 (keep everything for good) or at least 30 (reports compare months)')
    .default(400),
  READYZ_CRM_CHECK_SECONDS: z.coerce.number({ error: 'READYZ_CRM_CHECK_SECONDS must be a number of seconds' }).min(0).max(3600).default(30),

  HUBSPOT_ACCESS_TOKEN: z.string().min(1).optional(),
  HUBSPOT_CLIENT_ID: z.string().min(1).optional(),
  HUBSPOT_CLIENT_SECRET: z.string().min(1).optional(),
  HUBSPOT_APP_ID: z.string().min(1).optional(),
  HUBSPOT_API_BASE_URL: url('HUBSPOT_API_BASE_URL').default('https://api.hubapi.com'),

  SALESFORCE_CLIENT_ID: z.string().min(1).optional(),
  SALESFORCE_CLIENT_SECRET: z.string().min(1).optional(),
  SALESFORCE_LOGIN_URL: url('SALESFORCE_LOGIN_URL').default('https://login.salesforce.com'),
  SALESFORCE_USERNAME: z.string().min(1).optional(),
  SALESFORCE_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  SALESFORCE_ORG_IDS: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : [])),

  TELEGRAM_API_ID: z.coerce.number({ error: 'TELEGRAM_API_ID must be the numeric api_id from my.telegram.org' }).int().positive().optional(),
  TELEGRAM_API_HASH: z.string().regex(/^[0-9a-f]{32}$/i, 'TELEGRAM_API_HASH must be the 32-character api_hash from my.telegram.org').optional(),
  TELEGRAM_SESSION: z.string().min(1).optional(),
  TELEGRAM_BOT_TOKEN: z.string().regex(/^\d+:[\w-]{30,}$/, 'TELEGRAM_BOT_TOKEN must look like 123456:ABC... (from @BotFather)').optional(),
});

export type Env = z.output<typeof EnvSchema> & {
  PUBLIC_URL: string;
  modes: { hubspot: 'real' | 'sandbox'; salesforce: 'real' | 'sandbox'; telegram: 'real' | 'sandbox' };
};

export class EnvError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Tierline cannot start; fix these settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvError';
    this.problems = problems;
  }
}

/** Parses process.env. Connectors with credentials run for real; the rest run against their sandboxes. */
export function loadEnv(source: Record<string, string | undefined>): Env {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new EnvError(parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];
  const hubspot = e.HUBSPOT_ACCESS_TOKEN || e.HUBSPOT_CLIENT_ID ? 'real' : 'sandbox';
  const salesforce = e.SALESFORCE_CLIENT_ID || e.SALESFORCE_USERNAME ? 'real' : 'sandbox';
  const telegram = e.TELEGRAM_SESSION || e.TELEGRAM_BOT_TOKEN ? 'real' : 'sandbox';
  if (e.HUBSPOT_CLIENT_ID && !e.HUBSPOT_CLIENT_SECRET) problems.push('HUBSPOT_CLIENT_SECRET: required with HUBSPOT_CLIENT_ID (the app’s client secret from the HubSpot developer account)');
  if (e.SALESFORCE_CLIENT_ID && !e.SALESFORCE_CLIENT_SECRET && !e.SALESFORCE_PRIVATE_KEY_FILE) problems.push('SALESFORCE_CLIENT_SECRET: required with SALESFORCE_CLIENT_ID (web server flow), or set SALESFORCE_USERNAME + SALESFORCE_PRIVATE_KEY_FILE for the JWT flow');
  if (e.SALESFORCE_USERNAME && !e.SALESFORCE_PRIVATE_KEY_FILE) problems.push('SALESFORCE_PRIVATE_KEY_FILE: required with SALESFORCE_USERNAME (JWT bearer flow); point it at the PEM key of the connected app certificate');
  if (salesforce === 'real' && e.SALESFORCE_ORG_IDS.length === 0) problems.push('SALESFORCE_ORG_IDS: list the 18-character org ids whose outbound messages are accepted, comma-separated');
  if (telegram === 'real' && (!e.TELEGRAM_API_ID || !e.TELEGRAM_API_HASH)) problems.push('TELEGRAM_API_ID / TELEGRAM_API_HASH: required for MTProto; create them at https://my.telegram.org');
  const anyReal = hubspot === 'real' || salesforce === 'real' || telegram === 'real';
  if (anyReal && !e.SECRETS_KEY) problems.push('SECRETS_KEY: required when any connector runs for real (it encrypts tokens and sessions at rest); generate one with `openssl rand -base64 32`');
  if (e.SECRETS_KEY && e.SECRETS_KEY.length < 32) problems.push('SECRETS_KEY: too short; use 32 random bytes as base64 (`openssl rand -base64 32`)');
  if (anyReal && !e.ADMIN_TOKEN) problems.push('ADMIN_TOKEN: required when any connector runs for real (it guards the admin API and console); generate one with `openssl rand -hex 24`');
  if (anyReal && !e.PUBLIC_URL) problems.push('PUBLIC_URL: required when any connector runs for real (HubSpot and Salesforce call it back and sign requests against it)');
  try {
    // TELEGRAM_INTAKE_* (the bot's intake form), checked by the intake module's own schema.
    const reopenMs = intakeEnv(source).settings.reopenWindowMs;
    // A customer who writes back within the reopen window reopens their ticket, so it must still be kept then.
    if (reopenMs !== undefined && reopenMs > retentionMs(e)) {
      problems.push(`TELEGRAM_INTAKE_REOPEN_DAYS: longer than RETENTION_DAYS (${e.RETENTION_DAYS}), so a ticket could be forgotten while its customer may still reopen it; lower it or raise RETENTION_DAYS`);
    }
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  if (problems.length) throw new EnvError(problems);
  return { ...e, PUBLIC_URL: e.PUBLIC_URL ?? `http://localhost:${e.PORT}`, modes: { hubspot, salesforce, telegram } };
}

/** How long the store keeps routing history and closed tickets (Infinity: for good). */
export function retentionMs(env: Pick<Env, 'RETENTION_DAYS'>): number {
  return env.RETENTION_DAYS === 0 ? Infinity : env.RETENTION_DAYS * 24 * 3600_000;
}

/** Values that must never be printed: the log redactor and the secret-scanning test use this list. */
export function secretValues(env: Env): string[] {
  return [env.ADMIN_TOKEN, env.SECRETS_KEY, env.HUBSPOT_ACCESS_TOKEN, env.HUBSPOT_CLIENT_SECRET, env.SALESFORCE_CLIENT_SECRET, env.TELEGRAM_API_HASH, env.TELEGRAM_SESSION, env.TELEGRAM_BOT_TOKEN].filter(
    (v): v is string => typeof v === 'string' && v.length >= 8,
  );
}
