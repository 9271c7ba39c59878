// Several instances on one database: separate processes claim the same outbox and make routing decisions against
// the same counters at the same time. Nothing may run twice, no agent may go over capacity, and round-robin turns
// may be neither skipped nor doubled.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingConfigInput } from '../../../core/config.ts';
import type { Job } from '../../../core/ports.ts';
import { job, postgresSkipReason, usePostgres } from './helpers.ts';
import type { ClaimerOptions } from './procs/claimer.ts';
import type { DeciderOptions, DeciderResult } from './procs/decider.ts';
import { CLAIMER, DECIDER, runTogether } from './procs/spawn.ts';

const AGENTS = ['a1', 'a2', 'a3', 'a4', 'a5'];

function tightConfig(capacity: number): RoutingConfigInput {
  return {
    rules: [{ id: 'vip', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'vip' }],
    defaultQueue: 'general',
    queues: [
      { id: 'general', name: 'General', strategy: 'round_robin', agents: AGENTS, slaFirstResponseSeconds: 3600 },
      { id: 'vip', name: 'VIP', strategy: 'least_busy', agents: ['a1', 'a2'], slaFirstResponseSeconds: 600, overflow: { to: 'general' } },
    ],
    agents: AGENTS.map((id) => ({ id, name: id.toUpperCase(), capacity })),
  };
}

describe.skipIf(postgresSkipReason !== null)('PostgreSQL store: several processes on one database', () => {
  const db = usePostgres();
  beforeAll(() => db.start(), 60_000);
  afterAll(() => db.stop());

  async function seedJobs(url: string, tickets: number, perTicket: number): Promise<void> {
    const store = await db.open({ url });
    await store.pool.query('CREATE TABLE test_runs (n bigserial PRIMARY KEY, job_id text NOT NULL, ticket_key text NOT NULL, seq integer NOT NULL, instance text NOT NULL)');
    const jobs: Job[] = [];
    const now = Date.now() - 1_000;
    // One ticket's steps are adjacent in due order, so claim batches split tickets between instances.
    for (let t = 0; t < tickets; t++)
      for (let s = 0; s < perTicket; s++) jobs.push(job(`j-${t}-${s}`, { ticketKey: `t${t}`, payload: { seq: s }, nextAt: now + t * perTicket + s, createdAt: now, kind: s === 0 ? 'route' : 'post' }));
    for (let i = 0; i < jobs.length; i += 500) await store.commit({ jobs: jobs.slice(i, i + 500) });
  }

  async function runsOf(url: string) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const runs = (await c.query<{ job_id: string; ticket_key: string; seq: number; instance: string }>('SELECT job_id, ticket_key, seq, instance FROM test_runs ORDER BY n')).rows;
      const left = Number((await c.query('SELECT count(*) AS n FROM jobs')).rows[0].n);
      const done = Number((await c.query('SELECT count(*) AS n FROM done_jobs')).rows[0].n);
      return { runs, left, done };
    } finally {
      await c.end();
    }
  }

  it('three processes drain 1,200 steps: each runs exactly once, each ticket in order', async () => {
    const url = await db.database();
    await seedJobs(url, 300, 4);
    const out = await runTogether<{ ran: number }>(CLAIMER, ['p1', 'p2', 'p3'].map((name): ClaimerOptions => ({ url, name, batch: 16, leaseMs: 60_000 })));
    for (const o of out) expect(o.code, o.stderr).toBe(0);
    const { runs, left, done } = await runsOf(url);
    expect(left).toBe(0);
    expect(done).toBe(1_200);
    expect(runs).toHaveLength(1_200);
    expect(new Set(runs.map((r) => r.job_id)).size).toBe(1_200);
    // All three took part (the claim lock is fair enough that none starves).
    expect(new Set(runs.map((r) => r.instance)).size).toBe(3);
    const lastSeq = new Map<string, number>();
    for (const r of runs) {
      expect(r.seq, `ticket ${r.ticket_key}`).toBe((lastSeq.get(r.ticket_key) ?? -1) + 1);
      lastSeq.set(r.ticket_key, r.seq);
    }
  });

  it('a process killed with SIGKILL mid-batch: its leased steps are taken over once the lease runs out', async () => {
    const url = await db.database();
    await seedJobs(url, 100, 3);
    const out = await runTogether<{ ran: number }>(CLAIMER, [
      { url, name: 'doomed', batch: 20, leaseMs: 1_500, dieAfterClaims: 2 },
      { url, name: 'p2', batch: 10, leaseMs: 1_500 },
      { url, name: 'p3', batch: 10, leaseMs: 1_500 },
    ] satisfies ClaimerOptions[]);
    expect(out[0]!.signal).toBe('SIGKILL');
    expect(out[1]!.code, out[1]!.stderr).toBe(0);
    expect(out[2]!.code, out[2]!.stderr).toBe(0);
    const { runs, left, done } = await runsOf(url);
    expect(left).toBe(0);
    expect(done).toBe(300);
    const byJob = new Map<string, string[]>();
    for (const r of runs) byJob.set(r.job_id, [...(byJob.get(r.job_id) ?? []), r.instance]);
    expect(byJob.size).toBe(300);
    // A step runs twice only when the doomed process had started it and died before completing it (at-least-once
    // across a crash; side effects carry idempotency keys), and then exactly once more, by a survivor.
    const twice = [...byJob.entries()].filter(([, who]) => who.length > 1);
    expect(twice.length).toBeGreaterThan(0);
    expect(twice.length).toBeLessThanOrEqual(10);
    for (const [id, who] of twice) expect(who, id).toEqual(['doomed', expect.not.stringMatching(/^doomed$/)]);
  });

  it('three processes routing at once against agents of capacity 3: nobody ever over capacity, loads exact', async () => {
    const url = await db.database();
    const out = await runTogether<DeciderResult>(DECIDER, [
      { url, name: 'd1', count: 200, resolveShare: 0.5, saveConfig: tightConfig(3), seed: 1 },
      { url, name: 'd2', count: 200, resolveShare: 0.5, seed: 2 },
      { url, name: 'd3', count: 200, resolveShare: 0.5, seed: 3 },
    ] satisfies DeciderOptions[]);
    for (const o of out) expect(o.code, o.stderr).toBe(0);
    const results = out.map((o) => o.result!);
    expect(results.flatMap((r) => r.violations)).toEqual([]);
    expect(results.reduce((n, r) => n + r.decisions, 0)).toBe(600);
    // Capacity was contended: some tickets had to wait.
    expect(results.reduce((n, r) => n + r.held, 0)).toBeGreaterThan(0);
    // The load counters equal the tickets actually assigned and not resolved: no lost or doubled increments.
    const store = await db.open({ url });
    const counters = await store.counters();
    const open = await store.tickets({ open: true });
    for (const a of AGENTS) {
      const assigned = open.filter((t) => t.agentId === a && t.status === 'assigned').length;
      expect(counters.load[a] ?? 0, a).toBe(assigned);
      expect(assigned).toBeLessThanOrEqual(3);
    }
    expect(Object.keys(counters.waiting.general ?? {}).length + Object.keys(counters.waiting.vip ?? {}).length).toBe(results.reduce((n, r) => n + r.held, 0));
  });

  it('three processes taking round-robin turns at once: every agent gets its fair share, within one', async () => {
    const url = await db.database();
    const cfg: RoutingConfigInput = {
      rules: [],
      defaultQueue: 'general',
      queues: [{ id: 'general', name: 'General', strategy: 'round_robin', agents: AGENTS, slaFirstResponseSeconds: 3600 }],
      agents: AGENTS.map((id) => ({ id, name: id.toUpperCase(), capacity: 1000 })),
    };
    const out = await runTogether<DeciderResult>(DECIDER, [
      { url, name: 'r1', count: 151, saveConfig: cfg, seed: 4 },
      { url, name: 'r2', count: 151, seed: 5 },
      { url, name: 'r3', count: 151, seed: 6 },
    ] satisfies DeciderOptions[]);
    for (const o of out) expect(o.code, o.stderr).toBe(0);
    const total: Record<string, number> = {};
    for (const o of out) for (const [a, n] of Object.entries(o.result!.assigned)) total[a] = (total[a] ?? 0) + n;
    const counts = AGENTS.map((a) => total[a] ?? 0);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(453);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // Each process saw turns interleaved with the others' (the test really was concurrent).
    for (const o of out) expect(Object.keys(o.result!.assigned).length).toBe(5);
  });
});
