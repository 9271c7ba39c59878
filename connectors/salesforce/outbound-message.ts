// Salesforce Outbound Messages: the SOAP notification a Flow (or workflow rule) posts when a Case is created, the
// exact Ack that stops Salesforce's 24-hour retries, and the SOAP 1.1 fault for everything we refuse. The parser is
// deliberately strict: no DOCTYPE, no entity declarations (hostile XML is refused before parsing), 1..100
// notifications, every id a well-formed Salesforce id.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import { isSalesforceId, to18 } from './ids.ts';

export const OUTBOUND_NS = 'http://soap.sforce.com/2005/09/outbound';
export const MAX_NOTIFICATIONS = 100;

export type OutboundNotification = {
  /** The Notification Id: the same on every retry of one notification, so it is our idempotency key. */
  id: string;
  objectType: string;
  recordId: string;
  fields: Record<string, string | null>;
};

export type OutboundMessage = {
  orgId: string;
  actionId: string | null;
  enterpriseUrl: string | null;
  notifications: OutboundNotification[];
};

export type ParseResult = { ok: true; message: OutboundMessage } | { ok: false; reason: string };

// One parse, with prefixes kept: the namespace check needs them, and the shape check reads the same tree without them
// (withoutPrefixes). Parsing once matters on the webhook's answer: each notification arrives seconds apart, so the
// parser runs cold, at about a millisecond a pass.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: false,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 20,
  isArray: (name, jpath) => {
    if (localOf(name) !== 'Notification') return false;
    const path = String(jpath).split('.');
    return path.length >= 2 && localOf(path[path.length - 2]!) === 'notifications';
  },
});

type El = Record<string, unknown>;
const isEl = (v: unknown): v is El => typeof v === 'object' && v !== null && !Array.isArray(v);
function prefixOf(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? '' : name.slice(0, i);
}
function localOf(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

/** The tree as the shape check reads it: element and attribute names without prefixes, no xmlns declarations. */
function withoutPrefixes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutPrefixes);
  if (!isEl(v)) return v;
  const out: El = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '@_xmlns' || k.startsWith('@_xmlns:')) continue;
    out[k.startsWith('@_') ? `@_${localOf(k.slice(2))}` : localOf(k)] = withoutPrefixes(x);
  }
  return out;
}

/** The namespace an element name resolves to, looking up its prefix in the element and its ancestors (innermost first). */
function nsOf(name: string, scopes: El[]): string | null {
  const attr = prefixOf(name) ? `@_xmlns:${prefixOf(name)}` : '@_xmlns';
  for (const el of scopes) if (typeof el[attr] === 'string') return el[attr] as string;
  return null;
}

function child(el: El, local: string): [string, El] | null {
  for (const [k, v] of Object.entries(el)) if (!k.startsWith('@_') && localOf(k) === local && isEl(v)) return [k, v];
  return null;
}

/**
 * Why the envelope or the notifications element is in the wrong namespace, or null when both are right. Without this
 * check, reading names without prefixes would let a SOAP 1.2 envelope or a <notifications> of any other namespace
 * through as if it were Salesforce's.
 */
function namespaceProblem(doc: El): string | null {
  const env = child(doc, 'Envelope');
  if (!env) return null; // the shape check names a missing envelope
  if (nsOf(env[0], [env[1]]) !== SOAP_ENV) return `the envelope is not SOAP 1.1 (namespace ${String(nsOf(env[0], [env[1]])).slice(0, 80)}; Salesforce sends ${SOAP_ENV})`;
  const body = child(env[1], 'Body');
  if (!body) return null;
  const notes = child(body[1], 'notifications');
  if (!notes) return null;
  const ns = nsOf(notes[0], [notes[1], body[1], env[1]]);
  if (ns !== OUTBOUND_NS) return `<notifications> is in namespace ${String(ns).slice(0, 80)}, not ${OUTBOUND_NS}`;
  return null;
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes the five predefined entities and character references; nothing else exists without a DTD. */
function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);/gi, (all, e: string) => {
    if (e[0] !== '#') return PREDEFINED[e.toLowerCase()] ?? all;
    const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
  });
}

const SfId = z.string().refine(isSalesforceId, 'not a Salesforce id');
const Text = z.union([z.string(), z.object({}).passthrough()]);

const NotificationSchema = z.object({
  Id: SfId,
  sObject: z.record(z.string(), z.unknown()).refine((o) => isSalesforceId(o.Id), 'sObject without a valid Id'),
});

const EnvelopeSchema = z.object({
  Envelope: z.object({
    Body: z.object({
      notifications: z.object({
        OrganizationId: SfId,
        ActionId: Text.optional(),
        EnterpriseUrl: Text.optional(),
        Notification: z.array(NotificationSchema).min(1, 'no Notification elements').max(MAX_NOTIFICATIONS, `more than ${MAX_NOTIFICATIONS} notifications`),
      }),
    }),
  }),
});

const textOf = (v: unknown): string | null => (typeof v === 'string' ? decode(v) : null);

export function parseOutboundMessage(xml: string): ParseResult {
  if (!xml.trim()) return { ok: false, reason: 'empty request body; expected a SOAP envelope with <notifications>' };
  // Entity expansion (billion laughs) and external entities need a DTD; refusing any DTD closes both doors.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return { ok: false, reason: 'DOCTYPE and entity declarations are not accepted' };
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) return { ok: false, reason: `malformed XML: ${valid.err.msg} (line ${valid.err.line})` };
  let raw: El;
  try {
    raw = parser.parse(xml) as El;
  } catch (err) {
    return { ok: false, reason: `malformed XML: ${err instanceof Error ? err.message : String(err)}` };
  }
  const nsProblem = namespaceProblem(raw);
  if (nsProblem) return { ok: false, reason: `not a Salesforce outbound message: ${nsProblem}` };
  const parsed = EnvelopeSchema.safeParse(withoutPrefixes(raw));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `not a Salesforce outbound message: ${issue ? `${issue.path.join('.') || 'envelope'}: ${issue.message}` : 'unexpected shape'}` };
  }
  const n = parsed.data.Envelope.Body.notifications;
  const notifications: OutboundNotification[] = [];
  for (const x of n.Notification) {
    const type = String(x.sObject['@_type'] ?? '').replace(/^.*:/, '');
    const fields: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(x.sObject)) {
      if (k.startsWith('@_')) continue;
      fields[k] = textOf(v);
    }
    notifications.push({ id: to18(x.Id), objectType: type, recordId: to18(String(x.sObject.Id)), fields });
  }
  return { ok: true, message: { orgId: to18(n.OrganizationId), actionId: textOf(n.ActionId), enterpriseUrl: textOf(n.EnterpriseUrl), notifications } };
}

const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';

/** The acknowledgement Salesforce requires; anything else (or a timeout) makes it retry. */
export const ACK_XML =
  `<?xml version="1.0" encoding="UTF-8"?>` +
  `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}">` +
  `<soapenv:Body><notificationsResponse xmlns="${OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse></soapenv:Body>` +
  `</soapenv:Envelope>`;

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A SOAP 1.1 fault (sent with HTTP 500). Client = the message is wrong; Server = try again later. */
export function faultXml(code: 'Client' | 'Server', message: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}"><soapenv:Body><soapenv:Fault>` +
    `<faultcode>soapenv:${code}</faultcode><faultstring>${escapeXml(message)}</faultstring>` +
    `</soapenv:Fault></soapenv:Body></soapenv:Envelope>`
  );
}

/** Builds an outbound message as Salesforce sends it (used by the sandbox and the tests). */
export function buildOutboundMessage(m: { orgId: string; actionId: string; instanceUrl: string; notifications: { id: string; type: string; fields: Record<string, string | number | null> }[] }): string {
  const notes = m.notifications
    .map((n) => {
      const fields = Object.entries(n.fields)
        .map(([k, v]) => (v === null ? `<sf:${k} xsi:nil="true"/>` : `<sf:${k}>${escapeXml(String(v))}</sf:${k}>`))
        .join('');
      return `<Notification><Id>${n.id}</Id><sObject xsi:type="sf:${n.type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">${fields}</sObject></Notification>`;
    })
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
    `<soapenv:Body><notifications xmlns="${OUTBOUND_NS}">` +
    `<OrganizationId>${m.orgId}</OrganizationId><ActionId>${m.actionId}</ActionId><SessionId xsi:nil="true"/>` +
    `<EnterpriseUrl>${escapeXml(`${m.instanceUrl}/services/Soap/c/62.0/${m.orgId.slice(0, 15)}`)}</EnterpriseUrl>` +
    `<PartnerUrl>${escapeXml(`${m.instanceUrl}/services/Soap/u/62.0/${m.orgId.slice(0, 15)}`)}</PartnerUrl>` +
    notes +
    `</notifications></soapenv:Body></soapenv:Envelope>`
  );
}
