// Change Data Capture through jsforce streaming (faye over CometD) against the sandbox: new Cases routed, Tierline's
// own write-backs not looping back, the replay id persisted and resumed after a restart, re-routing on segment-field
// changes when enabled, and a streaming session that expires being renewed.
import { afterEach, describe, expect, it } from 'vitest';
import { createSalesforceConnector } from '../../../connectors/salesforce/index.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { changeToEvents } from '../../../connectors/salesforce/cdc.ts';
import { defaultMapping, SalesforceMappingSchema } from '../../../connectors/salesforce/mapping.ts';
import type { IntakeEvent } from '../../../core/ports.ts';
import { silentLogger } from '../../../server/logger.ts';
import { SECRETS_KEY, startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
const extra: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of extra.splice(0)) await f();
  await h?.close();
  h = null;
});

/** Polls until the condition holds; streaming delivery is asynchronous by nature. */
async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 8_000): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

const cdcKeys = (events: IntakeEvent[]) => events.filter((e) => e.idempotencyKey.startsWith('salesforce:cdc:'));

describe('Salesforce change events (CDC)', () => {
  it('routes Cases from /data/CaseChangeEvent and persists the replay id', async () => {
    h = await startHarness({ pipeline: true, sandbox: { cometdHoldMs: 300 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    expect((await h.connector.health()).orgs).toMatchObject([{ changeEvents: { status: 'subscribed' } }]);

    const c = await h.sb.createCase({ subject: 'Arrived by CDC', notify: false });
    const [ev] = await waitFor('the change event', () => (cdcKeys(h!.accepted).length ? cdcKeys(h!.accepted) : null));
    expect(ev).toMatchObject({ reason: 'created', ref: { crm: 'salesforce', account: h.sb.orgId, ticketId: c.id } });
    await waitFor('the replay id', () => h!.store.kvGet<{ replayId: number }>('salesforce:replay', h!.sb.orgId));

    await h.drain();
    expect(h.sb.routingEvents(c.id).map((e) => e.Kind__c)).toEqual(['routed']);
    expect(h.sb.case(c.id)!.Tierline_Queue__c).toBeTruthy();

    // Our write-back changed the Case (an UPDATE event with Tierline fields only): no new routing.
    const updates = await waitFor('the write-back change event', () => {
      const list = h!.sb.changeEvents().filter((m) => (m.data as { payload: { ChangeEventHeader: { changeType: string } } }).payload.ChangeEventHeader.changeType === 'UPDATE');
      return list.length ? list : null;
    });
    const lastReplay = (updates.at(-1)!.data as { event: { replayId: number } }).event.replayId;
    await waitFor('the replay id to pass the update', async () => ((await h!.store.kvGet<{ replayId: number }>('salesforce:replay', h!.sb.orgId))?.replayId ?? 0) >= lastReplay);
    expect(cdcKeys(h.accepted)).toHaveLength(1);
  });

  it('resumes from the stored replay id after a restart: nothing lost, nothing twice', async () => {
    h = await startHarness({ sandbox: { cometdHoldMs: 300 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    const first = await h.sb.createCase({ subject: 'Before the restart', notify: false });
    await waitFor('the first event', () => cdcKeys(h!.accepted).length === 1);
    await waitFor('its replay id stored', async () => !!(await h!.store.kvGet('salesforce:replay', h!.sb.orgId)));
    await h.connector.stop();

    const whileDown = [await h.sb.createCase({ subject: 'While down 1', notify: false }), await h.sb.createCase({ subject: 'While down 2', notify: false })];
    const seen: IntakeEvent[] = [];
    const again = await createSalesforceConnector({
      env: { loginUrl: h.sb.url, orgIds: [h.sb.orgId], publicUrl: h.publicUrl },
      mode: 'sandbox',
      store: h.store,
      secrets: createSecretBox(SECRETS_KEY),
      logger: silentLogger,
      clock: h.clock,
      intake: { accept: async (e) => (seen.push(...e), { accepted: e.length, duplicates: 0 }) },
      cdcRetryMs: 20,
    });
    extra.push(() => again.stop());
    await again.start();
    await waitFor('the events missed while down', () => cdcKeys(seen).length >= 2);
    const ids = cdcKeys(seen).map((e) => e.ref.ticketId);
    expect(ids).toEqual(whileDown.map((c) => c.id));
    expect(ids).not.toContain(first.id);
  });

  it('re-routes on a segment field change only when enabled, never on other edits', async () => {
    h = await startHarness({ sandbox: { cometdHoldMs: 300 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true, rerouteOnChange: true } });
    const c = await h.sb.createCase({ subject: 'Will change', notify: false, type: 'Question' });
    await waitFor('the create event', () => cdcKeys(h!.accepted).length === 1);
    h.sb.updateCase(c.id, { Subject: 'Will change (edited)' });
    h.sb.updateCase(c.id, { Type: 'Billing' });
    await waitFor('the change event', () => cdcKeys(h!.accepted).length === 2);
    expect(cdcKeys(h.accepted).map((e) => e.reason)).toEqual(['created', 'changed']);
  });

  it('renews the streaming session after it expires', async () => {
    h = await startHarness({ sandbox: { cometdHoldMs: 100 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    await h.sb.createCase({ subject: 'Before expiry', notify: false });
    await waitFor('the first event', () => cdcKeys(h!.accepted).length === 1);
    h.sb.expireSession();
    const during = await h.sb.createCase({ subject: 'While the session is dead', notify: false });
    // The next long-poll is refused (401), the re-handshake is denied, and the connector refreshes and resubscribes.
    await waitFor('a refreshed session', async () => (await h!.store.kvGet<{ refreshedAt: number | null }>('salesforce:installs', h!.sb.orgId))!.refreshedAt !== null);
    const after = await h.sb.createCase({ subject: 'After renewal', notify: false });
    await waitFor('events from both sides of the renewal', () => [during.id, after.id].every((id) => cdcKeys(h!.accepted).some((e) => e.ref.ticketId === id)));
    expect(h.sb.streamingClients()).toBe(1);
  });

  it('stops the subscription when the mapping turns change events off', async () => {
    h = await startHarness({ sandbox: { cometdHoldMs: 300 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    await waitFor('a streaming client', () => h!.sb.streamingClients() === 1);
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: false } });
    await waitFor('the client gone', () => h!.sb.streamingClients() === 0);
    expect((await h.connector.health()).orgs).toMatchObject([{ changeEvents: { status: 'off' } }]);
  });
});

describe('change event -> intake events (pure)', () => {
  const ORG = '00DTL00000000012AA';
  const msg = (header: Record<string, unknown>, replayId = 7) => ({ channel: '/data/CaseChangeEvent', data: { payload: { ChangeEventHeader: { entityName: 'Case', recordIds: ['500TL00000015yyYAA'], transactionKey: 'tx-1', sequenceNumber: 1, commitTimestamp: 1_700_000_000_000, changedFields: [], ...header } }, event: { replayId } } });

  it('keys events by transaction and sequence, so a replayed event dedupes', () => {
    const a = changeToEvents(ORG, msg({ changeType: 'CREATE' }, 7), defaultMapping(), 0)!;
    const b = changeToEvents(ORG, msg({ changeType: 'CREATE' }, 9), defaultMapping(), 0)!;
    expect(a.events[0]!.idempotencyKey).toBe(b.events[0]!.idempotencyKey);
    expect(a.events[0]!.at).toBe(1_700_000_000_000);
  });

  it('sends a status event when a Case is closed (or its status changes), whether or not changes re-route', () => {
    const off = SalesforceMappingSchema.parse({ changeEvents: { enabled: true } });
    const closed = changeToEvents(ORG, msg({ changeType: 'UPDATE', changedFields: ['Status', 'IsClosed', 'LastModifiedDate'] }), off, 0)!;
    expect(closed.events.map((e) => e.reason)).toEqual(['status']);
    expect(changeToEvents(ORG, msg({ changeType: 'UPDATE', changedFields: ['Subject', 'LastModifiedDate'] }), off, 0)!).toMatchObject({ events: [], skipped: 're-routing on change is off' });
    // With re-routing on, a segment field changed in the same edit makes it a change event (which also resolves a closed Case).
    const on = SalesforceMappingSchema.parse({ changeEvents: { enabled: true, rerouteOnChange: true } });
    expect(changeToEvents(ORG, msg({ changeType: 'UPDATE', changedFields: ['Status', 'Type'] }), on, 0)!.events.map((e) => e.reason)).toEqual(['changed']);
    expect(changeToEvents(ORG, msg({ changeType: 'UPDATE', changedFields: ['Status'] }), on, 0)!.events.map((e) => e.reason)).toEqual(['status']);
  });

  it('treats gap events as possibly relevant and ignores other objects and deletes', () => {
    const m = SalesforceMappingSchema.parse({ changeEvents: { enabled: true, rerouteOnChange: true } });
    expect(changeToEvents(ORG, msg({ changeType: 'GAP_UPDATE' }), m, 0)!.events).toHaveLength(1);
    expect(changeToEvents(ORG, msg({ changeType: 'GAP_CREATE' }), defaultMapping(), 0)!.events[0]!.reason).toBe('created');
    expect(changeToEvents(ORG, msg({ changeType: 'DELETE' }), m, 0)!.events).toEqual([]);
    expect(changeToEvents(ORG, msg({ changeType: 'UPDATE', changedFields: ['Tierline_Queue__c', 'LastModifiedDate'] }), m, 0)!.skipped).toBe('no segment field changed');
    expect(changeToEvents(ORG, { nonsense: true }, m, 0)).toBeNull();
  });
});
