import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import type { RoutingConfigInput } from '../../core/config.ts';
import type { Store } from '../../core/ports.ts';
import { ticketKey, type TicketRef } from '../../core/segment.ts';
import { createConfigService } from '../../server/config-service.ts';
import { harness } from './harness.ts';

const CONFIG: RoutingConfigInput = {
  rules: [
    { id: 'ent', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'vip' },
    { id: 'billing', when: [{ field: 'category', op: 'equals', value: 'billing' }], queue: 'billing' },
  ],
  defaultQueue: 'general',
  queues: [
    { id: 'vip', name: 'VIP', strategy: 'least_busy', agents: ['ann', 'bob'], slaFirstResponseSeconds: 900, escalation: { mention: 'ann' }, groups: ['g-vip'] },
    { id: 'billing', name: 'Billing', strategy: 'round_robin', agents: [{ id: 'cat', capacity: 1 }, { id: 'dan', capacity: 1 }], slaFirstResponseSeconds: 3600, groups: ['g1', 'g2'] },
    { id: 'general', name: 'General', strategy: 'round_robin', agents: ['eve'], slaFirstResponseSeconds: 7200, groups: ['g1'] },
  ],
  agents: [
    { id: 'ann', name: 'Ann', telegramUserId: '1001' },
    { id: 'bob', name: 'Bob', telegramUserId: '1002' },
    { id: 'cat', name: 'Cat', telegramUserId: '1003', capacity: 1 },
    { id: 'dan', name: 'Dan', telegramUserId: '1004', capacity: 1 },
    { id: 'eve', name: 'Eve', telegramUserId: '1005' },
  ],
  groups: [
    { id: 'g-vip', title: 'VIP' },
    { id: 'g1', title: 'Support 1' },
    { id: 'g2', title: 'Support 2' },
  ],
};

/** Counts the store's decision turns (exclusive sections) from now on. */
function countTurns(store: Store): { count: number } {
  const turns = { count: 0 };
  const exclusive = store.exclusive.bind(store);
  store.exclusive = (fn) => {
    turns.count++;
    return exclusive(fn);
  };
  return turns;
}

const ev = (ref: TicketRef, key: string, at = Date.UTC(2026, 10, 2, 9, 0, 0)) => ({ idempotencyKey: key, ref, reason: 'created' as const, at });

describe('pipeline: intake to topic to write-back', () => {
  it('routes a ticket once, opens one topic with the card, and writes the outcome back with the topic link', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t1', { tier: 'enterprise' }, 'Login fails');
    const r1 = await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    const r2 = await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now()), ev(ref, 'e2-other-delivery', h.clock.now())]);
    expect(r1).toEqual({ accepted: 1, duplicates: 0 });
    expect(r2).toEqual({ accepted: 1, duplicates: 1 });
    await h.drain();

    expect(h.tg.topics).toHaveLength(1);
    expect(h.tg.topics[0]).toMatchObject({ groupId: 'g-vip', title: '[ENT] Acme Corp · Login fails' });
    const card = h.tg.posts.find((p) => p.pin)!;
    expect(card.mention).toMatchObject({ name: 'Ann', telegramUserId: '1001' });
    expect(card.text).toMatch(/Why this ticket is here:[\s\S]*Rule "ent" matched/);
    expect(card.text).toMatch(/CRM record: https:\/\/app\.hubspot\.com/);

    expect(h.crm.writes).toHaveLength(1);
    const w = h.crm.writes[0]!;
    expect(w.entry).toMatchObject({ kind: 'routed', seq: 1, key: `${ticketKey(ref)}#1` });
    expect(w.fields).toMatchObject({ status: 'assigned', queue: 'VIP', agent: 'Ann', tier: 'enterprise', rule: 'ent', topicLink: 'https://t.me/c/1/100' });
    expect(w.companyId).toBe('co-1');
    expect((await h.store.counters()).load).toEqual({ ann: 1 });
  });

  it('spreads a queue over its groups', async () => {
    const h = await harness(CONFIG);
    for (const id of ['b1', 'b2']) await h.pipeline.intake.accept([ev(h.crm.add(id), id)]);
    await h.drain();
    expect(h.tg.topics.map((t) => t.groupId).sort()).toEqual(['g1', 'g2']);
  });

  it('the topic’s group and random_id are stored with the routing decision, so opening the topic takes one write', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t1', { tier: 'enterprise' });
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.pipeline.runDue(); // the route step only: the topic step it queues is claimed by the next pass
    const routed = (await h.store.getTicket(ticketKey(ref)))!;
    expect(routed).toMatchObject({ status: 'assigned', topic: null, topicGroupId: 'g-vip', topicGeneration: 0 });
    expect(routed.topicRandomId).toMatch(/^\d+$/);
    expect(h.tg.topics).toHaveLength(0);

    let commits = 0;
    const commit = h.store.commit.bind(h.store);
    h.store.commit = (b, o) => (commits++, commit(b, o));
    await h.pipeline.runDue(); // the topic step
    expect(h.tg.topics).toEqual([expect.objectContaining({ groupId: 'g-vip', randomId: routed.topicRandomId })]);
    expect(commits).toBe(1);
  });

  it('a queue with no Telegram group still routes; its topic step fails with the fix, and works once a group is added', async () => {
    const noGroups: RoutingConfigInput = { ...CONFIG, rules: [], defaultQueue: 'general', queues: [{ ...CONFIG.queues[2]!, groups: [] }], groups: [] };
    const h = await harness(noGroups);
    const ref = h.crm.add('t1');
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.drain();
    expect(await h.store.getTicket(ticketKey(ref))).toMatchObject({ status: 'assigned', queueId: 'general', topicGroupId: null });
    const dead = await h.store.deadJobs();
    expect(dead.map((j) => [j.kind, j.lastError])).toEqual([['topic', expect.stringMatching(/no Telegram group.*add a forum group/)]]);
    expect(h.tg.topics).toHaveLength(0);

    await createConfigService(h.store, h.clock).save({ ...noGroups, queues: [{ ...noGroups.queues[0]!, groups: ['g1'] }], groups: [{ id: 'g1', title: 'Support 1' }] }, { author: 'admin', note: 'add a group' });
    expect(await h.store.retryDeadJob(dead[0]!.id, h.clock.now())).toBe(true);
    await h.drain();
    expect(h.tg.topics).toEqual([expect.objectContaining({ groupId: 'g1' })]);
    expect(h.crm.writes.map((w) => w.fields.topicLink)).toEqual(['https://t.me/c/1/100']);
  });

  it('a ticket already closed in the CRM is not routed: no topic, no write-back, counted with its reason', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('old-1', { tier: 'enterprise' });
    h.crm.close(ref);
    expect(await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())])).toEqual({ accepted: 1, duplicates: 0 });
    await h.drain();
    expect(await h.store.getTicket(ticketKey(ref))).toBeNull();
    expect(h.tg.topics).toHaveLength(0);
    expect(h.crm.writes).toHaveLength(0);
    expect(await h.store.deadJobs()).toEqual([]);
    expect(h.counted.filter((c) => c.name === 'tierline_routing_skipped_total').map((c) => c.labels)).toEqual([{ crm: 'hubspot', reason: 'closed_in_crm' }]);
    expect((await h.store.counters()).load).toEqual({});
  });

  it('a routed ticket closed in the CRM is resolved here: topic closed, capacity freed, SLA timers gone, resolution written back', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t7', { tier: 'standard', category: 'technical' });
    await h.pipeline.intake.accept([ev(ref, 'create-7', h.clock.now())]);
    await h.drain();
    expect((await h.store.counters()).load).toEqual({ eve: 1 });
    // A rep closes it in the CRM (and, in the same edit, changes a segment field: not moved, resolved).
    h.crm.add('t7', { tier: 'enterprise', category: 'technical' });
    h.crm.close(ref);
    await h.pipeline.intake.accept([{ idempotencyKey: 'stage-7', ref, reason: 'status', at: h.clock.now() }]);
    await h.pipeline.intake.accept([{ idempotencyKey: 'change-7', ref, reason: 'changed', at: h.clock.now() }]);
    await h.drain();
    expect(await h.store.getTicket(ticketKey(ref))).toMatchObject({ status: 'resolved', queueId: 'general', agentId: 'eve', reassignCount: 0 });
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'resolved']);
    expect(h.crm.writes[1]!.entry.text).toBe('Resolved (closed in the CRM)');
    expect(h.crm.writes[1]!.fields.status).toBe('resolved');
    expect(h.tg.posts.at(-1)!.text).toBe('✅ Resolved (closed in the CRM).');
    expect(h.tg.closed).toHaveLength(1);
    expect((await h.store.counters()).load).toEqual({ eve: 0 });
    // Its SLA breach does not fire later.
    h.clock.advance(3 * 3600_000);
    await h.drain();
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'resolved']);
  });

  it('a status event never routes a ticket, and does not read the CRM for one not routed', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t8');
    let reads = 0;
    const fetch = h.crm.port.fetchContext.bind(h.crm.port);
    h.crm.port.fetchContext = (r) => (reads++, fetch(r));
    await h.pipeline.intake.accept([{ idempotencyKey: 'stage-8', ref, reason: 'status', at: h.clock.now() }]);
    await h.drain();
    expect(reads).toBe(0);
    expect(await h.store.getTicket(ticketKey(ref))).toBeNull();
    expect(h.tg.topics).toHaveLength(0);
    // Reopened and moved between open stages after routing: nothing changes.
    await h.pipeline.intake.accept([ev(ref, 'create-8', h.clock.now())]);
    await h.drain();
    await h.pipeline.intake.accept([{ idempotencyKey: 'stage-8b', ref, reason: 'status', at: h.clock.now() }]);
    await h.drain();
    expect(reads).toBe(2);
    expect(await h.store.getTicket(ticketKey(ref))).toMatchObject({ status: 'assigned', reassignCount: 0 });
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed']);
  });

  it('a crash after the topic was created but before it was recorded does not open a second topic', async () => {
    const h = await harness(CONFIG);
    h.tg.crashAfterCreate();
    await h.pipeline.intake.accept([ev(h.crm.add('t1'), 'e1')]);
    await h.drain();
    h.clock.advance(60_000);
    await h.drain();
    expect(h.tg.topics).toHaveLength(1);
    expect(h.tg.posts.filter((p) => p.pin)).toHaveLength(1);
    expect(h.crm.writes.map((w) => w.entry.kind), JSON.stringify(h.crm.writes.map((w) => w.entry.text))).toEqual(['routed']);
  });
});

describe('pipeline: later events', () => {
  async function routed() {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t1', { tier: 'enterprise' });
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    return { h, ref, t, topic: t.topic! };
  }

  it('the assigned agent’s first message records first response and SLA met, once', async () => {
    const { h, ref, topic } = await routed();
    h.clock.advance(5 * 60_000);
    const msg = { kind: 'message' as const, groupId: topic.groupId, topicId: topic.topicId, messageId: 7, fromTelegramUserId: '1001', text: 'Looking into it', at: h.clock.now() };
    await h.pipeline.onMessengerEvent(msg);
    await h.pipeline.onMessengerEvent(msg);
    await h.pipeline.onMessengerEvent({ ...msg, messageId: 8, text: 'still here' });
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    expect(t).toMatchObject({ status: 'answered', firstResponderId: 'ann', slaMet: true });
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'first_reply']);
    expect(h.crm.writes[1]!.fields).toMatchObject({ status: 'answered', firstResponseMinutes: 5, slaMet: true });
  });

  it('events of one topic are handled in order: a reply and a /resolve sent together both count', async () => {
    const { h, ref, topic } = await routed();
    h.clock.advance(60_000);
    const base = { kind: 'message' as const, groupId: topic.groupId, topicId: topic.topicId, fromTelegramUserId: '1001', at: h.clock.now() };
    await h.pipeline.onMessengerEvent({ ...base, messageId: 20, text: 'Fixed it, closing' });
    await h.pipeline.onMessengerEvent({ ...base, messageId: 21, text: '/resolve' });
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    expect(t).toMatchObject({ status: 'resolved', firstResponderId: 'ann', slaMet: true });
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'first_reply', 'resolved']);
  });

  it('a reply by another agent is recorded as such', async () => {
    const { h, topic } = await routed();
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: topic.groupId, topicId: topic.topicId, messageId: 9, fromTelegramUserId: '1002', text: 'I got this', at: h.clock.now() });
    await h.drain();
    expect(h.crm.writes.at(-1)!.entry).toMatchObject({ kind: 'reply_by_other' });
    expect(h.crm.writes.at(-1)!.entry.text).toMatch(/First reply by Bob \(assigned: Ann\)/);
  });

  it('/resolve closes the ticket, frees capacity and places the next waiting ticket', async () => {
    const h = await harness(CONFIG);
    const refs = ['w1', 'w2', 'w3'].map((id) => h.crm.add(id, { category: 'billing' }));
    for (const [i, r] of refs.entries()) {
      await h.pipeline.intake.accept([ev(r, `e${i}`, h.clock.now())]);
      await h.drain();
      h.clock.advance(1000);
    }
    const third = (await h.store.getTicket(ticketKey(refs[2]!)))!;
    expect(third).toMatchObject({ status: 'waiting', agentId: null, queueId: 'billing' });
    const first = (await h.store.getTicket(ticketKey(refs[0]!)))!;
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: first.topic!.groupId, topicId: first.topic!.topicId, messageId: 1, fromTelegramUserId: '1003', text: '/resolve', at: h.clock.now() });
    await h.drain();
    expect((await h.store.getTicket(ticketKey(refs[0]!)))!.status).toBe('resolved');
    expect(h.tg.closed).toHaveLength(1);
    const placed = (await h.store.getTicket(ticketKey(refs[2]!)))!;
    expect(placed).toMatchObject({ status: 'assigned', agentId: 'cat', enqueuedAt: third.enqueuedAt });
    const kinds = h.crm.writes.filter((w) => w.ref.ticketId === 'w3').map((w) => w.entry.kind);
    expect(kinds).toEqual(['routed', 'assigned']);
    expect((await h.store.counters()).load).toEqual({ cat: 1, dan: 1 });
  });

  it('a whole backlog that waited too long overflows to the next queue, keeping its wait time', async () => {
    const config = { ...CONFIG, queues: CONFIG.queues.map((q) => (q.id === 'billing' ? { ...q, slaFirstResponseSeconds: 86_400, overflow: { to: 'general', afterSeconds: 3600, whenNoAgent: false } } : q.id === 'general' ? { ...q, slaFirstResponseSeconds: 86_400, agents: [{ id: 'eve', capacity: 1 }] } : q)) };
    const h = await harness(config);
    const refs = Array.from({ length: 252 }, (_, i) => h.crm.add(`b${i}`, { category: 'billing' }));
    await h.pipeline.intake.accept(refs.map((r, i) => ev(r, `e${i}`, h.clock.now())));
    await h.drain();
    const before = await h.store.counters();
    expect(Object.keys(before.waiting.billing ?? {})).toHaveLength(250);
    h.clock.advance(3601_000);
    await h.drain();
    const c = await h.store.counters();
    expect(Object.keys(c.waiting.billing ?? {})).toHaveLength(0);
    // Eve (general, capacity 1) takes the oldest; the other 249 wait in general, their wait time kept.
    expect(Object.keys(c.waiting.general ?? {})).toHaveLength(249);
    expect(Object.values(c.waiting.general ?? {}).every((since) => since === Object.values(before.waiting.billing!)[0])).toBe(true);
    expect((await h.store.history({ kind: 'overflow', limit: 1 })).total).toBe(250);
    expect(c.load).toMatchObject({ cat: 1, dan: 1, eve: 1 });
  });

  it('a pass over a full queue takes one decision turn however many tickets wait in it', async () => {
    const h = await harness(CONFIG);
    // Cat and Dan (billing, capacity 1 each) take the first two; 600 wait behind them.
    const refs = Array.from({ length: 602 }, (_, i) => h.crm.add(`f${i}`, { category: 'billing' }));
    await h.pipeline.intake.accept(refs.map((r, i) => ev(r, `f${i}`, h.clock.now())));
    await h.drain();
    expect(Object.keys((await h.store.counters()).waiting.billing ?? {})).toHaveLength(600);
    const turns = countTurns(h.store);
    expect(await h.pipeline.assignWaiting(['billing'])).toBe(0);
    // The first hundred show that nobody can take a ticket; the other five hundred need no turn of their own.
    expect(turns.count).toBe(1);
    expect(Object.keys((await h.store.counters()).waiting.billing ?? {})).toHaveLength(600);
  });

  it('a freed skilled agent gets the oldest waiting ticket that needs their skill, in a few decision turns however long the queue', async () => {
    const config: RoutingConfigInput = {
      ...CONFIG,
      rules: [
        { id: 'billing', when: [{ field: 'category', op: 'equals', value: 'billing' }], queue: 'skilled', skills: ['billing'] },
        { id: 'api', when: [{ field: 'category', op: 'equals', value: 'technical' }], queue: 'skilled', skills: ['api'] },
      ],
      queues: [...CONFIG.queues, { id: 'skilled', name: 'Skilled', strategy: 'skills', agents: ['sam', 'pat'], slaFirstResponseSeconds: 86_400, groups: ['g1'] }],
      agents: [...CONFIG.agents, { id: 'sam', name: 'Sam', telegramUserId: '1006', capacity: 1, skills: ['api'] }, { id: 'pat', name: 'Pat', telegramUserId: '1007', capacity: 1, skills: ['billing'] }],
    };
    const h = await harness(config);
    const busyApi = h.crm.add('api-0', { category: 'technical' });
    const busyBilling = h.crm.add('bill-0', { category: 'billing' });
    const waitingApi = Array.from({ length: 250 }, (_, i) => h.crm.add(`api-${i + 1}`, { category: 'technical' }));
    const waitingBilling = h.crm.add('bill-1', { category: 'billing' });
    for (const [i, r] of [busyApi, busyBilling, ...waitingApi, waitingBilling].entries()) {
      await h.pipeline.intake.accept([ev(r, `s${i}`, h.clock.now())]);
      await h.drain();
      h.clock.advance(10);
    }
    expect(Object.keys((await h.store.counters()).waiting.skilled ?? {})).toHaveLength(251);

    // Pat resolves their ticket: the next ticket Pat can take is the billing one behind 250 API tickets.
    const turns = countTurns(h.store);
    const done = (await h.store.getTicket(ticketKey(busyBilling)))!;
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: done.topic!.groupId, topicId: done.topic!.topicId, messageId: 1, fromTelegramUserId: '1007', text: '/resolve', at: h.clock.now() });
    const resolveTurns = turns.count;
    await h.drain();
    expect((await h.store.getTicket(ticketKey(waitingBilling)))).toMatchObject({ status: 'assigned', agentId: 'pat' });
    // The API tickets keep waiting for Sam (the only agent with the api skill), none went to Pat.
    expect(Object.keys((await h.store.counters()).waiting.skilled ?? {})).toHaveLength(250);
    expect((await h.store.getTicket(ticketKey(waitingApi[0]!)))).toMatchObject({ status: 'waiting', agentId: null });
    expect(turns.count - resolveTurns).toBeLessThan(15);
  });

  it('SLA: a reminder before the target and, on breach, the escalation target is mentioned', async () => {
    const { h, ref } = await routed();
    h.clock.advance(13 * 60_000);
    await h.drain();
    expect(h.tg.posts.at(-1)!.text).toMatch(/SLA runs out in 2 min/);
    h.clock.advance(3 * 60_000);
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    expect(t).toMatchObject({ slaMet: false, escalated: true });
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'sla_breached', 'escalated']);
    expect(h.tg.posts.at(-1)!.mention).toMatchObject({ name: 'Ann' });
  });

  it('asks for topics with the priority Telegram pacing uses: higher tiers first, then the nearer SLA deadline', async () => {
    // Billing answers within 10 minutes here; general within 2 hours.
    const h = await harness({ ...CONFIG, queues: CONFIG.queues.map((q) => (q.id === 'billing' ? { ...q, slaFirstResponseSeconds: 600 } : q)) });
    const ent = h.crm.add('p1', { tier: 'enterprise' });
    const free = h.crm.add('p2', { tier: 'free', category: 'technical' });
    const bill = h.crm.add('p3', { tier: 'free', category: 'billing' });
    await h.pipeline.intake.accept([ev(ent, 'p1', h.clock.now()), ev(free, 'p2', h.clock.now()), ev(bill, 'p3', h.clock.now())]);
    await h.drain();
    const prio = (k: string) => h.tg.topics.find((t) => t.title.includes(k))!.priority!;
    // Enterprise above both free tickets; of the free ones, billing's 10-minute deadline is nearer than general's.
    expect(prio('Issue p1')).toBeGreaterThan(prio('Issue p3'));
    expect(prio('Issue p3')).toBeGreaterThan(prio('Issue p2'));
  });

  it('SLA metrics: a breach is counted once, by its timer, not again when the late first reply comes', async () => {
    const { h, topic } = await routed();
    h.clock.advance(16 * 60_000);
    await h.drain();
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: topic.groupId, topicId: topic.topicId, messageId: 9, fromTelegramUserId: '1001', text: 'Sorry for the wait', at: h.clock.now() });
    await h.drain();
    const sla = h.counted.filter((c) => c.name === 'tierline_sla_total');
    expect(sla.map((c) => c.labels.result)).toEqual(['breached']);
  });

  it('an agent going offline has their unanswered tickets reassigned in the same queue, keeping the wait time', async () => {
    const { h, ref, t } = await routed();
    h.clock.advance(60_000);
    await h.pipeline.setAgentStatus('ann', 'offline', 'admin');
    await h.drain();
    const after = (await h.store.getTicket(ticketKey(ref)))!;
    expect(after).toMatchObject({ agentId: 'bob', queueId: 'vip', enqueuedAt: t.enqueuedAt, slaDueAt: t.slaDueAt, reassignCount: 1 });
    expect((await h.store.counters()).load).toEqual({ ann: 0, bob: 1 });
    expect(h.crm.writes.at(-1)!.entry.text).toMatch(/Reassigned from Ann to Bob: agent went offline/);
  });

  it('presence: offline only after the grace period, and an explicit /away wins over coming online', async () => {
    const { h, ref, topic } = await routed();
    await h.pipeline.onMessengerEvent({ kind: 'presence', telegramUserId: '1001', online: false, at: h.clock.now() });
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))!.agentId).toBe('ann');
    h.clock.advance(3 * 60_000);
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))!.agentId).toBe('bob');
    // Bob says /away in the topic; presence "online" must not make him available again.
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: topic.groupId, topicId: topic.topicId, messageId: 50, fromTelegramUserId: '1002', text: '/away', at: h.clock.now() });
    await h.pipeline.onMessengerEvent({ kind: 'presence', telegramUserId: '1002', online: true, at: h.clock.now() + 1 });
    await h.drain();
    expect((await h.store.counters()).status.bob).toBe('away');
    expect(h.tg.posts.at(-1)!.text).toMatch(/Bob is now away/);
  });

  it('/reassign and /escalate work from the topic; unknown commands get help', async () => {
    const { h, ref, topic } = await routed();
    const say = (id: number, from: string, text: string) => h.pipeline.onMessengerEvent({ kind: 'message', groupId: topic.groupId, topicId: topic.topicId, messageId: id, fromTelegramUserId: from, text, at: h.clock.now() });
    await say(1, '1001', '/reassign on holiday tomorrow');
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))!.agentId).toBe('bob');
    await say(2, '1002', '/escalate');
    await say(3, '1002', '/frobnicate');
    await h.drain();
    expect(h.crm.writes.map((w) => w.entry.kind)).toEqual(['routed', 'reassigned', 'escalated']);
    expect(h.tg.posts.some((p) => /Unknown command \/frobnicate/.test(p.text))).toBe(true);
  });

  it('a deleted topic is recreated and relinked, and the CRM record gets the new link', async () => {
    const { h, ref } = await routed();
    h.tg.topics[0]!.deleted = true;
    await h.pipeline.setAgentStatus('ann', 'offline', 'admin'); // produces a message for the topic
    await h.drain();
    h.clock.advance(5_000);
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    expect(h.tg.topics.filter((x) => !x.deleted)).toHaveLength(1);
    expect(t.topic!.topicId).not.toBe(100);
    expect(t.topicGeneration).toBe(1);
    const w = h.crm.writes.find((x) => x.entry.kind === 'topic_recreated')!;
    expect(w.fields.topicLink).toBe(t.topic!.link);
    expect(h.tg.posts.filter((p) => p.topic.topicId === t.topic!.topicId && p.pin)).toHaveLength(1);
  });
});

describe('pipeline: failures', () => {
  it('retries a transient CRM failure with backoff, then succeeds', async () => {
    const h = await harness(CONFIG);
    h.crm.failNext(new AppError('upstream', 'HubSpot answered 502'), new AppError('rate_limited', '429', { retryAfterMs: 10_000 }));
    await h.pipeline.intake.accept([ev(h.crm.add('t1'), 'e1')]);
    await h.drain();
    expect(h.tg.topics).toHaveLength(0);
    h.clock.advance(2_000);
    await h.drain();
    h.clock.advance(5_000);
    await h.drain();
    expect(h.tg.topics).toHaveLength(0); // the 429 asked for 10 s
    h.clock.advance(6_000);
    await h.drain();
    expect(h.tg.topics).toHaveLength(1);
    expect(await h.store.deadJobs()).toHaveLength(0);
  });

  it('a deleted CRM ticket becomes a dead letter with a clear error, and retrying it works once fixed', async () => {
    const h = await harness(CONFIG);
    const ref = { crm: 'hubspot' as const, account: '42', ticketId: 'gone' };
    await h.pipeline.intake.accept([ev(ref, 'e1')]);
    await h.drain();
    const dead = await h.store.deadJobs();
    expect(dead).toHaveLength(1);
    expect(dead[0]!.lastError).toMatch(/not_found: Ticket gone was deleted in HubSpot/);
    h.crm.add('gone');
    expect(await h.store.retryDeadJob(dead[0]!.id, h.clock.now())).toBe(true);
    await h.drain();
    expect(h.tg.topics).toHaveLength(1);
    expect(await h.store.deadJobs()).toHaveLength(0);
  });

  it('a change of the fields that decide the segment re-routes an unanswered ticket, once per change, and never an answered one', async () => {
    const h = await harness(CONFIG);
    const ref = h.crm.add('t9', { tier: 'standard', category: 'technical' }, 'Invoice question');
    await h.pipeline.intake.accept([ev(ref, 'create-9', h.clock.now())]);
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))).toMatchObject({ queueId: 'general', agentId: 'eve' });

    // The account was upgraded in the CRM: the change event routes it again, with fresh data.
    h.crm.add('t9', { tier: 'enterprise', category: 'technical' }, 'Invoice question');
    const changed = { idempotencyKey: 'change-9a', ref, reason: 'changed' as const, at: h.clock.now() };
    await h.pipeline.intake.accept([changed]);
    await h.pipeline.intake.accept([changed]); // redelivered
    await h.drain();
    const t = (await h.store.getTicket(ticketKey(ref)))!;
    expect(t).toMatchObject({ queueId: 'vip', agentId: 'ann', reassignCount: 1 });
    expect(t.segment?.tier).toBe('enterprise');
    expect((await h.store.counters()).load).toEqual({ ann: 1, eve: 0 });
    const moved = h.crm.writes.filter((w) => w.entry.kind === 'reassigned');
    expect(moved).toHaveLength(1);
    expect(moved[0]!.entry.text).toMatch(/Re-routed after the CRM record changed \(tier\)/);
    expect(moved[0]!.fields).toMatchObject({ queue: 'VIP', agent: 'Ann', tier: 'enterprise' });
    expect(h.tg.topics).toHaveLength(1); // the topic stays; Ann is mentioned in it
    expect(h.tg.posts.some((p) => p.text.startsWith('🔀') && p.mention?.name === 'Ann')).toBe(true);

    // Once Ann has answered, later changes leave the ticket with her.
    await h.pipeline.onMessengerEvent({ kind: 'message', groupId: t.topic!.groupId, topicId: t.topic!.topicId, messageId: 900, fromTelegramUserId: '1001', text: 'Looking into it', at: h.clock.now() });
    await h.drain();
    h.crm.add('t9', { tier: 'free', category: 'billing' }, 'Invoice question');
    await h.pipeline.intake.accept([{ ...changed, idempotencyKey: 'change-9b' }]);
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))).toMatchObject({ queueId: 'vip', agentId: 'ann', reassignCount: 1 });
    expect(await h.store.deadJobs()).toEqual([]);
  });
});

describe('connector records reserved with the step', () => {
  it('stores the topic record and the routing note record in the same write as the decision; the topic step lets its next steps start while it is saved', async () => {
    const h = await harness(CONFIG);
    const reservedTopics: string[] = [];
    h.tg.port.reserveTopic = async (req) => {
      reservedTopics.push(`${req.groupId} ${req.title} ${req.randomId}`);
      return [{ ns: 'tg', key: req.randomId, value: { title: req.title } }];
    };
    h.crm.port.reserveWriteBack = async (_ref, entryKey) => [{ ns: 'crm', key: entryKey, value: 'pending' }];
    // Which store calls were made before any earlier one had finished: one submission for the lowdb store's writer.
    const calls: string[] = [];
    const { kvPut, commit } = { kvPut: h.store.kvPut.bind(h.store), commit: h.store.commit.bind(h.store) };
    h.store.kvPut = (ns, key, value, o) => (calls.push(`kv ${ns}`), kvPut(ns, key, value, o));
    h.store.commit = (b, o) => (calls.push(`commit ${(b.jobs ?? []).map((j) => j.kind).join(',')}${o?.stepsBeforeSaved ? ' early' : ''}`), commit(b, o).then(() => void calls.push('saved')));
    const ref = h.crm.add('r1', { tier: 'enterprise' }, 'Login fails');
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.drain();

    // The decision carries both records; the topic step's batch carries none, so its card and write-back need not
    // wait for the disk (a lost batch runs the topic step again, which finds its topic through the saved record).
    expect(calls.join(' | ')).toMatch(/^commit route early \| saved \| kv tg \| kv crm \| commit topic \| saved \| commit post,writeback early \| saved/);
    // The topic step asks for exactly what was reserved (same group, title and random id).
    const t = h.tg.topics[0]!;
    expect(reservedTopics).toEqual([`${t.groupId} ${t.title} ${t.randomId}`]);
    expect(await h.store.kvGet('tg', t.randomId)).toEqual({ title: t.title });
    expect(await h.store.kvGet('crm', `${ticketKey(ref)}#1`)).toBe('pending');
  });

  it('tells a connector whether its step runs for the first time anywhere: yes on the first claim, no on a retry', async () => {
    const h = await harness(CONFIG);
    const runs: (boolean | undefined)[] = [];
    const createTopic = h.tg.port.createTopic.bind(h.tg.port);
    h.tg.port.createTopic = (req) => (runs.push(req.firstRun), createTopic(req));
    h.tg.crashAfterCreate();
    const ref = h.crm.add('r3', { tier: 'enterprise' }, 'Login fails');
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.drain();
    h.clock.advance(5_000);
    await h.drain();
    // Only the first run may trust what the connector reserved in memory; the retry must look for the first's topic.
    expect(runs).toEqual([true, false]);
    expect(h.tg.topics).toHaveLength(1);
    expect(h.crm.writes.map((w) => w.firstRun)).toEqual([true]);
  });

  it('routes as before when a connector cannot reserve (it writes its record in the step)', async () => {
    const h = await harness(CONFIG);
    h.tg.port.reserveTopic = async () => {
      throw new AppError('upstream', 'not connected');
    };
    const ref = h.crm.add('r2', { tier: 'enterprise' }, 'Login fails');
    await h.pipeline.intake.accept([ev(ref, 'e1', h.clock.now())]);
    await h.drain();
    expect((await h.store.getTicket(ticketKey(ref)))?.topic).not.toBeNull();
    expect(h.crm.writes).toHaveLength(1);
  });
});
