// The whole walk on the real pipeline: a Case created in the sandbox org -> Outbound Message -> Ack -> fresh read ->
// routed -> the outcome on the Case and Routing_Event__c records (the "Routing History" related list), duplicates
// routed once, later events appended, and deleted Cases / missing metadata surfacing as admin-readable errors.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { ticketKey } from '../../../core/segment.ts';
import { createSalesforceConnector } from '../../../connectors/salesforce/index.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { startSalesforceSandbox } from '../../../connectors/salesforce/sandbox/index.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { silentLogger } from '../../../server/logger.ts';
import { recordingLogger, SECRETS_KEY, startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const globex = (x: Harness) => x.sb.accounts().find((a) => a.Name === 'Globex Corporation')!;

describe('Salesforce: outbound message -> routed -> written back', () => {
  it('routes a new Case with fresh Account data and writes the outcome and the history onto it', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'SSO login fails for all users', accountId: globex(h).Id, type: 'Technical', product: 'API' });
    expect(c.delivery).toMatchObject({ status: 'acked', attempts: 1 });
    expect(h.accepted.map((e) => e.idempotencyKey)).toEqual([`salesforce:om:${h.sb.orgId}:${c.notificationId}`]);

    h.sb.clearRequests();
    await h.drain();

    // One SOQL query read the Case with its Account and Contact.
    const reads = h.sb.requests({ method: 'GET' });
    expect(reads).toHaveLength(1);
    expect(reads[0]!.soql).toMatch(/FROM Case WHERE Id = '/);

    const t = await h.store.getTicket(ticketKey({ crm: 'salesforce', account: h.sb.orgId, ticketId: c.id }));
    expect(t).toMatchObject({ queueId: 'vip', ruleId: 'enterprise', companyName: 'Globex Corporation', recordUrl: `${h.sb.url}/lightning/r/Case/${c.id}/view` });
    expect(t!.segment).toMatchObject({ tier: 'enterprise', language: 'de', region: 'EU', product: 'API', category: 'technical' });

    const sfCase = h.sb.case(c.id)!;
    expect(sfCase).toMatchObject({ Tierline_Status__c: 'assigned', Tierline_Queue__c: 'VIP desk', Tierline_Tier__c: 'enterprise', Tierline_Rule__c: 'enterprise', Tierline_Segment__c: 'enterprise · technical · de · EU' });
    expect(sfCase.Tierline_Agent__c).toBeTruthy();
    expect(sfCase.Tierline_Topic_Link__c).toMatch(/^https:\/\/t\.me\//);

    const events = h.sb.routingEvents(c.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ Kind__c: 'routed', Event_Key__c: `${t!.key}#1`, Account__c: globex(h).Id, Queue__c: 'vip', Tier__c: 'enterprise', Rule__c: 'enterprise' });
    expect(String(events[0]!.Reason__c)).toContain('Routed to');

    // The write-back went through sObject Collections: one Case update, one upsert on the external id.
    const writes = h.sb.requests({ method: 'PATCH' }).map((r) => r.path);
    expect(writes).toEqual(['/composite/sobjects', '/composite/sobjects/Routing_Event__c/Event_Key__c']);
  });

  it('appends later events (first reply, resolution) to the Routing History', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'Invoice shows the wrong VAT', accountId: globex(h).Id, type: 'Billing' });
    await h.drain();
    const t = (await h.store.getTicket(`salesforce:${h.sb.orgId}:${c.id}`))!;
    const agentTelegram = (await h.pipeline.currentRouter()).config.agents.find((a) => a.id === t.agentId)!.telegramUserId!;
    h.clock.advance(7 * 60_000);
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: t.topic!.groupId, topicId: t.topic!.topicId, messageId: 501, fromTelegramUserId: agentTelegram, text: 'Looking into it now.', at: h.clock.now() });
    await h.drain();
    await h.pipeline.onMessengerEvent({ kind: 'topic_closed', groupId: t.topic!.groupId, topicId: t.topic!.topicId, at: h.clock.now() + 60_000 });
    h.clock.advance(60_000);
    await h.drain();

    const kinds = h.sb.routingEvents(c.id).map((e) => e.Kind__c);
    expect(kinds).toEqual(['routed', 'first_reply', 'resolved']);
    const reply = h.sb.routingEvents(c.id)[1]!;
    expect(reply.First_Response_Minutes__c).toBe(7);
    expect(reply.SLA_Met__c).toBe('Yes');
    expect(h.sb.case(c.id)).toMatchObject({ Tierline_Status__c: 'resolved', Tierline_First_Response_Minutes__c: 7, Tierline_SLA_Met__c: 'Yes' });
    expect(h.sb.case(c.id)!.Tierline_Resolved_At__c).toBeTruthy();
  });

  it('does not route a Case that is already closed (IsClosed), and writes nothing onto it', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'Old question, answered by phone', accountId: globex(h).Id, status: 'Closed' });
    expect(c.delivery).toMatchObject({ status: 'acked' });
    h.sb.clearRequests();
    await h.drain();
    expect(h.sb.requests({ method: 'GET' }).map((r) => r.soql)).toEqual([expect.stringMatching(/IsClosed.* FROM Case WHERE Id = '/)]);
    expect(await h.store.getTicket(ticketKey({ crm: 'salesforce', account: h.sb.orgId, ticketId: c.id }))).toBeNull();
    expect(h.sb.requests({ method: 'PATCH' })).toEqual([]);
    expect(h.sb.case(c.id)).toMatchObject({ IsClosed: true, Tierline_Status__c: null, Tierline_Topic_Link__c: null });
    expect(h.sb.routingEvents(c.id)).toEqual([]);
    expect(await h.store.deadJobs()).toEqual([]);
  });

  it('resolves a routed Case that a rep closes in Salesforce (its change event), with re-routing on change off', async () => {
    h = await startHarness({ pipeline: true, sandbox: { cometdHoldMs: 300 } });
    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    const c = await h.sb.createCase({ subject: 'Works again after the update', accountId: globex(h).Id });
    await h.drain();
    const key = ticketKey({ crm: 'salesforce', account: h.sb.orgId, ticketId: c.id });
    expect((await h.store.getTicket(key))!.status).toBe('assigned');
    const before = h.accepted.length;
    h.sb.updateCase(c.id, { Status: 'Closed' });
    for (let i = 0; i < 800 && !h.accepted.slice(before).some((e) => e.reason === 'status'); i++) await new Promise((ok) => setTimeout(ok, 10));
    await h.drain();
    expect(await h.store.getTicket(key)).toMatchObject({ status: 'resolved' });
    expect(h.messenger.closed).toHaveLength(1);
    expect(h.sb.routingEvents(c.id).map((e) => e.Kind__c)).toEqual(['routed', 'resolved']);
    expect(h.sb.case(c.id)).toMatchObject({ IsClosed: true, Status: 'Closed', Tierline_Status__c: 'resolved' });
    expect(await h.store.deadJobs()).toEqual([]);
  });

  it('routes a Case once however often Salesforce delivers it', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'Dashboard is slow' });
    // Salesforce missed our Ack and sends the same notification again, twice.
    expect((await h.sb.redeliver(c.notificationId!)).status).toBe('acked');
    expect((await h.sb.redeliver(c.notificationId!)).status).toBe('acked');
    // And a second notification for the same Case (e.g. the flow fired twice).
    const second = await h.postWebhookForCase(c.id);
    expect(second.status).toBe(200);
    await h.drain();
    expect(h.accepted).toHaveLength(4);
    expect(await h.store.tickets()).toHaveLength(1);
    expect(h.sb.routingEvents(c.id).map((e) => e.Kind__c)).toEqual(['routed']);
    expect(h.messenger.topics).toHaveLength(1);
  });

  it('does not duplicate the history when a write-back is retried after Salesforce already applied it', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'Webhook retries' });
    await h.drain();
    const t = (await h.store.getTicket(`salesforce:${h.sb.orgId}:${c.id}`))!;
    const { entries } = await h.store.history({ ticketKey: t.key });
    const fields = h.pipeline.routingFields(t, await h.pipeline.currentRouter());
    await h.connector.crm.writeBack(t.ref, { entry: entries[0]!, fields, companyId: t.companyId });
    await h.connector.crm.writeBack(t.ref, { entry: entries[0]!, fields, companyId: t.companyId });
    expect(h.sb.routingEvents(c.id)).toHaveLength(1);
  });

  it('turns a deleted Case into not_found, for the read and for the write-back', async () => {
    h = await startHarness({ pipeline: true });
    const c = await h.sb.createCase({ subject: 'Spam', notify: false });
    const ref = { crm: 'salesforce' as const, account: h.sb.orgId, ticketId: c.id };
    const ctx = await h.connector.crm.fetchContext(ref);
    h.sb.deleteCase(c.id);
    const read = await h.connector.crm.fetchContext(ref).catch((e: unknown) => e);
    expect(read).toBeInstanceOf(AppError);
    expect((read as AppError).code).toBe('not_found');
    expect((read as AppError).message).toContain(`Case ${c.id} no longer exists`);
    const entry = { key: `salesforce:${h.sb.orgId}:${c.id}#1`, ticketKey: `salesforce:${h.sb.orgId}:${c.id}`, seq: 1, kind: 'routed' as const, at: h.clock.now(), queueId: 'general', agentId: null, ruleId: null, tier: null, text: 'Routed' };
    const fields = { status: 'waiting' as const, queue: 'General', agent: null, segment: 'x', tier: null, rule: null, routedAt: new Date().toISOString(), topicLink: null, firstResponseMinutes: null, resolvedAt: null, slaMet: null, reason: 'r' };
    const write = await h.connector.crm.writeBack(ref, { entry, fields, companyId: ctx.segment.source.companyId }).catch((e: unknown) => e);
    expect((write as AppError).code).toBe('not_found');
    expect((write as AppError).message).toMatch(/record no longer exists/);
    expect(h.sb.routingEvents(c.id)).toHaveLength(0);
    // A deleted record is not an org problem: health stays green.
    expect((await h.connector.health()).ok).toBe(true);
  });

  it('keeps secrets out of logs and stores tokens only sealed', async () => {
    const logger = recordingLogger();
    h = await startHarness({ pipeline: true, logger });
    await h.sb.createCase({ subject: 'Token hygiene' });
    h.sb.expireSession();
    await h.drain();
    const installs = await h.store.kvList<Record<string, unknown>>('salesforce:installs');
    expect(installs).toHaveLength(1);
    const raw = JSON.stringify(installs);
    expect(raw).not.toContain(h.sb.accessToken.slice(-20));
    expect(String(installs[0]!.value.accessToken)).toMatch(/^v1:/);
    expect(String(installs[0]!.value.refreshToken)).toMatch(/^v1:/);
    const logs = logger.lines.join('\n');
    expect(logs).toContain('salesforce session refreshed');
    for (const s of [/![A-Za-z0-9_-]{30,}/, /5Aep[A-Za-z0-9_-]{20,}/, new RegExp(SECRETS_KEY)]) expect(logs).not.toMatch(s);
  });
});

describe('Salesforce: several orgs, one service', () => {
  it('keeps each org\'s outbound messages, reads, writes and API usage apart', async () => {
    const orgB = to18('00DTL00000000B2');
    const b = await startSalesforceSandbox({ orgId: orgB, seed: true });
    try {
      h = await startHarness({ pipeline: true, orgIds: (a) => [a, orgB] });
      // Org B was connected earlier (an OAuth install kept in the store, tokens sealed).
      const box = createSecretBox(SECRETS_KEY);
      await h.store.kvPut('salesforce:installs', orgB, { orgId: orgB, instanceUrl: b.url, userId: b.userId, username: b.username, flow: 'web_server', loginUrl: b.url, accessToken: box.seal(b.accessToken), refreshToken: box.seal(b.refreshToken), installedAt: 0, refreshedAt: null });

      const inA = await h.sb.createCase({ subject: 'Case in org A' });
      const inB = await b.createCase({ subject: 'Case in org B', notify: false });
      expect((await h.postWebhookForOrg(orgB, inB.id)).status).toBe(200);
      b.setLimit(85_000, 100_000);
      await h.drain();

      expect(h.sb.routingEvents(inA.id)).toHaveLength(1);
      expect(b.routingEvents(inB.id)).toHaveLength(1);
      expect(b.case(inB.id)!.Tierline_Status__c).toBeTruthy();
      const tickets = await h.store.tickets();
      expect(tickets.map((t) => [t.ref.account, t.subject]).sort()).toEqual([[h.sb.orgId, 'Case in org A'], [orgB, 'Case in org B']].sort());
      expect(tickets.find((t) => t.ref.account === orgB)!.recordUrl).toBe(`${b.url}/lightning/r/Case/${inB.id}/view`);

      const health = await h.connector.health();
      const usage = Object.fromEntries((health.orgs as { orgId: string; apiUsage: { percent: number } | null }[]).map((o) => [o.orgId, o.apiUsage?.percent ?? null]));
      expect(usage[orgB]).toBeGreaterThanOrEqual(85);
      expect(usage[h.sb.orgId]).toBeLessThan(1);
      expect(health.alert).toContain(`Salesforce org ${orgB} has used`);
      expect(await h.connector.mappings.accounts()).toEqual([h.sb.orgId, orgB].sort());
    } finally {
      await b.close();
    }
  });
});

describe('Salesforce: sandbox mode across restarts', () => {
  it('reconnects to a new sandbox instead of using the install of the previous run', async () => {
    h = await startHarness({ pipeline: true });
    await h.store.kvPut('salesforce:replay', h.sb.orgId, { replayId: 57, at: 0 });
    const next = await startSalesforceSandbox({ seed: true, outboundUrl: `${h.publicUrl}/webhooks/salesforce` });
    try {
      const again = await createSalesforceConnector({ env: { loginUrl: next.url, orgIds: [next.orgId], publicUrl: h.publicUrl }, mode: 'sandbox', store: h.store, secrets: createSecretBox(SECRETS_KEY), logger: silentLogger, clock: h.clock, intake: { accept: async () => ({ accepted: 0, duplicates: 0 }) } });
      await again.start();
      const c = await next.createCase({ subject: 'Second run', notify: false });
      await expect(again.crm.fetchContext({ crm: 'salesforce', account: next.orgId, ticketId: c.id })).resolves.toMatchObject({ subject: 'Second run' });
      expect(await h.store.kvGet('salesforce:replay', next.orgId)).toBeNull();
      await again.stop();
    } finally {
      await next.close();
    }
  });
});
