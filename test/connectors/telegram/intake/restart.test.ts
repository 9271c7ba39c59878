// Restarts: a conversation goes on where it was, messages that arrived while the bot was down (in the chat and in the
// topic) are relayed once, and a copy whose answer was lost is not sent twice.
import { afterEach, expect, it } from 'vitest';
import { BILL, BOT, channelOf, HANK, setupIntake, type IntakeHarness } from './harness.ts';

let h: IntakeHarness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

it('continues a form across a restart, with answers given while the bot was down', async () => {
  h = await setupIntake();
  await h.say(HANK, 'Hallo');
  await h.say(HANK, 'hank.scorpio@globex.example');
  h.heard(HANK);
  await h.intake.stop();
  // While the bot is down the customer picks a product by name and starts on the category.
  h.sandbox.chats!.send(HANK, BOT, { text: 'API' });
  h.sandbox.chats!.send(HANK, BOT, { text: 'Technik' });
  await h.settle();
  expect(h.heard(HANK)).toEqual([]);
  await h.restart();
  expect(h.heard(HANK)).toEqual(['Welche Art von Problem ist es?', 'Bitte beschreiben Sie das Problem in ein paar Sätzen.']);
  await h.say(HANK, 'Die API antwortet mit 429 ohne Grund.');
  await h.press(HANK, '✅ Senden');
  expect(h.crm.calls.filter((c) => c === 'createTicket')).toHaveLength(1);
  // A second restart repeats nothing.
  await h.intake.stop();
  await h.restart();
  const chat = h.sandbox.chats!.chat(HANK, BOT);
  expect(chat.filter((m) => m.fromBot && m.text === 'Welche Art von Problem ist es?')).toHaveLength(1);
  expect(chat.filter((m) => m.fromBot && m.text.startsWith('Ihr Ticket #900 ist eröffnet'))).toHaveLength(1);
});

it('relays what arrived while down once, and never twice after a lost answer', async () => {
  h = await setupIntake();
  await h.say(BILL, 'hi');
  await h.say(BILL, 'bill.lumbergh@initech.example');
  await h.press(BILL, 'API');
  await h.press(BILL, 'Technical');
  await h.say(BILL, 'Exports time out after 30 seconds.');
  await h.press(BILL, '✅ Send');
  const t = (await h.store.tickets({ open: true }))[0]!;
  const channel = channelOf(t.topic!.groupId);
  const fromBot = () => h.sandbox.allMessages(channel).filter((m) => m.topicId === t.topic!.topicId && m.fromUserId === BOT).map((m) => m.text);
  const toCustomer = () => h.sandbox.chats!.chat(BILL, BOT).filter((m) => m.fromBot).map((m) => m.text);

  // The copy into the topic is made, but its answer never arrives (a crash right after the send).
  h.sandbox.dropNextResponse('messages.ForwardMessages');
  h.sandbox.chats!.send(BILL, BOT, { text: 'Any news?' });
  await h.settle();
  expect(fromBot()).toEqual(['Any news?']);
  await h.intake.stop();

  // While down: the customer writes and the agent answers.
  h.sandbox.chats!.send(BILL, BOT, { text: 'Still failing at 10:05.' });
  await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', 'We found it, deploying a fix.');
  await h.settle();
  await h.restart();
  expect(fromBot()).toEqual(['Any news?', 'Still failing at 10:05.']);
  expect(toCustomer().filter((x) => x === 'We found it, deploying a fix.')).toHaveLength(1);

  // Resolved while the bot is down (a write-back on an instance without the bot): the notice waits in the store.
  await h.intake.stop();
  await h.sandbox.reply(channel, t.topic!.topicId, '7000000001', '/resolve');
  await h.settle();
  expect(toCustomer().some((x) => x.startsWith('✅ Your ticket is resolved'))).toBe(false);
  await h.restart();
  expect(fromBot()).toEqual(['Any news?', 'Still failing at 10:05.']);
  expect(toCustomer().filter((x) => x === 'We found it, deploying a fix.')).toHaveLength(1);
  expect(toCustomer().filter((x) => x.startsWith('✅ Your ticket is resolved'))).toHaveLength(1);
  await h.intake.stop();
  await h.restart();
  expect(toCustomer().filter((x) => x.startsWith('✅ Your ticket is resolved'))).toHaveLength(1);
});
