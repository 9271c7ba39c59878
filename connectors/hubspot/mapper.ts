// Pure translation between HubSpot records and Tierline: which properties one context read asks for, the ticket +
// company + contact -> CrmContext mapping, and the write-back payloads (ticket and company properties, the timeline
// note). No I/O here; recorded-shape fixtures in test/connectors/hubspot exercise every branch.
import type { CrmContext, CrmWriteBack, HistoryEntry, RoutingFields } from '../../core/ports.ts';
import { validateSegment, type SegmentIssue, type Tier, type TicketRef } from '../../core/segment.ts';
import { mappedPaths, type HsObject, type HubspotMapping, type MappingSource } from './mapping.ts';
import { HUBSPOT_MANIFEST } from './properties.ts';

/** A CRM object as the v3 objects API returns it (every property value is a string or null). */
export type HsRecord = { id: string; properties: Record<string, string | null | undefined> };
export type TicketBundle = { ticket: HsRecord; company: HsRecord | null; contact: HsRecord | null };

const PLURAL: Record<HsObject, 'tickets' | 'companies' | 'contacts'> = { ticket: 'tickets', company: 'companies', contact: 'contacts' };

/** The properties each object is read with: what manifest.json lists plus every property the mapping names. */
export function readProperties(m: HubspotMapping): Record<'tickets' | 'companies' | 'contacts', string[]> {
  const out = {
    tickets: [...HUBSPOT_MANIFEST.reads.tickets],
    companies: [...HUBSPOT_MANIFEST.reads.companies],
    contacts: [...HUBSPOT_MANIFEST.reads.contacts],
  };
  for (const path of mappedPaths(m)) {
    const [obj, prop] = path.split('.') as [HsObject, string];
    const list = out[PLURAL[obj]];
    if (!list.includes(prop)) list.push(prop);
  }
  return out;
}

function valueOf(b: TicketBundle, path: string): string | null {
  const [obj, prop] = path.split('.') as [HsObject, string];
  const rec = obj === 'ticket' ? b.ticket : obj === 'company' ? b.company : b.contact;
  const v = rec?.properties[prop];
  return v === undefined || v === null || v.trim() === '' ? null : v;
}

function lookup(values: Record<string, string> | undefined, raw: string): string | undefined {
  if (!values) return undefined;
  const key = raw.trim().toLowerCase();
  for (const [k, v] of Object.entries(values)) if (k.trim().toLowerCase() === key) return v;
  return undefined;
}

function pickText(b: TicketBundle, sources: MappingSource[], attr: string, issues: SegmentIssue[], normalise?: (s: string) => string): string | null {
  for (const s of sources) {
    const v = valueOf(b, s.property);
    if (v === null) continue;
    const raw = v.trim();
    const mapped = lookup(s.values, raw);
    if (mapped !== undefined) return mapped;
    if (s.passThrough) return normalise ? normalise(raw) : raw;
    issues.push({ field: attr, problem: 'invalid', detail: `${s.property} "${raw.slice(0, 60)}" is not in the ${attr} value map of the HubSpot mapping; add it there` });
  }
  return null;
}

function toNumber(v: string | null): number | null {
  if (v === null) return null;
  const n = Number(v.trim().replace(/,/g, ''));
  return Number.isFinite(n) ? n : null;
}

function pickNumber(b: TicketBundle, paths: string[]): { value: number; path: string } | null {
  for (const p of paths) {
    const n = toNumber(valueOf(b, p));
    if (n !== null) return { value: n, path: p };
  }
  return null;
}

/** ISO 639-1 from "de", "en-us", "pt_BR"; anything else is kept for the routing rules to match as it is. */
function normaliseLanguage(raw: string): string {
  const m = /^([a-z]{2})(?:[-_][a-z0-9]{2,8})?$/i.exec(raw);
  return m ? m[1]!.toLowerCase() : raw;
}

export function recordUrl(portalId: string, ticketId: string): string {
  return `https://app.hubspot.com/contacts/${portalId}/record/0-5/${ticketId}`;
}

export type MapOptions = { mapping: HubspotMapping; ref: TicketRef; currency: string };

/** A ticket with its company and contact -> the context routing needs. */
export function mapTicket(b: TicketBundle, o: MapOptions): CrmContext {
  const m = o.mapping;
  const issues: SegmentIssue[] = [];

  let tier: Tier | null = null;
  for (const s of m.tier) {
    const v = valueOf(b, s.property);
    if (v === null) continue;
    const mapped = lookup(s.values, v) as Tier | undefined;
    if (mapped) {
      tier = mapped;
      break;
    }
    issues.push({ field: 'tier', problem: 'invalid', detail: `${s.property} "${v.slice(0, 60)}" is not in the tier value map of the HubSpot mapping; map it to free, standard, premium or enterprise` });
  }

  const ltv = pickNumber(b, m.lifetimeValue);
  const revenue = pickNumber(b, m.annualRevenue);
  if (!tier && m.tierThresholds?.length) {
    const signal = ltv ?? revenue;
    const sorted = [...m.tierThresholds].sort((x, y) => y.minLifetimeValue - x.minLifetimeValue);
    const hit = signal ? sorted.find((t) => signal.value >= t.minLifetimeValue) : undefined;
    if (signal && hit) {
      tier = hit.tier;
      // Still reported: the record lacks a tier, which the staleness report should show.
      issues.push({ field: 'tier', problem: 'missing', detail: `no tier in HubSpot; derived ${hit.tier} from ${signal.path} ${signal.value} >= ${hit.minLifetimeValue} (portal mapping thresholds)` });
    }
  }

  const product = pickText(b, m.product, 'product', issues);
  const category = pickText(b, m.category, 'category', issues);
  const language = pickText(b, m.language, 'language', issues, normaliseLanguage);
  const region = pickText(b, m.region, 'region', issues);
  let churnRisk: number | null = null;
  if (m.churnRisk) {
    const n = toNumber(valueOf(b, m.churnRisk.property));
    churnRisk = n === null ? null : Math.round(n * m.churnRisk.scale * 1e6) / 1e6;
  }

  const checked = validateSegment({
    tier,
    lifetimeValue: ltv ? { amount: ltv.value, currency: o.currency } : null,
    annualRevenue: revenue?.value ?? null,
    product,
    category,
    language,
    region,
    churnRisk,
    source: { ref: o.ref, companyId: b.company?.id ?? null, contactId: b.contact?.id ?? null },
  });
  // Our own issue names the HubSpot property; drop the generic "missing" for the same attribute.
  const ours = new Set(issues.map((i) => i.field));
  const merged = [...issues, ...checked.issues.filter((i) => !(ours.has(i.field) && i.problem === 'missing'))];

  const t = b.ticket.properties;
  const c = b.contact?.properties ?? {};
  const person = [c.firstname, c.lastname].filter((x): x is string => !!x && x.trim() !== '').join(' ');
  return {
    ref: o.ref,
    subject: t.subject?.trim() ? t.subject.trim() : `Ticket ${b.ticket.id}`,
    description: t.content?.trim() ? t.content : null,
    customerName: person || (c.email?.trim() ? c.email.trim() : null),
    companyName: b.company?.properties.name?.trim() ? b.company.properties.name.trim() : null,
    recordUrl: recordUrl(o.ref.account, o.ref.ticketId),
    segment: checked.segment,
    issues: merged,
  };
}

// ------------------------------------------------------------------ write-back payloads

/** HubSpot text properties hold up to 65,536 characters; one-liners are kept far shorter. */
const clip = (v: string, max: number) => (v.length > max ? v.slice(0, max - 1) + '…' : v);

/** The current outcome as ticket properties ("" clears a property in HubSpot). */
export function outcomeProperties(f: RoutingFields): Record<string, string> {
  return {
    tierline_status: f.status,
    tierline_queue: clip(f.queue, 255),
    tierline_agent: clip(f.agent ?? '', 255),
    tierline_segment: clip(f.segment, 255),
    tierline_tier: f.tier ?? '',
    tierline_rule: clip(f.rule ?? '', 255),
    tierline_routed_at: f.routedAt,
    tierline_topic_link: f.topicLink ?? '',
    tierline_first_response_minutes: f.firstResponseMinutes === null ? '' : String(f.firstResponseMinutes),
    tierline_resolved_at: f.resolvedAt ?? '',
    tierline_sla_met: f.slaMet === null ? '' : String(f.slaMet),
    tierline_reason: clip(f.reason, 2000),
  };
}

export const HISTORY_MAX_CHARS = 60_000;

function when(at: number): string {
  return new Date(at).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** tierline_history: one line per event, oldest first; the oldest lines give way when it would grow too long. */
export function historyText(entries: HistoryEntry[]): string {
  const lines = [...entries].sort((a, b) => a.seq - b.seq).map((e) => clip(`${when(e.at)} · ${e.kind.replace(/_/g, ' ')} · ${e.text}`, 500));
  let total = 0;
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    total += lines[i]!.length + 1;
    if (total > HISTORY_MAX_CHARS) break;
    kept.unshift(lines[i]!);
  }
  return kept.join('\n');
}

export function ticketProperties(f: RoutingFields, history: HistoryEntry[]): Record<string, string> {
  return { ...outcomeProperties(f), tierline_history: historyText(history) };
}

export function companyProperties(f: RoutingFields): Record<string, string> {
  return outcomeProperties(f);
}

/** Found in every Tierline note, so a retry after a crash can tell whether the note already exists. */
export function noteMarker(entryKey: string): string {
  return `[tierline:${entryKey}]`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const KIND_TITLE: Record<HistoryEntry['kind'], string> = {
  routed: 'Routed',
  assigned: 'Assigned',
  first_reply: 'First reply',
  reply_by_other: 'Reply by another agent',
  reassigned: 'Reassigned',
  overflow: 'Overflowed',
  sla_warning: 'SLA warning',
  sla_breached: 'SLA breached',
  escalated: 'Escalated',
  resolved: 'Resolved',
  reopened: 'Reopened',
  topic_recreated: 'Topic recreated',
};

/** The note on the ticket (and company) timeline: the decision in plain words, then the current outcome. */
export function noteBody(wb: CrmWriteBack): string {
  const e = wb.entry;
  const f = wb.fields;
  const facts = [
    `Queue: ${f.queue || '-'}`,
    `Agent: ${f.agent ?? 'waiting for an agent'}`,
    `Tier: ${f.tier ?? 'unknown'}`,
    f.rule ? `Rule: ${f.rule}` : null,
    f.firstResponseMinutes !== null ? `First response: ${f.firstResponseMinutes} min` : null,
    f.slaMet !== null ? `SLA ${f.slaMet ? 'met' : 'missed'}` : null,
  ].filter((x): x is string => x !== null);
  const parts = [`<p><strong>Tierline · ${esc(KIND_TITLE[e.kind])}</strong>: ${esc(e.text)}</p>`];
  if (e.explanation?.length) parts.push(`<ul>${e.explanation.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`);
  parts.push(`<p>${facts.map(esc).join(' · ')}</p>`);
  if (f.topicLink) parts.push(`<p>Telegram topic: <a href="${esc(f.topicLink)}">${esc(f.topicLink)}</a></p>`);
  // The marker goes last but is never clipped away: the retry check depends on it.
  return clip(parts.join(''), 64_000) + `<p><small>${esc(noteMarker(e.key))}</small></p>`;
}
