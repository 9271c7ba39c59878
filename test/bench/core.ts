// Routing core benchmark: 50 rules, 20 queues, 500 agents; decisions per second on one core, per-decision
// latency percentiles, and heap after 100k vs 1M decisions (flat means no per-decision retention).
import { parseRoutingConfig } from '../../core/config.ts';
import { applyCounterOps, createRouter, effectOps, emptyCounters, stateOf } from '../../core/route.ts';
import type { Segment, Tier } from '../../core/segment.ts';

const TIERS: Tier[] = ['free', 'standard', 'premium', 'enterprise'];
const PRODUCTS = ['crm', 'api', 'billing-suite', 'mobile', 'analytics'];
const CATEGORIES = ['billing', 'technical', 'account', 'feature'];
const LANGS = ['en', 'de', 'fr', 'es', 'pt'];
const REGIONS = ['EU', 'US', 'APAC', 'LATAM'];

export function benchConfig() {
  const agents = Array.from({ length: 500 }, (_, i) => ({
    id: `a${i}`,
    name: `Agent ${i}`,
    capacity: 1000,
    skills: [PRODUCTS[i % 5]!, CATEGORIES[i % 4]!],
    languages: [LANGS[i % 5]!, 'en'],
  }));
  const strategies = ['round_robin', 'least_busy', 'skills'] as const;
  const queues = Array.from({ length: 20 }, (_, q) => ({
    id: `q${q}`,
    name: `Queue ${q}`,
    strategy: strategies[q % 3]!,
    agents: agents.slice(q * 25, q * 25 + 25).map((a) => a.id),
    slaFirstResponseSeconds: 600 + q * 60,
    ...(q < 19 ? { overflow: { to: `q${q + 1}`, afterSeconds: 3600 } } : {}),
    ...(q % 4 === 0 ? { rotation: { share: 0.1, learners: [`a${q * 25 + 24}`] } } : {}),
  }));
  const rules = Array.from({ length: 50 }, (_, r) => ({
    id: `r${r}`,
    when: [
      { field: 'tier' as const, op: 'equals' as const, value: TIERS[r % 4]! },
      { field: 'region' as const, op: 'in' as const, value: [REGIONS[r % 4]!, REGIONS[(r + 1) % 4]!] },
      { field: 'lifetimeValue' as const, op: 'gte' as const, value: (r % 10) * 10_000 },
      { field: 'category' as const, op: 'equals' as const, value: CATEGORIES[(r >> 2) % 4]! },
    ],
    queue: `q${r % 20}`,
    skills: r % 3 === 2 ? [CATEGORIES[(r >> 2) % 4]!] : [],
  }));
  return parseRoutingConfig({ rules, defaultQueue: 'q19', queues, agents });
}

function segments(n: number): Segment[] {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: n }, (_, i) => ({
    tier: rnd() < 0.05 ? null : TIERS[Math.floor(rnd() * 4)]!,
    lifetimeValue: { amount: Math.floor(rnd() * 200_000), currency: 'USD' },
    annualRevenue: null,
    product: PRODUCTS[Math.floor(rnd() * 5)]!,
    category: CATEGORIES[Math.floor(rnd() * 4)]!,
    language: LANGS[Math.floor(rnd() * 5)]!,
    region: REGIONS[Math.floor(rnd() * 4)]!,
    churnRisk: rnd(),
    source: { ref: { crm: 'hubspot', account: '1', ticketId: String(i) }, companyId: null, contactId: null },
  }));
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

export function benchCore(): Record<string, number> {
  const router = createRouter(benchConfig());
  const pool = segments(10_000);
  const counters = emptyCounters();
  const state = stateOf(counters);
  let now = Date.now();
  const one = (i: number) => {
    const d = router.route({ segment: pool[i % pool.length]!, now: (now += 1) }, state);
    applyCounterOps(counters, effectOps(d.effects));
    // Tickets resolve as fast as they arrive, so loads stay realistic (below capacity) over a million decisions.
    if (d.agentId) counters.load[d.agentId] = (counters.load[d.agentId] ?? 1) - 1;
    return d;
  };
  for (let i = 0; i < 50_000; i++) one(i); // warm-up (JIT)

  // Throughput: a tight loop over 500k decisions.
  const N = 500_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) one(i);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;

  // Latency: each decision timed on its own.
  const L = 200_000;
  const lat = new Float64Array(L);
  for (let i = 0; i < L; i++) {
    const s = process.hrtime.bigint();
    one(i);
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  lat.sort();
  const pct = (p: number) => lat[Math.min(L - 1, Math.floor(L * p))]!;

  // Memory: heap after 100k more decisions vs after 1M more.
  for (let i = 0; i < 100_000; i++) one(i);
  const heap100k = heapMb();
  for (let i = 0; i < 900_000; i++) one(i);
  const heap1m = heapMb();

  return {
    'core.decisionsPerSecond': Math.round(N / secs),
    'core.p50Micros': round(pct(0.5)),
    'core.p99Micros': round(pct(0.99)),
    'core.heapMbAt100k': round(heap100k),
    'core.heapMbAt1M': round(heap1m),
    'core.heapGrowthMb': round(heap1m - heap100k),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
