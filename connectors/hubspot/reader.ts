// Fresh reads at routing time, coalesced: context reads that start together (the pipeline routes tickets in
// parallel, e.g. after a burst of webhooks) share batch reads — tickets, their company and contact associations,
// companies, contacts — so a burst of N tickets costs about five calls per hundred instead of three per ticket, which
// matters under HubSpot's per-portal rate limit. A lone read takes the shorter path (ticket with associations, then
// company and contact in parallel). Nothing is cached between reads.
import { AppError } from '../../core/errors.ts';
import type { PortalSession } from './client.ts';
import type { HubspotMapping } from './mapping.ts';
import { readProperties, type HsRecord, type TicketBundle } from './mapper.ts';

export const READ_BATCH = 100;
/** HubSpot-defined association type ids for the primary company of a ticket. */
const PRIMARY_TICKET_TO_COMPANY = 26;

type Item = { ticketId: string; resolve: (b: { bundle: TicketBundle; mapping: HubspotMapping }) => void; reject: (e: unknown) => void };
type Assoc = { results?: { id: string; type?: string }[] } | undefined;
type BatchRead = { results?: HsRecord[] };
type AssocBatch = { results?: { _from?: { id: string }; from?: { id: string }; to?: { toObjectId: string | number; associationTypes?: { typeId: number; label?: string | null }[] }[] }[] };

const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));

export function goneTicket(portalId: string, ticketId: string, cause?: unknown): AppError {
  return new AppError('not_found', `Ticket ${ticketId} no longer exists in HubSpot portal ${portalId} (deleted or merged), or Tierline cannot see it; nothing to route.`, cause === undefined ? {} : { cause });
}

export function createReader(o: { portalId: string; session: () => PortalSession; mapping: () => Promise<HubspotMapping>; onBatch?: (n: number) => void }) {
  const queue: Item[] = [];
  let running = false;

  async function readOne(id: string, mapping: HubspotMapping): Promise<TicketBundle> {
    const s = o.session();
    const props = readProperties(mapping);
    let ticket: HsRecord & { associations?: Record<string, Assoc> };
    try {
      ticket = (await s.run(`read ticket ${id}`, (c) => c.crm.tickets.basicApi.getById(id, props.tickets, undefined, ['companies', 'contacts']))) as typeof ticket;
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') throw goneTicket(o.portalId, id, err);
      throw err;
    }
    const first = (a: Assoc, primaryType: string) => {
      const r = a?.results ?? [];
      return (r.find((x) => x.type === primaryType) ?? r[0])?.id ?? null;
    };
    const optional = async (kind: 'companies' | 'contacts', rid: string | null): Promise<HsRecord | null> => {
      if (!rid) return null;
      try {
        return (await s.run(`read ${kind === 'companies' ? 'company' : 'contact'} ${rid}`, (c) => (kind === 'companies' ? c.crm.companies.basicApi.getById(rid, props.companies) : c.crm.contacts.basicApi.getById(rid, props.contacts)))) as HsRecord;
      } catch (err) {
        // Deleted since the ticket was made: routed as a ticket without one.
        if (err instanceof AppError && err.code === 'not_found') return null;
        throw err;
      }
    };
    const [company, contact] = await Promise.all([optional('companies', first(ticket.associations?.companies, 'ticket_to_company')), optional('contacts', first(ticket.associations?.contacts, 'ticket_to_contact'))]);
    return { ticket: { id: String(ticket.id), properties: ticket.properties ?? {} }, company, contact };
  }

  async function associations(to: 'companies' | 'contacts', ids: string[]): Promise<Map<string, string>> {
    const s = o.session();
    const out = new Map<string, string>();
    for (const part of chunks(ids, READ_BATCH)) {
      const r = (await s.run(`read the ${to} of ${part.length} tickets`, (c) => c.crm.associations.v4.batchApi.getPage('tickets', to, { inputs: part.map((id) => ({ id })) }))) as AssocBatch;
      for (const res of r.results ?? []) {
        const from = String((res._from ?? res.from)?.id ?? '');
        const list = res.to ?? [];
        const pick = list.find((t) => (t.associationTypes ?? []).some((a) => a.typeId === PRIMARY_TICKET_TO_COMPANY || a.label === 'Primary')) ?? list[0];
        if (from && pick) out.set(from, String(pick.toObjectId));
      }
      // Tickets without associations come back as errors in a 207; having none is normal.
    }
    return out;
  }

  async function readMany(kind: 'tickets' | 'companies' | 'contacts', ids: string[], properties: string[]): Promise<Map<string, HsRecord>> {
    const s = o.session();
    const out = new Map<string, HsRecord>();
    for (const part of chunks([...new Set(ids)], READ_BATCH)) {
      const r = (await s.run(`read ${part.length} ${kind}`, (c) => {
        const input = { inputs: part.map((id) => ({ id })), properties, propertiesWithHistory: [] };
        return kind === 'tickets' ? c.crm.tickets.batchApi.read(input, false) : kind === 'companies' ? c.crm.companies.batchApi.read(input, false) : c.crm.contacts.batchApi.read(input, false);
      })) as BatchRead;
      for (const rec of r.results ?? []) out.set(String(rec.id), { id: String(rec.id), properties: rec.properties ?? {} });
    }
    return out;
  }

  async function processBatch(items: Item[]): Promise<void> {
    o.onBatch?.(items.length);
    const mapping = await o.mapping();
    const ids = [...new Set(items.map((i) => i.ticketId))];
    if (ids.length === 1) {
      try {
        const bundle = await readOne(ids[0]!, mapping);
        for (const i of items) i.resolve({ bundle, mapping });
      } catch (err) {
        for (const i of items) i.reject(err);
      }
      return;
    }
    const props = readProperties(mapping);
    try {
      const tickets = await readMany('tickets', ids, props.tickets);
      const found = ids.filter((id) => tickets.has(id));
      const [companyOf, contactOf] = found.length ? await Promise.all([associations('companies', found), associations('contacts', found)]) : [new Map<string, string>(), new Map<string, string>()];
      const [companies, contacts] = await Promise.all([
        companyOf.size ? readMany('companies', [...companyOf.values()], props.companies) : new Map<string, HsRecord>(),
        contactOf.size ? readMany('contacts', [...contactOf.values()], props.contacts) : new Map<string, HsRecord>(),
      ]);
      for (const i of items) {
        const ticket = tickets.get(i.ticketId);
        if (!ticket) {
          i.reject(goneTicket(o.portalId, i.ticketId));
          continue;
        }
        const cid = companyOf.get(i.ticketId);
        const pid = contactOf.get(i.ticketId);
        i.resolve({ bundle: { ticket, company: (cid && companies.get(cid)) || null, contact: (pid && contacts.get(pid)) || null }, mapping });
      }
    } catch (err) {
      for (const i of items) i.reject(err);
    }
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      // Reads started in the same turn of the event loop join this batch.
      await new Promise<void>((ok) => setImmediate(ok));
      while (queue.length) {
        const items = queue.splice(0, READ_BATCH);
        try {
          await processBatch(items);
        } catch (err) {
          for (const i of items) i.reject(err);
        }
      }
    } finally {
      running = false;
      if (queue.length) void drain();
    }
  }

  return {
    read(ticketId: string): Promise<{ bundle: TicketBundle; mapping: HubspotMapping }> {
      return new Promise((resolve, reject) => {
        queue.push({ ticketId, resolve, reject });
        if (!running) void drain();
      });
    },
  };
}
