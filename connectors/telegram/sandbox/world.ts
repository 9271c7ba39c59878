// The sandbox's Telegram: accounts, forum supergroups, topics, messages, members with admin rights, presence and
// flood limits, answering MTProto requests as TL objects. It is held to Telegram's documented shapes and errors
// (TOPIC_DELETED, TOPIC_CLOSED, CHANNEL_FORUM_MISSING, CHAT_ADMIN_REQUIRED, RANDOM_ID_DUPLICATE, FLOOD_WAIT_X,
// SLOWMODE_WAIT_X, BOT_METHOD_INVALID for user-only methods), and access hashes differ per viewing account as they
// do on Telegram, so a client that forgets to persist them fails here as it would there.
import { Api } from 'telegram';
import { returnBigInt } from 'telegram/Helpers.js';
import { fnv64 } from '../../../core/ids.ts';
import { TOPIC_ICON_COLORS, utf8Length } from '../titles.ts';
import type { Timers } from '../clock.ts';

export type Rights = { manageTopics: boolean; pinMessages: boolean; inviteUsers: boolean; deleteMessages: boolean; changeInfo: boolean };
export const ALL_RIGHTS: Rights = { manageTopics: true, pinMessages: true, inviteUsers: true, deleteMessages: true, changeInfo: true };
export const NO_RIGHTS: Rights = { manageTopics: false, pinMessages: false, inviteUsers: false, deleteMessages: false, changeInfo: false };

export type Account = { id: string; firstName: string; lastName?: string; username?: string; bot: boolean; online: boolean; wasOnline: number; contacts: Set<string>; langCode?: string; phone?: string };
/** A photo, document or voice note attached to a message (private chats and topics; see private.ts). */
export type Media = { kind: 'photo' | 'document' | 'voice' | 'contact'; id: string; name?: string; mime?: string; size?: number; phone?: string; userId?: string; firstName?: string };
export type Member = { userId: string; role: 'creator' | 'admin' | 'member'; rights: Rights; joinedAt: number; inviterId: string | null };
export type Action = { kind: 'topic_create'; title: string; iconColor: number } | { kind: 'topic_edit'; closed?: boolean; title?: string } | { kind: 'pin'; messageId: number } | { kind: 'add_user'; userIds: string[] };
export type Msg = { id: number; fromId: string; at: number; text: string; topicId: number; replyToMsgId: number | null; mentions: { offset: number; length: number; userId: string }[]; action: Action | null; pinned: boolean; media?: Media | null; editedAt?: number };
export type Topic = { id: number; title: string; iconColor: number; closed: boolean; createdAt: number; creatorId: string };
export type Group = {
  configId: string;
  channelId: string;
  title: string;
  forum: boolean;
  createdAt: number;
  members: Map<string, Member>;
  nextId: number;
  pts: number;
  topics: Map<number, Topic>;
  deletedTopics: Set<number>;
  messages: Map<number, Msg>;
  /** The same messages by topic (insertion order = id order), so a topic's messages are read without a group scan. */
  byTopic: Map<number, Map<number, Msg>>;
  randomIds: Map<string, number>;
  slowModeSeconds: number;
  lastSendBy: Map<string, number>;
};

export type Fault = { method?: string; channelId?: string; error: string; code?: number; times: number };

export type Outcome = { result: unknown } | { error: { code: number; message: string } } | { drop: true };

/** The part of a connection the world talks to (see sender.ts). */
export interface Viewer {
  readonly id: number;
  accountId: string | null;
  isUp(): boolean;
  push(updates: Api.TypeUpdates): void;
}

export type WorldOptions = {
  timers: Timers;
  limits?: { perGroupPerMinute?: number; perAccountPerSecond?: number };
  /** Bots may address a group they are in with access_hash 0 (so a bot can be linked before it has seen the group). */
  botsMayUseZeroAccessHash?: boolean;
};

const GENERAL = 1;
/** Decoded TL objects carry absent optional fields as null or undefined. */
const given = <T>(x: T | null | undefined): x is T => x !== undefined && x !== null;
const USER_ONLY = new Set(['messages.GetDialogs', 'messages.GetReplies', 'channels.GetForumTopics', 'channels.GetForumTopicsByID', 'channels.InviteToChannel', 'contacts.GetContacts']);

class RpcFault extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}
const fault = (code: number, message: string): never => {
  throw new RpcFault(code, message);
};

export type World = ReturnType<typeof createWorld>;

export function createWorld(opts: WorldOptions) {
  const timers = opts.timers;
  const perGroupPerMinute = opts.limits?.perGroupPerMinute ?? 20;
  const perAccountPerSecond = opts.limits?.perAccountPerSecond ?? 30;
  const zeroHashForBots = opts.botsMayUseZeroAccessHash ?? true;
  const accounts = new Map<string, Account>();
  const groups = new Map<string, Group>();
  const viewers = new Set<Viewer>();
  const botTokens = new Map<string, string>();
  const faults: Fault[] = [];
  const sendLog = new Map<string, number[]>();
  const accountLog = new Map<string, number[]>();
  const counters = { requests: new Map<string, number>(), floodWaits: 0, unhandled: new Map<string, number>(), topicCreations: [] as { channelId: string; topicId: number; title: string; at: number; seq: number }[] };
  let creationSeq = 0;
  const dropNext = new Map<string, number>();

  const now = () => timers.now();
  const sec = (ms: number) => Math.floor(ms / 1000);
  const hashOf = (viewer: string, peer: string) => fnv64(`access:${viewer}:${peer}`);
  const big = (v: string | number) => returnBigInt(v);

  // ------------------------------------------------------------------ world building

  function addAccount(a: Omit<Account, 'online' | 'wasOnline' | 'contacts'> & { online?: boolean }): Account {
    const acc: Account = { ...a, online: a.online ?? false, wasOnline: now(), contacts: new Set() };
    accounts.set(a.id, acc);
    return acc;
  }

  function addGroup(g: { configId: string; channelId: string; title: string; forum?: boolean; creatorId: string }): Group {
    const group: Group = {
      configId: g.configId,
      channelId: g.channelId,
      title: g.title,
      forum: g.forum ?? true,
      createdAt: now(),
      members: new Map(),
      nextId: GENERAL + 1,
      pts: 1,
      topics: new Map(),
      deletedTopics: new Set(),
      messages: new Map(),
      byTopic: new Map(),
      randomIds: new Map(),
      slowModeSeconds: 0,
      lastSendBy: new Map(),
    };
    group.members.set(g.creatorId, { userId: g.creatorId, role: 'creator', rights: { ...ALL_RIGHTS }, joinedAt: now(), inviterId: null });
    groups.set(g.channelId, group);
    return group;
  }

  function setMember(channelId: string, userId: string, role: Member['role'] | null, rights: Partial<Rights> = {}): void {
    const g = mustGroup(channelId);
    if (role === null) return void g.members.delete(userId);
    g.members.set(userId, { userId, role, rights: { ...(role === 'member' ? NO_RIGHTS : ALL_RIGHTS), ...(role === 'creator' ? ALL_RIGHTS : rights) }, joinedAt: now(), inviterId: null });
  }

  function mustGroup(channelId: string): Group {
    const g = groups.get(channelId);
    if (!g) throw new Error(`sandbox: no group with channel id ${channelId}`);
    return g;
  }

  // ------------------------------------------------------------------ TL views (per viewing account)

  function userTl(u: Account, viewer: string): Api.User {
    return new Api.User({
      id: big(u.id),
      accessHash: big(hashOf(viewer, u.id)),
      firstName: u.firstName,
      ...(u.lastName ? { lastName: u.lastName } : {}),
      ...(u.username ? { username: u.username } : {}),
      self: u.id === viewer,
      bot: u.bot,
      ...(u.bot ? { botInfoVersion: 1 } : { status: statusTl(u) }),
      // Telegram tells bots the user's app language (lang_code); user accounts never see it.
      ...(u.langCode && accounts.get(viewer)?.bot ? { langCode: u.langCode } : {}),
      contact: accounts.get(viewer)?.contacts.has(u.id) ?? false,
    });
  }

  function statusTl(u: Account): Api.TypeUserStatus {
    return u.online ? new Api.UserStatusOnline({ expires: sec(now()) + 300 }) : new Api.UserStatusOffline({ wasOnline: sec(u.wasOnline) });
  }

  function rightsTl(r: Rights): Api.ChatAdminRights {
    return new Api.ChatAdminRights({ changeInfo: r.changeInfo, deleteMessages: r.deleteMessages, inviteUsers: r.inviteUsers, pinMessages: r.pinMessages, manageTopics: r.manageTopics, other: true });
  }

  function channelTl(g: Group, viewer: string): Api.Channel {
    const m = g.members.get(viewer);
    return new Api.Channel({
      id: big(g.channelId),
      accessHash: big(hashOf(viewer, g.channelId)),
      title: g.title,
      photo: new Api.ChatPhotoEmpty(),
      date: sec(g.createdAt),
      megagroup: true,
      forum: g.forum,
      creator: m?.role === 'creator',
      left: !m,
      slowmodeEnabled: g.slowModeSeconds > 0,
      ...(m && m.role !== 'member' ? { adminRights: rightsTl(m.rights) } : {}),
      participantsCount: g.members.size,
    });
  }

  function replyHeader(g: Group, m: Msg): Api.MessageReplyHeader | undefined {
    if (m.action?.kind === 'topic_create') return undefined;
    const inTopic = g.forum && m.topicId !== GENERAL;
    if (inTopic) {
      const to = m.replyToMsgId ?? m.topicId;
      return new Api.MessageReplyHeader({ forumTopic: true, replyToMsgId: to, ...(to !== m.topicId ? { replyToTopId: m.topicId } : {}) });
    }
    return m.replyToMsgId ? new Api.MessageReplyHeader({ replyToMsgId: m.replyToMsgId }) : undefined;
  }

  function messageTl(g: Group, m: Msg, viewer: string): Api.TypeMessage {
    const base = { id: m.id, peerId: new Api.PeerChannel({ channelId: big(g.channelId) }), fromId: new Api.PeerUser({ userId: big(m.fromId) }), date: sec(m.at), out: m.fromId === viewer };
    const replyTo = replyHeader(g, m);
    if (m.action) {
      const a = m.action;
      const action =
        a.kind === 'topic_create'
          ? new Api.MessageActionTopicCreate({ title: a.title, iconColor: a.iconColor })
          : a.kind === 'topic_edit'
            ? new Api.MessageActionTopicEdit({ ...(a.closed !== undefined ? { closed: a.closed } : {}), ...(a.title !== undefined ? { title: a.title } : {}) })
            : a.kind === 'pin'
              ? new Api.MessageActionPinMessage()
              : new Api.MessageActionChatAddUser({ users: a.userIds.map(big) });
      return new Api.MessageService({ ...base, action, ...(replyTo ? { replyTo } : {}) });
    }
    return new Api.Message({
      ...base,
      message: m.text,
      pinned: m.pinned,
      ...(m.media ? { media: mediaTl(m.media, viewer) } : {}),
      ...(m.editedAt ? { editDate: sec(m.editedAt) } : {}),
      mentioned: m.mentions.some((x) => x.userId === viewer),
      ...(replyTo ? { replyTo } : {}),
      ...(m.mentions.length ? { entities: m.mentions.map((x) => new Api.MessageEntityMentionName({ offset: x.offset, length: x.length, userId: big(x.userId) })) } : {}),
    });
  }

  /** Files are addressed by (id, access_hash, file_reference); the hash is per viewing account, as on Telegram. */
  function mediaTl(m: Media, viewer: string): Api.TypeMessageMedia {
    if (m.kind === 'contact') return new Api.MessageMediaContact({ phoneNumber: m.phone ?? '', firstName: m.firstName ?? '', lastName: '', vcard: '', userId: big(m.userId ?? '0') });
    const common = { id: big(m.id), accessHash: big(hashOf(viewer, `file:${m.id}`)), fileReference: Buffer.from(`ref:${m.id}`), date: sec(now()), dcId: 2 };
    if (m.kind === 'photo') return new Api.MessageMediaPhoto({ photo: new Api.Photo({ ...common, sizes: [new Api.PhotoSize({ type: 'x', w: 800, h: 600, size: m.size ?? 1000 })] }) });
    const attributes: Api.TypeDocumentAttribute[] = m.kind === 'voice' ? [new Api.DocumentAttributeAudio({ voice: true, duration: 3 })] : [new Api.DocumentAttributeFilename({ fileName: m.name ?? 'file' })];
    return new Api.MessageMediaDocument({ document: new Api.Document({ ...common, mimeType: m.mime ?? (m.kind === 'voice' ? 'audio/ogg' : 'application/octet-stream'), size: big(m.size ?? 1000), attributes }) });
  }

  function usersOf(ids: Iterable<string>, viewer: string): Api.User[] {
    return [...new Set(ids)].flatMap((id) => {
      const u = accounts.get(id);
      return u ? [userTl(u, viewer)] : [];
    });
  }

  function newMessageUpdates(g: Group, msgs: Msg[], viewer: string, extra: Api.TypeUpdate[] = []): Api.Updates {
    const updates: Api.TypeUpdate[] = [...extra];
    for (const m of msgs) updates.push(new Api.UpdateNewChannelMessage({ message: messageTl(g, m, viewer), pts: g.pts, ptsCount: 1 }));
    const users = msgs.flatMap((m) => [m.fromId, ...m.mentions.map((x) => x.userId), ...(m.action?.kind === 'add_user' ? m.action.userIds : [])]);
    return new Api.Updates({ updates, users: usersOf([viewer, ...users], viewer), chats: [channelTl(g, viewer)], date: sec(now()), seq: 0 });
  }

  /** Delivers to every connected account that can see the group, except the one whose request caused it. */
  function broadcast(g: Group, build: (viewer: string) => Api.TypeUpdates, except?: Viewer): void {
    for (const v of viewers) {
      if (v === except || !v.accountId || !v.isUp()) continue;
      if (!g.members.has(v.accountId)) continue;
      v.push(build(v.accountId));
    }
  }

  // ------------------------------------------------------------------ request helpers

  function account(v: Viewer): Account {
    const a = v.accountId ? accounts.get(v.accountId) : undefined;
    if (!a) return fault(401, 'AUTH_KEY_UNREGISTERED');
    return a;
  }

  function channelFrom(input: unknown, me: Account): Group {
    let id: string | null = null;
    let hash: string | null = null;
    if (input instanceof Api.InputChannel || input instanceof Api.InputPeerChannel) {
      id = input.channelId.toString();
      hash = input.accessHash.toString();
    } else return fault(400, 'CHANNEL_INVALID');
    const g = groups.get(id);
    if (!g) return fault(400, 'CHANNEL_INVALID');
    const zeroOk = me.bot && zeroHashForBots && hash === '0' && g.members.has(me.id);
    if (hash !== hashOf(me.id, id) && !zeroOk) return fault(400, 'CHANNEL_INVALID');
    if (!g.members.has(me.id)) return fault(406, 'CHANNEL_PRIVATE');
    return g;
  }

  function userFrom(input: unknown, me: Account): Account {
    if (input instanceof Api.InputUserSelf || input instanceof Api.InputPeerSelf) return me;
    if (input instanceof Api.InputUser || input instanceof Api.InputPeerUser) {
      const id = input.userId.toString();
      const u = accounts.get(id);
      if (!u || input.accessHash.toString() !== hashOf(me.id, id)) return fault(400, 'USER_ID_INVALID');
      return u;
    }
    return fault(400, 'USER_ID_INVALID');
  }

  function can(g: Group, userId: string, right: keyof Rights): boolean {
    const m = g.members.get(userId);
    return !!m && (m.role === 'creator' || (m.role === 'admin' && m.rights[right]));
  }

  function floodCheck(me: Account, g: Group): void {
    const t = now();
    const key = `${me.id}:${g.channelId}`;
    const w = sendLog.get(key) ?? [];
    while (w.length && w[0]! <= t - 60_000) w.shift();
    if (w.length >= perGroupPerMinute) {
      counters.floodWaits += 1;
      fault(420, `FLOOD_WAIT_${Math.max(1, Math.ceil((w[w.length - perGroupPerMinute]! + 60_000 - t) / 1000))}`);
    }
    const a = accountLog.get(me.id) ?? [];
    while (a.length && a[0]! <= t - 1000) a.shift();
    if (a.length >= perAccountPerSecond) {
      counters.floodWaits += 1;
      fault(420, `FLOOD_WAIT_${Math.max(1, Math.ceil((a[a.length - perAccountPerSecond]! + 1000 - t) / 1000))}`);
    }
    if (g.slowModeSeconds > 0 && !can(g, me.id, 'deleteMessages')) {
      const last = g.lastSendBy.get(me.id);
      if (last !== undefined && t - last < g.slowModeSeconds * 1000) fault(420, `SLOWMODE_WAIT_${Math.ceil((last + g.slowModeSeconds * 1000 - t) / 1000)}`);
    }
    w.push(t);
    a.push(t);
    sendLog.set(key, w);
    accountLog.set(me.id, a);
    g.lastSendBy.set(me.id, t);
  }

  function append(g: Group, m: Omit<Msg, 'id' | 'at' | 'pinned'> & { id?: number }): Msg {
    const msg: Msg = { ...m, id: m.id ?? g.nextId++, at: now(), pinned: false };
    g.messages.set(msg.id, msg);
    let t = g.byTopic.get(msg.topicId);
    if (!t) g.byTopic.set(msg.topicId, (t = new Map()));
    t.set(msg.id, msg);
    g.pts += 1;
    return msg;
  }

  /** Where a message with this reply_to lands: its topic, or General. */
  function topicFor(g: Group, replyTo: unknown): { topicId: number; replyToMsgId: number | null } {
    if (!(replyTo instanceof Api.InputReplyToMessage)) return { topicId: GENERAL, replyToMsgId: null };
    const to = replyTo.replyToMsgId;
    const top = replyTo.topMsgId;
    if (!g.forum) return { topicId: GENERAL, replyToMsgId: to };
    if (g.deletedTopics.has(to) || (given(top) && g.deletedTopics.has(top))) return fault(400, 'TOPIC_DELETED');
    if (g.topics.has(to)) {
      if (given(top) && top !== to) return fault(400, 'TOPIC_ID_INVALID');
      return { topicId: to, replyToMsgId: to };
    }
    const target = g.messages.get(to);
    if (target) return { topicId: target.topicId, replyToMsgId: to };
    if (given(top) && g.topics.has(top)) return { topicId: top, replyToMsgId: null };
    return fault(400, 'REPLY_MESSAGE_ID_INVALID');
  }

  function checkRandom(g: Group, me: Account, randomId: unknown): string {
    const r = String(randomId ?? '');
    if (!r || r === '0') return fault(400, 'RANDOM_ID_EMPTY');
    if (g.randomIds.has(`${me.id}:${r}`)) return fault(400, 'RANDOM_ID_DUPLICATE');
    return r;
  }

  // ------------------------------------------------------------------ methods

  type Handler = (req: any, me: Account, v: Viewer) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Methods added by extensions (private chats with bots, private.ts); they take precedence. */
  const extra: Record<string, Handler> = {};

  const methods: Record<string, Handler> = {
    'users.GetUsers': (req: Api.users.GetUsers, me) => (req.id as unknown[]).map((i) => userTl(userFrom(i, me), me.id)),

    'updates.GetState': () => new Api.updates.State({ pts: 1, qts: 0, date: sec(now()), seq: 0, unreadCount: 0 }),

    'messages.GetDialogs': (_req: Api.messages.GetDialogs, me) => {
      const mine = [...groups.values()].filter((g) => g.members.has(me.id));
      const last = mine.flatMap((g) => {
        const m = [...g.messages.values()].at(-1);
        return m ? [{ g, m }] : [];
      });
      return new Api.messages.Dialogs({
        dialogs: mine.map((g) => new Api.Dialog({ peer: new Api.PeerChannel({ channelId: big(g.channelId) }), topMessage: g.nextId - 1, readInboxMaxId: g.nextId - 1, readOutboxMaxId: g.nextId - 1, unreadCount: 0, unreadMentionsCount: 0, unreadReactionsCount: 0, notifySettings: new Api.PeerNotifySettings({}) })),
        messages: last.map(({ g, m }) => messageTl(g, m, me.id)),
        chats: mine.map((g) => channelTl(g, me.id)),
        users: usersOf(last.map(({ m }) => m.fromId), me.id),
      });
    },

    'channels.GetChannels': (req: Api.channels.GetChannels, me) => new Api.messages.Chats({ chats: (req.id as unknown[]).map((i) => channelTl(channelFrom(i, me), me.id)) }),

    'channels.CreateForumTopic': (req: Api.channels.CreateForumTopic, me, v) => {
      const g = channelFrom(req.channel, me);
      if (!g.forum) return fault(400, 'CHANNEL_FORUM_MISSING');
      if (!can(g, me.id, 'manageTopics')) return fault(400, 'CHAT_ADMIN_REQUIRED');
      const title = req.title ?? '';
      if (!title.trim()) return fault(400, 'TOPIC_TITLE_EMPTY');
      if (utf8Length(title) > 128) return fault(400, 'TOPIC_TITLE_TOO_LONG');
      const color = req.iconColor ?? TOPIC_ICON_COLORS[0];
      if (!(TOPIC_ICON_COLORS as readonly number[]).includes(color)) return fault(400, 'TOPIC_ICON_COLOR_INVALID');
      const r = checkRandom(g, me, req.randomId);
      floodCheck(me, g);
      // The service message that creates a topic belongs to it: its id is the topic id.
      const msg = append(g, { id: g.nextId, fromId: me.id, text: '', topicId: g.nextId, replyToMsgId: null, mentions: [], action: { kind: 'topic_create', title, iconColor: color } });
      g.nextId = msg.id + 1;
      g.topics.set(msg.id, { id: msg.id, title, iconColor: color, closed: false, createdAt: msg.at, creatorId: me.id });
      g.randomIds.set(`${me.id}:${r}`, msg.id);
      counters.topicCreations.push({ channelId: g.channelId, topicId: msg.id, title, at: msg.at, seq: ++creationSeq });
      broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer), v);
      return newMessageUpdates(g, [msg], me.id, [new Api.UpdateMessageID({ id: msg.id, randomId: big(r) })]);
    },

    'channels.EditForumTopic': (req: Api.channels.EditForumTopic, me, v) => {
      const g = channelFrom(req.channel, me);
      if (!g.forum) return fault(400, 'CHANNEL_FORUM_MISSING');
      const topic = g.topics.get(req.topicId);
      if (!topic) return fault(400, 'TOPIC_ID_INVALID');
      if (topic.creatorId !== me.id && !can(g, me.id, 'manageTopics')) return fault(400, 'CHAT_ADMIN_REQUIRED');
      if (given(req.closed) && (given(req.title) || given(req.iconEmojiId))) return fault(400, 'TOPIC_CLOSE_SEPARATELY');
      if (given(req.closed) && req.closed === topic.closed) return fault(400, 'TOPIC_NOT_MODIFIED');
      if (given(req.title) && (!req.title.trim() || utf8Length(req.title) > 128)) return fault(400, 'TOPIC_TITLE_EMPTY');
      floodCheck(me, g);
      if (given(req.closed)) topic.closed = req.closed;
      if (given(req.title)) topic.title = req.title;
      const msg = append(g, { fromId: me.id, text: '', topicId: topic.id, replyToMsgId: topic.id, mentions: [], action: { kind: 'topic_edit', ...(given(req.closed) ? { closed: req.closed } : {}), ...(given(req.title) ? { title: req.title } : {}) } });
      broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer), v);
      return newMessageUpdates(g, [msg], me.id);
    },

    'channels.GetForumTopics': (req: Api.channels.GetForumTopics, me) => {
      const g = channelFrom(req.channel, me);
      if (!g.forum) return fault(400, 'CHANNEL_FORUM_MISSING');
      const q = (req.q ?? '').toLowerCase();
      let list = [...g.topics.values()].filter((t) => !q || t.title.toLowerCase().includes(q)).sort((a, b) => b.id - a.id);
      if (req.offsetTopic) list = list.filter((t) => t.id < req.offsetTopic);
      return forumTopicsTl(g, list.slice(0, Math.max(1, Math.min(100, req.limit || 100))), me.id, list.length);
    },

    'channels.GetForumTopicsByID': (req: Api.channels.GetForumTopicsByID, me) => {
      const g = channelFrom(req.channel, me);
      if (!g.forum) return fault(400, 'CHANNEL_FORUM_MISSING');
      if (!req.topics.length) return fault(400, 'TOPICS_EMPTY');
      const list = req.topics.flatMap((id) => (g.topics.has(id) ? [g.topics.get(id)!] : []));
      return forumTopicsTl(g, list, me.id, list.length);
    },

    'messages.SendMessage': (req: Api.messages.SendMessage, me, v) => {
      const g = channelFrom(req.peer, me);
      const text = req.message ?? '';
      if (!text.trim()) return fault(400, 'MESSAGE_EMPTY');
      if (text.length > 4096) return fault(400, 'MESSAGE_TOO_LONG');
      const { topicId, replyToMsgId } = topicFor(g, req.replyTo);
      const topic = g.topics.get(topicId);
      if (topic?.closed && topic.creatorId !== me.id && !can(g, me.id, 'manageTopics')) return fault(400, 'TOPIC_CLOSED');
      const mentions = (req.entities ?? []).flatMap((e) => {
        if (e instanceof Api.InputMessageEntityMentionName) {
          const u = userFrom(e.userId, me);
          if (e.offset < 0 || e.length <= 0 || e.offset + e.length > text.length) return fault(400, 'ENTITY_BOUNDS_INVALID');
          return [{ offset: e.offset, length: e.length, userId: u.id }];
        }
        return [];
      });
      // "@username" in the text mentions that user, as Telegram parses it server-side.
      for (const m of text.matchAll(/@([A-Za-z0-9_]{5,32})/g)) {
        const u = [...accounts.values()].find((a) => a.username?.toLowerCase() === m[1]!.toLowerCase());
        if (u) mentions.push({ offset: m.index, length: m[0].length, userId: u.id });
      }
      const r = checkRandom(g, me, req.randomId);
      floodCheck(me, g);
      const msg = append(g, { fromId: me.id, text, topicId, replyToMsgId, mentions, action: null });
      g.randomIds.set(`${me.id}:${r}`, msg.id);
      broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer), v);
      return newMessageUpdates(g, [msg], me.id, [new Api.UpdateMessageID({ id: msg.id, randomId: big(r) })]);
    },

    'messages.UpdatePinnedMessage': (req: Api.messages.UpdatePinnedMessage, me, v) => {
      const g = channelFrom(req.peer, me);
      if (!can(g, me.id, 'pinMessages')) return fault(400, 'CHAT_ADMIN_REQUIRED');
      const target = g.messages.get(req.id);
      if (!target || target.action) return fault(400, 'MESSAGE_ID_INVALID');
      const pinned = !req.unpin;
      if (target.pinned === pinned) return fault(400, 'PINNED_NOT_MODIFIED');
      floodCheck(me, g);
      target.pinned = pinned;
      const extra = [new Api.UpdatePinnedChannelMessages({ pinned, channelId: big(g.channelId), messages: [target.id], pts: g.pts, ptsCount: 1 })];
      if (!pinned) {
        broadcast(g, (viewer) => new Api.Updates({ updates: extra, users: [], chats: [channelTl(g, viewer)], date: sec(now()), seq: 0 }), v);
        return new Api.Updates({ updates: extra, users: [], chats: [channelTl(g, me.id)], date: sec(now()), seq: 0 });
      }
      const msg = append(g, { fromId: me.id, text: '', topicId: target.topicId, replyToMsgId: target.id, mentions: [], action: { kind: 'pin', messageId: target.id } });
      broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer, extra), v);
      return newMessageUpdates(g, [msg], me.id, extra);
    },

    'messages.GetReplies': (req: Api.messages.GetReplies, me) => {
      const g = channelFrom(req.peer, me);
      const root = Number(req.msgId);
      if (g.deletedTopics.has(root)) return fault(400, 'TOPIC_DELETED');
      if (!g.topics.has(root) && !g.messages.has(root)) return fault(400, 'MSG_ID_INVALID');
      let list = [...g.messages.values()].filter((m) => m.topicId === root && m.id !== root).sort((a, b) => b.id - a.id);
      if (req.minId) list = list.filter((m) => m.id > req.minId);
      if (req.maxId) list = list.filter((m) => m.id < req.maxId);
      if (req.offsetId) list = list.filter((m) => m.id < req.offsetId);
      const page = list.slice(0, Math.max(1, Math.min(100, req.limit || 20)));
      return channelMessagesTl(g, page, me.id, list.length);
    },

    'channels.GetMessages': (req: Api.channels.GetMessages, me) => {
      const g = channelFrom(req.channel, me);
      const ids = (req.id as unknown[]).map((i) => (i instanceof Api.InputMessageID ? i.id : fault(400, 'MESSAGE_IDS_EMPTY')));
      if (ids.length > 200) return fault(400, 'LIMIT_INVALID');
      const found = ids.map((id) => g.messages.get(id) ?? id);
      return new Api.messages.ChannelMessages({
        pts: g.pts,
        count: found.length,
        messages: found.map((m) => (typeof m === 'number' ? new Api.MessageEmpty({ id: m }) : messageTl(g, m, me.id))),
        topics: [],
        chats: [channelTl(g, me.id)],
        users: usersOf(found.flatMap((m) => (typeof m === 'number' ? [] : [m.fromId])), me.id),
      });
    },

    'channels.GetParticipants': (req: Api.channels.GetParticipants, me) => {
      const g = channelFrom(req.channel, me);
      const q = req.filter instanceof Api.ChannelParticipantsSearch ? req.filter.q.toLowerCase() : '';
      const list = [...g.members.values()].filter((m) => {
        const u = accounts.get(m.userId);
        return !q || `${u?.firstName ?? ''} ${u?.lastName ?? ''} ${u?.username ?? ''}`.toLowerCase().includes(q);
      });
      const page = list.slice(req.offset ?? 0, (req.offset ?? 0) + Math.min(200, req.limit || 200));
      return new Api.channels.ChannelParticipants({ count: list.length, participants: page.map((m) => participantTl(m, me.id)), chats: [], users: usersOf(page.map((m) => m.userId), me.id) });
    },

    'channels.GetParticipant': (req: Api.channels.GetParticipant, me) => {
      const g = channelFrom(req.channel, me);
      const u = userFrom(req.participant, me);
      const m = g.members.get(u.id);
      if (!m) return fault(400, 'USER_NOT_PARTICIPANT');
      return new Api.channels.ChannelParticipant({ participant: participantTl(m, me.id), chats: [], users: usersOf([u.id], me.id) });
    },

    'channels.InviteToChannel': (req: Api.channels.InviteToChannel, me, v) => {
      const g = channelFrom(req.channel, me);
      if (!can(g, me.id, 'inviteUsers')) return fault(403, 'CHAT_ADMIN_REQUIRED');
      const users = (req.users as unknown[]).map((i) => userFrom(i, me));
      const added = users.filter((u) => !g.members.has(u.id));
      if (!added.length) return fault(400, 'USER_ALREADY_PARTICIPANT');
      for (const u of added) g.members.set(u.id, { userId: u.id, role: 'member', rights: { ...NO_RIGHTS }, joinedAt: now(), inviterId: me.id });
      const msg = append(g, { fromId: me.id, text: '', topicId: GENERAL, replyToMsgId: null, mentions: [], action: { kind: 'add_user', userIds: added.map((u) => u.id) } });
      broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer), v);
      return new Api.messages.InvitedUsers({ updates: newMessageUpdates(g, [msg], me.id), missingInvitees: [] });
    },

    'contacts.GetContacts': (_req: Api.contacts.GetContacts, me) => {
      const ids = [...me.contacts];
      return new Api.contacts.Contacts({ contacts: ids.map((id) => new Api.Contact({ userId: big(id), mutual: true })), savedCount: 0, users: usersOf(ids, me.id) });
    },

    'contacts.ResolveUsername': (req: Api.contacts.ResolveUsername, me) => {
      const u = [...accounts.values()].find((a) => a.username?.toLowerCase() === (req.username ?? '').toLowerCase());
      if (!u) return fault(400, 'USERNAME_NOT_OCCUPIED');
      return new Api.contacts.ResolvedPeer({ peer: new Api.PeerUser({ userId: big(u.id) }), chats: [], users: [userTl(u, me.id)] });
    },
  };

  function participantTl(m: Member, viewer: string): Api.TypeChannelParticipant {
    if (m.role === 'creator') return new Api.ChannelParticipantCreator({ userId: big(m.userId), adminRights: rightsTl(m.rights) });
    if (m.role === 'admin') return new Api.ChannelParticipantAdmin({ userId: big(m.userId), promotedBy: big(m.inviterId ?? m.userId), date: sec(m.joinedAt), adminRights: rightsTl(m.rights), self: m.userId === viewer, ...(m.userId === viewer ? { inviterId: big(m.inviterId ?? m.userId) } : {}) });
    if (m.userId === viewer) return new Api.ChannelParticipantSelf({ userId: big(m.userId), inviterId: big(m.inviterId ?? m.userId), date: sec(m.joinedAt) });
    return new Api.ChannelParticipant({ userId: big(m.userId), date: sec(m.joinedAt) });
  }

  function forumTopicsTl(g: Group, list: Topic[], viewer: string, count: number): Api.messages.ForumTopics {
    const tops = list.map((t) => [...g.messages.values()].filter((m) => m.topicId === t.id).at(-1) ?? g.messages.get(t.id)!);
    return new Api.messages.ForumTopics({
      count,
      topics: list.map(
        (t, i) =>
          new Api.ForumTopic({
            id: t.id,
            date: sec(t.createdAt),
            title: t.title,
            iconColor: t.iconColor,
            topMessage: tops[i]!.id,
            readInboxMaxId: tops[i]!.id,
            readOutboxMaxId: tops[i]!.id,
            unreadCount: 0,
            unreadMentionsCount: 0,
            unreadReactionsCount: 0,
            fromId: new Api.PeerUser({ userId: big(t.creatorId) }),
            notifySettings: new Api.PeerNotifySettings({}),
            my: t.creatorId === viewer,
            closed: t.closed,
          }),
      ),
      messages: tops.map((m) => messageTl(g, m, viewer)),
      chats: [channelTl(g, viewer)],
      users: usersOf([...list.map((t) => t.creatorId), ...tops.map((m) => m.fromId)], viewer),
      pts: g.pts,
    });
  }

  function channelMessagesTl(g: Group, list: Msg[], viewer: string, count: number): Api.messages.ChannelMessages {
    return new Api.messages.ChannelMessages({ pts: g.pts, count, messages: list.map((m) => messageTl(g, m, viewer)), topics: [], chats: [channelTl(g, viewer)], users: usersOf(list.map((m) => m.fromId), viewer) });
  }

  // ------------------------------------------------------------------ dispatch

  /** Answers one decoded request from a connection. */
  function handle(v: Viewer, req: { className: string } & Record<string, unknown>): Outcome {
    const name = req.className;
    counters.requests.set(name, (counters.requests.get(name) ?? 0) + 1);
    try {
      if (name === 'auth.ImportBotAuthorization') {
        const id = botTokens.get(String(req.botAuthToken));
        if (!id) return { error: { code: 400, message: 'ACCESS_TOKEN_INVALID' } };
        v.accountId = id;
        return { result: new Api.auth.Authorization({ user: userTl(accounts.get(id)!, id) }) };
      }
      const me = account(v);
      const channelId = channelIdOf(req);
      const f = faults.find((x) => x.times > 0 && (!x.method || x.method === name) && (!x.channelId || x.channelId === channelId));
      if (f) {
        f.times -= 1;
        if (f.error.startsWith('FLOOD_WAIT_')) counters.floodWaits += 1;
        return { error: { code: f.code ?? (/^(FLOOD|SLOWMODE)_/.test(f.error) ? 420 : 400), message: f.error } };
      }
      if (me.bot && USER_ONLY.has(name)) return { error: { code: 400, message: 'BOT_METHOD_INVALID' } };
      const h = extra[name] ?? methods[name];
      if (!h) {
        counters.unhandled.set(name, (counters.unhandled.get(name) ?? 0) + 1);
        return { error: { code: 400, message: 'INPUT_METHOD_INVALID' } };
      }
      const result = h(req, me, v);
      const drops = dropNext.get(name) ?? 0;
      if (drops > 0) {
        dropNext.set(name, drops - 1);
        return { drop: true };
      }
      return { result };
    } catch (err) {
      if (err instanceof RpcFault) return { error: { code: err.code, message: err.message } };
      throw err;
    }
  }

  function channelIdOf(req: Record<string, unknown>): string | undefined {
    const c = (req.channel ?? req.peer) as { channelId?: { toString(): string } } | undefined;
    return c?.channelId?.toString();
  }

  // ------------------------------------------------------------------ agent side (what a person does in Telegram)

  function agentPost(channelId: string, topicId: number, userId: string, text: string): Msg {
    const g = mustGroup(channelId);
    const u = accounts.get(userId);
    if (!u) throw new Error(`sandbox: no Telegram user ${userId}`);
    if (!g.members.has(userId)) throw new Error(`sandbox: ${u.firstName} is not a member of "${g.title}"; invite them first`);
    if (g.deletedTopics.has(topicId) || (topicId !== GENERAL && !g.topics.has(topicId))) throw new Error(`sandbox: topic ${topicId} does not exist in "${g.title}"`);
    const t = g.topics.get(topicId);
    if (t?.closed && !can(g, userId, 'manageTopics')) throw new Error('sandbox: the topic is closed (TOPIC_CLOSED)');
    const msg = append(g, { fromId: userId, text, topicId, replyToMsgId: topicId === GENERAL ? null : topicId, mentions: [], action: null });
    broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer));
    return msg;
  }

  function agentCloseTopic(channelId: string, topicId: number, userId: string): void {
    const g = mustGroup(channelId);
    const t = g.topics.get(topicId);
    if (!t) throw new Error(`sandbox: topic ${topicId} does not exist in "${g.title}"`);
    if (t.creatorId !== userId && !can(g, userId, 'manageTopics')) throw new Error('sandbox: only admins with "Manage topics" can close a topic (CHAT_ADMIN_REQUIRED)');
    if (t.closed) return;
    t.closed = true;
    const msg = append(g, { fromId: userId, text: '', topicId, replyToMsgId: topicId, mentions: [], action: { kind: 'topic_edit', closed: true } });
    broadcast(g, (viewer) => newMessageUpdates(g, [msg], viewer));
  }

  function deleteTopic(channelId: string, topicId: number): void {
    const g = mustGroup(channelId);
    if (!g.topics.delete(topicId)) throw new Error(`sandbox: topic ${topicId} does not exist`);
    g.deletedTopics.add(topicId);
    const ids = [...(g.byTopic.get(topicId)?.keys() ?? [])];
    for (const id of ids) g.messages.delete(id);
    g.byTopic.delete(topicId);
    broadcast(g, (viewer) => new Api.Updates({ updates: [new Api.UpdateDeleteChannelMessages({ channelId: big(g.channelId), messages: ids, pts: g.pts, ptsCount: ids.length })], users: [], chats: [channelTl(g, viewer)], date: sec(now()), seq: 0 }));
  }

  function setOnline(userId: string, online: boolean): void {
    const u = accounts.get(userId);
    if (!u) throw new Error(`sandbox: no Telegram user ${userId}`);
    if (!online && u.online) u.wasOnline = now();
    u.online = online;
    for (const v of viewers) {
      if (!v.accountId || !v.isUp()) continue;
      const viewer = accounts.get(v.accountId);
      if (!viewer || viewer.bot || viewer.id === userId) continue; // bots never receive presence
      const shares = viewer.contacts.has(userId) || [...groups.values()].some((g) => g.members.has(viewer.id) && g.members.has(userId));
      if (!shares) continue;
      v.push(new Api.UpdateShort({ update: new Api.UpdateUserStatus({ userId: big(userId), status: statusTl(u) }), date: sec(now()) }));
    }
  }

  return {
    accounts,
    groups,
    viewers,
    botTokens,
    faults,
    dropNext,
    counters,
    addAccount,
    addGroup,
    setMember,
    mustGroup,
    handle,
    agentPost,
    agentCloseTopic,
    deleteTopic,
    setOnline,
    hashOf,
    limits: { perGroupPerMinute, perAccountPerSecond },
    /** What an extension (private.ts) builds on: its methods, and the world's own TL views and checks. */
    ext: { methods: extra, base: methods, userTl, usersOf, channelTl, messageTl, mediaTl, newMessageUpdates, channelFrom, userFrom, checkRandom, floodCheck, append, broadcast, can, fault, big, sec, now },
  };
}
