// Stored outcomes for the console tests and benchmark: tickets routed by the real router and explained by the real
// explainer (so the explanations, queues and agents are consistent with the configuration), with first replies,
// resolutions, SLA breaches, overflows, reassignments and missing CRM data at realistic rates. Deterministic.
import { parseRoutingConfig, type RoutingConfig, type RoutingConfigInput } from '../../core/config.ts';
import { explainDecision } from '../../core/explain.ts';
import type { CounterOp, HistoryEntry, Store, TicketRecord } from '../../core/ports.ts';
import { applyCounterOps, createRouter, effectOps, emptyCounters, stateOf } from '../../core/route.ts';
import { TIERS, type Segment, type SegmentIssue, type Tier } from '../../core/segment.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';

/** A small deterministic PRNG (mulberry32), so seeded data is the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMPANIES = ['Acme Corp', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark Industries', 'Wayne Enterprises', 'Soylent', 'Tyrell', 'Cyberdyne'];
const SUBJECTS = ['Login fails after password reset', 'Invoice shows the wrong VAT rate', 'API returns 429 on bulk import', 'Cannot add a new seat', 'Webhook deliveries delayed', 'SSO redirect loop', 'Charged twice this month'];
const LTV: Record<Tier, number> = { enterprise: 250_000, premium: 40_000, standard: 5_000, free: 100 };

export type SeedOptions = {
  count: number;
  /** Arrival of the last ticket; tickets arrive evenly over `spanMs` before it. */
  end: number;
  spanMs?: number;
  seed?: number;
  config?: RoutingConfigInput;
  /** Share of tickets still open (no resolution) at the end. */
  openShare?: number;
  crm?: 'hubspot' | 'salesforce';
};

export type Seeded = { config: RoutingConfig; tickets: TicketRecord[]; history: HistoryEntry[] };

/** Builds the records without storing them. */
export function buildOutcomes(o: SeedOptions): Seeded {
  const config = parseRoutingConfig(o.config ?? SAMPLE_CONFIG);
  const router = createRouter(config);
  const rand = rng(o.seed ?? 7);
  const span = o.spanMs ?? 7 * 86400_000;
  const counters = emptyCounters();
  const releases: { at: number; agentId: string }[] = [];
  const tickets: TicketRecord[] = [];
  const history: HistoryEntry[] = [];
  const crm = o.crm ?? 'hubspot';
  const account = crm === 'hubspot' ? '4242' : '00D000000000001';
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;

  for (let i = 0; i < o.count; i++) {
    const arrived = Math.round(o.end - span + (span * (i + 1)) / o.count);
    // Free capacity from tickets resolved before this one arrives, the way the pipeline would.
    for (let r = releases.length - 1; r >= 0; r--) {
      if (releases[r]!.at <= arrived) {
        applyCounterOps(counters, [{ op: 'load', agentId: releases[r]!.agentId, delta: -1 }]);
        releases.splice(r, 1);
      }
    }
    const ticketId = String(100_000 + i);
    const ref = { crm, account, ticketId } as const;
    const key = `${crm}:${account}:${ticketId}`;
    const tierRoll = rand();
    const tier: Tier = tierRoll < 0.1 ? 'enterprise' : tierRoll < 0.3 ? 'premium' : tierRoll < 0.75 ? 'standard' : 'free';
    const issues: SegmentIssue[] = [];
    const missingTier = rand() < 0.06;
    const missingLanguage = rand() < 0.04;
    const invalidChurn = rand() < 0.02;
    const segment: Segment = {
      tier: missingTier ? null : tier,
      lifetimeValue: missingTier && rand() < 0.5 ? null : { amount: LTV[tier], currency: 'USD' },
      annualRevenue: null,
      product: rand() < 0.3 ? 'api' : 'crm',
      category: pick(['technical', 'billing', 'account', 'how-to']),
      language: missingLanguage ? null : rand() < 0.15 ? 'de' : 'en',
      region: pick(['EU', 'NA', 'APAC']),
      churnRisk: invalidChurn ? null : Math.round(rand() * 100) / 100,
      source: { ref, companyId: `co-${i % 400}`, contactId: `ct-${i}` },
    };
    if (missingTier) issues.push({ field: 'tier', problem: 'missing', detail: 'segment data missing: tier' });
    if (segment.lifetimeValue === null) issues.push({ field: 'lifetimeValue', problem: 'missing', detail: 'segment data missing: lifetimeValue' });
    if (missingLanguage) issues.push({ field: 'language', problem: 'missing', detail: 'segment data missing: language' });
    if (invalidChurn) issues.push({ field: 'churnRisk', problem: 'invalid', detail: 'segment data invalid: churnRisk (7)' });

    const d = router.route({ segment, now: arrived }, stateOf(counters));
    applyCounterOps(counters, effectOps(d.effects));
    const x = explainDecision(router, d);
    const q = router.queue(d.queueId);
    const slaMs = q.slaFirstResponseSeconds * 1000;
    const open = rand() < (o.openShare ?? 0.05) || d.outcome === 'held';
    const replied = !open || rand() < 0.5;
    const frMs = Math.round(slaMs * (0.1 + rand() * (rand() < 0.12 ? 1.6 : 0.85)));
    const firstResponseAt = replied && d.agentId ? Math.min(arrived + frMs, o.end) : null;
    const resolvedAt = !open && firstResponseAt ? Math.min(firstResponseAt + Math.round(600_000 + rand() * 4 * 3600_000), o.end) : null;
    if (d.agentId && resolvedAt) releases.push({ at: resolvedAt, agentId: d.agentId });
    const overflowCount = d.steps.filter((s) => s.overflow).length;
    const reassigned = d.agentId !== null && rand() < 0.03;
    const slaMet = firstResponseAt ? firstResponseAt <= arrived + slaMs : arrived + slaMs < o.end ? false : null;
    const t: TicketRecord = {
      key,
      ref,
      status: resolvedAt ? 'resolved' : firstResponseAt ? 'answered' : d.outcome === 'assigned' ? 'assigned' : 'waiting',
      receivedAt: arrived,
      updatedAt: resolvedAt ?? firstResponseAt ?? arrived,
      subject: `${pick(SUBJECTS)} (#${ticketId})`,
      customerName: `Customer ${i % 997}`,
      companyName: pick(COMPANIES),
      companyId: segment.source.companyId,
      recordUrl: crm === 'hubspot' ? `https://app.hubspot.com/contacts/${account}/record/0-5/${ticketId}` : `https://example.my.salesforce.com/${ticketId}`,
      segment: d.tier.tier === segment.tier ? segment : { ...segment, tier: d.tier.tier },
      issues,
      tierSource: d.tier.source,
      queueId: d.queueId,
      agentId: d.agentId,
      ruleId: d.rule?.id ?? null,
      summary: x.summary,
      explanation: x.lines,
      enqueuedAt: arrived,
      routedAt: arrived,
      slaDueAt: arrived + slaMs,
      topic: { groupId: q.groups[0] ?? 'support-1', topicId: 1000 + i, link: `https://t.me/c/1700000001/${1000 + i}` },
      topicRandomId: null,
      topicGroupId: q.groups[0] ?? 'support-1',
      topicGeneration: 0,
      firstResponseAt,
      firstResponderId: firstResponseAt ? d.agentId : null,
      resolvedAt,
      slaMet,
      overflowCount,
      reassignCount: reassigned ? 1 : 0,
      escalated: slaMet === false && rand() < 0.5,
      seq: 0,
    };
    const entry = (kind: HistoryEntry['kind'], at: number, text: string, explanation?: string[]) => {
      t.seq += 1;
      const e: HistoryEntry = { key: `${key}#${t.seq}`, ticketKey: key, seq: t.seq, kind, at, queueId: t.queueId ?? '', agentId: t.agentId, ruleId: t.ruleId, tier: t.segment?.tier ?? null, text };
      if (explanation) e.explanation = explanation;
      history.push(e);
    };
    entry('routed', arrived, `Routed to ${x.summary}`, x.lines);
    if (slaMet === false && (!firstResponseAt || firstResponseAt > arrived + slaMs)) entry('sla_breached', arrived + slaMs, 'First-response SLA breached');
    if (firstResponseAt) entry('first_reply', firstResponseAt, `First reply after ${((firstResponseAt - arrived) / 60_000).toFixed(1)} min; SLA ${slaMet ? 'met' : 'breached'}`);
    if (reassigned) entry('reassigned', (firstResponseAt ?? arrived) + 1, `Reassigned: agent asked to reassign`, x.lines);
    if (resolvedAt) entry('resolved', resolvedAt, 'Resolved (resolved by agent)');
    tickets.push(t);
  }
  return { config, tickets, history };
}

/** Stores the outcomes (and the configuration, when none is saved) in batches. */
export async function seedOutcomes(store: Store, o: SeedOptions): Promise<Seeded> {
  const s = buildOutcomes(o);
  if (!(await store.getConfig())) await store.saveConfig(s.config, { author: 'seed', note: 'seeded', at: o.end - (o.spanMs ?? 7 * 86400_000) });
  const byTicket = new Map<string, HistoryEntry[]>();
  for (const h of s.history) {
    const list = byTicket.get(h.ticketKey);
    if (list) list.push(h);
    else byTicket.set(h.ticketKey, [h]);
  }
  const step = 2_000;
  for (let i = 0; i < s.tickets.length; i += step) {
    const tickets = s.tickets.slice(i, i + step);
    await store.commit({ tickets, history: tickets.flatMap((t) => byTicket.get(t.key) ?? []) });
  }
  // The live counters the pipeline would have left: open tickets load their agent or wait in their queue.
  const counters: CounterOp[] = [];
  for (const t of s.tickets) {
    if (t.status === 'resolved' || !t.queueId) continue;
    if (t.agentId) counters.push({ op: 'load', agentId: t.agentId, delta: 1 });
    else counters.push({ op: 'wait', queueId: t.queueId, ticketKey: t.key, since: t.enqueuedAt ?? t.receivedAt });
  }
  await store.commit({ counters });
  return s;
}

export { TIERS };
