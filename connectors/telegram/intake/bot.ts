// The intake bot's own GramJS client: logged in with the bot token (a second client next to the connector's user
// account), or attached to the sandbox as SANDBOX_BOT. Only the calls the intake needs, each through the bot's pacer:
// private chats are their own lanes (`chat:<user>`), forum groups theirs (`group:<channel>`), so a chatty customer
// never holds up a topic and the bot stays inside Telegram's per-chat and per-group limits.
import { Api, TelegramClient } from 'telegram';
import { Logger as GramLogger, LogLevel } from 'telegram/extensions/Logger.js';
import { returnBigInt } from 'telegram/Helpers.js';
import { PeerCacheSession } from '../session.ts';
import { AppError } from '../../../core/errors.ts';
import type { Logger, Store } from '../../../core/ports.ts';
import type { SecretBox } from '../../shared/secrets.ts';
import { rpcName, toAppError } from '../client.ts';
import type { Pacer } from '../pacer.ts';
import type { TelegramSandbox } from '../sandbox/index.ts';

export const NS_BOT_SESSION = 'telegram-intake:session';
export const NS_PEERS = 'telegram-intake:peers';

export type Button = { label: string; data: string };
export type Markup = { inline: Button[][] } | { contact: { share: string; cancel: string } } | { hide: true } | null;

export type BotEnv = { apiId?: number | undefined; apiHash?: string | undefined; botToken?: string | undefined };

const big = (v: string | number) => returnBigInt(v);

type Peer = { id: string; accessHash: string };

export async function connectBot(o: { mode: 'real' | 'sandbox'; env: BotEnv; store: Store; secrets: SecretBox; sandbox?: TelegramSandbox | undefined }): Promise<{ client: TelegramClient; self: Api.User }> {
  const params = { baseLogger: new GramLogger(LogLevel.NONE), floodSleepThreshold: 0, connectionRetries: 5, autoReconnect: true, requestRetries: 3 };
  if (o.mode === 'sandbox') {
    if (!o.sandbox) throw new AppError('misconfigured', 'The intake bot runs in sandbox mode but no Telegram sandbox was given.');
    const client = new TelegramClient(new PeerCacheSession(''), 1, 'sandbox', params);
    o.sandbox.attach(client, 'bot');
    await client.signInBot({ apiId: 1, apiHash: 'sandbox' }, { botAuthToken: o.env.botToken ?? o.sandbox.botToken });
    return { client, self: (await client.getMe()) as Api.User };
  }
  const { apiId, apiHash, botToken } = o.env;
  if (!apiId || !apiHash) throw new AppError('misconfigured', 'TELEGRAM_API_ID and TELEGRAM_API_HASH are required for the intake bot; create them at https://my.telegram.org.');
  if (!botToken) throw new AppError('misconfigured', 'The intake bot needs TELEGRAM_BOT_TOKEN (create the bot with @BotFather).');
  let session = '';
  const sealed = await o.store.kvGet<string>(NS_BOT_SESSION, 'session');
  if (sealed) {
    try {
      session = o.secrets.open(sealed);
    } catch {
      session = '';
    }
  }
  const client = new TelegramClient(new PeerCacheSession(session), apiId, apiHash, params);
  try {
    await client.connect();
    if (!(await client.checkAuthorization())) {
      await client.signInBot({ apiId, apiHash }, { botAuthToken: botToken });
      await o.store.kvPut(NS_BOT_SESSION, 'session', o.secrets.seal(String(client.session.save())));
    }
  } catch (err) {
    throw toAppError(err, 'signing in the intake bot');
  }
  return { client, self: (await client.getMe()) as Api.User };
}

function markupTl(m: Markup): Api.TypeReplyMarkup | undefined {
  if (!m) return undefined;
  if ('hide' in m) return new Api.ReplyKeyboardHide({});
  if ('contact' in m) return new Api.ReplyKeyboardMarkup({ resize: true, singleUse: true, rows: [new Api.KeyboardButtonRow({ buttons: [new Api.KeyboardButtonRequestPhone({ text: m.contact.share })] }), new Api.KeyboardButtonRow({ buttons: [new Api.KeyboardButton({ text: m.contact.cancel })] })] });
  return new Api.ReplyInlineMarkup({ rows: m.inline.map((r) => new Api.KeyboardButtonRow({ buttons: r.map((b) => new Api.KeyboardButtonCallback({ text: b.label, data: Buffer.from(b.data) })) })) });
}

/** The id Telegram gave the message sent with this random_id (from UpdateMessageID), if the answer says. */
function sentId(u: unknown, randomId: string): number | null {
  const list = u instanceof Api.Updates || u instanceof Api.UpdatesCombined ? u.updates : [];
  for (const x of list) if (x instanceof Api.UpdateMessageID && x.randomId?.toString() === randomId) return x.id;
  if (u instanceof Api.UpdateShortSentMessage) return u.id;
  return null;
}

export type BotApi = ReturnType<typeof createBotApi>;

/**
 * The requests the intake makes, paced. A repeated random_id (the answer to an earlier attempt was lost, or we
 * crashed before recording it) comes back as `{ id: null, duplicate: true }`: the message is there already.
 */
export function createBotApi(o: { client: TelegramClient; pacers: { chats: Pacer; groups: Pacer }; store: Store; logger: Logger; selfId: string }) {
  const { client } = o;
  const users = new Map<string, string>();
  const channels = new Map<string, string>();

  const run = <T>(lane: string, priority: number, send: boolean, label: string, req: Api.AnyRequest): Promise<T> => (lane.startsWith('chat:') ? o.pacers.chats : o.pacers.groups).submit<T>({ lane, priority, send, label, run: () => client.invoke(req) as Promise<T> });

  async function userPeer(userId: string): Promise<Api.InputPeerUser> {
    let hash = users.get(userId) ?? null;
    if (!hash) {
      hash = (await o.store.kvGet<Peer>(NS_PEERS, `user:${userId}`))?.accessHash ?? null;
      if (hash) users.set(userId, hash);
    }
    if (!hash) throw new AppError('not_found', `The intake bot has not seen Telegram user ${userId} yet (no access hash); they have to write to the bot first.`);
    return new Api.InputPeerUser({ userId: big(userId), accessHash: big(hash) });
  }

  async function channelPeer(channelId: string): Promise<Api.InputPeerChannel> {
    let hash = channels.get(channelId) ?? null;
    if (!hash) {
      hash = (await o.store.kvGet<Peer>(NS_PEERS, `channel:${channelId}`))?.accessHash ?? null;
      if (!hash) {
        // A bot may address a group it is a member of before it has seen an update from it.
        const r = (await run<Api.messages.Chats>('account', 50, false, 'intake: resolve group', new Api.channels.GetChannels({ id: [new Api.InputChannel({ channelId: big(channelId), accessHash: big(0) })] }))) as Api.messages.Chats;
        const ch = r.chats.find((c) => c instanceof Api.Channel) as Api.Channel | undefined;
        if (!ch?.accessHash) throw new AppError('misconfigured', `The intake bot cannot reach Telegram group ${channelId}: add the bot to the group as an admin with "Manage topics".`);
        hash = ch.accessHash.toString();
        await o.store.kvPut(NS_PEERS, `channel:${channelId}`, { id: channelId, accessHash: hash });
      }
      channels.set(channelId, hash);
    }
    return new Api.InputPeerChannel({ channelId: big(channelId), accessHash: big(hash) });
  }

  async function guard<T>(what: string, fn: () => Promise<T>): Promise<T | { duplicate: true }> {
    try {
      return await fn();
    } catch (err) {
      if (rpcName(err) === 'RANDOM_ID_DUPLICATE') return { duplicate: true };
      throw toAppError(err, what);
    }
  }

  return {
    /** Learns access hashes (and languages) from the users and channels an update carries. */
    async learn(entities: Map<unknown, unknown> | undefined): Promise<Map<string, { langCode: string | null; name: string }>> {
      const seen = new Map<string, { langCode: string | null; name: string }>();
      for (const e of entities?.values() ?? []) {
        if (e instanceof Api.User && !e.min && e.accessHash) {
          const id = e.id.toString();
          const hash = e.accessHash.toString();
          seen.set(id, { langCode: e.langCode ?? null, name: [e.firstName, e.lastName].filter(Boolean).join(' ') || e.username || id });
          if (users.get(id) !== hash) {
            users.set(id, hash);
            await o.store.kvPut(NS_PEERS, `user:${id}`, { id, accessHash: hash });
          }
        }
        if (e instanceof Api.Channel && !e.min && e.accessHash) {
          const id = e.id.toString();
          const hash = e.accessHash.toString();
          if (channels.get(id) !== hash) {
            channels.set(id, hash);
            await o.store.kvPut(NS_PEERS, `channel:${id}`, { id, accessHash: hash });
          }
        }
      }
      return seen;
    },

    async sendText(userId: string, text: string, markup: Markup, randomId: string, priority: number): Promise<{ id: number | null; duplicate?: true }> {
      const peer = await userPeer(userId);
      const reply_markup = markupTl(markup);
      const r = await guard('writing to the customer', () => run<unknown>(`chat:${userId}`, priority, true, 'intake: reply', new Api.messages.SendMessage({ peer, message: text.slice(0, 4096), randomId: big(randomId), noWebpage: true, ...(reply_markup ? { replyMarkup: reply_markup } : {}) })));
      if (r && typeof r === 'object' && 'duplicate' in r) return { id: null, duplicate: true };
      return { id: sentId(r, randomId) };
    },

    /** Copies messages (text and media) without the "forwarded from" header: chat -> topic or topic -> chat. */
    async copy(from: { userId: string } | { channelId: string }, ids: number[], to: { userId: string } | { channelId: string; topicId: number }, randomIds: string[], priority: number): Promise<{ ids: (number | null)[]; duplicate?: true }> {
      const fromPeer = 'userId' in from ? await userPeer(from.userId) : await channelPeer(from.channelId);
      const toPeer = 'userId' in to ? await userPeer(to.userId) : await channelPeer(to.channelId);
      const lane = 'userId' in to ? `chat:${to.userId}` : `group:${to.channelId}`;
      const r = await guard('copying a message', () =>
        run<unknown>(lane, priority, true, 'intake: relay', new Api.messages.ForwardMessages({ fromPeer, id: ids, randomId: randomIds.map((x) => big(x)), toPeer, dropAuthor: true, ...('topicId' in to ? { topMsgId: to.topicId } : {}) })),
      );
      if (r && typeof r === 'object' && 'duplicate' in r) return { ids: ids.map(() => null), duplicate: true };
      return { ids: randomIds.map((x) => sentId(r, x)) };
    },

    async editText(where: { userId: string } | { channelId: string }, id: number, text: string, priority: number): Promise<void> {
      const peer = 'userId' in where ? await userPeer(where.userId) : await channelPeer(where.channelId);
      const lane = 'userId' in where ? `chat:${where.userId}` : `group:${where.channelId}`;
      try {
        await run(lane, priority, false, 'intake: edit', new Api.messages.EditMessage({ peer, id, message: text.slice(0, 4096) }));
      } catch (err) {
        if (rpcName(err) === 'MESSAGE_NOT_MODIFIED') return;
        throw toAppError(err, 'editing a relayed message');
      }
    },

    /** Deletes the bot's own messages in a private chat, for both sides. */
    async deleteInChat(userId: string, ids: number[], priority: number): Promise<void> {
      try {
        await run(`chat:${userId}`, priority, false, 'intake: delete', new Api.messages.DeleteMessages({ id: ids, revoke: true }));
      } catch (err) {
        // Too old to delete (48 h for bots) or gone already: nothing to follow.
        if (rpcName(err) === 'MESSAGE_DELETE_FORBIDDEN') return;
        throw toAppError(err, 'deleting a relayed message');
      }
    },

    async answerCallback(queryId: string, text?: string): Promise<void> {
      try {
        await run('account', 60, false, 'intake: callback', new Api.messages.SetBotCallbackAnswer({ queryId: big(queryId), cacheTime: 0, ...(text ? { message: text } : {}) }));
      } catch (err) {
        // An expired query only leaves the spinner on the customer's button; the answer itself is sent as a message.
        o.logger.debug('intake callback answer failed', { error: rpcName(err) ?? String(err) });
      }
    },

    /** Reopens a closed topic (a customer wrote again after resolution); the bot needs "Manage topics". */
    async reopenTopic(channelId: string, topicId: number): Promise<void> {
      const channel = await channelPeer(channelId);
      try {
        await run(`group:${channelId}`, 40, true, 'intake: reopen topic', new Api.channels.EditForumTopic({ channel: new Api.InputChannel({ channelId: channel.channelId, accessHash: channel.accessHash }), topicId, closed: false }));
      } catch (err) {
        if (rpcName(err) === 'TOPIC_NOT_MODIFIED') return;
        throw toAppError(err, 'reopening the topic');
      }
    },

    async state(): Promise<{ pts: number; date: number }> {
      const s = (await run<Api.updates.State>('account', 60, false, 'intake: state', new Api.updates.GetState())) as Api.updates.State;
      return { pts: s.pts, date: s.date };
    },

    async difference(pts: number, date: number): Promise<{ messages: Api.TypeMessage[]; edits: Api.TypeUpdate[]; entities: Map<unknown, unknown>; state: { pts: number; date: number } | null }> {
      const d = await run<Api.updates.TypeDifference>('account', 60, false, 'intake: catch up', new Api.updates.GetDifference({ pts, date, qts: 0 }));
      if (d instanceof Api.updates.Difference || d instanceof Api.updates.DifferenceSlice) {
        const entities = new Map<unknown, unknown>([...d.users, ...d.chats].map((e) => [(e as { id: unknown }).id?.toString(), e]));
        const st = d instanceof Api.updates.Difference ? d.state : d.intermediateState;
        return { messages: d.newMessages, edits: d.otherUpdates, entities, state: { pts: st.pts, date: st.date } };
      }
      return { messages: [], edits: [], entities: new Map(), state: null };
    },

    /** Channel messages by id (bots cannot list a topic's replies; they read ids after the last one seen). */
    async channelMessages(channelId: string, ids: number[]): Promise<{ messages: Api.TypeMessage[]; entities: Map<unknown, unknown> }> {
      const channel = await channelPeer(channelId);
      const r = (await run<Api.messages.ChannelMessages>(`group:${channelId}`, 10, false, 'intake: read topic', new Api.channels.GetMessages({ channel: new Api.InputChannel({ channelId: channel.channelId, accessHash: channel.accessHash }), id: ids.map((id) => new Api.InputMessageID({ id })) })))!;
      const entities = new Map<unknown, unknown>([...(r.users ?? []), ...(r.chats ?? [])].map((e) => [(e as { id: unknown }).id?.toString(), e]));
      return { messages: r.messages ?? [], entities };
    },
  };
}
