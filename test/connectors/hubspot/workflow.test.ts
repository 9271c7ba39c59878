// The "Route to Telegram" workflow action round trip: HubSpot POSTs the v4 request (signature v2), Tierline answers
// BLOCK, routes the ticket, and completes the callback with queue, agent and topic link once the outcome is written
// back; retries of the request complete it once; tickets routed before the workflow ran are completed at once.
import { afterEach, describe, expect, it } from 'vitest';
import { ticketKey } from '../../../core/segment.ts';
import { CLIENT_SECRET, startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('HubSpot workflow action: Route to Telegram', () => {
  it('answers BLOCK, routes, then completes the callback with queue, agent and topic link', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Refund request', companyId: h.company('Umbrella Health').id, category: 'BILLING_ISSUE', notify: false });
    const r = await h.sb.runWorkflowAction(t.id);
    expect(r).toMatchObject({ status: 200, body: { outputFields: { hs_execution_state: 'BLOCK' } } });
    expect(h.accepted).toEqual([{ idempotencyKey: `hubspot:wa:${r.callbackId}`, ref: { crm: 'hubspot', account: h.sb.portalId, ticketId: t.id }, reason: 'workflow', at: h.clock.now() }]);
    expect(h.sb.callback(r.callbackId)!.state).toBe('BLOCKED');

    await h.drain();
    const cb = h.sb.callback(r.callbackId)!;
    expect(cb.state).toBe('COMPLETED');
    const rec = (await h.store.getTicket(ticketKey({ crm: 'hubspot', account: h.sb.portalId, ticketId: t.id })))!;
    // Umbrella Health: premium with 78 % churn risk -> the VIP desk.
    expect(rec.ruleId).toBe('premium-at-risk');
    expect(cb.outputFields).toEqual({ hs_execution_state: 'SUCCESS', queue: 'VIP desk', agent: expect.any(String), topic_link: rec.topic!.link });
    expect(cb.outputFields!.agent).not.toBe('');
    expect(await h.store.kvList('hubspot:callbacks')).toEqual([]);
  });

  it('lets the workflow go on down its failure path when the ticket is closed and so not routed', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Solved last year', stage: '4', notify: false });
    const r = await h.sb.runWorkflowAction(t.id);
    expect(r.body).toEqual({ outputFields: { hs_execution_state: 'BLOCK' } });
    await h.drain();
    expect(h.sb.callback(r.callbackId)).toMatchObject({ state: 'COMPLETED', outputFields: { hs_execution_state: 'FAIL_CONTINUE', queue: '', agent: '', topic_link: '' } });
    expect(await h.store.getTicket(ticketKey({ crm: 'hubspot', account: h.sb.portalId, ticketId: t.id }))).toBeNull();
    expect(h.messenger.topics).toHaveLength(0);
    expect(await h.store.kvList('hubspot:callbacks')).toEqual([]);
  });

  it('answers a closed ticket enrolled again, and routes it when enrolled after it was reopened', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Closed, then reopened', stage: '4', notify: false });
    const first = await h.sb.runWorkflowAction(t.id);
    await h.drain();
    expect(h.sb.callback(first.callbackId)!.outputFields!.hs_execution_state).toBe('FAIL_CONTINUE');
    // The same workflow enrols it again (re-enrolment on), still closed: answered too, not left waiting.
    const second = await h.sb.runWorkflowAction(t.id);
    await h.drain();
    expect(h.sb.callback(second.callbackId)).toMatchObject({ state: 'COMPLETED', outputFields: { hs_execution_state: 'FAIL_CONTINUE' } });
    expect(h.messenger.topics).toHaveLength(0);
    // Reopened by the customer's reply, and enrolled again: routed, and the callback carries the outcome.
    await h.sb.updateTicket(t.id, { hs_pipeline_stage: '3' }, { notify: false });
    const third = await h.sb.runWorkflowAction(t.id);
    await h.drain();
    expect(h.messenger.topics).toHaveLength(1);
    expect(h.sb.callback(third.callbackId)).toMatchObject({ state: 'COMPLETED', outputFields: { hs_execution_state: 'SUCCESS', queue: expect.any(String) } });
    expect(h.sb.callback(third.callbackId)!.outputFields!.queue).not.toBe('');
    expect(await h.store.kvList('hubspot:callbacks')).toEqual([]);
  });

  it('completes once when HubSpot sends the same request again (a retry after a timeout)', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Twice enrolled', notify: false });
    const first = await h.sb.runWorkflowAction(t.id);
    const again = await h.sb.runWorkflowAction(t.id, { callbackId: first.callbackId });
    expect(again.status).toBe(200);
    await h.drain();
    expect(h.sb.requests({ path: `/automation/v4/actions/callbacks/${first.callbackId}/complete` })).toHaveLength(1);
    expect(h.messenger.topics).toHaveLength(1);
  });

  it('completes a callback at once when the ticket was routed before the workflow reached the action', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'Already routed' });
    await h.drain();
    const r = await h.sb.runWorkflowAction(t.id);
    expect(r.body).toEqual({ outputFields: { hs_execution_state: 'BLOCK' } });
    await h.connector.stop(); // waits for the background completion
    expect(h.sb.callback(r.callbackId)).toMatchObject({ state: 'COMPLETED', outputFields: { hs_execution_state: 'SUCCESS', topic_link: expect.stringMatching(/^https:\/\/t\.me\//) } });
  });

  it('accepts a v3 signature, refuses a tampered or missing one with 401, and refuses non-ticket workflows with 400', async () => {
    h = await startHarness();
    const t = await h.sb.createTicket({ subject: 'Signed', notify: false });
    expect((await h.sb.runWorkflowAction(t.id, { signature: 'v3' })).status).toBe(200);
    const tampered = await h.sb.runWorkflowAction(t.id, { signature: 'tampered' });
    expect(tampered).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', message: expect.stringContaining('v2') } } });
    expect((await h.sb.runWorkflowAction(t.id, { signature: 'none' })).status).toBe(401);
    const deal = await h.sb.runWorkflowAction(t.id, { objectType: 'DEAL' });
    expect(deal).toMatchObject({ status: 400, body: { error: { code: 'invalid_input', message: expect.stringContaining('ticket-based workflow') } } });
    expect(h.accepted).toHaveLength(1);
  });

  it('answers 400 naming the problem for a malformed request', async () => {
    h = await startHarness();
    const { createHash } = await import('node:crypto');
    const url = `${h.publicUrl}/hubspot/actions/route`;
    const body = JSON.stringify({ callbackId: 'ap-1', origin: { portalId: 1 }, object: { objectType: 'TICKET' } });
    const sig = createHash('sha256').update(`${CLIENT_SECRET}POST${url}${body}`).digest('hex');
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hubspot-signature': sig, 'x-hubspot-signature-version': 'v2' }, body });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain('object.objectId');
  });
});
