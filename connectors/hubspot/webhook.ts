// HubSpot webhook batches: parsed with zod (a JSON array of at most 100 events), filtered to the events that mean
// "this ticket needs routing" (ticket creation, and property changes of mapped properties when the portal's mapping
// asks for it), deduplicated within the batch, and turned into intake events whose idempotency key is stable across
// HubSpot's retries of the same delivery (portal + subscription + eventId; eventId alone is not unique).
import { z } from 'zod';
import type { IntakeEvent } from '../../core/ports.ts';

export const MAX_EVENTS = 100;
/** The ticket property whose change may close (or reopen) a ticket: its pipeline stage. */
export const STAGE_PROPERTY = 'hs_pipeline_stage';

const Id = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,20}$/)]).transform((v) => String(v));

export const WebhookEventSchema = z
  .object({
    eventId: Id,
    subscriptionId: Id,
    portalId: Id,
    appId: Id.optional(),
    occurredAt: z.number().int().nonnegative(),
    subscriptionType: z.string().min(1).max(100),
    attemptNumber: z.number().int().nonnegative().optional(),
    objectId: Id,
    objectTypeId: z.string().max(20).optional(),
    propertyName: z.string().max(200).optional(),
    propertyValue: z.string().optional().nullable(),
    changeSource: z.string().max(100).optional(),
    changeFlag: z.string().max(50).optional(),
    sourceId: z.string().max(200).optional().nullable(),
  })
  .loose();
export type WebhookEvent = z.infer<typeof WebhookEventSchema>;

export const WebhookBatchSchema = z.array(WebhookEventSchema).min(1, 'the batch is empty').max(MAX_EVENTS, `a batch carries at most ${MAX_EVENTS} events`);

// The common case without zod: every webhook delivery is parsed while HubSpot waits for the answer, and zod's copy of
// each event was the largest allocation per webhook at 500 events/s. This accepts only what WebhookEventSchema accepts
// (a property test holds the two together) and returns what it would; anything else, including everything malformed,
// goes through the schema, whose message names the problem.
const DIGITS = /^\d{1,20}$/;
const idOf = (v: unknown): string | undefined => (typeof v === 'number' ? (Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined) : typeof v === 'string' && DIGITS.test(v) ? v : undefined);
const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const text = (v: unknown, max: number) => typeof v === 'string' && v.length <= max;
const absent = (v: unknown) => v === undefined;

function wellFormedEvent(x: unknown): WebhookEvent | null {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return null;
  const e = x as Record<string, unknown>;
  const eventId = idOf(e.eventId);
  const subscriptionId = idOf(e.subscriptionId);
  const portalId = idOf(e.portalId);
  const objectId = idOf(e.objectId);
  const appId = absent(e.appId) ? undefined : idOf(e.appId);
  if (eventId === undefined || subscriptionId === undefined || portalId === undefined || objectId === undefined) return null;
  if (!absent(e.appId) && appId === undefined) return null;
  if (!count(e.occurredAt) || typeof e.subscriptionType !== 'string' || e.subscriptionType.length < 1 || e.subscriptionType.length > 100) return null;
  if (!(absent(e.attemptNumber) || count(e.attemptNumber))) return null;
  if (!(absent(e.objectTypeId) || text(e.objectTypeId, 20)) || !(absent(e.propertyName) || text(e.propertyName, 200))) return null;
  if (!(absent(e.propertyValue) || e.propertyValue === null || typeof e.propertyValue === 'string')) return null;
  if (!(absent(e.changeSource) || text(e.changeSource, 100)) || !(absent(e.changeFlag) || text(e.changeFlag, 50))) return null;
  if (!(absent(e.sourceId) || e.sourceId === null || text(e.sourceId, 200))) return null;
  return { ...e, eventId, subscriptionId, portalId, objectId, ...(appId !== undefined ? { appId } : {}) } as WebhookEvent;
}

/** The batch as WebhookBatchSchema would return it, or null when the schema must judge it. */
export function wellFormedBatch(data: unknown[]): WebhookEvent[] | null {
  if (data.length < 1 || data.length > MAX_EVENTS) return null;
  const out: WebhookEvent[] = [];
  for (const x of data) {
    const e = wellFormedEvent(x);
    if (!e) return null;
    out.push(e);
  }
  return out;
}

/** Parses a raw body; the message names the first problem (path and what was wrong). */
export function parseWebhookBody(raw: string): { ok: true; events: WebhookEvent[] } | { ok: false; message: string } {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, message: 'The body is not JSON; HubSpot sends a JSON array of events.' };
  }
  if (!Array.isArray(data)) return { ok: false, message: 'The body must be a JSON array of HubSpot events.' };
  const fast = wellFormedBatch(data);
  if (fast) return { ok: true, events: fast };
  const p = WebhookBatchSchema.safeParse(data);
  if (!p.success) {
    const i = p.error.issues[0]!;
    const where = i.path.length ? `event ${String(i.path[0])}${i.path.length > 1 ? `.${i.path.slice(1).join('.')}` : ''}` : 'the batch';
    return { ok: false, message: `Malformed HubSpot webhook: ${where}: ${i.message}.` };
  }
  return { ok: true, events: p.data };
}

export type EventKind = 'creation' | 'propertyChange' | 'other';

/** Legacy "ticket.creation" and generic "object.creation" with objectTypeId 0-5 (projects' crmObjects) alike. */
export function ticketEventKind(e: WebhookEvent): EventKind {
  const t = e.subscriptionType.toLowerCase();
  const isTicket = t.startsWith('ticket.') || (t.startsWith('object.') && e.objectTypeId === '0-5');
  if (!isTicket) return 'other';
  if (t.endsWith('.creation')) return 'creation';
  if (t.endsWith('.propertychange')) return 'propertyChange';
  return 'other';
}

export function idempotencyKey(e: WebhookEvent): string {
  return `hubspot:wh:${e.portalId}:${e.subscriptionId}:${e.eventId}`;
}

export type Selection = { events: IntakeEvent[]; ignored: { eventId: string; why: string }[] };

/**
 * The intake events of a batch. `watched(portal)` gives the ticket properties whose change routes a ticket for that
 * portal, or null when property changes are off there.
 */
export function selectEvents(batch: WebhookEvent[], o: { appId: string | null; watched: (portalId: string) => Set<string> | null }): Selection {
  const seen = new Set<string>();
  const out: IntakeEvent[] = [];
  const ignored: Selection['ignored'] = [];
  for (const e of batch) {
    if (o.appId && e.appId && e.appId !== o.appId) {
      ignored.push({ eventId: e.eventId, why: `event of app ${e.appId}, not ${o.appId}` });
      continue;
    }
    const kind = ticketEventKind(e);
    if (kind === 'other') {
      ignored.push({ eventId: e.eventId, why: `${e.subscriptionType} does not route tickets` });
      continue;
    }
    let reason: IntakeEvent['reason'] = kind === 'creation' ? 'created' : 'changed';
    if (kind === 'propertyChange') {
      const w = o.watched(e.portalId);
      const routes = !!e.propertyName && !!w?.has(e.propertyName);
      if (!routes && e.propertyName === STAGE_PROPERTY) {
        // Always subscribed, whether or not property changes route tickets: a ticket closed in HubSpot is resolved in
        // Tierline (the pipeline reads the stage fresh and never routes on this event).
        reason = 'status';
      } else if (!w) {
        ignored.push({ eventId: e.eventId, why: 'property changes do not route tickets in this portal (mapping webhooks.propertyChange is off)' });
        continue;
      } else if (!routes) {
        ignored.push({ eventId: e.eventId, why: `${e.propertyName ?? 'a property'} is not a mapped ticket property` });
        continue;
      }
    }
    const key = idempotencyKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      idempotencyKey: key,
      ref: { crm: 'hubspot', account: e.portalId, ticketId: e.objectId },
      reason,
      at: e.occurredAt,
    });
  }
  return { events: out, ignored };
}
