// The Telegram sandbox: a stateful stand-in for Telegram that the connector reaches through GramJS itself (see
// sender.ts). It powers `npm start` without credentials (the console's "sandbox forum" acts as agents through it) and
// the tests and the burst benchmark (with a manual clock).
import type { TelegramClient } from 'telegram';
import type { Clock } from '../../../core/ports.ts';
import type { SandboxAgent, SandboxForum, SandboxGroup, SandboxMessage, SandboxTopic } from '../../../server/contracts.ts';
import { toTimers, type Timers } from '../clock.ts';
import { SANDBOX_AGENTS, SANDBOX_BOT, SANDBOX_BOT_TOKEN, SANDBOX_CUSTOMERS, SANDBOX_GROUPS, SANDBOX_SERVICE_USER } from './seed.ts';
import { installPrivateChats, type PrivateChats } from './private.ts';
import { SandboxConnection } from './sender.ts';
import { createWorld, type Fault, type Msg, type Outcome, type Rights, type Viewer } from './world.ts';

export { SANDBOX_AGENTS, SANDBOX_BOT, SANDBOX_BOT_TOKEN, SANDBOX_CUSTOMERS, SANDBOX_GROUPS, SANDBOX_SERVICE_USER } from './seed.ts';
export type { PrivateChats, CustomerView, CustomerInput } from './private.ts';

export type TelegramSandboxOptions = {
  /** Seed the three forum groups (vip, support-1, support-2), the service account, the bot and nine agents. */
  seed?: boolean;
  /** Delay of every answer and update, for the end-to-end benchmark. */
  latencyMs?: number;
  /** A manual clock (clock.ts) for tests and the benchmark; real time otherwise. */
  clock?: Clock;
  limits?: { perGroupPerMinute?: number; perAccountPerSecond?: number };
  botsMayUseZeroAccessHash?: boolean;
};

export type TelegramSandbox = SandboxForum & {
  readonly kind: 'telegram-sandbox';
  readonly timers: Timers;
  readonly serviceUserId: string;
  readonly botUserId: string;
  readonly botToken: string;
  /** Private chats with the bot: the customer's side of the intake form (tests and the console's simulated chat). */
  readonly chats?: PrivateChats;
  /** Connects a GramJS client: as the service user account, or unauthorised until it signs in with the bot token. */
  attach(client: TelegramClient, as: 'user' | 'bot'): SandboxConnection;
  addGroup(g: { id: string; channelId: string; title: string; forum?: boolean; members?: string[] }): SandboxGroup;
  setForum(channelId: string, forum: boolean): void;
  setMember(channelId: string, userId: string, role: 'creator' | 'admin' | 'member' | null, rights?: Partial<Rights>): void;
  isMember(channelId: string, userId: string): boolean;
  setSlowMode(channelId: string, seconds: number): void;
  deleteTopic(channelId: string, topicId: number): void;
  /** Makes the next matching requests fail with this RPC error (e.g. FLOOD_WAIT_120, SLOWMODE_WAIT_10). */
  injectError(f: { method?: string; channelId?: string; error: string; code?: number; times?: number }): void;
  /** The next request of this method is carried out but its answer never arrives (a crash or a cut right after). */
  dropNextResponse(method: string): void;
  /** Cuts every live connection (updates sent meanwhile are lost) / brings them back. */
  cutConnections(): void;
  restoreConnections(): void;
  /** Every message in a group, General included, oldest first. */
  allMessages(channelId: string): (SandboxMessage & { topicId: number; kind: 'text' | 'topic_create' | 'topic_edit' | 'pin' | 'add_user'; mentions: string[] })[];
  topicCreations(): { channelId: string; topicId: number; title: string; at: number; seq: number }[];
  stats(): { requests: Record<string, number>; floodWaits: number; unhandled: Record<string, number>; serialisationErrors: string[] };
  /** Lets a connection from another process (remote.ts) into this world: a viewer whose decoded requests it answers. */
  host(viewer: Viewer): { handle(req: { className: string } & Record<string, unknown>): Outcome; serialiseError(err: unknown): void; close(): void };
};

export function createTelegramSandbox(opts: TelegramSandboxOptions = {}): TelegramSandbox {
  const timers = toTimers(opts.clock);
  const world = createWorld({ timers, ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.botsMayUseZeroAccessHash !== undefined ? { botsMayUseZeroAccessHash: opts.botsMayUseZeroAccessHash } : {}) });
  const latencyMs = opts.latencyMs ?? 0;
  const serialisationErrors: string[] = [];
  const connections = new Set<SandboxConnection>();

  const svc = world.addAccount({ id: SANDBOX_SERVICE_USER.id, firstName: SANDBOX_SERVICE_USER.firstName, lastName: SANDBOX_SERVICE_USER.lastName, username: SANDBOX_SERVICE_USER.username, bot: false, online: true });
  world.addAccount({ id: SANDBOX_BOT.id, firstName: SANDBOX_BOT.firstName, username: SANDBOX_BOT.username, bot: true });
  world.botTokens.set(SANDBOX_BOT_TOKEN, SANDBOX_BOT.id);
  for (const a of SANDBOX_AGENTS) {
    world.addAccount({ id: a.id, firstName: a.firstName, lastName: a.lastName, username: a.username, bot: false, online: true });
    svc.contacts.add(a.id);
  }

  const agentIds = SANDBOX_AGENTS.map((a) => a.id);
  const addGroup = (g: { id: string; channelId: string; title: string; forum?: boolean; members?: string[] }): SandboxGroup => {
    world.addGroup({ configId: g.id, channelId: g.channelId, title: g.title, forum: g.forum ?? true, creatorId: svc.id });
    world.setMember(g.channelId, SANDBOX_BOT.id, 'admin', { manageTopics: true, pinMessages: true, deleteMessages: true, inviteUsers: true, changeInfo: false });
    // Support agents are admins with "Manage topics": they may close topics and write in closed ones.
    for (const id of g.members ?? agentIds) world.setMember(g.channelId, id, 'admin', { manageTopics: true, pinMessages: true, deleteMessages: false, inviteUsers: false, changeInfo: false });
    return { id: g.id, channelId: g.channelId, title: g.title, forum: g.forum ?? true };
  };
  if (opts.seed !== false) for (const g of SANDBOX_GROUPS) addGroup({ id: g.id, channelId: g.channelId, title: g.title });
  const chats = installPrivateChats(world);
  if (opts.seed !== false) for (const c of SANDBOX_CUSTOMERS) chats.addCustomer({ id: c.id, firstName: c.firstName, lastName: c.lastName, langCode: c.langCode, phone: c.phone });

  const name = (id: string) => {
    const a = world.accounts.get(id);
    return a ? [a.firstName, a.lastName].filter(Boolean).join(' ') : id;
  };
  const toMessage = (m: Msg): SandboxMessage => ({ id: m.id, fromUserId: m.fromId, fromName: name(m.fromId), text: m.text, at: m.at, pinned: m.pinned });
  const kindOf = (m: { action: { kind: string } | null }) => (m.action?.kind ?? 'text') as 'text' | 'topic_create' | 'topic_edit' | 'pin' | 'add_user';

  return {
    kind: 'telegram-sandbox',
    timers,
    serviceUserId: svc.id,
    botUserId: SANDBOX_BOT.id,
    botToken: SANDBOX_BOT_TOKEN,
    chats,

    attach(client, as) {
      const conn = new SandboxConnection({ world, client, accountId: as === 'user' ? svc.id : null, timers, latencyMs, onSerialiseError: (err) => serialisationErrors.push(err instanceof Error ? err.message : String(err)) });
      conn.install();
      connections.add(conn);
      return conn;
    },

    // ---------------------------------------------------------------- SandboxForum (console page, generator)
    groups: () => [...world.groups.values()].map((g) => ({ id: g.configId, channelId: g.channelId, title: g.title, forum: g.forum })),
    topics(channelId): SandboxTopic[] {
      const g = world.groups.get(channelId);
      if (!g) return [];
      return [...g.topics.values()]
        .sort((a, b) => b.id - a.id)
        .map((t) => ({ topicId: t.id, title: t.title, iconColor: t.iconColor, closed: t.closed, createdAt: t.createdAt, messageCount: [...(g.byTopic.get(t.id)?.values() ?? [])].filter((m) => !m.action).length }));
    },
    messages(channelId, topicId, limit = 50) {
      const g = world.groups.get(channelId);
      if (!g) return [];
      return [...(g.byTopic.get(topicId)?.values() ?? [])]
        .filter((m) => !m.action)
        .slice(-limit)
        .map(toMessage);
    },
    agents: (): SandboxAgent[] => SANDBOX_AGENTS.map((a) => ({ telegramUserId: a.id, name: `${a.firstName} ${a.lastName}`, online: world.accounts.get(a.id)!.online })),
    async reply(channelId, topicId, userId, text) {
      world.agentPost(channelId, topicId, userId, text);
    },
    async closeTopic(channelId, topicId, userId) {
      world.agentCloseTopic(channelId, topicId, userId);
    },
    async setOnline(userId, online) {
      world.setOnline(userId, online);
    },

    // ---------------------------------------------------------------- test and benchmark drivers
    addGroup,
    setForum: (channelId, forum) => void (world.mustGroup(channelId).forum = forum),
    setMember: (channelId, userId, role, rights) => world.setMember(channelId, userId, role, rights),
    isMember: (channelId, userId) => world.mustGroup(channelId).members.has(userId),
    setSlowMode: (channelId, seconds) => void (world.mustGroup(channelId).slowModeSeconds = seconds),
    deleteTopic: (channelId, topicId) => world.deleteTopic(channelId, topicId),
    injectError: (f) => void world.faults.push({ ...f, times: f.times ?? 1 } as Fault),
    dropNextResponse: (method) => void world.dropNext.set(method, (world.dropNext.get(method) ?? 0) + 1),
    cutConnections: () => connections.forEach((c) => c.cut()),
    restoreConnections: () => connections.forEach((c) => c.restore()),
    allMessages(channelId) {
      const g = world.mustGroup(channelId);
      return [...g.messages.values()].map((m) => ({ ...toMessage(m), topicId: m.topicId, kind: kindOf(m), mentions: m.mentions.map((x) => x.userId) }));
    },
    topicCreations: () => [...world.counters.topicCreations],
    stats: () => ({ requests: Object.fromEntries(world.counters.requests), floodWaits: world.counters.floodWaits, unhandled: Object.fromEntries(world.counters.unhandled), serialisationErrors: [...serialisationErrors] }),
    host(viewer) {
      world.viewers.add(viewer);
      return {
        handle: (req) => world.handle(viewer, req),
        serialiseError: (err) => void serialisationErrors.push(err instanceof Error ? err.message : String(err)),
        close: () => void world.viewers.delete(viewer),
      };
    },
  };
}
