// The sandbox held to HubSpot's documented shapes, driven through the real @hubspot/api-client: status codes and
// error bodies (401, 404, 207 multi-status, 400 VALIDATION_ERROR, the 429 body and headers), batch limits,
// associations, property definitions, the seed data, and the signatures on what it sends (checked by HubSpot's own
// Signature.isValid).
import { Client, Signature } from '@hubspot/api-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startHubspotSandbox, type HubspotSandbox } from '../../../connectors/hubspot/sandbox/index.ts';

let sb: HubspotSandbox | null = null;
afterEach(async () => {
  await sb?.close();
  sb = null;
});

const SECRET = 'sandbox-secret';
const caught = async (p: Promise<unknown>) => (await p.then(() => null, (e: unknown) => e)) as { code: number; body: Record<string, unknown>; headers: Record<string, string> };

describe('HubSpot sandbox through @hubspot/api-client', () => {
  it('seeds companies across all four tiers, with contacts, languages, countries and products', async () => {
    sb = await startHubspotSandbox({ clientSecret: SECRET, seed: true });
    const companies = sb.companies();
    expect(companies.length).toBeGreaterThanOrEqual(12);
    const icp = companies.map((c) => c.properties.hs_ideal_customer_profile ?? '');
    for (const tier of ['tier_1', 'tier_2', 'tier_3']) expect(icp).toContain(tier);
    // No ICP tier: revenue decides (including free-tier money), or nothing does (data-quality paths).
    const noTier = companies.filter((c) => !c.properties.hs_ideal_customer_profile);
    expect(noTier.some((c) => Number(c.properties.total_revenue) > 0 && Number(c.properties.total_revenue) < 1_000)).toBe(true);
    expect(noTier.some((c) => !c.properties.total_revenue && !c.properties.annualrevenue)).toBe(true);
    expect(noTier.some((c) => !c.properties.total_revenue && c.properties.annualrevenue)).toBe(true);
    expect(new Set(sb.contacts().map((c) => c.properties.hs_language)).size).toBeGreaterThanOrEqual(5);
    expect(sb.products().map((p) => p.properties.name)).toContain('API');
  });

  it('answers like HubSpot: 401 for an unknown token, 404 for a missing record, 207 for a partial batch read', async () => {
    sb = await startHubspotSandbox({ clientSecret: SECRET, seed: true });
    const bad = new Client({ accessToken: 'nope', basePath: sb.url });
    const e401 = await caught(bad.crm.tickets.basicApi.getById('1'));
    expect(e401.code).toBe(401);
    expect(e401.body).toMatchObject({ category: 'INVALID_AUTHENTICATION' });
    const api = new Client({ accessToken: sb.accessToken, basePath: sb.url });
    const e404 = await caught(api.crm.tickets.basicApi.getById('1'));
    expect(e404.code).toBe(404);
    expect(e404.body).toMatchObject({ category: 'OBJECT_NOT_FOUND', message: 'resource not found' });
    const company = sb.companies()[0]!;
    const partial = await api.crm.companies.batchApi.read({ inputs: [{ id: company.id }, { id: '42' }], properties: ['name'], propertiesWithHistory: [] });
    expect(partial.results.map((r) => r.properties.name)).toEqual([company.properties.name]);
    expect((partial as { errors?: { category: string; context: { ids: string[] } }[] }).errors![0]).toMatchObject({ category: 'OBJECT_NOT_FOUND', context: { ids: ['42'] } });
  });

  it('validates property values: unknown property, bad option, bad number; and limits batches to 100 inputs', async () => {
    sb = await startHubspotSandbox({ clientSecret: SECRET, seed: true });
    const api = new Client({ accessToken: sb.accessToken, basePath: sb.url });
    const t = await sb.createTicket({ subject: 'x', notify: false });
    const unknown = await caught(api.crm.tickets.basicApi.update(t.id, { properties: { tierline_queue: 'VIP' } }));
    expect(unknown.code).toBe(400);
    expect(unknown.body).toMatchObject({ category: 'VALIDATION_ERROR', message: expect.stringContaining('PROPERTY_DOESNT_EXIST') });
    const option = await caught(api.crm.tickets.basicApi.update(t.id, { properties: { hs_ticket_priority: 'SOMEDAY' } }));
    expect(option.body.message).toContain('INVALID_OPTION');
    const company = sb.companies()[0]!;
    const num = await caught(api.crm.companies.basicApi.update(company.id, { properties: { annualrevenue: 'lots' } }));
    expect(num.body.message).toContain('INVALID_INTEGER');
    const tooMany = await caught(api.crm.tickets.batchApi.update({ inputs: Array.from({ length: 101 }, () => ({ id: t.id, properties: { subject: 'y' } })) }));
    expect(tooMany.code).toBe(400);
  });

  it('sends the 429 body and headers of the ten-second rolling limit', async () => {
    sb = await startHubspotSandbox({ clientSecret: SECRET, rateLimit: { max: 3, windowMs: 60_000 } });
    const api = new Client({ accessToken: sb.accessToken, basePath: sb.url });
    for (let i = 0; i < 3; i++) await api.crm.properties.groupsApi.getAll('tickets');
    const e = await caught(api.crm.properties.groupsApi.getAll('tickets'));
    expect(e.code).toBe(429);
    expect(e.headers['x-hubspot-ratelimit-max']).toBe('3');
    expect(e.headers['x-hubspot-ratelimit-remaining']).toBe('0');
    const raw = await fetch(`${sb.url}/crm/v3/properties/tickets/groups`, { headers: { authorization: `Bearer ${sb.accessToken}` } });
    expect(await raw.json()).toMatchObject({ status: 'error', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING', message: 'You have reached your ten_secondly_rolling limit.' });
  });

  it('keeps associations with HubSpot’s type ids and lists them through the v4 API', async () => {
    sb = await startHubspotSandbox({ clientSecret: SECRET, seed: true });
    const api = new Client({ accessToken: sb.accessToken, basePath: sb.url });
    const t = await sb.createTicket({ subject: 'assoc', notify: false });
    const page = await api.crm.associations.v4.basicApi.getPage('tickets', t.id, 'companies');
    expect(page.results).toEqual([{ toObjectId: Number(t.companyId), associationTypes: [expect.objectContaining({ typeId: 26, label: 'Primary' }), expect.objectContaining({ typeId: 339, label: null })] }]);
    const note = await api.crm.objects.notes.basicApi.create({ properties: { hs_note_body: 'hi', hs_timestamp: new Date().toISOString() }, associations: [{ to: { id: t.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: 228 }] }] });
    expect(sb.ticket(t.id)!.notes.map((n) => n.id)).toEqual([note.id]);
    const badAssoc = await caught(api.crm.objects.notes.basicApi.create({ properties: { hs_note_body: 'x', hs_timestamp: '1' }, associations: [{ to: { id: '1' }, types: [{ associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: 228 }] }] }));
    expect(badAssoc.code).toBe(400);
  });

  it('signs webhooks and card fetches the way HubSpot does (HubSpot’s Signature.isValid agrees)', async () => {
    let seen: { url: string; body: string; headers: Headers } | null = null;
    const { serve } = await import('@hono/node-server');
    const srv = await new Promise<import('node:http').Server>((ok) => {
      const s = serve({ port: 0, hostname: '127.0.0.1', fetch: async (req) => ((seen = { url: req.url, body: await req.text(), headers: req.headers }), new Response('{}')) }, () => ok(s as import('node:http').Server));
    });
    const hook = `http://127.0.0.1:${(srv.address() as { port: number }).port}/webhooks/hubspot`;
    try {
      sb = await startHubspotSandbox({ clientSecret: SECRET, seed: true, webhookUrl: hook });
      await sb.createTicket({ subject: 'signed' });
      const s = seen!;
      expect(Signature.isValid({ signatureVersion: 'v3', method: 'POST', url: hook, requestBody: s.body, clientSecret: SECRET, signature: s.headers.get('x-hubspot-signature-v3')!, timestamp: Number(s.headers.get('x-hubspot-request-timestamp')) })).toBe(true);
      expect(Signature.isValid({ signatureVersion: 'v1', requestBody: s.body, clientSecret: SECRET, signature: s.headers.get('x-hubspot-signature')! })).toBe(true);
      const events = JSON.parse(s.body);
      expect(events[0]).toMatchObject({ subscriptionType: 'ticket.creation', portalId: Number(sb.portalId), attemptNumber: 0, changeFlag: 'CREATED' });
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((ok) => srv.close(() => ok()));
    }
  });
});
