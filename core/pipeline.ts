// The ticket pipeline: intake -> fresh CRM read -> route -> Telegram topic + card -> CRM write-back -> later events.
//
// Durability model: every state change is one Store.commit (atomic), and every side effect runs from a job in the
// durable outbox. A job's id is deterministic, so enqueuing it twice is a no-op; each side effect carries its own
// idempotency key (topic random_id, message random_id, history entry key) so running a job twice after a crash has
// the effect once. Timers are stored deadlines. The runner (server/worker.ts) calls runDue() in a loop.
import { AppError, errorMessage, isRetryable } from './errors.ts';
import { parseRoutingConfig } from './config.ts';
import { explainDecision } from './explain.ts';
import { createRouter, effectOps, stateOf, type Decision, type Router } from './route.ts';
import { SEGMENT_FIELDS, segmentLabel, ticketKey, type CrmId, type TicketRef } from './segment.ts';
import { COMMAND_HELP, ticketCard, topicTitle } from './cards.ts';
import { fnv64 } from './ids.ts';
import type {
  Batch,
  Clock,
  CommitOptions,
  CounterOp,
  CreateTopicRequest,
  CrmContext,
  CrmPort,
  HistoryEntry,
  HistoryKind,
  Intake,
  IntakeEvent,
  Job,
  JobKind,
  Logger,
  Mention,
  MessengerEvent,
  MessengerPort,
  Metrics,
  RoutingCounters,
  Reservation,
  RoutingFields,
  Store,
  TicketRecord,
  Timer,
  WaitingTicket,
} from './ports.ts';
import { isOpenTicket } from './ports.ts';
import type { AgentStatus } from './config.ts';

export type PipelineOptions = {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Telegram pacing can hold a send for minutes; a lease shorter than that would let a second worker run it. */
  leaseMs: number;
  batchSize: number;
  /**
   * Steps in flight at once. Claimed steps do not wait for each other: a Telegram send held back by flood control
   * waits in the connector's priority queue while other tickets' steps (and higher tiers' sends) go ahead.
   */
  maxInFlight: number;
  /** How long an agent may be offline (presence) before their unanswered tickets move. */
  offlineGraceMs: number;
};

/**
 * Marking a step done after its side effect need not wait for the disk: if a crash loses the mark, the step runs
 * again and its side effect is idempotent (random ids, upserts by key). It takes a flush off every step's time.
 */
const DONE_AFTER_SIDE_EFFECT = { awaitFlush: false } as const;
/**
 * The next steps may start while the disk syncs the batch that queues them (Store.commit): for batches a power cut may
 * take only with the step (or CRM delivery) that made them, so it runs again, and whose steps' side effects are
 * idempotent on records already saved. See intake and runTopic.
 */
const NEXT_STEPS_WHILE_SAVING = { stepsBeforeSaved: true } as const;
/** Intake reasons whose every event gets a route step of its own (tag in the step id); see intake. */
const STEP_PER_EVENT: Partial<Record<IntakeEvent['reason'], string>> = { changed: 'chg', workflow: 'wf', status: 'st' };
/** Waiting tickets tried per decision turn when capacity frees up; the turn is then handed on (see assignWaiting). */
const WAITING_SCAN = 100;

const DEFAULTS: PipelineOptions = { maxAttempts: 8, backoffBaseMs: 1_000, backoffMaxMs: 5 * 60_000, leaseMs: 10 * 60_000, batchSize: 32, maxInFlight: 256, offlineGraceMs: 2 * 60_000 };

export type PipelineDeps = {
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  crm: (id: CrmId) => CrmPort | undefined;
  messenger: MessengerPort;
  /** Called when new work is queued, so the worker can run at once instead of at its next poll. */
  wake?: () => void;
  options?: Partial<PipelineOptions>;
  /**
   * Wraps every step run (instrumentation: the server measures each step's own time against time spent waiting on
   * upstream calls). Must call run() exactly once and return its result.
   */
  observeStep?: (job: Job, run: () => Promise<void>) => Promise<void>;
  /**
   * A number in [0, 1) for retry jitter, so instances retrying the same upstream do not retry in step. Injected like
   * the clock to keep the core deterministic under test; the server passes Math.random.
   */
  random?: () => number;
};

/** History kinds that reps see on the CRM record. SLA reminders stay in Tierline's own history. */
const WRITTEN_BACK: ReadonlySet<HistoryKind> = new Set(['routed', 'assigned', 'first_reply', 'reply_by_other', 'reassigned', 'overflow', 'sla_breached', 'escalated', 'resolved', 'reopened', 'topic_recreated']);
const TIER_PRIORITY = { enterprise: 40, premium: 30, standard: 20, free: 10 } as const;
const NO_METRICS: Metrics = { inc() {}, observe() {} };

export type Pipeline = ReturnType<typeof createPipeline>;

export function createPipeline(deps: PipelineDeps) {
  const { store, clock, messenger } = deps;
  const log = deps.logger;
  const metrics = deps.metrics ?? NO_METRICS;
  // Without a source of randomness, no jitter: the middle of the range.
  const random = deps.random ?? (() => 0.5);
  const opt: PipelineOptions = { ...DEFAULTS, ...deps.options };
  let cached: { version: number; router: Router } | null = null;

  async function currentRouter(): Promise<Router> {
    const v = await store.getConfig();
    if (!v) throw new AppError('misconfigured', 'No routing configuration saved yet; save rules, queues and agents in the console or PUT /api/v1/config, then retry this step.');
    if (!cached || cached.version !== v.version) cached = { version: v.version, router: createRouter(parseRoutingConfig(v.config)) };
    return cached.router;
  }

  function crmOf(ref: TicketRef): CrmPort {
    const port = deps.crm(ref.crm);
    if (!port) throw new AppError('misconfigured', `No ${ref.crm} connector is configured; connect ${ref.crm} or remove its webhook.`);
    return port;
  }

  function job(kind: JobKind, id: string, ticketKey: string, payload: Record<string, unknown>, at: number, delayMs = 0): Job {
    return { id, kind, ticketKey, payload, attempts: 0, nextAt: at + delayMs, status: 'pending', lastError: null, leaseUntil: 0, createdAt: at };
  }

  /**
   * The store's exclusive section. Steps queued inside it can be claimed once the section's writes are saved, which
   * may be after the commit inside it returned (the lowdb store saves a section's writes after its turn), so the
   * worker is woken again then.
   */
  async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const out = await store.exclusive(fn);
    deps.wake?.();
    return out;
  }

  async function commit(batch: Batch, opts?: CommitOptions): Promise<void> {
    const reserved = await reservationsFor(batch);
    // Submitted in the same tick: the lowdb store saves them in one write and one fsync. Neither order matters for
    // safety: a reservation that is missing is written by the connector before its call, one without its step unused.
    // A step must not run before its reservation is on disk, so a batch carrying one waits for the disk after all.
    const o = opts?.stepsBeforeSaved && reserved.length ? { awaitFlush: opts.awaitFlush ?? true } : opts;
    await Promise.all([...reserved.map((r) => store.kvPut(r.ns, r.key, r.value)), store.commit(batch, o)]);
    if (batch.jobs?.length) deps.wake?.();
  }

  /**
   * The connectors' records (see MessengerPort.reserveTopic) for the topic steps a batch queues and for the write-back
   * of each history entry it records. They would otherwise be written in the step, each a durable write of its own
   * on the ticket's path between two upstream calls. The routing entry's write-back is queued later, by the topic
   * step (it carries the topic link), but is reserved here with the decision: the topic step's batch then holds no
   * record its next steps depend on, so they may start before it is on disk.
   */
  async function reservationsFor(batch: Batch): Promise<Reservation[]> {
    if (!batch.tickets?.length || (!batch.jobs?.length && !batch.history?.length)) return [];
    const asks: Promise<Reservation[]>[] = [];
    const ticket = (key: string) => batch.tickets!.find((x) => x.key === key);
    for (const j of batch.jobs ?? []) {
      const t = j.kind === 'topic' ? ticket(j.ticketKey) : undefined;
      if (t?.topicRandomId && t.topicGroupId && messenger.reserveTopic) asks.push(messenger.reserveTopic(topicRequest(t)));
    }
    for (const e of batch.history ?? []) {
      const t = WRITTEN_BACK.has(e.kind) ? ticket(e.ticketKey) : undefined;
      const crm = t ? deps.crm(t.ref.crm) : undefined;
      if (crm?.reserveWriteBack) asks.push(crm.reserveWriteBack(t!.ref, e.key));
    }
    if (!asks.length) return [];
    // A reservation that fails is only an optimisation lost: the connector then writes its record in the step.
    const unreserved = (err: unknown): Reservation[] => {
      log.warn('a connector could not reserve its record with the step; it writes it in the step instead', { error: errorMessage(err) });
      return [];
    };
    return (await Promise.all(asks.map((a) => a.catch(unreserved)))).flat();
  }

  /** What createTopic gets for a ticket's placed topic (the same at reservation and at the call). */
  function topicRequest(t: TicketRecord): CreateTopicRequest {
    const title = topicTitle(t.segment?.tier ?? null, t.companyName ?? t.customerName, t.subject);
    return { ticketKey: t.key, groupId: t.topicGroupId!, title, tier: t.segment?.tier ?? null, randomId: t.topicRandomId!, priority: priorityOf(t, clock.now()) };
  }

  /** Mutates a ticket under the store's exclusive section; build returns the batch (or null to do nothing). */
  async function withTicket(key: string, build: (t: TicketRecord, router: Router, now: number) => Promise<Batch | null> | Batch | null, opts?: CommitOptions): Promise<boolean> {
    return exclusive(async () => {
      const t = await store.getTicket(key);
      if (!t) return false;
      const router = await currentRouter();
      // The store hands out copies (its contract): build may change this one freely.
      const batch = await build(t, router, clock.now());
      if (!batch) return false;
      await commit(batch, opts);
      return true;
    });
  }

  function entry(t: TicketRecord, kind: HistoryKind, text: string, at: number, explanation?: string[]): HistoryEntry {
    t.seq += 1;
    const e: HistoryEntry = { key: `${t.key}#${t.seq}`, ticketKey: t.key, seq: t.seq, kind, at, queueId: t.queueId ?? '', agentId: t.agentId, ruleId: t.ruleId, tier: t.segment?.tier ?? null, text };
    if (explanation) e.explanation = explanation;
    return e;
  }

  /** The jobs that publish a history entry: to the CRM record, and (optionally) as a message in the topic. */
  function publish(t: TicketRecord, e: HistoryEntry, now: number, post?: { text: string; mention?: Mention; pin?: boolean }): Job[] {
    const jobs: Job[] = [];
    if (WRITTEN_BACK.has(e.kind)) jobs.push(job('writeback', `wb:${e.key}`, t.key, { entryKey: e.key }, now));
    if (post) jobs.push(job('post', `post:${e.key}`, t.key, { ...post, priority: priorityOf(t, now) }, now));
    return jobs;
  }

  function priorityOf(t: TicketRecord, now: number): number {
    const tier = t.segment?.tier ? TIER_PRIORITY[t.segment.tier] : 0;
    // Nearer SLA deadlines go first within a tier band: up to +9 as the deadline approaches within the hour.
    const urgency = t.slaDueAt ? Math.max(0, Math.min(9, 9 - Math.floor((t.slaDueAt - now) / 400_000))) : 0;
    return tier + urgency;
  }

  function mentionOf(router: Router, agentId: string | null): Mention | undefined {
    if (!agentId) return undefined;
    const a = router.agent(agentId);
    if (!a) return undefined;
    const m: Mention = { name: a.name };
    if (a.telegramUserId) m.telegramUserId = a.telegramUserId;
    if (a.telegramUsername) m.telegramUsername = a.telegramUsername;
    return m;
  }

  function agentName(router: Router, id: string | null): string | null {
    return id ? (router.agent(id)?.name ?? id) : null;
  }

  function slaTimers(t: TicketRecord, router: Router): Timer[] {
    if (!t.slaDueAt || t.firstResponseAt || t.enqueuedAt === null || !t.queueId) return [];
    const q = router.queue(t.queueId);
    const reminderAt = t.enqueuedAt + (t.slaDueAt - t.enqueuedAt) * q.slaReminderAt;
    return [
      { id: `sla_reminder:${t.key}`, kind: 'sla_reminder', at: reminderAt, ticketKey: t.key },
      { id: `sla_breach:${t.key}`, kind: 'sla_breach', at: t.slaDueAt, ticketKey: t.key },
    ];
  }

  function overflowTimer(t: TicketRecord, router: Router, now: number): Timer[] {
    if (t.status !== 'waiting' || !t.queueId) return [];
    const q = router.queue(t.queueId);
    if (!q.overflow?.afterSeconds) return [];
    const at = Math.max(now, (t.enqueuedAt ?? now) + q.overflow.afterSeconds * 1000 + 1);
    return [{ id: `overflow_check:${t.key}`, kind: 'overflow_check', at, ticketKey: t.key }];
  }

  /** Applies a routing decision to a ticket record and returns the counter changes it implies. */
  function applyDecision(t: TicketRecord, d: Decision, router: Router, now: number, previousQueue: string | null): CounterOp[] {
    const ops = effectOps(d.effects);
    if (previousQueue) ops.push({ op: 'unwait', queueId: previousQueue, ticketKey: t.key });
    if (d.outcome === 'held') ops.push({ op: 'wait', queueId: d.queueId, ticketKey: t.key, since: d.enqueuedAt });
    const overflows = d.steps.filter((s) => s.overflow).length;
    if (overflows) {
      t.overflowCount += overflows;
      for (const s of d.steps) if (s.overflow) metrics.inc('tierline_overflow_total', { queue: s.queueId, reason: s.overflow.reason });
    }
    const x = explainDecision(router, d);
    t.queueId = d.queueId;
    t.agentId = d.agentId;
    if (d.rule) t.ruleId = d.rule.id;
    t.status = d.outcome === 'assigned' ? 'assigned' : 'waiting';
    t.summary = x.summary;
    t.explanation = x.lines;
    t.slaDueAt = d.slaDueAt;
    t.enqueuedAt = d.enqueuedAt;
    t.updatedAt = now;
    metrics.inc('tierline_decisions_total', { tier: t.segment?.tier ?? 'unknown', queue: d.queueId, outcome: d.outcome });
    return ops;
  }

  // ------------------------------------------------------------------ intake

  const intake: Intake = {
    async accept(events: IntakeEvent[]) {
      const now = clock.now();
      // The route jobs are committed on every delivery, seen before or not (their ids are per ticket, so a repeat is
      // ignored by the store); the inbound keys only count duplicates. So the two writes need no order: a crash
      // between them is repaired by the redelivery, and submitted together they share one log write (one fsync).
      // A change event gets a step of its own (re-routing on the fields that decide the segment is opted into per
      // CRM account, so connectors only send 'changed' when the admin asked for it). So does a workflow enrolment: a
      // workflow waits for its answer, and a ticket enrolled again after it was found closed (and not routed) must be
      // read again, to answer the new enrolment or route it if it was reopened; once routed, the step is a no-op.
      // A status change (closed in the CRM?) gets its own too. Every other reason shares the ticket's one route step.
      const jobs = events.map((e) => {
        const key = ticketKey(e.ref);
        const own = STEP_PER_EVENT[e.reason];
        const id = own ? `route:${key}:${own}:${e.idempotencyKey}` : `route:${key}`;
        return job('route', id, key, { ref: e.ref, reason: e.reason, at: e.at }, now);
      });
      // The route steps may start at once (their first call only reads the CRM; their decision is written after these
      // records, so it cannot be saved without them), but the delivery is acknowledged only once all is on disk.
      const [, fresh] = await Promise.all([commit({ jobs }, NEXT_STEPS_WHILE_SAVING), store.recordInbound(events.map((e) => `in:${e.idempotencyKey}`), now)]);
      await store.saved();
      const accepted = fresh.filter(Boolean).length;
      for (const e of events) metrics.inc('tierline_events_received_total', { crm: e.ref.crm });
      if (events.length - accepted) metrics.inc('tierline_events_duplicate_total', {}, events.length - accepted);
      return { accepted, duplicates: events.length - accepted };
    },
  };

  // ------------------------------------------------------------------ jobs

  async function runRoute(j: Job): Promise<void> {
    const ref = j.payload.ref as TicketRef;
    const at = typeof j.payload.at === 'number' ? j.payload.at : clock.now();
    const existing = await store.getTicket(j.ticketKey);
    if (j.payload.reason === 'status') return void (await (existing?.routedAt && existing.status !== 'resolved' ? reroute(j, ref) : commit({ completeJobs: [j.id] })));
    if (existing?.routedAt) return void (await (j.payload.reason === 'changed' ? reroute(j, ref) : commit({ completeJobs: [j.id] })));
    // Read fresh at routing time: a cached tier would route on yesterday's contract.
    const ctx = await crmOf(ref).fetchContext(ref);
    if (ctx.closedInCrm) {
      // Closed before Tierline saw it (a change to an old ticket, one from before the install, or one whose routing
      // Tierline has forgotten under its retention window): opening a topic for it would put dead work in front of an
      // agent. Counted and logged, so an admin can see why. The answer changes the CRM, so it waits until the delivery
      // that asked for it is on disk (intake lets this step start while it is being saved).
      await store.saved();
      await crmOf(ref).notRouted?.(ref, 'closed_in_crm');
      await commit({ completeJobs: [j.id] });
      metrics.inc('tierline_routing_skipped_total', { crm: ref.crm, reason: 'closed_in_crm' });
      log.info('ticket not routed: it is closed in the CRM', { ticket: j.ticketKey });
      return;
    }
    await exclusive(async () => {
      if ((await store.getTicket(j.ticketKey))?.routedAt) return void (await commit({ completeJobs: [j.id] }));
      const router = await currentRouter();
      const now = clock.now();
      const enqueuedAt = Math.min(at, now);
      const d = router.route({ segment: ctx.segment, now, enqueuedAt }, stateOf(await store.routingCounters()));
      const t = newTicket(j.ticketKey, ctx, now);
      t.tierSource = d.tier.source;
      if (d.tier.tier !== ctx.segment.tier) t.segment = { ...ctx.segment, tier: d.tier.tier };
      const ops = applyDecision(t, d, router, now, null);
      t.routedAt = now;
      await placeTopic(t, router, 0);
      const e = entry(t, 'routed', `Routed to ${t.summary}`, now, t.explanation);
      const jobs = [job('topic', `topic:${t.key}:g0`, t.key, { generation: 0 }, now)];
      await commit({ tickets: [t], history: [e], counters: ops, jobs, timers: [...slaTimers(t, router), ...overflowTimer(t, router, now)], completeJobs: [j.id] });
      log.info('ticket routed', { ticket: t.key, queue: t.queueId, agent: t.agentId, outcome: d.outcome, rule: t.ruleId });
    });
  }

  /**
   * The CRM record changed after routing: read it fresh and route again. Only a ticket nobody has answered moves
   * (an agent already talking to the customer keeps it); a move is a 'reassigned' entry naming the changed fields,
   * posted in the topic (which stays where it is, as with an escalation) and written back. A ticket closed in the CRM
   * is resolved instead; a status event only does that.
   */
  async function reroute(j: Job, ref: TicketRef): Promise<void> {
    const ctx = await crmOf(ref).fetchContext(ref);
    if (ctx.closedInCrm) {
      // Closed in the CRM (a rep solved it there, a workflow closed it): nobody in Telegram has work left on it, and
      // its SLA timers would otherwise breach and escalate a ticket that is done. Resolved here with that reason (its
      // topic closed, the resolution written back); a crash in between repeats an idempotent resolve.
      await resolve(j.ticketKey, clock.now(), 'closed in the CRM');
      await commit({ completeJobs: [j.id] });
      return;
    }
    if (j.payload.reason === 'status') return void (await commit({ completeJobs: [j.id] }));
    await exclusive(async () => {
      const t0 = await store.getTicket(j.ticketKey);
      if (!t0?.routedAt || t0.status === 'resolved' || t0.firstResponseAt || !t0.queueId || !t0.segment) return void (await commit({ completeJobs: [j.id] }));
      const router = await currentRouter();
      const now = clock.now();
      const counters = await store.routingCounters();
      const t = structuredClone(t0);
      const d = router.route({ segment: ctx.segment, now, enqueuedAt: t.enqueuedAt ?? now }, stateOf(counters));
      const fresh = d.tier.tier !== ctx.segment.tier ? { ...ctx.segment, tier: d.tier.tier } : ctx.segment;
      const changed = SEGMENT_FIELDS.filter((f) => JSON.stringify(t0.segment![f] ?? null) !== JSON.stringify(fresh[f] ?? null));
      t.segment = fresh;
      t.issues = ctx.issues;
      t.tierSource = d.tier.source;
      t.updatedAt = now;
      if (d.queueId === t0.queueId) return void (await commit({ tickets: [t], completeJobs: [j.id] }));
      const ops: CounterOp[] = [];
      if (t0.agentId && t0.status === 'assigned') ops.push({ op: 'load', agentId: t0.agentId, delta: -1 });
      ops.push(...applyDecision(t, d, router, now, t0.queueId));
      t.reassignCount += 1;
      const text = `Re-routed after the CRM record changed (${changed.length ? changed.join(', ') : 'routing data'}): ${t.summary}`;
      const e = entry(t, 'reassigned', text, now, t.explanation);
      const timers = [...slaTimers(t, router), ...overflowTimer(t, router, now)];
      const stale = ['sla_reminder', 'sla_breach', 'overflow_check'].map((k) => `${k}:${t.key}`).filter((id) => !timers.some((x) => x.id === id));
      const mention = mentionOf(router, t.agentId);
      await commit({
        tickets: [t],
        history: [e],
        counters: ops,
        jobs: publish(t, e, now, { text: `🔀 ${text}\n${t.explanation.map((l) => `• ${l}`).join('\n')}`, ...(mention ? { mention } : {}) }),
        timers,
        cancelTimers: stale,
        completeJobs: [j.id],
      });
      log.info('ticket re-routed', { ticket: t.key, from: t0.queueId, queue: t.queueId, agent: t.agentId, changed });
    });
  }

  function newTicket(key: string, ctx: CrmContext, now: number): TicketRecord {
    return {
      key,
      ref: ctx.ref,
      status: 'received',
      receivedAt: now,
      updatedAt: now,
      subject: ctx.subject,
      customerName: ctx.customerName,
      companyName: ctx.companyName,
      companyId: ctx.segment.source.companyId,
      recordUrl: ctx.recordUrl,
      segment: ctx.segment,
      issues: ctx.issues,
      tierSource: null,
      queueId: null,
      agentId: null,
      ruleId: null,
      summary: null,
      explanation: [],
      enqueuedAt: null,
      routedAt: null,
      slaDueAt: null,
      topic: null,
      topicRandomId: null,
      topicGroupId: null,
      topicGeneration: 0,
      firstResponseAt: null,
      firstResponderId: null,
      resolvedAt: null,
      slaMet: null,
      overflowCount: 0,
      reassignCount: 0,
      escalated: false,
      seq: 0,
    };
  }

  async function runTopic(j: Job): Promise<void> {
    const generation = Number(j.payload.generation ?? 0);
    let t = await store.getTicket(j.ticketKey);
    if (!t) throw new AppError('not_found', `Ticket ${j.ticketKey} is not in the store; it may have been purged.`);
    if (t.topic && t.topicGeneration >= generation) return void (await commit({ completeJobs: [j.id] }));
    if (!t.topicRandomId || !t.topicGroupId || t.topicGeneration !== generation) {
      // A recreated topic (or a first one whose group could not be chosen at routing) picks its group here, stored
      // before the call for the same reason.
      await withTicket(t.key, async (cur, router) => {
        await placeTopic(cur, router, generation, { strict: true });
        return { tickets: [cur] };
      });
      t = (await store.getTicket(j.ticketKey))!;
    }
    const topic = await messenger.createTopic({ ...topicRequest(t), firstRun: j.claims === 1 });
    // The card and the write-back start while this is saved. A power cut that takes it runs this step again: the
    // connector's record (saved with the decision) makes it find the topic it made, the card's random_id makes Telegram
    // refuse a second card, and the note's record (saved with the decision, or with this batch, which then waits for
    // the disk) makes HubSpot's write-back find its note.
    await withTicket(t.key, (cur, router, now) => {
      cur.topic = topic;
      cur.updatedAt = now;
      const queueName = cur.queueId ? router.queue(cur.queueId).name : '';
      const card = ticketCard(cur, null, cur.explanation, agentName(router, cur.agentId), queueName);
      const jobs: Job[] = [job('post', `post:${cur.key}:card:g${generation}`, cur.key, { text: card, mention: mentionOf(router, cur.agentId), pin: true, priority: priorityOf(cur, now) }, now)];
      const history: HistoryEntry[] = [];
      if (generation === 0) {
        // The routing outcome goes to the CRM once the topic exists, so the record carries the topic link.
        jobs.push(job('writeback', `wb:${cur.key}#1`, cur.key, { entryKey: `${cur.key}#1` }, now));
      } else {
        const e = entry(cur, 'topic_recreated', `Telegram topic was deleted; recreated at ${topic.link}`, now);
        history.push(e);
        jobs.push(...publish(cur, e, now));
      }
      return { tickets: [cur], history, jobs, completeJobs: [j.id] };
    }, NEXT_STEPS_WHILE_SAVING);
  }

  /**
   * Chooses the forum group and random_id of a ticket's topic, on the record the caller commits: they must be stored
   * before createTopic, so a retry after a crash sends the same ones (a different group would open a second topic).
   * Done inside an exclusive section so concurrent tickets see each other's choice. A new ticket gets them with its
   * routing decision (one durable write fewer before its topic); if no group can be chosen then (strict false), the
   * topic step tries again and fails there, visibly, while the ticket stays routed.
   */
  async function placeTopic(t: TicketRecord, router: Router, generation: number, opts: { strict?: boolean } = {}): Promise<void> {
    let groupId: string;
    try {
      groupId = await pickGroup(t, router);
    } catch (err) {
      if (opts.strict || !(err instanceof AppError && err.code === 'misconfigured')) throw err;
      return;
    }
    t.topicGroupId = groupId;
    t.topicGeneration = generation;
    t.topicRandomId = fnv64(`topic:${t.key}:g${generation}`);
  }

  /** Spreads a queue's topics over its groups: the group with the fewest open tickets, ties by order. */
  async function pickGroup(t: TicketRecord, router: Router): Promise<string> {
    const q = t.queueId ? router.queue(t.queueId) : null;
    const candidates = q?.groups.length ? q.groups : router.config.groups.map((g) => g.id);
    if (!candidates.length) throw new AppError('misconfigured', `Queue "${t.queueId}" has no Telegram group and none is configured; add a forum group under groups and list it on the queue.`);
    if (candidates.length === 1) return candidates[0]!;
    const load = new Map(candidates.map((g) => [g, 0]));
    const counts = await store.openTicketsPerGroup();
    for (const g of candidates) load.set(g, counts[g] ?? 0);
    // The ticket itself does not count against the group it is leaving (a recreated topic).
    if (isOpenTicket(t) && t.topicGroupId && load.has(t.topicGroupId)) load.set(t.topicGroupId, Math.max(0, load.get(t.topicGroupId)! - 1));
    return candidates.reduce((best, g) => (load.get(g)! < load.get(best)! ? g : best));
  }

  async function runPost(j: Job): Promise<void> {
    const t = await store.getTicket(j.ticketKey);
    if (!t) throw new AppError('not_found', `Ticket ${j.ticketKey} is not in the store.`);
    if (!t.topic) throw new AppError('upstream', 'The ticket has no Telegram topic yet; the message is sent once the topic exists.');
    const p = j.payload as { text: string; mention?: Mention; pin?: boolean; priority?: number };
    try {
      const req = { topic: t.topic, text: p.text, randomId: fnv64(`${j.id}@${t.topic.groupId}/${t.topic.topicId}`), priority: p.priority ?? priorityOf(t, clock.now()) } as Parameters<MessengerPort['post']>[0];
      if (p.mention) req.mention = p.mention;
      if (p.pin) req.pin = true;
      await messenger.post(req);
      if (j.id.includes(':card:')) metrics.observe('tierline_notify_seconds', { tier: t.segment?.tier ?? 'unknown' }, (clock.now() - t.receivedAt) / 1000);
    } catch (err) {
      if (err instanceof AppError && err.code === 'topic_gone') await recreateTopic(t.key, t.topic.topicId);
      throw err;
    }
    await commit({ completeJobs: [j.id] }, DONE_AFTER_SIDE_EFFECT);
  }

  /** A topic that still needs messages was deleted: open a new one (once, however many sends hit the gap). */
  async function recreateTopic(key: string, goneTopicId: number): Promise<void> {
    await withTicket(key, (cur, _r, now) => {
      if (!cur.topic || cur.topic.topicId !== goneTopicId) return null;
      const generation = cur.topicGeneration + 1;
      cur.topic = null;
      cur.topicRandomId = null;
      cur.topicGeneration = generation;
      cur.updatedAt = now;
      return { tickets: [cur], jobs: [job('topic', `topic:${cur.key}:g${generation}`, cur.key, { generation }, now)] };
    });
  }

  async function runWriteback(j: Job): Promise<void> {
    const t = await store.getTicket(j.ticketKey);
    if (!t) throw new AppError('not_found', `Ticket ${j.ticketKey} is not in the store.`);
    const entryKey = String(j.payload.entryKey);
    const { entries } = await store.history({ ticketKey: t.key, limit: 10_000 });
    const e = entries.find((x) => x.key === entryKey);
    if (!e) throw new AppError('not_found', `History entry ${entryKey} is missing from the store.`);
    const router = await currentRouter();
    await crmOf(t.ref).writeBack(t.ref, { entry: e, fields: routingFields(t, router), companyId: t.companyId, history: entries, firstRun: j.claims === 1 });
    await commit({ completeJobs: [j.id] }, DONE_AFTER_SIDE_EFFECT);
  }

  /** The current outcome as reps see it on the record. Always from the latest state, so a late retry is not stale. */
  function routingFields(t: TicketRecord, router: Router): RoutingFields {
    const status: RoutingFields['status'] = t.status === 'resolved' ? 'resolved' : t.status === 'answered' ? 'answered' : t.status === 'assigned' ? 'assigned' : 'waiting';
    return {
      status,
      queue: t.queueId ? router.queue(t.queueId).name : '',
      agent: agentName(router, t.agentId),
      segment: t.segment ? segmentLabel(t.segment) : 'unknown',
      tier: t.segment?.tier ?? null,
      rule: t.ruleId,
      routedAt: new Date(t.routedAt ?? t.receivedAt).toISOString(),
      topicLink: t.topic?.link ?? null,
      firstResponseMinutes: t.firstResponseAt && t.enqueuedAt !== null ? Math.round(((t.firstResponseAt - t.enqueuedAt) / 60_000) * 10) / 10 : null,
      resolvedAt: t.resolvedAt ? new Date(t.resolvedAt).toISOString() : null,
      slaMet: t.slaMet,
      reason: t.summary ?? '',
    };
  }

  async function runCloseTopic(j: Job): Promise<void> {
    const t = await store.getTicket(j.ticketKey);
    if (t?.topic) {
      try {
        await messenger.closeTopic(t.topic);
      } catch (err) {
        // A topic someone already deleted is closed enough.
        if (!(err instanceof AppError && err.code === 'topic_gone')) throw err;
      }
    }
    await commit({ completeJobs: [j.id] }, DONE_AFTER_SIDE_EFFECT);
  }

  // ------------------------------------------------------------------ Telegram events

  async function onMessengerEvent(e: MessengerEvent): Promise<void> {
    const now = clock.now();
    const id =
      e.kind === 'message' ? `ev:msg:${e.groupId}:${e.messageId}` : e.kind === 'topic_closed' ? `ev:closed:${e.groupId}:${e.topicId}` : `ev:presence:${e.telegramUserId}:${e.at}`;
    await commit({ jobs: [job('event', id, e.kind === 'presence' ? `agent:${e.telegramUserId}` : `topic:${e.groupId}:${e.topicId}`, { event: e }, now)] });
  }

  async function runEvent(j: Job): Promise<void> {
    const e = j.payload.event as MessengerEvent;
    if (e.kind === 'presence') await onPresence(e.telegramUserId, e.online, e.at);
    else {
      const t = await store.findTicketByTopic(e.groupId, e.topicId);
      if (t && e.kind === 'message') await onTopicMessage(t.key, e);
      if (t && e.kind === 'topic_closed') await resolve(t.key, e.at, 'topic closed in Telegram');
    }
    // Awaited: replaying an agent's command (/reassign, /escalate) would act on it twice.
    await commit({ completeJobs: [j.id] });
  }

  async function onTopicMessage(key: string, e: Extract<MessengerEvent, { kind: 'message' }>): Promise<void> {
    const router = await currentRouter();
    const agent = router.config.agents.find((a) => a.telegramUserId === e.fromTelegramUserId);
    const text = e.text.trim();
    const command = /^\/([a-z_]+)(?:@\w+)?(?:\s+(.*))?$/i.exec(text);
    if (command) {
      if (!agent) return;
      const name = command[1]!.toLowerCase();
      const arg = command[2]?.trim() ?? '';
      switch (name) {
        case 'resolve':
          return void (await resolve(key, e.at, `resolved by ${agent.name}`));
        case 'reassign':
          return void (await reassign(key, [agent.id], `${agent.name} asked to reassign${arg ? `: ${arg}` : ''}`));
        case 'escalate':
          return void (await escalate(key, `escalated by ${agent.name}${arg ? `: ${arg}` : ''}`));
        case 'away':
        case 'back': {
          const status: AgentStatus = name === 'away' ? 'away' : 'available';
          await setAgentStatus(agent.id, status, 'command');
          return void (await notice(key, `${agent.name} is now ${status === 'away' ? 'away: no new tickets until /back' : 'available for new tickets'}.`));
        }
        default:
          return void (await notice(key, `Unknown command /${name}. ${COMMAND_HELP}`));
      }
    }
    if (!agent) return; // the customer (relayed) or our own bot; not a response by the team
    await withTicket(key, (t, router, now) => {
      if (t.firstResponseAt || t.status === 'resolved') return null;
      // A breach already counted by its timer is not counted again when the late reply comes.
      const breachCounted = t.slaMet === false;
      t.firstResponseAt = e.at;
      t.firstResponderId = agent.id;
      t.slaMet = t.slaDueAt === null ? null : e.at <= t.slaDueAt;
      t.status = 'answered';
      t.updatedAt = now;
      const mins = t.enqueuedAt !== null ? ((e.at - t.enqueuedAt) / 60_000).toFixed(1) : '?';
      const mine = agent.id === t.agentId;
      const kind: HistoryKind = mine ? 'first_reply' : 'reply_by_other';
      const e2 = entry(t, kind, `${mine ? 'First reply' : `First reply by ${agent.name} (assigned: ${agentName(router, t.agentId) ?? 'nobody'})`} after ${mins} min; SLA ${t.slaMet ? 'met' : 'breached'}`, now);
      const labels = { tier: t.segment?.tier ?? 'unknown', queue: t.queueId ?? '' };
      if (t.enqueuedAt !== null) metrics.observe('tierline_first_response_seconds', labels, (e.at - t.enqueuedAt) / 1000);
      if (t.slaMet !== null && !breachCounted) metrics.inc('tierline_sla_total', { ...labels, result: t.slaMet ? 'met' : 'breached' });
      const ops: CounterOp[] = t.queueId ? [{ op: 'unwait', queueId: t.queueId, ticketKey: t.key }] : [];
      return { tickets: [t], history: [e2], counters: ops, jobs: publish(t, e2, now), cancelTimers: [`sla_reminder:${t.key}`, `sla_breach:${t.key}`, `overflow_check:${t.key}`] };
    });
  }

  async function notice(key: string, text: string): Promise<void> {
    const now = clock.now();
    const t = await store.getTicket(key);
    if (!t) return;
    await commit({ jobs: [job('post', `post:${key}:notice:${fnv64(`${text}@${now}`)}`, key, { text, priority: priorityOf(t, now) }, now)] });
  }

  async function resolve(key: string, at: number, why: string): Promise<void> {
    let freedQueue: string | null = null;
    await withTicket(key, (t, _router, now) => {
      if (t.status === 'resolved') return null;
      const ops: CounterOp[] = [];
      if (t.agentId && t.status !== 'waiting') ops.push({ op: 'load', agentId: t.agentId, delta: -1 });
      if (t.queueId) ops.push({ op: 'unwait', queueId: t.queueId, ticketKey: t.key });
      t.status = 'resolved';
      t.resolvedAt = at;
      t.updatedAt = now;
      freedQueue = t.queueId;
      const labels = { tier: t.segment?.tier ?? 'unknown', queue: t.queueId ?? '' };
      if (t.enqueuedAt !== null) metrics.observe('tierline_resolution_seconds', labels, (at - t.enqueuedAt) / 1000);
      const e = entry(t, 'resolved', `Resolved (${why})`, now);
      return {
        tickets: [t],
        history: [e],
        counters: ops,
        jobs: [...publish(t, e, now, { text: `✅ Resolved (${why}).` }), job('close_topic', `close:${t.key}`, t.key, {}, now)],
        cancelTimers: [`sla_reminder:${t.key}`, `sla_breach:${t.key}`, `overflow_check:${t.key}`],
      };
    });
    if (freedQueue) await assignWaiting([freedQueue]);
  }

  /** Moves a ticket to another agent of its queue, keeping its original wait time (and SLA deadline). */
  async function reassign(key: string, exclude: string[], why: string): Promise<boolean> {
    return exclusive(async () => {
      const t0 = await store.getTicket(key);
      if (!t0 || t0.status === 'resolved' || !t0.queueId) return false;
      const t = structuredClone(t0);
      const router = await currentRouter();
      const now = clock.now();
      const counters = await store.routingCounters();
      const previous = t.agentId;
      const d = router.route({ segment: t.segment!, now, enqueuedAt: t.enqueuedAt ?? now, queueId: t0.queueId, ruleId: t.ruleId, exclude: [...new Set([...exclude, ...(previous ? [previous] : [])])] }, stateOf(counters));
      const ops: CounterOp[] = [];
      if (previous && t.status !== 'waiting') ops.push({ op: 'load', agentId: previous, delta: -1 });
      ops.push(...applyDecision(t, d, router, now, t0.queueId));
      if (t.firstResponseAt) t.status = d.outcome === 'assigned' ? 'answered' : 'waiting';
      t.reassignCount += 1;
      const text = `Reassigned from ${agentName(router, previous) ?? 'nobody'} to ${agentName(router, t.agentId) ?? 'the queue (waiting)'}: ${why}`;
      const e = entry(t, 'reassigned', text, now, t.explanation);
      await commit({
        tickets: [t],
        history: [e],
        counters: ops,
        jobs: publish(t, e, now, { text: `🔁 ${text}\n${t.explanation.map((l) => `• ${l}`).join('\n')}`, ...(t.agentId ? { mention: mentionOf(router, t.agentId)! } : {}) }),
        timers: overflowTimer(t, router, now),
      });
      return true;
    });
  }

  async function escalate(key: string, why: string): Promise<void> {
    await exclusive(async () => {
      const t0 = await store.getTicket(key);
      if (!t0 || t0.status === 'resolved' || !t0.queueId) return;
      const t = structuredClone(t0);
      const router = await currentRouter();
      const now = clock.now();
      const q = router.queue(t.queueId!);
      const esc = q.escalation;
      t.escalated = true;
      t.updatedAt = now;
      const ops: CounterOp[] = [];
      let text: string;
      let mention: Mention | undefined;
      if (esc?.overflowTo) {
        const counters = await store.routingCounters();
        const previous = t.agentId;
        const d = router.route({ segment: t.segment!, now, enqueuedAt: t.enqueuedAt ?? now, queueId: esc.overflowTo, ruleId: t.ruleId }, stateOf(counters));
        if (previous && t.status !== 'waiting') ops.push({ op: 'load', agentId: previous, delta: -1 });
        ops.push(...applyDecision(t, d, router, now, t.queueId));
        if (t.firstResponseAt && t.status === 'assigned') t.status = 'answered';
        text = `Escalated (${why}) to ${router.queue(esc.overflowTo).name}: ${t.summary}`;
        mention = mentionOf(router, t.agentId);
      } else {
        mention = mentionOf(router, esc?.mention ?? t.agentId);
        text = `Escalated (${why}); ${mention ? `${mention.name}, please take a look` : 'no escalation target is configured for this queue'}.`;
      }
      metrics.inc('tierline_escalations_total', { queue: q.id });
      const e = entry(t, 'escalated', text, now, t.explanation);
      await commit({ tickets: [t], history: [e], counters: ops, jobs: publish(t, e, now, { text: `⚠️ ${text}`, ...(mention ? { mention } : {}) }) });
    });
  }

  /** Tries to place tickets waiting in these queues (oldest first), after capacity frees up or an agent returns. */
  async function assignWaiting(queueIds: string[]): Promise<number> {
    let placed = 0;
    // Queues where nobody can take any ticket right now (every agent at capacity, away or offline): trying the rest
    // of their waiting tickets would only repeat the same answer, so they leave the pass.
    const full = new Set<string>();
    // The held tickets come a page at a time from the store's waiting lists (oldest first), not from the tickets
    // themselves: this runs on every resolution, and under a backlog a queue can hold many thousands, of which the
    // first page usually settles it (one ticket placed, the queue full again).
    let after: WaitingTicket | undefined;
    for (;;) {
      const open = [...new Set(queueIds)].filter((q) => !full.has(q));
      const page = open.length ? await store.waitingTickets(open, { limit: WAITING_SCAN, ...(after ? { after } : {}) }) : [];
      if (!page.length) break;
      after = page.at(-1);
      // One decision turn per page; the routing counters are read again only after a ticket is placed (a held one
      // changes nothing), so a free agent who lacks the skills of the oldest tickets does not cost a read per ticket.
      placed += await exclusive(async () => {
        let n = 0;
        const router = await currentRouter();
        let counters: RoutingCounters | null = null;
        for (const w of page) {
          if (full.has(w.queueId)) continue;
          // Placed or moved since the page was read (another pass, a reassignment): nothing to do.
          const t0 = await store.getTicket(w.key);
          if (!t0 || t0.status !== 'waiting' || t0.queueId !== w.queueId) continue;
          const t = structuredClone(t0);
          const now = clock.now();
          const from = t0.queueId;
          counters ??= await store.routingCounters();
          const d = router.route({ segment: t.segment!, now, enqueuedAt: t.enqueuedAt ?? now, queueId: from, ruleId: t.ruleId }, stateOf(counters));
          if (d.outcome === 'held' && d.queueId === from) {
            const step = d.steps.find((x) => x.queueId === from);
            if (step?.considered.every((c) => c.reason === 'at_capacity' || c.reason === 'away' || c.reason === 'offline')) full.add(from);
            continue;
          }
          const ops = applyDecision(t, d, router, now, from);
          if (t.firstResponseAt && t.status === 'assigned') t.status = 'answered';
          const kind: HistoryKind = d.queueId !== from ? 'overflow' : 'assigned';
          const text = kind === 'overflow' ? `Overflow from ${router.queue(from).name}: ${t.summary}` : `Assigned: ${t.summary}`;
          const e = entry(t, kind, text, now, t.explanation);
          const mention = mentionOf(router, t.agentId);
          await commit({
            tickets: [t],
            history: [e],
            counters: ops,
            jobs: publish(t, e, now, { text: `👤 ${text}\n${t.explanation.map((l) => `• ${l}`).join('\n')}`, ...(mention ? { mention } : {}) }),
            timers: overflowTimer(t, router, now),
            cancelTimers: t.status === 'waiting' ? [] : [`overflow_check:${t.key}`],
          });
          // The next ticket is judged against the counters this change left.
          counters = null;
          if (d.outcome === 'assigned') n++;
        }
        return n;
      });
      if (page.length < WAITING_SCAN) break;
    }
    return placed;
  }

  // ------------------------------------------------------------------ agents

  /** Explicit status (admin, console, /away, /back) always wins over presence. */
  async function setAgentStatus(agentId: string, status: AgentStatus, source: 'admin' | 'command' | 'presence'): Promise<void> {
    const now = clock.now();
    if (source !== 'presence') {
      if (status === 'available') await store.kvDelete('agents:manual', agentId);
      else await store.kvPut('agents:manual', agentId, { status, at: now });
    }
    await exclusive(async () => {
      await commit({ counters: [{ op: 'status', agentId, status }], cancelTimers: status === 'offline' ? [] : [`offline_grace:${agentId}`] });
    });
    if (status === 'offline') await reassignUnanswered(agentId, 'agent went offline');
    if (status === 'available') {
      const router = await currentRouter();
      await assignWaiting(router.config.queues.filter((q) => q.agents.some((m) => (typeof m === 'string' ? m : m.id) === agentId)).map((q) => q.id));
    }
  }

  async function reassignUnanswered(agentId: string, why: string): Promise<number> {
    const mine = (await store.tickets({ open: true, agentId, status: 'assigned' })).filter((t) => !t.firstResponseAt);
    let n = 0;
    for (const t of mine) if (await reassign(t.key, [agentId], why)) n++;
    return n;
  }

  async function onPresence(telegramUserId: string, online: boolean, at: number): Promise<void> {
    const router = await currentRouter();
    const agent = router.config.agents.find((a) => a.telegramUserId === telegramUserId);
    if (!agent) return;
    if (await store.kvGet('agents:manual', agent.id)) return; // explicit /away or admin status wins
    if (online) {
      await exclusive(() => commit({ cancelTimers: [`offline_grace:${agent.id}`] }));
      const status = (await store.routingCounters()).status[agent.id];
      if (status === 'offline') await setAgentStatus(agent.id, 'available', 'presence');
    } else {
      // Not at once: phones drop offline for seconds all day. The grace timer decides.
      await exclusive(() => commit({ timers: [{ id: `offline_grace:${agent.id}`, kind: 'offline_grace', at: at + opt.offlineGraceMs, agentId: agent.id }] }));
    }
  }

  // ------------------------------------------------------------------ timers

  async function fireTimer(timer: Timer): Promise<void> {
    const key = timer.ticketKey;
    switch (timer.kind) {
      case 'sla_reminder': {
        const t = key ? await store.getTicket(key) : null;
        if (t && !t.firstResponseAt && t.status !== 'resolved') {
          await withTicket(t.key, (cur, router, now) => {
            const left = Math.max(0, Math.round(((cur.slaDueAt ?? now) - now) / 60_000));
            const e = entry(cur, 'sla_warning', `First-response SLA runs out in ${left} min`, now);
            const mention = mentionOf(router, cur.agentId);
            return { tickets: [cur], history: [e], jobs: publish(cur, e, now, { text: `⏰ ${e.text}.`, ...(mention ? { mention } : {}) }), cancelTimers: [timer.id] };
          });
        }
        break;
      }
      case 'sla_breach': {
        const t = key ? await store.getTicket(key) : null;
        if (t && !t.firstResponseAt && t.status !== 'resolved') {
          await withTicket(t.key, (cur, _router, now) => {
            cur.slaMet = false;
            cur.updatedAt = now;
            const e = entry(cur, 'sla_breached', 'First-response SLA breached', now);
            metrics.inc('tierline_sla_total', { tier: cur.segment?.tier ?? 'unknown', queue: cur.queueId ?? '', result: 'breached' });
            return { tickets: [cur], history: [e], jobs: publish(cur, e, now), cancelTimers: [timer.id] };
          });
          await escalate(t.key, 'first-response SLA breached');
        }
        break;
      }
      case 'overflow_check': {
        const t = key ? await store.getTicket(key) : null;
        if (t?.status === 'waiting' && t.queueId) await assignWaiting([t.queueId]);
        break;
      }
      case 'offline_grace': {
        if (timer.agentId) {
          const agentId = timer.agentId;
          if (!(await store.kvGet('agents:manual', agentId))) {
            await exclusive(() => commit({ cancelTimers: [timer.id] }));
            await setAgentStatus(agentId, 'offline', 'presence');
          }
        }
        break;
      }
    }
    await exclusive(() => commit({ cancelTimers: [timer.id] }));
  }

  // ------------------------------------------------------------------ runner

  const handlers: Record<JobKind, (j: Job) => Promise<void>> = {
    route: runRoute,
    topic: runTopic,
    post: runPost,
    writeback: runWriteback,
    close_topic: runCloseTopic,
    event: runEvent,
  };

  async function runJob(j: Job): Promise<void> {
    try {
      await (deps.observeStep ? deps.observeStep(j, () => handlers[j.kind](j)) : handlers[j.kind](j));
    } catch (err) {
      const attempts = j.attempts + 1;
      const retryable = isRetryable(err) && attempts < opt.maxAttempts;
      const now = clock.now();
      let retryAt: number | null = null;
      if (retryable) {
        const backoff = Math.min(opt.backoffMaxMs, opt.backoffBaseMs * 2 ** (attempts - 1));
        const hinted = err instanceof AppError && err.retryAfterMs !== undefined ? err.retryAfterMs : 0;
        retryAt = now + Math.max(backoff * (0.75 + random() * 0.5), hinted);
      }
      const msg = errorMessage(err);
      await store.failJob(j.id, msg, retryAt);
      metrics.inc('tierline_job_failures_total', { kind: j.kind, final: retryAt === null ? 'dead' : 'retry' });
      (retryAt === null ? log.error : log.warn)('job failed', { job: j.id, kind: j.kind, attempts, error: msg, retryInMs: retryAt === null ? null : retryAt - now });
    }
  }

  // Steps in flight, by job id, and the last step of each ticket: one ticket's steps run in claim order (a reply
  // before a /resolve stays first); different tickets run side by side.
  const inFlight = new Map<string, Promise<void>>();
  const chains = new Map<string, Promise<void>>();

  function launch(j: Job): void {
    // Claimed again while still running here (its lease ran out during a long flood wait): the run in progress counts.
    if (inFlight.has(j.id)) return;
    const before = chains.get(j.ticketKey) ?? Promise.resolve();
    const run: Promise<void> = before
      .then(() => runJob(j))
      .catch((err) => log.error('step runner failed', { job: j.id, error: errorMessage(err) }))
      .finally(() => {
        inFlight.delete(j.id);
        if (chains.get(j.ticketKey) === run) chains.delete(j.ticketKey);
        deps.wake?.();
      });
    inFlight.set(j.id, run);
    chains.set(j.ticketKey, run);
  }

  /**
   * Claims due steps up to the free in-flight slots and starts them without waiting for them, then fires due timers.
   * The worker calls it in a loop while it finds work; a finishing step wakes the worker to refill its slot.
   */
  async function pump(): Promise<{ jobs: number; timers: number }> {
    const free = opt.maxInFlight - inFlight.size;
    const jobs = free > 0 ? await store.claimJobs(clock.now(), Math.min(free, opt.batchSize), opt.leaseMs) : [];
    for (const j of jobs) launch(j);
    const timers = await store.dueTimers(clock.now(), opt.batchSize);
    for (const t of timers) {
      try {
        await fireTimer(t);
      } catch (err) {
        log.error('timer failed', { timer: t.id, error: errorMessage(err) });
      }
    }
    return { jobs: jobs.length, timers: timers.length };
  }

  /** Resolves once every step started so far has finished (shutdown, tests). */
  async function drain(): Promise<void> {
    while (inFlight.size) await Promise.all([...inFlight.values()]);
  }

  /** Runs due jobs and timers once and waits for them (tests step through the pipeline with it). */
  async function runDue(): Promise<{ jobs: number; timers: number }> {
    const r = await pump();
    await drain();
    return r;
  }

  return { intake, onMessengerEvent, setAgentStatus, assignWaiting, reassign, resolve, escalate, runDue, pump, drain, currentRouter, routingFields };
}
