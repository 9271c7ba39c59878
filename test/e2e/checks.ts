// What "nothing lost, nothing doubled" means on the records a person looks at, checked after a run: the Telegram
// world (topics, cards), the CRM records (current outcome fields, one note / Routing_Event__c per history entry) and
// Tierline's own history.
import type { HistoryEntry, HistoryKind, TicketRecord } from '../../core/ports.ts';
import { noteMarker } from '../../connectors/hubspot/mapper.ts';
import type { Sent, World } from './harness.ts';

/** History kinds that reach the CRM record (core/pipeline.ts WRITTEN_BACK). */
export const WRITTEN_BACK: ReadonlySet<HistoryKind> = new Set(['routed', 'assigned', 'first_reply', 'reply_by_other', 'reassigned', 'overflow', 'sla_breached', 'escalated', 'resolved', 'reopened', 'topic_recreated']);
const CARD = 'Why this ticket is here';

export type TicketView = { sent: Sent; key: string; ticket: TicketRecord | undefined; history: HistoryEntry[] };

/** Problems found for one ticket; empty when it is whole. */
export function checkTicket(w: World, v: TicketView, topics: { channelId: string; topicId: number }[], opts: { queueName: (id: string) => string; agentName: (id: string) => string; cards: Map<string, number> }): string[] {
  const p: string[] = [];
  const t = v.ticket;
  const label = `${v.sent.crm} ${v.sent.id} (${v.key})`;
  if (!t) return [`${label}: not in the store`];
  // Exactly one topic, and it is the one the store knows.
  if (topics.length !== 1) p.push(`${label}: ${topics.length} topics in Telegram`);
  if (!t.topic) p.push(`${label}: no topic in the store`);
  else if (topics[0] && topics[0].topicId !== t.topic.topicId) p.push(`${label}: store topic ${t.topic.topicId} but Telegram topic ${topics[0].topicId}`);
  if (t.topic && topics[0]) {
    const cards = opts.cards.get(`${topics[0].channelId}/${topics[0].topicId}`) ?? 0;
    if (cards !== 1) p.push(`${label}: ${cards} cards in its topic`);
  }
  // A complete history: 1..n without gaps or repeats, starting with the routing decision.
  const seqs = v.history.map((e) => e.seq).sort((a, b) => a - b);
  if (!seqs.length || seqs[0] !== 1 || seqs.some((s, i) => s !== i + 1) || seqs.length !== t.seq) p.push(`${label}: history seqs [${seqs.join(',')}] vs ticket seq ${t.seq}`);
  if (v.history.find((e) => e.seq === 1)?.kind !== 'routed') p.push(`${label}: first history entry is not "routed"`);
  // One write-back per written-back entry, and nothing else.
  const expected = v.history.filter((e) => WRITTEN_BACK.has(e.kind)).map((e) => e.key).sort();
  const status = t.status === 'resolved' ? 'resolved' : t.status === 'answered' ? 'answered' : t.status === 'assigned' ? 'assigned' : 'waiting';
  if (v.sent.crm === 'hubspot') {
    const rec = w.hubspot.ticket(v.sent.id);
    if (!rec) return [...p, `${label}: gone from HubSpot`];
    const keys = rec.notes.flatMap((n) => expected.filter((k) => n.body.includes(noteMarker(k))));
    const strays = rec.notes.filter((n) => n.body.includes('[tierline:') && !expected.some((k) => n.body.includes(noteMarker(k))));
    if (JSON.stringify([...keys].sort()) !== JSON.stringify(expected)) p.push(`${label}: notes for [${[...keys].sort().join(' ')}], history [${expected.join(' ')}]`);
    if (strays.length) p.push(`${label}: ${strays.length} notes for entries not in the history`);
    const props = rec.properties;
    if (props.tierline_status !== status) p.push(`${label}: HubSpot status ${props.tierline_status}, store ${status}`);
    if ((props.tierline_topic_link || null) !== (t.topic?.link ?? null)) p.push(`${label}: HubSpot topic link ${props.tierline_topic_link}, store ${t.topic?.link}`);
    if ((props.tierline_queue ?? '') !== (t.queueId ? opts.queueName(t.queueId) : '')) p.push(`${label}: HubSpot queue ${props.tierline_queue}, store ${t.queueId}`);
    if ((props.tierline_agent || null) !== (t.agentId ? opts.agentName(t.agentId) : null)) p.push(`${label}: HubSpot agent ${props.tierline_agent}, store ${t.agentId}`);
  } else {
    const rec = w.salesforce.case(v.sent.id);
    if (!rec) return [...p, `${label}: gone from Salesforce`];
    const keys = w.salesforce.routingEvents(v.sent.id).map((e) => String(e.Event_Key__c)).sort();
    if (JSON.stringify(keys) !== JSON.stringify(expected)) p.push(`${label}: Routing_Event__c for [${keys.join(' ')}], history [${expected.join(' ')}]`);
    if (String(rec.Tierline_Status__c ?? '').toLowerCase() !== status) p.push(`${label}: Case status ${rec.Tierline_Status__c}, store ${status}`);
    if ((rec.Tierline_Topic_Link__c ?? null) !== (t.topic?.link ?? null)) p.push(`${label}: Case topic link ${rec.Tierline_Topic_Link__c}, store ${t.topic?.link}`);
    if ((rec.Tierline_Agent__c || null) !== (t.agentId ? opts.agentName(t.agentId) : null)) p.push(`${label}: Case agent ${rec.Tierline_Agent__c}, store ${t.agentId}`);
  }
  return p;
}

/** Routing cards per topic ("channelId/topicId"), counted in one pass over every group. */
export function cardsPerTopic(w: World): Map<string, number> {
  const out = new Map<string, number>();
  for (const g of w.telegram.groups()) for (const m of w.telegram.allMessages(g.channelId)) if (m.text.includes(CARD)) out.set(`${g.channelId}/${m.topicId}`, (out.get(`${g.channelId}/${m.topicId}`) ?? 0) + 1);
  return out;
}
