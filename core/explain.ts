// Explanations in plain words. The same text goes into the agent's ticket card, the CRM note and the console.
import type { Router, Decision, Considered } from './route.ts';
import { describeRule } from './rules.ts';
import { describeTierSource } from './tiering.ts';

const PASS_TEXT: Record<NonNullable<Considered['reason']>, string> = {
  away: 'away',
  offline: 'offline',
  at_capacity: 'at capacity',
  missing_skill: 'missing skill',
  language: 'does not speak the customer’s language',
  excluded: 'excluded from this ticket',
  learner: 'learning agent (gets the rotation share only)',
  not_learner: 'this ticket is a rotation ticket for a learning agent',
  not_next: 'not next in turn',
  busier: 'busier',
};

export type Explanation = { summary: string; lines: string[]; passedOver: { agentId: string; name: string; reason: string }[] };

export function explainDecision(router: Router, d: Decision): Explanation {
  const name = (id: string) => router.agent(id)?.name ?? id;
  const qname = (id: string) => router.queue(id).name;
  const lines: string[] = [];
  lines.push(describeTierSource(d.tier) + '.');
  if (d.missing.length) lines.push(`Segment data missing: ${d.missing.join(', ')}.`);
  const first = d.steps[0]!.queueId;
  switch (d.queueReason.kind) {
    case 'rule': {
      if (d.rule) {
        const rule = router.config.rules[d.rule.index]!;
        lines.push(`Rule "${rule.id}" matched (${describeRule(rule)}) -> queue ${qname(first)}.`);
      } else lines.push(`Kept in queue ${qname(first)}.`);
      break;
    }
    case 'no_rule_matched':
      lines.push(`No rule matched -> default queue ${qname(first)}.`);
      break;
    case 'segment_data_missing':
      lines.push(
        `Segment data missing: ${d.queueReason.fields.join(', ')} (rule "${d.queueReason.ruleId}" needs it to decide) -> default queue ${qname(first)}. Fix the field on the CRM record to route by tier.`,
      );
  }
  for (const step of d.steps) {
    if (step.overflow) lines.push(`Overflow from ${qname(step.queueId)} to ${qname(step.overflow.to)}: ${step.overflow.detail}.`);
  }
  const last = d.steps[d.steps.length - 1]!;
  const passedOver = last.considered
    .filter((c) => !c.chosen && c.reason)
    .map((c) => ({
      agentId: c.agentId,
      name: name(c.agentId),
      reason: c.reason === 'at_capacity' || c.reason === 'busier' ? `${PASS_TEXT[c.reason]} (${c.load}/${c.capacity})` : c.reason === 'missing_skill' ? `${PASS_TEXT[c.reason]}: ${c.detail}` : PASS_TEXT[c.reason!],
    }));
  const chosen = last.considered.find((c) => c.chosen);
  const strategy = { round_robin: 'round robin', least_busy: 'least busy', skills: 'skills match, then least busy' }[d.strategy];
  if (d.outcome === 'assigned' && chosen) {
    lines.push(
      `Assigned to ${name(chosen.agentId)} by ${strategy}${d.rotation ? ' (rotation share for a learning agent)' : ''}; load ${chosen.load}/${chosen.capacity} before this ticket${d.skills.length ? `; skills ${d.skills.join(', ')}` : ''}.`,
    );
  } else {
    lines.push(`Waiting in ${qname(d.queueId)}: no agent can take it now (it is assigned as soon as one can).`);
  }
  if (d.languageRelaxed) lines.push('No available agent speaks the customer’s language; language was not required.');
  if (passedOver.length) lines.push(`Passed over: ${passedOver.map((p) => `${p.name} (${p.reason})`).join('; ')}.`);
  const summary =
    d.outcome === 'assigned' && chosen
      ? `${qname(d.queueId)} -> ${name(chosen.agentId)}${d.rule ? ` (rule ${d.rule.id})` : d.queueReason.kind === 'segment_data_missing' ? ' (segment data missing)' : ''}`
      : `${qname(d.queueId)} -> waiting`;
  return { summary, lines, passedOver };
}
