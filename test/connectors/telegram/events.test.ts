// What agents do in Telegram reaches the pipeline as events: replies (first response), commands, closing a topic
// (resolution), presence; and nothing is missed across a disconnect.
import { afterEach, describe, expect, it } from 'vitest';
import type { MessengerEvent } from '../../../core/ports.ts';
import { ALICE, BRUNO, channelOf, setup, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  expect(h.sandbox.stats().unhandled).toEqual({});
  await h.stop();
});

async function openTopic(groupId = 'vip', randomId = '900') {
  const ref = await h.connector.messenger.createTopic({ ticketKey: `t-${randomId}`, groupId, title: `Ticket ${randomId}`, tier: 'premium', randomId });
  h.open.push(ref);
  return ref;
}

const messages = () => h.events.filter((e): e is Extract<MessengerEvent, { kind: 'message' }> => e.kind === 'message');

describe('agent activity becomes events', () => {
  it('reports the first reply with its topic, sender and time (first-response time)', async () => {
    h = await setup();
    const ref = await openTopic();
    const createdAt = h.clock.now();
    await h.clock.advance(7 * 60_000);
    await h.sandbox.reply(channelOf('vip'), ref.topicId, ALICE.id, 'Hi Jane, looking into it now.');
    await h.connector.idle();
    expect(messages()).toEqual([{ kind: 'message', groupId: 'vip', topicId: ref.topicId, messageId: expect.any(Number), fromTelegramUserId: ALICE.id, text: 'Hi Jane, looking into it now.', at: expect.any(Number) }]);
    const at = messages()[0]!.at;
    expect(Math.round((at - createdAt) / 60_000)).toBe(7);
  });

  it('reports a reply by another agent as that agent', async () => {
    h = await setup();
    const ref = await openTopic();
    await h.sandbox.reply(channelOf('vip'), ref.topicId, BRUNO.id, 'I can take this one');
    await h.connector.idle();
    expect(messages()[0]).toMatchObject({ topicId: ref.topicId, fromTelegramUserId: BRUNO.id });
  });

  it.each(['/resolve', '/reassign too busy', '/escalate customer threatens to churn', '/away', '/back', '/resolve@tierline_sandbox_bot'])('passes the command %s to the pipeline with its topic and sender', async (cmd) => {
    h = await setup();
    const ref = await openTopic('support-2', '901');
    await h.sandbox.reply(channelOf('support-2'), ref.topicId, ALICE.id, cmd);
    await h.connector.idle();
    expect(messages()).toEqual([expect.objectContaining({ groupId: 'support-2', topicId: ref.topicId, fromTelegramUserId: ALICE.id, text: cmd })]);
  });

  it('reports an agent closing the topic with when and by whom (resolution time)', async () => {
    h = await setup();
    const ref = await openTopic();
    await h.clock.advance(42 * 60_000);
    await h.sandbox.closeTopic(channelOf('vip'), ref.topicId, ALICE.id);
    await h.connector.idle();
    expect(h.events).toEqual([{ kind: 'topic_closed', groupId: 'vip', topicId: ref.topicId, at: Math.floor(h.clock.now() / 1000) * 1000, byTelegramUserId: ALICE.id }]);
  });

  it('does not report its own messages, General chatter or groups outside the configuration', async () => {
    h = await setup();
    const ref = await openTopic();
    await h.connector.messenger.post({ topic: ref, text: 'card', randomId: '1' });
    await h.sandbox.reply(channelOf('vip'), 1, ALICE.id, 'coffee anyone?');
    h.sandbox.addGroup({ id: 'other', channelId: '1900000099', title: 'Other team' });
    await h.sandbox.reply('1900000099', 1, ALICE.id, 'hello');
    await h.connector.idle();
    expect(h.events).toEqual([]);
  });

  it('reports agents going offline and back online, once per change (reassignment on offline)', async () => {
    h = await setup();
    await h.sandbox.setOnline(ALICE.id, false);
    await h.sandbox.setOnline(ALICE.id, false);
    await h.clock.advance(60_000);
    await h.sandbox.setOnline(ALICE.id, true);
    await h.sandbox.setOnline(ALICE.id, true);
    await h.connector.idle();
    expect(h.events).toEqual([
      { kind: 'presence', telegramUserId: ALICE.id, online: false, at: expect.any(Number) },
      { kind: 'presence', telegramUserId: ALICE.id, online: true, at: expect.any(Number) },
    ]);
    expect((h.events[1] as { at: number }).at - (h.events[0] as { at: number }).at).toBe(60_000);
  });

  it('gets no presence as a bot (Telegram does not send it to bots), but still sees replies', async () => {
    h = await setup({ as: 'bot' });
    const ref = await openTopic();
    await h.sandbox.setOnline(ALICE.id, false);
    await h.sandbox.reply(channelOf('vip'), ref.topicId, ALICE.id, '/resolve');
    await h.connector.idle();
    expect(h.events.map((e) => e.kind)).toEqual(['message']);
  });
});

describe('reconciliation', () => {
  it('re-reads open topics after a disconnect so replies sent meanwhile are not missed', async () => {
    h = await setup();
    const a = await openTopic('vip', '910');
    const b = await openTopic('support-1', '911');
    h.sandbox.cutConnections();
    await h.sandbox.reply(channelOf('vip'), a.topicId, ALICE.id, 'answered while you were away');
    await h.sandbox.closeTopic(channelOf('support-1'), b.topicId, BRUNO.id);
    await h.connector.idle();
    expect(h.events).toEqual([]); // lost in the gap, as with GramJS on a real connection
    h.sandbox.restoreConnections();
    await h.clock.advance(0);
    await h.connector.idle();
    expect(h.events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'message', groupId: 'vip', topicId: a.topicId, fromTelegramUserId: ALICE.id, text: 'answered while you were away' }),
        expect.objectContaining({ kind: 'topic_closed', groupId: 'support-1', topicId: b.topicId, byTelegramUserId: BRUNO.id }),
      ]),
    );
    expect((await h.connector.health()).lastReconcile).toMatchObject({ reason: 'reconnect', topics: 2 });
  });

  it('reads a topic back page by page when more replies than fit in one page came during the gap', async () => {
    h = await setup();
    const a = await openTopic('vip', '912');
    await h.sandbox.reply(channelOf('vip'), a.topicId, ALICE.id, 'before the gap');
    await h.connector.idle();
    h.sandbox.cutConnections();
    for (let i = 1; i <= 230; i++) await h.sandbox.reply(channelOf('vip'), a.topicId, ALICE.id, `missed ${i}`);
    await h.connector.idle();
    h.sandbox.restoreConnections();
    await h.clock.advance(0);
    await h.connector.idle();
    const texts = new Set(messages().map((m) => m.text));
    expect(Array.from({ length: 230 }, (_, i) => `missed ${i + 1}`).filter((t) => !texts.has(t))).toEqual([]);
  });

  it('catches up as a bot too, reading the group after the last message it saw', async () => {
    h = await setup({ as: 'bot' });
    const a = await openTopic('vip', '920');
    h.sandbox.cutConnections();
    await h.sandbox.reply(channelOf('vip'), a.topicId, ALICE.id, 'missed reply');
    await h.connector.idle();
    h.sandbox.restoreConnections();
    await h.clock.advance(0);
    await h.connector.idle();
    expect(messages()).toEqual([expect.objectContaining({ topicId: a.topicId, text: 'missed reply', fromTelegramUserId: ALICE.id })]);
  });

  it('re-reads open topics on start, for replies sent while the service was down', async () => {
    h = await setup();
    const a = await openTopic('vip', '930');
    await h.connector.stop();
    await h.sandbox.reply(channelOf('vip'), a.topicId, ALICE.id, 'sent during the deploy');
    h.events.length = 0;
    await h.restart();
    expect(messages()).toEqual([expect.objectContaining({ topicId: a.topicId, text: 'sent during the deploy' })]);
  });
});
