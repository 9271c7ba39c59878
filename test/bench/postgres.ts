// PostgreSQL store benchmark, on a throwaway cluster with production durability (fsync and synchronous commit on):
//  - pg.persistMedianMs@1k / @1M: median time to persist one routing outcome (the route step's batch: ticket,
//    history entry, counters, next job, SLA timer, completed job) with 1,000 and with 1,000,000 outcomes stored.
//  - pg.decisionsPerSecond@1 / @3: routing decisions per second (read config and counters, route, commit, all under
//    the cross-instance decision lock) made by one process, and by three processes on the same database.
//  - pg.webhooksPerSecond@1 / @3: signed HubSpot webhook deliveries acknowledged per second (each durably stored
//    before the answer) by one and by three service processes on one database, under closed-loop load spread over
//    the instances; routing of the new tickets runs meanwhile, as in production.
//  - pg.history*Ms@1M: one page of history (with its total) at 1,000,000 outcomes, unfiltered and per ticket, agent,
//    company, tier + day.
// Run alone with `node test/bench/postgres.ts` (add --json for one JSON line).
import { parseRoutingConfig } from '../../core/config.ts';
import { createRouter, effectOps, emptyCounters, stateOf } from '../../core/route.ts';
import { explainDecision } from '../../core/explain.ts';
import type { Batch } from '../../core/ports.ts';
import { openPostgresStore, type PostgresStore } from '../../server/storage/postgres/postgres-store.ts';
import { postgresSkipReason, startTestPostgres } from '../setup/postgres.ts';
import { newTicket, type DeciderOptions, type DeciderResult } from '../storage/postgres/procs/decider.ts';
import { DECIDER, runTogether } from '../storage/postgres/procs/spawn.ts';
import { benchConfig } from './core.ts';

const SEED_CHUNK = 100_000;

/** A realistic stored outcome (a routed ticket with its explanation, and its history entry) as JSON templates. */
function templates() {
  const config = benchConfig();
  const router = createRouter(config);
  const now = Date.now();
  const segment = { tier: 'premium' as const, lifetimeValue: { amount: 42_000, currency: 'USD' }, annualRevenue: null, product: 'api', category: 'technical', language: 'en', region: 'EU', churnRisk: 0.3, source: { ref: { crm: 'hubspot' as const, account: '1', ticketId: '__ID__' }, companyId: 'co-1', contactId: 'ct-1' } };
  const d = router.route({ segment, now }, stateOf(emptyCounters()));
  const x = explainDecision(router, d);
  const t = newTicket('__KEY__', segment, now);
  Object.assign(t, { status: 'resolved', queueId: d.queueId, agentId: d.agentId, ruleId: d.rule?.id ?? null, summary: x.summary, explanation: x.lines, routedAt: now, enqueuedAt: now, slaDueAt: d.slaDueAt, seq: 1 });
  const h = { key: '__KEY__#1', ticketKey: '__KEY__', seq: 1, kind: 'routed', at: now, queueId: d.queueId, agentId: d.agentId, ruleId: t.ruleId, tier: 'premium', text: `Routed to ${x.summary}`, explanation: x.lines };
  return { config, router, ticket: JSON.stringify(t), history: JSON.stringify(h), segment };
}

async function seedOutcomes(store: PostgresStore, from: number, to: number, tpl: ReturnType<typeof templates>): Promise<void> {
  for (let a = from; a <= to; a += SEED_CHUNK) {
    const b = Math.min(to, a + SEED_CHUNK - 1);
    // One outcome every 2.6 s over the last 30 days.
    const params = [a, b, Date.now() - 30 * 86_400_000];
    await store.pool.query(
      `INSERT INTO tickets (key, doc, status, agent_id, queue_id, company_id)
       SELECT 'hubspot:1:seed-' || i, replace(replace($3, '__KEY__', 'hubspot:1:seed-' || i), '__ID__', 'seed-' || i)::json, 'resolved', 'a' || (i % 500), 'q' || (i % 20), 'co-' || (i % 5000)
       FROM generate_series($1::int, $2::int) AS i`,
      [a, b, tpl.ticket],
    );
    await store.pool.query(
      `INSERT INTO history (key, ticket_key, seq, kind, at, queue_id, agent_id, rule_id, tier, doc)
       SELECT 'hubspot:1:seed-' || i || '#1', 'hubspot:1:seed-' || i, 1, 'routed', $3::float8 + i::float8 * 2592, 'q' || (i % 20), 'a' || (i % 500), 'r' || (i % 50),
         (ARRAY['free', 'standard', 'premium', 'enterprise'])[1 + i % 4], replace($4, '__KEY__', 'hubspot:1:seed-' || i)::json
       FROM generate_series($1::int, $2::int) AS i`,
      [...params, tpl.history],
    );
    await store.pool.query(`INSERT INTO done_jobs (id, done_at) SELECT 'route:hubspot:1:seed-' || i, $3::float8 + i FROM generate_series($1::int, $2::int) AS i`, params);
  }
  // What autovacuum does soon after a bulk load in production (visibility map for index-only counts, statistics).
  await store.pool.query('VACUUM ANALYZE');
}

/** The route step's batch for a new ticket, built from a real decision. */
function outcomeBatch(tpl: ReturnType<typeof templates>, n: number): Batch {
  const key = `hubspot:1:bench-${n}`;
  const now = Date.now();
  const d = tpl.router.route({ segment: tpl.segment, now }, stateOf(emptyCounters()));
  const x = explainDecision(tpl.router, d);
  const t = newTicket(key, { ...tpl.segment, source: { ...tpl.segment.source, ref: { crm: 'hubspot', account: '1', ticketId: `bench-${n}` } } }, now);
  Object.assign(t, { status: 'assigned', queueId: d.queueId, agentId: d.agentId, ruleId: d.rule?.id ?? null, summary: x.summary, explanation: x.lines, routedAt: now, enqueuedAt: now, slaDueAt: d.slaDueAt, seq: 1 });
  return {
    tickets: [t],
    history: [{ key: `${key}#1`, ticketKey: key, seq: 1, kind: 'routed', at: now, queueId: d.queueId, agentId: d.agentId, ruleId: t.ruleId, tier: 'premium', text: `Routed to ${x.summary}`, explanation: x.lines }],
    counters: effectOps(d.effects),
    jobs: [{ id: `topic:${key}:g0`, kind: 'topic', ticketKey: key, payload: { generation: 0 }, attempts: 0, nextAt: now, status: 'pending', lastError: null, leaseUntil: 0, createdAt: now }],
    timers: [{ id: `sla_breach:${key}`, kind: 'sla_breach', at: d.slaDueAt, ticketKey: key }],
    completeJobs: [`route:${key}`],
  };
}

async function persistMedianMs(store: PostgresStore, tpl: ReturnType<typeof templates>, base: number, samples = 1_000): Promise<{ median: number; p99: number }> {
  const ms: number[] = [];
  const warmup = 200; // connection pool, plan cache, JIT
  for (let i = 0; i < samples + warmup; i++) {
    const b = outcomeBatch(tpl, base + i);
    const t0 = performance.now();
    await store.commit(b);
    if (i >= warmup) ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]! };
}

/** Webhook deliveries acknowledged per second by `instances` service processes sharing one database. */
async function webhooksPerSecond(url: string, instances: number, firstEventId: number): Promise<{ perSecond: number; failed: number }> {
  const { startWorld, spawnService, kill } = await import('../e2e/harness.ts');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { randomBytes } = await import('node:crypto');
  const { spawn } = await import('node:child_process');
  const world = await startWorld();
  const dirs: string[] = [];
  const procs: Awaited<ReturnType<typeof spawnService>>[] = [];
  try {
    const base = { publicUrl: world.lb.url, databaseUrl: url, adminToken: randomBytes(24).toString('hex'), secretsKey: randomBytes(32).toString('base64'), external: world.external };
    for (let i = 0; i < instances; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), `tierline-bench-pg-${i}-`));
      dirs.push(dataDir);
      procs.push(spawnService(`w${i}`, { ...base, dataDir, instanceId: `w${i}` }, world.lb));
    }
    const urls = await Promise.all(procs.map((p) => p.ready));
    const ticketIds: string[] = [];
    for (let i = 0; i < 1_500; i++) ticketIds.push((await world.hubspot.createTicket({ subject: `Throughput ${i}`, notify: false })).id);
    const spec = { urls, publicUrl: world.lb.url, concurrency: 32, seconds: 10, warmupSeconds: 2, eventsPerTicket: 20, secret: world.external.hubspot!.clientSecret, portalId: Number(world.hubspot.portalId), appId: Number(world.hubspot.appId), ticketIds, firstEventId };
    const child = spawn(process.execPath, [new URL('./throughput-worker.ts', import.meta.url).pathname, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((ok, fail) => child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`throughput worker exited with ${code}`)))));
    const r = JSON.parse(out) as { perSecond: number; failed: number; why: Record<string, number> };
    if (r.failed) process.stderr.write(`webhook throughput: ${r.failed} deliveries not acknowledged: ${JSON.stringify(r.why)}\n`);
    return { perSecond: r.perSecond, failed: r.failed };
  } finally {
    for (const p of procs) await kill(p, 'SIGTERM');
    await world.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

async function decisionsPerSecond(url: string, processes: number, durationMs: number): Promise<{ perSecond: number; violations: number }> {
  const store = await openPostgresStore({ url });
  await store.saveConfig(benchConfig(), { author: 'bench', note: 'bench config: 50 rules, 20 queues, 500 agents', at: Date.now() });
  await store.close();
  const out = await runTogether<DeciderResult>(
    DECIDER,
    Array.from({ length: processes }, (_, i): DeciderOptions => ({ url, name: `bench${i}`, durationMs, resolveShare: 0.5, concurrency: 8, poolSize: 8, seed: i + 1 })),
  );
  for (const o of out) if (o.code !== 0 || !o.result) throw new Error(`decider failed: ${o.stderr}`);
  const results = out.map((o) => o.result!);
  const decisions = results.reduce((n, r) => n + r.decisions, 0);
  const secs = Math.max(...results.map((r) => r.ms)) / 1000;
  return { perSecond: Math.round(decisions / secs), violations: results.reduce((n, r) => n + r.violations.length, 0) };
}

export async function benchPostgres(parts: { persist?: boolean; decisions?: boolean; webhooks?: boolean } = {}): Promise<Record<string, number>> {
  if (postgresSkipReason) {
    process.stderr.write(`postgres bench skipped: ${postgresSkipReason}\n`);
    return {};
  }
  const cluster = await startTestPostgres({ durable: true });
  try {
    const out: Record<string, number> = {};
    const tpl = templates();
    if (parts.persist !== false) {
      const store = await openPostgresStore({ url: await cluster.createDatabase() });
      await seedOutcomes(store, 1, 1_000, tpl);
      const small = await persistMedianMs(store, tpl, 0);
      const t0 = performance.now();
      await seedOutcomes(store, 1_001, 1_000_000, tpl);
      out['pg.seed1MSeconds'] = round((performance.now() - t0) / 1000);
      const large = await persistMedianMs(store, tpl, 10_000);
      // History pages at 1M outcomes (with their total count), as the console and the CRM card ask for them.
      const median = async (f: () => Promise<unknown>) => {
        const ms: number[] = [];
        for (let i = 0; i < 21; i++) {
          const t = performance.now();
          await f();
          ms.push(performance.now() - t);
        }
        return round(ms.sort((a, b) => a - b)[10]!);
      };
      out['pg.historyPageMs@1M'] = await median(() => store.history({ limit: 50 }));
      out['pg.historyTicketMs@1M'] = await median(() => store.history({ ticketKey: 'hubspot:1:seed-123456' }));
      out['pg.historyAgentPageMs@1M'] = await median(() => store.history({ agentId: 'a17', limit: 50 }));
      out['pg.historyCompanyPageMs@1M'] = await median(() => store.history({ companyId: 'co-42', limit: 50 }));
      out['pg.historyTierDayPageMs@1M'] = await median(() => store.history({ tier: 'enterprise', from: Date.now() - 2 * 86_400_000, to: Date.now() - 86_400_000, limit: 50 }));
      out['pg.persistMedianMs@1k'] = round(small.median);
      out['pg.persistP99Ms@1k'] = round(small.p99);
      out['pg.persistMedianMs@1M'] = round(large.median);
      out['pg.persistP99Ms@1M'] = round(large.p99);
      await store.close();
    }
    if (parts.decisions !== false) {
      const one = await decisionsPerSecond(await cluster.createDatabase(), 1, 5_000);
      const three = await decisionsPerSecond(await cluster.createDatabase(), 3, 5_000);
      out['pg.decisionsPerSecond@1'] = one.perSecond;
      out['pg.decisionsPerSecond@3'] = three.perSecond;
      out['pg.capacityViolations'] = one.violations + three.violations;
    }
    if (parts.webhooks !== false) {
      const one = await webhooksPerSecond(await cluster.createDatabase(), 1, 1_000_000);
      const three = await webhooksPerSecond(await cluster.createDatabase(), 3, 5_000_000);
      out['pg.webhooksPerSecond@1'] = one.perSecond;
      out['pg.webhooksPerSecond@3'] = three.perSecond;
      out['pg.webhooksScaling'] = round(three.perSecond / Math.max(1, one.perSecond));
      out['pg.webhooksFailed'] = one.failed + three.failed;
    }
    return out;
  } finally {
    await cluster.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.main) {
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const r = await benchPostgres(only ? { persist: only.includes('persist'), decisions: only.includes('decisions'), webhooks: only.includes('webhooks') } : {});
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(26)} ${v}\n`);
}
