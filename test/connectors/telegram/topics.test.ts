// A ticket's topic and card as an agent sees them in Telegram.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { utf8Length } from '../../../connectors/telegram/titles.ts';
import { ALICE, channelOf, setup, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  expect(h.sandbox.stats().unhandled).toEqual({});
  await h.stop();
});

const CARD = ['🎫 Login fails after password reset', 'Customer: Jane Roe · Acme Corp', 'Tier: enterprise · LTV: 250,000 USD', 'Queue: VIP desk · Assigned to Alice Meyer', 'First response due: 09:15', 'CRM record: https://app.hubspot.com/contacts/1/ticket/42', 'Why you: enterprise rule, least busy'].join('\n');

describe('topic per ticket', () => {
  it('creates the topic with the title, the tier colour and a t.me link', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'hubspot:1:42', groupId: 'vip', title: '[ENT] Acme Corp · Login fails', tier: 'enterprise', randomId: '1001' });
    const topics = h.sandbox.topics(channelOf('vip'));
    expect(topics).toHaveLength(1);
    expect(topics[0]).toMatchObject({ topicId: ref.topicId, title: '[ENT] Acme Corp · Login fails', iconColor: 0xfb6f5f, closed: false });
    expect(ref).toEqual({ groupId: 'vip', topicId: topics[0]!.topicId, link: `https://t.me/c/${channelOf('vip')}/${topics[0]!.topicId}` });
  });

  it.each([
    ['enterprise', 0xfb6f5f],
    ['premium', 0xffd67e],
    ['standard', 0x6fb9f0],
    ['free', 0x8eee98],
    [null, 0xcb86db],
  ] as const)('gives a %s ticket the icon colour %i', async (tier, color) => {
    h = await setup();
    await h.connector.messenger.createTopic({ ticketKey: 't', groupId: 'support-1', title: 'x', tier, randomId: '77' });
    expect(h.sandbox.topics(channelOf('support-1'))[0]!.iconColor).toBe(color);
  });

  it('cuts a long title to 128 bytes without breaking a character', async () => {
    h = await setup();
    const title = `[ENT] Ünïcødé GmbH · ${'Anmeldung schlägt fehl 👩‍👩‍👧‍👦 '.repeat(8)}`;
    await h.connector.messenger.createTopic({ ticketKey: 't', groupId: 'vip', title, tier: 'enterprise', randomId: '5' });
    const got = h.sandbox.topics(channelOf('vip'))[0]!.title;
    expect(utf8Length(got)).toBeLessThanOrEqual(128);
    expect(got.endsWith('…')).toBe(true);
    expect(title.startsWith(got.slice(0, -1).trimEnd())).toBe(true);
    expect(got).not.toMatch(/\uFFFD/);
    // The family emoji is kept whole or dropped whole.
    const families = got.split('👩‍👩‍👧‍👦').length - 1;
    expect(got.replaceAll('👩‍👩‍👧‍👦', '')).not.toMatch(/[\u200d\u{1F466}-\u{1F469}]/u);
    expect(families).toBeGreaterThanOrEqual(1);
  });

  it('posts the card into the topic, mentions the assigned agent and pins it', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'hubspot:1:42', groupId: 'vip', title: '[ENT] Acme Corp · Login fails', tier: 'enterprise', randomId: '1001' });
    const { messageId } = await h.connector.messenger.post({ topic: ref, text: CARD, mention: { name: ALICE.name, telegramUserId: ALICE.id }, randomId: '2002', pin: true, priority: 40 });
    const msgs = h.sandbox.allMessages(channelOf('vip'));
    const card = msgs.find((m) => m.id === messageId)!;
    expect(card).toMatchObject({ kind: 'text', topicId: ref.topicId, text: CARD, pinned: true, mentions: [ALICE.id] });
    expect(msgs.filter((m) => m.kind === 'pin')).toHaveLength(1);
    expect(h.sandbox.messages(channelOf('vip'), ref.topicId).map((m) => m.text)).toEqual([CARD]);
  });

  it('lands every message in its topic, never in General', async () => {
    h = await setup();
    const a = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'support-1', title: 'A', tier: 'standard', randomId: '11' });
    const b = await h.connector.messenger.createTopic({ ticketKey: 'b', groupId: 'support-1', title: 'B', tier: 'standard', randomId: '12' });
    await h.connector.messenger.post({ topic: a, text: 'to A', randomId: '21' });
    await h.connector.messenger.post({ topic: b, text: 'to B', randomId: '22' });
    await h.connector.messenger.post({ topic: a, text: 'to A again', randomId: '23' });
    const msgs = h.sandbox.allMessages(channelOf('support-1')).filter((m) => m.kind === 'text');
    expect(msgs.map((m) => [m.text, m.topicId])).toEqual([
      ['to A', a.topicId],
      ['to B', b.topicId],
      ['to A again', a.topicId],
    ]);
    expect(h.sandbox.messages(channelOf('support-1'), 1)).toEqual([]);
  });

  it('appends the agent when the text does not name them, so they are still notified', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'vip', title: 'A', tier: 'premium', randomId: '31' });
    await h.connector.messenger.post({ topic: ref, text: 'SLA reminder: 3 minutes left', mention: { name: ALICE.name, telegramUserId: ALICE.id }, randomId: '32' });
    const m = h.sandbox.allMessages(channelOf('vip')).find((x) => x.kind === 'text')!;
    expect(m.text).toBe(`SLA reminder: 3 minutes left\n\n👤 ${ALICE.name}`);
    expect(m.mentions).toEqual([ALICE.id]);
  });

  it('invites an assigned agent who is not in the group (user account) before mentioning them', async () => {
    h = await setup();
    h.sandbox.setMember(channelOf('support-2'), ALICE.id, null);
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'support-2', title: 'A', tier: 'standard', randomId: '41' });
    await h.connector.messenger.post({ topic: ref, text: `Assigned to ${ALICE.name}`, mention: { name: ALICE.name, telegramUserId: ALICE.id }, randomId: '42' });
    expect(h.sandbox.isMember(channelOf('support-2'), ALICE.id)).toBe(true);
    const m = h.sandbox.allMessages(channelOf('support-2')).find((x) => x.kind === 'text')!;
    expect(m.mentions).toEqual([ALICE.id]);
  });

  it('still posts and mentions as a bot when the agent is not in the group, and says how to fix it', async () => {
    h = await setup({ as: 'bot' });
    h.sandbox.setMember(channelOf('support-2'), ALICE.id, null);
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'support-2', title: 'A', tier: 'standard', randomId: '43' });
    // The bot knows Alice from another group it shares with her.
    await h.sandbox.reply(channelOf('vip'), 1, ALICE.id, 'morning');
    await h.connector.idle();
    await h.connector.messenger.post({ topic: ref, text: `Assigned to ${ALICE.name}`, mention: { name: ALICE.name, telegramUserId: ALICE.id }, randomId: '44' });
    expect(h.sandbox.isMember(channelOf('support-2'), ALICE.id)).toBe(false);
    expect(h.sandbox.allMessages(channelOf('support-2')).find((x) => x.kind === 'text')!.mentions).toEqual([ALICE.id]);
    expect((await h.connector.health()).lastError).toMatch(/Alice Meyer is not a member of "Tierline · Support 2" and a bot cannot invite them: add them to the group/);
  });

  it('closes the topic, and closing it twice is fine', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'vip', title: 'A', tier: 'premium', randomId: '51' });
    await h.connector.messenger.closeTopic(ref);
    await h.connector.messenger.closeTopic(ref);
    expect(h.sandbox.topics(channelOf('vip'))[0]!.closed).toBe(true);
  });

  it('sends the same message once when the pipeline repeats a post (same random_id)', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'vip', title: 'A', tier: 'premium', randomId: '61' });
    const first = await h.connector.messenger.post({ topic: ref, text: 'card', randomId: '62', pin: true });
    const again = await h.connector.messenger.post({ topic: ref, text: 'card', randomId: '62', pin: true });
    expect(again.messageId).toBe(first.messageId);
    expect(h.sandbox.messages(channelOf('vip'), ref.topicId)).toHaveLength(1);
  });

  it('reports a deleted topic as topic_gone so the pipeline opens a new one', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'vip', title: 'A', tier: 'premium', randomId: '71' });
    h.sandbox.deleteTopic(channelOf('vip'), ref.topicId);
    const err = await h.connector.messenger.post({ topic: ref, text: 'reminder', randomId: '72' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('topic_gone');
    // The pipeline then asks for a topic with a new random id (generation 1) and relinks it.
    const again = await h.connector.messenger.createTopic({ ticketKey: 'a', groupId: 'vip', title: 'A', tier: 'premium', randomId: '73' });
    expect(again.topicId).not.toBe(ref.topicId);
    await h.connector.messenger.post({ topic: again, text: 'reminder', randomId: '74' });
    expect(h.sandbox.messages(channelOf('vip'), again.topicId).map((m) => m.text)).toEqual(['reminder']);
  });
});
