// Write-back through sObject Collections: write-backs that arrive together (the pipeline runs tickets in parallel)
// are sent as one Case update and one Routing_Event__c upsert per 200 records, instead of two calls each. Every
// record is idempotent on its own (update by Id, upsert on Event_Key__c), so retrying a whole call is safe.
import { AppError } from '../../core/errors.ts';
import type { OrgSession } from './client.ts';
import { classify, DEPLOY_HINT, toAppError } from './errors.ts';

export const COLLECTION_LIMIT = 200;

type SaveResult = { id?: string; success: boolean; errors?: { statusCode?: string; message?: string; fields?: string[] }[]; created?: boolean };
type Item = { caseUpdate: Record<string, unknown>; event: Record<string, unknown>; resolve: () => void; reject: (e: unknown) => void };

function recordError(r: SaveResult | undefined, orgId: string, action: string): AppError {
  const e = r?.errors?.[0];
  const code = e?.statusCode ?? 'UNKNOWN_EXCEPTION';
  const fields = e?.fields?.length ? ` [${e.fields.join(', ')}]` : '';
  return toAppError(classify(code, `${e?.message ?? 'no result for this record'}${fields}`), { orgId, action });
}

export function createWriter(session: () => Promise<OrgSession>, orgId: string, opts: { onBatch?: (n: number) => void } = {}) {
  const queue: Item[] = [];
  let running: Promise<void> | null = null;

  async function processBatch(items: Item[]): Promise<void> {
    let s: OrgSession;
    try {
      s = await session();
    } catch (err) {
      for (const i of items) i.reject(err);
      return;
    }
    opts.onBatch?.(items.length);
    // Several entries of one Case in a batch: one update (the latest outcome; every item carries the current one).
    const byCase = new Map<string, Record<string, unknown>>();
    for (const i of items) byCase.set(String(i.caseUpdate.Id), i.caseUpdate);
    const caseIds = [...byCase.keys()];
    const caseErrors = new Map<string, AppError>();
    try {
      const results = (await s.run('write', 'update the Tierline fields on Cases', (conn) => conn.sobject('Case').update([...byCase.values()] as never, { allOrNone: false }))) as unknown as SaveResult[];
      caseIds.forEach((id, n) => {
        const r = results[n];
        if (!r?.success) caseErrors.set(id, recordError(r, orgId, `update Case ${id}`));
      });
    } catch (err) {
      for (const i of items) i.reject(err);
      return;
    }
    const pending = items.filter((i) => {
      const e = caseErrors.get(String(i.caseUpdate.Id));
      if (e) i.reject(e);
      return !e;
    });
    if (!pending.length) return;
    try {
      let results = (await s.run('write', 'upsert Routing_Event__c records', (conn) => conn.sobject('Routing_Event__c').upsert(pending.map((i) => i.event) as never, 'Event_Key__c', { allOrNone: false }))) as unknown as SaveResult[];
      // An Account deleted or merged since routing must not block the history: write those without the account.
      const orphaned = pending.map((i, n) => ({ i, n })).filter(({ n }) => !results[n]?.success && results[n]?.errors?.some((e) => e.fields?.includes('Account__c')));
      if (orphaned.length) {
        const retry = (await s.run('write', 'upsert Routing_Event__c records', (conn) => conn.sobject('Routing_Event__c').upsert(orphaned.map(({ i }) => ({ ...i.event, Account__c: null })) as never, 'Event_Key__c', { allOrNone: false }))) as unknown as SaveResult[];
        results = [...results];
        orphaned.forEach(({ n }, k) => (results[n] = retry[k]!));
      }
      pending.forEach((i, n) => {
        const r = results[n];
        if (r?.success) i.resolve();
        else i.reject(recordError(r, orgId, `record routing event ${String(i.event.Event_Key__c)}`));
      });
    } catch (err) {
      // The collections upsert URL names the object and the external id: a 404 there means they are missing.
      const e = err instanceof AppError && err.code === 'not_found' ? new AppError('misconfigured', `Salesforce org ${orgId} has no Routing_Event__c object with the external id field Event_Key__c (or the Tierline user cannot see them), needed to record the routing history: ${DEPLOY_HINT}.`, { cause: err }) : err;
      for (const i of pending) i.reject(e);
    }
  }

  async function drain(): Promise<void> {
    // Let the write-backs started in the same turn of the event loop join this batch.
    await new Promise<void>((ok) => setImmediate(ok));
    while (queue.length) {
      const items = queue.splice(0, COLLECTION_LIMIT);
      await processBatch(items);
    }
  }

  function start(): void {
    running = drain().finally(() => {
      running = null;
      // A write queued after the loop's last check but before this callback must not wait for the next one.
      if (queue.length) start();
    });
  }

  return {
    write(caseUpdate: Record<string, unknown>, event: Record<string, unknown>): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        queue.push({ caseUpdate, event, resolve, reject });
        if (!running) start();
      });
    },
  };
}
