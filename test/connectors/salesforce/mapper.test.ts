// The pure mapper on recorded SOQL records (the shape jsforce returns for our one query): segment values, fallbacks,
// data-quality issues, the query text, and the write-back records.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import manifest from '../../../manifest.json' with { type: 'json' };
import type { CrmWriteBack } from '../../../core/ports.ts';
import type { TicketRef } from '../../../core/segment.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { defaultMapping, SalesforceMappingSchema, segmentCaseFields } from '../../../connectors/salesforce/mapping.ts';
import { caseUpdate, contextFields, contextQuery, mapCaseRecord, routingEvent } from '../../../connectors/salesforce/mapper.ts';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
const ORG = to18('00DTL0000000001');
const refOf = (rec: Record<string, unknown>): TicketRef => ({ crm: 'salesforce', account: ORG, ticketId: String(rec.Id) });
const map = (name: string, mapping = defaultMapping()) => {
  const rec = fixture(name);
  return mapCaseRecord(rec, { mapping, ref: refOf(rec), instanceUrl: 'https://acme.my.salesforce.com/' });
};

describe('Salesforce mapper: Case + Account + Contact -> segment', () => {
  it('maps a complete enterprise case', () => {
    const ctx = map('case-enterprise');
    expect(ctx.segment).toMatchObject({
      tier: 'enterprise',
      lifetimeValue: { amount: 480000, currency: 'USD' },
      annualRevenue: 52000000,
      product: 'API',
      category: 'technical',
      language: 'de',
      region: 'EU',
      churnRisk: 0.12,
    });
    expect(ctx.segment.source).toEqual({ ref: refOf(fixture('case-enterprise')), companyId: to18('001TL000000ABCDYAA'), contactId: to18('003TL000000ABCEYAA') });
    expect(ctx.issues).toEqual([]);
    expect(ctx).toMatchObject({ subject: 'SSO login fails for all users', customerName: 'Hank Scorpio', companyName: 'Globex Corporation' });
    expect(ctx.recordUrl).toBe('https://acme.my.salesforce.com/lightning/r/Case/500TL00000015yyYAA/view');
  });

  it('falls back to Rating when Tier__c is empty, and to Reason when Type is empty', () => {
    const ctx = map('case-rating-only');
    expect(ctx.segment.tier).toBe('premium'); // Hot -> premium in the default value map
    expect(ctx.segment.category).toBe('billing');
    expect(ctx.segment.language).toBe('nl'); // "Dutch" via the language names map
    expect(ctx.segment.region).toBe('EU'); // "NL" as an ISO code
    expect(ctx.segment.churnRisk).toBeNull();
    expect(ctx.customerName).toBeNull();
    expect(ctx.description).toBeNull();
    expect(ctx.issues.map((i) => i.field)).toEqual(['churnRisk']);
  });

  it('reports every attribute a case without an account cannot supply', () => {
    const ctx = map('case-no-account');
    expect(ctx.subject).toBe('Case 00001003');
    expect(ctx.companyName).toBeNull();
    expect(ctx.segment.source.companyId).toBeNull();
    expect(ctx.segment.category).toBe('question');
    expect(ctx.issues.filter((i) => i.problem === 'missing').map((i) => i.field).sort()).toEqual(['churnRisk', 'language', 'lifetimeValue', 'product', 'region', 'tier']);
  });

  it('flags values it cannot use instead of guessing', () => {
    const ctx = map('case-bad-values');
    expect(ctx.segment.tier).toBeNull();
    expect(ctx.issues.find((i) => i.field === 'tier')).toMatchObject({ problem: 'invalid' });
    expect(ctx.issues.find((i) => i.field === 'tier')!.detail).toContain('Account.Tier__c "Gold"');
    expect(ctx.segment.lifetimeValue).toBeNull(); // negative
    expect(ctx.issues.find((i) => i.field === 'lifetimeValue')!.problem).toBe('invalid');
    expect(ctx.segment.churnRisk).toBeNull(); // 250 % is no probability
    expect(ctx.issues.find((i) => i.field === 'churnRisk')!.problem).toBe('invalid');
    expect(ctx.segment.region).toBe('Atlantis'); // unknown countries pass through for rules to match
    expect(ctx.segment.annualRevenue).toBe(27000);
  });

  it('applies an org mapping: custom fields, value maps, thresholds, no pass-through', () => {
    const mapping = SalesforceMappingSchema.parse({
      tier: [{ field: 'Account.Tier__c', values: { Gold: 'premium' } }],
      category: [{ field: 'Case.Type', values: { Problem: 'technical' }, passThrough: false }],
      region: [{ field: 'Account.BillingCountry', values: { Atlantis: 'OCEAN' } }],
      tierThresholds: [
        { tier: 'enterprise', minLifetimeValue: 100000 },
        { tier: 'standard', minLifetimeValue: 1000 },
      ],
    });
    const ctx = map('case-bad-values', mapping);
    expect(ctx.segment.tier).toBe('premium');
    expect(ctx.segment.category).toBe('technical');
    expect(ctx.segment.region).toBe('OCEAN');

    const derived = map('case-no-account', SalesforceMappingSchema.parse({ tierThresholds: [{ tier: 'standard', minLifetimeValue: 0 }] }));
    expect(derived.segment.tier).toBeNull(); // no money signal at all: nothing to derive from

    const rating = fixture('case-rating-only');
    (rating.Account as Record<string, unknown>).Rating = null;
    const viaThreshold = mapCaseRecord(rating, { mapping: SalesforceMappingSchema.parse({ tierThresholds: [{ tier: 'enterprise', minLifetimeValue: 100000 }, { tier: 'free', minLifetimeValue: 0 }] }), ref: refOf(rating), instanceUrl: 'https://x' });
    expect(viaThreshold.segment.tier).toBe('enterprise');
    expect(viaThreshold.issues.find((i) => i.field === 'tier')!.detail).toContain('derived enterprise from Account.Lifetime_Value__c 150000 >= 100000');

    const strict = map('case-bad-values', SalesforceMappingSchema.parse({ category: [{ field: 'Case.Type', values: { Billing: 'billing' }, passThrough: false }] }));
    expect(strict.segment.category).toBeNull();
    expect(strict.issues.find((i) => i.field === 'category')!.problem).toBe('invalid');
  });

  it('rejects mappings that would break the query, naming the field', () => {
    const bad = SalesforceMappingSchema.safeParse({ tier: [{ field: 'Tier__c', values: {} }] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path.join('.')).toBe('tier.0.field');
    expect(SalesforceMappingSchema.safeParse({ product: [{ field: "Case.Product__c'; DELETE" }] }).success).toBe(false);
    expect(SalesforceMappingSchema.safeParse({ unknownKey: 1 }).success).toBe(false);
  });
});

describe('Salesforce context query', () => {
  it('selects exactly the fields manifest.json lists as read, in one query', () => {
    const f = contextFields(defaultMapping());
    const reads = manifest.connectors.salesforce.reads;
    expect(new Set(f.Case)).toEqual(new Set(reads.Case));
    expect(new Set(f.Account)).toEqual(new Set(reads.Account));
    expect(new Set(f.Contact)).toEqual(new Set(reads.Contact));
    const q = contextQuery(defaultMapping(), '500TL00000015yyYAA');
    expect(q).toMatch(/^SELECT .* FROM Case WHERE Id = '500TL00000015yyYAA' LIMIT 1$/);
    expect(q.split(',').length).toBe(reads.Case.length + reads.Account.length + reads.Contact.length);
    expect(q).toContain('Account.Tier__c');
    expect(q).toContain('Contact.Email');
  });

  it('follows the mapping: a mapped field is selected, an unmapped one is not', () => {
    const m = SalesforceMappingSchema.parse({ tier: [{ field: 'Account.Customer_Tier__c', values: { A: 'enterprise' } }], churnRisk: null });
    const q = contextQuery(m, '500TL00000015yyYAA');
    expect(q).toContain('Account.Customer_Tier__c');
    expect(q).not.toContain('Account.Tier__c');
    expect(q).not.toContain('Churn_Risk__c');
    expect(() => contextQuery(m, "500' OR Id != '")).toThrow();
  });

  it('knows which Case fields decide the segment (for re-routing on change)', () => {
    expect(segmentCaseFields(defaultMapping()).sort()).toEqual(['AccountId', 'Language__c', 'Product__c', 'Reason', 'Type']);
  });
});

describe('Salesforce write-back records', () => {
  const wb: CrmWriteBack = {
    entry: { key: `salesforce:${ORG}:500TL00000015yyYAA#2`, ticketKey: `salesforce:${ORG}:500TL00000015yyYAA`, seq: 2, kind: 'first_reply', at: Date.UTC(2026, 10, 2, 9, 12), queueId: 'vip', agentId: 'alice', ruleId: 'enterprise', tier: 'enterprise', text: 'First reply by Alice Meyer after 12 min', explanation: ['rule enterprise matched'] },
    fields: { status: 'answered', queue: 'VIP desk', agent: 'Alice Meyer', segment: 'enterprise · technical · de · EU', tier: 'enterprise', rule: 'enterprise', routedAt: '2026-11-02T09:00:00.000Z', topicLink: 'https://t.me/c/1/100', firstResponseMinutes: 12, resolvedAt: null, slaMet: true, reason: 'x'.repeat(400) },
    companyId: '001TL000000ABCDYAA',
  };

  it('writes the current outcome onto the Case, clipped to the field sizes', () => {
    const u = caseUpdate('500TL00000015yyYAA', wb.fields);
    expect(u).toMatchObject({ Id: '500TL00000015yyYAA', Tierline_Status__c: 'answered', Tierline_Queue__c: 'VIP desk', Tierline_SLA_Met__c: 'Yes', Tierline_Resolved_At__c: null, Tierline_First_Response_Minutes__c: 12 });
    expect((u.Tierline_Reason__c as string).length).toBe(255);
    expect(Object.keys(u).filter((k) => k !== 'Id').sort()).toEqual([...manifest.connectors.salesforce.writes.Case].sort());
  });

  it('makes one Routing_Event__c keyed by the history entry key', () => {
    const e = routingEvent('500TL00000015yyYAA', wb);
    expect(e).toMatchObject({ Event_Key__c: wb.entry.key, Case__c: '500TL00000015yyYAA', Account__c: to18('001TL000000ABCDYAA'), Kind__c: 'first_reply', First_Response_Minutes__c: 12, SLA_Met__c: 'Yes', Resolved_At__c: null, Routed_At__c: '2026-11-02T09:12:00.000Z' });
    expect(e.Reason__c).toBe('First reply by Alice Meyer after 12 min\nrule enterprise matched');
    expect(Object.keys(e).sort()).toEqual([...manifest.connectors.salesforce.writes.Routing_Event__c].sort());
  });
});
