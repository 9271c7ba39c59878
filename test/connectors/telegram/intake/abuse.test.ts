// Abuse: a per-customer rate limit, the block list (admin API and configuration), a cap on open tickets, and spam that
// never completes the form never makes a topic.
import { afterEach, expect, it } from 'vitest';
import { BILL, BOT, channelOf, HANK, NORA, setupIntake, type IntakeHarness } from './harness.ts';

let h: IntakeHarness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

async function openTicket(userId: string, identifier: string) {
  await h.say(userId, 'hi');
  await h.say(userId, identifier);
  await h.press(userId, 'API');
  await h.press(userId, 'Technical');
  await h.say(userId, 'Webhooks arrive twice since Monday.');
  await h.press(userId, h.lastButtons(userId).find((l) => l.startsWith('✅'))!);
  h.heard(userId);
  return (await h.store.tickets({ open: true })).at(-1)!;
}

it('drops messages over the rate limit with one notice, then relays again after the window', async () => {
  h = await setupIntake({ settings: { rateLimit: { messages: 5, windowMs: 60_000 } } });
  const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
  await h.clock.advance(120_000);
  for (let i = 1; i <= 8; i++) h.sandbox.chats!.send(BILL, BOT, { text: `message ${i}` });
  await h.settle();
  const inTopic = () => h.sandbox.allMessages(channelOf(t.topic!.groupId)).filter((m) => m.topicId === t.topic!.topicId && m.fromUserId === BOT).map((m) => m.text);
  expect(inTopic()).toEqual(['message 1', 'message 2', 'message 3', 'message 4', 'message 5']);
  expect(h.heard(BILL)).toEqual(['You are sending messages very fast. Please wait a minute; messages sent meanwhile do not reach the agent.']);
  await h.clock.advance(61_000);
  await h.say(BILL, 'message 9');
  expect(inTopic().at(-1)).toBe('message 9');
  expect(h.heard(BILL)).toEqual([]);
});

it('ignores blocked customers (admin API and configuration) and unblocks them', async () => {
  h = await setupIntake({ settings: { blocked: [HANK] } });
  const auth = { authorization: 'Bearer admin-token-for-tests' };
  expect((await h.intake.routes.request(`/api/v1/intake/blocked/${NORA}`, { method: 'PUT' })).status).toBe(401);
  const put = await h.intake.routes.request(`/api/v1/intake/blocked/${NORA}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'spam links' }) });
  expect(put.status).toBe(200);
  expect((await h.intake.routes.request('/api/v1/intake/blocked/abc', { method: 'PUT', headers: auth })).status).toBe(400);
  const list = (await (await h.intake.routes.request('/api/v1/intake/blocked', { headers: auth })).json()) as { blocked: { telegramUserId: string; reason: string }[] };
  expect(list.blocked.map((b) => [b.telegramUserId, b.reason])).toEqual([
    [HANK, 'configuration'],
    [NORA, 'spam links'],
  ]);
  await h.say(NORA, 'buy cheap followers');
  await h.say(HANK, 'hallo');
  expect(h.heard(NORA)).toEqual([]);
  expect(h.heard(HANK)).toEqual([]);
  expect((await h.intake.routes.request(`/api/v1/intake/blocked/${NORA}`, { method: 'DELETE', headers: auth })).status).toBe(200);
  await h.say(NORA, 'sorry, real question');
  expect(h.heard(NORA)[0]).toContain('Wie lautet Ihre E-Mail-Adresse?');
});

it('caps open tickets per customer, and spam that never finishes the form makes no topic', async () => {
  h = await setupIntake({ settings: { maxOpenTickets: 1 } });
  for (let i = 0; i < 15; i++) h.sandbox.chats!.send(NORA, BOT, { text: `spam ${i}` });
  await h.settle();
  expect(h.sandbox.topicCreations()).toEqual([]);
  expect(h.crm.calls.filter((c) => c === 'createTicket')).toEqual([]);

  await openTicket(BILL, 'bill.lumbergh@initech.example');
  await h.say(BILL, '/new');
  expect(h.heard(BILL)).toEqual(['You already have 1 open tickets. Please continue in this chat, or wait until one is resolved.']);
  expect(h.sandbox.topicCreations()).toHaveLength(1);
});

it('waits out a FLOOD_WAIT into a topic and into the customer chat, then sends: nothing lost, nothing twice', async () => {
  h = await setupIntake();
  const t = await openTicket(BILL, 'bill.lumbergh@initech.example');
  const channel = channelOf(t.topic!.groupId);
  h.sandbox.injectError({ method: 'messages.ForwardMessages', error: 'FLOOD_WAIT_7' });
  h.sandbox.chats!.send(BILL, BOT, { text: 'first' });
  h.sandbox.chats!.send(BILL, BOT, { text: 'second' });
  await h.settle();
  const inTopic = () => h.sandbox.allMessages(channel).filter((m) => m.topicId === t.topic!.topicId && m.fromUserId === BOT).map((m) => m.text);
  expect(inTopic()).toEqual([]);
  await h.clock.advance(8_000);
  await h.settle();
  expect(inTopic()).toEqual(['first', 'second']);

  // The copy of the agent's answer to the customer's chat is held back the same way.
  h.heard(BILL);
  h.sandbox.injectError({ method: 'messages.ForwardMessages', error: 'FLOOD_WAIT_3' });
  await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', 'On it.');
  await h.settle();
  expect(h.heard(BILL)).toEqual([]);
  await h.clock.advance(4_000);
  await h.settle();
  expect(h.heard(BILL)).toEqual(['On it.']);
  await h.clock.advance(60_000);
  await h.settle();
  expect(inTopic()).toEqual(['first', 'second']);
  expect(h.heard(BILL)).toEqual([]);
});
