// The console on the in-memory store, driven with app.request(): a signed-in client, a forum stand-in wired to the real
// pipeline (a reply there is a Telegram message event, run through the pipeline at once), field mappings validated
// with zod like a connector's, and connector health. Seeded with outcomes from test/console/fixtures.ts when asked.
import { z } from 'zod';
import type { RoutingConfigInput } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';
import type { ConnectorHealth, ConnectorMappings, SandboxAgent, SandboxForum, SandboxGroup, SandboxMessage, SandboxTopic } from '../../server/contracts.ts';
import { createConsole } from '../../server/console/index.ts';
import { createConfigService } from '../../server/config-service.ts';
import { silentLogger } from '../../server/logger.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { harness } from '../pipeline/harness.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';
import { versionedMappings } from '../../connectors/shared/mapping-versions.ts';
import { seedOutcomes } from './fixtures.ts';

export const TOKEN = 'console-test-token-0123456789abcdef';

/** A field mapping store shaped like a connector's: zod-validated, per account, with a default. */
export function fakeMappings(accounts: string[] = ['4242']): ConnectorMappings & { saved: Map<string, unknown> } {
  const schema = z.object({ tier: z.string().min(1), lifetimeValue: z.string().min(1), language: z.string().min(1).optional() }).strict();
  const saved = new Map<string, unknown>();
  const def = { tier: 'tierline_tier', lifetimeValue: 'total_revenue' };
  const inner = {
    schema,
    saved,
    async get(account: string) {
      return saved.get(account) ?? def;
    },
    async put(account: string, value: unknown) {
      const r = schema.safeParse(value);
      if (!r.success) throw new AppError('invalid_input', `mapping field "${r.error.issues[0]!.path.join('.') || '(root)'}": ${r.error.issues[0]!.message}`);
      saved.set(account, r.data);
      return r.data;
    },
    async accounts() {
      return [...new Set([...accounts, ...saved.keys()])];
    },
  };
  // Versioned as the connectors' mappings are.
  return { ...versionedMappings(inner, { store: createMemoryStore(), clock: { now: () => Date.now() }, ns: 'fake:mapping-versions', normalise: (a) => a }), saved };
}

/** The sandbox forum over the pipeline harness's Telegram stand-in: what the Telegram sandbox offers the console. */
export function pipelineForum(h: Awaited<ReturnType<typeof harness>>, config: RoutingConfigInput): SandboxForum & { replies: { user: string; text: string }[] } {
  const replies: { user: string; text: string }[] = [];
  const online = new Map((config.agents ?? []).map((a) => [a.telegramUserId ?? a.id, true]));
  const extra: (SandboxMessage & { groupId: string; topicId: number })[] = [];
  let nextMessage = 50_000;
  const nameOf = (user: string) => config.agents.find((a) => a.telegramUserId === user)?.name ?? user;
  return {
    replies,
    groups: (): SandboxGroup[] => (config.groups ?? []).map((g) => ({ id: g.id, channelId: g.id, title: g.title, forum: true })),
    topics: (channel): SandboxTopic[] =>
      h.tg.topics
        .filter((t) => t.groupId === channel && !t.deleted)
        .map((t) => ({
          topicId: t.topicId,
          title: t.title,
          iconColor: 0,
          closed: h.tg.closed.some((c) => c.groupId === channel && c.topicId === t.topicId),
          createdAt: h.clock.now(),
          messageCount: h.tg.posts.filter((p) => p.topic.groupId === channel && p.topic.topicId === t.topicId).length + extra.filter((m) => m.groupId === channel && m.topicId === t.topicId).length,
        })),
    messages: (channel, topicId, limit = 50): SandboxMessage[] =>
      [
        ...h.tg.posts.filter((p) => p.topic.groupId === channel && p.topic.topicId === topicId).map((p) => ({ id: p.messageId, fromUserId: 'bot', fromName: 'Tierline', text: p.text, at: h.clock.now(), pinned: Boolean(p.pin) })),
        ...extra.filter((m) => m.groupId === channel && m.topicId === topicId),
      ].slice(-limit),
    agents: (): SandboxAgent[] => (config.agents ?? []).map((a) => ({ telegramUserId: a.telegramUserId ?? a.id, name: a.name, online: online.get(a.telegramUserId ?? a.id) ?? true })),
    async reply(channel, topicId, user, text) {
      replies.push({ user, text });
      const id = nextMessage++;
      extra.push({ id, fromUserId: user, fromName: nameOf(user), text, at: h.clock.now(), pinned: false, groupId: channel, topicId });
      await h.pipeline.onMessengerEvent({ kind: 'message', groupId: channel, topicId, messageId: id, fromTelegramUserId: user, text, at: h.clock.now() });
      await h.drain();
    },
    async closeTopic(channel, topicId, user) {
      await h.pipeline.onMessengerEvent({ kind: 'topic_closed', groupId: channel, topicId, at: h.clock.now(), byTelegramUserId: user });
      await h.drain();
    },
    async setOnline(user, isOnline) {
      online.set(user, isOnline);
      await h.pipeline.onMessengerEvent({ kind: 'presence', telegramUserId: user, online: isOnline, at: h.clock.now() });
      await h.drain();
    },
  };
}

export type ConsoleSetup = Awaited<ReturnType<typeof setupConsole>>;

export async function setupConsole(opts: { seed?: number; publicUrl?: string; forum?: boolean; generator?: boolean; config?: RoutingConfigInput; health?: { id: string; health: ConnectorHealth }[]; mappings?: boolean } = {}) {
  const config = opts.config ?? SAMPLE_CONFIG;
  const h = await harness(config);
  const clock: Clock = h.clock;
  if (opts.seed) await seedOutcomes(h.store, { count: opts.seed, end: h.clock.now(), spanMs: 3 * 86400_000, config });
  const cs = createConfigService(h.store, clock);
  const forum = opts.forum ? pipelineForum(h, config) : undefined;
  let paused = false;
  const generator = opts.generator ? { paused: () => paused, pause: () => void (paused = true), resume: () => void (paused = false) } : undefined;
  const hubspot = fakeMappings();
  const mappings: Record<string, ConnectorMappings> & { hubspot?: typeof hubspot } = opts.mappings === false ? {} : { hubspot };
  const health = opts.health ?? [
    { id: 'hubspot', health: { ok: true, mode: 'sandbox' as const, detail: '1 portal installed', lastError: null, rateLimitRemaining: 97 } },
    { id: 'telegram', health: { ok: false, mode: 'real' as const, detail: 'FLOOD_WAIT on group support-1', lastError: 'FLOOD_WAIT_30', floodWaits: 2 } },
  ];
  const app = createConsole(
    {
      store: h.store,
      clock,
      logger: silentLogger,
      adminToken: TOKEN,
      publicUrl: opts.publicUrl ?? 'http://localhost:3000',
      connectors: async () => health,
      installLinks: { hubspot: '/oauth/hubspot/install', salesforce: '/oauth/salesforce/install' },
      mappings,
      ...(forum ? { sandboxForum: forum } : {}),
      ...(generator ? { generator } : {}),
      saveConfig: cs.save,
      rollbackConfig: cs.rollback,
    },
    // Tests move the clock by hand; a snapshot is fresh only within the same instant.
    { readModel: { maxAgeMs: 1 } },
  );

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const formHeaders = (cookie: string, extra: Record<string, string> = {}) => ({ cookie, 'content-type': 'application/x-www-form-urlencoded', ...extra });

  /** Signs in like a browser: GET /login for the form nonce cookie, then POST the token. */
  async function login(token = TOKEN): Promise<{ cookie: string; csrf: string; response: Response }> {
    const page = await app.request('/login');
    const nonceCookie = page.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
    const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
    const response = await app.request('/login', { method: 'POST', headers: formHeaders(nonceCookie), body: form({ token, _login: nonce, next: '/' }) });
    const session = response.headers.getSetCookie().find((c) => /tierline_session=/.test(c));
    const cookie = session ? session.split(';')[0]! : '';
    let csrf = '';
    if (cookie) csrf = /name="_csrf" value="([^"]+)"/.exec(await (await app.request('/', { headers: { cookie } })).text())?.[1] ?? '';
    return { cookie, csrf, response };
  }

  const session = await login();
  const get = (path: string, cookie = session.cookie) => app.request(path, { headers: { cookie } });
  const post = (path: string, fields: Record<string, string>, o: { cookie?: string; csrf?: string | null; headers?: Record<string, string> } = {}) => {
    const csrf = o.csrf === undefined ? session.csrf : o.csrf;
    return app.request(path, { method: 'POST', headers: formHeaders(o.cookie ?? session.cookie, o.headers), body: form(csrf === null ? fields : { ...fields, _csrf: csrf }) });
  };
  return { h, app, clock: h.clock, store: h.store, forum, generator: { paused: () => paused, ...generator }, mappings, config, session, login, get, post, form, formHeaders };
}

/** Text of an HTML page with tags removed and whitespace collapsed, for assertions on what a reader sees. */
export function visible(html: string): string {
  return html
    .replace(/<script[\s\S]*?<\/script>/g, ' ')
    // Inline elements join their text; block elements separate it.
    .replace(/<\/?(?:a|code|strong|em|span|time|abbr|label)\b[^>]*>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim();
}
