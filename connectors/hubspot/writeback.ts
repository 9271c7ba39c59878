// Write-back through HubSpot's batch endpoints: write-backs that arrive together (the pipeline works tickets in
// parallel) go out as one tickets batch update, one companies batch update and one notes batch create per 100
// records, instead of three calls each. Properties are plain overwrites, so repeating a batch is harmless; notes are
// made idempotent on the history entry key: a "pending" record in the store before the create (reserved with the
// pipeline's commit that records the history entry, else written here), "done" with the note id after it, and a
// marker in the note body, so a retry after a crash in between finds the note instead of adding one.
import { AppError } from '../../core/errors.ts';
import type { Clock, Logger, Reservation, Store } from '../../core/ports.ts';
import { FINISHED_WORK_TTL_MS } from '../shared/retention.ts';
import { createUntried } from '../shared/untried.ts';
import { missingIds, NS, type HsErrorDetails, type PortalSession } from './client.ts';
import { noteMarker } from './mapper.ts';

export const BATCH_LIMIT = 100;

/** HubSpot-defined association types: note -> ticket and note -> company. */
export const NOTE_TO_TICKET = 228;
export const NOTE_TO_COMPANY = 190;

export type NoteRecord = { status: 'pending' | 'done'; noteId: string | null; ticketId: string; at: number };

export type WriteRequest = {
  ticketId: string;
  companyId: string | null;
  ticketProperties: Record<string, string>;
  companyProperties: Record<string, string>;
  entryKey: string;
  note: { body: string; timestamp: string };
  /** The write-back step's first run anywhere (see Reservation in core/ports.ts). */
  firstRun?: boolean;
};

type Item = WriteRequest & { resolve: () => void; reject: (e: unknown) => void };

type BatchResult = { results?: { id: string; objectWriteTraceId?: string; properties?: Record<string, string | null> }[]; errors?: { category?: string; message?: string; context?: Record<string, unknown> }[] };

const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));

/** Ids a 207 multi-status (or a thrown OBJECT_NOT_FOUND) names as missing. */
function missingOf(r: BatchResult | null, err: unknown): Set<string> {
  const ids = new Set<string>();
  for (const e of r?.errors ?? []) if (e.category === 'OBJECT_NOT_FOUND' && Array.isArray(e.context?.ids)) for (const id of e.context.ids as unknown[]) ids.add(String(id));
  if (err instanceof AppError) for (const id of missingIds(err.details as HsErrorDetails)) ids.add(id);
  return ids;
}

export function createWriter(o: { session: () => PortalSession; portalId: string; store: Store; logger: Logger; clock: Clock; onBatch?: (n: number) => void }) {
  const { store, logger, clock, portalId } = o;
  const queue: Item[] = [];
  let running = false;
  // Entry keys whose "pending" record this process reserved (reserve) and has not sent yet: on the step's first run
  // there is no note to look for (on a later one another instance may have made it).
  const untried = createUntried();
  const pending = (ticketId: string): NoteRecord => ({ status: 'pending', noteId: null, ticketId, at: clock.now() });

  /** Batch-updates one object type; returns the ids HubSpot says do not exist. Other failures throw. */
  async function updateAll(kind: 'tickets' | 'companies', byId: Map<string, Record<string, string>>): Promise<Set<string>> {
    const gone = new Set<string>();
    const s = o.session();
    for (const part of chunks([...byId.entries()], BATCH_LIMIT)) {
      let inputs = part.map(([id, properties]) => ({ id, properties }));
      for (let round = 0; round < 2 && inputs.length; round++) {
        let res: BatchResult | null = null;
        let err: unknown = null;
        try {
          res = (await s.run(`update the Tierline properties on ${inputs.length} ${kind}`, (c) => (kind === 'tickets' ? c.crm.tickets.batchApi.update({ inputs }) : c.crm.companies.batchApi.update({ inputs })))) as BatchResult;
        } catch (e) {
          err = e;
        }
        const missing = missingOf(res, err);
        for (const id of missing) gone.add(id);
        if (err && !missing.size) throw err;
        // A thrown OBJECT_NOT_FOUND rejected the whole batch: send the others again without the missing ones.
        inputs = err ? inputs.filter((i) => !missing.has(i.id)) : [];
      }
    }
    return gone;
  }

  /** Looks for the note of an entry among the ticket's notes (the retry path after a crash mid-write). */
  async function findNote(ticketId: string, entryKey: string): Promise<string | null> {
    const s = o.session();
    const marker = noteMarker(entryKey);
    const ids: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const r = (await s.run(`list the notes of ticket ${ticketId}`, (c) => c.crm.associations.v4.basicApi.getPage('tickets', ticketId, 'notes', after, 500))) as { results?: { toObjectId: string | number }[]; paging?: { next?: { after?: string } } };
      ids.push(...(r.results ?? []).map((x) => String(x.toObjectId)));
      after = r.paging?.next?.after;
      if (!after) break;
    }
    for (const part of chunks(ids, BATCH_LIMIT)) {
      const r = (await s.run(`read the notes of ticket ${ticketId}`, (c) => c.crm.objects.notes.batchApi.read({ inputs: part.map((id) => ({ id })), properties: ['hs_note_body'], propertiesWithHistory: [] }))) as BatchResult;
      const hit = (r.results ?? []).find((n) => (n.properties?.hs_note_body ?? '').includes(marker));
      if (hit) return hit.id;
    }
    return null;
  }

  async function writeNotes(items: Item[], companiesGone: Set<string>): Promise<Map<Item, unknown>> {
    const failed = new Map<Item, unknown>();
    const todo: Item[] = [];
    const recorded = new Set<Item>();
    for (const i of items) {
      const rec = await store.kvGet<NoteRecord>(NS.notes, i.entryKey);
      if (rec?.status === 'done') continue;
      if (rec?.status === 'pending') recorded.add(i);
      if (rec?.status === 'pending' && !untried.has(i.entryKey, i.firstRun)) {
        try {
          const found = await findNote(i.ticketId, i.entryKey);
          if (found) {
            await store.kvPut(NS.notes, i.entryKey, { status: 'done', noteId: found, ticketId: i.ticketId, at: clock.now() } satisfies NoteRecord, { ttlMs: FINISHED_WORK_TTL_MS });
            continue;
          }
        } catch (e) {
          failed.set(i, e);
          continue;
        }
      }
      // The same entry twice in one batch (a retry racing the first attempt) gets one note.
      if (todo.some((x) => x.entryKey === i.entryKey)) continue;
      todo.push(i);
    }
    const s = o.session();
    for (const part of chunks(todo, BATCH_LIMIT)) {
      // On disk before the create (all in one write, unless reserved with the step): a retry after a crash then looks
      // for the note first.
      await Promise.all(part.filter((i) => !recorded.has(i)).map((i) => store.kvPut(NS.notes, i.entryKey, pending(i.ticketId))));
      for (const i of part) untried.take(i.entryKey, i.firstRun);
      const inputs = part.map((i) => ({
        objectWriteTraceId: i.entryKey,
        properties: { hs_note_body: i.note.body, hs_timestamp: i.note.timestamp },
        associations: [
          { to: { id: i.ticketId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: NOTE_TO_TICKET }] },
          ...(i.companyId && !companiesGone.has(i.companyId) ? [{ to: { id: i.companyId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: NOTE_TO_COMPANY }] }] : []),
        ],
      }));
      try {
        const r = (await s.run(`add ${part.length} routing note${part.length === 1 ? '' : 's'}`, (c) => c.crm.objects.notes.batchApi.create({ inputs } as never), { idempotent: false })) as BatchResult;
        // Not waited onto disk: if a crash takes "done", the "pending" record makes the retry find the note.
        await Promise.all(
          part.map((i) => {
            // Results come in no particular order: match them by trace id, or by the marker in the body.
            const hit = (r.results ?? []).find((n) => n.objectWriteTraceId === i.entryKey || (n.properties?.hs_note_body ?? '').includes(noteMarker(i.entryKey)));
            return store.kvPut(NS.notes, i.entryKey, { status: 'done', noteId: hit?.id ?? null, ticketId: i.ticketId, at: clock.now() } satisfies NoteRecord, { ttlMs: FINISHED_WORK_TTL_MS, awaitFlush: false });
          }),
        );
      } catch (e) {
        for (const i of part) failed.set(i, e);
      }
    }
    return failed;
  }

  async function processBatch(items: Item[]): Promise<void> {
    o.onBatch?.(items.length);
    // 1. tickets: one update per ticket (every item carries the current outcome, the last one is the newest)
    const tickets = new Map<string, Record<string, string>>();
    for (const i of items) tickets.set(i.ticketId, i.ticketProperties);
    let ticketsGone: Set<string>;
    try {
      ticketsGone = await updateAll('tickets', tickets);
    } catch (err) {
      for (const i of items) i.reject(err);
      return;
    }
    const live = items.filter((i) => {
      if (!ticketsGone.has(i.ticketId)) return true;
      i.reject(new AppError('not_found', `Ticket ${i.ticketId} no longer exists in HubSpot portal ${portalId} (deleted or merged), so its routing outcome cannot be written back; nothing to do unless it is restored.`));
      return false;
    });
    if (!live.length) return;

    // 2. companies: the same outcome on the company record; a company deleted since routing does not block the ticket
    const companies = new Map<string, Record<string, string>>();
    for (const i of live) if (i.companyId) companies.set(i.companyId, i.companyProperties);
    let companiesGone = new Set<string>();
    if (companies.size) {
      try {
        companiesGone = await updateAll('companies', companies);
        if (companiesGone.size) logger.warn('hubspot companies gone since routing; outcome written on the tickets only', { portal: portalId, companies: [...companiesGone] });
      } catch (err) {
        for (const i of live) i.reject(err);
        return;
      }
    }

    // 3. notes on the timeline (ticket and company), once per history entry
    let failed: Map<Item, unknown>;
    try {
      failed = await writeNotes(live, companiesGone);
    } catch (err) {
      for (const i of live) i.reject(err);
      return;
    }
    for (const i of live) {
      const e = failed.get(i);
      if (e) i.reject(e);
      else i.resolve();
    }
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      // Let the write-backs started in the same turn of the event loop join this batch.
      await new Promise<void>((ok) => setImmediate(ok));
      while (queue.length) {
        const items = queue.splice(0, BATCH_LIMIT);
        try {
          await processBatch(items);
        } catch (err) {
          // Settled items ignore this; the rest must not wait forever on a bug or a store failure.
          for (const i of items) i.reject(err);
        }
      }
    } finally {
      running = false;
      if (queue.length) void drain();
    }
  }

  return {
    /** The "pending" record of a note, for the pipeline to store with the commit that records its history entry. */
    async reserve(ticketId: string, entryKey: string): Promise<Reservation[]> {
      if (await store.kvGet<NoteRecord>(NS.notes, entryKey)) return [];
      untried.add(entryKey);
      return [{ ns: NS.notes, key: entryKey, value: pending(ticketId) }];
    },

    write(req: WriteRequest): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        queue.push({ ...req, resolve, reject });
        if (!running) void drain();
      });
    },
  };
}
