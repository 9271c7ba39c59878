import { describe, expect, it } from 'vitest';
import { parseRoutingConfig, type AgentStatus } from '../../core/config.ts';
import { createRouter, emptyCounters, stateOf, applyCounterOps } from '../../core/route.ts';
import { explainDecision } from '../../core/explain.ts';
import { config, segment, simulate } from './fixtures.ts';

const NOW = 1_000_000;

describe('queue choice', () => {
  const router = createRouter(config());
  it.each([
    { name: 'enterprise goes to VIP', seg: { tier: 'enterprise' as const }, queue: 'vip', reason: 'rule', rule: 'ent' },
    { name: 'standard billing goes to Billing', seg: {}, queue: 'billing', reason: 'rule', rule: 'billing' },
    { name: 'no rule matches -> default', seg: { category: 'technical' }, queue: 'general', reason: 'no_rule_matched', rule: null },
    { name: 'tier missing, nothing to derive it from -> default with reason', seg: { tier: null, lifetimeValue: null }, queue: 'general', reason: 'segment_data_missing', rule: null },
    { name: 'tier missing but LTV derives enterprise -> VIP', seg: { tier: null, lifetimeValue: { amount: 150_000, currency: 'USD' } }, queue: 'vip', reason: 'rule', rule: 'ent' },
  ])('$name', ({ seg, queue, reason, rule }) => {
    const d = router.route({ segment: segment(seg), now: NOW }, stateOf(emptyCounters()));
    expect(d.queueId).toBe(queue);
    expect(d.queueReason.kind).toBe(reason);
    expect(d.rule?.id ?? null).toBe(rule);
  });

  it('missing data is never silent: the explanation names the field and the fix', () => {
    const d = router.route({ segment: segment({ tier: null, lifetimeValue: null }), now: NOW }, stateOf(emptyCounters()));
    expect(d.queueReason).toEqual({ kind: 'segment_data_missing', ruleId: 'ent', fields: ['tier'] });
    const e = explainDecision(router, d);
    expect(e.lines.join('\n')).toMatch(/Segment data missing: tier \(rule "ent" needs it to decide\) -> default queue General/);
    expect(e.summary).toBe('General -> Eve (segment data missing)');
  });
});

describe('strategies', () => {
  it('round robin takes turns and wraps', () => {
    const router = createRouter(config());
    const ds = simulate(router, Array.from({ length: 7 }, () => segment()));
    expect(ds.map((d) => d.agentId)).toEqual(['cat', 'dan', 'eve', 'cat', 'dan', 'eve', 'cat']);
  });

  it('least busy picks the lowest load against capacity', () => {
    const router = createRouter(config());
    const c = emptyCounters();
    c.load = { ann: 3, bob: 1 };
    const d = router.route({ segment: segment({ tier: 'enterprise' }), now: NOW }, stateOf(c));
    expect(d.agentId).toBe('bob');
    expect(d.steps[0]!.considered.find((x) => x.agentId === 'ann')).toMatchObject({ reason: 'busier', load: 3, capacity: 5 });
  });

  it('least busy compares load relative to capacity', () => {
    const router = createRouter(config({ agents: [{ id: 'ann', name: 'Ann', capacity: 10 }, { id: 'bob', name: 'Bob', capacity: 2 }, { id: 'cat', name: 'Cat' }, { id: 'dan', name: 'Dan' }, { id: 'eve', name: 'Eve' }] }));
    const c = emptyCounters();
    c.load = { ann: 4, bob: 1 };
    expect(router.route({ segment: segment({ tier: 'enterprise' }), now: NOW }, stateOf(c)).agentId).toBe('ann');
  });

  it('skills: only agents covering every required skill, ties least busy', () => {
    const cfg = config({
      rules: [{ id: 'api', when: [{ field: 'product', op: 'equals', value: 'api' }], queue: 'tech', skills: ['api', 'sql'] }],
      defaultQueue: 'tech',
      queues: [{ id: 'tech', name: 'Tech', strategy: 'skills', agents: ['ann', 'bob', 'cat'], slaFirstResponseSeconds: 600 }],
      agents: [
        { id: 'ann', name: 'Ann', skills: ['api'] },
        { id: 'bob', name: 'Bob', skills: ['api', 'sql'] },
        { id: 'cat', name: 'Cat', skills: ['SQL', 'api', 'k8s'] },
      ],
    });
    const router = createRouter(cfg);
    const c = emptyCounters();
    c.load = { bob: 2, cat: 1 };
    const d = router.route({ segment: segment({ product: 'api' }), now: NOW }, stateOf(c));
    expect(d.agentId).toBe('cat');
    expect(d.skills).toEqual(['api', 'sql']);
    const ann = d.steps[0]!.considered.find((x) => x.agentId === 'ann')!;
    expect(ann).toMatchObject({ reason: 'missing_skill', detail: 'sql' });
    expect(explainDecision(router, d).lines.join('\n')).toMatch(/Ann \(missing skill: sql\)/);
  });
});

describe('capacity and availability', () => {
  it.each([
    { name: 'away agent is skipped', status: { cat: 'away' }, load: {}, want: 'dan', reason: 'away' },
    { name: 'offline agent is skipped', status: { cat: 'offline' }, load: {}, want: 'dan', reason: 'offline' },
    { name: 'agent at capacity is skipped', status: {}, load: { cat: 5 }, want: 'dan', reason: 'at_capacity' },
  ] as { name: string; status: Record<string, AgentStatus>; load: Record<string, number>; want: string; reason: string }[])('$name', ({ status, load, want, reason }) => {
    const router = createRouter(config());
    const c = emptyCounters();
    c.status = status;
    c.load = load;
    const d = router.route({ segment: segment(), now: NOW }, stateOf(c));
    expect(d.agentId).toBe(want);
    expect(d.steps[0]!.considered.find((x) => x.agentId === 'cat')!.reason).toBe(reason);
  });

  it('holds the ticket when nobody can take it and the queue has no overflow', () => {
    const router = createRouter(config());
    const c = emptyCounters();
    c.status = { eve: 'away' };
    const d = router.route({ segment: segment({ category: 'tech' }), now: NOW }, stateOf(c));
    expect(d).toMatchObject({ outcome: 'held', agentId: null, queueId: 'general' });
    expect(d.effects.loadDelta).toBeNull();
    expect(explainDecision(router, d).summary).toBe('General -> waiting');
  });

  it('never assigns past capacity over a long run', () => {
    const router = createRouter(config());
    const c = emptyCounters();
    const ds = simulate(router, Array.from({ length: 40 }, () => segment()), c);
    expect(ds.filter((d) => d.outcome === 'assigned')).toHaveLength(15);
    expect(c.load).toEqual({ cat: 5, dan: 5, eve: 5 });
  });
});

describe('overflow', () => {
  const chain = () =>
    config({
      rules: [],
      defaultQueue: 'l1',
      queues: [
        { id: 'l1', name: 'L1', strategy: 'round_robin', agents: ['ann'], slaFirstResponseSeconds: 600, overflow: { to: 'l2', afterSeconds: 120 } },
        { id: 'l2', name: 'L2', strategy: 'round_robin', agents: ['bob'], slaFirstResponseSeconds: 600, overflow: { to: 'l3' } },
        { id: 'l3', name: 'L3', strategy: 'round_robin', agents: ['cat'], slaFirstResponseSeconds: 600, overflow: { to: 'l1', whenNoAgent: false } as never },
      ],
    });
  it('waited too long: the oldest waiting ticket exceeded the limit', () => {
    const router = createRouter(
      config({
        rules: [],
        defaultQueue: 'l1',
        queues: [
          { id: 'l1', name: 'L1', strategy: 'round_robin', agents: ['ann'], slaFirstResponseSeconds: 600, overflow: { to: 'l2', afterSeconds: 120 } },
          { id: 'l2', name: 'L2', strategy: 'round_robin', agents: ['bob'], slaFirstResponseSeconds: 600 },
        ],
      }),
    );
    const c = emptyCounters();
    applyCounterOps(c, [{ op: 'wait', queueId: 'l1', ticketKey: 'old', since: NOW - 121_000 }]);
    const d = router.route({ segment: segment(), now: NOW }, stateOf(c));
    expect(d.queueId).toBe('l2');
    expect(d.steps[0]!.overflow).toMatchObject({ reason: 'waited_too_long', to: 'l2' });
    expect(explainDecision(router, d).lines.join('\n')).toMatch(/Overflow from L1 to L2: oldest waiting ticket has waited 121 s \(limit 120 s\)/);
    applyCounterOps(c, [{ op: 'wait', queueId: 'l1', ticketKey: 'old', since: NOW - 119_000 }]);
    expect(router.route({ segment: segment(), now: NOW }, stateOf(c)).queueId).toBe('l1');
  });

  it('no agent: follows the chain until someone can take it', () => {
    expect(() => chain()).toThrow(/overflow cycle/);
    const router = createRouter(
      config({
        rules: [],
        defaultQueue: 'l1',
        queues: [
          { id: 'l1', name: 'L1', strategy: 'round_robin', agents: ['ann'], slaFirstResponseSeconds: 600, overflow: { to: 'l2' } },
          { id: 'l2', name: 'L2', strategy: 'round_robin', agents: ['bob'], slaFirstResponseSeconds: 600, overflow: { to: 'l3' } },
          { id: 'l3', name: 'L3', strategy: 'round_robin', agents: ['cat'], slaFirstResponseSeconds: 300 },
        ],
      }),
    );
    const c = emptyCounters();
    c.status = { ann: 'offline', bob: 'away' };
    const d = router.route({ segment: segment(), now: NOW }, stateOf(c));
    expect(d.steps.map((s) => s.queueId)).toEqual(['l1', 'l2', 'l3']);
    expect(d.steps.map((s) => s.overflow?.reason ?? null)).toEqual(['no_agent', 'no_agent', null]);
    expect(d).toMatchObject({ queueId: 'l3', agentId: 'cat', slaDueAt: NOW + 300_000 });
  });

  it('whenNoAgent: false makes the ticket wait in its queue', () => {
    const router = createRouter(
      config({
        rules: [],
        defaultQueue: 'l1',
        queues: [
          { id: 'l1', name: 'L1', strategy: 'round_robin', agents: ['ann'], slaFirstResponseSeconds: 600, overflow: { to: 'l2', afterSeconds: 60, whenNoAgent: false } },
          { id: 'l2', name: 'L2', strategy: 'round_robin', agents: ['bob'], slaFirstResponseSeconds: 600 },
        ],
      }),
    );
    const c = emptyCounters();
    c.status = { ann: 'away' };
    expect(router.route({ segment: segment(), now: NOW }, stateOf(c))).toMatchObject({ outcome: 'held', queueId: 'l1' });
  });
});

describe('rotation', () => {
  it('sends the configured share of tickets to learners, statistically, and spreads it among them', () => {
    const router = createRouter(
      parseRoutingConfig({
        rules: [],
        defaultQueue: 'ent',
        queues: [
          {
            id: 'ent',
            name: 'Enterprise',
            strategy: 'least_busy',
            agents: Array.from({ length: 8 }, (_, i) => ({ id: `a${i}`, capacity: 1000 })),
            slaFirstResponseSeconds: 600,
            rotation: { share: 0.1, learners: ['a6', 'a7'] },
          },
        ],
        agents: Array.from({ length: 8 }, (_, i) => ({ id: `a${i}`, name: `A${i}`, capacity: 1000 })),
      }),
    );
    const c = emptyCounters();
    const ds = simulate(router, Array.from({ length: 5000 }, () => segment()), c);
    const toLearners = ds.filter((d) => d.agentId === 'a6' || d.agentId === 'a7').length;
    expect(toLearners / 5000).toBeGreaterThan(0.09);
    expect(toLearners / 5000).toBeLessThan(0.11);
    expect(ds.filter((d) => d.rotation).length).toBe(toLearners);
    expect(Math.abs((c.load.a6 ?? 0) - (c.load.a7 ?? 0))).toBeLessThanOrEqual(1);
    // The regulars share the rest evenly.
    const regular = [0, 1, 2, 3, 4, 5].map((i) => c.load[`a${i}`] ?? 0);
    expect(Math.max(...regular) - Math.min(...regular)).toBeLessThanOrEqual(1);
  });
});

describe('language', () => {
  const router = createRouter(
    config({
      agents: [
        { id: 'ann', name: 'Ann' },
        { id: 'bob', name: 'Bob' },
        { id: 'cat', name: 'Cat', languages: ['en'] },
        { id: 'dan', name: 'Dan', languages: ['de', 'en'] },
        { id: 'eve', name: 'Eve', languages: ['en'] },
      ],
    }),
  );
  it('prefers an agent who speaks the customer language', () => {
    const d = router.route({ segment: segment({ language: 'DE' }), now: NOW }, stateOf(emptyCounters()));
    expect(d.agentId).toBe('dan');
    expect(d.steps[0]!.considered.find((x) => x.agentId === 'cat')!.reason).toBe('language');
  });
  it('serves the ticket anyway when nobody available speaks it, and says so', () => {
    const d = router.route({ segment: segment({ language: 'fr' }), now: NOW }, stateOf(emptyCounters()));
    expect(d.outcome).toBe('assigned');
    expect(d.languageRelaxed).toBe(true);
    expect(explainDecision(router, d).lines.join('\n')).toMatch(/No available agent speaks/);
  });
});

describe('reassignment when an agent goes offline', () => {
  it('stays in the same queue, excludes the agent and keeps the original wait time', () => {
    const router = createRouter(config());
    const c = emptyCounters();
    const first = router.route({ segment: segment(), now: NOW }, stateOf(c));
    expect(first.agentId).toBe('cat');
    c.status.cat = 'offline';
    const later = NOW + 600_000;
    const again = router.route({ segment: segment({ category: 'changed' }), now: later, queueId: first.queueId, enqueuedAt: first.enqueuedAt, exclude: ['cat'] }, stateOf(c));
    expect(again).toMatchObject({ queueId: 'billing', agentId: 'dan', enqueuedAt: NOW, slaDueAt: NOW + 3_600_000 });
  });
});

describe('explanations', () => {
  it('name the rule, queue, strategy and everyone passed over', () => {
    const router = createRouter(config());
    const c = emptyCounters();
    c.status = { ann: 'away' };
    const d = router.route({ segment: segment({ tier: 'enterprise' }), now: NOW }, stateOf(c));
    const e = explainDecision(router, d);
    expect(e.summary).toBe('VIP -> Bob (rule ent)');
    expect(e.lines).toEqual([
      'tier enterprise from the CRM.',
      'Rule "ent" matched (tier = enterprise) -> queue VIP.',
      'Assigned to Bob by least busy; load 0/5 before this ticket.',
      'Passed over: Ann (away).',
    ]);
  });
});
