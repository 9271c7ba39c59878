// Limits and faults: the per-portal token bucket (HubSpot's limit is shared by all work for a portal), 429 handled
// with the server's policy (bucket paused, rate_limited with retryAfterMs, the pipeline retries later), 5xx and
// timeouts retried with backoff then surfaced as upstream, and write-backs batched at 100 inputs per call.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { CrmWriteBack } from '../../../core/ports.ts';
import { ticketKey } from '../../../core/segment.ts';
import { NS } from '../../../connectors/hubspot/client.ts';
import { createBucket } from '../../../connectors/hubspot/limiter.ts';
import { fakeTime, startHarness, writeBackFor, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const ref = (x: Harness, id: string, portal = x.sb.portalId) => ({ crm: 'hubspot' as const, account: portal, ticketId: id });

describe('HubSpot limiter', () => {
  it('hands out the window’s requests at once, then spaces the rest evenly', async () => {
    const t = fakeTime();
    const b = createBucket({ capacity: 3, windowMs: 3_000, now: t.now, sleep: t.sleep });
    for (let i = 0; i < 5; i++) await b.take();
    expect(t.sleeps).toEqual([1_000, 1_000]);
    b.pause(5_000);
    expect(b.headroom()).toMatchObject({ available: 0, pausedForMs: 5_000 });
    await b.take();
    expect(t.sleeps.slice(2)).toEqual([5_000]);
  });

  it('keeps every portal within its own limit: the (limit + 1)th request of a window waits, other portals do not', async () => {
    const seenAtSleep: number[] = [];
    const time = fakeTime();
    h = await startHarness({ start: false, tuning: { rateLimit: 4, rateWindowMs: 10_000, now: time.now, sleep: async (ms) => {
      seenAtSleep.push(h!.sb.requests({ path: '/crm/' }).length);
      await time.sleep(ms);
    } } });
    const second = h.sb.addPortal({ seed: true });
    await h.connector.start(); // provisioning alone needs more than 4 requests
    expect(seenAtSleep[0]).toBe(4);
    expect(time.sleeps.every((ms) => ms === 2_500)).toBe(true); // 10 s / 4

    // The private app portal's bucket is empty now; a second portal (OAuth) has its own.
    await h.store.kvPut('hubspot:installs', second.portalId, { portalId: second.portalId, flow: 'oauth', hubDomain: null, currency: 'USD', timeZone: null, scopes: [], appId: null, accessToken: null, refreshToken: null, expiresAt: null, installedAt: 0, refreshedAt: null, provisioned: null });
    const health = await h.connector.health();
    const own = (health.portals as { portalId: string; limiter: { available: number; capacity: number } }[]).find((p) => p.portalId === h!.sb.portalId)!;
    const other = (health.portals as { portalId: string; limiter: { available: number; capacity: number } }[]).find((p) => p.portalId === second.portalId)!;
    expect(own.limiter).toMatchObject({ available: 0, capacity: 4 });
    expect(other.limiter).toMatchObject({ available: 4, capacity: 4 });
  });
});

describe('HubSpot 429', () => {
  it('pauses the portal, surfaces rate_limited with retryAfterMs, and the pipeline routes the ticket on its retry', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Busy portal', notify: false });
    h.sb.inject429(1);
    const e = await h.connector.crm.fetchContext(ref(h, t.id)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: 'rate_limited', retryAfterMs: 10_000 });
    expect((e as AppError).message).toContain('TEN_SECONDLY_ROLLING');
    const health = await h.connector.health();
    expect((health.portals as { limiter: { pausedForMs: number } }[])[0]!.limiter.pausedForMs).toBe(10_000);
    expect(health.lastError).toContain('rate_limited');

    // Through the pipeline: the first attempt meets the 429, the retry (10 s later) routes.
    h.sb.inject429(1);
    await h.sb.sendEvents([h.sb.event('ticket.creation', t.id)]);
    await h.drain({ advanceMs: 10_000 });
    expect((await h.store.getTicket(ticketKey(ref(h, t.id))))!.routedAt).not.toBeNull();
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    // The paused bucket made the next call wait out the window instead of hitting HubSpot again at once.
    expect(h.time.sleeps).toContain(10_000);
  });

  it('honours Retry-After and the daily policy', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Retry-After', notify: false });
    h.sb.inject429(1, { retryAfterSec: 3 });
    expect(await h.connector.crm.fetchContext(ref(h, t.id)).catch((x: unknown) => x)).toMatchObject({ code: 'rate_limited', retryAfterMs: 3_000 });
    h.sb.inject429(1, { policyName: 'DAILY' });
    expect(await h.connector.crm.fetchContext(ref(h, t.id)).catch((x: unknown) => x)).toMatchObject({ code: 'rate_limited', retryAfterMs: 3_600_000 });
  });
});

describe('HubSpot 5xx and timeouts', () => {
  it('retries 5xx with backoff inside one call and succeeds', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Flaky', notify: false });
    h.sb.inject5xx(2, { match: { path: '/crm/v3/objects/tickets/' } });
    h.time.sleeps.length = 0;
    h.sb.clearRequests();
    expect((await h.connector.crm.fetchContext(ref(h, t.id))).subject).toBe('Flaky');
    expect(h.sb.requests({ path: `/crm/v3/objects/tickets/${t.id}` }).map((r) => r.status)).toEqual([502, 502, 200]);
    expect(h.time.sleeps).toEqual([10, 20]);
  });

  it('gives up after the attempts with upstream, which the pipeline retries later', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Down', notify: false });
    h.sb.inject5xx(4, { status: 503 });
    const e = await h.connector.crm.fetchContext(ref(h, t.id)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'upstream' });
    expect((e as AppError).message).toMatch(/HubSpot failed "read ticket \d+" in HubSpot portal \d+ \(503: internal error\); Tierline will try again\./);

    // A write-back during an outage: the pipeline keeps the job and succeeds once HubSpot is back.
    await h.sb.sendEvents([h.sb.event('ticket.creation', t.id)]);
    h.sb.inject5xx(4, { match: { path: '/batch/update' } });
    await h.drain({ advanceMs: 5_000 });
    expect(h.sb.ticket(t.id)!.properties.tierline_status).toBeTruthy();
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
  });

  it('treats a request that never answers as a timeout and retries it', async () => {
    h = await startHarness({ tuning: { timeoutMs: 150 } });
    const t = await h.sb.createTicket({ subject: 'Hung', notify: false });
    h.sb.injectTimeout(1, { match: { path: `/crm/v3/objects/tickets/${t.id}` } });
    h.sb.clearRequests();
    expect((await h.connector.crm.fetchContext(ref(h, t.id))).subject).toBe('Hung');
    expect(h.sb.requests({ path: `/crm/v3/objects/tickets/${t.id}` })).toHaveLength(2);
  });
});

describe('HubSpot write-back after a lost answer', () => {
  it('does not create a note twice when HubSpot made it but its answer was lost', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Lost answer', notify: false });
    h.sb.injectLostResponse(1, { match: { path: '/crm/v3/objects/notes/batch/create' } });
    const first = await h.connector.crm.writeBack(ref(h, t.id), writeBackFor(h, t.id, t.companyId)).catch((x: unknown) => x);
    expect(first).toMatchObject({ code: 'upstream' });
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1); // HubSpot has it; we do not know yet
    expect(h.sb.requests({ path: '/crm/v3/objects/notes/batch/create' })).toHaveLength(1); // not re-sent blindly
    // The pipeline's retry finds the note by its marker instead of adding another.
    await h.connector.crm.writeBack(ref(h, t.id), writeBackFor(h, t.id, t.companyId));
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    expect(h.sb.requests({ path: '/crm/v3/objects/notes/batch/create' })).toHaveLength(1);
  });

  it('a note reserved with the step is created without a search, and one reserved by an earlier process is looked for first', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Reserved note', notify: false });
    const update = writeBackFor(h, t.id, t.companyId);
    // The pipeline stores the reservation with the commit that queues the write-back.
    const reserved = await h.connector.crm.reserveWriteBack!(ref(h, t.id), update.entry.key);
    expect(reserved).toEqual([{ ns: NS.notes, key: update.entry.key, value: expect.objectContaining({ status: 'pending', ticketId: t.id }) }]);
    for (const r of reserved) await h.store.kvPut(r.ns, r.key, r.value);
    expect(await h.connector.crm.reserveWriteBack!(ref(h, t.id), update.entry.key)).toEqual([]); // never over an existing record
    h.sb.clearRequests();
    await h.connector.crm.writeBack(ref(h, t.id), { ...update, firstRun: true });
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    expect(h.sb.requests({ path: `/crm/v4/objects/tickets/${t.id}/associations/notes` })).toHaveLength(0);

    // A pending record this process did not reserve (it was made before a crash): the create may have happened.
    const u = await h.sb.createTicket({ subject: 'Reserved before a crash', notify: false });
    const later = writeBackFor(h, u.id, u.companyId);
    await h.store.kvPut(NS.notes, later.entry.key, { status: 'pending', noteId: null, ticketId: u.id, at: h.clock.now() });
    h.sb.clearRequests();
    await h.connector.crm.writeBack(ref(h, u.id), later);
    expect(h.sb.requests({ path: `/crm/v4/objects/tickets/${u.id}/associations/notes` }).length).toBeGreaterThan(0);
    expect(h.sb.ticket(u.id)!.notes).toHaveLength(1);
  });

  it('a note reserved here is looked for first when another instance may have run the step (a later claim)', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Reserved here, sent there', notify: false });
    const update = writeBackFor(h, t.id, t.companyId);
    for (const r of await h.connector.crm.reserveWriteBack!(ref(h, t.id), update.entry.key)) await h.store.kvPut(r.ns, r.key, r.value);
    // Another instance claims the step first, creates the note and dies before recording it.
    const other = await h.anotherInstance();
    h.sb.injectLostResponse(1, { match: { path: '/crm/v3/objects/notes/batch/create' } });
    await other.crm.writeBack(ref(h, t.id), { ...update, firstRun: true }).catch(() => undefined);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    await other.stop();

    // Its lease runs out and the step comes back to the instance that reserved the record, on its second claim.
    await h.connector.crm.writeBack(ref(h, t.id), { ...update, firstRun: false });
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    expect(h.sb.requests({ path: '/crm/v3/objects/notes/batch/create' })).toHaveLength(1);
  });

  it('a reserved note whose create lost its answer is looked for on the retry, not created again', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Reserved, answer lost', notify: false });
    const update = writeBackFor(h, t.id, t.companyId);
    for (const r of await h.connector.crm.reserveWriteBack!(ref(h, t.id), update.entry.key)) await h.store.kvPut(r.ns, r.key, r.value);
    h.sb.injectLostResponse(1, { match: { path: '/crm/v3/objects/notes/batch/create' } });
    expect(await h.connector.crm.writeBack(ref(h, t.id), update).catch((x: unknown) => x)).toMatchObject({ code: 'upstream' });
    await h.connector.crm.writeBack(ref(h, t.id), update);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
    expect(h.sb.requests({ path: '/crm/v3/objects/notes/batch/create' })).toHaveLength(1);
  });

  it('repeats an idempotent property update whose answer was lost', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Lost update answer', notify: false });
    h.sb.injectLostResponse(1, { match: { path: '/crm/v3/objects/tickets/batch/update' } });
    await h.connector.crm.writeBack(ref(h, t.id), writeBackFor(h, t.id, null));
    expect(h.sb.requests({ path: '/crm/v3/objects/tickets/batch/update' }).map((r) => r.status)).toEqual([504, 200]);
    expect(h.sb.ticket(t.id)!.notes).toHaveLength(1);
  });
});

describe('HubSpot batch write-back', () => {
  it('sends many concurrent write-backs as batches of at most 100 inputs', async () => {
    h = await startHarness();
    const globex = h.company('Globex Corporation');
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) ids.push((await h.sb.createTicket({ subject: `Burst ${i}`, companyId: globex.id, notify: false })).id);
    h.sb.clearRequests();
    const wbs: [ReturnType<typeof ref>, CrmWriteBack][] = ids.map((id) => [ref(h!, id), writeBackFor(h!, id, globex.id)]);
    await Promise.all(wbs.map(([r, wb]) => h!.connector.crm.writeBack(r, wb)));
    const sizes = (path: string) => h!.sb.requests({ path }).map((r) => (r.body as { inputs: unknown[] }).inputs.length);
    expect(sizes('/crm/v3/objects/tickets/batch/update')).toEqual([100, 50]);
    expect(sizes('/crm/v3/objects/companies/batch/update')).toEqual([1, 1]);
    expect(sizes('/crm/v3/objects/notes/batch/create')).toEqual([100, 50]);
    expect(ids.every((id) => h!.sb.ticket(id)!.notes.length === 1)).toBe(true);
    expect(h.sb.company(globex.id)!.notes).toHaveLength(150);
  });

  it('writes the other tickets of a batch when one was deleted, and the outcome stays off a deleted company', async () => {
    h = await startHarness();
    const a = await h.sb.createTicket({ subject: 'Kept', notify: false });
    const b = await h.sb.createTicket({ subject: 'Deleted', notify: false });
    h.sb.deleteTicket(b.id);
    h.sb.deleteCompany(a.companyId!);
    const [ra, rb] = await Promise.allSettled([h.connector.crm.writeBack(ref(h, a.id), writeBackFor(h, a.id, a.companyId)), h.connector.crm.writeBack(ref(h, b.id), writeBackFor(h, b.id, b.companyId))]);
    expect(ra.status).toBe('fulfilled');
    expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'not_found' } });
    expect(h.sb.ticket(a.id)!.notes[0]!.companyIds).toEqual([]);
    expect(h.sb.requests({ path: '/crm/v3/objects/tickets/batch/update' })).toHaveLength(1);
  });
});
