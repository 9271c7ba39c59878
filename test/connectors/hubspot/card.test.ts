// GET /hubspot/card as the record card's hubspot.fetch() calls it (v3-signed, portal and user appended by HubSpot):
// the routing history of a ticket or company with reasons, the current agent and the SLA state.
import { afterEach, describe, expect, it } from 'vitest';
import type { CardData } from '../../../connectors/hubspot/card.ts';
import { ticketKey } from '../../../core/segment.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function card(x: Harness, q: string, o: { tamper?: boolean; timestamp?: number } = {}) {
  const r = await x.sb.hubspotFetch(`${x.publicUrl}/hubspot/card?${q}`, o);
  return { status: r.status, json: (await r.json()) as CardData & { error?: { code: string; message: string } } };
}

describe('HubSpot record card', () => {
  it('shows a ticket’s current agent, SLA state and routing history with reasons', async () => {
    h = await startHarness({ pipeline: true });
    const t = await h.sb.createTicket({ subject: 'API returns 500', companyId: h.company('Initech').id, category: 'PRODUCT_ISSUE', product: 'API' });
    await h.drain();
    h.clock.advance(4 * 60_000);
    const r = await card(h, `objectType=ticket&objectId=${t.id}`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ objectType: 'ticket', objectId: t.id, portalId: h.sb.portalId, empty: null });
    const [cur] = r.json.tickets;
    expect(cur).toMatchObject({ ticketId: t.id, subject: 'API returns 500', status: 'assigned', queue: 'VIP desk', tier: 'enterprise', rule: 'enterprise', topicLink: expect.stringMatching(/^https:\/\/t\.me\//) });
    expect(cur!.agent).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/); // the agent's name, not the id
    expect(cur!.sla).toMatchObject({ state: 'running', label: 'First reply due in 11 min' });
    expect(r.json.history).toHaveLength(1);
    expect(r.json.history[0]).toMatchObject({ kind: 'routed', text: expect.stringContaining('Routed to VIP desk'), queue: 'VIP desk', rule: 'enterprise', tier: 'enterprise' });
    expect(r.json.history[0]!.explanation.length).toBeGreaterThan(0);

    // After the SLA passes without a reply, the card says so.
    h.clock.advance(20 * 60_000);
    expect((await card(h, `objectType=ticket&objectId=${t.id}`)).json.tickets[0]!.sla.state).toBe('breached');
  });

  it('shows every routed ticket of a company, newest first, and says when there is nothing yet', async () => {
    h = await startHarness({ pipeline: true });
    const globex = h.company('Globex Corporation');
    const a = await h.sb.createTicket({ subject: 'First', companyId: globex.id });
    h.clock.advance(60_000);
    const b = await h.sb.createTicket({ subject: 'Second', companyId: globex.id });
    await h.drain();
    const r = await card(h, `objectType=company&objectId=${globex.id}`);
    expect(r.json.tickets.map((t) => t.ticketId)).toEqual([b.id, a.id]);
    expect(r.json.history.map((e) => e.ticketId).sort()).toEqual([a.id, b.id].sort());
    const none = await card(h, `objectType=company&objectId=${h.company('Soylent Foods').id}`);
    expect(none.json).toMatchObject({ tickets: [], history: [], empty: 'No ticket of this company has been routed by Tierline yet.' });
    // Store keys are per portal: the same company id in another portal shows nothing here.
    expect(await h.store.getTicket(ticketKey({ crm: 'hubspot', account: h.sb.portalId, ticketId: a.id }))).toBeTruthy();
  });

  it('refuses unsigned, tampered and stale requests with 401 and bad parameters with 400', async () => {
    h = await startHarness();
    expect((await card(h, 'objectType=ticket&objectId=1', { tamper: true })).status).toBe(401);
    expect((await card(h, 'objectType=ticket&objectId=1', { timestamp: h.clock.now() - 6 * 60_000 })).status).toBe(401);
    expect((await fetch(`${h.publicUrl}/hubspot/card?objectType=ticket&objectId=1&portalId=${h.sb.portalId}`)).status).toBe(401);
    const bad = await card(h, 'objectType=deal&objectId=1');
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'invalid_input', message: 'objectType must be ticket or company.' } } });
  });
});
