// Access hashes: Telegram wants (id, access_hash) for every channel and user we address, the hash differs per account,
// and GramJS's StringSession does not keep them. They are persisted in the store (kv) per account, so a restart, a
// second process or a fresh session of the same account can address groups and mention agents at once.
import type { Store } from '../../core/ports.ts';

export const NS_PEERS = 'telegram:peers';
export const NS_USERS = 'telegram:users';
export const NS_CURSOR = 'telegram:cursor';

export type ChannelRights = { manageTopics: boolean; pinMessages: boolean; inviteUsers: boolean };
export type ChannelPeer = { account: string; groupId: string; channelId: string; accessHash: string; title: string; forum: boolean; rights: ChannelRights; linkedAt: number };
export type UserPeer = { account: string; userId: string; accessHash: string; username: string | null; name: string };

export type PeerDirectory = ReturnType<typeof createPeerDirectory>;

export function createPeerDirectory(store: Store) {
  let account = '';
  const channels = new Map<string, ChannelPeer>(); // by config group id
  const byChannel = new Map<string, string>(); // channel id -> group id
  const users = new Map<string, UserPeer>();
  const cursors = new Map<string, number>(); // channel id -> highest message id seen
  const dirtyCursors = new Set<string>();

  return {
    /** Loads what this account stored before; records of another account (a different login) are ignored. */
    async load(accountId: string): Promise<void> {
      account = accountId;
      channels.clear();
      byChannel.clear();
      users.clear();
      for (const { value } of await store.kvList<ChannelPeer>(NS_PEERS)) {
        if (value.account !== account) continue;
        channels.set(value.groupId, value);
        byChannel.set(value.channelId, value.groupId);
      }
      for (const { value } of await store.kvList<UserPeer>(NS_USERS)) if (value.account === account) users.set(value.userId, value);
      for (const { key, value } of await store.kvList<{ account: string; maxId: number }>(NS_CURSOR)) if (value.account === account) cursors.set(key, value.maxId);
    },
    channel: (groupId: string): ChannelPeer | null => channels.get(groupId) ?? null,
    channels: () => [...channels.values()],
    groupOfChannel: (channelId: string): string | null => byChannel.get(channelId) ?? null,
    async putChannel(p: Omit<ChannelPeer, 'account'>): Promise<ChannelPeer> {
      const rec = { ...p, account };
      const old = channels.get(p.groupId);
      if (old && old.channelId !== p.channelId) byChannel.delete(old.channelId);
      channels.set(p.groupId, rec);
      byChannel.set(p.channelId, p.groupId);
      await store.kvPut(NS_PEERS, p.groupId, rec);
      return rec;
    },
    user: (userId: string): UserPeer | null => users.get(userId) ?? null,
    /** Stores users seen in results and updates; writes only what is new or changed. */
    async putUsers(list: { userId: string; accessHash: string | null; username: string | null; name: string }[]): Promise<void> {
      for (const u of list) {
        if (!u.accessHash) continue;
        const old = users.get(u.userId);
        if (old && old.accessHash === u.accessHash && old.username === u.username && old.name === u.name) continue;
        const rec: UserPeer = { account, userId: u.userId, accessHash: u.accessHash, username: u.username, name: u.name };
        users.set(u.userId, rec);
        await store.kvPut(NS_USERS, u.userId, rec);
      }
    },
    cursor: (channelId: string): number => cursors.get(channelId) ?? 0,
    seen(channelId: string, messageId: number): void {
      if (messageId > (cursors.get(channelId) ?? 0)) {
        cursors.set(channelId, messageId);
        dirtyCursors.add(channelId);
      }
    },
    async flushCursors(): Promise<void> {
      for (const id of [...dirtyCursors]) {
        dirtyCursors.delete(id);
        await store.kvPut(NS_CURSOR, id, { account, maxId: cursors.get(id) ?? 0 });
      }
    },
  };
}
