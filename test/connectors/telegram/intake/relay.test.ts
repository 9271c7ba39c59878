// After the form: the customer's chat and the ticket's topic relayed both ways with media and edits, internal notes
// and commands kept in the topic, notices when the ticket is taken and resolved, reopening by writing again, an
// unknown customer routed to the default queue (with a CRM contact when the admin enables it), and a returning
// customer recognised by their Telegram id.
import { afterEach, describe, expect, it } from 'vitest';
import type { CrmPort, TicketRecord } from '../../../../core/ports.ts';
import { NS, RELAY_MAP_TTL_MS } from '../../../../connectors/telegram/intake/records.ts';
import { BILL, BOT, channelOf, NORA, setupIntake, type IntakeHarness } from './harness.ts';

let h: IntakeHarness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

async function openTicket(userId: string, identifier: string, product = 'API', category = 'Technical'): Promise<TicketRecord> {
  await h.say(userId, 'hi');
  if (identifier) await h.say(userId, identifier);
  await h.press(userId, product);
  await h.press(userId, category);
  await h.say(userId, 'The dashboard shows a 500 error since this morning.');
  const labels = h.lastButtons(userId);
  await h.press(userId, labels.find((l) => l.startsWith('✅'))!);
  h.heard(userId);
  const open = await h.store.tickets({ open: true });
  return open.at(-1)!;
}

const topicMessages = (t: TicketRecord) => h.sandbox.allMessages(channelOf(t.topic!.groupId)).filter((m) => m.topicId === t.topic!.topicId && m.kind === 'text');

describe('relay', () => {
  it('copies text and media both ways, follows edits and deletions, and keeps internal notes and commands in the topic', async () => {
    h = await setupIntake();
    const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
    const channel = channelOf(t.topic!.groupId);
    const agent = '7000000001';

    // Customer -> topic: text, a photo with a caption, a document, a voice note.
    const text = h.sandbox.chats!.send(BILL, BOT, { text: 'Here is a screenshot.' });
    h.sandbox.chats!.send(BILL, BOT, { text: 'error page', media: { kind: 'photo' } });
    h.sandbox.chats!.send(BILL, BOT, { media: { kind: 'document', name: 'har.json', mime: 'application/json' } });
    h.sandbox.chats!.send(BILL, BOT, { media: { kind: 'voice' } });
    await h.settle();
    const fromBot = topicMessages(t).filter((m) => m.fromUserId === BOT);
    expect(fromBot.map((m) => m.text)).toEqual(['Here is a screenshot.', 'error page', '', '']);
    const media = fromBot.map((m) => h.sandbox.chats!.channelMessage(channel, m.id)!.media?.kind ?? null);
    expect(media).toEqual([null, 'photo', 'document', 'voice']);
    expect(h.sandbox.chats!.channelMessage(channel, fromBot[2]!.id)!.media!.name).toBe('har.json');

    // The customer corrects a message: the copy in the topic follows.
    h.sandbox.chats!.editByCustomer(BILL, text, 'Here is a screenshot (Chrome).');
    await h.settle();
    expect(h.sandbox.chats!.channelMessage(channel, fromBot[0]!.id)!.text).toBe('Here is a screenshot (Chrome).');

    // Agent -> customer: a reply and a photo; a note and a command stay in the topic.
    await h.sandbox.reply(channel, t.topic!.topicId, agent, 'Thanks Bill, looking into it.');
    h.sandbox.chats!.agentPostMedia(channel, t.topic!.topicId, agent, 'Does it look like this?', { kind: 'photo' });
    await h.sandbox.reply(channel, t.topic!.topicId, agent, '// looks like the cache bug again');
    await h.sandbox.reply(channel, t.topic!.topicId, agent, '/note ask Chen about the CDN');
    await h.sandbox.reply(channel, t.topic!.topicId, agent, '/escalate');
    await h.settle();
    const chat = h.sandbox.chats!.chat(BILL, BOT).filter((m) => m.fromBot);
    const heard = h.heard(BILL);
    expect(heard).toEqual(['Thanks Bill, looking into it.', 'Does it look like this?']);
    expect(chat.at(-1)!.media?.kind).toBe('photo');
    // The agent fixes a typo: the customer's copy follows.
    const reply = h.sandbox.allMessages(channel).find((m) => m.text === 'Thanks Bill, looking into it.')!;
    h.sandbox.chats!.agentEdit(channel, reply.id, 'Thanks Bill, I am looking into it.');
    await h.settle();
    expect(h.sandbox.chats!.chat(BILL, BOT).some((m) => m.fromBot && m.text === 'Thanks Bill, I am looking into it.' && m.edited)).toBe(true);
    // The agent deletes a message: the customer's copy goes too.
    const photo = h.sandbox.allMessages(channel).find((m) => m.text === 'Does it look like this?')!;
    h.sandbox.chats!.agentDelete(channel, photo.id);
    await h.settle();
    expect(h.sandbox.chats!.chat(BILL, BOT).some((m) => m.text === 'Does it look like this?')).toBe(false);
    // The reply was the first response, as for any ticket.
    expect((await h.store.getTicket(t.key))!.firstResponseAt).not.toBeNull();
  });

  it('keeps the message-id map of relayed messages for a month, then lets it go', async () => {
    // Retries hourly rather than every 5 s: the manual clock fires each retry on the way, and a month of 5-second
    // retries took 14-20 s of a CI machine for nothing this test looks at.
    h = await setupIntake({ settings: { retryMs: 3600_000 } });
    const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
    const channel = channelOf(t.topic!.groupId);
    await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', 'Thanks Bill, looking into it.');
    await h.settle();
    expect(h.heard(BILL)).toEqual(['Thanks Bill, looking into it.']);
    expect(await h.store.kvList(NS.relay)).toHaveLength(1);

    await h.clock.advance(RELAY_MAP_TTL_MS + 60_000);
    expect(await h.store.kvList(NS.relay)).toEqual([]);
    // An edit that old is not mirrored any more (the customer keeps the message as sent), and nothing fails.
    const reply = h.sandbox.allMessages(channel).find((m) => m.text === 'Thanks Bill, looking into it.')!;
    h.sandbox.chats!.agentEdit(channel, reply.id, 'Thanks Bill, I am looking into it.');
    await h.settle();
    expect(h.sandbox.chats!.chat(BILL, BOT).some((m) => m.fromBot && m.text === 'Thanks Bill, looking into it.' && !m.edited)).toBe(true);
  });

  it('relays a message written while the ticket is still being opened, once it exists', async () => {
    h = await setupIntake();
    await h.say(BILL, 'hi');
    await h.say(BILL, 'bill.lumbergh@initech.example');
    await h.press(BILL, 'API');
    await h.press(BILL, 'Technical');
    await h.say(BILL, 'Single sign-on loops back to the login page.');
    const confirm = [...h.sandbox.chats!.chat(BILL, BOT)].reverse().find((m) => m.buttons.flat().some((b) => b.data === 'confirm:send'))!;
    h.sandbox.chats!.press(BILL, confirm.id, 'confirm:send');
    h.sandbox.chats!.send(BILL, BOT, { text: 'It happens in Safari only.' });
    await h.settle();
    const t = (await h.store.tickets({ open: true }))[0]!;
    expect(topicMessages(t).filter((m) => m.fromUserId === BOT).map((m) => m.text)).toEqual(['It happens in Safari only.']);
  });

  it('tells the customer when the ticket is resolved, reopens when they write again, and starts a new form after the window', async () => {
    h = await setupIntake({ settings: { reopenWindowMs: 24 * 3600_000 } });
    const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
    const channel = channelOf(t.topic!.groupId);
    await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', 'Fixed: the cache is cleared.');
    await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', '/resolve');
    await h.settle();
    expect(h.heard(BILL)).toEqual(['Fixed: the cache is cleared.', '✅ Your ticket is resolved. If something is still wrong, just write here within 1 days and it reopens. Send /new for a new request.']);
    expect((await h.store.getTicket(t.key))!.status).toBe('resolved');
    expect(h.sandbox.topics(channel).find((x) => x.topicId === t.topic!.topicId)!.closed).toBe(true);

    await h.clock.advance(3600_000);
    await h.say(BILL, 'Sorry, it is broken again.');
    const back = (await h.store.getTicket(t.key))!;
    expect(back.status).toBe('answered');
    expect(h.sandbox.topics(channel).find((x) => x.topicId === t.topic!.topicId)!.closed).toBe(false);
    expect(topicMessages(t).map((m) => m.text)).toContain('Sorry, it is broken again.');
    expect(topicMessages(t).some((m) => m.text.startsWith('🔄 Reopened'))).toBe(true);
    expect(h.heard(BILL)).toEqual(['🔄 Your ticket is open again; the agent sees your message.']);
    expect(h.crm.writes.filter((w) => w.entry.kind === 'reopened')).toHaveLength(1);

    await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', '/resolve');
    await h.settle();
    h.heard(BILL);
    await h.clock.advance(25 * 3600_000);
    await h.say(BILL, 'Another question');
    // Known by their Telegram id now: the form skips the email question.
    expect(h.heard(BILL)).toEqual([expect.stringContaining('Which product is it about?')]);
  });

  it('a reopened ticket goes back to its agent only if they can take it; otherwise to whoever in its queue can', async () => {
    h = await setupIntake({ settings: { reopenWindowMs: 24 * 3600_000 } });
    const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
    const channel = channelOf(t.topic!.groupId);
    const first = (await h.store.getTicket(t.key))!.agentId!;
    const firstTg = (await h.store.getConfig())!.config.agents.find((a) => a.id === first)!.telegramUserId!;
    await h.sandbox.reply(channel, t.topic!.topicId, firstTg, 'Fixed: the cache is cleared.');
    await h.sandbox.reply(channel, t.topic!.topicId, firstTg, '/resolve');
    await h.sandbox.reply(channel, t.topic!.topicId, firstTg, '/away');
    await h.settle();
    expect((await h.store.counters()).status[first]).toBe('away');

    await h.clock.advance(3600_000);
    await h.say(BILL, 'Sorry, it is broken again.');
    await h.settle();
    const back = (await h.store.getTicket(t.key))!;
    expect(back.status).not.toBe('resolved');
    expect(back.agentId).not.toBe(first);
    const reopened = (await h.store.history({ ticketKey: t.key, kind: 'reopened' })).entries[0]!;
    expect(reopened.text).toMatch(/is away, so it waits in its queue/);
    // Someone else in the queue has it now (the sample queue has other available agents), with the usual explanation.
    expect(back.agentId).not.toBeNull();
    expect((await h.store.history({ ticketKey: t.key, kind: 'assigned' })).entries).toHaveLength(1);
  });

  it('routes an unknown customer to the default queue, and creates the CRM contact when the admin enables it', async () => {
    h = await setupIntake();
    const t = await openTicket(NORA, 'nora@unknown.example', 'CRM', 'Konto');
    expect(t.segment?.tier).toBeNull();
    expect(t.queueId).toBe('general'); // the configuration's default queue
    expect(t.explanation.join(' ')).toMatch(/tier/i);
    expect(h.crm.tickets.get(t.key)).toMatchObject({ contactId: null, companyId: null });
    expect(h.crm.calls).not.toContain('createContact');
    await h.stop();

    h = await setupIntake({ settings: { createContacts: true } });
    const t2 = await openTicket(NORA, 'nora@unknown.example', 'CRM', 'Konto');
    expect(h.crm.calls).toContain('createContact');
    const made = h.crm.contacts.find((c) => c.email === 'nora@unknown.example')!;
    expect(made.telegramUserId).toBe(NORA);
    expect(h.crm.tickets.get(t2.key)).toMatchObject({ contactId: made.contactId });
  });

  it('recognises a customer whose Telegram id is on the CRM contact, and looks again when the CRM failed the first time', async () => {
    h = await setupIntake();
    h.crm.contacts.find((c) => c.contactId === 'c-1')!.telegramUserId = BILL;
    h.crm.failFind(1);
    // The CRM is down: the form asks who they are.
    await h.say(BILL, 'hi');
    expect(h.heard(BILL).join('\n')).toMatch(/e-?mail/i);
    await h.say(BILL, '/cancel');
    h.heard(BILL);
    // Next time the lookup runs again and finds them: no identifier question, the ticket is theirs.
    const t = await openTicket(BILL, '');
    expect(h.crm.calls.filter((c) => c === `find:${JSON.stringify({ telegramUserId: BILL })}`)).toHaveLength(2);
    expect(h.crm.tickets.get(t.key)).toMatchObject({ contactId: 'c-1', companyId: 'co-1' });
  });
});

describe('the CRM port seen through the intake', () => {
  it('keeps the port’s optional parts: a closed ticket still releases its HubSpot workflow action', async () => {
    h = await setupIntake();
    const released: string[] = [];
    const ref = { crm: 'hubspot' as const, account: '42', ticketId: '7' };
    const port: CrmPort = {
      crm: 'hubspot',
      fetchContext: () => Promise.reject(new Error('not used')),
      writeBack: async () => {},
      notRouted: async (r, reason) => void released.push(`${r.ticketId} ${reason}`),
      reserveWriteBack: async (_r, entryKey) => [{ ns: 'notes', key: entryKey, value: 'pending' }],
    };
    const seen = h.intake.observe(port);
    await seen.notRouted!(ref, 'closed_in_crm');
    expect(released).toEqual(['7 closed_in_crm']);
    expect(await seen.reserveWriteBack!(ref, 'k#1')).toEqual([{ ns: 'notes', key: 'k#1', value: 'pending' }]);
  });
});
