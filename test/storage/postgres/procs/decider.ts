// A child process that makes routing decisions against a shared PostgreSQL store, the way the pipeline's route step
// does (inside store.exclusive: read the ticket, the config and the counters, route, commit one batch). Used by the
// concurrency tests and the benchmark; several copies run at once against one database.
//
//   node decider.ts <json options>   prints "ready", waits for "go" on stdin, then prints one JSON result line.
import { createInterface } from 'node:readline';
import { parseRoutingConfig, type RoutingConfigInput } from '../../../../core/config.ts';
import { createRouter, effectOps, stateOf, type Router } from '../../../../core/route.ts';
import type { CounterOp, HistoryEntry, Job, TicketRecord } from '../../../../core/ports.ts';
import type { Segment, Tier } from '../../../../core/segment.ts';
import { openPostgresStore } from '../../../../server/storage/postgres/postgres-store.ts';

export type DeciderOptions = {
  url: string;
  name: string;
  /** Stop after this many decisions ... */
  count?: number;
  /** ... or after this long (ms) from "go". */
  durationMs?: number;
  /** After each decision, resolve this process's oldest assigned ticket with this probability (frees capacity). */
  resolveShare?: number;
  /** Save this config before starting (the parent passes it to one child only). */
  saveConfig?: RoutingConfigInput;
  seed?: number;
  /** Decisions in flight at once in this process, like the worker running a batch of tickets (default 1). */
  concurrency?: number;
  poolSize?: number;
};

export type DeciderResult = {
  name: string;
  decisions: number;
  resolves: number;
  ms: number;
  /** Decisions that saw, in freshly read counters, an agent above their capacity. Must be 0. */
  violations: string[];
  assigned: Record<string, number>;
  held: number;
};

const TIERS: Tier[] = ['free', 'standard', 'premium', 'enterprise'];
const PRODUCTS = ['crm', 'api', 'billing-suite', 'mobile', 'analytics'];
const CATEGORIES = ['billing', 'technical', 'account', 'feature'];
const LANGS = ['en', 'de', 'fr', 'es', 'pt'];
const REGIONS = ['EU', 'US', 'APAC', 'LATAM'];

function segmentFor(i: number, rnd: () => number, name: string): Segment {
  return {
    tier: TIERS[Math.floor(rnd() * 4)]!,
    lifetimeValue: { amount: Math.floor(rnd() * 200_000), currency: 'USD' },
    annualRevenue: null,
    product: PRODUCTS[Math.floor(rnd() * 5)]!,
    category: CATEGORIES[Math.floor(rnd() * 4)]!,
    language: LANGS[Math.floor(rnd() * 5)]!,
    region: REGIONS[Math.floor(rnd() * 4)]!,
    churnRisk: rnd(),
    source: { ref: { crm: 'hubspot', account: '1', ticketId: `${name}-${i}` }, companyId: `co-${i % 50}`, contactId: null },
  };
}

export function newTicket(key: string, segment: Segment, now: number): TicketRecord {
  return {
    key,
    ref: segment.source.ref,
    status: 'received',
    receivedAt: now,
    updatedAt: now,
    subject: `Ticket ${key}`,
    customerName: 'Pat Doe',
    companyName: 'Acme',
    companyId: segment.source.companyId,
    recordUrl: null,
    segment,
    issues: [],
    tierSource: null,
    queueId: null,
    agentId: null,
    ruleId: null,
    summary: null,
    explanation: [],
    enqueuedAt: null,
    routedAt: null,
    slaDueAt: null,
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
    seq: 0,
  };
}

async function main(opts: DeciderOptions): Promise<void> {
  const store = await openPostgresStore({ url: opts.url, instanceId: opts.name, poolSize: opts.poolSize ?? 4 });
  if (opts.saveConfig) await store.saveConfig(parseRoutingConfig(opts.saveConfig), { author: 'test', note: 'decider', at: Date.now() });
  let seed = opts.seed ?? 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let cached: { version: number; router: Router } | null = null;

  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (l) => {
      if (l.trim() === 'go') {
        rl.close();
        resolve();
      }
    });
  });

  const result: DeciderResult = { name: opts.name, decisions: 0, resolves: 0, ms: 0, violations: [], assigned: {}, held: 0 };
  const mine: string[] = [];
  const t0 = performance.now();
  const deadline = opts.durationMs ? t0 + opts.durationMs : Infinity;
  const decide = async (i: number) => {
    const key = `hubspot:1:${opts.name}-${i}`;
    const segment = segmentFor(i, rnd, opts.name);
    await store.exclusive(async () => {
      if ((await store.getTicket(key))?.routedAt) return;
      const v = (await store.getConfig())!;
      if (!cached || cached.version !== v.version) cached = { version: v.version, router: createRouter(parseRoutingConfig(v.config)) };
      const router = cached.router;
      // What the pipeline's decisions read (no waiting lists).
      const counters = await store.routingCounters();
      for (const [agent, load] of Object.entries(counters.load)) if (load > router.capacity(agent)) result.violations.push(`${agent} at ${load}/${router.capacity(agent)} before decision ${i}`);
      const now = Date.now();
      const d = router.route({ segment, now, enqueuedAt: now }, stateOf(counters));
      const t = newTicket(key, segment, now);
      const ops: CounterOp[] = effectOps(d.effects);
      if (d.outcome === 'held') ops.push({ op: 'wait', queueId: d.queueId, ticketKey: key, since: now });
      t.queueId = d.queueId;
      t.agentId = d.agentId;
      t.ruleId = d.rule?.id ?? null;
      t.status = d.outcome === 'assigned' ? 'assigned' : 'waiting';
      t.routedAt = now;
      t.enqueuedAt = now;
      t.slaDueAt = d.slaDueAt;
      t.seq = 1;
      const e: HistoryEntry = { key: `${key}#1`, ticketKey: key, seq: 1, kind: 'routed', at: now, queueId: d.queueId, agentId: d.agentId, ruleId: t.ruleId, tier: segment.tier, text: `Routed to ${d.queueId}` };
      const jobs: Job[] = [{ id: `topic:${key}:g0`, kind: 'topic', ticketKey: key, payload: { generation: 0 }, attempts: 0, nextAt: now, status: 'pending', lastError: null, leaseUntil: 0, createdAt: now }];
      await store.commit({ tickets: [t], history: [e], counters: ops, jobs, timers: t.slaDueAt ? [{ id: `sla_breach:${key}`, kind: 'sla_breach', at: t.slaDueAt, ticketKey: key }] : [], completeJobs: [`route:${key}`] });
      result.decisions++;
      if (d.agentId) {
        result.assigned[d.agentId] = (result.assigned[d.agentId] ?? 0) + 1;
        mine.push(key);
      } else result.held++;
    });
  };
  const resolveOldest = async () => {
    const k = mine.shift()!;
    await store.exclusive(async () => {
      const t = await store.getTicket(k);
      if (!t || t.status !== 'assigned' || !t.agentId) return;
      const now = Date.now();
      t.status = 'resolved';
      t.resolvedAt = now;
      t.seq += 1;
      const e: HistoryEntry = { key: `${k}#${t.seq}`, ticketKey: k, seq: t.seq, kind: 'resolved', at: now, queueId: t.queueId ?? '', agentId: t.agentId, ruleId: t.ruleId, tier: t.segment?.tier ?? null, text: 'Resolved' };
      await store.commit({ tickets: [t], history: [e], counters: [{ op: 'load', agentId: t.agentId, delta: -1 }], cancelTimers: [`sla_breach:${k}`] });
      result.resolves++;
    });
  };
  let next = 0;
  const loop = async () => {
    for (let i = next++; (opts.count === undefined || i < opts.count) && performance.now() < deadline; i = next++) {
      await decide(i);
      if (opts.resolveShare && mine.length && rnd() < opts.resolveShare) await resolveOldest();
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 1 }, loop));
  result.ms = performance.now() - t0;
  await store.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (import.meta.main) {
  main(JSON.parse(process.argv[2]!) as DeciderOptions).catch((err) => {
    process.stderr.write(`decider failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
