// Composition root: builds the store, the connectors (real or sandboxed, per connector), the pipeline, the worker,
// the HTTP app and, in sandbox mode, the sample-ticket generator. main.ts runs it; tests start it on port 0.
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { errorBody } from './http.ts';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { Clock, Intake, Logger, MessengerEvent, MessengerPort, Store, TopicRef } from '../core/ports.ts';
import { AppError } from '../core/errors.ts';
import { parseRoutingConfig } from '../core/config.ts';
import { ticketKey } from '../core/segment.ts';
import { createPipeline, type Pipeline, type PipelineOptions } from '../core/pipeline.ts';
import { createSecretBox } from '../connectors/shared/secrets.ts';
import { createHubspotConnector } from '../connectors/hubspot/index.ts';
import { startHubspotSandbox } from '../connectors/hubspot/sandbox/index.ts';
import { createSalesforceConnector } from '../connectors/salesforce/index.ts';
import { startSalesforceSandbox } from '../connectors/salesforce/sandbox/index.ts';
import { createTelegramConnector, type TelegramConnector } from '../connectors/telegram/index.ts';
import { createTelegramSandbox } from '../connectors/telegram/sandbox/index.ts';
import { connectRemoteTelegramSandbox } from '../connectors/telegram/sandbox/remote.ts';
import { createTelegramIntake, type TelegramIntake } from '../connectors/telegram/intake/index.ts';
import { intakeCrmFrom, intakeEnv, type IntakeCapableConnector } from '../connectors/telegram/intake/config.ts';
import { createConsole } from './console/index.ts';
import { createApp } from './app.ts';
import type { ReadinessSource } from './readiness.ts';
import { createConfigService } from './config-service.ts';
import type { ConnectorHealth, CrmConnector, SandboxForum } from './contracts.ts';
import type { Env } from './env.ts';
import { retentionMs, secretValues } from './env.ts';
import { createLogger } from './logger.ts';
import { createRegistry, type Registry } from './metrics.ts';
import { SAMPLE_CONFIG } from './sandbox/sample-config.ts';
import { sampleSubject, startGenerator, type Generator, type TicketSource } from './sandbox/generator.ts';
import { openLowdbStore } from './storage/lowdb-store.ts';
import { openPostgresStore } from './storage/postgres/postgres-store.ts';
import { followerExcludes, startLeaderElection, type Leader } from './storage/postgres/leader.ts';
import { createStepTiming, type StepTiming } from './step-timing.ts';
import { startWorker, type Worker } from './worker.ts';
import { startIdleGc } from './idle-gc.ts';

export type Service = {
  url: string;
  port: number;
  env: Env;
  store: Store;
  pipeline: Pipeline;
  metrics: Registry;
  timing: StepTiming;
  worker: Worker;
  generator: Generator | null;
  forum: SandboxForum | null;
  sandboxes: { hubspot: Awaited<ReturnType<typeof startHubspotSandbox>> | null; salesforce: Awaited<ReturnType<typeof startSalesforceSandbox>> | null };
  adminTokenFile: string | null;
  stop(): Promise<void>;
};

export type ServiceOptions = {
  env: Env;
  logger?: Logger;
  clock?: Clock;
  /** Sample tickets per minute in sandbox mode (0 = none; tests drive tickets themselves). */
  sampleTicketsPerMinute?: number;
  simulatedAgents?: boolean;
  /** Sandbox upstream latency per call, for the end-to-end benchmark. */
  sandboxLatencyMs?: number;
  pipeline?: Partial<PipelineOptions>;
  store?: Store;
  /**
   * Sandboxes that live outside this process, for connectors without credentials (the process-level tests keep the
   * sandboxes in the test process, so their state survives killed services, and point several services at them).
   */
  external?: ExternalSandboxes;
};

export type ExternalSandboxes = {
  hubspot?: { url: string; accessToken: string; clientSecret: string; rateLimit?: { max: number; windowMs: number } };
  salesforce?: { url: string; orgId: string };
  /** A world served by serveTelegramSandbox (connectors/telegram/sandbox/remote.ts). */
  telegram?: { url: string; pacing?: { perGroupPerMinute?: number; perAccountPerSecond?: number } };
};

const realClock: Clock = { now: () => Date.now() };

/** In sandbox mode without ADMIN_TOKEN / SECRETS_KEY, generate them once into DATA_DIR (never printed). */
async function localSecret(dir: string, name: string, bytes: number): Promise<{ value: string; file: string }> {
  const file = join(dir, name);
  try {
    return { value: (await readFile(file, 'utf8')).trim(), file };
  } catch {
    const value = randomBytes(bytes).toString('base64url');
    await writeFile(file, value + '\n', { mode: 0o600 });
    await chmod(file, 0o600);
    return { value, file };
  }
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const env = opts.env;
  const clock = opts.clock ?? realClock;
  const metrics = createRegistry();
  const log = opts.logger ?? createLogger({ level: env.LOG_LEVEL, secrets: () => secretValues(env) });
  const dataDir = resolve(env.DATA_DIR);
  await mkdir(dataDir, { recursive: true });

  const admin = env.ADMIN_TOKEN ? { value: env.ADMIN_TOKEN, file: null } : await localSecret(dataDir, 'admin-token', 24);
  const secretsKey = env.SECRETS_KEY ?? (await localSecret(dataDir, 'secrets-key', 32)).value;
  const secrets = createSecretBox(secretsKey);
  // One instance: the embedded lowdb store in DATA_DIR. Several instances: PostgreSQL, where exactly one instance holds
  // the Telegram connection (an advisory-lock election) and the others leave the Telegram steps to it.
  const instanceId = env.INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  let holdsTelegram = () => true;
  const store =
    opts.store ??
    (env.DATABASE_URL
      ? await openPostgresStore({ url: env.DATABASE_URL, clock, logger: log.child({ component: 'store' }), instanceId, retentionMs: retentionMs(env), excludeKinds: followerExcludes({ isLeader: () => holdsTelegram() }) })
      : await openLowdbStore({ dir: dataDir, clock, logger: log.child({ component: 'store' }), retentionMs: retentionMs(env) }));

  if (!(await store.getConfig())) await store.saveConfig(parseRoutingConfig(SAMPLE_CONFIG), { author: 'tierline', note: 'sample configuration (edit it in the console)', at: clock.now() });

  const timing = createStepTiming(metrics);
  const connectorStore = timing.connectorStore(store);
  // The pipeline and the connectors need each other (intake in, ports out); the late binding is explicit here.
  let pipeline!: Pipeline;
  let worker: Worker | null = null;
  const intake: Intake = { accept: (events) => timing.intake(events.map((e) => ticketKey(e.ref)), () => pipeline.intake.accept(events)) };
  const onEvent = async (e: MessengerEvent) => pipeline.onMessengerEvent(e);

  // Build the HTTP server first so the sandboxes know where to deliver webhooks; it answers 503 until the app below
  // is built. The app is called directly rather than mounted with route(): a mounted app with its own error handler
  // has every route wrapped in a per-request compose, which was a large share of each webhook's allocation.
  let app: Hono | null = null;
  const idleGc = startIdleGc({ logger: log.child({ component: 'idle-gc' }) });
  if (!idleGc.enabled) log.info('idle-time garbage collection is off: Node was started without --expose-gc (npm start passes it; see the README, Deployment)');
  const server: ServerType = await new Promise((ok) => {
    const s = serve(
      {
        fetch: (req, bindings) => (app ? idleGc.during(async () => app!.fetch(req, bindings)) : null) ?? Response.json(errorBody('starting', 'Tierline is starting; try again in a moment.'), { status: 503, headers: { 'retry-after': '1' } }),
        port: env.PORT,
        hostname: env.HOST,
      },
      () => ok(s),
    );
  });
  const port = (server.address() as { port: number }).port;
  const localUrl = `http://127.0.0.1:${port}`;
  const publicUrl = env.ADMIN_TOKEN || env.PUBLIC_URL !== `http://localhost:${env.PORT}` ? env.PUBLIC_URL : localUrl;

  const sandboxes: Service['sandboxes'] = { hubspot: null, salesforce: null };
  const crms: CrmConnector[] = [];
  const sources: TicketSource[] = [];

  // HubSpot
  const extHubspot = env.modes.hubspot === 'sandbox' ? opts.external?.hubspot : undefined;
  if (extHubspot) {
    crms.push(
      await createHubspotConnector({
        env: { accessToken: extHubspot.accessToken, clientSecret: extHubspot.clientSecret, apiBaseUrl: extHubspot.url, publicUrl },
        mode: 'sandbox',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'hubspot' }),
        clock,
        intake,
        ...(extHubspot.rateLimit ? { tuning: { rateLimit: extHubspot.rateLimit.max, rateWindowMs: extHubspot.rateLimit.windowMs } } : {}),
      }),
    );
  } else if (env.modes.hubspot === 'sandbox') {
    const clientSecret = randomBytes(16).toString('hex');
    const sb = await startHubspotSandbox({ clientSecret, webhookUrl: `${publicUrl}/webhooks/hubspot`, seed: true, ...(opts.sandboxLatencyMs ? { latencyMs: opts.sandboxLatencyMs } : {}) });
    sandboxes.hubspot = sb;
    crms.push(
      await createHubspotConnector({
        env: { accessToken: sb.accessToken, clientSecret, apiBaseUrl: sb.url, publicUrl },
        mode: 'sandbox',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'hubspot' }),
        clock,
        intake,
      }),
    );
    sources.push({ name: 'hubspot sandbox', createSample: async (n) => void (await sb.createTicket({ subject: sampleSubject(n) })) });
  } else {
    crms.push(
      await createHubspotConnector({
        env: { accessToken: env.HUBSPOT_ACCESS_TOKEN, clientId: env.HUBSPOT_CLIENT_ID, clientSecret: env.HUBSPOT_CLIENT_SECRET, apiBaseUrl: env.HUBSPOT_API_BASE_URL, publicUrl, appId: env.HUBSPOT_APP_ID },
        mode: 'real',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'hubspot' }),
        clock,
        intake,
      }),
    );
  }

  // Salesforce
  const extSalesforce = env.modes.salesforce === 'sandbox' ? opts.external?.salesforce : undefined;
  if (extSalesforce) {
    crms.push(
      await createSalesforceConnector({
        env: { loginUrl: extSalesforce.url, orgIds: [extSalesforce.orgId], publicUrl },
        mode: 'sandbox',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'salesforce' }),
        clock,
        intake,
      }),
    );
  } else if (env.modes.salesforce === 'sandbox') {
    const sb = await startSalesforceSandbox({ outboundUrl: `${publicUrl}/webhooks/salesforce`, seed: true, ...(opts.sandboxLatencyMs ? { latencyMs: opts.sandboxLatencyMs } : {}) });
    sandboxes.salesforce = sb;
    crms.push(
      await createSalesforceConnector({
        env: { loginUrl: sb.url, orgIds: [sb.orgId], publicUrl },
        mode: 'sandbox',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'salesforce' }),
        clock,
        intake,
      }),
    );
    sources.push({ name: 'salesforce sandbox', createSample: async (n) => void (await sb.createCase({ subject: sampleSubject(n) })) });
  } else {
    crms.push(
      await createSalesforceConnector({
        env: { clientId: env.SALESFORCE_CLIENT_ID, clientSecret: env.SALESFORCE_CLIENT_SECRET, loginUrl: env.SALESFORCE_LOGIN_URL, username: env.SALESFORCE_USERNAME, privateKeyFile: env.SALESFORCE_PRIVATE_KEY_FILE, orgIds: env.SALESFORCE_ORG_IDS, publicUrl },
        mode: 'real',
        store: connectorStore,
        secrets,
        logger: log.child({ connector: 'salesforce' }),
        clock,
        intake,
      }),
    );
  }

  // Telegram
  const groups = async () => ((await store.getConfig())?.config.groups ?? []);
  let groupsCache = await groups();
  const openTopics = async (): Promise<TopicRef[]> => (await store.tickets({ open: true })).flatMap((t) => (t.topic ? [t.topic] : []));
  const extTelegram = env.modes.telegram === 'sandbox' ? opts.external?.telegram : undefined;
  const tgSandbox = extTelegram
    ? await connectRemoteTelegramSandbox(extTelegram.url)
    : env.modes.telegram === 'sandbox'
      ? createTelegramSandbox({ seed: true, ...(opts.sandboxLatencyMs ? { latencyMs: opts.sandboxLatencyMs } : {}) })
      : null;
  const buildTelegram = () =>
    createTelegramConnector({
      mode: env.modes.telegram,
      env: { apiId: env.TELEGRAM_API_ID, apiHash: env.TELEGRAM_API_HASH, session: env.TELEGRAM_SESSION, botToken: env.TELEGRAM_BOT_TOKEN },
      store: connectorStore,
      secrets,
      logger: log.child({ connector: 'telegram' }),
      clock,
      groups: () => groupsCache,
      onEvent,
      openTopics,
      ...(tgSandbox ? { sandbox: tgSandbox } : {}),
      ...(extTelegram?.pacing ? { pacing: extTelegram.pacing } : {}),
    });
  // The connection this instance holds right now (always, with one instance; only while elected, with several). A
  // stopped connector cannot restart, so each election builds a fresh one.
  let telegram: TelegramConnector | null = null;
  const holding = (): TelegramConnector => {
    if (telegram) return telegram;
    throw new AppError('upstream', 'This instance does not hold the Telegram connection at the moment; the step is retried and runs on the instance that does.');
  };
  const messenger: MessengerPort = {
    createTopic: (req) => holding().messenger.createTopic(req),
    // Not holding the connection: nothing to reserve; the holder writes its record in the step.
    reserveTopic: async (req) => (telegram?.messenger.reserveTopic ? telegram.messenger.reserveTopic(req) : []),
    post: (req) => holding().messenger.post(req),
    closeTopic: (topic) => holding().messenger.closeTopic(topic),
  };
  let leader: Leader | null = null;
  const telegramHealth = async () => {
    if (telegram) return telegram.health();
    const holder = await leader?.holder();
    const health: ConnectorHealth = { mode: env.modes.telegram, ok: true, lastError: null, role: 'follower', detail: `follower: instance ${holder?.instanceId ?? '(electing)'} holds the Telegram connection and runs the Telegram steps` };
    return health;
  };

  // Telegram intake (connectors/telegram/intake): customers open tickets in a private chat with the team's bot, which
  // then relays the conversation with the ticket's topic. In sandbox mode the sandbox bot; for real, a second GramJS
  // client with TELEGRAM_BOT_TOKEN next to the user account (TELEGRAM_SESSION). It runs where the Telegram connection
  // is held; write-backs on any instance queue the customer's notices in the store. TELEGRAM_INTAKE=off turns it off.
  const intakeOpts = intakeEnv(process.env);
  const intakeBot: TelegramIntake | null =
    intakeOpts.enabled && ((env.modes.telegram === 'sandbox' && tgSandbox && !extTelegram) || (env.modes.telegram === 'real' && env.TELEGRAM_BOT_TOKEN && env.TELEGRAM_SESSION))
      ? createTelegramIntake({
          mode: env.modes.telegram,
          env: { apiId: env.TELEGRAM_API_ID, apiHash: env.TELEGRAM_API_HASH, botToken: env.TELEGRAM_BOT_TOKEN },
          store: connectorStore,
          secrets,
          logger: log.child({ connector: 'telegram-intake' }),
          clock,
          intake,
          crm: intakeCrmFrom(crms as unknown as IntakeCapableConnector[], intakeOpts),
          groups: () => groupsCache,
          ...(tgSandbox && !extTelegram ? { sandbox: tgSandbox } : {}),
          settings: intakeOpts.settings,
          adminToken: () => admin.value,
        })
      : null;

  const byCrm = new Map(crms.map((c) => [c.id, c.crm]));
  if (intakeBot) for (const [id, port] of byCrm) byCrm.set(id, intakeBot.observe(port));
  const timedCrm = new Map([...byCrm].map(([id, port]) => [id, timing.upstream(port, id)]));
  pipeline = createPipeline({
    store: timing.lockTimed(store),
    clock,
    logger: log.child({ component: 'pipeline' }),
    metrics,
    crm: (id) => timedCrm.get(id),
    messenger: timing.upstream(messenger, 'telegram'),
    wake: () => worker?.wake(),
    observeStep: (j, run) => idleGc.during(() => timing.observeStep(j, run)),
    random: Math.random,
    options: opts.pipeline,
  });

  const configService = createConfigService(store, clock, async () => {
    groupsCache = await groups();
    worker?.wake();
  });
  metrics.gauge('tierline_outbox_depth', 'Pending outbox steps', async () => [{ value: await store.pendingJobs() }]);
  metrics.gauge('tierline_dead_letters', 'Steps that kept failing', async () => [{ value: (await store.deadJobs()).length }]);

  // A remote world is driven and inspected in the process that holds it, not through this one's console.
  const forum = (extTelegram ? null : (tgSandbox ?? null)) as SandboxForum | null;
  const generator =
    env.modes.hubspot === 'sandbox' || env.modes.salesforce === 'sandbox' || forum
      ? startGenerator({ sources, perMinute: opts.sampleTicketsPerMinute ?? env.SAMPLE_TICKETS_PER_MINUTE, logger: log.child({ component: 'sample-generator' }), ...(forum ? { forum } : {}), agentsReply: opts.simulatedAgents ?? true })
      : null;

  const health: ReadinessSource[] = [...crms.map((c) => ({ id: c.id, health: () => c.health(), reach: () => c.reach() })), { id: 'telegram', health: telegramHealth }];
  if (intakeBot) health.push({ id: 'telegram-intake', health: () => intakeBot.health() });
  const consoleApp = createConsole({
    store,
    clock,
    logger: log.child({ component: 'console' }),
    adminToken: admin.value,
    publicUrl,
    connectors: async () => Promise.all(health.map(async (h) => ({ id: h.id, health: await h.health() }))),
    installLinks: { hubspot: '/oauth/hubspot/install', salesforce: '/oauth/salesforce/install' },
    mappings: Object.fromEntries(crms.map((c) => [c.id, c.mappings])),
    ...(forum ? { sandboxForum: forum } : {}),
    ...(generator ? { generator } : {}),
    saveConfig: configService.save,
    rollbackConfig: configService.rollback,
  });
  const manifest = JSON.parse(await readFile(new URL('../manifest.json', import.meta.url), 'utf8'));
  app = createApp({
    store,
    logger: log.child({ component: 'http' }),
    metrics,
    pipeline,
    adminToken: () => admin.value,
    crmConnectors: crms,
    health,
    crmCheckMs: env.READYZ_CRM_CHECK_SECONDS * 1000,
    saveConfig: configService.save,
    rollbackConfig: configService.rollback,
    manifest,
    console: consoleApp,
    ...(intakeBot ? { extra: intakeBot.routes } : {}),
    aroundPost: timing.request,
  });

  for (const c of crms) await c.start();
  if (env.DATABASE_URL && !opts.store) {
    const url = env.DATABASE_URL;
    leader = startLeaderElection({
      url,
      name: `telegram:${env.TELEGRAM_BOT_TOKEN?.split(':')[0] ?? (env.TELEGRAM_SESSION ? 'user' : 'sandbox')}`,
      instanceId,
      logger: log.child({ component: 'leader' }),
      clock,
      onElected: async () => {
        telegram = buildTelegram();
        await telegram.start();
        await intakeBot?.start();
        worker?.wake();
      },
      onDeposed: async () => {
        const t = telegram;
        telegram = null;
        await intakeBot?.stop();
        await t?.stop();
      },
    });
    holdsTelegram = () => leader?.isLeader() ?? false;
  } else {
    telegram = buildTelegram();
    await telegram.start();
    await intakeBot?.start();
  }
  worker = startWorker(pipeline.pump, log.child({ component: 'worker' }), { drain: pipeline.drain });

  return {
    url: localUrl,
    port,
    env,
    store,
    pipeline,
    metrics,
    timing,
    worker,
    generator,
    forum,
    sandboxes,
    adminTokenFile: admin.file,
    async stop() {
      idleGc.stop();
      generator?.stop();
      await worker?.stop();
      await leader?.stop();
      await intakeBot?.stop();
      await telegram?.stop();
      for (const c of crms) await c.stop();
      await new Promise<void>((ok) => server.close(() => ok()));
      await sandboxes.hubspot?.close();
      await sandboxes.salesforce?.close();
      await store.close();
    },
  };
}

