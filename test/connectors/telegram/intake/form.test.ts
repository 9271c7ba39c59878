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

describe('the form in German, with every re-ask', () => {
  it('re-asks each invalid answer with the reason, goes back, and opens the ticket', async () => {
    h = await setupIntake();
    await h.say(HANK, '/start');
    expect(h.heard(HANK)[0]).toContain('Wie lautet Ihre E-Mail-Adresse?');
    expect(h.lastButtons(HANK)).toEqual(['📱 Telefonnummer teilen', '✖️ Abbrechen']);
    await h.say(HANK, 'hank at globex');
    expect(h.heard(HANK)[0]).toContain('Das sieht nicht wie eine E-Mail-Adresse aus');
    // Someone else's contact is refused.
    h.sandbox.chats!.send(HANK, '6000000100', { contact: { phone: '+4930123', own: false } });
    await h.settle();
    expect(h.heard(HANK)[0]).toContain('Bitte teilen Sie mit dem Knopf Ihren eigenen Kontakt');
    h.sandbox.chats!.send(HANK, '6000000100', { contact: { phone: '+49 30 5550 1001' } });
    await h.settle();
    expect(h.heard(HANK)).toEqual(['✓ Danke — +493055501001.', 'Um welches Produkt geht es?']);
    await h.say(HANK, 'Toaster');
    expect(h.heard(HANK)[0]).toContain('Bitte wählen Sie ein Produkt über die Knöpfe.');
    await h.say(HANK, 'crm'); // a product typed by name counts
    expect(h.heard(HANK)).toEqual(['Welche Art von Problem ist es?']);
    await h.press(HANK, '⬅️ Zurück');
    expect(h.heard(HANK)).toEqual(['Um welches Produkt geht es?']);
    await h.press(HANK, 'Billing suite');
    h.heard(HANK);
    await h.say(HANK, 'Wetter');
    expect(h.heard(HANK)[0]).toContain('Bitte wählen Sie eine Kategorie über die Knöpfe.');
    await h.press(HANK, 'Abrechnung');
    h.heard(HANK);
    await h.say(HANK, 'kaputt');
    expect(h.heard(HANK)[0]).toContain('Bitte schreiben Sie etwas mehr (mindestens 10 Zeichen)');
    await h.say(HANK, 'x'.repeat(2001));
    expect(h.heard(HANK)[0]).toContain('Das ist zu lang: bitte unter 2000 Zeichen bleiben.');
    // A photo where text is wanted is not dropped silently either.
    h.sandbox.chats!.send(HANK, '6000000100', { media: { kind: 'photo' } });
    await h.settle();
    expect(h.heard(HANK)[0]).toContain('Bitte antworten Sie mit Text oder den Knöpfen');
    await h.say(HANK, 'Die Rechnung für Oktober wurde doppelt abgebucht.');
    expect(h.heard(HANK)[0]).toContain('Bitte prüfen:');
    await h.say(HANK, 'ja');
    expect(h.heard(HANK)[0]).toContain('Bitte nutzen Sie die Knöpfe: Senden, Zurück oder Abbrechen.');
    await h.press(HANK, '✅ Senden');
    const done = h.heard(HANK);
    expect(done[0]).toBe('Danke! Ihr Ticket ist eröffnet; ein Mitarbeiter antwortet hier.');
    expect(done.some((t) => t.startsWith('Ihr Ticket #900 ist eröffnet'))).toBe(true);
    expect(h.crm.tickets.get('hubspot:42:900')).toMatchObject({ product: 'Billing suite', category: 'billing', language: 'de', contactId: 'c-2' });
    expect(h.crm.calls).toContain('find:{"phone":"+493055501001"}');
  });

  it('cancels from any question, ignores stale buttons, resumes later and starts over after expiry', async () => {
    h = await setupIntake();
    await h.say(NORA, 'Hallo');
    await h.say(NORA, 'nora@unknown.example');
    await h.press(NORA, 'API');
    h.heard(NORA);
    // A button under an older question does nothing but say so.
    const chat = h.sandbox.chats!.chat(NORA, '6000000100');
    const old = chat.find((m) => m.buttons.flat().some((b) => b.data === 'product:0'))!;
    const q = h.sandbox.chats!.press(NORA, old.id, 'product:1');
    await h.settle();
    expect(h.sandbox.chats!.callbackAnswered(q)).toBe(true);
    expect(h.heard(NORA)).toEqual([]);
    // Coming back later: the same question again, answers kept.
    await h.clock.advance(3 * 3600_000);
    await h.say(NORA, '/start');
    expect(h.heard(NORA)).toEqual(['Welche Art von Problem ist es?']);
    await h.press(NORA, '✖️ Abbrechen');
    expect(h.heard(NORA)).toEqual(['Abgebrochen. Schreiben Sie mir jederzeit, um neu zu beginnen.']);
    expect(h.crm.calls.filter((c) => c === 'createTicket')).toEqual([]);
    // A new form, left alone for more than a day, starts over.
    await h.say(NORA, 'noch einmal');
    await h.say(NORA, 'nora@unknown.example');
    h.heard(NORA);
    await h.clock.advance(25 * 3600_000);
    await h.say(NORA, 'API');
    expect(h.heard(NORA)[0]).toContain('Ihr früheres Formular ist abgelaufen');
    const records = await h.store.kvList('telegram-intake:customers');
    expect(records.find((r) => r.key === NORA)!.value).toMatchObject({ form: { step: 'identify' } });
  });
});
