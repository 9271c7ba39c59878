// POST /webhooks/salesforce: what the endpoint accepts, what it refuses (SOAP fault, HTTP 500, nothing processed),
// and that the Ack comes only after the intake has stored the notifications.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntakeEvent } from '../../../core/ports.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { ACK_XML, buildOutboundMessage, parseOutboundMessage } from '../../../connectors/salesforce/outbound-message.ts';
import { startHarness, type Harness } from './harness.ts';

const FOREIGN_ORG = to18('00D5g000004Sbx1');
const note = (i: number, caseId = to18(`500TL${String(i).padStart(10, '0')}`)) => ({ id: to18(`04lTL${String(9000 + i).padStart(10, '0')}`), type: 'Case', fields: { Id: caseId, CaseNumber: String(1000 + i).padStart(8, '0') } as Record<string, string | null> & { Id: string } });

describe('Salesforce outbound message parser', () => {
  it('reads a notification as Salesforce sends it, entities decoded', () => {
    const xml = buildOutboundMessage({ orgId: FOREIGN_ORG, actionId: to18('04kTL0000000001'), instanceUrl: 'https://acme.my.salesforce.com', notifications: [{ ...note(1), fields: { ...note(1).fields, Subject: 'Fish & "chips" <urgent>', Description: null } }] });
    const r = parseOutboundMessage(xml);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.orgId).toBe(FOREIGN_ORG);
    expect(r.message.notifications).toEqual([{ id: note(1).id, objectType: 'Case', recordId: note(1).fields.Id, fields: { Id: note(1).fields.Id, CaseNumber: '00001001', Subject: 'Fish & "chips" <urgent>', Description: null } }]);
  });

  it('accepts 15-character ids and answers with 18-character ones', () => {
    const xml = buildOutboundMessage({ orgId: FOREIGN_ORG.slice(0, 15), actionId: 'x', instanceUrl: 'https://x', notifications: [{ id: note(1).id.slice(0, 15), type: 'Case', fields: { Id: note(1).fields.Id.slice(0, 15) } }] });
    const r = parseOutboundMessage(xml);
    expect(r.ok && r.message.orgId).toBe(FOREIGN_ORG);
    expect(r.ok && r.message.notifications[0]!.recordId).toBe(note(1).fields.Id);
  });

  it.each([
    ['an empty body', ''],
    ['plain text', 'hello'],
    ['unclosed tags', '<soapenv:Envelope><soapenv:Body>'],
    ['JSON', '{"notifications":[]}'],
    ['a billion-laughs DTD', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><notifications>&lol2;</notifications>'],
    ['an external entity', '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>'],
    ['a notification without an id', buildOutboundMessage({ orgId: FOREIGN_ORG, actionId: 'a', instanceUrl: 'https://x', notifications: [note(1)] }).replace(/<Notification><Id>[^<]+<\/Id>/, '<Notification>')],
    ['a malformed record id', buildOutboundMessage({ orgId: FOREIGN_ORG, actionId: 'a', instanceUrl: 'https://x', notifications: [{ ...note(1), fields: { Id: "500'; DROP" } }] })],
    ['no notifications', buildOutboundMessage({ orgId: FOREIGN_ORG, actionId: 'a', instanceUrl: 'https://x', notifications: [] })],
    ['101 notifications', buildOutboundMessage({ orgId: FOREIGN_ORG, actionId: 'a', instanceUrl: 'https://x', notifications: Array.from({ length: 101 }, (_, i) => note(i)) })],
  ])('refuses %s', (_name, body) => {
    const r = parseOutboundMessage(body);
    expect(r.ok).toBe(false);
  });
});

describe('POST /webhooks/salesforce', () => {
  let h: Harness;
  const stored: IntakeEvent[][] = [];
  let failIntake = false;
  let releaseIntake: (() => void) | null = null;
  beforeAll(async () => {
    h = await startHarness({
      intake: {
        async accept(events) {
          if (failIntake) throw new Error('database unavailable');
          if (releaseIntake === null) {
            // Holds the first call until the test says so: the Ack must wait for durable storage.
            await new Promise<void>((ok) => (releaseIntake = ok));
          }
          stored.push(events);
          return { accepted: events.length, duplicates: 0 };
        },
      },
    });
  });
  afterAll(() => h.close());

  const message = (orgId: string, notes: ReturnType<typeof note>[]) => buildOutboundMessage({ orgId, actionId: to18('04kTL0000000001'), instanceUrl: h.sb.url, notifications: notes });

  it('acknowledges with the exact SOAP Ack only after the intake has stored the notifications', async () => {
    let answered = false;
    const pending = h.postWebhook(message(h.sb.orgId, [note(1), note(2)])).then((r) => ((answered = true), r));
    for (let i = 0; i < 100 && !releaseIntake; i++) await new Promise((ok) => setTimeout(ok, 5));
    expect(releaseIntake).not.toBeNull();
    expect(answered).toBe(false);
    releaseIntake!();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/xml/);
    expect(r.text).toBe(ACK_XML);
    expect(r.text).toContain('<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>');
    expect(stored.at(-1)!.map((e) => [e.idempotencyKey, e.ref.ticketId, e.reason])).toEqual([
      [`salesforce:om:${h.sb.orgId}:${note(1).id}`, note(1).fields.Id, 'created'],
      [`salesforce:om:${h.sb.orgId}:${note(2).id}`, note(2).fields.Id, 'created'],
    ]);
    expect(stored.at(-1)![0]!.ref.account).toBe(h.sb.orgId);
  });

  it('refuses a foreign org with a SOAP fault and processes nothing', async () => {
    const before = stored.length;
    const r = await h.postWebhook(message(FOREIGN_ORG, [note(3)]));
    expect(r.status).toBe(500);
    expect(r.text).toContain('<faultcode>soapenv:Client</faultcode>');
    expect(r.text).toContain(`Organization ${FOREIGN_ORG} is not configured in Tierline: add it to SALESFORCE_ORG_IDS`);
    expect(stored.length).toBe(before);
  });

  it.each([
    ['malformed XML', '<soapenv:Envelope><notifications>', 'malformed XML'],
    ['a DOCTYPE (entity expansion)', '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', 'DOCTYPE and entity declarations are not accepted'],
    ['a SOAP message that is not an outbound message', '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><login/></soapenv:Body></soapenv:Envelope>', 'not a Salesforce outbound message'],
  ])('refuses %s with a SOAP fault, nothing processed', async (_n, body, reason) => {
    const before = stored.length;
    const r = await h.postWebhook(body);
    expect(r.status).toBe(500);
    expect(r.contentType).toMatch(/^text\/xml/);
    expect(r.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><soapenv:Envelope xmlns:soapenv="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client<\/faultcode>/);
    expect(r.text).toContain(reason);
    expect(r.text).toContain('Nothing was processed');
    expect(stored.length).toBe(before);
  });

  it('refuses an outbound message for another object', async () => {
    const before = stored.length;
    const r = await h.postWebhook(buildOutboundMessage({ orgId: h.sb.orgId, actionId: 'a', instanceUrl: h.sb.url, notifications: [{ id: note(4).id, type: 'Lead', fields: { Id: to18('00QTL0000000001') } }] }));
    expect(r.status).toBe(500);
    expect(r.text).toContain('carries a Lead');
    expect(stored.length).toBe(before);
  });

  it('answers a Server fault (so Salesforce retries) when the intake cannot store', async () => {
    failIntake = true;
    try {
      const r = await h.postWebhook(message(h.sb.orgId, [note(5)]));
      expect(r.status).toBe(500);
      expect(r.text).toContain('<faultcode>soapenv:Server</faultcode>');
      expect(r.text).toContain('Salesforce will retry');
    } finally {
      failIntake = false;
    }
  });

  it('marks a notification of an edited Case as a change', async () => {
    const r = await h.postWebhook(message(h.sb.orgId, [{ ...note(6), fields: { ...note(6).fields, CreatedDate: '2026-11-02T08:00:00.000Z', LastModifiedDate: '2026-11-02T08:30:00.000Z' } }]));
    expect(r.status).toBe(200);
    expect(stored.at(-1)![0]).toMatchObject({ reason: 'changed', at: Date.parse('2026-11-02T08:30:00.000Z') });
  });
});
