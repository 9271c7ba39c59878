// The routing decision: segment -> rule -> queue (with overflow) -> agent, and every reason along the way.
// Pure and synchronous: the caller passes the live state (agent status and load, round-robin cursors) and applies
// the returned effects, so the same code runs in the service, in what-if replays and in the benchmark.
import type { Agent, AgentStatus, Queue, RoutingConfig } from './config.ts';
import { compileRules, matchRules, type CompiledRule } from './rules.ts';
import { missingFields, type Segment, type SegmentField } from './segment.ts';
import { resolveTier, type Tiered } from './tiering.ts';
import type { CounterOp, Counters, RoutingCounters, WaitingTicket } from './ports.ts';

/** Live routing state the decision reads. Counters live in the store; the router only reads them. */
export interface RoutingState {
  agentStatus(agentId: string): AgentStatus | undefined;
  agentLoad(agentId: string): number;
  rrCursor(queueId: string): number;
  rotationCredit(queueId: string): number;
  /** When the oldest ticket still waiting in this queue arrived (ms), or null when none waits. */
  oldestWaitingSince(queueId: string): number | null;
}

export type PassReason = 'away' | 'offline' | 'at_capacity' | 'missing_skill' | 'language' | 'excluded' | 'learner' | 'not_learner' | 'not_next' | 'busier';

export type Considered = { agentId: string; chosen: boolean; reason?: PassReason; load: number; capacity: number; detail?: string };

export type QueueStep = {
  queueId: string;
  /** Why the ticket left this queue for the next one, when it did. */
  overflow?: { reason: 'waited_too_long' | 'no_agent'; detail: string; to: string };
  considered: Considered[];
};

export type Decision = {
  tier: Tiered;
  missing: SegmentField[];
  rule: { id: string; index: number } | null;
  /** Why the queue was chosen: a rule matched, no rule matched, or data a rule needs is missing. */
  queueReason: { kind: 'rule' } | { kind: 'no_rule_matched' } | { kind: 'segment_data_missing'; ruleId: string; fields: SegmentField[] };
  steps: QueueStep[];
  queueId: string;
  outcome: 'assigned' | 'held';
  agentId: string | null;
  strategy: Queue['strategy'];
  rotation: boolean;
  languageRelaxed: boolean;
  skills: string[];
  enqueuedAt: number;
  slaDueAt: number;
  effects: Effects;
};

export type Effects = {
  loadDelta: { agentId: string; delta: number } | null;
  rrCursor: { queueId: string; value: number } | null;
  rotationCredit: { queueId: string; value: number } | null;
};

export type RouteInput = {
  segment: Segment;
  now: number;
  /** Original arrival time; a reassigned or overflowed ticket keeps its wait time. Defaults to now. */
  enqueuedAt?: number;
  /** Agents that must not get this ticket (the agent who went offline, or who asked to reassign). */
  exclude?: readonly string[];
  /** Route inside this queue only, skipping the rules (reassignment keeps the queue). */
  queueId?: string;
  /** With queueId: the rule that first routed the ticket, whose skills the ticket still needs inside the queue. */
  ruleId?: string | null;
};

type Member = { agent: Agent; capacity: number; skills: Set<string>; languages: Set<string>; learner: boolean };
type CompiledQueue = { queue: Queue; members: Member[]; hasLearners: boolean };

export type Router = {
  config: RoutingConfig;
  route(input: RouteInput, state: RoutingState): Decision;
  queue(id: string): Queue;
  agent(id: string): Agent | undefined;
  capacity(agentId: string): number;
};

export function createRouter(config: RoutingConfig): Router {
  const rules: CompiledRule[] = compileRules(config.rules);
  const agents = new Map(config.agents.map((a) => [a.id, a]));
  const queues = new Map<string, CompiledQueue>();
  const capacity = new Map<string, number>();
  for (const q of config.queues) {
    const learners = new Set(q.rotation?.learners ?? []);
    const members = q.agents.map((m): Member => {
      const id = typeof m === 'string' ? m : m.id;
      const agent = agents.get(id)!;
      const cap = typeof m === 'string' ? agent.capacity : m.capacity;
      capacity.set(id, cap);
      return { agent, capacity: cap, skills: new Set(agent.skills.map((s) => s.toLowerCase())), languages: new Set(agent.languages.map((l) => l.toLowerCase())), learner: learners.has(id) };
    });
    queues.set(q.id, { queue: q, members, hasLearners: learners.size > 0 && (q.rotation?.share ?? 0) > 0 });
  }
  for (const a of config.agents) if (!capacity.has(a.id)) capacity.set(a.id, a.capacity);

  function route(input: RouteInput, state: RoutingState): Decision {
    const { segment, now } = input;
    const enqueuedAt = input.enqueuedAt ?? now;
    const tier = resolveTier(segment, config.tiering);
    const s: Segment = tier.tier === segment.tier ? segment : { ...segment, tier: tier.tier };
    const missing = missingFields(s);

    let queueId: string;
    let rule: Decision['rule'] = null;
    let queueReason: Decision['queueReason'];
    // A ticket needs the skills of the rule that routed it (rules are where skills are configured).
    let skills: string[] = [];
    if (input.queueId) {
      queueId = input.queueId;
      queueReason = { kind: 'rule' };
      const first = input.ruleId ? rules.find((r) => r.rule.id === input.ruleId) : undefined;
      if (first?.rule.skills.length) skills = [...skills, ...first.rule.skills];
    } else {
      const m = matchRules(rules, s);
      if (m.kind === 'matched') {
        queueId = m.rule.queue;
        rule = { id: m.rule.id, index: m.index };
        queueReason = { kind: 'rule' };
        if (m.rule.skills.length) skills = [...skills, ...m.rule.skills];
      } else if (m.kind === 'undecided') {
        queueId = config.defaultQueue;
        queueReason = { kind: 'segment_data_missing', ruleId: m.rule.id, fields: m.missing };
      } else {
        queueId = config.defaultQueue;
        queueReason = { kind: 'no_rule_matched' };
      }
    }
    const wanted = skills.map((x) => x.toLowerCase());
    const language = s.language?.toLowerCase() ?? null;
    const exclude = input.exclude ?? [];

    const steps: QueueStep[] = [];
    const visited = new Set<string>();
    let effects: Effects = { loadDelta: null, rrCursor: null, rotationCredit: null };
    let outcome: Decision['outcome'] = 'held';
    let agentId: string | null = null;
    let rotation = false;
    let languageRelaxed = false;
    let cq = queues.get(queueId)!;

    for (;;) {
      visited.add(cq.queue.id);
      const q = cq.queue;
      const step: QueueStep = { queueId: q.id, considered: [] };
      steps.push(step);
      const next = q.overflow && !visited.has(q.overflow.to) ? q.overflow.to : null;
      const oldest = state.oldestWaitingSince(q.id);
      if (next && q.overflow!.afterSeconds !== undefined && oldest !== null && now - oldest > q.overflow!.afterSeconds * 1000) {
        const waited = Math.round((now - oldest) / 1000);
        step.overflow = { reason: 'waited_too_long', detail: `oldest waiting ticket has waited ${waited} s (limit ${q.overflow!.afterSeconds} s)`, to: next };
        cq = queues.get(next)!;
        continue;
      }
      const pick = pickAgent(cq, state, wanted, language, exclude);
      step.considered = pick.considered;
      languageRelaxed = pick.languageRelaxed;
      if (pick.chosen) {
        outcome = 'assigned';
        agentId = pick.chosen;
        rotation = pick.rotation;
        effects = {
          loadDelta: { agentId: pick.chosen, delta: 1 },
          rrCursor: pick.rrCursor === null ? null : { queueId: q.id, value: pick.rrCursor },
          rotationCredit: pick.rotationCredit === null ? null : { queueId: q.id, value: pick.rotationCredit },
        };
        break;
      }
      if (next && q.overflow!.whenNoAgent) {
        step.overflow = { reason: 'no_agent', detail: 'no agent in this queue can take the ticket now', to: next };
        cq = queues.get(next)!;
        continue;
      }
      break;
    }
    const q = cq.queue;
    return {
      tier,
      missing,
      rule,
      queueReason,
      steps,
      queueId: q.id,
      outcome,
      agentId,
      strategy: q.strategy,
      rotation,
      languageRelaxed,
      skills,
      enqueuedAt,
      slaDueAt: enqueuedAt + q.slaFirstResponseSeconds * 1000,
      effects,
    };
  }

  function pickAgent(cq: CompiledQueue, state: RoutingState, wanted: string[], language: string | null, exclude: readonly string[]) {
    const q = cq.queue;
    const members = cq.members;
    const considered: Considered[] = new Array(members.length);
    const eligible: number[] = [];
    const speaks: number[] = [];
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      const id = m.agent.id;
      const load = state.agentLoad(id);
      const c: Considered = { agentId: id, chosen: false, load, capacity: m.capacity };
      considered[i] = c;
      const status = state.agentStatus(id) ?? m.agent.status;
      if (exclude.includes(id)) c.reason = 'excluded';
      else if (status !== 'available') c.reason = status;
      else if (load >= m.capacity) c.reason = 'at_capacity';
      else if (q.strategy === 'skills' && wanted.some((w) => !m.skills.has(w))) {
        c.reason = 'missing_skill';
        c.detail = wanted.filter((w) => !m.skills.has(w)).join(', ');
      } else {
        eligible.push(i);
        if (language === null || m.languages.size === 0 || m.languages.has(language)) speaks.push(i);
      }
    }
    // Language narrows the pool only when someone eligible speaks it; otherwise the ticket is served anyway.
    let pool = eligible;
    let languageRelaxed = false;
    if (language !== null && speaks.length > 0 && speaks.length < eligible.length) {
      for (const i of eligible) if (!speaks.includes(i)) considered[i]!.reason = 'language';
      pool = speaks;
    } else if (language !== null && speaks.length === 0 && eligible.length > 0) languageRelaxed = true;

    // Rotation: a credit accumulates `share` per ticket; a whole credit sends this ticket to a learner.
    let rotation = false;
    let rotationCredit: number | null = null;
    if (cq.hasLearners && pool.length > 0) {
      const credit = state.rotationCredit(q.id) + q.rotation!.share;
      const learners = pool.filter((i) => members[i]!.learner);
      const regulars = pool.filter((i) => !members[i]!.learner);
      if (credit >= 1 && learners.length > 0) {
        rotation = true;
        rotationCredit = credit - 1;
        for (const i of regulars) considered[i]!.reason = 'not_learner';
        pool = learners;
      } else {
        // Owed rotation waits for a learner, but never piles up into a burst of learner tickets later.
        rotationCredit = Math.min(credit, 1);
        if (regulars.length > 0) {
          for (const i of learners) considered[i]!.reason = 'learner';
          pool = regulars;
        }
      }
    }
    if (pool.length === 0) return { chosen: null, considered, rotation: false, rrCursor: null, rotationCredit: null, languageRelaxed };

    let chosenIdx: number;
    let rrCursor: number | null = null;
    const n = members.length;
    const cursor = state.rrCursor(q.id) % Math.max(n, 1);
    // Distance from the cursor breaks ties fairly for least-busy and skills too.
    const dist = (i: number) => (i - cursor + n) % n;
    if (q.strategy === 'round_robin') {
      chosenIdx = pool[0]!;
      for (const i of pool) if (dist(i) < dist(chosenIdx)) chosenIdx = i;
      for (const i of pool) if (i !== chosenIdx) considered[i]!.reason = 'not_next';
    } else {
      chosenIdx = pool[0]!;
      const ratio = (i: number) => considered[i]!.load / Math.max(members[i]!.capacity, 1);
      for (const i of pool) {
        const d = ratio(i) - ratio(chosenIdx);
        if (d < 0 || (d === 0 && dist(i) < dist(chosenIdx))) chosenIdx = i;
      }
      for (const i of pool) if (i !== chosenIdx) considered[i]!.reason = ratio(i) > ratio(chosenIdx) ? 'busier' : 'not_next';
    }
    rrCursor = (chosenIdx + 1) % n;
    considered[chosenIdx]!.chosen = true;
    return { chosen: members[chosenIdx]!.agent.id, considered, rotation, rrCursor, rotationCredit, languageRelaxed };
  }

  return {
    config,
    route,
    queue: (id) => queues.get(id)!.queue,
    agent: (id) => agents.get(id),
    capacity: (id) => capacity.get(id) ?? 0,
  };
}

/** Reads the store's counters (all of them, or what a decision reads) as the router's state. */
export function stateOf(c: Counters | RoutingCounters): RoutingState {
  return {
    agentStatus: (id) => c.status[id],
    agentLoad: (id) => c.load[id] ?? 0,
    rrCursor: (id) => c.rr[id] ?? 0,
    rotationCredit: (id) => c.rotation[id] ?? 0,
    oldestWaitingSince: 'oldestWaiting' in c ? (id) => c.oldestWaiting[id] ?? null : (id) => oldestIn(c.waiting[id]),
  };
}

function oldestIn(w: Record<string, number> | undefined): number | null {
  if (!w) return null;
  let min: number | null = null;
  for (const k in w) if (min === null || w[k]! < min) min = w[k]!;
  return min;
}

/**
 * Each queue's oldest waiting time, remembered between decisions for the stores that keep the counters in memory:
 * found by a scan of the queue's list only after the oldest ticket left it, so a decision costs the same with ten or
 * ten thousand tickets waiting (copying the lists for every decision was a fifth of the CPU under a backlog).
 */
export class OldestWaiting {
  readonly #known = new Map<string, number | null>();

  /** Applies the operations to `c` (as applyCounterOps does), keeping what is remembered right as it goes. */
  apply(c: Counters, ops: readonly CounterOp[]): void {
    for (const o of ops) {
      if (o.op === 'wait' || o.op === 'unwait') {
        const known = this.#known.get(o.queueId);
        if (known !== undefined) {
          const current = c.waiting[o.queueId]?.[o.ticketKey];
          // The oldest itself waits again or leaves: found again on the next read.
          if (current !== undefined && current === known) this.#known.delete(o.queueId);
          else if (o.op === 'wait') this.#known.set(o.queueId, known === null ? o.since : Math.min(known, o.since));
        }
      }
      applyCounterOps(c, [o]);
    }
  }

  /** The counters were replaced wholesale (a store opened). */
  reset(): void {
    this.#known.clear();
  }

  /** What a decision reads, copied from `c`. */
  read(c: Counters): RoutingCounters {
    const oldestWaiting: Record<string, number> = {};
    for (const q in c.waiting) {
      let v = this.#known.get(q);
      if (v === undefined) this.#known.set(q, (v = oldestIn(c.waiting[q])));
      if (v !== null) oldestWaiting[q] = v;
    }
    return { status: { ...c.status }, load: { ...c.load }, rr: { ...c.rr }, rotation: { ...c.rotation }, oldestWaiting };
  }
}

/** A page of the tickets waiting in these queues, oldest first, ties by key, then queue (the stores' waitingTickets). */
export function waitingPage(c: Counters, queueIds: readonly string[], page: { limit: number; after?: WaitingTicket }): WaitingTicket[] {
  const before = (a: WaitingTicket, b: WaitingTicket) => a.since < b.since || (a.since === b.since && (a.key < b.key || (a.key === b.key && a.queueId < b.queueId)));
  const after = page.after;
  const out: WaitingTicket[] = [];
  if (page.limit <= 0) return out;
  // The earliest `limit`, kept sorted while scanning: under a backlog a queue holds thousands, a page a hundred.
  for (const queueId of new Set(queueIds)) {
    const w = c.waiting[queueId];
    for (const key in w) {
      const since = w[key]!;
      // Compared before anything is allocated: most entries of a long list fall outside the page.
      if (after && (since < after.since || (since === after.since && (key < after.key || (key === after.key && queueId <= after.queueId))))) continue;
      const last = out.length === page.limit ? out[page.limit - 1]! : null;
      if (last && !before({ key, queueId, since }, last)) continue;
      const x = { key, queueId, since };
      let i = out.length === page.limit ? page.limit - 1 : out.length;
      while (i > 0 && before(x, out[i - 1]!)) i--;
      out.splice(i, 0, x);
      if (out.length > page.limit) out.pop();
    }
  }
  return out;
}

export function emptyCounters(): Counters {
  return { status: {}, load: {}, rr: {}, rotation: {}, waiting: {} };
}

/**
 * A copy of the counters that shares nothing with them. Hand-written for their known shape because it runs for every
 * routing decision and the waiting lists can hold thousands of tickets; structuredClone was several times slower.
 */
export function copyCounters(c: Counters): Counters {
  const waiting: Counters['waiting'] = {};
  for (const q in c.waiting) waiting[q] = { ...c.waiting[q] };
  return { status: { ...c.status }, load: { ...c.load }, rr: { ...c.rr }, rotation: { ...c.rotation }, waiting };
}

/** The counter changes a decision implies, as store operations. */
export function effectOps(e: Effects): CounterOp[] {
  const ops: CounterOp[] = [];
  if (e.loadDelta) ops.push({ op: 'load', agentId: e.loadDelta.agentId, delta: e.loadDelta.delta });
  if (e.rrCursor) ops.push({ op: 'rr', queueId: e.rrCursor.queueId, value: e.rrCursor.value });
  if (e.rotationCredit) ops.push({ op: 'rotation', queueId: e.rotationCredit.queueId, value: e.rotationCredit.value });
  return ops;
}

/** Applies counter operations in place (the store adapters and in-memory replays share this). */
export function applyCounterOps(c: Counters, ops: readonly CounterOp[]): void {
  for (const o of ops) {
    switch (o.op) {
      case 'load':
        c.load[o.agentId] = Math.max(0, (c.load[o.agentId] ?? 0) + o.delta);
        break;
      case 'rr':
        c.rr[o.queueId] = o.value;
        break;
      case 'rotation':
        c.rotation[o.queueId] = o.value;
        break;
      case 'status':
        c.status[o.agentId] = o.status;
        break;
      case 'wait':
        (c.waiting[o.queueId] ??= {})[o.ticketKey] = o.since;
        break;
      case 'unwait': {
        const w = c.waiting[o.queueId];
        if (w) {
          delete w[o.ticketKey];
          if (Object.keys(w).length === 0) delete c.waiting[o.queueId];
        }
        break;
      }
    }
  }
}
