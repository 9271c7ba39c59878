// A Salesforce sandbox on loopback, the real connector (real jsforce) pointed at it, its routes served over HTTP so
// the sandbox's Outbound Messages arrive the way Salesforce's do, and optionally the real pipeline behind the intake.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { parseRoutingConfig } from '../../../core/config.ts';
import { createPipeline } from '../../../core/pipeline.ts';
import type { Clock, CreateTopicRequest, Intake, IntakeEvent, Logger, MessengerPort, PostRequest, TopicRef } from '../../../core/ports.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { createSalesforceConnector, type SalesforceConnectorOptions } from '../../../connectors/salesforce/index.ts';
import { startSalesforceSandbox, type SalesforceSandboxOptions } from '../../../connectors/salesforce/sandbox/index.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { buildOutboundMessage } from '../../../connectors/salesforce/outbound-message.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';
import { silentLogger } from '../../../server/logger.ts';
import { SAMPLE_CONFIG } from '../../../server/sandbox/sample-config.ts';

export const SECRETS_KEY = 'test-secrets-key-0123456789abcdefghij';

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

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export async function startHarness(o: {
  sandbox?: SalesforceSandboxOptions;
  pipeline?: boolean;
  intake?: Intake;
  connector?: Partial<Pick<SalesforceConnectorOptions, 'tuning' | 'cdcRetryMs'>>;
  orgIds?: (sandboxOrg: string) => string[];
  logger?: Logger;
  start?: boolean;
} = {}) {
  const clock = new ManualClock();
  const store = createMemoryStore({ clock });
  const app = new Hono();
  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: (req) => app.fetch(req), port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sb = await startSalesforceSandbox({ outboundUrl: `${publicUrl}/webhooks/salesforce`, seed: true, ...o.sandbox });

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
  const connector = await createSalesforceConnector({
    env: { loginUrl: sb.url, orgIds: o.orgIds ? o.orgIds(sb.orgId) : [sb.orgId], publicUrl },
    mode: 'sandbox',
    store,
    secrets: createSecretBox(SECRETS_KEY),
    logger,
    clock,
    intake: o.intake ?? recordingIntake,
    tuning: { sleep: async () => {}, retryBaseMs: 1, ...o.connector?.tuning },
    ...(o.connector?.cdcRetryMs !== undefined ? { cdcRetryMs: o.connector.cdcRetryMs } : { cdcRetryMs: 20 }),
  });
  app.route('/', connector.routes);
  if (o.pipeline) {
    pipeline = createPipeline({ store, clock, logger, crm: (id) => (id === 'salesforce' ? connector.crm : undefined), messenger: messenger.port, options: { backoffBaseMs: 1000 } });
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

  let extraNotes = 0;
  return {
    sb,
    connector,
    store,
    clock,
    publicUrl,
    accepted,
    messenger,
    get pipeline() {
      return pipeline!;
    },
    drain,
    /** POSTs a raw body to the webhook, as Salesforce would. */
    async postWebhook(body: string) {
      const r = await fetch(`${publicUrl}/webhooks/salesforce`, { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' }, body });
      return { status: r.status, text: await r.text(), contentType: r.headers.get('content-type') };
    },
    /** A new Outbound Message (fresh Notification Id) for an existing Case. */
    async postWebhookForCase(caseId: string) {
      return this.postWebhookForOrg(sb.orgId, caseId);
    },
    async postWebhookForOrg(orgId: string, caseId: string) {
      const id = to18(`04lTX${String(++extraNotes).padStart(10, '0')}`);
      return this.postWebhook(buildOutboundMessage({ orgId, actionId: to18('04kTL0000000001'), instanceUrl: sb.url, notifications: [{ id, type: 'Case', fields: { Id: caseId } }] }));
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
