// What the Tierline record card shows on a ticket or company in HubSpot: the current routing outcome (queue, agent,
// SLA state) and the routing history with its reasons, read from Tierline's own store (the source of the history),
// so the card is right even before the write-back reached HubSpot.
import type { Clock, HistoryEntry, Store, TicketRecord } from '../../core/ports.ts';
import { segmentLabel, ticketKey } from '../../core/segment.ts';

export type SlaState = { state: 'met' | 'missed' | 'running' | 'breached' | 'none'; dueAt: string | null; firstResponseMinutes: number | null; label: string };

export type CardTicket = {
  ticketId: string;
  subject: string;
  status: string;
  queue: string | null;
  agent: string | null;
  tier: string | null;
  segment: string | null;
  rule: string | null;
  reason: string | null;
  topicLink: string | null;
  routedAt: string | null;
  resolvedAt: string | null;
  sla: SlaState;
};

export type CardHistory = { at: string; kind: string; text: string; explanation: string[]; queue: string | null; agent: string | null; rule: string | null; tier: string | null; ticketId: string };

export type CardData = {
  objectType: 'ticket' | 'company';
  objectId: string;
  portalId: string;
  /** The ticket itself, or the company's tickets, newest first. */
  tickets: CardTicket[];
  history: CardHistory[];
  /** Shown when Tierline has nothing yet (the ticket is not routed, or the company has no routed ticket). */
  empty: string | null;
};

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function slaOf(t: TicketRecord, now: number): SlaState {
  const firstResponseMinutes = t.firstResponseAt !== null && t.enqueuedAt !== null ? Math.round(((t.firstResponseAt - t.enqueuedAt) / 60_000) * 10) / 10 : null;
  const dueAt = iso(t.slaDueAt);
  if (t.firstResponseAt !== null) {
    const met = t.slaMet ?? (t.slaDueAt === null || t.firstResponseAt <= t.slaDueAt);
    return { state: met ? 'met' : 'missed', dueAt, firstResponseMinutes, label: `First reply after ${firstResponseMinutes ?? '?'} min: SLA ${met ? 'met' : 'missed'}` };
  }
  if (t.slaDueAt === null) return { state: 'none', dueAt, firstResponseMinutes, label: 'No SLA' };
  if (now > t.slaDueAt) return { state: 'breached', dueAt, firstResponseMinutes, label: `No first reply; SLA breached ${Math.round((now - t.slaDueAt) / 60_000)} min ago` };
  return { state: 'running', dueAt, firstResponseMinutes, label: `First reply due in ${Math.max(0, Math.round((t.slaDueAt - now) / 60_000))} min` };
}

export async function cardData(store: Store, clock: Clock, q: { portalId: string; objectType: 'ticket' | 'company'; objectId: string }): Promise<CardData> {
  const cfg = (await store.getConfig())?.config;
  const queueName = (id: string | null) => (id ? (cfg?.queues.find((x) => x.id === id)?.name ?? id) : null);
  const agentName = (id: string | null) => (id ? (cfg?.agents.find((x) => x.id === id)?.name ?? id) : null);
  const prefix = `hubspot:${q.portalId}:`;
  const now = clock.now();

  let entries: HistoryEntry[];
  let records: TicketRecord[];
  if (q.objectType === 'ticket') {
    const key = ticketKey({ crm: 'hubspot', account: q.portalId, ticketId: q.objectId });
    const t = await store.getTicket(key);
    records = t ? [t] : [];
    entries = (await store.history({ ticketKey: key, limit: 200 })).entries;
  } else {
    entries = (await store.history({ companyId: q.objectId, limit: 500 })).entries.filter((e) => e.ticketKey.startsWith(prefix));
    const keys = [...new Set(entries.map((e) => e.ticketKey))];
    records = (await Promise.all(keys.map((k) => store.getTicket(k)))).filter((t): t is TicketRecord => t !== null);
  }

  const tickets = records
    // Newest first; HubSpot ids grow over time, which orders tickets received in the same instant.
    .sort((a, b) => b.receivedAt - a.receivedAt || b.ref.ticketId.length - a.ref.ticketId.length || b.ref.ticketId.localeCompare(a.ref.ticketId))
    .map(
      (t): CardTicket => ({
        ticketId: t.ref.ticketId,
        subject: t.subject,
        status: t.status,
        queue: queueName(t.queueId),
        agent: agentName(t.agentId),
        tier: t.segment?.tier ?? null,
        segment: t.segment ? segmentLabel(t.segment) : null,
        rule: t.ruleId,
        reason: t.summary,
        topicLink: t.topic?.link ?? null,
        routedAt: iso(t.routedAt),
        resolvedAt: iso(t.resolvedAt),
        sla: slaOf(t, now),
      }),
    );
  const history = [...entries]
    .sort((a, b) => b.at - a.at || b.seq - a.seq)
    .slice(0, 50)
    .map((e): CardHistory => ({ at: new Date(e.at).toISOString(), kind: e.kind, text: e.text, explanation: e.explanation ?? [], queue: queueName(e.queueId || null), agent: agentName(e.agentId), rule: e.ruleId, tier: e.tier, ticketId: e.ticketKey.slice(prefix.length) }));
  const empty = tickets.length || history.length ? null : q.objectType === 'ticket' ? 'Tierline has not routed this ticket yet.' : 'No ticket of this company has been routed by Tierline yet.';
  return { objectType: q.objectType, objectId: q.objectId, portalId: q.portalId, tickets, history, empty };
}
