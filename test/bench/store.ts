// lowdb store benchmark: what persisting one routing outcome costs (a realistic batch: ticket upsert, 3 outbox steps,
// 2 SLA timers, 1 history entry with its explanation, counter changes), awaited one at a time as the pipeline does,
// at 1,000 and at 100,000 stored outcomes; plus the live file's size, history page latency and open time at 100k.
//
// Outcomes arrive on a simulated clock, one every 26 s (100,000 over a month), and each ticket is resolved 300
// outcomes (about two hours) later, its steps completed and timers cancelled, so the store is in the steady state a
// real installation is: a few hundred open tickets, a month of closed history.
//   node test/bench/store.ts [--json]
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch, HistoryQuery, TicketRecord } from '../../core/ports.ts';
import type { Tier } from '../../core/segment.ts';
import { openLowdbStore, type LowdbStore } from '../../server/storage/lowdb-store.ts';
import { T0, entry, fakeClock, job, ticket, timer } from '../storage/fixtures.ts';

const TIERS: Tier[] = ['free', 'standard', 'premium', 'enterprise'];
const QUEUES = ['vip', 'priority', 'general', 'billing', 'technical', 'dach'];
const STEP_MS = 26_000;
const OPEN_FOR = 300;
const MEASURED = 400;

const keyOf = (n: number) => `hubspot:42:${n}`;

function routed(n: number, now: number): { ticket: TicketRecord; batch: Batch } {
  const key = keyOf(n);
  const queueId = QUEUES[n % QUEUES.length]!;
  const agentId = `agent-${n % 40}`;
  const tier = n % 17 === 0 ? null : TIERS[n % 4]!;
  const t = ticket(key, {
    receivedAt: now - 2_000,
    updatedAt: now,
    enqueuedAt: now - 2_000,
    routedAt: now,
    slaDueAt: now + 15 * 60_000,
    companyId: `co-${n % 500}`,
    queueId,
    agentId,
    ruleId: `rule-${n % 50}`,
    topicRandomId: String(BigInt(n) * 7919n + 1_000_000_007n),
    topicGroupId: `grp-${queueId}`,
    explanation: [
      `Rule "rule-${n % 50}" matched: tier = ${tier ?? 'missing'}, region in [EMEA, APAC], lifetime value >= 20000`,
      `Queue ${queueId} (least_busy), SLA first response 15 min`,
      `agent-${(n + 1) % 40}: passed over, away`,
      `agent-${(n + 2) % 40}: passed over, at capacity (5 of 5)`,
      `agent-${(n + 3) % 40}: passed over, missing skill api`,
      `${agentId}: picked, 2 of 5 open, speaks de`,
    ],
    seq: 1,
  });
  const e = entry(key, 1, { at: now, queueId, agentId, tier, ruleId: t.ruleId, text: `Routed to ${queueId}, ${agentId}`, explanation: t.explanation });
  return {
    ticket: t,
    batch: {
      tickets: [t],
      history: [e],
      jobs: [
        job(`topic:${key}:g0`, { kind: 'topic', ticketKey: key, nextAt: now, createdAt: now, payload: { generation: 0 } }),
        job(`post:${key}:card`, { kind: 'post', ticketKey: key, nextAt: now, createdAt: now, payload: { what: 'card', pin: true } }),
        job(`writeback:${key}#1`, { kind: 'writeback', ticketKey: key, nextAt: now, createdAt: now, payload: { entryKey: e.key } }),
      ],
      timers: [timer(`sla_reminder:${key}`, now + 12 * 60_000, { kind: 'sla_reminder', ticketKey: key }), timer(`sla_breach:${key}`, now + 15 * 60_000, { ticketKey: key })],
      counters: [
        { op: 'load', agentId, delta: 1 },
        { op: 'rr', queueId, value: n % 25 },
        { op: 'unwait', queueId, ticketKey: key },
      ],
      completeJobs: [`route:${key}`],
    },
  };
}

function resolved(t: TicketRecord, now: number): Batch {
  const key = t.key;
  return {
    tickets: [{ ...t, status: 'resolved', resolvedAt: now, updatedAt: now, firstResponseAt: t.routedAt! + 90_000, firstResponderId: t.agentId, slaMet: true, seq: 2 }],
    history: [entry(key, 2, { at: now, kind: 'resolved', queueId: t.queueId!, agentId: t.agentId, tier: t.segment?.tier ?? null, text: 'Resolved' })],
    completeJobs: [`topic:${key}:g0`, `post:${key}:card`, `writeback:${key}#1`],
    cancelTimers: [`sla_reminder:${key}`, `sla_breach:${key}`],
    counters: [{ op: 'load', agentId: t.agentId!, delta: -1 }],
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
const round2 = (x: number) => Math.round(x * 1000) / 1000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

export async function benchStore(): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'tierline-bench-store-'));
  const clock = fakeClock(T0);
  let store: LowdbStore = await openLowdbStore({ dir, clock, compactEveryMs: 0 });
  const open: TicketRecord[] = [];
  let n = 0;
  const out: Record<string, number> = {};

  const step = async (measure: boolean): Promise<number> => {
    n++;
    clock.set(T0 + n * STEP_MS);
    const r = routed(n, clock.now());
    const t0 = performance.now();
    await store.commit(r.batch);
    const ms = performance.now() - t0;
    open.push(r.ticket);
    if (open.length > OPEN_FOR) await store.commit(resolved(open.shift()!, clock.now()));
    return measure ? ms : 0;
  };

  /** Brings the store to `target` outcomes; several pipeline steps in flight at once, as the worker runs them. */
  const seed = async (target: number) => {
    while (n < target) {
      const lanes = Math.min(32, target - n);
      const batches: Batch[] = [];
      for (let i = 0; i < lanes; i++) {
        n++;
        const now = T0 + n * STEP_MS;
        const r = routed(n, now);
        batches.push(r.batch);
        open.push(r.ticket);
        if (open.length > OPEN_FOR) batches.push(resolved(open.shift()!, now));
      }
      clock.set(T0 + n * STEP_MS);
      await Promise.all(batches.map((b) => store.commit(b)));
    }
  };

  const measure = async (label: string) => {
    gc?.();
    const ms: number[] = [];
    for (let i = 0; i < MEASURED; i++) ms.push(await step(true));
    out[`store.persistMedianMs@${label}`] = round2(pct(ms, 0.5));
    out[`store.persistP99Ms@${label}`] = round2(pct(ms, 0.99));
    await store.compact();
    out[`store.liveFileBytes@${label}`] = store.stats().liveFileBytes;
  };

  try {
    await seed(1_000 - MEASURED / 2);
    await measure('1k');
    await seed(100_000 - MEASURED / 2);
    await measure('100k');
    out['store.persistGrowth'] = round2(out['store.persistMedianMs@100k']! / out['store.persistMedianMs@1k']!);
    out['store.outcomes'] = n;

    const files = await readdir(join(dir, 'history'));
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(dir, 'history', f))).size;
    out['store.historyFiles@100k'] = files.length;
    out['store.historyBytes@100k'] = bytes;

    const page = async (q: HistoryQuery) => {
      const ms: number[] = [];
      for (let i = 0; i < 21; i++) {
        const t0 = performance.now();
        await store.history(q);
        ms.push(performance.now() - t0);
      }
      return round2(pct(ms, 0.5));
    };
    const day = T0 + Math.floor(n / 2) * STEP_MS;
    out['store.historyPageMs@100k'] = await page({ limit: 50 });
    out['store.historyPageDeepMs@100k'] = await page({ limit: 50, offset: 50_000 });
    out['store.historyTicketMs@100k'] = await page({ ticketKey: keyOf(4242) });
    out['store.historyAgentMs@100k'] = await page({ agentId: 'agent-7', limit: 50 });
    out['store.historyCompanyMs@100k'] = await page({ companyId: 'co-77', limit: 50 });
    out['store.historyTierDayMs@100k'] = await page({ tier: 'enterprise', from: day, to: day + 86_400_000, limit: 50 });
    gc?.();
    out['store.heapMB@100k'] = Math.round(process.memoryUsage().heapUsed / 1e6);
    {
      // What the console's first load reads: every ticket, closed ones from their dated files.
      const t0 = performance.now();
      const all = await store.tickets();
      out['store.allTicketsMs@100k'] = Math.round(performance.now() - t0);
      out['store.knownTickets@100k'] = all.length;
    }

    await store.close();
    const t0 = performance.now();
    store = await openLowdbStore({ dir, clock, compactEveryMs: 0 });
    out['store.openMs@100k'] = Math.round(performance.now() - t0);
    return out;
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const r = await benchStore();
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(34)} ${v}\n`);
}
