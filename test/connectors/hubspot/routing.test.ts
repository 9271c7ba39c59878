// The whole walk on the real pipeline: a ticket created in the sandbox portal -> signed ticket.creation webhook ->
// 200 -> fresh read of ticket, company and contact -> routed -> the outcome as properties on the ticket and its
// company and a note on the timeline; later events update the same properties and add notes; duplicates and
// disorder route once; deleted tickets and missing properties surface as admin-readable errors.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { CrmWriteBack } from '../../../core/ports.ts';
import { ticketKey } from '../../../core/segment.ts';
import { startHarness, writeBackFor, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const keyOf = (x: Harness, id: string) => ticketKey({ crm: 'hubspot', account: x.sb.portalId, ticketId: id });

describe('HubSpot: signed webhook -> routed -> written back', () => {
  it('routes a new ticket with fresh company data and writes the outcome and a note onto the ticket and company', async () => {
    h = await startHarness({ pipeline: true });
    const globex = h.company('Globex Corporation');
    const t = await h.sb.createTicket({ subject: 'SSO login fails for all users', companyId: globex.id, category: 'PRODUCT_ISSUE', product: 'API' });
    expect(t.delivery).toMatchObject({ status: 200 });
    expect(h.accepted.map((e) => e.idempotencyKey)).toEqual([`hubspot:wh:${h.sb.portalId}:${t.event!.subscriptionId}:${t.event!.eventId}`]);
    // Answered before any routing happened: the pipeline has not run yet.
    expect(await h.store.getTicket(keyOf(h, t.id))).toBeNull();

    h.sb.clearRequests();
    await h.drain();

    // Fresh read: the ticket with its associations, then company and contact.
    const reads = h.sb.requests({ method: 'GET' }).map((r) => r.path);
    expect(reads).toEqual(expect.arrayContaining([`/crm/v3/objects/tickets/${t.id}`, `/crm/v3/objects/companies/${globex.id}`, `/crm/v3/objects/contacts/${t.contactId}`]));
    const ticketRead = h.sb.requests({ path: `/crm/v3/objects/tickets/${t.id}` })[0]!;
    expect(ticketRead.query).toContain('properties=hs_ticket_category');
    expect(ticketRead.query).toContain('associations=companies');

    const rec = await h.store.getTicket(keyOf(h, t.id));
    expect(rec).toMatchObject({ queueId: 'vip', ruleId: 'enterprise', companyName: 'Globex Corporation', customerName: 'Hank Scorpio', recordUrl: `https://app.hubspot.com/contacts/${h.sb.portalId}/record/0-5/${t.id}` });
    expect(rec!.segment).toMatchObject({ tier: 'enterprise', language: 'de', region: 'EU', product: 'API', category: 'technical', lifetimeValue: { amount: 480_000, currency: 'USD' }, churnRisk: 0.2 });

    const ticket = h.sb.ticket(t.id)!;
    expect(ticket.properties).toMatchObject({ tierline_status: 'assigned', tierline_queue: 'VIP desk', tierline_tier: 'enterprise', tierline_rule: 'enterprise', tierline_segment: 'enterprise · technical · de · EU' });
    expect(ticket.properties.tierline_agent).toBeTruthy();
    expect(ticket.properties.tierline_topic_link).toMatch(/^https:\/\/t\.me\//);
    expect(ticket.properties.tierline_history).toMatch(/^2026-11-02 09:00 UTC · routed · Routed to VIP desk/);
    expect(ticket.notes).toHaveLength(1);
    expect(ticket.notes[0]!.body).toContain('Tierline · Routed');
    expect(ticket.notes[0]!.body).toContain(`[tierline:${keyOf(h, t.id)}#1]`);
    expect(ticket.notes[0]!.companyIds).toEqual([globex.id]);
    // The company shows the same outcome, and the note sits on its timeline too.
    const company = h.sb.company(globex.id)!;
    expect(company.properties).toMatchObject({ tierline_status: 'assigned', tierline_queue: 'VIP desk', tierline_tier: 'enterprise' });
    expect(company.notes.map((n) => n.id)).toEqual([ticket.notes[0]!.id]);

    // Batch endpoints, one call each.
    const writes = h.sb.requests({ method: 'POST' }).map((r) => r.path);
    expect(writes).toEqual(['/crm/v3/objects/tickets/batch/update', '/crm/v3/objects/companies/batch/update', '/crm/v3/objects/notes/batch/create']);
  });

  it('adds later events (first reply, resolution) to the same properties and as notes', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Invoice shows the wrong VAT', companyId: h.company('Globex Corporation').id, category: 'BILLING_ISSUE' });
    await h.drain();
    const rec = (await h.store.getTicket(keyOf(h, t.id)))!;
    const agentTelegram = (await h.pipeline.currentRouter()).config.agents.find((a) => a.id === rec.agentId)!.telegramUserId!;
    h.clock.advance(7 * 60_000);
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: rec.topic!.groupId, topicId: rec.topic!.topicId, messageId: 501, fromTelegramUserId: agentTelegram, text: 'Looking into it now.', at: h.clock.now() });
    await h.drain();
    h.clock.advance(60_000);
    await h.pipeline.onMessengerEvent({ kind: 'topic_closed', groupId: rec.topic!.groupId, topicId: rec.topic!.topicId, at: h.clock.now() });
    await h.drain();

    const ticket = h.sb.ticket(t.id)!;
    expect(ticket.properties).toMatchObject({ tierline_status: 'resolved', tierline_first_response_minutes: '7', tierline_sla_met: 'true' });
    expect(ticket.properties.tierline_resolved_at).toBeTruthy();
    const notes = ticket.notes.map((n) => n.body);
    expect(notes).toHaveLength(3);
    expect(notes.some((b) => b.includes('Tierline · First reply'))).toBe(true);
    expect(notes.some((b) => b.includes('Tierline · Resolved'))).toBe(true);
    const lines = ticket.properties.tierline_history!.split('\n');
    expect(lines.map((l) => l.split(' · ')[1])).toEqual(['routed', 'first reply', 'resolved']);
  });

  it('routes a ticket once however HubSpot delivers it: retried deliveries, the same event twice in a batch, and disorder', async () => {
    h = await startHarness({ pipeline: true, sandbox: { rateLimit: null } });
    const t = await h.sb.createTicket({ subject: 'Dashboard is slow' });
    const first = h.sb.deliveries()[0]!;
    // HubSpot did not see our 200 in time and retries the delivery, twice.
    expect((await h.sb.redeliver(first)).status).toBe(200);
    expect((await h.sb.redeliver(first)).status).toBe(200);
    // A property change that arrives before... and a batch with one event twice.
    const change = h.sb.event('ticket.propertyChange', t.id, { propertyName: 'hs_ticket_priority', propertyValue: 'HIGH' });
    expect((await h.sb.sendEvents([change, first.events[0]!, first.events[0]!])).status).toBe(200);
    await h.drain();
    expect(await h.store.tickets()).toHaveLength(1);
    expect(h.messenger.topics).toHaveLength(1);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);

    // Disorder: with property changes routing in this portal, a second ticket's propertyChange arrives before its
    // creation (the change routes it; the late creation finds it routed).
    await h.connector.mappings.put(h.sb.portalId, { webhooks: { propertyChange: true, properties: ['subject'] } });
    const u = await h.sb.createTicket({ subject: 'Export broken', notify: false });
    const creation = h.sb.event('ticket.creation', u.id, { occurredAt: h.clock.now() - 5_000 });
    const later = h.sb.event('ticket.propertyChange', u.id, { propertyName: 'subject', propertyValue: 'Export broken' });
    expect((await h.sb.sendEvents([later])).status).toBe(200);
    expect((await h.sb.sendEvents([creation])).status).toBe(200);
    await h.drain();
    expect(await h.store.tickets()).toHaveLength(2);
    expect(h.messenger.topics).toHaveLength(2);
    expect(h.sb.ticket(u.id)!.notes).toHaveLength(1);
    expect(h.accepted.filter((e) => e.ref.ticketId === u.id).map((e) => e.reason)).toEqual(['changed', 'created']);
  });

  it('reads a burst of tickets with batch reads (tickets, associations, companies, contacts), still fresh and per ticket', async () => {
    h = await startHarness({ pipeline: true });
    const companies = h.sb.companies();
    const made = [];
    for (let i = 0; i < 30; i++) made.push(await h.sb.createTicket({ subject: `Burst ${i}`, companyId: companies[i % companies.length]!.id }));
    // One company changes its tier after the tickets came in: routing must see the new value.
    const initech = h.company('Initech');
    const api = new (await import('@hubspot/api-client')).Client({ accessToken: h.sb.accessToken, basePath: h.sb.url });
    await api.crm.companies.basicApi.update(initech.id, { properties: { hs_ideal_customer_profile: 'tier_3' } });
    h.sb.clearRequests();
    await h.drain();
    const calls = h.sb.requests().map((r) => `${r.method} ${r.path.replace(/\d{5,}/g, ':id')}`);
    // One read of the pipelines (which stages are closed), shared by the whole burst; every record read is a batch.
    expect(calls.filter((c) => c.startsWith('GET '))).toEqual(['GET /crm/v3/pipelines/tickets']);
    expect(calls.filter((c) => c.includes('/batch/read')).sort()).toEqual([
      'POST /crm/v3/objects/companies/batch/read',
      'POST /crm/v3/objects/contacts/batch/read',
      'POST /crm/v3/objects/tickets/batch/read',
      'POST /crm/v4/associations/tickets/companies/batch/read',
      'POST /crm/v4/associations/tickets/contacts/batch/read',
    ]);
    for (const t of made) {
      const rec = (await h.store.getTicket(keyOf(h, t.id)))!;
      expect(rec.companyId).toBe(t.companyId);
      expect(rec.segment!.source.contactId).toBe(t.contactId);
    }
    const initechTicket = made.find((t) => t.companyId === initech.id)!;
    expect((await h.store.getTicket(keyOf(h, initechTicket.id)))!.segment!.tier).toBe('standard');
    expect(h.messenger.topics).toHaveLength(30);
  });

  it('does not route a ticket that is in a closed pipeline stage, and writes nothing onto it', async () => {
    h = await startHarness({ pipeline: true });
    const open = await h.sb.createTicket({ subject: 'Still broken' });
    const closed = await h.sb.createTicket({ subject: 'Imported, long solved', stage: '4' });
    await h.drain();
    expect((await h.store.getTicket(keyOf(h, open.id)))?.routedAt).toBeTruthy();
    expect(await h.store.getTicket(keyOf(h, closed.id))).toBeNull();
    expect(h.sb.ticket(closed.id)!.properties).toMatchObject({ hs_pipeline_stage: '4' });
    expect(h.sb.ticket(closed.id)!.properties.tierline_topic_link ?? null).toBeNull();
    expect(h.messenger.topics).toHaveLength(1);
    expect(await h.store.deadJobs()).toEqual([]);
  });

  it('resolves a routed ticket that a rep closes in HubSpot (its stage webhook), with property changes off', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Customer says it works now' });
    const other = await h.sb.createTicket({ subject: 'Still waiting' });
    await h.drain();
    // Moved between open stages: nothing happens. Moved to Closed: resolved, and the topic closed.
    await h.sb.updateTicket(other.id, { hs_pipeline_stage: '3' });
    await h.sb.updateTicket(t.id, { hs_pipeline_stage: '4' });
    await h.drain();
    expect(await h.store.getTicket(keyOf(h, t.id))).toMatchObject({ status: 'resolved' });
    expect((await h.store.getTicket(keyOf(h, other.id)))!.status).not.toBe('resolved');
    expect(h.messenger.closed).toHaveLength(1);
    const ticket = h.sb.ticket(t.id)!;
    expect(ticket.properties).toMatchObject({ hs_pipeline_stage: '4', tierline_status: 'resolved' });
    expect(ticket.notes.some((n) => n.body.includes('Resolved (closed in the CRM)'))).toBe(true);
    expect(await h.store.deadJobs()).toEqual([]);
  });

  it('reports only the deleted ticket of a batch read as not_found', async () => {
    h = await startHarness();
    const a = await h.sb.createTicket({ subject: 'Alive', notify: false });
    const b = await h.sb.createTicket({ subject: 'Gone', notify: false });
    const lone = await h.sb.createTicket({ subject: 'No company', companyId: null, contactId: null, notify: false });
    h.sb.deleteTicket(b.id);
    const ref = (id: string) => ({ crm: 'hubspot' as const, account: h!.sb.portalId, ticketId: id });
    const [ra, rb, rl] = await Promise.allSettled([h.connector.crm.fetchContext(ref(a.id)), h.connector.crm.fetchContext(ref(b.id)), h.connector.crm.fetchContext(ref(lone.id))]);
    expect(ra).toMatchObject({ status: 'fulfilled', value: { subject: 'Alive', companyName: expect.any(String) } });
    expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'not_found', message: expect.stringContaining(`Ticket ${b.id} no longer exists`) } });
    expect(rl).toMatchObject({ status: 'fulfilled', value: { subject: 'No company', companyName: null, customerName: null } });
  });

  it('does not add a second note when a write-back is retried, even after a crash between the create and the bookkeeping', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Webhook retries' });
    await h.drain();
    const rec = (await h.store.getTicket(keyOf(h, t.id)))!;
    const { entries } = await h.store.history({ ticketKey: rec.key });
    const fields = h.pipeline.routingFields(rec, await h.pipeline.currentRouter());
    const wb: CrmWriteBack = { entry: entries[0]!, fields, companyId: rec.companyId };
    await h.connector.crm.writeBack(rec.ref, wb);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    // Simulate the crash: HubSpot made the note, but our "done" record never landed (only "pending").
    await h.store.kvPut('hubspot:notes', entries[0]!.key, { status: 'pending', noteId: null, ticketId: t.id, at: h.clock.now() });
    h.sb.clearRequests();
    await h.connector.crm.writeBack(rec.ref, wb);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    expect(h.sb.requests({ path: `/crm/v4/objects/tickets/${t.id}/associations/notes` })).toHaveLength(1);
    expect(await h.store.kvGet('hubspot:notes', entries[0]!.key)).toMatchObject({ status: 'done', noteId: h.sb.ticket(t.id)!.notes[0]!.id });
  });

  it('turns a deleted ticket into not_found, for the read and for the write-back', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Spam', notify: false });
    const ref = { crm: 'hubspot' as const, account: h.sb.portalId, ticketId: t.id };
    const ctx = await h.connector.crm.fetchContext(ref);
    h.sb.deleteTicket(t.id);
    const read = await h.connector.crm.fetchContext(ref).catch((e: unknown) => e);
    expect(read).toBeInstanceOf(AppError);
    expect((read as AppError).code).toBe('not_found');
    expect((read as AppError).message).toContain(`Ticket ${t.id} no longer exists in HubSpot portal ${h.sb.portalId}`);
    const write = await h.connector.crm.writeBack(ref, writeBackFor(h, t.id, ctx.segment.source.companyId)).catch((e: unknown) => e);
    expect((write as AppError).code).toBe('not_found');
    expect((write as AppError).message).toMatch(/no longer exists.*cannot be written back/);
  });

  it('reports a missing Tierline property as misconfigured, naming the fix, and recovers after provisioning', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Anything', notify: false });
    h.sb.deleteProperty('tickets', 'tierline_queue');
    const ref = { crm: 'hubspot' as const, account: h.sb.portalId, ticketId: t.id };
    const err = await h.connector.crm.writeBack(ref, writeBackFor(h, t.id, null)).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('misconfigured');
    expect((err as AppError).message).toContain('tierline_queue');
    expect((err as AppError).message).toContain('/oauth/hubspot/install');
    expect((await h.connector.health()).lastError).toContain('misconfigured');
    await h.connector.provision(h.sb.portalId);
    await h.connector.crm.writeBack(ref, writeBackFor(h, t.id, null));
    expect(h.sb.ticket(t.id)!.properties.tierline_queue).toBe('Priority');
  });
});

describe('HubSpot: field mapping versions', () => {
  it('keeps every replacement as a version, with the one in force before as version 0, and rolls back', async () => {
    h = await startHarness({});
    const m = h.connector.mappings;
    const portal = h.sb.portalId;
    const original = await m.get(portal);
    await m.put(portal, { webhooks: { propertyChange: true, properties: ['subject'] } }, { author: 'api:ops', note: 'route on subject changes' });
    await m.put(portal, { webhooks: { propertyChange: false } }, { author: 'console' });
    expect((await m.versions(portal)).map((v) => [v.version, v.author, v.note])).toEqual([
      [2, 'console', ''],
      [1, 'api:ops', 'route on subject changes'],
      [0, 'tierline', 'in force before the first change'],
    ]);
    await m.rollback(portal, 1, 'api:ops');
    expect(await m.get(portal)).toMatchObject({ webhooks: { propertyChange: true, properties: ['subject'] } });
    await m.rollback(portal, 0, 'api:ops');
    expect(await m.get(portal)).toEqual(original);
    expect((await m.versions(portal))[0]).toMatchObject({ version: 4, note: 'rollback to version 0' });
    await expect(m.rollback(portal, 9, 'api:ops')).rejects.toThrow(/version 9 .* is not kept/);
    // A rejected mapping is not a version.
    await expect(m.put(portal, { webhooks: { propertyChange: 'yes' } })).rejects.toThrow(AppError);
    expect(await m.versions(portal)).toHaveLength(5);
  });
});
