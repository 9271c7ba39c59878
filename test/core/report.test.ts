import { describe, expect, it } from 'vitest';
import { performanceReport, quantile } from '../../core/report.ts';
import { ticketKey } from '../../core/segment.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { harness } from '../pipeline/harness.ts';

describe('performance report', () => {
  it('quantiles interpolate', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10], 0.9)).toBe(10);
    expect(quantile([], 0.5)).toBeNull();
  });

  it('measures first response, resolution and SLA per tier, queue and agent, and reports missing data', async () => {
    const h = await harness(SAMPLE_CONFIG);
    const ent = h.crm.add('e1', { tier: 'enterprise' });
    const ent2 = h.crm.add('e2', { tier: 'enterprise' });
    const noTier = h.crm.add('m1', { tier: null, lifetimeValue: null, category: 'other' });
    const derived = h.crm.add('d1', { tier: null, lifetimeValue: { amount: 30_000, currency: 'USD' } });
    for (const [i, r] of [ent, ent2, noTier, derived].entries()) await h.pipeline.intake.accept([{ idempotencyKey: `k${i}`, ref: r, reason: 'created', at: h.clock.now() }]);
    await h.drain();
    const say = async (ref: typeof ent, from: string, text: string, id: number) => {
      const t = (await h.store.getTicket(ticketKey(ref)))!;
      await h.pipeline.onMessengerEvent({ kind: 'message', groupId: t.topic!.groupId, topicId: t.topic!.topicId, messageId: id, fromTelegramUserId: from, text, at: h.clock.now() });
      await h.drain();
    };
    const agentOf = async (ref: typeof ent) => {
      const t = (await h.store.getTicket(ticketKey(ref)))!;
      return SAMPLE_CONFIG.agents.find((a) => a.id === t.agentId)!.telegramUserId!;
    };
    h.clock.advance(10 * 60_000);
    await say(ent, await agentOf(ent), 'hello', 1);
    h.clock.advance(10 * 60_000);
    await say(ent, await agentOf(ent), '/resolve', 2);
    await say(ent2, await agentOf(ent2), 'late hello', 3); // 20 min: VIP SLA is 15 min

    const r = performanceReport(await h.store.tickets());
    expect(r.overall.tickets).toBe(4);
    const entRow = r.byTier.find((x) => x.key === 'enterprise')!;
    expect(entRow).toMatchObject({ tickets: 2, slaMet: 1, slaBreached: 1, slaMetRate: 0.5 });
    expect(entRow.firstResponse).toMatchObject({ count: 2, median: 15 * 60 });
    expect(entRow.resolution).toMatchObject({ count: 1, median: 20 * 60 });
    expect(r.byTier.find((x) => x.key === 'premium')!.tickets).toBe(1);
    expect(r.byTier.find((x) => x.key === 'unknown')!.tickets).toBe(1);
    expect(r.byQueue.find((x) => x.key === 'vip')!.tickets).toBeGreaterThanOrEqual(2);
    expect(r.staleness).toMatchObject({ tierDerived: 1, routedOnMissingData: 1 });
  });
});
