// The whole service assembled in one process for the hardening suites: the HubSpot and Salesforce sandboxes on
// loopback with the real connectors (real SDKs) pointed at them, the Telegram sandbox through GramJS serialisation,
// the real pipeline, the admin API, the console and createApp's cross-cutting rules, all on one manual clock.
// Requests from the suites go through app.request() (fast, in-process); the sandboxes reach the app over HTTP the way
// HubSpot and Salesforce do. The store is the memory store behind a journal of every mutating call, so a suite can
// prove that a rejected request changed nothing.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { parseRoutingConfig } from '../../core/config.ts';
import { createPipeline, type Pipeline } from '../../core/pipeline.ts';
import type { Intake, Logger, Store } from '../../core/ports.ts';
import { createSecretBox } from '../../connectors/shared/secrets.ts';
import { createHubspotConnector, type HubspotConnector } from '../../connectors/hubspot/index.ts';
import { signV3 } from '../../connectors/hubspot/signature.ts';
import { startHubspotSandbox, type HubspotSandboxOptions } from '../../connectors/hubspot/sandbox/index.ts';
import { createSalesforceConnector, type SalesforceConnector } from '../../connectors/salesforce/index.ts';
import { startSalesforceSandbox, type SalesforceSandboxOptions } from '../../connectors/salesforce/sandbox/index.ts';
import { createManualClock, type ManualClock } from '../../connectors/telegram/clock.ts';
import { createTelegramConnector, type TelegramConnector } from '../../connectors/telegram/index.ts';
import { createTelegramSandbox, SANDBOX_GROUPS } from '../../connectors/telegram/sandbox/index.ts';
import { createApp } from '../../server/app.ts';
import { createConfigService } from '../../server/config-service.ts';
import { createConsole } from '../../server/console/index.ts';
import { silentLogger } from '../../server/logger.ts';
import { createRegistry } from '../../server/metrics.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';

export const ADMIN_TOKEN = 'hardening-admin-token-0123456789abcdef';
export const SECRETS_KEY = 'hardening-secrets-key-0123456789abcdefghij';
export const HS_CLIENT_SECRET = 'hardening-hubspot-client-secret-4242';
export const HS_CLIENT_ID = 'hardening-hubspot-client-id';

const MUTATORS = new Set(['saveConfig', 'recordInbound', 'commit', 'claimJobs', 'failJob', 'retryDeadJob', 'kvPut', 'kvDelete']);

/** The store with a journal of every call that can change it (method and first argument). */
export function journaled(inner: Store): Store & { journal: string[] } {
  const journal: string[] = [];
  const wrapped = new Proxy(inner, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      const name = String(prop);
      if (!MUTATORS.has(name)) return (v as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const r = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        // A delete of nothing, a retry of no dead letter, a lease on no job or an inbound key seen before changes nothing.
        const changed = name === 'kvDelete' || name === 'retryDeadJob' ? r === true : name === 'recordInbound' ? (r as boolean[]).some(Boolean) : name === 'claimJobs' ? (r as unknown[]).length > 0 : true;
        if (changed) journal.push(`${name} ${JSON.stringify(args[0])?.slice(0, 200)}`);
        return r;
      };
    },
  }) as Store;
  return Object.assign(wrapped, { journal });
}

/** Everything the store can show, serialised: tickets, jobs, history, counters, config versions and known kv. */
export async function snapshot(store: Store, kvNamespaces: string[] = []): Promise<string> {
  const kv = await Promise.all(kvNamespaces.map(async (ns) => [ns, await store.kvList(ns)] as const));
  return JSON.stringify([await store.configVersions(), await store.counters(), await store.deadJobs(), await store.tickets(), await store.history({ limit: 100_000 }), await store.pendingJobs(), kv]);
}

export const KV_NAMESPACES = ['hubspot:callbacks', 'hubspot:installs', 'hubspot:mappings', 'hubspot:notes', 'hubspot:oauth-state', 'salesforce:installs', 'salesforce:mappings', 'salesforce:oauth-state', 'salesforce:replay', 'telegram:cursor', 'telegram:peers', 'telegram:session', 'telegram:topic-claims', 'telegram:topics', 'telegram:users', 'console:sessions'];

export type World = Awaited<ReturnType<typeof startWorld>>;

export async function startWorld(o: { logger?: Logger; hubspot?: Partial<HubspotSandboxOptions>; salesforce?: SalesforceSandboxOptions; hubspotTimeoutMs?: number; hubspotOAuthOnly?: boolean; telegramLatencyMs?: number } = {}) {
  const logger = o.logger ?? silentLogger;
  const clock: ManualClock = createManualClock(Date.UTC(2026, 10, 2, 9, 0, 0));
  const store = journaled(createMemoryStore({ clock }));
  const secrets = createSecretBox(SECRETS_KEY);
  const metrics = createRegistry();
  const outer = new Hono();
  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: (req) => outer.fetch(req), port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let pipeline!: Pipeline;
  const intake: Intake = { accept: (events) => pipeline.intake.accept(events) };

  const hsb = await startHubspotSandbox({ clientSecret: HS_CLIENT_SECRET, clientId: HS_CLIENT_ID, webhookUrl: `${publicUrl}/webhooks/hubspot`, seed: true, now: clock.now, ...o.hubspot });
  const hubspot: HubspotConnector = await createHubspotConnector({
    env: { ...(o.hubspotOAuthOnly ? {} : { accessToken: hsb.accessToken }), clientId: hsb.clientId, clientSecret: HS_CLIENT_SECRET, apiBaseUrl: hsb.url, publicUrl, appId: hsb.appId },
    mode: 'sandbox',
    store,
    secrets,
    logger: logger.child({ connector: 'hubspot' }),
    clock,
    intake,
    // Limiter and backoff sleeps move the manual clock (an instant sleep on a clock that stands still would spin the
    // limiter's wait loop); a hung call times out quickly in real time.
    tuning: { now: clock.now, sleep: (ms) => clock.advance(ms), retryBaseMs: 1, timeoutMs: o.hubspotTimeoutMs ?? 300 },
  });

  const sfb = await startSalesforceSandbox({ outboundUrl: `${publicUrl}/webhooks/salesforce`, seed: true, clock: clock.now, ...o.salesforce });
  const salesforce: SalesforceConnector = await createSalesforceConnector({
    env: { loginUrl: sfb.url, orgIds: [sfb.orgId], publicUrl, clientId: sfb.clientId, clientSecret: sfb.clientSecret },
    mode: 'sandbox',
    store,
    secrets,
    logger: logger.child({ connector: 'salesforce' }),
    clock,
    intake,
    tuning: { sleep: async () => {}, retryBaseMs: 1 },
    cdcRetryMs: 20,
  });

  const tg = createTelegramSandbox({ seed: true, clock, ...(o.telegramLatencyMs ? { latencyMs: o.telegramLatencyMs } : {}) });
  await store.saveConfig(parseRoutingConfig(SAMPLE_CONFIG), { author: 'test', note: 'sample', at: clock.now() });
  const groups = (await store.getConfig())!.config.groups ?? SANDBOX_GROUPS.map((g) => ({ id: g.id, title: g.title }));
  const telegram: TelegramConnector = createTelegramConnector({
    mode: 'sandbox',
    env: {},
    store,
    secrets,
    logger: logger.child({ connector: 'telegram' }),
    clock,
    groups: () => groups,
    onEvent: (e) => pipeline.onMessengerEvent(e),
    openTopics: async () => (await store.tickets({ open: true })).flatMap((t) => (t.topic ? [t.topic] : [])),
    sandbox: tg,
  });

  pipeline = createPipeline({
    store,
    clock,
    logger: logger.child({ component: 'pipeline' }),
    metrics,
    crm: (id) => (id === 'hubspot' ? hubspot.crm : id === 'salesforce' ? salesforce.crm : undefined),
    messenger: telegram.messenger,
    options: { backoffBaseMs: 1000, backoffMaxMs: 60_000 },
  });
  const cs = createConfigService(store, clock);
  const health = [
    { id: 'hubspot', health: () => hubspot.health() },
    { id: 'salesforce', health: () => salesforce.health() },
    { id: 'telegram', health: () => telegram.health() },
  ];
  const consoleApp = createConsole({
    store,
    clock,
    logger: logger.child({ component: 'console' }),
    adminToken: ADMIN_TOKEN,
    publicUrl,
    connectors: async () => Promise.all(health.map(async (h) => ({ id: h.id, health: await h.health() }))),
    installLinks: { hubspot: '/oauth/hubspot/install', salesforce: '/oauth/salesforce/install' },
    mappings: { hubspot: hubspot.mappings, salesforce: salesforce.mappings },
    sandboxForum: tg,
    saveConfig: cs.save,
    rollbackConfig: cs.rollback,
  });
  const app = createApp({
    store,
    logger: logger.child({ component: 'http' }),
    metrics,
    pipeline,
    adminToken: () => ADMIN_TOKEN,
    crmConnectors: [hubspot, salesforce],
    health,
    saveConfig: cs.save,
    rollbackConfig: cs.rollback,
    manifest: {},
    console: consoleApp,
    clock,
  });
  outer.route('/', app);

  await hubspot.start();
  await salesforce.start();
  if (o.telegramLatencyMs) {
    // Answers then come on manual-clock timers: keep the clock moving while the connector connects.
    let up = false;
    const starting = telegram.start().finally(() => void (up = true));
    while (!up) {
      await new Promise((r) => setTimeout(r, 2));
      if (!up && clock.pendingTimers() > 0) await clock.next();
    }
    await starting;
  } else await telegram.start();

  /**
   * Runs the pipeline until nothing is pending, moving the clock past backoffs, rate-limit pauses and Telegram pacing
   * as needed. Clock steps grow while nothing is due (15 s up to an hour), so a daily-limit pause is crossed quickly.
   */
  async function drain(maxRealMs = 20_000): Promise<void> {
    const deadline = Date.now() + maxRealMs;
    let step = 15_000;
    for (;;) {
      let done = false;
      const run = pipeline.runDue().finally(() => void (done = true));
      // A step may wait on Telegram pacing (manual-clock timers) or on loopback I/O (real time): serve both. The
      // clock only moves when nothing has happened for a few real milliseconds.
      while (!done) {
        await new Promise((r) => setTimeout(r, 3));
        if (!done && clock.pendingTimers() > 0) await clock.next();
        if (Date.now() > deadline) throw new Error('drain: a pipeline step did not finish');
      }
      const r = await run;
      if (r.jobs === 0 && r.timers === 0) {
        if ((await store.pendingJobs()) === 0) return;
        await clock.advance(step);
        step = Math.min(step * 2, 3600_000);
      } else step = 15_000;
      if (Date.now() > deadline) throw new Error(`drain: ${await store.pendingJobs()} steps still pending`);
    }
  }

  /** Connects the sandbox portal through the OAuth install (install link -> authorize -> callback). */
  async function installHubspotOAuth(): Promise<void> {
    const start = await request('/oauth/hubspot/install');
    const approved = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const cb = new URL(approved.headers.get('location')!);
    const done = await request(`${cb.pathname}${cb.search}`);
    if (done.status !== 200) throw new Error(`HubSpot OAuth install failed: ${done.status} ${(await done.text()).slice(0, 300)}`);
  }

  /** A HubSpot v3 signature for a request to this service, as HubSpot would send it. */
  function hubspotHeaders(method: string, path: string, body: string, o2: { at?: number; secret?: string } = {}): Record<string, string> {
    const ts = String(o2.at ?? clock.now());
    return { 'content-type': 'application/json', 'x-hubspot-signature-v3': signV3(o2.secret ?? HS_CLIENT_SECRET, method, `${publicUrl}${path}`, body, ts), 'x-hubspot-request-timestamp': ts };
  }

  /** A request through the whole app, in-process (the URL carries the public origin so signatures match). */
  const request = (path: string, init: RequestInit = {}) => app.request(`${publicUrl}${path}`, init);

  return {
    app,
    request,
    clock,
    store,
    publicUrl,
    hsb,
    sfb,
    tg,
    hubspot,
    salesforce,
    telegram,
    get pipeline() {
      return pipeline;
    },
    drain,
    installHubspotOAuth,
    hubspotHeaders,
    snapshot: () => snapshot(store, KV_NAMESPACES),
    async close() {
      await telegram.stop();
      await hubspot.stop();
      await salesforce.stop();
      await hsb.close();
      await sfb.close();
      (server as import('node:http').Server).closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await store.close();
    },
  };
}

/** Signs in to the console the way a browser does: GET /login for the nonce cookie, then POST the token. */
export async function consoleLogin(w: World): Promise<{ cookie: string; csrf: string }> {
  const page = await w.request('/login');
  const setCookie = page.headers.get('set-cookie') ?? '';
  const login = /tierline_login=([^;]+)/.exec(setCookie)![1]!;
  const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
  const res = await w.request('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${login}` }, body: new URLSearchParams({ _login: nonce, token: ADMIN_TOKEN, next: '/' }).toString() });
  const session = /tierline_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
  const cookie = `tierline_session=${session}`;
  const cfg = await (await w.request('/config', { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(cfg)![1]!;
  return { cookie, csrf };
}
