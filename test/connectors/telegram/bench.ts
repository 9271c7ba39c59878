// Burst benchmark (issue 6): 600 tickets into one queue spread over three forum groups at 20 sends a minute each,
// through the real connector and GramJS against the sandbox on a simulated clock. Each ticket is what the pipeline
// does: create the topic, then post the card with the agent mentioned and pin it (three sends). Telegram also throws
// in one unannounced FLOOD_WAIT per group. Figures: nothing lost, no flood error reaches a ticket, every enterprise
// topic is created before any free one, and the drain time against the ideal the limits allow.
// Run alone: node test/connectors/telegram/bench.ts [--json]
import { performance } from 'node:perf_hooks';
import type { Tier } from '../../../core/segment.ts';
import { AppError } from '../../../core/errors.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { createManualClock, settle } from '../../../connectors/telegram/clock.ts';
import { createTelegramConnector } from '../../../connectors/telegram/index.ts';
import { createTelegramSandbox, SANDBOX_AGENTS, SANDBOX_GROUPS } from '../../../connectors/telegram/sandbox/index.ts';
import { priorityForTier } from '../../../connectors/telegram/titles.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';

export type BurstFigures = {
  tickets: number;
  groups: number;
  perGroupPerMinute: number;
  sends: number;
  lost: number;
  floodErrorsReachingTickets: number;
  floodWaitsAbsorbed: number;
  enterpriseBeforeFree: boolean;
  drainSeconds: number;
  idealDrainSeconds: number;
  drainOverIdealPct: number;
  wallMs: number;
};

const LABEL: Record<Tier, string> = { enterprise: 'ENT', premium: 'PRE', standard: 'STD', free: 'FREE' };

/** Deterministic tier mix: 15% enterprise, 25% premium, 30% standard, 30% free, shuffled. */
function tiers(n: number, seed: number): Tier[] {
  const out: Tier[] = Array.from({ length: n }, (_, i) => {
    const f = i / n;
    return f < 0.15 ? 'enterprise' : f < 0.4 ? 'premium' : f < 0.7 ? 'standard' : 'free';
  });
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export async function benchTelegramBurst(opts: { tickets?: number; perGroupPerMinute?: number; floodWaitSeconds?: number; seed?: number } = {}): Promise<BurstFigures> {
  const n = opts.tickets ?? 600;
  const rate = opts.perGroupPerMinute ?? 20;
  const injected = opts.floodWaitSeconds ?? 30;
  const wall0 = performance.now();
  const clock = createManualClock();
  const sandbox = createTelegramSandbox({ seed: true, clock, limits: { perGroupPerMinute: rate, perAccountPerSecond: 30 } });
  const store = createMemoryStore({ clock });
  const groups = SANDBOX_GROUPS.map((g) => ({ id: g.id, title: g.title }));
  const noop = () => {};
  const logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => logger };
  const connector = createTelegramConnector({
    mode: 'sandbox',
    env: {},
    store,
    secrets: createSecretBox('bench-secrets-key-bench-secrets-key-0123'),
    logger,
    clock,
    groups: () => groups,
    onEvent: async () => {},
    openTopics: async () => [],
    pacing: { perGroupPerMinute: rate },
    sandbox,
  });
  await connector.start();
  // Give the first window to the burst alone: start() used no sends, but keep the start of the clock clean.
  await clock.advance(60_000);
  const t0 = clock.now();

  // Telegram's own unannounced waits: one per group, a few minutes in.
  for (const [i, g] of SANDBOX_GROUPS.entries()) clock.setTimer(() => sandbox.injectError({ method: 'messages.SendMessage', channelId: g.channelId, error: `FLOOD_WAIT_${injected}` }), (3 + i) * 60_000);

  const mix = tiers(n, opts.seed ?? 42);
  const results: { ok: boolean; error: unknown; at: number }[] = [];
  let pending = n;
  const tickets = mix.map(async (tier, i) => {
    const groupId = SANDBOX_GROUPS[i % SANDBOX_GROUPS.length]!.id;
    const agent = SANDBOX_AGENTS[i % 4]!;
    const name = `${agent.firstName} ${agent.lastName}`;
    try {
      const ref = await connector.messenger.createTopic({ ticketKey: `bench:${i}`, groupId, title: `[${LABEL[tier]}] Company ${i} · Burst ticket ${i}`, tier, randomId: String(1_000_000 + i) });
      await connector.messenger.post({ topic: ref, text: `🎫 Burst ticket ${i}\nTier: ${tier}\nAssigned to ${name}`, mention: { name, telegramUserId: agent.id }, randomId: String(2_000_000 + i), pin: true, priority: priorityForTier(tier) + 5 });
      results[i] = { ok: true, error: null, at: clock.now() };
    } catch (error) {
      results[i] = { ok: false, error, at: clock.now() };
    } finally {
      pending -= 1;
    }
  });

  while (pending > 0) {
    if (!(await clock.next())) {
      await settle();
      if (pending > 0 && clock.pendingTimers() === 0) break; // stuck: counted as lost below
    }
  }
  await Promise.race([Promise.all(tickets), settle()]);

  // Lost: a ticket without its topic and its pinned card in Telegram.
  const byTitle = new Map<string, { channelId: string; topicId: number }>();
  for (const t of sandbox.topicCreations()) byTitle.set(t.title, t);
  let lost = 0;
  mix.forEach((tier, i) => {
    const t = byTitle.get(`[${LABEL[tier]}] Company ${i} · Burst ticket ${i}`);
    const card = t && sandbox.messages(t.channelId, t.topicId).find((m) => m.text.startsWith(`🎫 Burst ticket ${i}\n`) && m.pinned);
    if (!results[i]?.ok || !card) lost += 1;
  });
  const floodErrors = results.filter((r) => !r.ok && (r.error instanceof AppError ? r.error.code === 'rate_limited' : /FLOOD|SLOWMODE/.test(String(r.error)))).length;

  const creations = sandbox.topicCreations();
  const seqOf = (label: string) => creations.filter((c) => c.title.startsWith(`[${label}]`)).map((c) => c.seq);
  const ent = seqOf('ENT');
  const free = seqOf('FREE');
  const enterpriseBeforeFree = ent.length > 0 && free.length > 0 && Math.max(...ent) < Math.min(...free);

  const last = Math.max(...results.map((r) => r?.at ?? t0));
  const drainSeconds = (last - t0) / 1000;
  // What the limit allows: a group's k-th send (0-based) cannot go before floor(k / rate) minutes.
  const sendsPerGroup = SANDBOX_GROUPS.map((_, gi) => mix.filter((_, i) => i % SANDBOX_GROUPS.length === gi).length * 3);
  const idealDrainSeconds = Math.max(...sendsPerGroup.map((s) => Math.floor((s - 1) / rate) * 60));
  const stats = (await connector.health()).pacing as { floodWaits: number };
  await connector.stop();
  return {
    tickets: n,
    groups: SANDBOX_GROUPS.length,
    perGroupPerMinute: rate,
    sends: sendsPerGroup.reduce((a, b) => a + b, 0),
    lost,
    floodErrorsReachingTickets: floodErrors,
    floodWaitsAbsorbed: stats.floodWaits,
    enterpriseBeforeFree,
    drainSeconds,
    idealDrainSeconds,
    drainOverIdealPct: Math.round(((drainSeconds - idealDrainSeconds) / idealDrainSeconds) * 1000) / 10,
    wallMs: Math.round(performance.now() - wall0),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await benchTelegramBurst();
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(figures) + '\n');
  else for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(28)} ${v}\n`);
}
