// The "Route to Telegram" custom workflow action (v4 request shape). HubSpot POSTs {callbackId, origin, object, ...};
// Tierline stores the callback, accepts the ticket into intake, and answers BLOCK so the workflow waits. Once the
// routing outcome is written back, the callback is completed with the queue, agent and topic link as output fields,
// which later workflow steps can use. Pending callbacks live in the store (a restart does not lose them).
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import type { Clock, Logger, Store } from '../../core/ports.ts';
import { NS, type PortalSession } from './client.ts';

const Id = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,20}$/)]).transform((v) => String(v));

export const ActionRequestSchema = z
  .object({
    callbackId: z.string().min(1).max(200),
    origin: z.object({ portalId: Id, actionDefinitionId: Id.optional(), actionDefinitionVersion: z.number().optional() }).loose(),
    context: z.object({ source: z.string().optional(), workflowId: Id.optional() }).loose().optional(),
    object: z.object({ objectId: Id, objectType: z.string().min(1).max(40) }).loose(),
    inputFields: z.record(z.string(), z.unknown()).optional(),
    fields: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type ActionRequest = z.infer<typeof ActionRequestSchema>;

export function parseActionBody(raw: string): { ok: true; request: ActionRequest } | { ok: false; message: string } {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, message: 'The body is not JSON; HubSpot sends the workflow action request as a JSON object.' };
  }
  const p = ActionRequestSchema.safeParse(data);
  if (!p.success) {
    const i = p.error.issues[0]!;
    return { ok: false, message: `Malformed workflow action request: ${i.path.join('.') || '(root)'}: ${i.message}.` };
  }
  return { ok: true, request: p.data };
}

/** The output fields the action definition declares (app/src/app/workflow-actions/route-to-telegram-hsmeta.json). */
export const OUTPUT_FIELDS = ['queue', 'agent', 'topic_link'] as const;

export type PendingCallback = { callbackId: string; portalId: string; ticketId: string; at: number };
type PendingRecord = { callbacks: PendingCallback[] };

export function createCallbacks(o: { store: Store; clock: Clock; logger: Logger; session: (portalId: string) => PortalSession }) {
  const { store, clock, logger } = o;

  async function remember(ticketKey: string, cb: PendingCallback): Promise<void> {
    const cur = (await store.kvGet<PendingRecord>(NS.callbacks, ticketKey)) ?? { callbacks: [] };
    if (cur.callbacks.some((x) => x.callbackId === cb.callbackId)) return;
    await store.kvPut(NS.callbacks, ticketKey, { callbacks: [...cur.callbacks, cb] } satisfies PendingRecord);
  }

  async function pending(ticketKey: string): Promise<PendingCallback[]> {
    return (await store.kvGet<PendingRecord>(NS.callbacks, ticketKey))?.callbacks ?? [];
  }

  async function forget(ticketKey: string, callbackId: string): Promise<void> {
    const cur = await pending(ticketKey);
    const rest = cur.filter((x) => x.callbackId !== callbackId);
    if (rest.length) await store.kvPut(NS.callbacks, ticketKey, { callbacks: rest } satisfies PendingRecord);
    else await store.kvDelete(NS.callbacks, ticketKey);
  }

  /**
   * Completes every pending callback of the ticket; each one at most once. FAIL_CONTINUE: the ticket will not be
   * routed, and the workflow goes on down its failure path.
   */
  async function complete(ticketKey: string, outputs: Record<(typeof OUTPUT_FIELDS)[number], string>, state: 'SUCCESS' | 'FAIL_CONTINUE' = 'SUCCESS'): Promise<number> {
    let done = 0;
    for (const cb of await pending(ticketKey)) {
      try {
        await o.session(cb.portalId).run(`complete workflow callback ${cb.callbackId}`, (c) => c.automation.actions.callbacksApi.complete(cb.callbackId, { outputFields: { hs_execution_state: state, ...outputs } }));
        done++;
      } catch (err) {
        // 400/404: HubSpot no longer waits for it (completed by an earlier attempt, expired, or the workflow was
        // turned off). Retrying cannot help; anything else is retried with the write-back.
        if (!(err instanceof AppError && (err.code === 'not_found' || err.code === 'invalid_input'))) throw err;
        logger.warn('hubspot workflow callback was not waiting any more', { ticket: ticketKey, callback: cb.callbackId, error: err.message });
      }
      await forget(ticketKey, cb.callbackId);
    }
    if (done) logger.info('hubspot workflow callbacks completed', { ticket: ticketKey, count: done });
    return done;
  }

  return { remember, pending, complete, now: () => clock.now() };
}
