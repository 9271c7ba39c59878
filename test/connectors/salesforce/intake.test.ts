// The Telegram intake's Salesforce side (CrmIntakePort) through jsforce against the sandbox org: Contact by email
// (SOQL), by phone however it was typed (SOSL) and by Telegram user id, with its Account; the Telegram id stored (and
// moved when the customer turns out to be another Contact); a Contact created by upsert on the Telegram id; the Case
// with ContactId/AccountId, upserted on Tierline_Intake_Key__c so a retry finds the first one; and the Case routes.
import { afterEach, describe, expect, it } from 'vitest';
import { ticketKey } from '../../../core/segment.ts';
import { startHarness, type Harness } from './harness.ts';

let x: Harness;
afterEach(async () => {
  await x.close();
});

describe('Salesforce intake port', () => {
  it('finds a Contact by email and by a differently formatted phone, with the Account, and by Telegram id once stored', async () => {
    x = await startHarness({ pipeline: true });
    const org = x.sb.orgId;
    const initech = x.sb.accounts().find((a) => a.Name === 'Initech')!;
    const byEmail = (await x.connector.intake.findCustomer(org, { email: 'Bill.Lumbergh@initech.example' }))!;
    expect(byEmail).toMatchObject({ name: 'Bill Lumbergh', companyId: initech.Id, telegramUserId: null });
    const byPhone = (await x.connector.intake.findCustomer(org, { phone: '+15125550100' }))!;
    expect(byPhone.contactId).toBe(byEmail.contactId);
    expect(await x.connector.intake.findCustomer(org, { email: 'nobody@nowhere.example' })).toBeNull();
    expect(await x.connector.intake.findCustomer(org, { phone: '+9999999999' })).toBeNull();

    await x.connector.intake.linkTelegramUser(org, byEmail.contactId, '8000000001');
    expect(await x.connector.intake.findCustomer(org, { telegramUserId: '8000000001' })).toMatchObject({ contactId: byEmail.contactId, companyId: initech.Id });
    // The same Telegram user identifies as another Contact later: the id moves (it is unique across Contacts).
    const peter = (await x.connector.intake.findCustomer(org, { email: 'peter.gibbons@initech.example' }))!;
    await x.connector.intake.linkTelegramUser(org, peter.contactId, '8000000001');
    expect((await x.connector.intake.findCustomer(org, { telegramUserId: '8000000001' }))!.contactId).toBe(peter.contactId);
    expect(x.sb.contacts().filter((c) => c.Tierline_Telegram_User_Id__c === '8000000001')).toHaveLength(1);
  });

  it('creates a Contact for an unknown customer once, however often it is retried', async () => {
    x = await startHarness();
    const org = x.sb.orgId;
    const c = { email: 'nora@unknown.example', phone: '+436641234567', name: 'Nora Neu', telegramUserId: '8000000004' };
    const made = await x.connector.intake.createContact(org, c);
    expect(await x.connector.intake.createContact(org, c)).toEqual(made);
    expect(made).toMatchObject({ companyId: null, name: 'Nora Neu', email: 'nora@unknown.example', telegramUserId: '8000000004' });
    expect(x.sb.contacts().filter((r) => r.Tierline_Telegram_User_Id__c === '8000000004')).toHaveLength(1);
  });

  it('opens the Case with Contact and Account once per intake key, and it routes by the Account tier', async () => {
    x = await startHarness({ pipeline: true });
    const org = x.sb.orgId;
    const hank = (await x.connector.intake.findCustomer(org, { email: 'hank.scorpio@globex.example' }))!;
    const req = { subject: 'Billing Portal: double charge', description: 'The October invoice was charged twice.', contactId: hank.contactId, companyId: hank.companyId, product: 'Billing Portal', category: 'billing', language: 'de', idempotencyKey: 'tg-8000000002-1' };
    const ref = await x.connector.intake.createTicket(org, req);
    expect(await x.connector.intake.createTicket(org, req)).toEqual(ref);
    const cases = x.sb.cases().filter((c) => c.Tierline_Intake_Key__c === 'tg-8000000002-1');
    expect(cases).toHaveLength(1);
    expect(cases[0]).toMatchObject({ Id: ref.ticketId, ContactId: hank.contactId, AccountId: hank.companyId, Origin: 'Telegram', Type: 'Billing', Product__c: 'Billing Portal', Language__c: 'de', Subject: 'Billing Portal: double charge' });

    await x.pipeline.intake.accept([{ idempotencyKey: 'telegram-intake:tg-8000000002-1', ref, reason: 'created', at: x.clock.now() }]);
    // The org's own outbound message for the new Case is the same route step: routed once.
    await x.postWebhookForCase(ref.ticketId);
    await x.drain();
    const rec = (await x.store.getTicket(ticketKey(ref)))!;
    expect(rec.segment?.tier).toBe('enterprise');
    expect(rec.companyName).toBe('Globex Corporation');
    expect(x.messenger.topics).toHaveLength(1);
  });

  it('opens an unknown customer’s Case without Contact or Account; it routes as unknown to the default queue', async () => {
    x = await startHarness({ pipeline: true });
    const org = x.sb.orgId;
    const ref = await x.connector.intake.createTicket(org, { subject: 'CRM: export', description: 'Export is empty.', contactId: null, companyId: null, product: 'Dashboard', category: 'account', language: 'de', idempotencyKey: 'tg-8000000004-1' });
    expect(x.sb.case(ref.ticketId)).toMatchObject({ ContactId: null, AccountId: null, Type: 'Question' });
    await x.pipeline.intake.accept([{ idempotencyKey: 'k', ref, reason: 'created', at: x.clock.now() }]);
    await x.drain();
    const rec = (await x.store.getTicket(ticketKey(ref)))!;
    expect(rec.segment?.tier ?? null).toBeNull();
    expect(rec.queueId).toBe('general');
  });
});
