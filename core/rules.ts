// Ordered segment rules, compiled once per configuration into plain predicates.
// A condition on an attribute the CRM did not give is neither true nor false: it is "undecided". A rule whose
// decidable conditions all hold but which has an undecided one could have matched, so routing must not skip past
// it silently (that would misroute on stale data): the ticket goes to the default queue, naming the missing field.
import type { Condition, Rule } from './config.ts';
import type { Segment, SegmentField } from './segment.ts';

type Value = string | number | null;
/** 1 = holds, 0 = fails, -1 = undecided (the attribute is missing). */
type Check = (s: Segment) => 1 | 0 | -1;
export type CompiledRule = { rule: Rule; checks: Check[]; fields: SegmentField[] };
export type RuleMatch =
  | { kind: 'matched'; rule: Rule; index: number }
  | { kind: 'undecided'; rule: Rule; index: number; missing: SegmentField[] }
  | { kind: 'none' };

function read(s: Segment, field: SegmentField): Value {
  if (field === 'lifetimeValue') return s.lifetimeValue ? s.lifetimeValue.amount : null;
  return s[field] as Value;
}

const norm = (v: string | number) => (typeof v === 'string' ? v.toLowerCase() : v);

export function compileCondition(c: Condition): Check {
  const f = c.field;
  switch (c.op) {
    case 'equals': {
      const want = norm(c.value);
      return (s) => {
        const v = read(s, f);
        return v === null ? -1 : norm(v) === want ? 1 : 0;
      };
    }
    case 'in': {
      const set = new Set(c.value.map(norm));
      return (s) => {
        const v = read(s, f);
        return v === null ? -1 : set.has(norm(v)) ? 1 : 0;
      };
    }
    case 'gte':
      return (s) => {
        const v = read(s, f);
        return typeof v !== 'number' ? -1 : v >= c.value ? 1 : 0;
      };
    case 'lte':
      return (s) => {
        const v = read(s, f);
        return typeof v !== 'number' ? -1 : v <= c.value ? 1 : 0;
      };
    case 'exists':
      return (s) => (read(s, f) !== null ? 1 : 0);
    case 'missing':
      return (s) => (read(s, f) === null ? 1 : 0);
  }
}

export function compileRules(rules: Rule[]): CompiledRule[] {
  return rules.map((rule) => ({
    rule,
    checks: rule.when.map(compileCondition),
    fields: rule.when.map((c) => c.field),
  }));
}

/** First match wins; an undecidable rule before the first match stops the walk (see the module comment). */
export function matchRules(rules: CompiledRule[], s: Segment): RuleMatch {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    let undecided = false;
    let failed = false;
    for (let j = 0; j < r.checks.length; j++) {
      const v = r.checks[j]!(s);
      if (v === 0) {
        failed = true;
        break;
      }
      if (v === -1) undecided = true;
    }
    if (failed) continue;
    if (!undecided) return { kind: 'matched', rule: r.rule, index: i };
    const missing = r.fields.filter((f, j) => r.checks[j]!(s) === -1);
    return { kind: 'undecided', rule: r.rule, index: i, missing: [...new Set(missing)] };
  }
  return { kind: 'none' };
}

export function describeCondition(c: Condition): string {
  switch (c.op) {
    case 'equals':
      return `${c.field} = ${c.value}`;
    case 'in':
      return `${c.field} in [${c.value.join(', ')}]`;
    case 'gte':
      return `${c.field} >= ${c.value}`;
    case 'lte':
      return `${c.field} <= ${c.value}`;
    case 'exists':
      return `${c.field} is known`;
    case 'missing':
      return `${c.field} is missing`;
  }
}

export function describeRule(rule: Rule): string {
  return rule.when.length ? rule.when.map(describeCondition).join(' and ') : 'every ticket';
}
