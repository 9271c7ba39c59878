import { describe, expect, it } from 'vitest';
import { parseRoutingConfig, type Condition } from '../../core/config.ts';
import { compileCondition, compileRules, matchRules } from '../../core/rules.ts';
import { resolveTier } from '../../core/tiering.ts';
import { validateSegment } from '../../core/segment.ts';
import { segment } from './fixtures.ts';

describe('rule operators', () => {
  const cases: { name: string; cond: Condition; seg: Parameters<typeof segment>[0]; want: 1 | 0 | -1 }[] = [
    { name: 'equals holds (case-insensitive)', cond: { field: 'category', op: 'equals', value: 'Billing' }, seg: {}, want: 1 },
    { name: 'equals fails', cond: { field: 'category', op: 'equals', value: 'technical' }, seg: {}, want: 0 },
    { name: 'equals on missing field is undecided', cond: { field: 'category', op: 'equals', value: 'billing' }, seg: { category: null }, want: -1 },
    { name: 'in holds', cond: { field: 'region', op: 'in', value: ['US', 'eu'] }, seg: {}, want: 1 },
    { name: 'in fails', cond: { field: 'region', op: 'in', value: ['US', 'APAC'] }, seg: {}, want: 0 },
    { name: 'in on missing is undecided', cond: { field: 'region', op: 'in', value: ['EU'] }, seg: { region: null }, want: -1 },
    { name: 'gte at the boundary holds', cond: { field: 'lifetimeValue', op: 'gte', value: 5000 }, seg: {}, want: 1 },
    { name: 'gte below fails', cond: { field: 'lifetimeValue', op: 'gte', value: 5001 }, seg: {}, want: 0 },
    { name: 'gte on missing LTV is undecided', cond: { field: 'lifetimeValue', op: 'gte', value: 1 }, seg: { lifetimeValue: null }, want: -1 },
    { name: 'lte at the boundary holds', cond: { field: 'churnRisk', op: 'lte', value: 0.2 }, seg: {}, want: 1 },
    { name: 'lte above fails', cond: { field: 'churnRisk', op: 'lte', value: 0.1 }, seg: {}, want: 0 },
    { name: 'exists holds', cond: { field: 'product', op: 'exists' }, seg: {}, want: 1 },
    { name: 'exists fails on missing (decided, not undecided)', cond: { field: 'product', op: 'exists' }, seg: { product: null }, want: 0 },
    { name: 'missing holds on missing', cond: { field: 'language', op: 'missing' }, seg: { language: null }, want: 1 },
    { name: 'missing fails when present', cond: { field: 'language', op: 'missing' }, seg: {}, want: 0 },
  ];
  it.each(cases)('$name', ({ cond, seg, want }) => {
    expect(compileCondition(cond)(segment(seg))).toBe(want);
  });
});

describe('rule order', () => {
  const rules = compileRules(
    parseRoutingConfig({
      rules: [
        { id: 'ent', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'q' },
        { id: 'de', when: [{ field: 'language', op: 'equals', value: 'de' }], queue: 'q' },
        { id: 'all', when: [], queue: 'q' },
      ],
      defaultQueue: 'q',
      queues: [{ id: 'q', name: 'Q', strategy: 'round_robin', slaFirstResponseSeconds: 60 }],
      agents: [],
    }).rules,
  );
  it('first match wins', () => {
    const m = matchRules(rules, segment({ tier: 'enterprise', language: 'de' }));
    expect(m).toMatchObject({ kind: 'matched', index: 0 });
  });
  it('an empty rule matches everything', () => {
    expect(matchRules(rules, segment({ tier: 'free' }))).toMatchObject({ kind: 'matched', index: 2 });
  });
  it('a rule that needs a missing attribute stops the walk instead of falling through', () => {
    expect(matchRules(rules, segment({ tier: null }))).toMatchObject({ kind: 'undecided', index: 0, missing: ['tier'] });
  });
});

describe('tiering thresholds', () => {
  const tiering = parseRoutingConfig({ rules: [], defaultQueue: 'q', queues: [{ id: 'q', name: 'Q', strategy: 'round_robin', slaFirstResponseSeconds: 60 }], agents: [] }).tiering;
  it.each([
    { ltv: 250_000, tier: 'enterprise' },
    { ltv: 100_000, tier: 'enterprise' },
    { ltv: 99_999.99, tier: 'premium' },
    { ltv: 20_000, tier: 'premium' },
    { ltv: 1_000, tier: 'standard' },
    { ltv: 999, tier: 'free' },
    { ltv: 0, tier: 'free' },
  ])('LTV $ltv derives $tier', ({ ltv, tier }) => {
    const t = resolveTier(segment({ tier: null, lifetimeValue: { amount: ltv, currency: 'USD' } }), tiering);
    expect(t.tier).toBe(tier);
    expect(t.source).toMatchObject({ kind: 'derived', from: 'lifetimeValue', value: ltv });
  });
  it('a CRM tier wins over money', () => {
    expect(resolveTier(segment({ tier: 'free', lifetimeValue: { amount: 1e6, currency: 'USD' } }), tiering)).toEqual({ tier: 'free', source: { kind: 'crm' } });
  });
  it('falls back to annual revenue when LTV is missing', () => {
    const t = resolveTier(segment({ tier: null, lifetimeValue: null, annualRevenue: 30_000 }), tiering);
    expect(t).toMatchObject({ tier: 'premium', source: { kind: 'derived', from: 'annualRevenue' } });
  });
  it('says the tier is missing when nothing can derive it', () => {
    expect(resolveTier(segment({ tier: null, lifetimeValue: null, annualRevenue: null }), tiering)).toEqual({ tier: null, source: { kind: 'missing' } });
  });
});

describe('segment validation', () => {
  it('reports missing and invalid attributes and treats invalid ones as missing', () => {
    const { segment: s, issues } = validateSegment({
      tier: 'platinum',
      lifetimeValue: { amount: -5, currency: 'USD' },
      product: 'crm',
      category: '',
      language: 'en',
      region: 'EU',
      churnRisk: 7,
      source: { ref: { crm: 'hubspot', account: '1', ticketId: '9' }, companyId: null, contactId: null },
    });
    expect(s.tier).toBeNull();
    expect(s.lifetimeValue).toBeNull();
    expect(s.churnRisk).toBeNull();
    expect(issues).toEqual(
      expect.arrayContaining([
        { field: 'tier', problem: 'invalid', detail: 'segment data invalid: tier ("platinum")' },
        expect.objectContaining({ field: 'lifetimeValue', problem: 'invalid' }),
        expect.objectContaining({ field: 'churnRisk', problem: 'invalid' }),
        { field: 'category', problem: 'missing', detail: 'segment data missing: category' },
      ]),
    );
  });
});
