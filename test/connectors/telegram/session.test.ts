// The GramJS session Tierline uses: one cached row per peer however many updates mention it, and the newest access
// hash wins (GramJS's own MemorySession adds a copy per update and answers with the oldest; gram-js/gramjs#816).
import bigInt from 'big-integer';
import { Api } from 'telegram';
import { describe, expect, it } from 'vitest';
import { PeerCacheSession } from '../../../connectors/telegram/session.ts';

const user = (id: number, hash: number, username?: string) => new Api.User({ id: bigInt(id), accessHash: bigInt(hash), firstName: 'Alice', lastName: `Meyer ${id}`, ...(username ? { username } : {}) });
const channel = (id: number, hash: number) => new Api.Channel({ id: bigInt(id), accessHash: bigInt(hash), title: `Support ${id}`, photo: new Api.ChatPhotoEmpty(), date: 0, forum: true, megagroup: true });

describe('PeerCacheSession', () => {
  it('keeps one row per peer however often updates mention it', () => {
    const s = new PeerCacheSession('');
    for (let i = 0; i < 5_000; i++) s.processEntities({ users: [user(7000000001, 11, 'alice'), user(7000000002 + (i % 3), 22)], chats: [channel(1500000001, 33)] });
    expect(s.cachedPeers).toBe(5);
  });

  it('answers lookups by id, username, phone and name with the newest access hash', () => {
    const s = new PeerCacheSession('');
    s.processEntities({ users: [user(7000000001, 11, 'alice')], chats: [channel(1500000001, 33)] });
    s.processEntities({ users: [user(7000000001, 12, 'alice')], chats: [channel(1500000001, 34)] });
    const byId = s.getInputEntity('7000000001') as Api.InputPeerUser;
    expect([byId.className, byId.accessHash.toString()]).toEqual(['InputPeerUser', '12']);
    expect((s.getInputEntity('@alice') as Api.InputPeerUser).accessHash.toString()).toBe('12');
    expect((s.getInputEntity('Alice Meyer 7000000001') as Api.InputPeerUser).userId.toString()).toBe('7000000001');
    s.processEntities({ users: [new Api.User({ id: bigInt(7000000009), accessHash: bigInt(99), firstName: 'Pat', phone: '491701234567' })] });
    expect((s.getInputEntity('+491701234567') as Api.InputPeerUser).userId.toString()).toBe('7000000009');
    const ch = s.getInputEntity('-1001500000001') as Api.InputPeerChannel;
    expect([ch.className, ch.channelId.toString(), ch.accessHash.toString()]).toEqual(['InputPeerChannel', '1500000001', '34']);
    expect(() => s.getInputEntity('7999999999')).toThrow();
  });
});
