// What agents read in Telegram: topic titles, the ticket card and short notices. Plain text, so the same words can
// go into a CRM note; the Telegram connector only adds the mention entity.
import type { CrmContext, TicketRecord } from './ports.ts';
import { tierLabel, type Segment, type Tier } from './segment.ts';

/** Telegram limits a topic title to 128 bytes of UTF-8; cut on a character boundary and mark the cut. */
export function topicTitle(tier: Tier | null, company: string | null, subject: string, maxBytes = 128): string {
  const full = `[${tierLabel(tier)}] ${company ? `${company} · ` : ''}${subject.replace(/\s+/g, ' ').trim() || '(no subject)'}`;
  return cutUtf8(full, maxBytes);
}

const enc = new TextEncoder();
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

export function utf8Length(s: string): number {
  return enc.encode(s).length;
}

/**
 * Cuts text to at most maxBytes of UTF-8 on a grapheme boundary (an emoji with its modifiers, a flag, a letter with
 * its accents stay whole), marking the cut with "…". Lone surrogates, which UTF-8 cannot carry, become U+FFFD first
 * so the byte count is the one Telegram will see.
 */
export function cutUtf8(text: string, maxBytes: number): string {
  const clean = text.toWellFormed();
  if (utf8Length(clean) <= maxBytes) return clean;
  const ellipsis = '…';
  const budget = maxBytes - utf8Length(ellipsis);
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(clean)) {
    const n = utf8Length(segment);
    if (used + n > budget) break;
    out += segment;
    used += n;
  }
  return out.trimEnd() + ellipsis;
}

// One formatter for every card: Number#toLocaleString builds a new ICU formatter per call (about a millisecond each,
// measured in the topic step).
const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function money(s: Segment): string {
  if (!s.lifetimeValue) return 'unknown';
  return `${grouped.format(Math.round(s.lifetimeValue.amount))} ${s.lifetimeValue.currency}`;
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

/** The pinned card at the top of a ticket's topic: who the customer is, the SLA, and why the ticket is here. */
export function ticketCard(t: TicketRecord, ctx: Pick<CrmContext, 'description'> | null, explanation: string[], assignee: string | null, queueName: string): string {
  const s = t.segment;
  const lines = [
    `🎫 ${t.subject}`,
    `Customer: ${t.customerName ?? 'unknown'}${t.companyName ? ` · ${t.companyName}` : ''}`,
    `Tier: ${s?.tier ?? 'unknown'}${t.tierSource?.kind === 'derived' ? ' (derived from revenue)' : ''} · LTV: ${s ? money(s) : 'unknown'}`,
    `Product: ${s?.product ?? 'unknown'} · Category: ${s?.category ?? 'unknown'} · Language: ${s?.language ?? 'unknown'} · Region: ${s?.region ?? 'unknown'}`,
    `Queue: ${queueName} · ${assignee ? `Assigned to ${assignee}` : 'Waiting for an agent'}`,
    `First response due: ${t.slaDueAt ? when(t.slaDueAt) : 'n/a'}`,
    `CRM record: ${t.recordUrl ?? 'n/a'}`,
  ];
  if (t.issues.length) lines.push(`⚠️ Data gaps: ${t.issues.map((i) => i.detail).join('; ')}`);
  if (ctx?.description) lines.push('', ctx.description.length > 600 ? `${ctx.description.slice(0, 600)}…` : ctx.description);
  lines.push('', 'Why this ticket is here:', ...explanation.map((l) => `• ${l}`));
  lines.push('', 'Commands: /resolve · /reassign · /escalate · /away · /back');
  return lines.join('\n');
}

export const COMMAND_HELP = 'Commands: /resolve (close the ticket) · /reassign (give it to someone else in the queue) · /escalate (per queue policy) · /away · /back';
