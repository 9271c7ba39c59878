// Routing configuration: rules, queues, agents, groups and tiering are data. This module is the one gate they pass:
// a config that parses here is internally consistent (every reference resolves, no overflow cycle), so the router
// never has to re-check it on the hot path.
import { z } from 'zod';
import { SEGMENT_FIELDS, TierSchema } from './segment.ts';

const Id = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/i, 'use letters, digits, "-" or "_" (at most 63)');

export const ConditionSchema = z.discriminatedUnion('op', [
  z.object({ field: z.enum(SEGMENT_FIELDS), op: z.literal('equals'), value: z.union([z.string(), z.number()]) }),
  z.object({ field: z.enum(SEGMENT_FIELDS), op: z.literal('in'), value: z.array(z.union([z.string(), z.number()])).min(1) }),
  z.object({ field: z.enum(['lifetimeValue', 'churnRisk']), op: z.literal('gte'), value: z.number().finite() }),
  z.object({ field: z.enum(['lifetimeValue', 'churnRisk']), op: z.literal('lte'), value: z.number().finite() }),
  z.object({ field: z.enum(SEGMENT_FIELDS), op: z.literal('exists') }),
  z.object({ field: z.enum(SEGMENT_FIELDS), op: z.literal('missing') }),
]);
export type Condition = z.infer<typeof ConditionSchema>;

export const RuleSchema = z.object({
  id: Id,
  description: z.string().max(200).optional(),
  /** All conditions must hold; an empty list matches every ticket. */
  when: z.array(ConditionSchema).max(20),
  queue: Id,
  /** Skills a ticket matched by this rule requires (used by the `skills` strategy). */
  skills: z.array(z.string().min(1)).max(20).default([]),
});
export type Rule = z.infer<typeof RuleSchema>;

export const STRATEGIES = ['round_robin', 'least_busy', 'skills'] as const;

export const QueueSchema = z.object({
  id: Id,
  name: z.string().min(1).max(80),
  strategy: z.enum(STRATEGIES),
  /** Members: an agent id, or {id, capacity} to state the capacity where the agent is listed. */
  agents: z.array(z.union([Id, z.object({ id: Id, capacity: z.number().int().min(0).max(1000) })])).default([]),
  slaFirstResponseSeconds: z.number().int().positive().max(30 * 86400),
  /** Fraction of the SLA after which the agent is reminded (0.8 = reminder at 80% of the target). */
  slaReminderAt: z.number().gt(0).lt(1).default(0.8),
  overflow: z
    .object({
      to: Id,
      /** Overflow when the oldest waiting ticket has waited longer than this. */
      afterSeconds: z.number().int().positive().optional(),
      /** Overflow at once when nobody in the queue can take the ticket (otherwise the ticket waits). */
      whenNoAgent: z.boolean().default(true),
    })
    .optional(),
  escalation: z
    .object({ mention: Id.optional(), overflowTo: Id.optional() })
    .refine((e) => e.mention || e.overflowTo, 'give `mention` (an agent id) or `overflowTo` (a queue id)')
    .optional(),
  rotation: z
    .object({ share: z.number().min(0).max(1), learners: z.array(Id).min(1) })
    .optional(),
  /** Telegram forum groups that carry this queue's topics; several spread Telegram's per-group send limit. */
  groups: z.array(Id).default([]),
});
export type Queue = z.infer<typeof QueueSchema>;

export const AGENT_STATUSES = ['available', 'away', 'offline'] as const;
export const AgentStatusSchema = z.enum(AGENT_STATUSES);
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

export const AgentSchema = z.object({
  id: Id,
  name: z.string().min(1).max(80),
  telegramUserId: z.string().regex(/^\d+$/, 'a numeric Telegram user id').optional(),
  telegramUsername: z.string().regex(/^[A-Za-z0-9_]{5,32}$/).optional(),
  status: AgentStatusSchema.default('available'),
  capacity: z.number().int().min(0).max(1000).default(5),
  skills: z.array(z.string().min(1)).default([]),
  languages: z.array(z.string().min(2)).default([]),
});
export type Agent = z.infer<typeof AgentSchema>;

export const GroupSchema = z.object({
  id: Id,
  title: z.string().min(1).max(128),
  /** Telegram channel id (without the -100 prefix) once the group is linked. */
  telegramChannelId: z.string().regex(/^\d+$/).optional(),
});
export type Group = z.infer<typeof GroupSchema>;

export const TieringSchema = z.object({
  /** Checked in order; the first threshold the lifetime value (or, failing that, annual revenue) reaches applies. */
  thresholds: z
    .array(z.object({ tier: TierSchema, minLifetimeValue: z.number({ error: 'a lifetime value threshold must be a number, e.g. 100000' }).finite().nonnegative('a lifetime value cannot be negative; use 0 for the lowest tier') }))
    .default([
      { tier: 'enterprise', minLifetimeValue: 100_000 },
      { tier: 'premium', minLifetimeValue: 20_000 },
      { tier: 'standard', minLifetimeValue: 1_000 },
      { tier: 'free', minLifetimeValue: 0 },
    ]),
  useAnnualRevenue: z.boolean().default(true),
});
export type Tiering = z.infer<typeof TieringSchema>;

export const RoutingConfigSchema = z.object({
  tiering: TieringSchema.prefault({}),
  rules: z.array(RuleSchema).max(1000),
  defaultQueue: Id,
  queues: z.array(QueueSchema).min(1).max(500),
  agents: z.array(AgentSchema).max(20_000),
  groups: z.array(GroupSchema).default([]),
});
export type RoutingConfig = z.infer<typeof RoutingConfigSchema>;
export type RoutingConfigInput = z.input<typeof RoutingConfigSchema>;

export type ConfigProblem = { path: string; message: string };

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(`Routing configuration rejected; the last good configuration stays in force:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
    this.problems = problems;
  }
}

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '') || '(root)';
}

/** Parses and cross-checks a routing configuration. Throws ConfigError naming each bad path and its fix. */
export function parseRoutingConfig(input: unknown): RoutingConfig {
  const parsed = RoutingConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message })));
  }
  const config = parsed.data;
  const problems = crossCheck(config);
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function crossCheck(c: RoutingConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const queueIds = new Set<string>();
  const agentIds = new Set<string>();
  const groupIds = new Set(c.groups.map((g) => g.id));
  const dup = (kind: string, ids: string[], seen: Set<string>) =>
    ids.forEach((id, i) => {
      if (seen.has(id)) problems.push({ path: `${kind}[${i}].id`, message: `duplicate id "${id}"; ids must be unique` });
      seen.add(id);
    });
  dup('queues', c.queues.map((q) => q.id), queueIds);
  dup('agents', c.agents.map((a) => a.id), agentIds);
  dup('rules', c.rules.map((r) => r.id), new Set());

  const queueRef = (path: string, id: string) => {
    if (!queueIds.has(id)) problems.push({ path, message: `unknown queue "${id}"; add it to queues or use one of: ${[...queueIds].join(', ')}` });
  };
  const agentRef = (path: string, id: string) => {
    if (!agentIds.has(id)) problems.push({ path, message: `unknown agent "${id}"; add it to agents first` });
  };
  queueRef('defaultQueue', c.defaultQueue);
  c.rules.forEach((r, i) => queueRef(`rules[${i}].queue`, r.queue));

  const agentById = new Map(c.agents.map((a) => [a.id, a]));
  const capacitySeen = new Map<string, { queue: string; capacity: number }>();
  c.queues.forEach((q, qi) => {
    q.agents.forEach((m, mi) => {
      const id = typeof m === 'string' ? m : m.id;
      agentRef(`queues[${qi}].agents[${mi}]`, id);
      const capacity = typeof m === 'string' ? agentById.get(id)?.capacity : m.capacity;
      if (capacity === undefined) return;
      const prev = capacitySeen.get(id);
      if (prev && prev.capacity !== capacity) {
        problems.push({
          path: `queues[${qi}].agents[${mi}]`,
          message: `agent "${id}" has capacity ${capacity} here but ${prev.capacity} in queue "${prev.queue}"; an agent's open tickets count across queues, so give one capacity (on the agent)`,
        });
      } else capacitySeen.set(id, { queue: q.id, capacity });
    });
    if (q.overflow) {
      queueRef(`queues[${qi}].overflow.to`, q.overflow.to);
      if (q.overflow.to === q.id) problems.push({ path: `queues[${qi}].overflow.to`, message: `queue "${q.id}" overflows into itself; point it at another queue` });
    }
    if (q.escalation?.overflowTo) queueRef(`queues[${qi}].escalation.overflowTo`, q.escalation.overflowTo);
    if (q.escalation?.mention) agentRef(`queues[${qi}].escalation.mention`, q.escalation.mention);
    q.rotation?.learners.forEach((l, li) => {
      agentRef(`queues[${qi}].rotation.learners[${li}]`, l);
      const member = q.agents.some((m) => (typeof m === 'string' ? m : m.id) === l);
      if (!member) problems.push({ path: `queues[${qi}].rotation.learners[${li}]`, message: `learner "${l}" is not an agent of queue "${q.id}"; add them to its agents` });
    });
    q.groups.forEach((g, gi) => {
      if (!groupIds.has(g)) problems.push({ path: `queues[${qi}].groups[${gi}]`, message: `unknown group "${g}"; add it to groups` });
    });
  });

  // Overflow chains are allowed, cycles are not: a ticket must always land somewhere.
  const next = new Map(c.queues.filter((q) => q.overflow).map((q) => [q.id, q.overflow!.to]));
  c.queues.forEach((q, qi) => {
    const seen = [q.id];
    let at = next.get(q.id);
    while (at !== undefined) {
      if (at === q.id) {
        if (seen.length > 1) problems.push({ path: `queues[${qi}].overflow.to`, message: `overflow cycle ${[...seen, at].join(' -> ')}; end the chain in a queue without overflow` });
        break;
      }
      if (seen.includes(at)) break; // a cycle not through q; reported from its own members
      seen.push(at);
      at = next.get(at);
    }
  });

  const t = c.tiering.thresholds;
  for (let i = 1; i < t.length; i++) {
    if (t[i]!.minLifetimeValue > t[i - 1]!.minLifetimeValue) {
      problems.push({ path: `tiering.thresholds[${i}].minLifetimeValue`, message: 'thresholds are checked in order; list them from highest to lowest' });
    }
  }
  return problems;
}
