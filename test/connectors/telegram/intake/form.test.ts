// The intake form in a private chat with the bot, through GramJS: both languages, every re-ask, back and cancel,
// resuming later and expiry; a completed form opens a CRM ticket that routes into a topic like any other.
import { afterEach, describe, expect, it } from 'vitest';
import { BILL, HANK, NORA, setupIntake, type IntakeHarness } from './harness.ts';

let h: IntakeHarness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

describe('the form', () => {
  it('walks an English customer through the form with buttons and opens a routed ticket', async () => {
    h = await setupIntake();
    await h.say(BILL, 'hello?');
    const first = h.heard(BILL);
    expect(first).toHaveLength(1);
    expect(first[0]).toContain('What is your email address?');
    expect(h.lastButtons(BILL)).toEqual(['📱 Share my phone number', '✖️ Cancel']);
    await h.say(BILL, 'bill.lumbergh@initech.example');
    expect(h.heard(BILL)).toEqual(['✓ Thanks — bill.lumbergh@initech.example.', 'Which product is it about?']);
    await h.press(BILL, 'API');
    expect(h.heard(BILL)).toEqual(['What kind of problem is it?']);
    await h.press(BILL, 'Technical');
    expect(h.heard(BILL)).toEqual(['Please describe the problem in a few sentences.']);
    await h.say(BILL, 'Our API keys stopped working after the rotation this morning.');
    const confirm = h.heard(BILL);
    expect(confirm[0]).toContain('• Product: API');
    await h.press(BILL, '✅ Send');
    const after = h.heard(BILL);
    expect(after[0]).toBe('Thank you! Your ticket is open; an agent will answer here.');
    expect(after.some((t) => t.startsWith('Your ticket #900 is open'))).toBe(true);
    expect(after.some((t) => /has taken your ticket/.test(t))).toBe(true);
    const t = (await h.store.getTicket('hubspot:42:900'))!;
    expect(t.topic).not.toBeNull();
    expect(t.segment?.tier).toBe('enterprise');
    expect(h.crm.contacts.find((c) => c.contactId === 'c-1')!.telegramUserId).toBe(BILL);
    expect(h.crm.tickets.get('hubspot:42:900')).toMatchObject({ product: 'API', category: 'technical', language: 'en', contactId: 'c-1', companyId: 'co-1' });
  });
});
