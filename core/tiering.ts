// When the CRM has no usable tier, derive one from money the CRM does know, and say which signal was used.
import type { Tiering } from './config.ts';
import type { Segment, Tier } from './segment.ts';

export type TierSource =
  | { kind: 'crm' }
  | { kind: 'derived'; from: 'lifetimeValue' | 'annualRevenue'; value: number; threshold: number }
  | { kind: 'missing' };

export type Tiered = { tier: Tier | null; source: TierSource };

export function resolveTier(segment: Segment, tiering: Tiering): Tiered {
  if (segment.tier) return { tier: segment.tier, source: { kind: 'crm' } };
  const signal: { from: 'lifetimeValue' | 'annualRevenue'; value: number } | null = segment.lifetimeValue
    ? { from: 'lifetimeValue', value: segment.lifetimeValue.amount }
    : tiering.useAnnualRevenue && segment.annualRevenue !== null
      ? { from: 'annualRevenue', value: segment.annualRevenue }
      : null;
  if (!signal) return { tier: null, source: { kind: 'missing' } };
  for (const t of tiering.thresholds) {
    if (signal.value >= t.minLifetimeValue) {
      return { tier: t.tier, source: { kind: 'derived', from: signal.from, value: signal.value, threshold: t.minLifetimeValue } };
    }
  }
  return { tier: null, source: { kind: 'missing' } };
}

export function describeTierSource(t: Tiered): string {
  switch (t.source.kind) {
    case 'crm':
      return `tier ${t.tier} from the CRM`;
    case 'derived':
      return `tier ${t.tier} derived: ${t.source.from} ${t.source.value} >= ${t.source.threshold} (the CRM had no tier)`;
    case 'missing':
      return 'segment data missing: tier (and no lifetime value or revenue to derive it from)';
  }
}
