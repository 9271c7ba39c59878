// Flood control: pacing per group and per account with priorities, and Telegram's FLOOD_WAIT / SLOWMODE_WAIT answers
// handled by rescheduling that group's work only; no wait is slept inside GramJS and none reaches a ticket.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { TopicRef } from '../../../core/ports.ts';
import { channelOf, drive, setup, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

/** Tracks which of a set of promises have settled, without awaiting them. */
function watch<T>(ps: Promise<T>[]) {
  const state = ps.map(() => ({ done: false, error: null as unknown }));
  ps.forEach((p, i) =>
    p.then(
      () => void (state[i]!.done = true),
      (e) => {
        state[i]!.done = true;
        state[i]!.error = e;
      },
    ),
  );
  return { doneCount: () => state.filter((s) => s.done).length, errors: () => state.filter((s) => s.error).map((s) => s.error), done: (i: number) => state[i]!.done };
}

async function topic(groupId: string, randomId: string): Promise<TopicRef> {
  return h.connector.messenger.createTopic({ ticketKey: `t${randomId}`, groupId, title: `T ${randomId}`, tier: 'standard', randomId });
}

describe('FLOOD_WAIT above GramJS auto-sleep threshold', () => {
  it('pauses only the flooded group for the given seconds, then delivers; other groups go on', async () => {
    h = await setup();
    const a = await topic('support-1', '1');
    const b = await topic('support-2', '2');
    // 120 s is above GramJS's default floodSleepThreshold (60 s): it must reach the connector, not sleep in invoke.
    h.sandbox.injectError({ method: 'messages.SendMessage', channelId: channelOf('support-1'), error: 'FLOOD_WAIT_120' });
    const flooded = h.connector.messenger.post({ topic: a, text: 'to the flooded group', randomId: '10' });
    const w = watch([flooded]);
    await h.connector.messenger.post({ topic: b, text: 'to the other group', randomId: '11' });
    await h.clock.advance(1000);
    expect(w.doneCount()).toBe(0);
    expect((await h.connector.health()).detail).toMatch(/FLOOD_WAIT 11\d s on group support-1/);
    // Later work for the flooded group waits behind the wait too.
    const behind = h.connector.messenger.post({ topic: a, text: 'queued behind', randomId: '12' });
    await h.clock.advance(118_000);
    expect(w.doneCount()).toBe(0);
    await h.clock.advance(2_000);
    await flooded;
    await behind;
    expect(h.sandbox.messages(channelOf('support-1'), a.topicId).map((m) => m.text)).toEqual(['to the flooded group', 'queued behind']);
    expect(h.sandbox.messages(channelOf('support-2'), b.topicId).map((m) => m.text)).toEqual(['to the other group']);
    expect((await h.connector.health()).pacing).toMatchObject({ floodWaits: 1, floodWaitsSurfaced: 0 });
  });

  it('treats a slow-mode wait the same way', async () => {
    h = await setup();
    const a = await topic('vip', '1');
    h.sandbox.injectError({ method: 'messages.SendMessage', channelId: channelOf('vip'), error: 'SLOWMODE_WAIT_30' });
    const p = h.connector.messenger.post({ topic: a, text: 'after slow mode', randomId: '2' });
    const w = watch([p]);
    await h.clock.advance(29_000);
    expect(w.doneCount()).toBe(0);
    await h.clock.advance(1_000);
    await p;
    expect(h.sandbox.messages(channelOf('vip'), a.topicId)).toHaveLength(1);
  });

  it('hands a very long wait back to the pipeline as rate_limited with the wait attached', async () => {
    h = await setup({ pacing: { maxWaitSeconds: 600 } });
    const a = await topic('vip', '1');
    h.sandbox.injectError({ method: 'messages.SendMessage', error: 'FLOOD_WAIT_3600' });
    const err = await h.connector.messenger.post({ topic: a, text: 'x', randomId: '2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'rate_limited', retryAfterMs: 3_600_000 });
  });
});

describe('pacing', () => {
  it('sends at most 20 per minute into one group, without ever hitting the flood limit', async () => {
    h = await setup();
    const a = await topic('support-1', '1'); // one send used
    const posts = Array.from({ length: 30 }, (_, i) => h.connector.messenger.post({ topic: a, text: `m${i}`, randomId: String(100 + i) }));
    const w = watch(posts);
    await h.clock.advance(1000); // (the account limit, 20 requests a second, also applies within the first second)
    expect(w.doneCount()).toBe(19);
    await h.clock.advance(58_000);
    expect(w.doneCount()).toBe(19);
    await h.clock.advance(1_000);
    expect(w.doneCount()).toBe(30);
    expect(w.errors()).toEqual([]);
    expect(h.sandbox.stats().floodWaits).toBe(0);
    expect(h.sandbox.messages(channelOf('support-1'), a.topicId).map((m) => m.text)).toEqual(posts.map((_, i) => `m${i}`));
  });

  it('sends higher priorities first when throttled', async () => {
    h = await setup({ pacing: { perGroupPerMinute: 2 } });
    const a = await topic('vip', '1');
    await h.clock.advance(60_000);
    const order = [
      ['free', 10],
      ['enterprise', 45],
      ['standard', 20],
      ['premium', 30],
      ['enterprise-urgent', 49],
    ] as const;
    const ps = order.map(([text, priority], i) => h.connector.messenger.post({ topic: a, text, priority, randomId: String(200 + i) }));
    await drive(h.clock, Promise.all(ps));
    expect(h.sandbox.messages(channelOf('vip'), a.topicId).map((m) => m.text)).toEqual(['enterprise-urgent', 'enterprise', 'premium', 'standard', 'free']);
  });

  it('creates enterprise topics before free ones from the same burst', async () => {
    h = await setup({ pacing: { perGroupPerMinute: 3 } });
    const tiers = ['free', 'free', 'enterprise', 'standard', 'free', 'enterprise', 'premium', 'enterprise'] as const;
    const ps = tiers.map((tier, i) => h.connector.messenger.createTopic({ ticketKey: `k${i}`, groupId: 'support-1', title: `${tier} ${i}`, tier, randomId: String(300 + i) }));
    await drive(h.clock, Promise.all(ps));
    const created = h.sandbox.topicCreations().map((t) => t.title.split(' ')[0]);
    expect(created).toEqual(['enterprise', 'enterprise', 'enterprise', 'premium', 'standard', 'free', 'free', 'free']);
  });

  it('keeps to the per-account limit across groups', async () => {
    h = await setup({ pacing: { perAccountPerSecond: 5 } });
    await h.clock.advance(2000);
    const ps = ['vip', 'support-1', 'support-2'].flatMap((g) => [1, 2, 3, 4].map((n) => topic(g, `${g}-${n}`)));
    const w = watch(ps);
    await h.clock.advance(0);
    expect(w.doneCount()).toBe(5);
    await h.clock.advance(1000);
    expect(w.doneCount()).toBe(10);
    await h.clock.advance(1000);
    expect(w.doneCount()).toBe(12);
    expect(h.sandbox.stats().floodWaits).toBe(0);
  });

  it('recovers from a flood limit it did not know about (a group stricter than the pacing)', async () => {
    h = await setup({ sandbox: { limits: { perGroupPerMinute: 5 } } });
    const a = await topic('support-2', '1');
    const ps = Array.from({ length: 12 }, (_, i) => h.connector.messenger.post({ topic: a, text: `m${i}`, randomId: String(400 + i) }));
    await drive(h.clock, Promise.all(ps));
    expect(h.sandbox.stats().floodWaits).toBeGreaterThan(0);
    expect(h.sandbox.messages(channelOf('support-2'), a.topicId)).toHaveLength(12);
  });
});
