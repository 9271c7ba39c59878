// What-if replay: route past tickets again, in arrival order, under a draft configuration, and say what would change
// before anyone saves it. Pure: the caller passes the tickets (segments, arrival and resolution times, actual outcome).
//
// The simulation is the router itself (createRouter + stateOf + applyCounterOps), fed a replayed timeline: a ticket
// occupies its projected agent from arrival until the time it was really resolved; a ticket nobody can take waits in
// its queue and is retried (like the pipeline's assignWaiting) whenever a ticket arrives or one is resolved. Agent
// status comes from the configuration (the live status of today says nothing about last week).
//
// Comparing a draft with *actual* outcomes mixes two effects: the edit, and the differences between a replay and what
// really happened (agents went away, round-robin cursors were elsewhere). So when the configuration in force is
// given as `baseline`, it is replayed over the same timeline and the draft is compared with that: an unchanged draft
// then shows no changes at all. Without a baseline, the draft is compared with the actual outcomes.
import type { RoutingConfig } from './config.ts';
import { explainDecision } from './explain.ts';
import type { Counters } from './ports.ts';
import { applyCounterOps, createRouter, effectOps, emptyCounters, stateOf, type Decision, type Router } from './route.ts';
import type { Segment } from './segment.ts';

export type ReplayTicket = {
  key: string;
  segment: Segment;
  /** When the ticket entered its first queue (ms). */
  arrivedAt: number;
  /** When it stopped occupying an agent in reality (resolution), or null while it is still open. */
  releasedAt: number | null;
  actual: { queueId: string | null; agentId: string | null; summary?: string | null; explanation?: string[] };
};

export type ReplayInput = {
  draft: RoutingConfig;
  /** The configuration in force; when given, the draft is compared with its replay instead of with the actual outcome. */
  baseline?: RoutingConfig | null;
  tickets: readonly ReplayTicket[];
  /** How many changed tickets to explain side by side (the counts always cover all). Default 200. */
  explainLimit?: number;
};

export type Side = { queueId: string | null; agentId: string | null; outcome: 'assigned' | 'held' | 'actual'; summary: string; lines: string[] };

export type AgentLoad = {
  agentId: string;
  name: string;
  /** Capacity in the draft (null when the draft removed the agent). */
  capacity: number | null;
  before: { assigned: number; peak: number; open: number };
  after: { assigned: number; peak: number; open: number };
};

export type ReplayResult = {
  tickets: number;
  compared: 'baseline' | 'actual';
  from: number | null;
  to: number | null;
  /** Tickets whose queue differs between before and after. */
  movedQueues: number;
  moves: { from: string; to: string; count: number }[];
  /** Tickets whose agent differs (including assigned <-> waiting). */
  changedAgent: number;
  queues: { queueId: string; before: number; after: number }[];
  /** Tickets nobody could take (still waiting when they were resolved in reality, or at the end). */
  neverAssigned: { before: number; after: number };
  load: AgentLoad[];
  /** Changed-agent tickets, oldest first, with both explanations; at most explainLimit. */
  changes: { key: string; arrivedAt: number; before: Side; after: Side }[];
};

type Projected = { decision: Decision | null; agentId: string | null; queueId: string; waiting: boolean };

type Sim = {
  router: Router;
  projected: Projected[];
  /** Per agent: tickets assigned, peak concurrent load, load at the end. */
  stats: Map<string, { assigned: number; peak: number; open: number }>;
};

/** Replays the tickets (already sorted by arrival) through one configuration. */
function simulate(config: RoutingConfig, tickets: readonly ReplayTicket[]): Sim {
  const router = createRouter(config);
  const counters: Counters = emptyCounters();
  const state = stateOf(counters);
  const projected: Projected[] = new Array(tickets.length);
  const stats = new Map<string, { assigned: number; peak: number; open: number }>();
  const statOf = (id: string) => {
    let s = stats.get(id);
    if (!s) stats.set(id, (s = { assigned: 0, peak: 0, open: 0 }));
    return s;
  };
  // Waiting tickets per queue, oldest first (indexes into tickets).
  const waiting = new Map<string, number[]>();
  const releaseOrder = tickets
    .map((t, i) => ({ i, at: t.releasedAt }))
    .filter((r): r is { i: number; at: number } => r.at !== null)
    .sort((a, b) => a.at - b.at || a.i - b.i);
  let nextRelease = 0;

  const apply = (i: number, d: Decision, previousQueue: string | null) => {
    const t = tickets[i]!;
    applyCounterOps(counters, effectOps(d.effects));
    if (previousQueue !== null) {
      applyCounterOps(counters, [{ op: 'unwait', queueId: previousQueue, ticketKey: t.key }]);
      const list = waiting.get(previousQueue);
      if (list) list.splice(list.indexOf(i), 1);
    }
    if (d.outcome === 'held') {
      applyCounterOps(counters, [{ op: 'wait', queueId: d.queueId, ticketKey: t.key, since: d.enqueuedAt }]);
      const list = waiting.get(d.queueId);
      if (list) list.push(i);
      else waiting.set(d.queueId, [i]);
      projected[i] = { decision: d, agentId: null, queueId: d.queueId, waiting: true };
    } else {
      const s = statOf(d.agentId!);
      s.assigned++;
      s.peak = Math.max(s.peak, counters.load[d.agentId!] ?? 0);
      projected[i] = { decision: d, agentId: d.agentId, queueId: d.queueId, waiting: false };
    }
  };

  /** Places waiting tickets, oldest first per queue, until a queue's oldest still cannot be placed. */
  const placeWaiting = (now: number) => {
    for (const [queueId, list] of waiting) {
      while (list.length) {
        const i = list[0]!;
        const t = tickets[i]!;
        const d = router.route({ segment: t.segment, now, enqueuedAt: projected[i]!.decision!.enqueuedAt, queueId, ruleId: projected[i]!.decision!.rule?.id ?? null }, state);
        if (d.outcome === 'held' && d.queueId === queueId) break;
        apply(i, d, queueId);
      }
    }
  };

  const releaseUntil = (at: number) => {
    while (nextRelease < releaseOrder.length && releaseOrder[nextRelease]!.at <= at) {
      const { i, at: when } = releaseOrder[nextRelease++]!;
      const p = projected[i];
      if (!p) continue; // resolved before it arrived (bad data): nothing to release
      if (p.waiting) {
        applyCounterOps(counters, [{ op: 'unwait', queueId: p.queueId, ticketKey: tickets[i]!.key }]);
        const list = waiting.get(p.queueId)!;
        list.splice(list.indexOf(i), 1);
        p.waiting = false; // resolved in reality while it would still have waited: never assigned
      } else if (p.agentId) {
        applyCounterOps(counters, [{ op: 'load', agentId: p.agentId, delta: -1 }]);
        placeWaiting(when);
      }
    }
  };

  for (let i = 0; i < tickets.length; i++) {
    const t = tickets[i]!;
    releaseUntil(t.arrivedAt);
    placeWaiting(t.arrivedAt);
    apply(i, router.route({ segment: t.segment, now: t.arrivedAt, enqueuedAt: t.arrivedAt }, state), null);
  }
  // Resolutions after the last arrival still free agents for tickets waiting by then.
  releaseUntil(Number.POSITIVE_INFINITY);
  for (const [id, load] of Object.entries(counters.load)) if (load > 0) statOf(id).open = load;
  return { router, projected, stats };
}

function sideOf(router: Router, p: Projected): Side {
  const x = explainDecision(router, p.decision!);
  return { queueId: p.queueId, agentId: p.agentId, outcome: p.agentId ? 'assigned' : 'held', summary: x.summary, lines: x.lines };
}

/** Replays the tickets under the draft (and the baseline, when given) and compares. */
export function replay(input: ReplayInput): ReplayResult {
  const tickets = [...input.tickets].sort((a, b) => a.arrivedAt - b.arrivedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const after = simulate(input.draft, tickets);
  const before = input.baseline ? simulate(input.baseline, tickets) : null;
  const limit = input.explainLimit ?? 200;

  const beforeOf = (i: number): { queueId: string | null; agentId: string | null } => {
    if (before) return { queueId: before.projected[i]!.queueId, agentId: before.projected[i]!.agentId };
    return tickets[i]!.actual;
  };

  const moves = new Map<string, number>();
  const perQueue = new Map<string, { before: number; after: number }>();
  const q = (id: string) => {
    let v = perQueue.get(id);
    if (!v) perQueue.set(id, (v = { before: 0, after: 0 }));
    return v;
  };
  let movedQueues = 0;
  let changedAgent = 0;
  let neverBefore = 0;
  let neverAfter = 0;
  const changes: ReplayResult['changes'] = [];
  for (let i = 0; i < tickets.length; i++) {
    const b = beforeOf(i);
    const a = after.projected[i]!;
    if (b.queueId) q(b.queueId).before++;
    q(a.queueId).after++;
    if (!a.agentId) neverAfter++;
    if (!b.agentId) neverBefore++;
    if (b.queueId !== a.queueId) {
      movedQueues++;
      const k = `${b.queueId ?? '(none)'}\u0000${a.queueId}`;
      moves.set(k, (moves.get(k) ?? 0) + 1);
    }
    if (b.agentId !== a.agentId) {
      changedAgent++;
      if (changes.length < limit) {
        const t = tickets[i]!;
        const beforeSide: Side = before
          ? sideOf(before.router, before.projected[i]!)
          : { queueId: t.actual.queueId, agentId: t.actual.agentId, outcome: 'actual', summary: t.actual.summary ?? '', lines: t.actual.explanation ?? [] };
        changes.push({ key: t.key, arrivedAt: t.arrivedAt, before: beforeSide, after: sideOf(after.router, a) });
      }
    }
  }

  // Actual load, when comparing with reality: the actual agent held the ticket from arrival to resolution.
  let beforeStats = before?.stats;
  if (!beforeStats) {
    beforeStats = new Map();
    const events: { at: number; agentId: string; delta: number }[] = [];
    for (const t of tickets) {
      if (!t.actual.agentId) continue;
      events.push({ at: t.arrivedAt, agentId: t.actual.agentId, delta: 1 });
      if (t.releasedAt !== null) events.push({ at: t.releasedAt, agentId: t.actual.agentId, delta: -1 });
    }
    // Releases before arrivals at the same instant, as in the simulation.
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    const load = new Map<string, number>();
    for (const e of events) {
      const l = (load.get(e.agentId) ?? 0) + e.delta;
      load.set(e.agentId, l);
      let s = beforeStats.get(e.agentId);
      if (!s) beforeStats.set(e.agentId, (s = { assigned: 0, peak: 0, open: 0 }));
      if (e.delta > 0) s.assigned++;
      s.peak = Math.max(s.peak, l);
    }
    for (const [id, l] of load) if (l > 0) beforeStats.get(id)!.open = l;
  }

  const agentIds = new Set<string>([...input.draft.agents.map((a) => a.id), ...(input.baseline?.agents.map((a) => a.id) ?? []), ...beforeStats.keys(), ...after.stats.keys()]);
  const zero = { assigned: 0, peak: 0, open: 0 };
  const load: AgentLoad[] = [...agentIds].map((id) => {
    const inDraft = after.router.agent(id);
    return {
      agentId: id,
      name: inDraft?.name ?? before?.router.agent(id)?.name ?? id,
      capacity: inDraft ? after.router.capacity(id) : null,
      before: { ...(beforeStats.get(id) ?? zero) },
      after: { ...(after.stats.get(id) ?? zero) },
    };
  });
  load.sort((x, y) => y.after.peak - x.after.peak || y.after.assigned - x.after.assigned || x.agentId.localeCompare(y.agentId));

  return {
    tickets: tickets.length,
    compared: before ? 'baseline' : 'actual',
    from: tickets[0]?.arrivedAt ?? null,
    to: tickets.at(-1)?.arrivedAt ?? null,
    movedQueues,
    moves: [...moves.entries()].map(([k, count]) => {
      const [from, to] = k.split('\u0000') as [string, string];
      return { from, to, count };
    }).sort((x, y) => y.count - x.count || x.from.localeCompare(y.from) || x.to.localeCompare(y.to)),
    changedAgent,
    queues: [...perQueue.entries()].map(([queueId, v]) => ({ queueId, ...v })).sort((x, y) => y.after - x.after || x.queueId.localeCompare(y.queueId)),
    neverAssigned: { before: neverBefore, after: neverAfter },
    load,
    changes,
  };
}
