// Pure translation between Salesforce records and Tierline: the one SOQL query that reads a Case with its Account
// and Contact, the Case record -> CrmContext mapping, and the write-back records (Case update, Routing_Event__c).
// No I/O here; fixtures in test/connectors/salesforce exercise every branch.
import type { CrmContext, CrmWriteBack, RoutingFields } from '../../core/ports.ts';
import { validateSegment, type SegmentIssue, type Tier, type TicketRef } from '../../core/segment.ts';
import { isSalesforceId, to18 } from './ids.ts';
import { mappedFieldPaths, type MappingSource, type SalesforceMapping, type SoqlObject } from './mapping.ts';
import { fieldSpec, maxLength } from './schema.ts';

/** Fields read whatever the mapping says: identity, what the card shows, and the contact's reachability. */
export const BASE_FIELDS: Record<SoqlObject, readonly string[]> = {
  Case: ['Id', 'CaseNumber', 'Subject', 'Description', 'Priority', 'AccountId', 'ContactId', 'IsClosed'],
  Account: ['Id', 'Name'],
  Contact: ['Id', 'Name', 'Email', 'Phone', 'Tierline_Telegram_User_Id__c'],
};

/** The fields of each object one context read selects: the base fields plus every mapped one. */
export function contextFields(m: SalesforceMapping): Record<SoqlObject, string[]> {
  const out: Record<SoqlObject, string[]> = { Case: [...BASE_FIELDS.Case], Account: [...BASE_FIELDS.Account], Contact: [...BASE_FIELDS.Contact] };
  for (const path of mappedFieldPaths(m)) {
    const [obj, field] = path.split('.') as [SoqlObject, string];
    if (!out[obj].includes(field)) out[obj].push(field);
  }
  return out;
}

/** One SOQL query for the Case, its Account and its Contact (parent relationships, so one API call). */
export function contextQuery(m: SalesforceMapping, caseId: string): string {
  if (!isSalesforceId(caseId)) throw new Error('invalid Case id');
  const f = contextFields(m);
  const select = [...f.Case, ...f.Account.map((x) => `Account.${x}`), ...f.Contact.map((x) => `Contact.${x}`)];
  return `SELECT ${select.join(', ')} FROM Case WHERE Id = '${caseId}' LIMIT 1`;
}

type SfRecord = Record<string, unknown>;

function fieldValue(rec: SfRecord, path: string): unknown {
  const [obj, field] = path.split('.') as [SoqlObject, string];
  const holder = obj === 'Case' ? rec : (rec[obj] as SfRecord | null | undefined);
  if (!holder || typeof holder !== 'object') return null;
  const v = holder[field];
  return v === undefined ? null : v;
}

const present = (v: unknown): boolean => v !== null && v !== undefined && !(typeof v === 'string' && v.trim() === '');

function lookup(values: Record<string, string> | undefined, raw: string): string | undefined {
  if (!values) return undefined;
  const key = raw.trim().toLowerCase();
  for (const [k, v] of Object.entries(values)) if (k.trim().toLowerCase() === key) return v;
  return undefined;
}

function pickText(rec: SfRecord, sources: MappingSource[], attr: string, issues: SegmentIssue[], normalise?: (s: string) => string): string | null {
  for (const s of sources) {
    const v = fieldValue(rec, s.field);
    if (!present(v)) continue;
    const raw = String(v).trim();
    const mapped = lookup(s.values, raw);
    if (mapped !== undefined) return mapped;
    if (s.passThrough) return normalise ? normalise(raw) : raw;
    issues.push({ field: attr, problem: 'invalid', detail: `${s.field} "${raw.slice(0, 60)}" is not in the ${attr} value map of the Salesforce mapping; add it there` });
  }
  return null;
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

function pickNumber(rec: SfRecord, paths: string[]): { value: number; path: string } | null {
  for (const p of paths) {
    const n = toNumber(fieldValue(rec, p));
    if (n !== null) return { value: n, path: p };
  }
  return null;
}

/** ISO 639-1 from "de", "de_DE", "de-AT"; anything else is kept for the routing rules to match as it is. */
function normaliseLanguage(raw: string): string {
  const m = /^([a-z]{2})(?:[-_][a-z0-9]{2,8})?$/i.exec(raw);
  return m ? m[1]!.toLowerCase() : raw;
}

export type MapOptions = { mapping: SalesforceMapping; ref: TicketRef; instanceUrl: string };

/** A SOQL Case record (with Account and Contact parents) -> the context routing needs. */
export function mapCaseRecord(rec: SfRecord, o: MapOptions): CrmContext {
  const m = o.mapping;
  const issues: SegmentIssue[] = [];

  let tier: Tier | null = null;
  for (const s of m.tier) {
    const v = fieldValue(rec, s.field);
    if (!present(v)) continue;
    const mapped = lookup(s.values, String(v)) as Tier | undefined;
    if (mapped) {
      tier = mapped;
      break;
    }
    issues.push({ field: 'tier', problem: 'invalid', detail: `${s.field} "${String(v).slice(0, 60)}" is not in the tier value map of the Salesforce mapping; map it to free, standard, premium or enterprise` });
  }

  const ltv = pickNumber(rec, m.lifetimeValue);
  const revenue = pickNumber(rec, m.annualRevenue);
  if (!tier && m.tierThresholds?.length) {
    const signal = ltv ?? revenue;
    const sorted = [...m.tierThresholds].sort((a, b) => b.minLifetimeValue - a.minLifetimeValue);
    const hit = signal ? sorted.find((t) => signal.value >= t.minLifetimeValue) : undefined;
    if (signal && hit) {
      tier = hit.tier;
      // Still reported: the CRM record lacks a tier, which the staleness report should show.
      issues.push({ field: 'tier', problem: 'missing', detail: `no tier in Salesforce; derived ${hit.tier} from ${signal.path} ${signal.value} >= ${hit.minLifetimeValue} (org mapping thresholds)` });
    }
  }

  const product = pickText(rec, m.product, 'product', issues);
  const category = pickText(rec, m.category, 'category', issues);
  const language = pickText(rec, m.language, 'language', issues, normaliseLanguage);
  const region = pickText(rec, m.region, 'region', issues);
  let churnRisk: number | null = null;
  if (m.churnRisk) {
    const n = toNumber(fieldValue(rec, m.churnRisk.field));
    churnRisk = n === null ? null : Math.round(n * m.churnRisk.scale * 1e6) / 1e6;
  }

  const accountId = isSalesforceId(rec.AccountId) ? to18(rec.AccountId) : null;
  const contactId = isSalesforceId(rec.ContactId) ? to18(rec.ContactId) : null;
  const checked = validateSegment({
    tier,
    lifetimeValue: ltv && m.lifetimeValue.includes(ltv.path) ? { amount: ltv.value, currency: m.currency } : null,
    annualRevenue: revenue?.value ?? null,
    product,
    category,
    language,
    region,
    churnRisk,
    source: { ref: o.ref, companyId: accountId, contactId },
  });
  // Our own issue names the Salesforce field; drop the generic "missing" for the same attribute.
  const ours = new Set(issues.map((i) => i.field));
  const merged = [...issues, ...checked.issues.filter((i) => !(ours.has(i.field) && i.problem === 'missing'))];

  const account = rec.Account as SfRecord | null | undefined;
  const contact = rec.Contact as SfRecord | null | undefined;
  const subject = present(rec.Subject) ? String(rec.Subject) : `Case ${String(rec.CaseNumber ?? o.ref.ticketId)}`;
  return {
    ref: o.ref,
    subject,
    description: present(rec.Description) ? String(rec.Description) : null,
    customerName: contact && present(contact.Name) ? String(contact.Name) : null,
    companyName: account && present(account.Name) ? String(account.Name) : null,
    recordUrl: caseUrl(o.instanceUrl, o.ref.ticketId),
    segment: checked.segment,
    issues: merged,
    // IsClosed follows the org's closed Case statuses (CaseStatus.IsClosed), whatever they are named.
    ...(rec.IsClosed === true ? { closedInCrm: true } : {}),
  };
}

export function caseUrl(instanceUrl: string, caseId: string): string {
  return `${instanceUrl.replace(/\/+$/, '')}/lightning/r/Case/${caseId}/view`;
}

// ------------------------------------------------------------------ write-back records

function clip(object: string, field: string, v: string | null): string | null {
  if (v === null) return null;
  const spec = fieldSpec(object, field);
  const max = spec ? maxLength(spec) : null;
  return max !== null && v.length > max ? v.slice(0, max - 1) + '…' : v;
}

const yesNo = (b: boolean | null): string | null => (b === null ? null : b ? 'Yes' : 'No');

/** The Case update carrying the current outcome (null clears a field, as Salesforce expects). */
export function caseUpdate(caseId: string, f: RoutingFields): Record<string, unknown> {
  const c = (field: string, v: string | null) => clip('Case', field, v);
  return {
    Id: caseId,
    Tierline_Status__c: f.status,
    Tierline_Queue__c: c('Tierline_Queue__c', f.queue || null),
    Tierline_Agent__c: c('Tierline_Agent__c', f.agent),
    Tierline_Segment__c: c('Tierline_Segment__c', f.segment),
    Tierline_Tier__c: f.tier,
    Tierline_Rule__c: c('Tierline_Rule__c', f.rule),
    Tierline_Routed_At__c: f.routedAt,
    Tierline_Topic_Link__c: c('Tierline_Topic_Link__c', f.topicLink),
    Tierline_First_Response_Minutes__c: f.firstResponseMinutes,
    Tierline_Resolved_At__c: f.resolvedAt,
    Tierline_SLA_Met__c: yesNo(f.slaMet),
    Tierline_Reason__c: c('Tierline_Reason__c', f.reason || null),
  };
}

/** One Routing_Event__c per history entry, keyed by the entry key (the upsert external id). */
export function routingEvent(caseId: string, wb: CrmWriteBack): Record<string, unknown> {
  const e = wb.entry;
  const f = wb.fields;
  const c = (field: string, v: string | null) => clip('Routing_Event__c', field, v);
  const reason = [e.text, ...(e.explanation ?? [])].join('\n');
  return {
    Event_Key__c: c('Event_Key__c', e.key),
    Case__c: caseId,
    Account__c: wb.companyId && isSalesforceId(wb.companyId) ? to18(wb.companyId) : null,
    Kind__c: e.kind,
    Queue__c: c('Queue__c', e.queueId || null),
    Agent__c: c('Agent__c', e.agentId),
    Segment__c: c('Segment__c', f.segment),
    Tier__c: e.tier,
    Rule__c: c('Rule__c', e.ruleId),
    Reason__c: c('Reason__c', reason),
    Routed_At__c: new Date(e.at).toISOString(),
    First_Response_Minutes__c: e.kind === 'first_reply' || e.kind === 'resolved' ? f.firstResponseMinutes : null,
    Resolved_At__c: e.kind === 'resolved' ? f.resolvedAt : null,
    SLA_Met__c: e.kind === 'first_reply' || e.kind === 'resolved' || e.kind === 'sla_breached' ? yesNo(f.slaMet) : null,
    Topic_Link__c: c('Topic_Link__c', f.topicLink),
  };
}

