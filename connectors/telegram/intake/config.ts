// The intake's settings from the environment (TELEGRAM_INTAKE_*), zod-checked, and the choice of CRM the bot opens
// tickets in: the one named, else the first connected CRM with an account (HubSpot portal / Salesforce org).
import { z } from 'zod';
import { AppError } from '../../../core/errors.ts';
import type { CrmIntakePort } from '../../../core/ports.ts';
import type { IntakeCrm, IntakeSettings } from './index.ts';
import { DEFAULT_INTAKE_SETTINGS } from './index.ts';

const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
  .optional();
const flag = z.enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no']).transform((v) => ['true', '1', 'on', 'yes'].includes(v)).optional();
const count = z.coerce.number().int().positive().max(100_000).optional();

const IntakeEnvSchema = z.object({
  TELEGRAM_INTAKE: flag,
  TELEGRAM_INTAKE_CRM: z.enum(['hubspot', 'salesforce']).optional(),
  TELEGRAM_INTAKE_ACCOUNT: z.string().regex(/^[A-Za-z0-9]{1,20}$/).optional(),
  TELEGRAM_INTAKE_CREATE_CONTACTS: flag,
  TELEGRAM_INTAKE_PRODUCTS: list,
  TELEGRAM_INTAKE_CATEGORIES: list,
  TELEGRAM_INTAKE_NOTE_PREFIXES: list,
  TELEGRAM_INTAKE_REOPEN_DAYS: count,
  TELEGRAM_INTAKE_MESSAGES_PER_MINUTE: count,
  TELEGRAM_INTAKE_MAX_OPEN_TICKETS: count,
  TELEGRAM_INTAKE_BLOCKED: list,
});

export type IntakeEnv = { enabled: boolean; crm: 'hubspot' | 'salesforce' | null; account: string | null; settings: Partial<IntakeSettings> };

export function intakeEnv(env: Record<string, string | undefined>): IntakeEnv {
  const p = IntakeEnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('TELEGRAM_INTAKE') && v !== undefined && v !== '')));
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw new AppError('misconfigured', `${String(i.path[0])}: ${i.message}. Fix it in the environment (see the intake section of connectors/telegram/README.md).`);
  }
  const e = p.data;
  const d = DEFAULT_INTAKE_SETTINGS;
  const settings: Partial<IntakeSettings> = {};
  if (e.TELEGRAM_INTAKE_CREATE_CONTACTS !== undefined) settings.createContacts = e.TELEGRAM_INTAKE_CREATE_CONTACTS;
  if (e.TELEGRAM_INTAKE_PRODUCTS?.length || e.TELEGRAM_INTAKE_CATEGORIES?.length) settings.form = { ...d.form, ...(e.TELEGRAM_INTAKE_PRODUCTS?.length ? { products: e.TELEGRAM_INTAKE_PRODUCTS } : {}), ...(e.TELEGRAM_INTAKE_CATEGORIES?.length ? { categories: e.TELEGRAM_INTAKE_CATEGORIES } : {}) };
  if (e.TELEGRAM_INTAKE_NOTE_PREFIXES?.length) settings.notePrefixes = e.TELEGRAM_INTAKE_NOTE_PREFIXES;
  if (e.TELEGRAM_INTAKE_REOPEN_DAYS) settings.reopenWindowMs = e.TELEGRAM_INTAKE_REOPEN_DAYS * 86_400_000;
  if (e.TELEGRAM_INTAKE_MESSAGES_PER_MINUTE) settings.rateLimit = { messages: e.TELEGRAM_INTAKE_MESSAGES_PER_MINUTE, windowMs: 60_000 };
  if (e.TELEGRAM_INTAKE_MAX_OPEN_TICKETS) settings.maxOpenTickets = e.TELEGRAM_INTAKE_MAX_OPEN_TICKETS;
  if (e.TELEGRAM_INTAKE_BLOCKED?.length) settings.blocked = e.TELEGRAM_INTAKE_BLOCKED.filter((x) => /^\d+$/.test(x));
  return { enabled: e.TELEGRAM_INTAKE ?? true, crm: e.TELEGRAM_INTAKE_CRM ?? null, account: e.TELEGRAM_INTAKE_ACCOUNT ?? null, settings };
}

/** What the intake needs to know of a CRM connector (HubSpot: portals(); Salesforce: allowedOrgs()). */
export type IntakeCapableConnector = { id: 'hubspot' | 'salesforce'; intake?: CrmIntakePort; portals?: () => Promise<string[]>; allowedOrgs?: () => string[] };

export function intakeCrmFrom(connectors: IntakeCapableConnector[], e: Pick<IntakeEnv, 'crm' | 'account'>): () => Promise<IntakeCrm | null> {
  return async () => {
    for (const c of connectors) {
      if (!c.intake || (e.crm && c.id !== e.crm)) continue;
      const account = e.account ?? (c.portals ? (await c.portals())[0] : c.allowedOrgs?.()[0]) ?? null;
      if (account) return { crm: c.id, account, port: c.intake };
    }
    return null;
  };
}
