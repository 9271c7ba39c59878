// Linking configured groups to Telegram channels: where the channel id comes from (config, the sandbox, or the user
// account's dialogs by title), its access hash (persisted), and whether the group can carry tickets (a forum, with the
// admin rights we need). The report is what the console shows, each problem with its fix.
import { AppError } from '../../core/errors.ts';
import type { Group } from '../../core/config.ts';
import { Api, bigId, toAppError } from './client.ts';
import { call, type Ctx } from './context.ts';
import type { ChannelPeer, ChannelRights } from './peers.ts';

export type GroupLinkStatus = {
  groupId: string;
  title: string;
  channelId: string | null;
  linked: boolean;
  forum: boolean | null;
  canManageTopics: boolean | null;
  canPin: boolean | null;
  canInvite: boolean | null;
  ok: boolean;
  /** Each names the problem and the fix. */
  problems: string[];
  warnings: string[];
};

export type LinkReport = { ok: boolean; checkedAt: number; account: { kind: 'user' | 'bot'; id: string; name: string }; groups: GroupLinkStatus[] };

function rightsOf(ch: Api.Channel): ChannelRights {
  if (ch.creator) return { manageTopics: true, pinMessages: true, inviteUsers: true };
  const r = ch.adminRights;
  return { manageTopics: !!r?.manageTopics, pinMessages: !!r?.pinMessages, inviteUsers: !!r?.inviteUsers };
}

/** The channel id the configuration (or the sandbox) names for a group, if any. */
function configuredChannelId(ctx: Ctx, g: Group): string | null {
  if (g.telegramChannelId) return g.telegramChannelId;
  return ctx.sandbox?.groups().find((s) => s.id === g.id)?.channelId ?? null;
}

/** The user account's groups, paging through its dialogs (bots have no dialog list). */
async function dialogChannels(ctx: Ctx): Promise<Api.Channel[]> {
  const out: Api.Channel[] = [];
  let offsetDate = 0;
  let offsetId = 0;
  let offsetPeer: Api.TypeInputPeer = new Api.InputPeerEmpty();
  for (let page = 0; page < 20; page++) {
    const res: Api.messages.TypeDialogs = await call<Api.messages.TypeDialogs>(ctx, { lane: 'account', priority: 50, send: false, label: 'messages.GetDialogs' }, new Api.messages.GetDialogs({ offsetDate, offsetId, offsetPeer, limit: 100, hash: bigId(0) }));
    if (res instanceof Api.messages.DialogsNotModified) break;
    const chans = res.chats.filter((c): c is Api.Channel => c instanceof Api.Channel && !!c.megagroup);
    out.push(...chans);
    if (res instanceof Api.messages.Dialogs || res.dialogs.length < 100) break;
    const last = res.dialogs.at(-1);
    const lastMsg = res.messages.find((m) => last && 'id' in m && m.id === last.topMessage);
    const lastChat: Api.TypeChat | undefined = res.chats.find((c) => last?.peer instanceof Api.PeerChannel && c.id.equals(last.peer.channelId));
    if (!last || !lastMsg || !(lastChat instanceof Api.Channel) || !lastChat.accessHash) break;
    offsetDate = 'date' in lastMsg ? (lastMsg.date ?? 0) : 0;
    offsetId = lastMsg.id;
    offsetPeer = new Api.InputPeerChannel({ channelId: lastChat.id, accessHash: lastChat.accessHash });
  }
  return out;
}

async function fetchChannel(ctx: Ctx, channelId: string, accessHash: string): Promise<Api.Channel | null> {
  try {
    const res = await call<Api.messages.TypeChats>(ctx, { lane: 'account', priority: 50, send: false, label: 'channels.GetChannels' }, new Api.channels.GetChannels({ id: [new Api.InputChannel({ channelId: bigId(channelId), accessHash: bigId(accessHash) })] }));
    const ch = res.chats.find((c) => c instanceof Api.Channel);
    return ch instanceof Api.Channel ? ch : null;
  } catch (err) {
    const e = toAppError(err, 'checking a group');
    if (e.code === 'misconfigured') return null;
    throw e;
  }
}

export function createLinker(ctx: Ctx) {
  let dialogs: Promise<Api.Channel[]> | null = null;
  const inflight = new Map<string, Promise<GroupLinkStatus>>();

  async function linkOne(g: Group): Promise<GroupLinkStatus> {
    const st: GroupLinkStatus = { groupId: g.id, title: g.title, channelId: null, linked: false, forum: null, canManageTopics: null, canPin: null, canInvite: null, ok: false, problems: [], warnings: [] };
    const wanted = configuredChannelId(ctx, g);
    const stored = ctx.peers.channel(g.id);
    let ch: Api.Channel | null = null;

    if (stored && (!wanted || stored.channelId === wanted)) ch = await fetchChannel(ctx, stored.channelId, stored.accessHash);
    if (!ch && ctx.kind === 'user') {
      dialogs ??= dialogChannels(ctx);
      const list = await dialogs;
      ch = list.find((c) => (wanted ? c.id.toString() === wanted : c.title === g.title)) ?? null;
      if (!ch && !wanted) st.problems.push(`No group titled "${g.title}" among the account's chats: add the account to the group, or set telegramChannelId on group "${g.id}" (the number after /c/ in a message link).`);
      if (!ch && wanted) st.problems.push(`The account is not a member of channel ${wanted}: add it to the group (as an admin with "Manage topics", "Pin messages" and "Add members").`);
    }
    if (!ch && ctx.kind === 'bot') {
      if (!wanted) st.problems.push(`Set telegramChannelId on group "${g.id}": a bot cannot look groups up by title (the id is the number after /c/ in a message link).`);
      else {
        // A bot has no dialog list; it can address a group it is in by id (or learns the hash from its updates).
        ch = await fetchChannel(ctx, wanted, '0');
        if (!ch) st.problems.push(`The bot cannot reach channel ${wanted}: add it to the group as an admin with "Manage topics" and "Pin messages"; it links on its first update from the group.`);
      }
    }
    if (!ch || !ch.accessHash) {
      st.channelId = wanted;
      return st;
    }
    const rights = rightsOf(ch);
    const peer: Omit<ChannelPeer, 'account'> = { groupId: g.id, channelId: ch.id.toString(), accessHash: ch.accessHash.toString(), title: ch.title, forum: !!ch.forum, rights, linkedAt: ctx.timers.now() };
    await ctx.peers.putChannel(peer);
    st.channelId = peer.channelId;
    st.linked = true;
    st.forum = peer.forum;
    st.canManageTopics = rights.manageTopics;
    st.canPin = rights.pinMessages;
    st.canInvite = ctx.kind === 'user' ? rights.inviteUsers : false;
    if (!peer.forum) st.problems.push(`"${ch.title}" is not a forum: turn on Topics in the group's settings (Edit → Topics).`);
    if (!rights.manageTopics) st.problems.push(`The ${ctx.kind === 'bot' ? 'bot' : 'account'} is not an admin with "Manage topics" in "${ch.title}": promote it (Edit → Administrators) with Manage topics and Pin messages.`);
    if (!rights.pinMessages) st.warnings.push(`Ticket cards cannot be pinned in "${ch.title}": give the ${ctx.kind === 'bot' ? 'bot' : 'account'} the "Pin messages" admin right.`);
    if (ctx.kind === 'user' && !rights.inviteUsers) st.warnings.push(`Agents who are not members of "${ch.title}" cannot be invited: give the account the "Add members" admin right.`);
    if (ctx.kind === 'bot') st.warnings.push(`A bot cannot invite agents or see their presence: add agents to "${ch.title}" yourself, or use a user account (npm run telegram:login).`);
    st.ok = st.problems.length === 0;
    return st;
  }

  function link(g: Group): Promise<GroupLinkStatus> {
    let p = inflight.get(g.id);
    if (!p) {
      p = linkOne(g).finally(() => inflight.delete(g.id));
      inflight.set(g.id, p);
    }
    return p;
  }

  return {
    async linkGroups(): Promise<LinkReport> {
      dialogs = null;
      const groups = ctx.groups();
      const statuses: GroupLinkStatus[] = [];
      for (const g of groups) {
        try {
          statuses.push(await link(g));
        } catch (err) {
          const e = toAppError(err, `linking group ${g.id}`);
          statuses.push({ groupId: g.id, title: g.title, channelId: configuredChannelId(ctx, g), linked: false, forum: null, canManageTopics: null, canPin: null, canInvite: null, ok: false, problems: [e.message], warnings: [] });
        }
      }
      return { ok: statuses.every((s) => s.ok), checkedAt: ctx.timers.now(), account: { kind: ctx.kind, id: ctx.selfId, name: ctx.selfName }, groups: statuses };
    },

    /** The linked channel of a configured group, linking it on first use. */
    async channelFor(groupId: string): Promise<ChannelPeer> {
      const g = ctx.groups().find((x) => x.id === groupId);
      const stored = ctx.peers.channel(groupId);
      const wanted = g ? configuredChannelId(ctx, g) : null;
      if (stored && (!wanted || stored.channelId === wanted)) return stored;
      if (!g) {
        if (stored) return stored;
        throw new AppError('misconfigured', `Telegram group "${groupId}" is not in the configuration: add it under groups (with its telegramChannelId) or remove it from the queue.`);
      }
      const st = await link(g);
      const peer = ctx.peers.channel(groupId);
      if (!peer || !st.linked) throw new AppError('misconfigured', `Telegram group "${groupId}" is not linked: ${st.problems.join(' ') || 'check the group in the console.'}`);
      return peer;
    },
  };
}

export type Linker = ReturnType<typeof createLinker>;
