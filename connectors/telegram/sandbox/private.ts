// Private chats between customers and the team's bot, for the intake bot (connectors/telegram/intake): a customer
// (driven from tests or the console's simulated chat) writes, shares a contact, sends a photo or presses an inline
// button; the bot answers with inline keyboards or a reply keyboard with the contact button, copies messages between
// the chat and forum topics (messages.forwardMessages with drop_author, which keeps the media), and edits. As on
// Telegram, every account numbers its private messages on its own, keeps its own update sequence (pts) that
// updates.getDifference replays after a restart, and a repeated random_id is RANDOM_ID_DUPLICATE.
import { Api } from 'telegram';
import type { Account, Group, Media, Msg, Viewer, World } from './world.ts';

export type Button = { label: string; data: string };
export type Markup = { inline: Button[][] } | { keyboard: { label: string; requestPhone: boolean }[][]; singleUse: boolean } | { hide: true };

export type PrivateMsg = { key: number; from: string; to: string; at: number; text: string; media: Media | null; markup: Markup | null; ids: Record<string, number>; editedAt?: number; deleted?: boolean };

type Box = { nextId: number; pts: number; log: { pts: number; key: number; kind: 'new' | 'edit' }[]; randomIds: Map<string, number> };

export type CustomerInput = { text?: string; media?: { kind: 'photo' | 'document' | 'voice'; name?: string; mime?: string }; contact?: { phone: string; own?: boolean } };

/** A message as the customer sees it in the chat with the bot. */
export type CustomerView = { id: number; fromBot: boolean; text: string; media: Media | null; buttons: Button[][]; keyboard: { label: string; requestPhone: boolean }[][] | null; at: number; edited: boolean };

export type PrivateChats = ReturnType<typeof installPrivateChats>;

const GENERAL = 1;

export function installPrivateChats(world: World) {
  const x = world.ext;
  const boxes = new Map<string, Box>();
  const messages = new Map<number, PrivateMsg>();
  const byId = new Map<string, number>(); // `${account}:${id}` -> key
  const callbacks = new Map<string, { answered: boolean; userId: string }>();
  let nextKey = 1;
  let nextFile = 5_000_000_001;
  let nextQuery = 1;

  const box = (id: string): Box => {
    let b = boxes.get(id);
    if (!b) boxes.set(id, (b = { nextId: 1, pts: 1, log: [], randomIds: new Map() }));
    return b;
  };
  const other = (m: PrivateMsg, me: string) => (m.from === me ? m.to : m.from);
  const find = (account: string, id: number): PrivateMsg | null => {
    const k = byId.get(`${account}:${id}`);
    return k ? (messages.get(k) ?? null) : null;
  };

  function markupTl(m: Markup): Api.TypeReplyMarkup {
    if ('hide' in m) return new Api.ReplyKeyboardHide({});
    if ('inline' in m) return new Api.ReplyInlineMarkup({ rows: m.inline.map((r) => new Api.KeyboardButtonRow({ buttons: r.map((b) => new Api.KeyboardButtonCallback({ text: b.label, data: Buffer.from(b.data) })) })) });
    return new Api.ReplyKeyboardMarkup({ resize: true, singleUse: m.singleUse, rows: m.keyboard.map((r) => new Api.KeyboardButtonRow({ buttons: r.map((b) => (b.requestPhone ? new Api.KeyboardButtonRequestPhone({ text: b.label }) : new Api.KeyboardButton({ text: b.label }))) })) });
  }

  function markupFrom(r: unknown): Markup | null {
    if (r instanceof Api.ReplyKeyboardHide) return { hide: true };
    if (r instanceof Api.ReplyInlineMarkup) return { inline: r.rows.map((row) => row.buttons.map((b) => ({ label: b.text, data: b instanceof Api.KeyboardButtonCallback ? Buffer.from(b.data).toString() : '' }))) };
    if (r instanceof Api.ReplyKeyboardMarkup) return { keyboard: r.rows.map((row) => row.buttons.map((b) => ({ label: b.text, requestPhone: b instanceof Api.KeyboardButtonRequestPhone }))), singleUse: !!r.singleUse };
    return null;
  }

  function messageTl(m: PrivateMsg, viewer: string): Api.Message {
    return new Api.Message({
      id: m.ids[viewer]!,
      peerId: new Api.PeerUser({ userId: x.big(other(m, viewer)) }),
      fromId: new Api.PeerUser({ userId: x.big(m.from) }),
      out: m.from === viewer,
      date: x.sec(m.at),
      message: m.text,
      ...(m.media ? { media: x.mediaTl(m.media, viewer) } : {}),
      ...(m.markup && m.from !== viewer ? { replyMarkup: markupTl(m.markup) } : {}),
      ...(m.editedAt ? { editDate: x.sec(m.editedAt) } : {}),
    });
  }

  function updatesFor(m: PrivateMsg, viewer: string, kind: 'new' | 'edit', pts: number, extra: Api.TypeUpdate[] = []): Api.Updates {
    const u = kind === 'new' ? new Api.UpdateNewMessage({ message: messageTl(m, viewer), pts, ptsCount: 1 }) : new Api.UpdateEditMessage({ message: messageTl(m, viewer), pts, ptsCount: 1 });
    return new Api.Updates({ updates: [...extra, u], users: x.usersOf([m.from, m.to], viewer), chats: [], date: x.sec(x.now()), seq: 0 });
  }

  function deliver(account: string, build: () => Api.TypeUpdates, except?: Viewer): void {
    for (const v of world.viewers) if (v !== except && v.accountId === account && v.isUp()) v.push(build());
  }

  /** Records a new private message in both participants' boxes and delivers it to the other side. */
  function post(from: string, to: string, text: string, media: Media | null, markup: Markup | null, except?: Viewer): PrivateMsg {
    const m: PrivateMsg = { key: nextKey++, from, to, at: x.now(), text, media, markup, ids: {} };
    for (const acc of [from, to]) {
      const b = box(acc);
      m.ids[acc] = b.nextId++;
      b.pts += 1;
      b.log.push({ pts: b.pts, key: m.key, kind: 'new' });
      byId.set(`${acc}:${m.ids[acc]}`, m.key);
    }
    messages.set(m.key, m);
    deliver(to, () => updatesFor(m, to, 'new', box(to).pts));
    deliver(from, () => updatesFor(m, from, 'new', box(from).pts), except);
    return m;
  }

  function edit(m: PrivateMsg, text: string, except?: Viewer): void {
    m.text = text;
    m.editedAt = x.now();
    for (const acc of [m.from, m.to]) {
      const b = box(acc);
      b.pts += 1;
      b.log.push({ pts: b.pts, key: m.key, kind: 'edit' });
      deliver(acc, () => updatesFor(m, acc, 'edit', b.pts), acc === m.from ? except : undefined);
    }
  }

  function privatePeer(input: unknown, me: Account): Account | null {
    if (input instanceof Api.InputPeerUser || input instanceof Api.InputUser) return x.userFrom(input, me);
    return null;
  }

  function checkRandom(me: Account, randomId: unknown): string {
    const r = String(randomId ?? '');
    if (!r || r === '0') return x.fault(400, 'RANDOM_ID_EMPTY');
    if (box(me.id).randomIds.has(r)) return x.fault(400, 'RANDOM_ID_DUPLICATE');
    return r;
  }

  /** A message into a forum topic (or General) from a copy. */
  function channelPost(g: Group, me: Account, topMsgId: number | undefined | null, text: string, media: Media | null): Msg {
    const topicId = topMsgId && topMsgId !== GENERAL ? topMsgId : GENERAL;
    if (g.deletedTopics.has(topicId)) return x.fault(400, 'TOPIC_DELETED');
    if (topicId !== GENERAL && !g.topics.has(topicId)) return x.fault(400, 'TOPIC_ID_INVALID');
    const t = g.topics.get(topicId);
    if (t?.closed && !x.can(g, me.id, 'manageTopics')) return x.fault(400, 'TOPIC_CLOSED');
    x.floodCheck(me, g);
    return x.append(g, { fromId: me.id, text, topicId, replyToMsgId: topicId === GENERAL ? null : topicId, mentions: [], action: null, media });
  }

  const baseSend = x.base['messages.SendMessage']!;
  const baseGetState = x.base['updates.GetState']!;

  x.methods['messages.SendMessage'] = (req: Api.messages.SendMessage, me: Account, v: Viewer) => {
    const to = privatePeer(req.peer, me);
    if (!to) return baseSend(req, me, v);
    const text = req.message ?? '';
    if (!text.trim()) return x.fault(400, 'MESSAGE_EMPTY');
    if (text.length > 4096) return x.fault(400, 'MESSAGE_TOO_LONG');
    if (to.bot && me.bot) return x.fault(400, 'USER_IS_BOT');
    if (me.bot && !box(to.id).log.some((l) => messages.get(l.key)?.from === to.id && messages.get(l.key)?.to === me.id)) return x.fault(403, 'USER_IS_BLOCKED'); // bots cannot start chats (the Bot API's "bot can't initiate conversation"; the MTProto error name here is our assumption)
    const r = checkRandom(me, req.randomId);
    const m = post(me.id, to.id, text, null, req.replyMarkup ? markupFrom(req.replyMarkup) : null, v);
    box(me.id).randomIds.set(r, m.ids[me.id]!);
    return updatesFor(m, me.id, 'new', box(me.id).pts, [new Api.UpdateMessageID({ id: m.ids[me.id]!, randomId: x.big(r) })]);
  };

  x.methods['messages.ForwardMessages'] = (req: Api.messages.ForwardMessages, me: Account, v: Viewer) => {
    const ids = req.id ?? [];
    const randoms = (req.randomId ?? []).map(String);
    if (!ids.length) return x.fault(400, 'MESSAGE_IDS_EMPTY');
    if (ids.length !== randoms.length) return x.fault(400, 'RANDOM_ID_INVALID');
    // Sources: our private chat with a user, or a channel we are in.
    const fromUser = privatePeer(req.fromPeer, me);
    const fromGroup = fromUser ? null : x.channelFrom(req.fromPeer, me);
    const sources = ids.map((id) => {
      if (fromUser) {
        const m = find(me.id, id);
        if (!m || other(m, me.id) !== fromUser.id) return x.fault(400, 'MESSAGE_ID_INVALID');
        return { text: m.text, media: m.media };
      }
      const m = fromGroup!.messages.get(id);
      if (!m || m.action) return x.fault(400, 'MESSAGE_ID_INVALID');
      return { text: m.text, media: m.media ?? null };
    });
    const toUser = privatePeer(req.toPeer, me);
    const updates: Api.TypeUpdate[] = [];
    if (toUser) {
      if (me.bot && !box(toUser.id).log.some((l) => messages.get(l.key)?.from === toUser.id)) return x.fault(403, 'USER_IS_BLOCKED');
      randoms.forEach((r) => checkRandom(me, r));
      const made = sources.map((s, i) => {
        const m = post(me.id, toUser.id, s.text, s.media, null, v);
        box(me.id).randomIds.set(randoms[i]!, m.ids[me.id]!);
        updates.push(new Api.UpdateMessageID({ id: m.ids[me.id]!, randomId: x.big(randoms[i]!) }), new Api.UpdateNewMessage({ message: messageTl(m, me.id), pts: box(me.id).pts, ptsCount: 1 }));
        return m;
      });
      return new Api.Updates({ updates, users: x.usersOf([me.id, toUser.id, ...made.map((m) => m.from)], me.id), chats: [], date: x.sec(x.now()), seq: 0 });
    }
    const g = x.channelFrom(req.toPeer, me);
    const keys = randoms.map((r) => {
      if (!r || r === '0') return x.fault(400, 'RANDOM_ID_EMPTY');
      if (g.randomIds.has(`${me.id}:${r}`)) return x.fault(400, 'RANDOM_ID_DUPLICATE');
      return `${me.id}:${r}`;
    });
    const made = sources.map((s, i) => {
      const msg = channelPost(g, me, req.topMsgId as number | undefined, s.text, s.media);
      g.randomIds.set(keys[i]!, msg.id);
      updates.push(new Api.UpdateMessageID({ id: msg.id, randomId: x.big(randoms[i]!) }));
      return msg;
    });
    x.broadcast(g, (viewer) => x.newMessageUpdates(g, made, viewer), v);
    return x.newMessageUpdates(g, made, me.id, updates);
  };

  x.methods['messages.EditMessage'] = (req: Api.messages.EditMessage, me: Account, v: Viewer) => {
    const text = req.message ?? '';
    const to = privatePeer(req.peer, me);
    if (to) {
      const m = find(me.id, req.id);
      if (!m || other(m, me.id) !== to.id) return x.fault(400, 'MESSAGE_ID_INVALID');
      if (m.from !== me.id) return x.fault(403, 'MESSAGE_AUTHOR_REQUIRED');
      if (m.text === text && !req.replyMarkup) return x.fault(400, 'MESSAGE_NOT_MODIFIED');
      if (req.replyMarkup) m.markup = markupFrom(req.replyMarkup);
      edit(m, text, v);
      return updatesFor(m, me.id, 'edit', box(me.id).pts);
    }
    const g = x.channelFrom(req.peer, me);
    const m = g.messages.get(req.id);
    if (!m || m.action) return x.fault(400, 'MESSAGE_ID_INVALID');
    if (m.fromId !== me.id) return x.fault(403, 'MESSAGE_AUTHOR_REQUIRED');
    if (m.text === text) return x.fault(400, 'MESSAGE_NOT_MODIFIED');
    m.text = text;
    m.editedAt = x.now();
    g.pts += 1;
    const build = (viewer: string) => new Api.Updates({ updates: [new Api.UpdateEditChannelMessage({ message: x.messageTl(g, m, viewer), pts: g.pts, ptsCount: 1 })], users: x.usersOf([m.fromId], viewer), chats: [x.channelTl(g, viewer)], date: x.sec(x.now()), seq: 0 });
    x.broadcast(g, build, v);
    return build(me.id);
  };

  // Deleting in a private chat: with revoke, for both sides (bots always revoke); the other side is told.
  x.methods['messages.DeleteMessages'] = (req: Api.messages.DeleteMessages, me: Account) => {
    const gone = (req.id ?? []).map((id) => find(me.id, id)).filter((m): m is PrivateMsg => !!m && !m.deleted);
    for (const m of gone) {
      if (me.bot && m.from !== me.id && x.now() - m.at > 48 * 3600_000) return x.fault(400, 'MESSAGE_DELETE_FORBIDDEN');
    }
    for (const m of gone) {
      m.deleted = true;
      for (const acc of [m.from, m.to]) {
        const b = box(acc);
        b.pts += 1;
        if (acc !== me.id) deliver(acc, () => new Api.UpdateShort({ update: new Api.UpdateDeleteMessages({ messages: [m.ids[acc]!], pts: b.pts, ptsCount: 1 }), date: x.sec(x.now()) }));
      }
    }
    return new Api.messages.AffectedMessages({ pts: box(me.id).pts, ptsCount: gone.length });
  };

  x.methods['messages.SetBotCallbackAnswer'] = (req: Api.messages.SetBotCallbackAnswer, me: Account) => {
    if (!me.bot) return x.fault(400, 'BOT_METHOD_INVALID');
    const q = callbacks.get(String(req.queryId));
    if (!q) return x.fault(400, 'QUERY_ID_INVALID');
    q.answered = true;
    return true;
  };

  x.methods['updates.GetState'] = (req: Api.updates.GetState, me: Account, v: Viewer) => {
    const base = baseGetState(req, me, v) as Api.updates.State;
    return new Api.updates.State({ pts: box(me.id).pts, qts: base.qts, date: base.date, seq: base.seq, unreadCount: 0 });
  };

  x.methods['updates.GetDifference'] = (req: Api.updates.GetDifference, me: Account) => {
    const b = box(me.id);
    const state = new Api.updates.State({ pts: b.pts, qts: 0, date: x.sec(x.now()), seq: 0, unreadCount: 0 });
    const news = b.log.filter((l) => l.pts > req.pts);
    if (!news.length) return new Api.updates.DifferenceEmpty({ date: x.sec(x.now()), seq: 0 });
    const msgs = news.filter((l) => l.kind === 'new').map((l) => messages.get(l.key)!);
    const edits = news.filter((l) => l.kind === 'edit').map((l) => new Api.UpdateEditMessage({ message: messageTl(messages.get(l.key)!, me.id), pts: l.pts, ptsCount: 1 }));
    return new Api.updates.Difference({ newMessages: msgs.map((m) => messageTl(m, me.id)), newEncryptedMessages: [], otherUpdates: edits, chats: [], users: x.usersOf(msgs.flatMap((m) => [m.from, m.to]), me.id), state });
  };

  // ------------------------------------------------------------------ the customer's side (tests, console)

  function customer(userId: string): Account {
    const a = world.accounts.get(userId);
    if (!a || a.bot) throw new Error(`sandbox: no Telegram customer ${userId}`);
    return a;
  }

  function newFile(kind: 'photo' | 'document' | 'voice', name?: string, mime?: string): Media {
    return { kind, id: String(nextFile++), ...(name ? { name } : {}), ...(mime ? { mime } : {}), size: 2048 };
  }

  return {
    addCustomer(c: { id: string; firstName: string; lastName?: string; username?: string; langCode?: string; phone?: string }): void {
      world.addAccount({ id: c.id, firstName: c.firstName, ...(c.lastName ? { lastName: c.lastName } : {}), ...(c.username ? { username: c.username } : {}), bot: false, online: true });
      const a = world.accounts.get(c.id)!;
      if (c.langCode) a.langCode = c.langCode;
      if (c.phone) a.phone = c.phone;
    },
    customers: () => [...world.accounts.values()].filter((a) => !a.bot && a.langCode !== undefined).map((a) => ({ id: a.id, name: [a.firstName, a.lastName].filter(Boolean).join(' '), langCode: a.langCode ?? 'en', phone: a.phone ?? null })),
    /** The customer writes to the bot: text, a photo/document/voice note (with an optional caption), or a contact. */
    send(userId: string, botId: string, input: CustomerInput): number {
      const me = customer(userId);
      if (!world.accounts.get(botId)?.bot) throw new Error(`sandbox: ${botId} is not a bot`);
      let media: Media | null = null;
      if (input.contact) {
        const own = input.contact.own ?? true;
        media = { kind: 'contact', id: '0', phone: input.contact.phone.replace(/^\+/, ''), firstName: own ? me.firstName : 'Someone', userId: own ? me.id : '0' };
      } else if (input.media) media = newFile(input.media.kind, input.media.name, input.media.mime);
      const m = post(me.id, botId, input.text ?? '', media, null);
      return m.ids[me.id]!;
    },
    /** The customer presses an inline button under the bot's message (by the customer's message id). */
    press(userId: string, messageId: number, data: string): string {
      customer(userId);
      const m = find(userId, messageId);
      if (!m || m.to !== userId) throw new Error(`sandbox: message ${messageId} is not from the bot`);
      const ok = m.markup && 'inline' in m.markup && m.markup.inline.some((r) => r.some((b) => b.data === data));
      if (!ok) throw new Error(`sandbox: message ${messageId} has no button ${data}`);
      const queryId = String(nextQuery++);
      callbacks.set(queryId, { answered: false, userId });
      const botId = m.from;
      deliver(botId, () => new Api.Updates({ updates: [new Api.UpdateBotCallbackQuery({ queryId: x.big(queryId), userId: x.big(userId), peer: new Api.PeerUser({ userId: x.big(userId) }), msgId: m.ids[botId]!, chatInstance: x.big(userId), data: Buffer.from(data) })], users: x.usersOf([userId], botId), chats: [], date: x.sec(x.now()), seq: 0 }));
      return queryId;
    },
    /** The customer edits one of their messages. */
    editByCustomer(userId: string, messageId: number, text: string): void {
      const m = find(userId, messageId);
      if (!m || m.from !== userId) throw new Error(`sandbox: message ${messageId} is not the customer's`);
      edit(m, text);
    },
    callbackAnswered: (queryId: string) => callbacks.get(queryId)?.answered ?? false,
    /** The chat as the customer sees it, oldest first. */
    chat(userId: string, botId: string): CustomerView[] {
      return [...messages.values()]
        .filter((m) => !m.deleted && ((m.from === userId && m.to === botId) || (m.from === botId && m.to === userId)))
        .map((m) => ({
          id: m.ids[userId]!,
          fromBot: m.from === botId,
          text: m.text,
          media: m.media,
          buttons: m.markup && 'inline' in m.markup ? m.markup.inline : [],
          keyboard: m.markup && 'keyboard' in m.markup ? m.markup.keyboard : null,
          at: m.at,
          edited: !!m.editedAt,
        }));
    },
    /** An agent posts a photo/document/voice note (with caption) into a topic. */
    agentPostMedia(channelId: string, topicId: number, userId: string, text: string, media: { kind: 'photo' | 'document' | 'voice'; name?: string; mime?: string }): Msg {
      const g = world.mustGroup(channelId);
      if (!g.members.has(userId)) throw new Error(`sandbox: ${userId} is not a member of "${g.title}"`);
      const msg = x.append(g, { fromId: userId, text, topicId, replyToMsgId: topicId, mentions: [], action: null, media: newFile(media.kind, media.name, media.mime) });
      x.broadcast(g, (viewer) => x.newMessageUpdates(g, [msg], viewer));
      return msg;
    },
    /** An agent deletes their message in a topic. */
    agentDelete(channelId: string, messageId: number): void {
      const g = world.mustGroup(channelId);
      const gone = g.messages.get(messageId);
      if (!gone) throw new Error(`sandbox: no message ${messageId}`);
      g.messages.delete(messageId);
      g.byTopic.get(gone.topicId)?.delete(messageId);
      g.pts += 1;
      x.broadcast(g, (viewer) => new Api.Updates({ updates: [new Api.UpdateDeleteChannelMessages({ channelId: x.big(g.channelId), messages: [messageId], pts: g.pts, ptsCount: 1 })], users: [], chats: [x.channelTl(g, viewer)], date: x.sec(x.now()), seq: 0 }));
    },
    /** An agent edits their message in a topic. */
    agentEdit(channelId: string, messageId: number, text: string): void {
      const g = world.mustGroup(channelId);
      const m = g.messages.get(messageId);
      if (!m) throw new Error(`sandbox: no message ${messageId}`);
      m.text = text;
      m.editedAt = x.now();
      g.pts += 1;
      x.broadcast(g, (viewer) => new Api.Updates({ updates: [new Api.UpdateEditChannelMessage({ message: x.messageTl(g, m, viewer), pts: g.pts, ptsCount: 1 })], users: x.usersOf([m.fromId], viewer), chats: [x.channelTl(g, viewer)], date: x.sec(x.now()), seq: 0 }));
    },
    /** A channel message with its media (tests check what reached a topic). */
    channelMessage(channelId: string, messageId: number): Msg | null {
      return world.mustGroup(channelId).messages.get(messageId) ?? null;
    },
  };
}
