// A HubSpot sandbox on loopback, the real connector (real @hubspot/api-client) pointed at it, its routes served over
// HTTP so the sandbox's webhooks, workflow actions and card fetches arrive the way HubSpot's do, and optionally the
// real pipeline behind the intake.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { parseRoutingConfig } from '../../../core/config.ts';
import { createPipeline } from '../../../core/pipeline.ts';
import type { Clock, CreateTopicRequest, CrmWriteBack, Intake, IntakeEvent, Logger, MessengerPort, PostRequest, RoutingFields, TopicRef } from '../../../core/ports.ts';
import { ticketKey } from '../../../core/segment.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { createHubspotConnector, type HubspotConnectorOptions } from '../../../connectors/hubspot/index.ts';
import { startHubspotSandbox, type HubspotSandboxOptions } from '../../../connectors/hubspot/sandbox/index.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';
import { silentLogger } from '../../../server/logger.ts';
import { SAMPLE_CONFIG } from '../../../server/sandbox/sample-config.ts';

export const SECRETS_KEY = 'test-secrets-key-0123456789abcdefghij';
export const CLIENT_SECRET = 'hs-client-secret-0123456789';

export class ManualClock implements Clock {
  t = Date.UTC(2026, 10, 2, 9, 0, 0);
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

/** A logger that keeps what it was told, to check that no secret reaches a log line. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const mk = (base: Record<string, unknown>): Logger => {
    const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify({ ...base, ...fields })}`);
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => mk({ ...base, ...f }) };
  };
  return Object.assign(mk({}), { lines });
}

/** Telegram stand-in at the port: topics and posts are idempotent on their random ids, as Telegram's are. */
export function fakeMessenger() {
  const topics: CreateTopicRequest[] = [];
  const posts: PostRequest[] = [];
  const closed: TopicRef[] = [];
  let next = 10;
  const port: MessengerPort = {
    async createTopic(req) {
      const i = topics.findIndex((t) => t.randomId === req.randomId);
      if (i < 0) topics.push(req);
      const topicId = 100 + (i < 0 ? topics.length - 1 : i);
      return { groupId: req.groupId, topicId, link: `https://t.me/c/${req.groupId}/${topicId}` };
    },
    async post(req) {
      if (!posts.some((p) => p.randomId === req.randomId)) posts.push(req);
      return { messageId: next++ };
    },
    async closeTopic(topic) {
      if (!closed.some((c) => c.groupId === topic.groupId && c.topicId === topic.topicId)) closed.push(topic);
    },
  };
  return { port, topics, posts, closed };
}

/** Limiter and backoff time that only moves when something sleeps: waits are recorded, never slept. */
export function fakeTime() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    advance(ms: number) {
      t += ms;
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export async function startHarness(
  o: {
    sandbox?: Partial<HubspotSandboxOptions>;
    pipeline?: boolean;
    intake?: Intake;
    tuning?: HubspotConnectorOptions['tuning'];
    /** false: no private app token (OAuth installs only). */
    privateToken?: boolean;
    oauth?: boolean;
    clientSecret?: string | null;
    logger?: Logger;
    start?: boolean;
  } = {},
) {
  const clock = new ManualClock();
  const store = createMemoryStore({ clock });
  const app = new Hono();
  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: (req) => app.fetch(req), port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sb = await startHubspotSandbox({ clientSecret: CLIENT_SECRET, webhookUrl: `${publicUrl}/webhooks/hubspot`, seed: true, now: clock.now, ...o.sandbox });
  const time = fakeTime();

  const accepted: IntakeEvent[] = [];
  const messenger = fakeMessenger();
  let pipeline: ReturnType<typeof createPipeline> | null = null;
  const recordingIntake: Intake = {
    async accept(events) {
      accepted.push(...events);
      if (pipeline) return pipeline.intake.accept(events);
      const fresh = await store.recordInbound(events.map((e) => `in:${e.idempotencyKey}`), clock.now());
      return { accepted: fresh.filter(Boolean).length, duplicates: fresh.filter((f) => !f).length };
    },
  };
  const logger = o.logger ?? silentLogger;
  const connectorOptions: Parameters<typeof createHubspotConnector>[0] = {
    env: {
      ...(o.privateToken === false ? {} : { accessToken: sb.accessToken }),
      ...(o.oauth === false ? {} : { clientId: sb.clientId }),
      ...(o.clientSecret === null ? {} : { clientSecret: o.clientSecret ?? CLIENT_SECRET }),
      apiBaseUrl: sb.url,
      publicUrl,
      appId: sb.appId,
    },
    mode: 'sandbox',
    store,
    secrets: createSecretBox(SECRETS_KEY),
    logger,
    clock,
    intake: o.intake ?? recordingIntake,
    tuning: { now: time.now, sleep: time.sleep, retryBaseMs: 10, timeoutMs: 2_000, ...o.tuning },
  };
  const connector = await createHubspotConnector(connectorOptions);
  app.route('/', connector.routes);
  if (o.pipeline) {
    pipeline = createPipeline({ store, clock, logger, crm: (id) => (id === 'hubspot' ? connector.crm : undefined), messenger: messenger.port, options: { backoffBaseMs: 1000 } });
    await store.saveConfig(parseRoutingConfig(SAMPLE_CONFIG), { author: 'test', note: '', at: clock.now() });
  }
  if (o.start !== false) await connector.start();

  /** Runs pipeline jobs until nothing is due (moving the clock past retry backoffs when asked). */
  async function drain(opts2: { advanceMs?: number } = {}) {
    if (!pipeline) throw new Error('harness started without the pipeline');
    for (let i = 0; i < 200; i++) {
      const r = await pipeline.runDue();
      if (r.jobs === 0 && r.timers === 0) {
        if (!opts2.advanceMs || (await store.pendingJobs()) === 0) return;
        clock.advance(opts2.advanceMs);
      }
    }
    throw new Error('pipeline did not settle');
  }

  return {
    sb,
    connector,
    store,
    clock,
    time,
    publicUrl,
    accepted,
    messenger,
    get pipeline() {
      return pipeline!;
    },
    drain,
    company: (name: string) => sb.companyByName(name)!,
    /** A second service instance's connector on the same store and sandbox (stop it when done). */
    async anotherInstance() {
      const c = await createHubspotConnector(connectorOptions);
      await c.start();
      return c;
    },
    async close() {
      await connector.stop();
      await sb.close();
      (server as import('node:http').Server).closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await store.close();
    },
  };
}

const FIELDS: RoutingFields = { status: 'assigned', queue: 'Priority', agent: 'Bruno Costa', segment: 'premium · billing', tier: 'premium', rule: 'premium', routedAt: '2026-11-02T09:00:00.000Z', topicLink: 'https://t.me/c/1/5', firstResponseMinutes: null, resolvedAt: null, slaMet: null, reason: 'Priority -> Bruno Costa (rule premium)' };

/** A 'routed' write-back for a ticket, as the pipeline would send it. */
export function writeBackFor(x: Harness, ticketId: string, companyId: string | null, seq = 1): CrmWriteBack {
  const key = ticketKey({ crm: 'hubspot', account: x.sb.portalId, ticketId });
  return { entry: { key: `${key}#${seq}`, ticketKey: key, seq, kind: 'routed', at: x.clock.now(), queueId: 'priority', agentId: 'bruno', ruleId: 'premium', tier: 'premium', text: 'Routed to Priority' }, fields: FIELDS, companyId };
}
