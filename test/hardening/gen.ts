// fast-check generators of hostile input shared by the hardening suites: arbitrary JSON, deep nesting, oversized
// strings, prototype-pollution keys, and valid platform payloads with exactly one thing broken (so every generated
// request is invalid by construction and must be refused).
import fc from 'fast-check';
import { to18 } from '../../connectors/salesforce/ids.ts';
import { buildOutboundMessage, OUTBOUND_NS } from '../../connectors/salesforce/outbound-message.ts';

export const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 12 }), tie('value'), { maxKeys: 6 }),
  ),
})).value;

/** Values of the wrong type for an id or a number field (never a valid numeric id). */
export const wrongScalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double({ noInteger: true }),
  fc.integer({ max: -1 }),
  fc.string({ maxLength: 30 }).filter((s) => !/^\d{1,20}$/.test(s)),
  fc.constant('1'.repeat(25)),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant({ $gt: '' }),
  fc.constant('__proto__'),
);

/** Raw bodies that are not what any endpoint expects. */
export const junkBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.integer({ min: 50, max: 5000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 50, max: 3000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.constant('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}'),
  jsonValue.map((v) => JSON.stringify(v) ?? 'null'),
  fc.constant(''),
  fc.constant('null'),
);

export type Mutation<T> = { name: string; apply: (v: T) => unknown };

/** A valid HubSpot webhook event (the shape HubSpot sends). */
export function hubspotEvent(portalId: string, i: number, appId = 1): Record<string, unknown> {
  return { eventId: 1000 + i, subscriptionId: 77, portalId: Number(portalId), appId, occurredAt: 1_700_000_000_000, subscriptionType: 'ticket.creation', attemptNumber: 0, objectId: 900 + i, changeFlag: 'NEW', changeSource: 'CRM' };
}

const REQUIRED_EVENT_KEYS = ['eventId', 'subscriptionId', 'portalId', 'occurredAt', 'subscriptionType', 'objectId'];

/** Webhook batches with exactly one defect: a missing or wrongly typed required field, too many events, not an array. */
export function badWebhookBatch(portalId: string): fc.Arbitrary<{ why: string; body: string }> {
  const event = fc.integer({ min: 0, max: 1000 }).map((i) => hubspotEvent(portalId, i));
  const brokenEvent = fc.oneof(
    fc.tuple(event, fc.constantFrom(...REQUIRED_EVENT_KEYS)).map(([e, k]) => ({ why: `missing ${k}`, e: Object.fromEntries(Object.entries(e).filter(([x]) => x !== k)) })),
    fc.tuple(event, fc.constantFrom(...REQUIRED_EVENT_KEYS.filter((k) => k !== 'subscriptionType')), wrongScalar).map(([e, k, v]) => ({ why: `${k} wrong type`, e: { ...e, [k]: v } })),
    fc.tuple(event, fc.oneof(fc.constant(''), fc.constant('x'.repeat(101)), fc.integer(), fc.constant(null))).map(([e, v]) => ({ why: 'subscriptionType invalid', e: { ...e, subscriptionType: v } })),
    fc.tuple(event, fc.constantFrom('propertyName', 'changeSource', 'changeFlag', 'objectTypeId'), fc.oneof(fc.integer(), fc.constant('y'.repeat(300)), fc.constant({}))).map(([e, k, v]) => ({ why: `${k} invalid`, e: { ...e, [k]: v } })),
    fc.tuple(event, fc.oneof(fc.double({ noInteger: true }), fc.integer({ max: -1 }), fc.string({ maxLength: 8 }))).map(([e, v]) => ({ why: 'occurredAt invalid', e: { ...e, occurredAt: v } })),
  );
  return fc.oneof(
    fc.tuple(fc.array(event, { maxLength: 5 }), brokenEvent, fc.array(event, { maxLength: 5 })).map(([a, b, c]) => ({ why: b.why, body: JSON.stringify([...a, b.e, ...c]) })),
    fc.integer({ min: 101, max: 400 }).map((n) => ({ why: 'too many events', body: JSON.stringify(Array.from({ length: n }, (_, i) => hubspotEvent(portalId, i))) })),
    fc.constant({ why: 'empty batch', body: '[]' }),
    event.map((e) => ({ why: 'an object, not an array', body: JSON.stringify(e) })),
    fc.array(fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.array(fc.integer())), { minLength: 1, maxLength: 5 }).map((a) => ({ why: 'array of non-objects', body: JSON.stringify(a) })),
    junkBody.filter((b) => !/^\s*\[\s*\{/.test(b)).map((b) => ({ why: 'junk', body: b })),
    fc.integer({ min: 200, max: 2000 }).map((d) => ({ why: 'deep nesting inside an event', body: JSON.stringify([{ ...hubspotEvent(portalId, 1), objectId: JSON.parse('['.repeat(d) + ']'.repeat(d)) }]) })),
  );
}

/** A valid workflow action request (v4 shape). */
export function actionRequest(portalId: string, ticketId: string): Record<string, unknown> {
  return { callbackId: `ap-1-2-3-${ticketId}`, origin: { portalId: Number(portalId), actionDefinitionId: 91_000_001, actionDefinitionVersion: 1 }, context: { source: 'WORKFLOWS', workflowId: 5 }, object: { objectId: Number(ticketId), objectType: 'TICKET' }, inputFields: {} };
}

export function badActionRequest(portalId: string): fc.Arbitrary<{ why: string; body: string }> {
  const base = fc.integer({ min: 1, max: 10_000 }).map((t) => actionRequest(portalId, String(t)));
  return fc.oneof(
    fc.tuple(base, fc.constantFrom('callbackId', 'origin', 'object')).map(([b, k]) => ({ why: `missing ${k}`, body: JSON.stringify(Object.fromEntries(Object.entries(b).filter(([x]) => x !== k))) })),
    fc.tuple(base, fc.oneof(fc.constant(''), fc.constant('c'.repeat(201)), fc.integer(), fc.constant(null), fc.array(fc.string()))).map(([b, v]) => ({ why: 'callbackId invalid', body: JSON.stringify({ ...b, callbackId: v }) })),
    fc.tuple(base, wrongScalar).map(([b, v]) => ({ why: 'origin.portalId invalid', body: JSON.stringify({ ...b, origin: { portalId: v } }) })),
    fc.tuple(base, wrongScalar).map(([b, v]) => ({ why: 'object.objectId invalid', body: JSON.stringify({ ...b, object: { objectId: v, objectType: 'TICKET' } }) })),
    fc.tuple(base, fc.oneof(fc.constant('CONTACT'), fc.constant('0-1'), fc.constant('COMPANY'), fc.constant(''), fc.constant('t'.repeat(41)), fc.integer())).map(([b, v]) => ({ why: 'object.objectType not a ticket', body: JSON.stringify({ ...b, object: { objectId: 5, objectType: v } }) })),
    fc.tuple(base, jsonValue.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v))).map(([b, v]) => ({ why: 'inputFields not a record', body: JSON.stringify({ ...b, inputFields: v ?? 1 }) })),
    junkBody.filter((b) => !/^\s*\{\s*"callbackId"/.test(b)).map((b) => ({ why: 'junk', body: b })),
  );
}

/** Card request query strings, each with at least one invalid parameter. */
export function badCardQuery(portalId: string): fc.Arbitrary<{ why: string; query: Record<string, string> }> {
  const bad = fc.oneof(fc.constant(''), fc.string({ maxLength: 30 }).filter((s) => !/^\d{1,20}$/.test(s)), fc.constant('1'.repeat(31)), fc.constant('-1'), fc.constant('1e9'), fc.constant('<script>'));
  const badType = fc.oneof(fc.constant(''), fc.constant('contact'), fc.constant('deal'), fc.string({ maxLength: 20 }).filter((s) => !['ticket', 'tickets', '0-5', 'company', 'companies', '0-2'].includes(s.toLowerCase())));
  return fc.oneof(
    bad.map((v) => ({ why: 'portalId', query: { portalId: v, objectType: 'ticket', objectId: '5' } })),
    badType.map((v) => ({ why: 'objectType', query: { portalId, objectType: v, objectId: '5' } })),
    bad.map((v) => ({ why: 'objectId', query: { portalId, objectType: 'company', objectId: v } })),
    fc.constant({ why: 'nothing', query: {} as Record<string, string> }),
  );
}

/** A valid Outbound Message for a Case, as Salesforce sends it. */
export function outboundMessage(orgId: string, caseId: string, n = 1): string {
  return buildOutboundMessage({
    orgId,
    actionId: to18('04kTL0000000001'),
    instanceUrl: 'https://example.my.salesforce.com',
    notifications: Array.from({ length: n }, (_, i) => ({ id: to18(`04lTX${String(i + 1).padStart(10, '0')}`), type: 'Case', fields: { Id: caseId } })),
  });
}

/** SOAP bodies with one defect each, including the classic XML attacks. */
export function badSoap(orgId: string, caseId: string): fc.Arbitrary<{ why: string; body: string }> {
  const valid = outboundMessage(orgId, caseId);
  const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>';
  const afterDecl = (doc: string, insert: string) => doc.replace(/^(<\?xml[^>]*\?>)?/, (m) => `${m}${insert}`);
  return fc.oneof(
    fc.constant({ why: 'billion laughs', body: afterDecl(valid.replace(/^<\?xml[^>]*\?>/, ''), laughs).replace('<sf:Id>', '<sf:Id>&lol4;') }),
    fc.constantFrom('file:///etc/passwd', 'http://169.254.169.254/latest/meta-data/', 'file:///proc/self/environ').map((u) => ({ why: 'XXE', body: afterDecl(valid, `<!DOCTYPE x [<!ENTITY xxe SYSTEM "${u}">]>`).replace('<sf:Id>', '<sf:Id>&xxe;') })),
    fc.constant({ why: 'DOCTYPE', body: afterDecl(valid, '<!DOCTYPE soapenv:Envelope>') }),
    fc.constant({ why: 'parameter entity', body: afterDecl(valid, '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>') }),
    fc.constantFrom('http://example.com/evil', 'http://soap.sforce.com/2005/09/outbound-evil', '').map((ns) => ({ why: 'wrong namespace', body: valid.split(OUTBOUND_NS).join(ns) })),
    fc.constant({ why: 'wrong envelope namespace', body: valid.replace('http://schemas.xmlsoap.org/soap/envelope/', 'http://www.w3.org/2003/05/soap-envelope') }),
    fc.oneof(fc.constant(''), fc.constant('00Dxx'), fc.constant('00D' + 'x'.repeat(40)), fc.string({ maxLength: 18 }), fc.constant('00DTL0000000002AAA')).map((o) => ({ why: 'bad or foreign org id', body: valid.split(orgId).join(o.replace(/[<&]/g, '')) })),
    fc.oneof(fc.constant(''), fc.constant('500'), fc.string({ maxLength: 18 }).map((s) => s.replace(/[<&]/g, '')).filter((s) => !/^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/.test(s)), fc.constant('500TL0000001!z0YAA'), fc.constant('500TL00000015z0YAAB')).map((id) => ({ why: 'bad Case id', body: valid.split(caseId).join(id) })),
    fc.constant({ why: 'not a Case', body: valid.replace('xsi:type="sf:Case"', 'xsi:type="sf:Account"') }),
    fc.integer({ min: 101, max: 200 }).map((n) => ({ why: 'too many notifications', body: outboundMessage(orgId, caseId, n) })),
    fc.integer({ min: 0, max: valid.length - 1 }).map((cut) => ({ why: 'truncated', body: valid.slice(0, cut) })),
    fc.integer({ min: 25, max: 2000 }).map((d) => ({ why: 'deep nesting', body: valid.replace('<sf:Id>', `${'<a>'.repeat(d)}x${'</a>'.repeat(d)}<sf:Id>`) })),
    // Large but under the 1 MB limit, so the parser reads it all before refusing the foreign org.
    fc.integer({ min: 1, max: 3 }).map((k) => ({ why: 'huge document', body: valid.split(orgId).join(to18('00DTL0000000002')).replace('<sf:Id>', `<sf:Description>${'A'.repeat(k * 300_000)}</sf:Description><sf:Id>`) })),
    fc.constant({ why: 'oversized (over 1 MB)', body: valid.replace('<sf:Id>', `<sf:Description>${'B'.repeat(1_100_000)}</sf:Description><sf:Id>`) }),
    fc.constant({ why: 'JSON body', body: JSON.stringify({ orgId, caseId }) }),
    junkBody.map((b) => ({ why: 'junk', body: b })),
  );
}
