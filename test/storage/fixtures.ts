// Records for the store tests: complete, realistic shapes (a routed ticket, its outbox steps, its timers, its history),
// each overridable field by field.
import { parseRoutingConfig, type RoutingConfig } from '../../core/config.ts';
import type { Clock, HistoryEntry, Job, Logger, TicketRecord, Timer } from '../../core/ports.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';

/** Monday 6 January 2025, 09:00 UTC: a fixed start so dated history files have predictable names. */
export const T0 = Date.UTC(2025, 0, 6, 9, 0, 0);
export const HOUR = 3600_000;
export const DAY = 24 * HOUR;

export type FakeClock = Clock & { set(ms: number): void; advance(ms: number): void };

export function fakeClock(start = T0): FakeClock {
  let now = start;
  return {
    now: () => now,
    set: (ms) => void (now = ms),
    advance: (ms) => void (now += ms),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };

export function routingConfig(note = ''): RoutingConfig {
  const c = parseRoutingConfig(SAMPLE_CONFIG);
  if (note) c.queues[0]!.name = `${c.queues[0]!.name} ${note}`.slice(0, 80);
  return c;
}

export function ticket(key: string, over: Partial<TicketRecord> = {}): TicketRecord {
  const [crm, account, ticketId] = key.split(':');
  return {
    key,
    ref: { crm: crm === 'salesforce' ? 'salesforce' : 'hubspot', account: account ?? '42', ticketId: ticketId ?? key },
    status: 'assigned',
    receivedAt: T0,
    updatedAt: T0,
    subject: `Cannot export invoices (${key})`,
    customerName: 'Pat Doe',
    companyName: 'Acme GmbH',
    companyId: 'co-acme',
    recordUrl: `https://app.hubspot.com/contacts/42/ticket/${ticketId ?? key}`,
    segment: {
      tier: 'enterprise',
      lifetimeValue: { amount: 250_000, currency: 'EUR' },
      annualRevenue: null,
      product: 'api',
      category: 'technical',
      language: 'de',
      region: 'EMEA',
      churnRisk: 0.2,
      source: { ref: { crm: 'hubspot', account: '42', ticketId: ticketId ?? key }, companyId: 'co-acme', contactId: 'ct-1' },
    },
    issues: [],
    tierSource: null,
    queueId: 'vip',
    agentId: 'alice',
    ruleId: 'enterprise',
    summary: 'VIP desk, Alice',
    explanation: ['Rule "enterprise" matched: tier = enterprise', 'Queue vip (least_busy)', 'Alice: 1 of 5 open, available'],
    enqueuedAt: T0,
    routedAt: T0,
    slaDueAt: T0 + 15 * 60_000,
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
    seq: 1,
    ...over,
  };
}

export function job(id: string, over: Partial<Job> = {}): Job {
  return { id, kind: 'post', ticketKey: 'hubspot:42:1', payload: { text: `step ${id}` }, attempts: 0, nextAt: T0, status: 'pending', lastError: null, leaseUntil: 0, createdAt: T0, ...over };
}

export function timer(id: string, at: number, over: Partial<Timer> = {}): Timer {
  return { id, kind: 'sla_breach', at, ticketKey: 'hubspot:42:1', ...over };
}

export function entry(ticketKey: string, seq: number, over: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    key: `${ticketKey}#${seq}`,
    ticketKey,
    seq,
    kind: 'routed',
    at: T0 + seq * 1000,
    queueId: 'vip',
    agentId: 'alice',
    ruleId: 'enterprise',
    tier: 'enterprise',
    text: `Routed to VIP desk (entry ${seq})`,
    ...over,
  };
}
