// The metrics model: how routing performs, per tier, queue and agent, and where CRM data quality hurts it.
// Pure: computed from ticket records, so the console, the admin API and what-if replays share one definition.
import type { TicketRecord } from './ports.ts';
import { isOpenTicket } from './ports.ts';
import { SEGMENT_FIELDS } from './segment.ts';

export type Stats = { count: number; median: number | null; p90: number | null };

export type GroupReport = {
  key: string;
  tickets: number;
  open: number;
  /** Seconds from arrival to the first agent reply. */
  firstResponse: Stats;
  /** Seconds from arrival to resolution. */
  resolution: Stats;
  slaMet: number;
  slaBreached: number;
  /** Met / (met + breached), null when nothing is decided yet. */
  slaMetRate: number | null;
  overflowed: number;
  reassigned: number;
  escalated: number;
};

export type StalenessReport = {
  tickets: number;
  /** Tickets routed with the field missing or invalid in the CRM. */
  missing: Record<string, number>;
  invalid: Record<string, number>;
  /** Tickets whose tier was derived from lifetime value / revenue because the CRM had none. */
  tierDerived: number;
  /** Tickets that went to the default queue because data a rule needed was missing. */
  routedOnMissingData: number;
};

export type PerformanceReport = {
  overall: GroupReport;
  byTier: GroupReport[];
  byQueue: GroupReport[];
  byAgent: GroupReport[];
  staleness: StalenessReport;
};

export function quantile(sorted: readonly number[], q: number): number | null {
  if (!sorted.length) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function stats(values: number[]): Stats {
  const s = values.sort((a, b) => a - b);
  return { count: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9) };
}

function group(key: string, tickets: TicketRecord[]): GroupReport {
  const fr: number[] = [];
  const res: number[] = [];
  let met = 0;
  let breached = 0;
  let overflowed = 0;
  let reassigned = 0;
  let escalated = 0;
  let open = 0;
  for (const t of tickets) {
    const start = t.enqueuedAt ?? t.receivedAt;
    if (t.firstResponseAt !== null) fr.push((t.firstResponseAt - start) / 1000);
    if (t.resolvedAt !== null) res.push((t.resolvedAt - start) / 1000);
    if (t.slaMet === true) met++;
    if (t.slaMet === false) breached++;
    if (t.overflowCount > 0) overflowed++;
    if (t.reassignCount > 0) reassigned++;
    if (t.escalated) escalated++;
    if (isOpenTicket(t)) open++;
  }
  return { key, tickets: tickets.length, open, firstResponse: stats(fr), resolution: stats(res), slaMet: met, slaBreached: breached, slaMetRate: met + breached ? met / (met + breached) : null, overflowed, reassigned, escalated };
}

function by(tickets: TicketRecord[], keyOf: (t: TicketRecord) => string | null): GroupReport[] {
  const m = new Map<string, TicketRecord[]>();
  for (const t of tickets) {
    const k = keyOf(t);
    if (k === null) continue;
    let list = m.get(k);
    if (!list) m.set(k, (list = []));
    list.push(t);
  }
  return [...m.entries()].map(([k, list]) => group(k, list)).sort((a, b) => b.tickets - a.tickets || a.key.localeCompare(b.key));
}

export function staleness(tickets: TicketRecord[]): StalenessReport {
  const missing: Record<string, number> = Object.fromEntries(SEGMENT_FIELDS.map((f) => [f, 0]));
  const invalid: Record<string, number> = Object.fromEntries(SEGMENT_FIELDS.map((f) => [f, 0]));
  let tierDerived = 0;
  let routedOnMissingData = 0;
  for (const t of tickets) {
    for (const i of t.issues) (i.problem === 'missing' ? missing : invalid)[i.field] = ((i.problem === 'missing' ? missing : invalid)[i.field] ?? 0) + 1;
    if (t.tierSource?.kind === 'derived') tierDerived++;
    if (t.explanation.some((l) => l.startsWith('Segment data missing:') && l.includes('default queue'))) routedOnMissingData++;
  }
  return { tickets: tickets.length, missing, invalid, tierDerived, routedOnMissingData };
}

/** Only routed tickets count: a ticket still waiting for its CRM read has no outcome to measure. */
export function performanceReport(all: TicketRecord[]): PerformanceReport {
  const tickets = all.filter((t) => t.routedAt !== null);
  return {
    overall: group('all', tickets),
    byTier: by(tickets, (t) => t.segment?.tier ?? 'unknown'),
    byQueue: by(tickets, (t) => t.queueId),
    byAgent: by(tickets, (t) => t.firstResponderId ?? t.agentId),
    staleness: staleness(tickets),
  };
}
