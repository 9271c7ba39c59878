// Change Data Capture on /data/CaseChangeEvent through jsforce streaming (CometD), for orgs that prefer it to the
// outbound message. New Cases are routed; updates re-route only when enabled and a field that decides the segment
// changed (Tierline's own write-backs change only Tierline fields, so they never loop back). The replay id is
// persisted after the intake has stored the events, so a restart resumes exactly where it stopped (at-least-once;
// the intake dedupes on the event key).
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import type { Clock, Intake, IntakeEvent, Logger, Store } from '../../core/ports.ts';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import { NS, type OrgSession } from './client.ts';
import { describeError, toAppError, classify } from './errors.ts';
import { isSalesforceId, to18 } from './ids.ts';
import { segmentCaseFields, type SalesforceMapping } from './mapping.ts';
import { patchStreamingProxy } from './proxy.ts';

export const CASE_CHANGE_CHANNEL = '/data/CaseChangeEvent';

// faye hands subscribers the message's `data` ({schema, payload, event}); a full Bayeux message is accepted too.
const ChangeData = z.object({
    payload: z
      .object({
        ChangeEventHeader: z.object({
          entityName: z.string(),
          recordIds: z.array(z.string()),
          changeType: z.string(),
          transactionKey: z.string().optional(),
          sequenceNumber: z.number().optional(),
          commitTimestamp: z.number().optional(),
          changedFields: z.array(z.string()).default([]),
        }),
      })
      .passthrough(),
    event: z.object({ replayId: z.number() }),
});

/** Case fields whose change may close (or reopen) it. */
const STATUS_FIELDS = ['Status', 'IsClosed'] as const;

export type ChangeDecision = { events: IntakeEvent[]; replayId: number; skipped: string | null };

/** Pure: which intake events a change event produces under the org's mapping. */
export function changeToEvents(orgId: string, raw: unknown, mapping: SalesforceMapping, now: number): ChangeDecision | null {
  const data = raw && typeof raw === 'object' && 'data' in raw && !('payload' in raw) ? (raw as { data: unknown }).data : raw;
  const p = ChangeData.safeParse(data);
  if (!p.success) return null;
  const h = p.data.payload.ChangeEventHeader;
  const replayId = p.data.event.replayId;
  const ids = h.recordIds.filter(isSalesforceId).map(to18);
  // The same change replayed carries the same transaction key and sequence; fall back to the replay id.
  const keyBase = h.transactionKey ? `${h.transactionKey}:${h.sequenceNumber ?? 0}` : `r${replayId}`;
  const at = h.commitTimestamp ?? now;
  const type = h.changeType.replace(/^GAP_/, '');
  const mk = (reason: IntakeEvent['reason']) => ids.map((id): IntakeEvent => ({ idempotencyKey: `salesforce:cdc:${orgId}:${keyBase}:${id}`, ref: { crm: 'salesforce', account: orgId, ticketId: id }, reason, at }));
  if (h.entityName !== 'Case') return { events: [], replayId, skipped: `not a Case change (${h.entityName})` };
  if (type === 'CREATE' || type === 'UNDELETE') return { events: mk('created'), replayId, skipped: null };
  if (type === 'UPDATE') {
    const gap = h.changeType.startsWith('GAP_');
    const changed = (fields: readonly string[]) => gap || h.changedFields.some((f) => fields.includes(f.split('.')[0]!));
    // GAP events carry no field list: treat them as possibly relevant.
    if (mapping.changeEvents.rerouteOnChange && changed(segmentCaseFields(mapping))) return { events: mk('changed'), replayId, skipped: null };
    // Whether or not changes re-route: a Case closed in Salesforce is resolved in Tierline (never routed by this).
    if (changed(STATUS_FIELDS)) return { events: mk('status'), replayId, skipped: null };
    return { events: [], replayId, skipped: mapping.changeEvents.rerouteOnChange ? 'no segment field changed' : 're-routing on change is off' };
  }
  return { events: [], replayId, skipped: `change type ${h.changeType}` };
}

type FayeClient = { subscribe(channel: string, cb: (m: unknown) => void): PromiseLike<unknown> & { cancel?: () => void }; disconnect(): void; on?: (e: string, cb: () => void) => void };

export type CdcDeps = { orgId: string; session: () => Promise<OrgSession>; mapping: () => Promise<SalesforceMapping>; intake: Intake; store: Store; logger: Logger; clock: Clock; retryMs: number; onError: (message: string | null) => void };

/** One org's subscription; restarts itself (from the persisted replay id) after failures and expired sessions. */
export function createCdcSubscription(deps: CdcDeps) {
  const { orgId, logger } = deps;
  let client: FayeClient | null = null;
  let stopped = true;
  let chain: Promise<void> = Promise.resolve();
  let retryTimer: NodeJS.Timeout | null = null;
  let generation = 0;
  let status: 'off' | 'connecting' | 'subscribed' | 'error' = 'off';
  let lastReplay: number | null = null;

  function scheduleRestart(reason: string, refresh: boolean) {
    if (stopped || retryTimer) return;
    status = 'error';
    deps.onError(`change events for org ${orgId}: ${reason}`);
    logger.warn('salesforce change events interrupted; resubscribing', { org: orgId, reason, refresh });
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void connect(refresh);
    }, deps.retryMs);
    retryTimer.unref();
  }

  async function handle(gen: number, msg: unknown): Promise<void> {
    if (gen !== generation || stopped) return;
    const d = changeToEvents(orgId, msg, await deps.mapping(), deps.clock.now());
    if (!d) {
      logger.warn('unexpected salesforce change event ignored', { org: orgId });
      return;
    }
    try {
      if (d.events.length) await deps.intake.accept(d.events);
      await deps.store.kvPut(NS.replay, orgId, { replayId: d.replayId, at: deps.clock.now() });
      lastReplay = d.replayId;
    } catch (err) {
      // Not persisted: resubscribing from the last stored replay id delivers this event again.
      generation += 1;
      client?.disconnect();
      client = null;
      scheduleRestart(`could not store a change event (${describeError(err).message})`, false);
    }
  }

  async function connect(refresh: boolean): Promise<void> {
    if (stopped) return;
    const gen = ++generation;
    status = 'connecting';
    // A client that lost its session keeps its own timers until told to disconnect.
    client?.disconnect();
    client = null;
    try {
      const s = await deps.session();
      if (refresh) await s.refresh();
      const stored = await deps.store.kvGet<{ replayId: number }>(NS.replay, orgId);
      const from = stored?.replayId ?? -1;
      patchStreamingProxy();
      const authFailure = new StreamingExtension.AuthFailure(() => {
        if (gen !== generation) return;
        generation += 1;
        scheduleRestart('the streaming session expired', true);
      });
      const c = s.conn.streaming.createClient([new StreamingExtension.Replay(CASE_CHANGE_CHANNEL, from), authFailure]) as unknown as FayeClient;
      if (gen !== generation || stopped) return c.disconnect();
      client = c;
      await c.subscribe(CASE_CHANGE_CHANNEL, (m) => {
        chain = chain.then(() => handle(gen, m)).catch((err) => logger.error('salesforce change event failed', { org: orgId, error: describeError(err).message }));
      });
      if (gen !== generation) return;
      status = 'subscribed';
      deps.onError(null);
      logger.info('salesforce change events subscribed', { org: orgId, channel: CASE_CHANGE_CHANNEL, replayFrom: from });
    } catch (err) {
      if (gen !== generation) return;
      client?.disconnect();
      client = null;
      const d = describeError(err);
      if (/replayId/i.test(d.message)) {
        // The stored replay id fell out of the 3-day retention: replay everything retained (the intake dedupes).
        await deps.store.kvPut(NS.replay, orgId, { replayId: -2, at: deps.clock.now() });
      }
      const e = err instanceof AppError ? err : toAppError(classify(d.code, d.message), { orgId, action: 'subscribe to Case change events' });
      scheduleRestart(e.message, e.code === 'auth_expired' || /401|403::|session/i.test(d.message));
    }
  }

  return {
    async start(): Promise<void> {
      if (!stopped) return;
      stopped = false;
      await connect(false);
    },
    async stop(): Promise<void> {
      stopped = true;
      generation += 1;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      client?.disconnect();
      client = null;
      status = 'off';
      await chain;
    },
    status: () => ({ status, lastReplayId: lastReplay }),
  };
}
