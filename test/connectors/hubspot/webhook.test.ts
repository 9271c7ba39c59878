// POST /webhooks/hubspot at the door: bad signatures and stale timestamps get 401 and nothing is processed;
// malformed bodies get 400 with a JSON error naming the problem; only ticket creation (and, when the portal's mapping
// asks for it, changes of mapped ticket properties) become intake events; the answer comes before any routing.
import { afterEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { CLIENT_SECRET, recordingLogger, startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** POSTs a raw body to the webhook URL, signed (v3) unless told otherwise. */
async function post(x: Harness, body: string, o: { timestamp?: number; sign?: boolean; secret?: string } = {}) {
  const url = `${x.publicUrl}/webhooks/hubspot`;
  const ts = String(o.timestamp ?? x.clock.now());
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.sign !== false) {
    headers['x-hubspot-signature-v3'] = createHmac('sha256', o.secret ?? CLIENT_SECRET).update(`POST${url}${body}${ts}`).digest('base64');
    headers['x-hubspot-request-timestamp'] = ts;
  }
  const r = await fetch(url, { method: 'POST', headers, body });
  return { status: r.status, json: (await r.json()) as { error?: { code: string; message: string }; accepted?: number; duplicates?: number; ignored?: number } };
}

describe('HubSpot webhook: signatures', () => {
  it('refuses a tampered body, a wrong secret and a missing signature with 401, processing nothing', async () => {
    const logger = recordingLogger();
    h = await startHarness({ logger });
    const t = await h.sb.createTicket({ subject: 'Printer on fire', notify: false });
    const events = [h.sb.event('ticket.creation', t.id)];
    const tampered = await h.sb.sendEvents(events, { tamper: true });
    expect(tampered.status).toBe(401);
    expect(JSON.parse(tampered.text)).toEqual({ error: { code: 'unauthorized', message: expect.stringContaining('X-HubSpot-Signature-v3 does not match') } });
    expect((await post(h, JSON.stringify(events), { secret: 'not-the-secret' })).status).toBe(401);
    const unsigned = await post(h, JSON.stringify(events), { sign: false });
    expect(unsigned).toMatchObject({ status: 401, json: { error: { code: 'unauthorized', message: expect.stringContaining('not signed') } } });
    expect(h.accepted).toEqual([]);
    // The refusal is logged with its reason, never with the secret.
    expect(logger.lines.some((l) => l.includes('hubspot webhook refused'))).toBe(true);
    expect(logger.lines.join('\n')).not.toContain(CLIENT_SECRET);
  });

  it('refuses a timestamp older than five minutes (a replayed delivery) with 401', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Replay', notify: false });
    const events = [h.sb.event('ticket.creation', t.id)];
    const stale = await h.sb.sendEvents(events, { timestamp: h.clock.now() - 5 * 60_000 - 1_000 });
    expect(stale.status).toBe(401);
    expect(JSON.parse(stale.text).error.message).toMatch(/301 s old \(more than 5 minutes\)/);
    expect(h.accepted).toEqual([]);
    // The same events freshly signed go through.
    expect((await h.sb.sendEvents(events)).status).toBe(200);
    expect(h.accepted).toHaveLength(1);
  });

  it('answers 503 (so HubSpot retries) when no client secret is configured, instead of trusting unsigned calls', async () => {
    h = await startHarness({ clientSecret: null });
    const r = await post(h, '[]', { sign: false });
    expect(r).toMatchObject({ status: 503, json: { error: { code: 'misconfigured', message: expect.stringContaining('HUBSPOT_CLIENT_SECRET') } } });
  });
});

describe('HubSpot webhook: bodies', () => {
  const valid = { eventId: 1, subscriptionId: 2, portalId: 3, occurredAt: 4, subscriptionType: 'ticket.creation', objectId: 5 };
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"eventId": 1', /not JSON/],
    ['an object instead of an array', JSON.stringify(valid), /JSON array/],
    ['an empty batch', '[]', /batch is empty/],
    ['an event without objectId', JSON.stringify([{ ...valid, objectId: undefined }]), /event 0\.objectId/],
    ['a non-numeric portal id', JSON.stringify([valid, { ...valid, portalId: 'acme' }]), /event 1\.portalId/],
    ['101 events', JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ ...valid, eventId: i }))), /at most 100 events/],
  ];
  for (const [name, body, message] of cases) {
    it(`answers 400 with a JSON error for ${name}`, async () => {
      h ??= await startHarness();
      const r = await post(h, body);
      expect(r.status).toBe(400);
      expect(r.json.error!.code).toBe('invalid_input');
      expect(r.json.error!.message).toMatch(message);
      expect(r.json.error!.message).toContain('Nothing was processed');
      expect(h.accepted).toEqual([]);
    });
  }
});

describe('HubSpot webhook: which events route', () => {
  it('turns ticket creation (legacy and generic object.creation 0-5) into intake events and ignores the rest', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'One', notify: false });
    const u = await h.sb.createTicket({ subject: 'Two', notify: false });
    const company = h.company('Initech');
    const batch = [
      h.sb.event('ticket.creation', t.id),
      h.sb.event('object.creation', u.id, { objectTypeId: '0-5' } as never),
      h.sb.event('company.creation', company.id),
      h.sb.event('object.creation', company.id, { objectTypeId: '0-2' } as never),
      h.sb.event('ticket.deletion', t.id),
      h.sb.event('ticket.propertyChange', t.id, { propertyName: 'hs_ticket_category', propertyValue: 'BILLING_ISSUE' }),
      h.sb.event('ticket.creation', t.id, { appId: 999 }),
    ];
    const d = await h.sb.sendEvents(batch);
    expect(d.status).toBe(200);
    expect(JSON.parse(d.text)).toEqual({ accepted: 2, duplicates: 0, ignored: 5 });
    expect(h.accepted.map((e) => [e.ref, e.reason])).toEqual([
      [{ crm: 'hubspot', account: h.sb.portalId, ticketId: t.id }, 'created'],
      [{ crm: 'hubspot', account: h.sb.portalId, ticketId: u.id }, 'created'],
    ]);
  });

  it('routes on property changes of mapped ticket properties only when the portal mapping turns it on', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Category later', notify: false });
    const change = (prop: string) => h!.sb.event('ticket.propertyChange', t.id, { propertyName: prop, propertyValue: 'x' });
    expect(JSON.parse((await h.sb.sendEvents([change('hs_ticket_category')])).text)).toMatchObject({ accepted: 0, ignored: 1 });
    await h.connector.mappings.put(h.sb.portalId, { webhooks: { propertyChange: true } });
    const d = await h.sb.sendEvents([change('hs_ticket_category'), change('hs_ticket_priority'), change('tierline_queue')]);
    // Mapped ticket properties by default: hs_ticket_category, tierline_product, hs_language. Our own writes never count.
    expect(JSON.parse(d.text)).toMatchObject({ accepted: 1, ignored: 2 });
    expect(h.accepted.map((e) => e.reason)).toEqual(['changed']);
  });

  it('counts a redelivery as a duplicate: the key is portal + subscription + eventId, stable across attempts', async () => {
    h = await startHarness();
    await h.sb.createTicket({ subject: 'Twice' });
    const again = await h.sb.redeliver(h.sb.deliveries()[0]!);
    expect(JSON.parse(again.text)).toEqual({ accepted: 0, duplicates: 1, ignored: 0 });
    expect(new Set(h.accepted.map((e) => e.idempotencyKey)).size).toBe(1);
  });

  it('answers 503 when the intake cannot store the events, so HubSpot delivers them again', async () => {
    h = await startHarness({ intake: { accept: async () => Promise.reject(new Error('disk full')) } });
    const d = await h.sb.createTicket({ subject: 'Lost?' });
    expect(d.delivery!.status).toBe(503);
    expect(JSON.parse(d.delivery!.text).error.code).toBe('upstream');
  });
});
