// The Telegram intake's HubSpot side (CrmIntakePort) through @hubspot/api-client against the sandbox: contact search
// by email, phone and Telegram id with the company, the Telegram id stored on the contact, contact creation (and its
// 409 when the contact exists), and idempotent ticket creation on the unique tierline_intake_key property; the created
// ticket then routes through the pipeline with the company's tier.
import { afterEach, describe, expect, it } from 'vitest';
import { ticketKey } from '../../../core/segment.ts';
import { startHarness, type Harness } from './harness.ts';

let x: Harness;
afterEach(async () => {
  await x.close();
});

describe('HubSpot intake port', () => {
  it('finds a contact by email with its company, stores the Telegram id, and finds them by it afterwards', async () => {
    x = await startHarness({ pipeline: true });
    const portal = x.sb.portalId;
    const hit = (await x.connector.intake.findCustomer(portal, { email: 'Bill.Lumbergh@initech.example' }))!;
    expect(hit).toMatchObject({ name: 'Bill Lumbergh', email: 'bill.lumbergh@initech.example', telegramUserId: null });
    expect(hit.companyId).toBe(x.company('Initech').id);
    expect(await x.connector.intake.findCustomer(portal, { email: 'nobody@nowhere.example' })).toBeNull();
    expect(await x.connector.intake.findCustomer(portal, { telegramUserId: '8000000001' })).toBeNull();

    await x.connector.intake.linkTelegramUser(portal, hit.contactId, '8000000001');
    expect(x.sb.contacts().find((c) => c.id === hit.contactId)!.properties.tierline_telegram_user_id).toBe('8000000001');
    expect(await x.connector.intake.findCustomer(portal, { telegramUserId: '8000000001' })).toMatchObject({ contactId: hit.contactId, companyId: hit.companyId });
  });

  it('finds by phone, and creates a contact for an unknown customer (and reuses it on a repeat)', async () => {
    x = await startHarness();
    const portal = x.sb.portalId;
    const made = await x.connector.intake.createContact(portal, { phone: '+436641234567', email: 'nora@unknown.example', name: 'Nora Neu', telegramUserId: '8000000004' });
    expect(made).toMatchObject({ companyId: null, email: 'nora@unknown.example', telegramUserId: '8000000004' });
    expect(await x.connector.intake.findCustomer(portal, { phone: '+436641234567' })).toMatchObject({ contactId: made.contactId, name: 'Nora Neu' });
    expect(x.sb.contacts().find((c) => c.id === made.contactId)!.properties).toMatchObject({ firstname: 'Nora', lastname: 'Neu', phone: '+436641234567' });
  });

  it('creates the ticket with contact and company once per intake key, and it routes by the company tier', async () => {
    x = await startHarness({ pipeline: true });
    const portal = x.sb.portalId;
    const bill = (await x.connector.intake.findCustomer(portal, { email: 'bill.lumbergh@initech.example' }))!;
    const req = { subject: 'API: keys stopped working', description: 'Our API keys stopped working after the rotation.', contactId: bill.contactId, companyId: bill.companyId, product: 'API', category: 'technical', language: 'en', idempotencyKey: 'tg-8000000001-1' };
    const ref = await x.connector.intake.createTicket(portal, req);
    // A retry (the first answer lost) and a racing create both end at the same ticket.
    expect(await x.connector.intake.createTicket(portal, req)).toEqual(ref);
    x.sb.injectLostResponse(1, { match: { method: 'POST', path: '/crm/v3/objects/tickets' } });
    const again = await x.connector.intake.createTicket(portal, { ...req, idempotencyKey: 'tg-8000000001-2' }).catch((e: Error) => e);
    expect(again).toBeInstanceOf(Error);
    const retried = await x.connector.intake.createTicket(portal, { ...req, idempotencyKey: 'tg-8000000001-2' });
    // The retry found the ticket the lost call made: one ticket per key, and nothing created after it.
    const creates = x.sb.requests({ method: 'POST', path: /^\/crm\/v3\/objects\/tickets$/ });
    expect(creates).toHaveLength(2);
    expect(x.sb.ticket(retried.ticketId)!.properties.tierline_intake_key).toBe('tg-8000000001-2');
    const t = x.sb.ticket(ref.ticketId)!;
    expect(t.properties).toMatchObject({ subject: 'API: keys stopped working', content: req.description, hs_ticket_category: 'PRODUCT_ISSUE', tierline_product: 'API', hs_language: 'en', tierline_intake_key: 'tg-8000000001-1', hs_pipeline: '0', hs_pipeline_stage: '1' });
    expect(t.contactIds).toEqual([bill.contactId]);
    expect(t.companyIds).toEqual([bill.companyId]);
    expect(retried.ticketId).not.toBe(ref.ticketId);

    await x.pipeline.intake.accept([{ idempotencyKey: 'telegram-intake:tg-8000000001-1', ref, reason: 'created', at: x.clock.now() }]);
    await x.drain();
    const rec = (await x.store.getTicket(ticketKey(ref)))!;
    expect(rec.segment?.tier).toBe('enterprise');
    expect(rec.companyName).toBe('Initech');
  });

  it('creates an unknown customer’s ticket without associations; it routes as unknown to the default queue', async () => {
    x = await startHarness({ pipeline: true });
    const portal = x.sb.portalId;
    const ref = await x.connector.intake.createTicket(portal, { subject: 'CRM: export', description: 'Export is empty.', contactId: null, companyId: null, product: 'CRM', category: 'account', language: 'de', idempotencyKey: 'tg-8000000004-1' });
    expect(x.sb.ticket(ref.ticketId)).toMatchObject({ contactIds: [], companyIds: [] });
    await x.pipeline.intake.accept([{ idempotencyKey: 'k', ref, reason: 'created', at: x.clock.now() }]);
    await x.drain();
    const rec = (await x.store.getTicket(ticketKey(ref)))!;
    expect(rec.segment?.tier ?? null).toBeNull();
    expect(rec.queueId).toBe('general');
  });
});
