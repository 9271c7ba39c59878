// Builders for routing tests: a small realistic config and segments, overridable per case.
import { parseRoutingConfig, type RoutingConfigInput } from '../../core/config.ts';
import type { Segment } from '../../core/segment.ts';
import { emptyCounters, stateOf, applyCounterOps, effectOps, type Decision, type Router } from '../../core/route.ts';
import type { Counters } from '../../core/ports.ts';

export function segment(over: Partial<Segment> = {}): Segment {
  return {
    tier: 'standard',
    lifetimeValue: { amount: 5_000, currency: 'USD' },
    annualRevenue: null,
    product: 'crm',
    category: 'billing',
    language: 'en',
    region: 'EU',
    churnRisk: 0.2,
    source: { ref: { crm: 'hubspot', account: '1', ticketId: 't1' }, companyId: 'c1', contactId: null },
    ...over,
  };
}

export function config(over: Partial<RoutingConfigInput> = {}) {
  return parseRoutingConfig({
    rules: [
      { id: 'ent', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'vip' },
      { id: 'billing', when: [{ field: 'category', op: 'equals', value: 'billing' }], queue: 'billing' },
    ],
    defaultQueue: 'general',
    queues: [
      { id: 'vip', name: 'VIP', strategy: 'least_busy', agents: ['ann', 'bob'], slaFirstResponseSeconds: 900 },
      { id: 'billing', name: 'Billing', strategy: 'round_robin', agents: ['cat', 'dan', 'eve'], slaFirstResponseSeconds: 3600 },
      { id: 'general', name: 'General', strategy: 'round_robin', agents: ['eve'], slaFirstResponseSeconds: 7200 },
    ],
    agents: [
      { id: 'ann', name: 'Ann' },
      { id: 'bob', name: 'Bob' },
      { id: 'cat', name: 'Cat' },
      { id: 'dan', name: 'Dan' },
      { id: 'eve', name: 'Eve' },
    ],
    ...over,
  });
}

/** Routes a sequence of tickets, applying each decision's effects the way the pipeline does. */
export function simulate(router: Router, segments: Segment[], counters: Counters = emptyCounters(), now = 1_000_000): Decision[] {
  return segments.map((s, i) => {
    const d = router.route({ segment: s, now: now + i }, stateOf(counters));
    applyCounterOps(counters, effectOps(d.effects));
    return d;
  });
}
