// Telegram updates into messenger events: agent messages in forum topics, topics closed, agents' presence. GramJS has
// no update-gap recovery, so after every (re)connect the open topics are read back and their messages re-emitted;
// the pipeline dedupes on group and message id, so a message seen twice counts once.
import type { MessengerEvent } from '../../core/ports.ts';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { Api, bigId, toAppError } from './client.ts';
import { call, userName, type Ctx } from './context.ts';
import type { ChannelPeer } from './peers.ts';
import { settle } from './clock.ts';

/** Messages per page when reading a topic back after a gap (Telegram's maximum for messages.getReplies). */
const PAGE = 100;
const READ_PAGES = 100;

const GENERAL_TOPIC = 1;

/** The forum topic a message belongs to (1 = General), as Telegram marks it. */
export function topicOfMessage(m: Api.Message | Api.MessageService): number {
  const r = m.replyTo;
  if (r instanceof Api.MessageReplyHeader && r.forumTopic) return r.replyToTopId ?? r.replyToMsgId ?? GENERAL_TOPIC;
  return GENERAL_TOPIC;
}

export function createEvents(getCtx: () => Ctx) {
  let chain: Promise<void> = Promise.resolve();
  const presence = new Map<string, boolean>();
  let down = false;
  let reconciling: Promise<ReconcileResult> | null = null;
  let lastReconcile: (ReconcileResult & { at: number }) | null = null;

  type ReconcileResult = { topics: number; messages: number; reason: string };

  function emit(e: MessengerEvent): void {
    const ctx = getCtx();
    chain = chain.then(async () => {
      try {
        await ctx.onEvent(e);
      } catch (err) {
        ctx.note(err);
        ctx.logger.error('telegram event could not be handed to the pipeline; it is re-read on the next reconciliation', { kind: e.kind, error: err instanceof Error ? err.message : String(err) });
      }
    });
  }

  /** The event a channel message stands for, if any. */
  function eventOf(ctx: Ctx, m: Api.TypeMessage): Exclude<MessengerEvent, { kind: 'presence' }> | null {
    if (!(m instanceof Api.Message || m instanceof Api.MessageService)) return null;
    if (!(m.peerId instanceof Api.PeerChannel)) return null;
    const channelId = m.peerId.channelId.toString();
    const groupId = ctx.peers.groupOfChannel(channelId);
    ctx.peers.seen(channelId, m.id);
    if (!groupId) return null;
    const from = m.fromId instanceof Api.PeerUser ? m.fromId.userId.toString() : null;
    const topicId = topicOfMessage(m);
    if (topicId === GENERAL_TOPIC) return null;
    const at = m.date * 1000;
    if (m instanceof Api.MessageService) {
      if (m.action instanceof Api.MessageActionTopicEdit && m.action.closed === true) return { kind: 'topic_closed', groupId, topicId, at, ...(from ? { byTelegramUserId: from } : {}) };
      return null;
    }
    if (!from || from === ctx.selfId) return null;
    return { kind: 'message', groupId, topicId, messageId: m.id, fromTelegramUserId: from, text: m.message ?? '', at };
  }

  async function learn(ctx: Ctx, entities: Map<unknown, unknown> | undefined): Promise<void> {
    if (!entities?.size) return;
    const users: { userId: string; accessHash: string | null; username: string | null; name: string }[] = [];
    for (const e of entities.values()) {
      if (e instanceof Api.User && !e.min && e.accessHash) users.push({ userId: e.id.toString(), accessHash: e.accessHash.toString(), username: e.username ?? null, name: userName(e) });
      // A bot learns a group's access hash from its updates; link the configured group it belongs to.
      if (e instanceof Api.Channel && !e.min && e.accessHash && !ctx.peers.groupOfChannel(e.id.toString())) {
        const g = ctx.groups().find((x) => (x.telegramChannelId ?? ctx.sandbox?.groups().find((s) => s.id === x.id)?.channelId) === e.id.toString());
        const rights = e.creator ? { manageTopics: true, pinMessages: true, inviteUsers: true } : { manageTopics: !!e.adminRights?.manageTopics, pinMessages: !!e.adminRights?.pinMessages, inviteUsers: !!e.adminRights?.inviteUsers };
        if (g) await ctx.peers.putChannel({ groupId: g.id, channelId: e.id.toString(), accessHash: e.accessHash.toString(), title: e.title, forum: !!e.forum, rights, linkedAt: ctx.timers.now() });
      }
    }
    await ctx.peers.putUsers(users);
  }

  const handling = new Set<Promise<void>>();
  let updates: Promise<void> = Promise.resolve();

  /** The Raw update handler registered on the GramJS client; updates are handled one by one, in arrival order. */
  function onUpdate(update: unknown): Promise<void> {
    const p = (updates = updates.then(() => handleUpdate(update))).finally(() => handling.delete(p));
    handling.add(p);
    return p;
  }

  async function handleUpdate(update: unknown): Promise<void> {
    const ctx = getCtx();
    if (update instanceof UpdateConnectionState) {
      if (update.state === UpdateConnectionState.connected) {
        if (down) {
          down = false;
          ctx.logger.info('telegram reconnected; reconciling open topics');
          void reconcile('reconnect');
        }
      } else down = true;
      return;
    }
    const u = update as Api.TypeUpdate & { _entities?: Map<unknown, unknown> };
    try {
      await learn(ctx, u._entities);
    } catch (err) {
      ctx.logger.warn('telegram: could not store peers from an update', { error: err instanceof Error ? err.message : String(err) });
    }
    if (u instanceof Api.UpdateNewChannelMessage) {
      const e = eventOf(ctx, u.message);
      if (e) emit(e);
    } else if (u instanceof Api.UpdateUserStatus) {
      const id = u.userId.toString();
      if (id === ctx.selfId) return;
      const online = u.status instanceof Api.UserStatusOnline;
      if (presence.get(id) === online) return; // Telegram repeats "online" while it lasts
      presence.set(id, online);
      emit({ kind: 'presence', telegramUserId: id, online, at: ctx.timers.now() });
    } else if (u instanceof Api.UpdateChannelTooLong) {
      void reconcile('channel too long');
    }
  }

  /**
   * A topic's messages from the newest back to the last one seen in its group before the gap (the group's cursor),
   * 100 per page: a long disconnect can leave more than a page of replies. A group never seen before (cursor 0) gets
   * one page, not its whole history; pages stop at READ_PAGES (10,000 messages) per topic, with a warning.
   */
  async function readTopic(ctx: Ctx, ch: ChannelPeer, topicId: number): Promise<Api.TypeMessage[]> {
    const seenUpTo = ctx.peers.cursor(ch.channelId);
    const out: Api.TypeMessage[] = [];
    let offsetId = 0;
    for (let page = 0; ; page++) {
      const res = await call<Api.messages.TypeMessages>(
        ctx,
        { lane: ch.groupId, priority: 1, send: false, label: 'messages.GetReplies' },
        new Api.messages.GetReplies({ peer: new Api.InputPeerChannel({ channelId: bigId(ch.channelId), accessHash: bigId(ch.accessHash) }), msgId: topicId, offsetId, offsetDate: 0, addOffset: 0, limit: PAGE, maxId: 0, minId: 0, hash: bigId(0) }),
      );
      if (!('messages' in res)) break;
      if ('users' in res) await learn(ctx, new Map(res.users.map((x, i) => [i, x])));
      out.push(...res.messages);
      if (res.messages.length < PAGE || seenUpTo === 0) break;
      const oldest = Math.min(...res.messages.map((m) => m.id));
      if (oldest <= seenUpTo) break;
      if (page + 1 >= READ_PAGES) {
        ctx.logger.warn('telegram reconciliation read the newest messages of a topic only; older ones from the gap are not replayed', { group: ch.groupId, topic: topicId, messages: out.length });
        break;
      }
      offsetId = oldest;
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Bots cannot read a topic's history: read the group's messages after the last one seen instead. */
  async function readSince(ctx: Ctx, ch: ChannelPeer): Promise<Api.TypeMessage[]> {
    const out: Api.TypeMessage[] = [];
    let from = ctx.peers.cursor(ch.channelId) + 1;
    if (from <= 1) return out;
    for (let page = 0; page < 20; page++) {
      const ids = Array.from({ length: 100 }, (_, i) => new Api.InputMessageID({ id: from + i }));
      const res = await call<Api.messages.TypeMessages>(ctx, { lane: ch.groupId, priority: 1, send: false, label: 'channels.GetMessages' }, new Api.channels.GetMessages({ channel: new Api.InputChannel({ channelId: bigId(ch.channelId), accessHash: bigId(ch.accessHash) }), id: ids }));
      const real = 'messages' in res ? res.messages.filter((m) => !(m instanceof Api.MessageEmpty)) : [];
      if (!real.length) break;
      out.push(...real);
      from += 100;
    }
    return out;
  }

  function reconcile(reason: string): Promise<ReconcileResult> {
    if (reconciling) return reconciling;
    const ctx = getCtx();
    reconciling = (async () => {
      const topics = await ctx.openTopics();
      let messages = 0;
      const byGroup = new Map<string, number[]>();
      for (const t of topics) byGroup.set(t.groupId, [...(byGroup.get(t.groupId) ?? []), t.topicId]);
      for (const [groupId, ids] of byGroup) {
        const ch = ctx.peers.channel(groupId);
        if (!ch) continue;
        const open = new Set(ids);
        try {
          const batches = ctx.kind === 'user' ? await Promise.all(ids.map((id) => readTopic(ctx, ch, id).catch((err) => (toAppError(err, 'reading a topic').code === 'topic_gone' ? [] : Promise.reject(err))))) : [await readSince(ctx, ch)];
          for (const m of batches.flat()) {
            const e = eventOf(ctx, m);
            if (!e || !open.has(e.topicId)) continue;
            messages += 1;
            emit(e);
          }
        } catch (err) {
          const e = toAppError(err, `reconciling group ${groupId}`);
          ctx.note(e);
          ctx.logger.warn('telegram reconciliation failed for a group; it is retried on the next reconnect', { group: groupId, error: e.message });
        }
      }
      await chain;
      await ctx.peers.flushCursors();
      const result = { topics: topics.length, messages, reason };
      lastReconcile = { ...result, at: ctx.timers.now() };
      return result;
    })().finally(() => {
      reconciling = null;
    });
    return reconciling;
  }

  return {
    onUpdate,
    reconcile,
    /** Resolves when every update delivered so far has been handled and its events handed to the pipeline. */
    idle: async () => {
      for (let i = 0; i < 50; i++) {
        await settle(2); // GramJS dispatches updates through a few promise hops before our handler runs
        const before = { handling: handling.size, chain, reconciling };
        await Promise.all([...handling]);
        await reconciling;
        await chain;
        if (!before.handling && before.chain === chain && !reconciling) return;
      }
    },
    status: () => ({ connected: !down, lastReconcile }),
  };
}
