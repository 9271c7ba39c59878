// The seams between the pure core and the world. Connectors implement CrmPort and MessengerPort; server/storage
// implements Store; the clock is injected so that tests, replays and timers agree on "now".
import type { RoutingConfig } from './config.ts';
import type { AgentStatus } from './config.ts';
import type { CrmId, Segment, SegmentIssue, Tier, TicketRef } from './segment.ts';
import type { TierSource } from './tiering.ts';

export interface Clock {
  now(): number;
}

/** Structured logging. Fields must never carry a secret (tokens, session strings, signatures). */
/** Counters and histograms for /metrics; the server renders them in Prometheus format. */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  observe(name: string, labels: Record<string, string>, value: number): void;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** A CRM told us a ticket needs routing. Stored durably (deduped on idempotencyKey) before the CRM gets its answer. */
export type IntakeEvent = {
  /** Unique per delivery of the same fact: retries of one delivery carry the same key. */
  idempotencyKey: string;
  ref: TicketRef;
  /**
   * created / workflow / manual: route it (once). changed: a field that decides its segment changed (routes it if not
   * routed yet; moves it if nobody answered yet; opted into per CRM account). status: its open or closed state may have
   * changed in the CRM (a HubSpot stage, a Salesforce Case status): a routed ticket closed there is resolved here;
   * never routes a ticket.
   */
  reason: 'created' | 'changed' | 'workflow' | 'manual' | 'status';
  at: number;
};

export interface Intake {
  /** Persists the events and schedules their routing; resolves once they are durable. */
  accept(events: IntakeEvent[]): Promise<{ accepted: number; duplicates: number }>;
}

// ---------------------------------------------------------------- CRM

/** A ticket as the CRM describes it right now (read fresh at routing time, never from a cache). */
export type CrmContext = {
  ref: TicketRef;
  subject: string;
  description: string | null;
  customerName: string | null;
  companyName: string | null;
  /** Link a rep or agent can open to see the ticket in the CRM. */
  recordUrl: string;
  segment: Segment;
  /** Attributes the mapper could not fill (missing or invalid), for the staleness report. */
  issues: SegmentIssue[];
  /**
   * The record is already closed in the CRM (a HubSpot ticket in a stage whose ticket state is CLOSED, a Salesforce
   * Case with IsClosed): a ticket Tierline does not know, or no longer remembers, is not routed.
   */
  closedInCrm?: boolean;
};

/** The current routing outcome, as written onto the CRM record (HubSpot properties / Salesforce Case fields). */
export type RoutingFields = {
  status: 'waiting' | 'assigned' | 'answered' | 'resolved';
  queue: string;
  agent: string | null;
  segment: string;
  tier: Tier | null;
  rule: string | null;
  routedAt: string;
  topicLink: string | null;
  firstResponseMinutes: number | null;
  resolvedAt: string | null;
  slaMet: boolean | null;
  /** One line: why the ticket is where it is. */
  reason: string;
};

export const HISTORY_KINDS = ['routed', 'assigned', 'first_reply', 'reply_by_other', 'reassigned', 'overflow', 'sla_warning', 'sla_breached', 'escalated', 'resolved', 'reopened', 'topic_recreated'] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

export type HistoryEntry = {
  /** `${ticketKey}#${seq}`: the idempotency key of this entry everywhere it is written. */
  key: string;
  ticketKey: string;
  seq: number;
  kind: HistoryKind;
  at: number;
  queueId: string;
  agentId: string | null;
  ruleId: string | null;
  tier: Tier | null;
  /** Plain words, the same in Telegram, the CRM and the console. */
  text: string;
  /** The full explanation, for routing decisions. */
  explanation?: string[];
};

export type CrmWriteBack = {
  entry: HistoryEntry;
  fields: RoutingFields;
  /** Company / Account the outcome is also shown on, when known. */
  companyId: string | null;
  /** The ticket's stored history as the pipeline just read it (Store.history order), for a connector that shows it whole. */
  history?: HistoryEntry[];
  /** The step's first run anywhere (its job's first claim); see Reservation. */
  firstRun?: boolean;
};

/**
 * A record a connector keeps before a side effect it cannot repeat blindly (what it is about to create, so that a retry
 * after a crash looks for it instead of creating a second one). See MessengerPort.reserveTopic. The connector may skip
 * that look only for a record it reserved in this process when the step is on its first run anywhere (`firstRun`): on a
 * retry, after a restart, or once another instance has run the step, something may have been sent.
 */
export type Reservation = { ns: string; key: string; value: unknown };

export type CommitOptions = { awaitFlush?: boolean; stepsBeforeSaved?: boolean };

export interface CrmPort {
  readonly crm: CrmId;
  /** Reads the ticket, its company and contact fresh and maps them into a segment. */
  fetchContext(ref: TicketRef): Promise<CrmContext>;
  /**
   * Writes the current outcome and one history entry. Must be idempotent on entry.key: a retry after a crash
   * (the CRM got the write, we did not record it) must not add a second history entry.
   */
  writeBack(ref: TicketRef, update: CrmWriteBack): Promise<void>;
  /** As MessengerPort.reserveTopic, for the write-back of history entry entryKey (stored with the entry). */
  reserveWriteBack?(ref: TicketRef, entryKey: string): Promise<Reservation[]>;
  /**
   * The ticket will not be routed (it is closed in the CRM): release whatever waits for its routing in the CRM (a
   * HubSpot workflow action). Idempotent: the step that calls it may run again.
   */
  notRouted?(ref: TicketRef, reason: 'closed_in_crm'): Promise<void>;
}

/** A customer as the CRM knows them, for the Telegram intake bot. */
export type CrmCustomer = { contactId: string; companyId: string | null; name: string | null; email: string | null; phone: string | null; telegramUserId: string | null };

/**
 * What the Telegram intake bot needs from a CRM: find the customer, remember their Telegram id on the contact,
 * and open the ticket (HubSpot ticket / Salesforce Case) that then routes like any other.
 */
export interface CrmIntakePort {
  findCustomer(account: string, by: { email?: string; phone?: string; telegramUserId?: string }): Promise<CrmCustomer | null>;
  createContact(account: string, c: { email?: string; phone?: string; name?: string; telegramUserId: string }): Promise<CrmCustomer>;
  linkTelegramUser(account: string, contactId: string, telegramUserId: string): Promise<void>;
  /** Idempotent on idempotencyKey: a retry returns the ticket created the first time. */
  createTicket(
    account: string,
    t: { subject: string; description: string; contactId: string | null; companyId: string | null; product: string; category: string; language: string; idempotencyKey: string },
  ): Promise<TicketRef>;
}

// ---------------------------------------------------------------- Messenger (Telegram)

export type TopicRef = { groupId: string; topicId: number; link: string };
export type Mention = { name: string; telegramUserId?: string; telegramUsername?: string };

export type CreateTopicRequest = {
  ticketKey: string;
  groupId: string;
  title: string;
  tier: Tier | null;
  /** Stored before the call; the same id on a retry lets the messenger return the topic it already made. */
  randomId: string;
  /** The step's first run anywhere (its job's first claim); see Reservation. */
  firstRun?: boolean;
  /** Under throttling, higher first: tier, then a nearer SLA deadline (the same scale as posts). */
  priority?: number;
};

export type PostRequest = {
  topic: TopicRef;
  text: string;
  mention?: Mention;
  /** Idempotency key of this message (decimal int64 string). */
  randomId: string;
  pin?: boolean;
  /** Higher goes first under throttling: tier rank and SLA nearness. */
  priority?: number;
};

export interface MessengerPort {
  createTopic(req: CreateTopicRequest): Promise<TopicRef>;
  /**
   * The record createTopic would store before its call, for the pipeline to store with the commit that queues the
   * topic step (the same write, so one fsync fewer on the ticket's path); [] when there is nothing to reserve (a record
   * exists already, or the group is not linked yet: createTopic then stores it itself). No upstream call. A record this
   * process reserved, on the step's first run (req.firstRun), lets createTopic call at once; anything else (a restart,
   * another instance, a retry) makes it look for an earlier attempt's topic first.
   */
  reserveTopic?(req: CreateTopicRequest): Promise<Reservation[]>;
  post(req: PostRequest): Promise<{ messageId: number }>;
  closeTopic(topic: TopicRef): Promise<void>;
}

export type MessengerEvent =
  | { kind: 'message'; groupId: string; topicId: number; messageId: number; fromTelegramUserId: string; text: string; at: number }
  | { kind: 'topic_closed'; groupId: string; topicId: number; at: number; byTelegramUserId?: string }
  | { kind: 'presence'; telegramUserId: string; online: boolean; at: number };

// ---------------------------------------------------------------- Store

export type TicketStatus = 'received' | 'waiting' | 'assigned' | 'answered' | 'resolved' | 'failed';

/** Open: not resolved and not failed (what Store.tickets({ open: true }) lists and agent load counts). */
export function isOpenTicket(t: { status: TicketStatus }): boolean {
  return t.status !== 'resolved' && t.status !== 'failed';
}

export type TicketRecord = {
  key: string;
  ref: TicketRef;
  status: TicketStatus;
  receivedAt: number;
  updatedAt: number;
  subject: string;
  customerName: string | null;
  companyName: string | null;
  companyId: string | null;
  recordUrl: string | null;
  segment: Segment | null;
  issues: SegmentIssue[];
  tierSource: TierSource | null;
  queueId: string | null;
  agentId: string | null;
  ruleId: string | null;
  summary: string | null;
  explanation: string[];
  enqueuedAt: number | null;
  routedAt: number | null;
  slaDueAt: number | null;
  topic: TopicRef | null;
  /** Reserved before the topic is created; see CreateTopicRequest.randomId. */
  topicRandomId: string | null;
  /** The forum group chosen for the topic, persisted with topicRandomId so a retry uses the same group. */
  topicGroupId: string | null;
  /** 0 for the first topic; +1 each time a deleted topic is recreated. */
  topicGeneration: number;
  firstResponseAt: number | null;
  firstResponderId: string | null;
  resolvedAt: number | null;
  slaMet: boolean | null;
  overflowCount: number;
  reassignCount: number;
  escalated: boolean;
  /** Number of history entries so far; the next entry gets seq + 1. */
  seq: number;
};

export const JOB_KINDS = ['route', 'topic', 'post', 'writeback', 'close_topic', 'event'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export type Job = {
  /** Deterministic: enqueuing the same id twice is a no-op, which is what makes each side effect happen once. */
  id: string;
  kind: JobKind;
  ticketKey: string;
  payload: Record<string, unknown>;
  attempts: number;
  nextAt: number;
  status: 'pending' | 'dead';
  lastError: string | null;
  leaseUntil: number;
  createdAt: number;
  /**
   * Times claimJobs has handed the job out, this claim included (absent before the first). A store that several
   * processes share counts it durably; 1 then means no other run of the step can have started anywhere.
   */
  claims?: number;
};

export const TIMER_KINDS = ['sla_reminder', 'sla_breach', 'overflow_check', 'offline_grace'] as const;
export type TimerKind = (typeof TIMER_KINDS)[number];
export type Timer = { id: string; kind: TimerKind; at: number; ticketKey?: string; agentId?: string };

export type CounterOp =
  | { op: 'load'; agentId: string; delta: number }
  | { op: 'rr'; queueId: string; value: number }
  | { op: 'rotation'; queueId: string; value: number }
  | { op: 'status'; agentId: string; status: AgentStatus }
  | { op: 'wait'; queueId: string; ticketKey: string; since: number }
  | { op: 'unwait'; queueId: string; ticketKey: string };

/** Everything one pipeline step changes, applied atomically: a crash leaves all of it or none of it. */
export type Batch = {
  /** Upserts by key. */
  tickets?: TicketRecord[];
  /** Inserted unless a job with the same id exists or completed recently (then ignored). */
  jobs?: Job[];
  completeJobs?: string[];
  /** Upserts by id (re-arming a timer moves its deadline). */
  timers?: Timer[];
  cancelTimers?: string[];
  history?: HistoryEntry[];
  counters?: CounterOp[];
};

export type ConfigVersion = { version: number; config: RoutingConfig; savedAt: number; author: string; note: string };

export type HistoryQuery = {
  ticketKey?: string;
  companyId?: string;
  tier?: Tier | 'unknown';
  queueId?: string;
  agentId?: string;
  kind?: HistoryKind;
  from?: number;
  to?: number;
  offset?: number;
  limit?: number;
};

export type Counters = {
  status: Record<string, AgentStatus>;
  load: Record<string, number>;
  rr: Record<string, number>;
  rotation: Record<string, number>;
  /** queue -> ticketKey -> waiting since (ms). */
  waiting: Record<string, Record<string, number>>;
};

/**
 * What a routing decision reads of the counters: the per-agent and per-queue maps, and for each queue with tickets
 * waiting, when its oldest arrived (ms). Small however many tickets wait; read for every decision.
 */
export type RoutingCounters = Omit<Counters, 'waiting'> & { oldestWaiting: Record<string, number> };

/** A ticket held in a queue for an agent to free up. */
export type WaitingTicket = { key: string; queueId: string; since: number };

export interface Store {
  getConfig(): Promise<ConfigVersion | null>;
  saveConfig(config: RoutingConfig, meta: { author: string; note: string; at: number }): Promise<ConfigVersion>;
  configVersions(): Promise<ConfigVersion[]>;

  /** Records an inbound event key; false when it was seen before (a duplicate delivery). */
  recordInbound(keys: string[], at: number): Promise<boolean[]>;

  getTicket(key: string): Promise<TicketRecord | null>;
  /** Those of these tickets that exist (and are retained), in no particular order: a page's tickets in one read. */
  getTickets(keys: readonly string[]): Promise<TicketRecord[]>;
  findTicketByTopic(groupId: string, topicId: number): Promise<TicketRecord | null>;
  /** Filtered by the store before anything is copied: callers on hot paths ask for exactly what they need. */
  tickets(filter?: { open?: boolean; agentId?: string; queueId?: string; status?: TicketStatus }): Promise<TicketRecord[]>;
  /**
   * Open tickets per Telegram group (the topic's group, else the group chosen for it), for spreading new topics over
   * a queue's groups. Counted by the store: it runs under the routing lock for every new topic.
   */
  openTicketsPerGroup(): Promise<Record<string, number>>;
  /** Every counter, waiting lists included (the console, migration); decisions read routingCounters(). */
  counters(): Promise<Counters>;
  /** A copy of what a routing decision reads; its cost does not grow with the waiting lists. */
  routingCounters(): Promise<RoutingCounters>;
  /**
   * Tickets waiting in these queues, oldest first (ties by ticket key, then queue), from just after `after` (the last
   * one of the previous page), at most `limit`.
   */
  waitingTickets(queueIds: readonly string[], page: { limit: number; after?: WaitingTicket }): Promise<WaitingTicket[]>;

  /**
   * awaitFlush false: may resolve once the change is visible, before it is on disk; a crash can lose it, so only for
   * changes whose loss merely repeats an idempotent step (marking a step done after its side effect).
   * stepsBeforeSaved: as awaitFlush false, and the steps the batch queues may be claimed (and run) before it is on
   * disk. A power cut can then lose the batch after its steps' side effects: only for a batch whose loss makes the
   * step (or the CRM delivery) that wrote it run again, and whose steps' side effects are idempotent on records
   * already saved (Telegram's random_id, a connector's reservation). The file store uses it to start a ticket's next
   * step while the disk syncs; the others hand steps out once the batch is committed, as always.
   */
  commit(batch: Batch, opts?: CommitOptions): Promise<void>;
  /** Resolves once every change made before the call is on disk (after a commit that did not wait for it). */
  saved(): Promise<void>;
  /** Runs fn exclusively against other routing decisions (counters read and changed as one). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;

  /** Due pending jobs not under lease, oldest nextAt first; sets leaseUntil = now + leaseMs, claims + 1. Does not touch attempts. */
  claimJobs(now: number, limit: number, leaseMs: number): Promise<Job[]>;
  /** attempts + 1, lastError = error, lease cleared; retryAt null makes the job a dead letter. */
  failJob(id: string, error: string, retryAt: number | null): Promise<void>;
  deadJobs(): Promise<Job[]>;
  retryDeadJob(id: string, now: number): Promise<boolean>;
  pendingJobs(): Promise<number>;
  dueTimers(now: number, limit: number): Promise<Timer[]>;

  history(query: HistoryQuery): Promise<{ total: number; entries: HistoryEntry[] }>;

  /**
   * Small keyed records for connectors: encrypted tokens, OAuth state, replay ids, channel access hashes. Values read
   * back are shared and deeply frozen by the file and memory stores (read on every webhook, so not copied): build a
   * new value to change one, never mutate what kvGet or kvList returned.
   */
  kvGet<T = unknown>(ns: string, key: string): Promise<T | null>;
  /**
   * ttlMs: the record may be forgotten after this long (a connector's idempotency record of finished work, useful
   * only while that work could still be retried); once expired, kvGet and kvList no longer return it.
   * awaitFlush false: as for commit, may resolve once the record is visible, before it is on disk; only for records
   * whose loss a retry recovers from (the outcome of a call, where the record from before the call lets a retry find
   * it). It is saved with the next change that is waited for.
   */
  kvPut(ns: string, key: string, value: unknown, opts?: { ttlMs?: number; awaitFlush?: boolean }): Promise<void>;
  kvDelete(ns: string, key: string): Promise<boolean>;
  kvList<T = unknown>(ns: string): Promise<{ key: string; value: T }[]>;

  close(): Promise<void>;
}
