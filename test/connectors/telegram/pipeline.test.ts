// The whole loop with the real pipeline: a CRM ticket becomes a topic with its card in the sandbox (through GramJS),
// the agent's reply is the first response, a deleted topic is recreated and relinked, /resolve closes the topic.
import { afterEach, expect, it } from 'vitest';
import { parseRoutingConfig } from '../../../core/config.ts';
import { createPipeline, type Pipeline } from '../../../core/pipeline.ts';
import { ticketKey } from '../../../core/segment.ts';
import { SAMPLE_CONFIG } from '../../../server/sandbox/sample-config.ts';
import { fakeCrm } from '../../pipeline/harness.ts';
import { channelOf, setup, silentLogger, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  expect(h.sandbox.stats().serialisationErrors).toEqual([]);
  await h.stop();
});

it('routes a ticket into its topic, measures the first reply, recovers a deleted topic and resolves', async () => {
  let pipeline!: Pipeline;
  h = await setup({ start: false });
  const { store, clock, sandbox, connector } = h;
  await store.saveConfig(parseRoutingConfig(SAMPLE_CONFIG), { author: 'test', note: '', at: clock.now() });
  const crm = fakeCrm();
  pipeline = createPipeline({ store, clock, logger: silentLogger(), crm: () => crm.port, messenger: connector.messenger });
  // The harness collects events; hand them to the pipeline as the server does.
  const events = h.events;
  const forward = async () => {
    await connector.idle();
    for (const e of events.splice(0)) await pipeline.onMessengerEvent(e);
  };
  const drain = async () => {
    for (let i = 0; i < 50; i++) {
      await forward();
      const r = await pipeline.runDue();
      if (r.jobs === 0 && r.timers === 0) return;
    }
  };
  await connector.start();

  const ref = crm.add('501', { tier: 'enterprise', lifetimeValue: { amount: 250_000, currency: 'USD' } }, 'Login fails after password reset');
  await pipeline.intake.accept([{ idempotencyKey: 'hs:501:created', ref, reason: 'created', at: clock.now() }]);
  await drain();

  const t = (await store.getTicket(ticketKey(ref)))!;
  expect(t.topic).toMatchObject({ groupId: 'vip', link: `https://t.me/c/${channelOf('vip')}/${t.topic!.topicId}` });
  const topics = sandbox.topics(channelOf('vip'));
  expect(topics).toEqual([expect.objectContaining({ topicId: t.topic!.topicId, title: '[ENT] Acme Corp · Login fails after password reset', iconColor: 0xfb6f5f })]);
  const agent = SAMPLE_CONFIG.agents.find((a) => a.id === t.agentId)!;
  const card = sandbox.allMessages(channelOf('vip')).find((m) => m.kind === 'text' && m.topicId === t.topic!.topicId)!;
  expect(card.pinned).toBe(true);
  expect(card.mentions).toEqual([agent.telegramUserId]);
  expect(crm.writes.map((w) => w.fields.topicLink)).toContain(t.topic!.link);

  // The assigned agent answers six minutes later.
  await clock.advance(6 * 60_000);
  await sandbox.reply(channelOf('vip'), t.topic!.topicId, agent.telegramUserId!, 'Hi Pat, checking your account now.');
  await drain();
  const answered = (await store.getTicket(ticketKey(ref)))!;
  expect(answered.status).toBe('answered');
  expect(answered.firstResponderId).toBe(agent.id);
  expect(Math.round((answered.firstResponseAt! - answered.enqueuedAt!) / 60_000)).toBe(6);

  // Someone deletes the topic; the next message for the ticket recreates it and the CRM gets the new link.
  sandbox.deleteTopic(channelOf('vip'), t.topic!.topicId);
  await sandbox.reply(channelOf('vip'), 1, agent.telegramUserId!, 'oops, deleted a topic');
  await pipeline.escalate(ticketKey(ref), 'customer called again');
  await drain();
  await clock.advance(5 * 60_000);
  await drain();
  const relinked = (await store.getTicket(ticketKey(ref)))!;
  expect(relinked.topic!.topicId).not.toBe(t.topic!.topicId);
  expect(sandbox.topics(channelOf('vip')).map((x) => x.topicId)).toEqual([relinked.topic!.topicId]);
  expect(crm.writes.some((w) => w.entry.kind === 'topic_recreated' && w.fields.topicLink === relinked.topic!.link)).toBe(true);

  // /resolve from Telegram resolves the ticket and closes its topic.
  await sandbox.reply(channelOf('vip'), relinked.topic!.topicId, agent.telegramUserId!, '/resolve');
  await drain();
  expect((await store.getTicket(ticketKey(ref)))!.status).toBe('resolved');
  expect(sandbox.topics(channelOf('vip'))[0]!.closed).toBe(true);
});
