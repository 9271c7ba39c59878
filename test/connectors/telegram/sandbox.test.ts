// The sandbox behind GramJS: it only sees what GramJS serialised, it holds requests to Telegram's rules, and it offers
// the console's sandbox forum (act as an agent).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TelegramClient, Api } from 'telegram';
import { StringSession } from 'telegram/sessions/index.js';
import { Logger, LogLevel } from 'telegram/extensions/Logger.js';
import { returnBigInt } from 'telegram/Helpers.js';
import { createManualClock } from '../../../connectors/telegram/clock.ts';
import { createTelegramSandbox, SANDBOX_AGENTS, SANDBOX_GROUPS, type TelegramSandbox } from '../../../connectors/telegram/sandbox/index.ts';
import { setup, type Harness } from './harness.ts';

let client: TelegramClient | null = null;
let h: Harness | null = null;
afterEach(async () => {
  await client?.destroy();
  client = null;
  await h?.stop();
  h = null;
});

function rawClient(sb: TelegramSandbox): TelegramClient {
  client = new TelegramClient(new StringSession(''), 1, 'sandbox', { baseLogger: new Logger(LogLevel.NONE), floodSleepThreshold: 0 });
  sb.attach(client, 'user');
  return client;
}

describe('sandbox behind GramJS', () => {
  it('never receives a request GramJS cannot serialise', async () => {
    const sb = createTelegramSandbox({ clock: createManualClock() });
    const c = rawClient(sb);
    const bad = new Api.messages.SendMessage({ peer: new Api.InputPeerChannel({ channelId: returnBigInt(SANDBOX_GROUPS[0].channelId), accessHash: returnBigInt(1) }), randomId: returnBigInt(1) } as never);
    // GramJS reports the cast error on the console before throwing; keep the test output clean.
    const quiet = [vi.spyOn(console, 'error').mockImplementation(() => {}), vi.spyOn(console, 'log').mockImplementation(() => {}), vi.spyOn(console, 'warn').mockImplementation(() => {})];
    await expect(c.invoke(bad)).rejects.toThrow();
    quiet.forEach((q) => q.mockRestore());
    expect(sb.stats().requests['messages.SendMessage']).toBeUndefined();
  });

  it('holds clients to per-account access hashes, as Telegram does', async () => {
    const sb = createTelegramSandbox({ clock: createManualClock() });
    const c = rawClient(sb);
    const wrong = new Api.channels.GetChannels({ id: [new Api.InputChannel({ channelId: returnBigInt(SANDBOX_GROUPS[0].channelId), accessHash: returnBigInt(12345) })] });
    await expect(c.invoke(wrong)).rejects.toMatchObject({ errorMessage: 'CHANNEL_INVALID' });
  });

  it('answers through GramJS with real TL objects and dispatches updates through its handlers', async () => {
    const sb = createTelegramSandbox({ clock: createManualClock() });
    const c = rawClient(sb);
    const me = (await c.getMe()) as Api.User;
    expect(me).toBeInstanceOf(Api.User);
    expect(me.id.toString()).toBe(sb.serviceUserId);
    const seen: unknown[] = [];
    c.addEventHandler((u) => void seen.push(u));
    await sb.setOnline(SANDBOX_AGENTS[0].id, false);
    await new Promise((r) => setImmediate(r));
    expect(seen.some((u) => u instanceof Api.UpdateUserStatus)).toBe(true);
  });

  it('refuses user-only methods to bots', async () => {
    h = await setup({ as: 'bot' });
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'k', groupId: 'vip', title: 't', tier: null, randomId: '1' });
    expect(ref.topicId).toBeGreaterThan(1);
    expect(h.sandbox.stats().requests['messages.GetDialogs'] ?? 0).toBe(0);
  });
});

describe('sandbox forum (console)', () => {
  it('lists the seeded groups, agents, topics and messages, and acts as an agent', async () => {
    h = await setup();
    const forum = h.sandbox;
    expect(forum.groups()).toEqual(SANDBOX_GROUPS.map((g) => ({ id: g.id, channelId: g.channelId, title: g.title, forum: true })));
    expect(forum.agents()).toHaveLength(9);
    expect(forum.agents()[0]).toEqual({ telegramUserId: '7000000001', name: 'Alice Meyer', online: true });
    const ref = await h.connector.messenger.createTopic({ ticketKey: 'k', groupId: 'support-1', title: '[STD] Beta · Export empty', tier: 'standard', randomId: '1' });
    await h.connector.messenger.post({ topic: ref, text: 'Queue: General · Assigned to Emma Dubois', randomId: '2', pin: true });
    await forum.reply('1900000002', ref.topicId, '7000000005', 'On it');
    await forum.setOnline('7000000005', false);
    await forum.closeTopic('1900000002', ref.topicId, '7000000005');
    expect(forum.topics('1900000002')).toEqual([{ topicId: ref.topicId, title: '[STD] Beta · Export empty', iconColor: 0x6fb9f0, closed: true, createdAt: h.clock.now(), messageCount: 2 }]);
    expect(forum.messages('1900000002', ref.topicId).map((m) => [m.fromName, m.text, m.pinned])).toEqual([
      ['Tierline Desk', 'Queue: General · Assigned to Emma Dubois', true],
      ['Emma Dubois', 'On it', false],
    ]);
    expect(forum.agents().find((a) => a.telegramUserId === '7000000005')!.online).toBe(false);
    await h.connector.idle();
    expect(h.events.map((e) => e.kind)).toEqual(['message', 'presence', 'topic_closed']);
  });
});
