// A pipeline on the in-memory store with recording CRM and Telegram ports. The ports behave like the platforms on
// the points the pipeline relies on (idempotency keys, deleted topics, failures), so tests can assert exactly-once.
import { AppError } from '../../core/errors.ts';
import { createPipeline, type PipelineOptions } from '../../core/pipeline.ts';
import type { CreateTopicRequest, CrmContext, CrmPort, CrmWriteBack, MessengerPort, PostRequest, TopicRef } from '../../core/ports.ts';
import { ticketKey, type TicketRef } from '../../core/segment.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';
import { silentLogger } from '../../server/logger.ts';
import { createConfigService } from '../../server/config-service.ts';
import { segment } from '../core/fixtures.ts';
import type { RoutingConfigInput } from '../../core/config.ts';

export class ManualClock {
  t = Date.UTC(2026, 10, 2, 9, 0, 0);
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

export function fakeCrm() {
  const contexts = new Map<string, CrmContext>();
  const writes: (CrmWriteBack & { ref: TicketRef })[] = [];
  const seen = new Set<string>();
  let failNext: AppError[] = [];
  const port: CrmPort = {
    crm: 'hubspot',
    async fetchContext(ref) {
      const f = failNext.shift();
      if (f) throw f;
      const c = contexts.get(ticketKey(ref));
      if (!c) throw new AppError('not_found', `Ticket ${ref.ticketId} was deleted in HubSpot.`);
      return structuredClone(c);
    },
    async writeBack(ref, update) {
      if (seen.has(update.entry.key)) return; // the CRM side dedupes on the entry key
      seen.add(update.entry.key);
      writes.push({ ...structuredClone(update), ref });
    },
  };
  return {
    port,
    writes,
    failNext: (...e: AppError[]) => (failNext = e),
    /** Closes the record in the CRM (the connectors report it as closedInCrm). */
    close(ref: TicketRef) {
      contexts.get(ticketKey(ref))!.closedInCrm = true;
    },
    add(ticketId: string, over: Parameters<typeof segment>[0] = {}, subject = `Issue ${ticketId}`): TicketRef {
      const ref: TicketRef = { crm: 'hubspot', account: '42', ticketId };
      contexts.set(ticketKey(ref), {
        ref,
        subject,
        description: 'Customer cannot log in.',
        customerName: 'Pat Doe',
        companyName: 'Acme Corp',
        recordUrl: `https://app.hubspot.com/contacts/42/record/0-5/${ticketId}`,
        segment: segment({ ...over, source: { ref, companyId: 'co-1', contactId: 'ct-1' } }),
        issues: [],
      });
      return ref;
    },
  };
}

export function fakeTelegram() {
  const topics: { groupId: string; topicId: number; title: string; randomId: string; deleted: boolean; priority: number | undefined }[] = [];
  const posts: (PostRequest & { messageId: number })[] = [];
  const closed: TopicRef[] = [];
  let nextId = 100;
  let crashAfterCreate = false;
  const port: MessengerPort = {
    async createTopic(req: CreateTopicRequest) {
      let t = topics.find((x) => x.randomId === req.randomId && !x.deleted);
      if (!t) {
        t = { groupId: req.groupId, topicId: nextId++, title: req.title, randomId: req.randomId, deleted: false, priority: req.priority };
        topics.push(t);
      }
      const ref = { groupId: t.groupId, topicId: t.topicId, link: `https://t.me/c/1/${t.topicId}` };
      if (crashAfterCreate) {
        crashAfterCreate = false;
        throw new Error('connection reset after the topic was created');
      }
      return ref;
    },
    async post(req) {
      const t = topics.find((x) => x.groupId === req.topic.groupId && x.topicId === req.topic.topicId);
      if (!t || t.deleted) throw new AppError('topic_gone', 'TOPIC_DELETED');
      const dup = posts.find((p) => p.randomId === req.randomId);
      if (dup) return { messageId: dup.messageId };
      const messageId = nextId++;
      posts.push({ ...req, messageId });
      return { messageId };
    },
    async closeTopic(t) {
      closed.push(t);
    },
  };
  return { port, topics, posts, closed, crashAfterCreate: () => (crashAfterCreate = true) };
}

export async function harness(config: RoutingConfigInput, options: Partial<PipelineOptions> = {}) {
  const clock = new ManualClock();
  const store = createMemoryStore({ clock });
  const crm = fakeCrm();
  const tg = fakeTelegram();
  /** Every metric increment, as "name result=…" strings with their labels, for counting what a leader would see. */
  const counted: { name: string; labels: Record<string, string>; by: number }[] = [];
  const metrics = { inc: (name: string, labels: Record<string, string> = {}, by = 1) => void counted.push({ name, labels, by }), observe: () => {} };
  const pipeline = createPipeline({ store, clock, logger: silentLogger, metrics, crm: () => crm.port, messenger: tg.port, options: { backoffBaseMs: 1000, ...options } });
  await createConfigService(store, clock).save(config, { author: 'test', note: '' });
  /** Runs jobs and timers until nothing is due now. */
  const drain = async () => {
    for (let i = 0; i < 100; i++) {
      const r = await pipeline.runDue();
      if (r.jobs === 0 && r.timers === 0) return;
    }
    throw new Error('pipeline did not settle');
  };
  return { clock, store, crm, tg, pipeline, drain, counted };
}
