// Salesforce Outbound Messages: the SOAP notification a Flow (or workflow rule) posts when a Case is created, the
// exact Ack that stops Salesforce's 24-hour retries, and the SOAP 1.1 fault for everything we refuse. The reading is
// deliberately strict: well-formed XML only (strict-xml.ts: no DOCTYPE, no entity declarations), SOAP 1.1 and
// Salesforce's outbound namespace, 1..100 notifications, every id a well-formed Salesforce id.
import { isSalesforceId, to18 } from './ids.ts';
import { readXml, XmlError, type XmlElement } from './strict-xml.ts';

export const OUTBOUND_NS = 'http://soap.sforce.com/2005/09/outbound';
const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
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

const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

/** The first child element with this local name (children of a Salesforce element share its namespace or none). */
const childOf = (el: XmlElement, local: string) => el.children.find((c) => c.local === local);
/** An element's text, or null when it is absent, nil, or structured (a compound field such as an address). */
function textOf(el: XmlElement | undefined): string | null {
  if (!el || el.children.length || el.attr(XSI_NS, 'nil') === 'true') return null;
  return el.text;
}

export function parseOutboundMessage(xml: string): ParseResult {
  if (!xml.trim()) return { ok: false, reason: 'empty request body; expected a SOAP envelope with <notifications>' };
  let doc: XmlElement;
  try {
    doc = readXml(xml);
  } catch (err) {
    if (!(err instanceof XmlError)) throw err;
    // A DOCTYPE is refused before anything is read: entity expansion (billion laughs) and external entities need one.
    return { ok: false, reason: err.message.startsWith('DOCTYPE') ? err.message : `malformed XML: ${err.message}` };
  }
  const wrong = (why: string): ParseResult => ({ ok: false, reason: `not a Salesforce outbound message: ${why}` });
  // Names are matched by namespace where Salesforce's schema fixes it (a SOAP 1.2 envelope, or a <notifications> of
  // another service, is refused), and by local name inside <notifications>, whose children inherit its namespace.
  if (doc.local !== 'Envelope') return wrong(`the document is a <${doc.name}>, not a SOAP envelope`);
  if (doc.ns !== SOAP_ENV) return wrong(`the envelope is not SOAP 1.1 (namespace ${doc.ns.slice(0, 80) || 'none'}; Salesforce sends ${SOAP_ENV})`);
  const body = doc.children.find((c) => c.local === 'Body' && c.ns === SOAP_ENV);
  if (!body) return wrong('the envelope has no SOAP Body');
  const notes = childOf(body, 'notifications');
  if (!notes) return wrong('the SOAP Body carries no <notifications>');
  if (notes.ns !== OUTBOUND_NS) return wrong(`<notifications> is in namespace ${notes.ns.slice(0, 80) || 'none'}, not ${OUTBOUND_NS}`);
  const orgId = textOf(childOf(notes, 'OrganizationId'));
  if (orgId === null || !isSalesforceId(orgId)) return wrong('OrganizationId: not a Salesforce id');
  const items = notes.children.filter((c) => c.local === 'Notification');
  if (!items.length) return wrong('no Notification elements');
  if (items.length > MAX_NOTIFICATIONS) return wrong(`more than ${MAX_NOTIFICATIONS} notifications`);
  const notifications: OutboundNotification[] = [];
  for (const [i, item] of items.entries()) {
    const id = textOf(childOf(item, 'Id'));
    if (id === null || !isSalesforceId(id)) return wrong(`Notification ${i + 1}: Id: not a Salesforce id`);
    const sObject = childOf(item, 'sObject');
    if (!sObject) return wrong(`Notification ${i + 1}: no sObject`);
    const fields: Record<string, string | null> = {};
    for (const f of sObject.children) fields[f.local] = textOf(f);
    const recordId = fields.Id;
    if (typeof recordId !== 'string' || !isSalesforceId(recordId)) return wrong(`Notification ${i + 1}: sObject without a valid Id`);
    const type = (sObject.attr(XSI_NS, 'type') ?? '').replace(/^.*:/, '');
    notifications.push({ id: to18(id), objectType: type, recordId: to18(recordId), fields });
  }
  return { ok: true, message: { orgId: to18(orgId), actionId: textOf(childOf(notes, 'ActionId')), enterpriseUrl: textOf(childOf(notes, 'EnterpriseUrl')), notifications } };
}


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
