// The sandbox's private chats with the bot, seen through GramJS as a bot client sees them: users' language only for
// bots, a bot cannot write first, random_id duplicates refused, inline keyboards and callback answers, copies with
// media and without the author, and updates.getDifference replaying what a disconnected bot missed.
import { afterEach, expect, it } from 'vitest';
import { Api, TelegramClient } from 'telegram';
import { Raw } from 'telegram/events/index.js';
import { Logger, LogLevel } from 'telegram/extensions/Logger.js';
import { returnBigInt } from 'telegram/Helpers.js';
import { StringSession } from 'telegram/sessions/index.js';
import { fnv64 } from '../../../../core/ids.ts';
import { createManualClock, settle } from '../../../../connectors/telegram/clock.ts';
import { createTelegramSandbox, SANDBOX_BOT, type TelegramSandbox } from '../../../../connectors/telegram/sandbox/index.ts';

const clients: TelegramClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.destroy();
});

async function botClient(sb: TelegramSandbox): Promise<{ c: TelegramClient; updates: unknown[] }> {
  const c = new TelegramClient(new StringSession(''), 1, 'sandbox', { baseLogger: new Logger(LogLevel.NONE), floodSleepThreshold: 0 });
  clients.push(c);
  sb.attach(c, 'bot');
  await c.signInBot({ apiId: 1, apiHash: 'sandbox' }, { botAuthToken: sb.botToken });
  const updates: unknown[] = [];
  c.addEventHandler((u: unknown) => void updates.push(u), new Raw({}));
  return { c, updates };
}

const rpc = (p: Promise<unknown>) => p.then(() => 'ok', (e: { errorMessage?: string }) => e.errorMessage ?? String(e));

it('behaves like Telegram for a bot in private chats', async () => {
  const sb = createTelegramSandbox({ clock: createManualClock() });
  const { c, updates } = await botClient(sb);
  const chats = sb.chats!;
  const NORA = '8000000004';

  // The first message arrives with the user (and their app language, which only bots see).
  chats.send(NORA, SANDBOX_BOT.id, { text: 'hallo' });
  await settle();
  const first = updates.find((u) => u instanceof Api.UpdateNewMessage) as Api.UpdateNewMessage & { _entities?: Map<string, unknown> };
  expect((first.message as Api.Message).message).toBe('hallo');
  const nora = [...first._entities!.values()].find((e) => e instanceof Api.User && e.id.toString() === NORA) as Api.User;
  expect(nora.langCode).toBe('de-AT');
  const peer = new Api.InputPeerUser({ userId: nora.id, accessHash: nora.accessHash! });

  // A bot cannot start a chat with someone who never wrote to it.
  const stranger = '8000000001';
  expect(await rpc(c.invoke(new Api.messages.SendMessage({ peer: new Api.InputPeerUser({ userId: returnBigInt(stranger), accessHash: returnBigInt(fnv64(`access:${SANDBOX_BOT.id}:${stranger}`)) }), message: 'hi', randomId: returnBigInt(5) })))).not.toBe('ok');

  // An inline keyboard; the same random_id again is a duplicate, not a second message.
  const send = () => c.invoke(new Api.messages.SendMessage({ peer, message: 'Welches Produkt?', randomId: returnBigInt(77), replyMarkup: new Api.ReplyInlineMarkup({ rows: [new Api.KeyboardButtonRow({ buttons: [new Api.KeyboardButtonCallback({ text: 'API', data: Buffer.from('product:1') })] })] }) }));
  await send();
  expect(await rpc(send())).toBe('RANDOM_ID_DUPLICATE');
  const view = chats.chat(NORA, SANDBOX_BOT.id);
  expect(view.filter((m) => m.fromBot)).toEqual([expect.objectContaining({ text: 'Welches Produkt?', buttons: [[{ label: 'API', data: 'product:1' }]] })]);

  // Pressing the button is a callback query to the bot, answered with messages.setBotCallbackAnswer.
  const q = chats.press(NORA, view.at(-1)!.id, 'product:1');
  await settle();
  const cb = updates.find((u) => u instanceof Api.UpdateBotCallbackQuery) as Api.UpdateBotCallbackQuery;
  expect(Buffer.from(cb.data!).toString()).toBe('product:1');
  await c.invoke(new Api.messages.SetBotCallbackAnswer({ queryId: cb.queryId, cacheTime: 0 }));
  expect(chats.callbackAnswered(q)).toBe(true);

  // A photo is copied into a topic without the author, keeping the media.
  chats.send(NORA, SANDBOX_BOT.id, { text: 'Fehlerbild', media: { kind: 'photo' } });
  await settle();
  const photo = (updates.filter((u) => u instanceof Api.UpdateNewMessage).at(-1) as Api.UpdateNewMessage).message as Api.Message;
  expect(photo.media).toBeInstanceOf(Api.MessageMediaPhoto);
  const group = sb.groups()[1]!;
  sb.setMember(group.channelId, SANDBOX_BOT.id, 'admin', { manageTopics: true });
  const topic = (await c.invoke(new Api.channels.CreateForumTopic({ channel: new Api.InputChannel({ channelId: returnBigInt(group.channelId), accessHash: returnBigInt(0) }), title: 'Nora', randomId: returnBigInt(9) }))) as Api.Updates;
  const topicId = (topic.updates.find((u) => u instanceof Api.UpdateMessageID) as Api.UpdateMessageID).id;
  await c.invoke(new Api.messages.ForwardMessages({ fromPeer: peer, id: [photo.id], randomId: [returnBigInt(11)], toPeer: new Api.InputPeerChannel({ channelId: returnBigInt(group.channelId), accessHash: returnBigInt(0) }), topMsgId: topicId, dropAuthor: true }));
  const copied = sb.allMessages(group.channelId).filter((m) => m.topicId === topicId && m.kind === 'text');
  expect(copied).toEqual([expect.objectContaining({ text: 'Fehlerbild', fromUserId: SANDBOX_BOT.id })]);
  expect(chats.channelMessage(group.channelId, copied[0]!.id)!.media?.kind).toBe('photo');

  // What a disconnected bot missed comes back with updates.getDifference from its last pts.
  const state = (await c.invoke(new Api.updates.GetState())) as Api.updates.State;
  sb.cutConnections();
  chats.send(NORA, SANDBOX_BOT.id, { text: 'noch da?' });
  sb.restoreConnections();
  await settle();
  const diff = (await c.invoke(new Api.updates.GetDifference({ pts: state.pts, date: state.date, qts: 0 }))) as Api.updates.Difference;
  expect(diff.newMessages.map((m) => (m as Api.Message).message)).toEqual(['noch da?']);
  expect(sb.stats().serialisationErrors).toEqual([]);
});
