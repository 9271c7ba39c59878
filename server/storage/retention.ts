// The retention window every store applies: routing history entries older than it, and closed tickets closed
// before it, are forgotten (reads stop showing them at once; each store frees the space on its own schedule). The
// CRM record keeps its routing history for good; this bounds what Tierline itself holds, in memory and on disk.
import { isOpenTicket, type TicketRecord } from '../../core/ports.ts';

/** When a closed ticket closed, for the window: its resolution, else its last change. */
export const closedAt = (t: Pick<TicketRecord, 'resolvedAt' | 'updatedAt'>): number => t.resolvedAt ?? t.updatedAt;

/** Whether the window (everything before cutoff) has forgotten the ticket; open tickets never are. */
export const forgotten = (t: TicketRecord, cutoff: number): boolean => !isOpenTicket(t) && closedAt(t) < cutoff;

/** The earliest time still kept (-Infinity when everything is kept). */
export const retentionCutoff = (now: number, retentionMs: number): number => (Number.isFinite(retentionMs) ? now - retentionMs : -Infinity);
