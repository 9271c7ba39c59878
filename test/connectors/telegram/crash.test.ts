// A crash between Telegram doing something and us recording it must not make Telegram do it twice.
import { afterEach, describe, expect, it } from 'vitest';
import { channelOf, setup, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

const req = { ticketKey: 'hubspot:1:42', groupId: 'vip', title: '[ENT] Acme Corp · Login fails', tier: 'enterprise' as const, randomId: '8123456789012345678' };

describe('crash between create and store', () => {
  it.each(['user', 'bot'] as const)('finds the topic an interrupted attempt created instead of opening a second one (%s)', async (as) => {
    h = await setup({ as });
    // A same-titled topic of another ticket must not be mistaken for ours.
    await h.connector.messenger.createTopic({ ...req, ticketKey: 'other', randomId: '111' });
    // Telegram creates the topic, but the process dies before the answer arrives.
    h.sandbox.dropNextResponse('channels.CreateForumTopic');
    void h.connector.messenger.createTopic(req).catch(() => {});
    await h.clock.advance(0);
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(2);
    await h.connector.stop();

    // The restarted service retries the step with the random_id it stored before the call.
    const after = await h.restart();
    const ref = await after.messenger.createTopic(req);
    const topics = h.sandbox.topics(channelOf('vip'));
    expect(topics).toHaveLength(2);
    expect(ref.topicId).toBe(Math.max(...topics.map((t) => t.topicId)));
    expect(h.sandbox.stats().requests['channels.CreateForumTopic']).toBe(2);
  });

  it.each(['user', 'bot'] as const)('a topic reserved with the step is created without a search; after a crash mid-call the restart finds it (%s)', async (as) => {
    h = await setup({ as });
    // The pipeline stores the reservation with the commit that queues the topic step.
    const reserved = await h.connector.messenger.reserveTopic!(req);
    expect(reserved).toHaveLength(1);
    for (const r of reserved) await h.store.kvPut(r.ns, r.key, r.value);
    expect(await h.connector.messenger.reserveTopic!(req)).toEqual([]); // never over an existing record
    const searches = () => (h.sandbox.stats().requests['channels.GetForumTopics'] ?? 0) + (h.sandbox.stats().requests['channels.GetMessages'] ?? 0);
    const before = searches();
    h.sandbox.dropNextResponse('channels.CreateForumTopic');
    void h.connector.messenger.createTopic({ ...req, firstRun: true }).catch(() => {});
    await h.clock.advance(0);
    expect(searches()).toBe(before); // sent at once: nothing can have been created before
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(1);
    await h.connector.stop();

    const after = await h.restart();
    const ref = await after.messenger.createTopic(req);
    expect(searches()).toBeGreaterThan(before); // a record this process did not reserve: looked for first
    expect(h.sandbox.topics(channelOf('vip'))).toEqual([expect.objectContaining({ topicId: ref.topicId })]);
    expect(h.sandbox.stats().requests['channels.CreateForumTopic']).toBe(1);
  });

  it('a topic reserved here is looked for first when another instance may have run the step (a later claim)', async () => {
    h = await setup();
    for (const r of await h.connector.messenger.reserveTopic!(req)) await h.store.kvPut(r.ns, r.key, r.value);
    // Another instance claims the step first, creates the topic and dies before the answer arrives.
    const other = await h.restart();
    h.sandbox.dropNextResponse('channels.CreateForumTopic');
    void other.messenger.createTopic({ ...req, firstRun: true }).catch(() => {});
    await h.clock.advance(0);
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(1);
    await other.stop();

    // Its lease runs out and the step comes back to the instance that reserved the record, on its second claim.
    const ref = await h.connector.messenger.createTopic({ ...req, firstRun: false });
    expect(h.sandbox.topics(channelOf('vip'))).toEqual([expect.objectContaining({ topicId: ref.topicId })]);
    expect(h.sandbox.stats().requests['channels.CreateForumTopic']).toBe(1);
  });

  it('answers from its own record when it got the answer but the pipeline did not store it', async () => {
    h = await setup();
    const first = await h.connector.messenger.createTopic(req);
    const after = await h.restart();
    const again = await after.messenger.createTopic(req);
    expect(again).toEqual(first);
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(1);
    expect(h.sandbox.stats().requests['channels.CreateForumTopic']).toBe(1);
  });

  it('opens one topic when the same step runs twice at once (an expired lease)', async () => {
    h = await setup();
    const [a, b] = await Promise.all([h.connector.messenger.createTopic(req), h.connector.messenger.createTopic(req)]);
    expect(a).toEqual(b);
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(1);
  });

  it('creates the topic normally when the interrupted attempt never reached Telegram', async () => {
    h = await setup();
    h.sandbox.cutConnections();
    void h.connector.messenger.createTopic(req).catch(() => {});
    await h.clock.advance(0);
    await h.connector.stop();
    h.sandbox.restoreConnections();
    const after = await h.restart();
    await after.messenger.createTopic(req);
    expect(h.sandbox.topics(channelOf('vip'))).toHaveLength(1);
  });

  it('sends and pins the card once when the answer to the send was lost', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic(req);
    h.sandbox.dropNextResponse('messages.SendMessage');
    const post = { topic: ref, text: 'Ticket card', randomId: '424242', pin: true };
    void h.connector.messenger.post(post).catch(() => {});
    await h.clock.advance(0);
    await h.connector.stop();
    const after = await h.restart();
    const { messageId } = await after.messenger.post(post);
    const msgs = h.sandbox.messages(channelOf('vip'), ref.topicId);
    expect(msgs).toEqual([expect.objectContaining({ id: messageId, text: 'Ticket card', pinned: true })]);
  });
});

describe('access hashes', () => {
  it('keeps channel access hashes in the store, so a restart reaches the groups without the dialog list', async () => {
    h = await setup();
    expect(h.sandbox.stats().requests['messages.GetDialogs']).toBe(1);
    const stored = await h.store.kvList<{ channelId: string; accessHash: string }>('telegram:peers');
    expect(stored.map((s) => s.key).sort()).toEqual(['support-1', 'support-2', 'vip']);
    const after = await h.restart();
    await after.messenger.createTopic(req);
    expect(h.sandbox.stats().requests['messages.GetDialogs']).toBe(1);
  });

  it('keeps agents access hashes, so a restart mentions them without looking them up again', async () => {
    h = await setup();
    const ref = await h.connector.messenger.createTopic(req);
    await h.connector.messenger.post({ topic: ref, text: 'Assigned to Alice Meyer', mention: { name: 'Alice Meyer', telegramUserId: '7000000001' }, randomId: '1' });
    const lookups = h.sandbox.stats().requests['channels.GetParticipants'] ?? 0;
    expect(await h.store.kvGet('telegram:users', '7000000001')).toMatchObject({ userId: '7000000001', accessHash: expect.any(String) });
    const after = await h.restart();
    await after.messenger.post({ topic: ref, text: 'Reminder for Alice Meyer', mention: { name: 'Alice Meyer', telegramUserId: '7000000001' }, randomId: '2' });
    // Membership is re-checked once, but the hash comes from the store (no contact list, no username lookup).
    expect(h.sandbox.stats().requests['contacts.GetContacts'] ?? 0).toBe(0);
    expect(h.sandbox.stats().requests['channels.GetParticipants']).toBeLessThanOrEqual(lookups + 1);
    expect(h.sandbox.allMessages(channelOf('vip')).filter((m) => m.kind === 'text').map((m) => m.mentions)).toEqual([['7000000001'], ['7000000001']]);
  });
});
