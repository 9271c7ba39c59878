// The messenger port on Telegram: a forum topic per ticket, messages into it (never into General), mentions that
// notify the agent, pinned cards, closing. Every write is idempotent across crashes and retries: topics by the
// caller's random_id (recorded before the call, or reserved with the pipeline's commit that queues the step; looked
// up again if a retry finds it pending), messages by random_id.
import { AppError } from '../../core/errors.ts';
import { fnv64 } from '../../core/ids.ts';
import { FINISHED_WORK_TTL_MS } from '../shared/retention.ts';
import { createUntried } from '../shared/untried.ts';
import type { CreateTopicRequest, Mention, MessengerPort, PostRequest, Reservation, TopicRef } from '../../core/ports.ts';
import { Api, bigId, rpcName, toAppError } from './client.ts';
import { call, userName, type Ctx } from './context.ts';
import type { Linker } from './link.ts';
import type { ChannelPeer, UserPeer } from './peers.ts';
import { iconColorForTier, priorityForTier, topicLink, topicTitleFor } from './titles.ts';

export const NS_TOPICS = 'telegram:topics';
export const NS_CLAIMS = 'telegram:topic-claims';
export const MESSAGE_MAX_CHARS = 4096;

type TopicRecord = { account: string; groupId: string; channelId: string; title: string; at: number; cursor: number; topicId: number | null };

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Telegram's 4096-character message limit (UTF-16 units), cut on a grapheme. */
export function cutMessage(text: string, max = MESSAGE_MAX_CHARS): string {
  if (text.length <= max) return text;
  let out = '';
  for (const { segment } of segmenter.segment(text)) {
    if (out.length + segment.length > max - 1) break;
    out += segment;
  }
  return out + '…';
}

/** random_id is a signed int64: the pipeline gives decimal strings; anything else is hashed into one. */
export function randomIdOf(s: string): string {
  if (/^-?\d{1,19}$/.test(s)) {
    const n = BigInt(s);
    if (n >= -(2n ** 63n) && n < 2n ** 63n && n !== 0n) return n.toString();
  }
  return fnv64(`random:${s}`);
}

function sentMessages(res: Api.TypeUpdates): Api.TypeMessage[] {
  if (res instanceof Api.Updates || res instanceof Api.UpdatesCombined) return res.updates.flatMap((u) => (u instanceof Api.UpdateNewChannelMessage || u instanceof Api.UpdateNewMessage ? [u.message] : []));
  return [];
}

function messageIdFor(res: Api.TypeUpdates, randomId: string): number | null {
  if (res instanceof Api.UpdateShortSentMessage) return res.id;
  if (res instanceof Api.Updates || res instanceof Api.UpdatesCombined) {
    const u = res.updates.find((x) => x instanceof Api.UpdateMessageID && x.randomId?.toString() === randomId);
    if (u instanceof Api.UpdateMessageID) return u.id;
    const m = sentMessages(res)[0];
    if (m) return m.id;
  }
  return null;
}

function usersIn(res: { users?: Api.TypeUser[] }): { userId: string; accessHash: string | null; username: string | null; name: string }[] {
  return (res.users ?? []).flatMap((u) => (u instanceof Api.User && !u.min ? [{ userId: u.id.toString(), accessHash: u.accessHash?.toString() ?? null, username: u.username ?? null, name: userName(u) }] : []));
}

export function createMessenger(getCtx: () => Ctx, linker: () => Linker): MessengerPort {
  const inflight = new Map<string, Promise<unknown>>();
  // Random ids whose topic record this process reserved (reserveTopic) and has not sent yet: on the step's first run
  // there is no attempt to find (on a later one another instance may have made the topic).
  const untried = createUntried();
  const members = new Map<string, Set<string>>(); // channel id -> user ids known to be in the group
  let contactsLoaded = false;

  const once = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const running = inflight.get(key);
    if (running) return running as Promise<T>;
    const p = fn().finally(() => inflight.delete(key));
    inflight.set(key, p);
    return p;
  };
  const inputChannel = (ch: ChannelPeer) => new Api.InputChannel({ channelId: bigId(ch.channelId), accessHash: bigId(ch.accessHash) });
  const inputPeer = (ch: ChannelPeer) => new Api.InputPeerChannel({ channelId: bigId(ch.channelId), accessHash: bigId(ch.accessHash) });
  const inputUser = (u: UserPeer) => new Api.InputUser({ userId: bigId(u.userId), accessHash: bigId(u.accessHash) });
  const memberSet = (channelId: string) => {
    let s = members.get(channelId);
    if (!s) members.set(channelId, (s = new Set()));
    return s;
  };

  async function absorb(ctx: Ctx, ch: ChannelPeer, res: Api.TypeUpdates): Promise<void> {
    if (res instanceof Api.Updates || res instanceof Api.UpdatesCombined) await ctx.peers.putUsers(usersIn(res));
    for (const m of sentMessages(res)) ctx.peers.seen(ch.channelId, m.id);
  }

  // ------------------------------------------------------------------ topics

  /** Finds a topic an earlier attempt created with this record (the crash came before we stored its id). */
  async function findCreatedTopic(ctx: Ctx, ch: ChannelPeer, rec: TopicRecord, randomId: string): Promise<number | null> {
    const claimedByOther = async (topicId: number) => {
      const c = await ctx.store.kvGet<string>(NS_CLAIMS, `${ch.channelId}/${topicId}`);
      return c !== null && c !== randomId;
    };
    const since = Math.floor((rec.at - 5 * 60_000) / 1000);
    if (ctx.kind === 'user') {
      const res = await call<Api.messages.TypeForumTopics>(ctx, { lane: ch.groupId, priority: 60, send: false, label: 'channels.GetForumTopics' }, new Api.channels.GetForumTopics({ channel: inputChannel(ch), q: rec.title.slice(0, 64), offsetDate: 0, offsetId: 0, offsetTopic: 0, limit: 100 }));
      const candidates = res.topics.filter((t): t is Api.ForumTopic => t instanceof Api.ForumTopic && !!t.my && t.title === rec.title && t.date >= since).sort((a, b) => a.id - b.id);
      for (const t of candidates) if (!(await claimedByOther(t.id))) return t.id;
      return null;
    }
    // Bots cannot list topics: read the messages after the point we had reached when the attempt started.
    const found = await probe(ctx, ch, rec.cursor + 1, rec.cursor + 500, (m) => m instanceof Api.MessageService && m.action instanceof Api.MessageActionTopicCreate && m.action.title === rec.title && m.out === true);
    for (const id of found) if (!(await claimedByOther(id))) return id;
    return null;
  }

  async function probe(ctx: Ctx, ch: ChannelPeer, from: number, to: number, match: (m: Api.TypeMessage) => boolean): Promise<number[]> {
    const hits: number[] = [];
    for (let start = Math.max(1, from); start <= to; start += 100) {
      const ids = Array.from({ length: Math.min(100, to - start + 1) }, (_, i) => new Api.InputMessageID({ id: start + i }));
      const res = await call<Api.messages.TypeMessages>(ctx, { lane: ch.groupId, priority: 60, send: false, label: 'channels.GetMessages' }, new Api.channels.GetMessages({ channel: inputChannel(ch), id: ids }));
      if (!('messages' in res)) break;
      const real = res.messages.filter((m) => !(m instanceof Api.MessageEmpty));
      for (const m of real) if (match(m)) hits.push(m.id);
      if (!real.length) break;
    }
    return hits;
  }

  const newRecord = (ctx: Ctx, ch: ChannelPeer, req: CreateTopicRequest): TopicRecord => ({
    account: ctx.selfId,
    groupId: req.groupId,
    channelId: ch.channelId,
    title: topicTitleFor(req.title),
    at: ctx.timers.now(),
    cursor: ctx.peers.cursor(ch.channelId),
    topicId: null,
  });

  async function reserveTopic(req: CreateTopicRequest): Promise<Reservation[]> {
    let ctx: Ctx;
    try {
      ctx = getCtx();
    } catch {
      return []; // not connected: the topic step waits for the connection and writes its record then
    }
    // Only a group already linked: linking may call Telegram, and the caller is committing a decision.
    const ch = ctx.peers.channel(req.groupId);
    const randomId = randomIdOf(req.randomId);
    if (!ch || (await ctx.store.kvGet<TopicRecord>(NS_TOPICS, randomId))) return [];
    untried.add(randomId);
    return [{ ns: NS_TOPICS, key: randomId, value: newRecord(ctx, ch, req) }];
  }

  async function createTopic(req: CreateTopicRequest): Promise<TopicRef> {
    const ctx = getCtx();
    const randomId = randomIdOf(req.randomId);
    return once(`topic:${randomId}`, async () => {
      const ch = await linker().channelFor(req.groupId);
      const prior = await ctx.store.kvGet<TopicRecord>(NS_TOPICS, randomId);
      // Only a record reserved here and never sent, on the step's first run anywhere, is known to have no topic behind
      // it; from here on it is tried.
      const tried = !untried.take(randomId, req.firstRun);
      const ref = (topicId: number): TopicRef => ({ groupId: req.groupId, topicId, link: topicLink(ch.channelId, topicId) });
      // Not waited onto disk: if a crash takes them, the record from before the call (which is) makes the retry look
      // for the topic and find it. The caller's next durable write (the pipeline storing the topic) saves them too.
      const done = async (rec: TopicRecord, topicId: number) => {
        const lazy = { ttlMs: FINISHED_WORK_TTL_MS, awaitFlush: false };
        await Promise.all([ctx.store.kvPut(NS_CLAIMS, `${ch.channelId}/${topicId}`, randomId, lazy), ctx.store.kvPut(NS_TOPICS, randomId, { ...rec, topicId }, lazy)]);
        return ref(topicId);
      };
      if (prior?.topicId && prior.channelId === ch.channelId) return ref(prior.topicId);
      if (prior && prior.channelId === ch.channelId && tried) {
        const found = await findCreatedTopic(ctx, ch, prior, randomId);
        if (found) {
          ctx.logger.info('telegram topic found after an interrupted attempt; not creating a second one', { group: req.groupId, topicId: found, ticket: req.ticketKey });
          return done(prior, found);
        }
      }
      const rec: TopicRecord = prior && prior.channelId === ch.channelId ? prior : newRecord(ctx, ch, req);
      // Recorded before the call: if we crash after Telegram made the topic, the retry looks for it first.
      if (!prior || prior.channelId !== ch.channelId) await ctx.store.kvPut(NS_TOPICS, randomId, rec);
      const priority = req.priority ?? priorityForTier(req.tier);
      let res: Api.TypeUpdates;
      try {
        res = await call<Api.TypeUpdates>(
          ctx,
          { lane: req.groupId, priority, send: true, label: 'channels.CreateForumTopic' },
          new Api.channels.CreateForumTopic({ channel: inputChannel(ch), title: rec.title, iconColor: iconColorForTier(req.tier), randomId: bigId(randomId) }),
        );
      } catch (err) {
        if (rpcName(err) === 'RANDOM_ID_DUPLICATE') {
          const found = await findCreatedTopic(ctx, ch, rec, randomId);
          if (found) return done(rec, found);
          throw new AppError('upstream', `Telegram says the topic for ${req.ticketKey} was already created but it cannot be found in "${ch.title}" yet; retrying.`, { cause: err });
        }
        throw toAppError(err, 'creating a topic', { id: req.groupId, title: ch.title });
      }
      await absorb(ctx, ch, res);
      const created = sentMessages(res).find((m) => m instanceof Api.MessageService && m.action instanceof Api.MessageActionTopicCreate);
      const topicId = created?.id ?? messageIdFor(res, randomId);
      if (!topicId) throw new AppError('upstream', 'Telegram created the topic but did not return its id; the retry finds it by its random id.');
      return done(rec, topicId);
    });
  }

  // ------------------------------------------------------------------ mentions and members

  async function searchMembers(ctx: Ctx, ch: ChannelPeer, q: string, priority: number): Promise<void> {
    const res = await call<Api.channels.TypeChannelParticipants>(ctx, { lane: ch.groupId, priority, send: false, label: 'channels.GetParticipants' }, new Api.channels.GetParticipants({ channel: inputChannel(ch), filter: new Api.ChannelParticipantsSearch({ q }), offset: 0, limit: 200, hash: bigId(0) }));
    if (!(res instanceof Api.channels.ChannelParticipants)) return;
    await ctx.peers.putUsers(usersIn(res));
    const set = memberSet(ch.channelId);
    for (const p of res.participants) if ('userId' in p) set.add(p.userId.toString());
  }

  /** The agent as an InputUser we may mention; in user mode also makes sure they are in the group (invites them). */
  async function resolveAgent(ctx: Ctx, ch: ChannelPeer, m: Mention, priority: number): Promise<UserPeer | null> {
    const id = m.telegramUserId!;
    const set = memberSet(ch.channelId);
    if (!set.has(id)) {
      try {
        await searchMembers(ctx, ch, m.name, priority);
      } catch (err) {
        ctx.logger.warn('telegram: could not list group members', { group: ch.groupId, error: toAppError(err, 'listing members').message });
      }
    }
    let u = ctx.peers.user(id);
    if (set.has(id)) return u;
    if (!u && m.telegramUsername) {
      try {
        const res = await call<Api.contacts.ResolvedPeer>(ctx, { lane: 'account', priority, send: false, label: 'contacts.ResolveUsername' }, new Api.contacts.ResolveUsername({ username: m.telegramUsername }));
        await ctx.peers.putUsers(usersIn(res));
      } catch (err) {
        ctx.logger.warn('telegram: username did not resolve', { username: m.telegramUsername, error: toAppError(err, 'resolving a username').message });
      }
      u = ctx.peers.user(id);
    }
    if (!u && ctx.kind === 'user' && !contactsLoaded) {
      contactsLoaded = true;
      const res = await call<Api.contacts.TypeContacts>(ctx, { lane: 'account', priority, send: false, label: 'contacts.GetContacts' }, new Api.contacts.GetContacts({ hash: bigId(0) }));
      if (res instanceof Api.contacts.Contacts) await ctx.peers.putUsers(usersIn(res));
      u = ctx.peers.user(id);
    }
    if (!u) return null;
    // The name search may simply have missed them (a renamed account): ask for this member directly.
    try {
      await call(ctx, { lane: ch.groupId, priority, send: false, label: 'channels.GetParticipant' }, new Api.channels.GetParticipant({ channel: inputChannel(ch), participant: new Api.InputPeerUser({ userId: bigId(u.userId), accessHash: bigId(u.accessHash) }) }));
      set.add(id);
      return u;
    } catch (err) {
      if (rpcName(err) !== 'USER_NOT_PARTICIPANT') throw toAppError(err, 'checking an agent is in the group', { id: ch.groupId, title: ch.title });
    }
    if (ctx.kind === 'bot') {
      ctx.note(new AppError('misconfigured', `${m.name} is not a member of "${ch.title}" and a bot cannot invite them: add them to the group.`));
      ctx.logger.warn('telegram: the assigned agent is not in the group and a bot cannot invite them', { group: ch.groupId, agent: m.name });
      return u;
    }
    try {
      const res = await call<Api.messages.InvitedUsers>(ctx, { lane: ch.groupId, priority, send: true, label: 'channels.InviteToChannel' }, new Api.channels.InviteToChannel({ channel: inputChannel(ch), users: [inputUser(u)] }));
      if (res.missingInvitees?.length) throw new AppError('misconfigured', `Telegram did not add ${m.name} to "${ch.title}" (their privacy settings): ask them to join the group.`);
      set.add(id);
      ctx.logger.info('telegram: invited the assigned agent into the group', { group: ch.groupId, agent: m.name });
    } catch (err) {
      if (rpcName(err) === 'USER_ALREADY_PARTICIPANT') set.add(id);
      else {
        const e = toAppError(err, `inviting ${m.name}`, { id: ch.groupId, title: ch.title });
        ctx.note(e);
        ctx.logger.warn('telegram: could not invite the assigned agent; the card is posted anyway', { group: ch.groupId, agent: m.name, error: e.message });
      }
    }
    return u;
  }

  async function withMention(ctx: Ctx, ch: ChannelPeer, text: string, m: Mention, priority: number): Promise<{ text: string; entities: Api.TypeMessageEntity[] }> {
    const u = m.telegramUserId ? await resolveAgent(ctx, ch, m, priority) : null;
    if (!u) {
      // Without an access hash, "@username" still notifies (Telegram resolves it); a bare name would not.
      if (m.telegramUsername && !text.includes(`@${m.telegramUsername}`)) return { text: `${text}\n\n👤 @${m.telegramUsername}`, entities: [] };
      if (m.telegramUserId) ctx.logger.warn('telegram: cannot mention the agent (no access hash known; set their username in the agent settings)', { agent: m.name });
      return { text, entities: [] };
    }
    let at = text.indexOf(m.name);
    let out = text;
    if (at < 0) {
      out = `${text}\n\n👤 ${m.name}`;
      at = out.length - m.name.length;
    }
    return { text: out, entities: [new Api.InputMessageEntityMentionName({ offset: at, length: m.name.length, userId: inputUser(u) })] };
  }

  // ------------------------------------------------------------------ posting

  async function findSent(ctx: Ctx, ch: ChannelPeer, topicId: number, text: string): Promise<number | null> {
    if (ctx.kind === 'user') {
      const res = await call<Api.messages.TypeMessages>(ctx, { lane: ch.groupId, priority: 60, send: false, label: 'messages.GetReplies' }, new Api.messages.GetReplies({ peer: inputPeer(ch), msgId: topicId, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 50, maxId: 0, minId: 0, hash: bigId(0) }));
      if (!('messages' in res)) return null;
      const mine = res.messages.find((m) => m instanceof Api.Message && m.out && m.message === text);
      return mine?.id ?? null;
    }
    const c = ctx.peers.cursor(ch.channelId);
    const hits = await probe(ctx, ch, c - 100, c + 300, (m) => m instanceof Api.Message && !!m.out && m.message === text);
    return hits.at(-1) ?? null;
  }

  async function post(req: PostRequest): Promise<{ messageId: number }> {
    const ctx = getCtx();
    const randomId = randomIdOf(req.randomId);
    const { topic } = req;
    return once(`post:${topic.groupId}:${randomId}`, async () => {
      const ch = await linker().channelFor(topic.groupId);
      const priority = req.priority ?? 0;
      // Room is left for the mention line so the entity never points past a cut.
      const base = cutMessage(req.text, req.mention ? MESSAGE_MAX_CHARS - 120 : MESSAGE_MAX_CHARS);
      const { text, entities } = req.mention ? await withMention(ctx, ch, base, req.mention, priority) : { text: base, entities: [] };
      let messageId: number | null;
      try {
        const res = await call<Api.TypeUpdates>(
          ctx,
          { lane: topic.groupId, priority, send: true, label: 'messages.SendMessage' },
          // reply_to = the topic id puts the message in the topic; GramJS's sendMessage would drop a topMsgId.
          new Api.messages.SendMessage({ peer: inputPeer(ch), message: text, randomId: bigId(randomId), replyTo: new Api.InputReplyToMessage({ replyToMsgId: topic.topicId }), noWebpage: true, ...(entities.length ? { entities } : {}) }),
        );
        await absorb(ctx, ch, res);
        messageId = messageIdFor(res, randomId);
      } catch (err) {
        if (rpcName(err) !== 'RANDOM_ID_DUPLICATE') throw toAppError(err, 'posting into a topic', { id: topic.groupId, title: ch.title });
        // Sent by an attempt whose answer we lost: find it (to pin it) rather than send it twice.
        messageId = await findSent(ctx, ch, topic.topicId, text);
        if (messageId === null) {
          ctx.logger.warn('telegram: message was already sent (same random_id) but could not be found to pin', { group: topic.groupId, topicId: topic.topicId });
          return { messageId: 0 };
        }
      }
      if (messageId === null) throw new AppError('upstream', 'Telegram accepted the message but did not return its id.');
      if (req.pin) {
        try {
          await call(ctx, { lane: topic.groupId, priority, send: true, label: 'messages.UpdatePinnedMessage' }, new Api.messages.UpdatePinnedMessage({ peer: inputPeer(ch), id: messageId, silent: true }));
        } catch (err) {
          const name = rpcName(err);
          if (name !== 'PINNED_NOT_MODIFIED') {
            const e = toAppError(err, 'pinning the ticket card', { id: topic.groupId, title: ch.title });
            if (e.code !== 'misconfigured') throw e;
            // A missing pin right should not hold up the ticket; the console shows the fix.
            ctx.note(e);
            ctx.logger.warn('telegram: card not pinned', { group: topic.groupId, error: e.message });
          }
        }
      }
      return { messageId };
    });
  }

  async function closeTopic(topic: TopicRef): Promise<void> {
    const ctx = getCtx();
    return once(`close:${topic.groupId}:${topic.topicId}`, async () => {
      const ch = await linker().channelFor(topic.groupId);
      try {
        // `closed` alone: Telegram refuses it combined with other edits (TOPIC_CLOSE_SEPARATELY).
        const res = await call<Api.TypeUpdates>(ctx, { lane: topic.groupId, priority: 5, send: true, label: 'channels.EditForumTopic' }, new Api.channels.EditForumTopic({ channel: inputChannel(ch), topicId: topic.topicId, closed: true }));
        await absorb(ctx, ch, res);
      } catch (err) {
        if (rpcName(err) === 'TOPIC_NOT_MODIFIED') return; // already closed
        throw toAppError(err, 'closing a topic', { id: topic.groupId, title: ch.title });
      }
    });
  }

  return { createTopic, reserveTopic, post, closeTopic };
}
