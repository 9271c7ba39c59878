// The pure mapper on recorded-shape fixtures (v3 objects API responses): tier from the ICP property, lifetime value
// falling back to annual revenue, value maps, language and region normalisation, data-quality issues, per-portal
// mappings; and the write-back payloads (properties, history, note) built from a routing outcome.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CrmWriteBack, HistoryEntry, RoutingFields } from '../../../core/ports.ts';
import { defaultMapping, HubspotMappingSchema, watchedTicketProperties } from '../../../connectors/hubspot/mapping.ts';
import { HISTORY_MAX_CHARS, historyText, mapTicket, noteBody, noteMarker, outcomeProperties, readProperties, ticketProperties, type TicketBundle } from '../../../connectors/hubspot/mapper.ts';
import { HUBSPOT_MANIFEST } from '../../../connectors/hubspot/properties.ts';

const fixture = (name: string): TicketBundle => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
const map = (b: TicketBundle, mapping = defaultMapping(), currency = 'USD') => mapTicket(b, { mapping, ref: { crm: 'hubspot', account: '2412345', ticketId: b.ticket.id }, currency });

describe('HubSpot mapper: ticket + company + contact -> segment', () => {
  it('maps an ICP tier 1 company with revenue, churn risk, product, category and the contact’s language', () => {
    const ctx = map(fixture('ticket-enterprise'));
    expect(ctx).toMatchObject({
      subject: 'SSO login fails for all users',
      description: 'Since this morning nobody can sign in with SSO.',
      customerName: 'Hank Scorpio',
      companyName: 'Globex Corporation',
      recordUrl: 'https://app.hubspot.com/contacts/2412345/record/0-5/18330586474',
    });
    expect(ctx.segment).toMatchObject({
      tier: 'enterprise',
      lifetimeValue: { amount: 480_000, currency: 'USD' },
      annualRevenue: 12_000_000,
      product: 'API',
      category: 'technical',
      language: 'de',
      region: 'EU',
      churnRisk: 0.2,
      source: { ref: { crm: 'hubspot', account: '2412345', ticketId: '18330586474' }, companyId: '9871234401', contactId: '50120041' },
    });
    expect(ctx.issues).toEqual([]);
  });

  it('falls back to annual revenue for the lifetime value, and reports the missing tier (or derives it from portal thresholds)', () => {
    const b = fixture('ticket-revenue-only');
    const ctx = map(b, defaultMapping(), 'EUR');
    expect(ctx.segment).toMatchObject({ tier: null, lifetimeValue: { amount: 25_000, currency: 'EUR' }, annualRevenue: 25_000, category: 'billing', language: 'es', region: 'EU', product: null, churnRisk: null });
    expect(ctx.issues.map((i) => `${i.field}:${i.problem}`).sort()).toEqual(['churnRisk:missing', 'product:missing', 'tier:missing']);
    const withThresholds = HubspotMappingSchema.parse({ tierThresholds: [{ tier: 'premium', minLifetimeValue: 20_000 }, { tier: 'standard', minLifetimeValue: 1_000 }] });
    const derived = map(b, withThresholds);
    expect(derived.segment.tier).toBe('premium');
    expect(derived.issues.find((i) => i.field === 'tier')!.detail).toBe('no tier in HubSpot; derived premium from company.annualrevenue 25000 >= 20000 (portal mapping thresholds)');
  });

  it('maps a ticket without company or contact, normalising the language and naming what is missing', () => {
    const ctx = map(fixture('ticket-no-company'));
    expect(ctx).toMatchObject({ subject: 'Ticket 18330586476', description: null, customerName: null, companyName: null });
    expect(ctx.segment).toMatchObject({ tier: null, lifetimeValue: null, language: 'en', product: 'Dashboard', region: null, source: { companyId: null, contactId: null } });
    expect(ctx.issues.map((i) => i.field).sort()).toEqual(['category', 'churnRisk', 'lifetimeValue', 'region', 'tier']);
  });

  it('reports values it cannot use (unknown ICP tier, negative revenue, churn over 100 %) instead of guessing', () => {
    const ctx = map(fixture('ticket-bad-values'));
    expect(ctx.customerName).toBe('ops@odd.example');
    expect(ctx.segment).toMatchObject({ tier: null, lifetimeValue: null, churnRisk: null, language: 'de', category: 'WARRANTY_CLAIM', region: 'Atlantis' });
    const byField = Object.fromEntries(ctx.issues.map((i) => [i.field, i]));
    expect(byField.tier).toMatchObject({ problem: 'invalid', detail: expect.stringContaining('company.hs_ideal_customer_profile "tier_9" is not in the tier value map') });
    expect(byField.lifetimeValue).toMatchObject({ problem: 'invalid' });
    expect(byField.churnRisk).toMatchObject({ problem: 'invalid' });
    // A portal that only wants known categories: the unknown one becomes a data-quality issue.
    const strict = HubspotMappingSchema.parse({ category: [{ property: 'ticket.hs_ticket_category', values: { PRODUCT_ISSUE: 'technical' }, passThrough: false }] });
    const s = map(fixture('ticket-bad-values'), strict);
    expect(s.segment.category).toBeNull();
    expect(s.issues.find((i) => i.field === 'category')!.detail).toContain('"WARRANTY_CLAIM" is not in the category value map');
  });

  it('follows a per-portal mapping: other properties, other value maps', () => {
    const m = HubspotMappingSchema.parse({
      tier: [{ property: 'company.account_tier', values: { Gold: 'enterprise', Silver: 'premium' } }],
      product: [{ property: 'contact.jobtitle', passThrough: true }],
      churnRisk: null,
    });
    const b = fixture('ticket-enterprise');
    b.company!.properties.account_tier = 'silver';
    b.contact!.properties.jobtitle = 'CTO';
    const ctx = map(b, m);
    expect(ctx.segment).toMatchObject({ tier: 'premium', product: 'CTO', churnRisk: null });
    const props = readProperties(m);
    expect(props.companies).toContain('account_tier');
    expect(props.contacts).toContain('jobtitle');
    // Whatever the mapping, the properties manifest.json lists are always read.
    for (const [k, list] of Object.entries(HUBSPOT_MANIFEST.reads)) expect(props[k as keyof typeof props]).toEqual(expect.arrayContaining(list));
  });

  it('validates mappings and names the field that is wrong', () => {
    const bad = HubspotMappingSchema.safeParse({ tier: [{ property: 'Company.ICP', values: {} }] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path.join('.')).toBe('tier.0.property');
    expect(HubspotMappingSchema.safeParse({ surprise: 1 }).success).toBe(false);
    expect(watchedTicketProperties(defaultMapping()).sort()).toEqual(['hs_language', 'hs_ticket_category', 'tierline_product']);
  });
});

const FIELDS: RoutingFields = { status: 'resolved', queue: 'VIP desk', agent: 'Alice Meyer', segment: 'enterprise · technical · de · EU', tier: 'enterprise', rule: 'enterprise', routedAt: '2026-11-02T09:00:00.000Z', topicLink: 'https://t.me/c/100/7', firstResponseMinutes: 7.5, resolvedAt: '2026-11-02T10:00:00.000Z', slaMet: true, reason: 'VIP desk -> Alice Meyer (rule enterprise)' };

const entry = (seq: number, over: Partial<HistoryEntry> = {}): HistoryEntry => ({ key: `hubspot:1:2#${seq}`, ticketKey: 'hubspot:1:2', seq, kind: 'routed', at: Date.UTC(2026, 10, 2, 9, seq), queueId: 'vip', agentId: 'alice', ruleId: 'enterprise', tier: 'enterprise', text: `Event ${seq}`, ...over });

describe('HubSpot mapper: write-back payloads', () => {
  it('writes the outcome as HubSpot property values ("" clears, booleans and numbers as strings)', () => {
    expect(outcomeProperties(FIELDS)).toEqual({
      tierline_status: 'resolved',
      tierline_queue: 'VIP desk',
      tierline_agent: 'Alice Meyer',
      tierline_segment: 'enterprise · technical · de · EU',
      tierline_tier: 'enterprise',
      tierline_rule: 'enterprise',
      tierline_routed_at: '2026-11-02T09:00:00.000Z',
      tierline_topic_link: 'https://t.me/c/100/7',
      tierline_first_response_minutes: '7.5',
      tierline_resolved_at: '2026-11-02T10:00:00.000Z',
      tierline_sla_met: 'true',
      tierline_reason: 'VIP desk -> Alice Meyer (rule enterprise)',
    });
    const waiting = outcomeProperties({ ...FIELDS, status: 'waiting', agent: null, tier: null, rule: null, topicLink: null, firstResponseMinutes: null, resolvedAt: null, slaMet: null });
    expect(waiting).toMatchObject({ tierline_agent: '', tierline_tier: '', tierline_rule: '', tierline_topic_link: '', tierline_first_response_minutes: '', tierline_resolved_at: '', tierline_sla_met: '' });
    // Every property the write-back sets is one manifest.json declares.
    expect(Object.keys(ticketProperties(FIELDS, [entry(1)])).sort()).toEqual([...HUBSPOT_MANIFEST.writes.tickets].sort());
  });

  it('keeps the history property in order and within HubSpot’s size, dropping the oldest lines first', () => {
    expect(historyText([entry(2, { kind: 'first_reply', text: 'Alice replied' }), entry(1, { text: 'Routed to VIP desk' })])).toBe('2026-11-02 09:01 UTC · routed · Routed to VIP desk\n2026-11-02 09:02 UTC · first reply · Alice replied');
    const many = Array.from({ length: 400 }, (_, i) => entry(i + 1, { text: 'x'.repeat(400) }));
    const text = historyText(many);
    expect(text.length).toBeLessThanOrEqual(HISTORY_MAX_CHARS);
    expect(text.split('\n').at(-1)).toMatch(/^2026-11-02 15:40 UTC · routed · x+$/); // the newest (09:00 + 400 min)
    expect(text.split('\n')[0]).not.toContain(' 09:01 UTC');
  });

  it('explains the decision in the note in plain words, escaped, with the idempotency marker always kept', () => {
    const wb: CrmWriteBack = { entry: entry(1, { text: 'Routed to VIP desk <urgent>', explanation: ['Tier enterprise from the CRM', 'Rule "enterprise" matched'] }), fields: { ...FIELDS, status: 'assigned', firstResponseMinutes: null, slaMet: null }, companyId: '9' };
    const body = noteBody(wb);
    expect(body).toContain('<strong>Tierline · Routed</strong>: Routed to VIP desk &lt;urgent&gt;');
    expect(body).toContain('<li>Rule &quot;enterprise&quot; matched</li>');
    expect(body).toContain('Queue: VIP desk · Agent: Alice Meyer · Tier: enterprise · Rule: enterprise');
    expect(body).toContain('<a href="https://t.me/c/100/7">');
    expect(body.endsWith(`<p><small>${noteMarker('hubspot:1:2#1')}</small></p>`)).toBe(true);
    const huge = noteBody({ ...wb, entry: { ...wb.entry, explanation: Array.from({ length: 2000 }, () => 'y'.repeat(100)) } });
    expect(huge.length).toBeLessThan(65_536);
    expect(huge).toContain(noteMarker('hubspot:1:2#1'));
  });
});
