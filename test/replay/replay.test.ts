import { describe, expect, it } from 'vitest';
import { parseRoutingConfig, type RoutingConfigInput } from '../../core/config.ts';
import { replay, type ReplayTicket } from '../../core/replay.ts';
import { segment } from '../core/fixtures.ts';
import { buildOutcomes } from '../console/fixtures.ts';

const BASE: RoutingConfigInput = {
  rules: [
    { id: 'ent', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'vip' },
    { id: 'billing', when: [{ field: 'category', op: 'equals', value: 'billing' }], queue: 'billing' },
  ],
  defaultQueue: 'general',
  queues: [
    { id: 'vip', name: 'VIP', strategy: 'least_busy', agents: ['ann', 'bob'], slaFirstResponseSeconds: 900 },
    { id: 'billing', name: 'Billing', strategy: 'round_robin', agents: ['cat', 'dan'], slaFirstResponseSeconds: 3600 },
    { id: 'general', name: 'General', strategy: 'round_robin', agents: ['eve'], slaFirstResponseSeconds: 7200 },
  ],
  agents: [
    { id: 'ann', name: 'Ann', capacity: 2 },
    { id: 'bob', name: 'Bob', capacity: 2 },
    { id: 'cat', name: 'Cat', capacity: 2 },
    { id: 'dan', name: 'Dan', capacity: 2 },
    { id: 'eve', name: 'Eve', capacity: 3 },
  ],
};
const base = parseRoutingConfig(BASE);
const MIN = 60_000;

function ticket(i: number, over: Partial<ReplayTicket> & { tier?: 'enterprise' | 'standard'; category?: string } = {}): ReplayTicket {
  return {
    key: `hubspot:1:t${i}`,
    segment: segment({ tier: over.tier ?? 'standard', category: over.category ?? 'billing' }),
    arrivedAt: 1_000_000 + i * MIN,
    releasedAt: over.releasedAt === undefined ? 1_000_000 + i * MIN + 30 * MIN : over.releasedAt,
    actual: over.actual ?? { queueId: 'billing', agentId: i % 2 ? 'dan' : 'cat' },
  };
}

describe('what-if replay', () => {
  it('an unchanged draft, compared with the configuration in force, changes nothing', () => {
    const tickets = Array.from({ length: 40 }, (_, i) => ticket(i, { category: i % 3 ? 'billing' : 'other', tier: i % 5 ? 'standard' : 'enterprise' }));
    const r = replay({ draft: base, baseline: base, tickets });
    expect(r).toMatchObject({ tickets: 40, compared: 'baseline', movedQueues: 0, changedAgent: 0, moves: [], changes: [] });
    for (const a of r.load) expect(a.after).toEqual(a.before);
  });

  it('counts tickets that move between queues and names the moves', () => {
    const tickets = [...Array.from({ length: 6 }, (_, i) => ticket(i)), ...Array.from({ length: 3 }, (_, i) => ticket(10 + i, { category: 'other' }))];
    const draft = parseRoutingConfig({ ...BASE, rules: [BASE.rules[0]!] }); // billing rule removed
    const r = replay({ draft, baseline: base, tickets });
    expect(r.movedQueues).toBe(6);
    expect(r.moves).toEqual([{ from: 'billing', to: 'general', count: 6 }]);
    expect(r.queues.find((q) => q.queueId === 'billing')).toEqual({ queueId: 'billing', before: 6, after: 0 });
    expect(r.queues.find((q) => q.queueId === 'general')).toEqual({ queueId: 'general', before: 3, after: 9 });
  });

  it('projects load against capacity: a ticket holds its agent until it was really resolved; one resolved while it would still wait is never assigned', () => {
    const draft = parseRoutingConfig({ ...BASE, agents: BASE.agents.map((a) => (a.id === 'cat' || a.id === 'dan' ? { ...a, capacity: 1 } : a)) });
    const at = (min: number) => 1_000_000 + min * MIN;
    // Two long tickets take both agents; a short one arrives and is resolved before either frees; a fourth waits.
    const tickets = [ticket(0, { releasedAt: at(60) }), ticket(1, { releasedAt: at(61) }), ticket(2, { releasedAt: at(12) }), ticket(3, { releasedAt: at(70) })];
    const r = replay({ draft, baseline: base, tickets });
    const cat = r.load.find((a) => a.agentId === 'cat')!;
    const dan = r.load.find((a) => a.agentId === 'dan')!;
    expect(cat.capacity).toBe(1);
    expect(cat.after).toEqual({ assigned: 2, peak: 1, open: 0 }); // ticket 0, then ticket 3 when 0 was resolved
    expect(dan.after).toEqual({ assigned: 1, peak: 1, open: 0 });
    expect(cat.before.peak).toBe(2); // capacity 2 in force: cat held two at once
    expect(r.neverAssigned).toEqual({ before: 0, after: 1 });
    const short = r.changes.find((ch) => ch.key === 'hubspot:1:t2')!;
    expect(short.after.agentId).toBeNull();
    expect(short.after.summary).toBe('Billing -> waiting');
    expect(short.after.lines.join(' ')).toMatch(/Passed over: Cat \(at capacity \(1\/1\)\); Dan \(at capacity \(1\/1\)\)\./);
  });

  it('places a waiting ticket as soon as an agent frees up before the ticket is resolved', () => {
    const draft = parseRoutingConfig({ ...BASE, queues: BASE.queues.map((q) => (q.id === 'billing' ? { ...q, agents: [{ id: 'cat', capacity: 1 }] } : q)), agents: BASE.agents.map((a) => (a.id === 'cat' ? { ...a, capacity: 1 } : a)) });
    const tickets = [ticket(0, { releasedAt: 1_000_000 + 10 * MIN }), ticket(1, { releasedAt: 1_000_000 + 90 * MIN })];
    const r = replay({ draft, baseline: base, tickets });
    expect(r.neverAssigned.after).toBe(0);
    expect(r.load.find((a) => a.agentId === 'cat')!.after).toEqual({ assigned: 2, peak: 1, open: 0 });
    const second = r.changes.find((ch) => ch.key === 'hubspot:1:t1')!;
    expect(second.after.agentId).toBe('cat');
    expect(second.before.agentId).toBe('dan');
  });

  it('without a baseline, compares with what really happened, using the stored explanation', () => {
    const tickets = [ticket(0, { actual: { queueId: 'general', agentId: 'eve', summary: 'General -> Eve', explanation: ['No rule matched -> default queue General.'] } })];
    const r = replay({ draft: base, tickets });
    expect(r.compared).toBe('actual');
    expect(r.moves).toEqual([{ from: 'general', to: 'billing', count: 1 }]);
    expect(r.changes[0]!.before).toEqual({ queueId: 'general', agentId: 'eve', outcome: 'actual', summary: 'General -> Eve', lines: ['No rule matched -> default queue General.'] });
    expect(r.changes[0]!.after).toMatchObject({ queueId: 'billing', agentId: 'cat', outcome: 'assigned', summary: 'Billing -> Cat (rule billing)' });
    expect(r.load.find((a) => a.agentId === 'eve')!.before).toEqual({ assigned: 1, peak: 1, open: 0 });
  });

  it('reports agents the draft removes, and limits the explained changes while counting all', () => {
    const draft = parseRoutingConfig({ ...BASE, queues: BASE.queues.map((q) => (q.id === 'billing' ? { ...q, agents: ['cat'] } : q)), agents: BASE.agents.filter((a) => a.id !== 'dan') });
    const tickets = Array.from({ length: 30 }, (_, i) => ticket(i, { releasedAt: 1_000_000 + i * MIN + 5 * MIN }));
    const r = replay({ draft, baseline: base, tickets, explainLimit: 4 });
    const dan = r.load.find((a) => a.agentId === 'dan')!;
    expect(dan.capacity).toBeNull();
    expect(dan.name).toBe('Dan');
    expect(dan.after.assigned).toBe(0);
    expect(r.changedAgent).toBe(15);
    expect(r.changes).toHaveLength(4);
  });

  it('does not depend on the order tickets are given in', () => {
    const { config, tickets: recs } = buildOutcomes({ count: 400, end: Date.UTC(2026, 10, 2), spanMs: 2 * 86400_000 });
    const tickets: ReplayTicket[] = recs.map((t) => ({ key: t.key, segment: t.segment!, arrivedAt: t.enqueuedAt!, releasedAt: t.resolvedAt, actual: { queueId: t.queueId, agentId: t.agentId } }));
    const draft = parseRoutingConfig({ ...config, rules: config.rules.slice(1) });
    const a = replay({ draft, baseline: config, tickets });
    const b = replay({ draft, baseline: config, tickets: [...tickets].reverse() });
    expect(b).toEqual(a);
    expect(a.movedQueues).toBeGreaterThan(0);
  });
});
