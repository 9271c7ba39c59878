// What the intake keeps in the Store (kv), checked with zod when read back: one record per customer (form state,
// what the CRM knows of them, their tickets, rate-limit window, and their outbox of pending steps, all written in one
// kvPut so a step and its effects on the conversation are saved together), the message-id map of the relay, the
// ticket -> customer index, the update cursors and the block list.
import { z } from 'zod';
import { FORM_LANGUAGES } from '../../../core/intake-form.ts';

export const NS = {
  customers: 'telegram-intake:customers',
  tickets: 'telegram-intake:tickets',
  relay: 'telegram-intake:relay',
  state: 'telegram-intake:state',
  blocked: 'telegram-intake:blocked',
  notices: 'telegram-intake:notices',
} as const;

const Identifier = z.object({ kind: z.enum(['email', 'phone']), value: z.string() });
const ButtonSchema = z.object({ label: z.string(), data: z.string() });

const FormStateSchema = z.object({
  step: z.enum(['identify', 'product', 'category', 'description', 'confirm']),
  lang: z.enum(FORM_LANGUAGES),
  answers: z.object({ identifier: Identifier.nullable(), product: z.string().nullable(), category: z.string().nullable(), description: z.string().nullable() }),
  startedAt: z.number(),
  updatedAt: z.number(),
});

const MarkupSchema = z.union([z.object({ inline: z.array(z.array(ButtonSchema)) }), z.object({ contact: z.object({ share: z.string(), cancel: z.string() }) }), z.object({ hide: z.literal(true) }), z.null()]);

export const ActionSchema = z.discriminatedUnion('kind', [
  /** A message to the customer; `prompt` marks the form question whose buttons count. */
  z.object({ id: z.number(), kind: z.literal('say'), text: z.string(), markup: MarkupSchema, prompt: z.boolean().default(false), randomKey: z.string().optional() }),
  /** Open the CRM ticket from a completed form. */
  z.object({ id: z.number(), kind: z.literal('open'), idempotencyKey: z.string(), lang: z.enum(FORM_LANGUAGES), answers: z.object({ identifier: Identifier, product: z.string(), category: z.string(), description: z.string() }), attempts: z.number().default(0) }),
  /** Copy the customer's message (or its edit) into the ticket's topic. */
  z.object({ id: z.number(), kind: z.literal('in'), ticketKey: z.string(), msgId: z.number(), edit: z.string().optional() }),
  /** Copy an agent's topic message (or its edit) to the customer. */
  z.object({ id: z.number(), kind: z.literal('out'), channelId: z.string(), msgId: z.number(), edit: z.string().optional(), delete: z.boolean().optional() }),
  z.object({ id: z.number(), kind: z.literal('reopen'), ticketKey: z.string() }),
]);
export type Action = z.infer<typeof ActionSchema>;
export type NewAction = Action extends infer A ? (A extends { id: number } ? Omit<A, 'id'> : never) : never;

export const TicketLinkSchema = z.object({ key: z.string(), ref: z.object({ crm: z.enum(['hubspot', 'salesforce']), account: z.string(), ticketId: z.string() }), openedAt: z.number(), idempotencyKey: z.string() });

export const CustomerSchema = z.object({
  userId: z.string(),
  lang: z.enum(FORM_LANGUAGES),
  name: z.string(),
  form: FormStateSchema.nullable(),
  /** Bot-side id of the latest form question; buttons under older messages are stale. */
  promptMsgId: z.number().nullable(),
  /** Buttons of the latest question, so typing a button's label counts as pressing it. */
  buttons: z.array(ButtonSchema).default([]),
  /** The latest question as sent, re-sent when the customer comes back with /start. */
  lastPrompt: z.object({ text: z.string(), markup: MarkupSchema }).nullable().default(null),
  /** Highest private message id handled: a message seen again (catch-up after a restart) is skipped. */
  lastInId: z.number(),
  known: z.object({ crm: z.enum(['hubspot', 'salesforce']), account: z.string(), contactId: z.string().nullable(), companyId: z.string().nullable(), identifier: Identifier.nullable() }).nullable(),
  lookedUp: z.boolean().default(false),
  tickets: z.array(TicketLinkSchema),
  recent: z.array(z.number()),
  tooFastAt: z.number().nullable(),
  notified: z.array(z.string()).default([]),
  seq: z.number(),
  outbox: z.array(ActionSchema),
});
export type CustomerRecord = z.infer<typeof CustomerSchema>;

/**
 * How long the message-id map of a relayed message is kept: an edit or deletion of a message older than this is no
 * longer mirrored to the other side (the message itself stays). Without a limit the map grows by one record per
 * relayed message forever; a month covers the edits and clean-ups of a ticket's working life with room.
 */
export const RELAY_MAP_TTL_MS = 30 * 24 * 3600_000;

export const RelayInSchema = z.object({ userId: z.string(), channelId: z.string(), topicMsgId: z.number().nullable() });
export const RelayOutSchema = z.object({ userId: z.string(), chatMsgId: z.number().nullable() });
