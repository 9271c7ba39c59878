// Linking configured groups: channel ids and access hashes, forum mode and admin rights, each problem with its fix.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { SAMPLE_GROUPS, setup, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.stop();
  h = null;
});

describe('linking groups', () => {
  it('links the seeded sandbox groups by their config ids', async () => {
    h = await setup();
    const report = await h.connector.linkGroups();
    expect(report.ok).toBe(true);
    expect(report.account).toEqual({ kind: 'user', id: '6000000001', name: 'Tierline Desk' });
    expect(report.groups.map((g) => [g.groupId, g.channelId, g.forum, g.canManageTopics, g.canInvite])).toEqual([
      ['vip', '1900000001', true, true, true],
      ['support-1', '1900000002', true, true, true],
      ['support-2', '1900000003', true, true, true],
    ]);
    const health = await h.connector.health();
    expect(health).toMatchObject({ ok: true, mode: 'sandbox', lastError: null });
    expect(health.detail).toContain('3/3 groups ready');
  });

  it('reports a group without forum mode, names the fix, and refuses topics there', async () => {
    h = await setup({ groups: [...SAMPLE_GROUPS, { id: 'plain', title: 'Plain chat', telegramChannelId: '1900000050' }], start: false });
    h.sandbox.addGroup({ id: 'plain', channelId: '1900000050', title: 'Plain chat', forum: false });
    await h.connector.start();
    const report = await h.connector.linkGroups();
    const plain = report.groups.find((g) => g.groupId === 'plain')!;
    expect(plain).toMatchObject({ linked: true, forum: false, ok: false });
    expect(plain.problems.join(' ')).toMatch(/not a forum: turn on Topics/);
    expect(report.ok).toBe(false);
    expect((await h.connector.health()).ok).toBe(false);
    const err = await h.connector.messenger.createTopic({ ticketKey: 'k', groupId: 'plain', title: 't', tier: null, randomId: '9' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'misconfigured' });
    expect((err as Error).message).toMatch(/Topics/);
  });

  it('reports a missing "Manage topics" right for the bot with the fix', async () => {
    h = await setup({ as: 'bot', start: false });
    h.sandbox.setMember('1900000002', h.sandbox.botUserId, 'admin', { manageTopics: false, pinMessages: true });
    await h.connector.start();
    const report = await h.connector.linkGroups();
    const g = report.groups.find((x) => x.groupId === 'support-1')!;
    expect(g).toMatchObject({ linked: true, canManageTopics: false, ok: false });
    expect(g.problems.join(' ')).toMatch(/"Manage topics"/);
    expect(g.warnings.join(' ')).toMatch(/cannot invite agents or see their presence/);
  });

  it('reports a group the account is not in', async () => {
    h = await setup({ groups: [...SAMPLE_GROUPS, { id: 'elsewhere', title: 'Elsewhere', telegramChannelId: '1900000077' }] });
    const report = await h.connector.linkGroups();
    expect(report.groups.find((g) => g.groupId === 'elsewhere')).toMatchObject({ linked: false, ok: false, problems: [expect.stringMatching(/not a member of channel 1900000077: add it to the group/)] });
  });

  it('finds a group by title when no channel id is configured (user account)', async () => {
    h = await setup({ groups: [{ id: 'renamed-in-config', title: 'Tierline · Support 2' }] });
    const report = await h.connector.linkGroups();
    expect(report.groups[0]).toMatchObject({ linked: true, channelId: '1900000003', ok: true });
  });

  it('links a bot to its groups and stores what it learned', async () => {
    h = await setup({ as: 'bot' });
    const report = await h.connector.linkGroups();
    expect(report.ok).toBe(true);
    expect(report.account.kind).toBe('bot');
    expect((await h.store.kvList('telegram:peers')).length).toBe(3);
  });

  it('reports an unreachable Telegram in health instead of crashing the service', async () => {
    h = await setup({ as: 'bot', start: false });
    const { createTelegramConnector } = await import('../../../connectors/telegram/index.ts');
    const broken = createTelegramConnector({
      mode: 'sandbox',
      env: { botToken: '123:not-the-sandbox-token-aaaaaaaaaaaaaaaaaaaa' },
      store: h.store,
      secrets: { seal: (s) => s, open: (s) => s },
      logger: { debug() {}, info() {}, warn() {}, error() {}, child: () => broken as never },
      clock: h.clock,
      groups: () => SAMPLE_GROUPS,
      onEvent: async () => {},
      openTopics: async () => [],
      sandbox: h.sandbox,
    });
    await broken.start();
    const health = await broken.health();
    expect(health.ok).toBe(false);
    expect(health.lastError).toMatch(/auth_expired: .*TELEGRAM_BOT_TOKEN/);
    expect(health.lastError).not.toContain('not-the-sandbox-token');
    const err = await broken.messenger.post({ topic: { groupId: 'vip', topicId: 2, link: '' }, text: 'x', randomId: '1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'auth_expired' });
    await broken.stop();
  });
});
