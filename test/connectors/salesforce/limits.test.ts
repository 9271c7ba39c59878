// API limits and faults: Sforce-Limit-Info tracked per org with a console alert at 80 %, calls slowed near the end of
// the daily allocation and write-backs held at the very end; REQUEST_LIMIT_EXCEEDED and 5xx on writes retried by our
// own backoff (jsforce would not retry a PATCH); batches of write-backs split at 200 records per Collections call.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { CrmWriteBack, RoutingFields } from '../../../core/ports.ts';
import type { TicketRef } from '../../../core/segment.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const fields: RoutingFields = { status: 'assigned', queue: 'Priority', agent: 'Bruno Costa', segment: 'premium · billing', tier: 'premium', rule: 'premium', routedAt: '2026-11-02T09:00:00.000Z', topicLink: 'https://t.me/c/1/5', firstResponseMinutes: null, resolvedAt: null, slaMet: null, reason: 'Priority -> Bruno Costa (rule premium)' };

function writeBackFor(x: Harness, caseId: string, seq = 1): [TicketRef, CrmWriteBack] {
  const ref: TicketRef = { crm: 'salesforce', account: x.sb.orgId, ticketId: caseId };
  const key = `salesforce:${x.sb.orgId}:${caseId}`;
  return [ref, { entry: { key: `${key}#${seq}`, ticketKey: key, seq, kind: 'routed', at: x.clock.now(), queueId: 'priority', agentId: 'bruno', ruleId: 'premium', tier: 'premium', text: 'Routed to Priority' }, fields, companyId: null }];
}

async function newCase(x: Harness, subject = 'Limits') {
  return (await x.sb.createCase({ subject, notify: false })).id;
}

describe('Salesforce API allocation', () => {
  it('tracks Sforce-Limit-Info per org and alerts in health at 80 %', async () => {
    h = await startHarness();
    const id = await newCase(h);
    h.sb.setLimit(5_000, 100_000);
    await h.connector.crm.fetchContext({ crm: 'salesforce', account: h.sb.orgId, ticketId: id });
    let health = await h.connector.health();
    expect(health.apiUsagePercent).toBe(5);
    expect(health.alert).toBeNull();

    h.sb.setLimit(84_000, 100_000);
    await h.connector.crm.fetchContext({ crm: 'salesforce', account: h.sb.orgId, ticketId: id });
    health = await h.connector.health();
    expect(health.apiUsagePercent).toBe(84);
    expect(health.alert).toBe(`Salesforce org ${h.sb.orgId} has used 84% of its daily API allocation (84001 of 100000).`);
    expect(health.detail).toContain('API 84% used');
    expect(health.ok).toBe(true);
  });

  it('slows down near exhaustion and holds write-backs at the end, keeping reads for routing', async () => {
    const sleeps: number[] = [];
    h = await startHarness({ connector: { tuning: { sleep: async (ms) => void sleeps.push(ms) } } });
    const id = await newCase(h);
    const ref: TicketRef = { crm: 'salesforce', account: h.sb.orgId, ticketId: id };

    h.sb.setLimit(94_000, 100_000);
    await h.connector.crm.fetchContext(ref); // learns the usage
    await h.connector.crm.fetchContext(ref);
    expect(sleeps.at(-1)).toBeGreaterThan(0); // 94 % -> waits before calling
    expect((await h.connector.health()).alert).toContain('slowing down');

    h.sb.setLimit(98_500, 100_000);
    await h.connector.crm.fetchContext(ref);
    h.sb.clearRequests();
    const err = await h.connector.crm.writeBack(...writeBackFor(h, id)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('rate_limited');
    expect((err as AppError).retryAfterMs).toBe(15 * 60_000);
    expect((err as AppError).message).toContain('holds write-backs');
    expect(h.sb.requests({ method: 'PATCH' })).toEqual([]); // nothing sent
    await expect(h.connector.crm.fetchContext(ref)).resolves.toBeTruthy(); // routing reads still go
    expect((await h.connector.health()).alert).toContain('write-backs are on hold');

    // Once the window frees up, the held write-back goes through.
    h.sb.setLimit(40_000, 100_000);
    await h.connector.crm.fetchContext(ref);
    await h.connector.crm.writeBack(...writeBackFor(h, id));
    expect(h.sb.routingEvents(id)).toHaveLength(1);
  });
});

describe('Salesforce faults on write', () => {
  it('retries REQUEST_LIMIT_EXCEEDED on a write with its own backoff, then succeeds once', async () => {
    const sleeps: number[] = [];
    h = await startHarness({ connector: { tuning: { sleep: async (ms) => void sleeps.push(ms), retryBaseMs: 100 } } });
    const id = await newCase(h);
    h.sb.injectError('REQUEST_LIMIT_EXCEEDED', 1, { method: 'PATCH' });
    h.sb.clearRequests();
    await h.connector.crm.writeBack(...writeBackFor(h, id));
    expect(h.sb.requests({ method: 'PATCH' }).map((r) => `${r.status} ${r.path}`)).toEqual(['403 /composite/sobjects', '200 /composite/sobjects', '200 /composite/sobjects/Routing_Event__c/Event_Key__c']);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(75);
    expect(h.sb.case(id)!.Tierline_Queue__c).toBe('Priority');
    expect(h.sb.routingEvents(id)).toHaveLength(1);
  });

  it('retries a 5xx on the upsert without duplicating the history', async () => {
    h = await startHarness();
    const id = await newCase(h);
    h.sb.injectError('SERVER_UNAVAILABLE', 2, { path: '/Routing_Event__c/' });
    await h.connector.crm.writeBack(...writeBackFor(h, id));
    expect(h.sb.routingEvents(id)).toHaveLength(1);
  });

  it('gives up after its attempts with rate_limited or upstream, for the pipeline to retry later', async () => {
    h = await startHarness();
    const id = await newCase(h);
    h.sb.injectError('REQUEST_LIMIT_EXCEEDED', 4, { method: 'PATCH' });
    const limited = await h.connector.crm.writeBack(...writeBackFor(h, id)).catch((e: unknown) => e);
    expect((limited as AppError).code).toBe('rate_limited');
    expect((limited as AppError).message).toContain('REQUEST_LIMIT_EXCEEDED');
    expect((limited as AppError).retryAfterMs).toBeGreaterThan(0);

    h.sb.injectError('UNKNOWN_EXCEPTION', 4, { method: 'PATCH' });
    const down = await h.connector.crm.writeBack(...writeBackFor(h, id)).catch((e: unknown) => e);
    expect((down as AppError).code).toBe('upstream');
    expect(h.sb.routingEvents(id)).toHaveLength(0);

    await h.connector.crm.writeBack(...writeBackFor(h, id));
    expect(h.sb.routingEvents(id)).toHaveLength(1);
  });

  it('refreshes an expired session in the middle of a write and carries on', async () => {
    h = await startHarness();
    const id = await newCase(h);
    h.sb.injectError('INVALID_SESSION_ID', 1, { method: 'PATCH' });
    await h.connector.crm.writeBack(...writeBackFor(h, id));
    expect(h.sb.routingEvents(id)).toHaveLength(1);
  });

  it('retries a read that hit a 503 (jsforce\'s own retries are off; ours apply to reads too)', async () => {
    h = await startHarness();
    const id = await newCase(h);
    h.sb.injectError('SERVER_UNAVAILABLE', 2, { method: 'GET' });
    await expect(h.connector.crm.fetchContext({ crm: 'salesforce', account: h.sb.orgId, ticketId: id })).resolves.toMatchObject({ subject: 'Limits' });
  });
});

describe('Salesforce write-back batching', () => {
  it('sends concurrent write-backs as sObject Collections of at most 200 records', async () => {
    h = await startHarness();
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) ids.push(await newCase(h, `Case ${i}`));
    h.sb.clearRequests();
    // The first of them on its own, then a burst (the pipeline runs tickets in parallel).
    await h.connector.crm.writeBack(...writeBackFor(h, ids[0]!));
    await Promise.all(ids.slice(1).map((id) => h!.connector.crm.writeBack(...writeBackFor(h!, id))));
    const calls = h.sb.requests({ method: 'PATCH' });
    expect(calls.every((c) => (c.records ?? 0) <= 200)).toBe(true);
    expect(calls.filter((c) => c.path === '/composite/sobjects').map((c) => c.records)).toEqual([1, 200, 49]);
    expect(calls.filter((c) => c.path.includes('Routing_Event__c')).map((c) => c.records)).toEqual([1, 200, 49]);
    expect(ids.every((id) => h!.sb.routingEvents(id).length === 1)).toBe(true);
  });

  it('fails only the record that failed: one deleted Case in a batch does not block the others', async () => {
    h = await startHarness();
    const a = await newCase(h, 'A');
    const b = await newCase(h, 'B');
    h.sb.deleteCase(a);
    const [ra, rb] = await Promise.allSettled([h.connector.crm.writeBack(...writeBackFor(h, a)), h.connector.crm.writeBack(...writeBackFor(h, b))]);
    expect(ra.status).toBe('rejected');
    expect(((ra as PromiseRejectedResult).reason as AppError).code).toBe('not_found');
    expect(rb.status).toBe('fulfilled');
    expect(h.sb.routingEvents(b)).toHaveLength(1);
    expect(h.sb.requests({ method: 'PATCH', path: '/composite/sobjects' }).filter((r) => r.path === '/composite/sobjects')).toHaveLength(1);
  });

  it('writes the history without the Account link when the Account was deleted since routing', async () => {
    h = await startHarness();
    const acc = h.sb.accounts().find((x) => x.Name === 'Initech')!;
    const id = (await h.sb.createCase({ subject: 'Orphan', accountId: acc.Id, notify: false })).id;
    const [ref, wb] = writeBackFor(h, id);
    wb.companyId = '001TL0000000000'; // an account that does not exist (deleted or merged away)
    await h.connector.crm.writeBack(ref, wb);
    expect(h.sb.routingEvents(id)).toMatchObject([{ Account__c: null, Kind__c: 'routed' }]);
  });
});
