// Suite 4, upstream faults end to end: tickets enter through the real webhook doors (HubSpot's signed deliveries,
// Salesforce's Outbound Messages), run through the real pipeline to Telegram topics and CRM write-backs, while the
// sandboxes inject HubSpot 429s (ten-secondly and daily policies), 5xx, timeouts, lost answers and expired tokens;
// Salesforce REQUEST_LIMIT_EXCEEDED, INVALID_SESSION_ID and 5xx on PATCH and POST; Telegram FLOOD_WAIT above the
// pacer's wait limit, deleted topics and connections cut mid-request. After each, every ticket must be routed
// exactly once (one topic, one card, one 'routed' entry) with its whole history on the CRM record, or wait as a
// dead letter whose retry through the admin API (POST /api/v1/dead-letters/:id/retry) completes it.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HistoryKind } from '../../core/ports.ts';
import { ADMIN_TOKEN, startWorld, type World } from './world.ts';

const WRITTEN_BACK: ReadonlySet<HistoryKind> = new Set(['routed', 'assigned', 'first_reply', 'reply_by_other', 'reassigned', 'overflow', 'sla_breached', 'escalated', 'resolved', 'reopened', 'topic_recreated']);
const CARD_MARK = 'Why this ticket is here';

type Made = { crm: 'hubspot' | 'salesforce'; id: string; subject: string; key: string };

const totals = { scenarios: 0, tickets: 0, faults: 0, deadLetters: 0 };
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});
afterAll(() => {
  console.log(`upstream faults: ${totals.scenarios} scenarios, ${totals.faults} faults injected, ${totals.tickets} tickets checked (each routed once, one topic and card, full history written back), ${totals.deadLetters} dead letters retried through the admin API and completed`);
});

async function world(o: Parameters<typeof startWorld>[0] = {}): Promise<World> {
  const w = await startWorld(o);
  worlds.push(w);
  return w;
}

let serial = 0;
async function tickets(w: World, crm: 'hubspot' | 'salesforce', n: number, tag: string): Promise<Made[]> {
  const out: Made[] = [];
  for (let i = 0; i < n; i++) {
    const subject = `${tag} #${++serial}`;
    if (crm === 'hubspot') {
      const t = await w.hsb.createTicket({ subject });
      expect(t.delivery?.status, `webhook delivery for ${subject}`).toBe(200);
      out.push({ crm, id: t.id, subject, key: `hubspot:${w.hsb.portalId}:${t.id}` });
    } else {
      const c = await w.sfb.createCase({ subject });
      out.push({ crm, id: c.id, subject, key: `salesforce:${w.sfb.orgId}:${c.id}` });
    }
  }
  return out;
}

/** Drains, retries every dead letter through the admin API, drains again; returns the number retried. */
async function settle(w: World, fix?: () => void): Promise<number> {
  await w.drain();
  const dead = await w.store.deadJobs();
  if (!dead.length) return 0;
  fix?.();
  for (const j of dead) {
    const r = await w.request(`/api/v1/dead-letters/${encodeURIComponent(j.id)}/retry`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status, `retry ${j.id}`).toBe(200);
  }
  await w.drain();
  expect(await w.store.deadJobs(), 'dead letters left after their retry').toEqual([]);
  return dead.length;
}

/** Everything a user would check: one topic with one card, one 'routed' entry, every entry on the CRM record. */
async function verify(w: World, made: Made[]): Promise<void> {
  const groups = w.tg.groups();
  for (const m of made) {
    const t = await w.store.getTicket(m.key);
    expect(t?.topic, `${m.subject}: no topic`).toBeTruthy();
    const topics = groups.flatMap((g) => w.tg.topics(g.channelId).filter((x) => x.title.includes(m.subject)).map((x) => ({ ...x, channelId: g.channelId })));
    expect(topics.map((x) => x.topicId), `${m.subject}: topics`).toEqual([t!.topic!.topicId]);
    const cards = w.tg.messages(topics[0]!.channelId, topics[0]!.topicId, 500).filter((x) => x.text.includes(CARD_MARK));
    expect(cards, `${m.subject}: cards in its topic`).toHaveLength(1);
    const history = (await w.store.history({ ticketKey: m.key, limit: 1000 })).entries;
    expect(history.filter((h) => h.kind === 'routed'), `${m.subject}: routed entries`).toHaveLength(1);
    const written = history.filter((h) => WRITTEN_BACK.has(h.kind));
    if (m.crm === 'hubspot') {
      const props = w.hsb.ticket(m.id)!.properties;
      expect(props.tierline_topic_link, `${m.subject}: HubSpot topic link`).toBe(t!.topic!.link);
      expect(props.tierline_queue).toBeTruthy();
      const notes = w.hsb.ticket(m.id)!.notes;
      expect(notes.length, `${m.subject}: HubSpot notes (one per history entry)`).toBe(written.length);
    } else {
      const c = w.sfb.case(m.id)!;
      expect(c.Tierline_Topic_Link__c, `${m.subject}: Salesforce topic link`).toBe(t!.topic!.link);
      const events = w.sfb.routingEvents(m.id);
      expect(events.length, `${m.subject}: Routing_Event__c rows (one per history entry)`).toBe(written.length);
      expect(new Set(events.map((e) => e.Event_Key__c)).size).toBe(events.length);
    }
  }
  totals.tickets += made.length;
}

function scenario(faults: number) {
  totals.scenarios++;
  totals.faults += faults;
}

describe('HubSpot', () => {
  it('429 on the ten-secondly policy: paused, retried, nothing lost or doubled', async () => {
    const w = await world();
    const made = await tickets(w, 'hubspot', 6, 'HS 429 secondly');
    w.hsb.inject429(8, { policyName: 'TEN_SECONDLY_ROLLING', retryAfterSec: 1 });
    totals.deadLetters += await settle(w);
    expect(w.hsb.pendingFaults()).toBe(0);
    scenario(8);
    await verify(w, made);
  });

  it('429 on the daily policy: the portal waits out its day, then everything lands once', async () => {
    const w = await world();
    const made = await tickets(w, 'hubspot', 4, 'HS 429 daily');
    w.hsb.inject429(3, { policyName: 'DAILY' });
    totals.deadLetters += await settle(w);
    expect(w.hsb.pendingFaults()).toBe(0);
    scenario(3);
    await verify(w, made);
  });

  it('5xx on reads and writes, hung calls that time out, and writes applied whose answer was lost', async () => {
    const w = await world({ hubspotTimeoutMs: 150 });
    const made = await tickets(w, 'hubspot', 6, 'HS 5xx');
    w.hsb.inject5xx(6, { status: 502 });
    w.hsb.inject5xx(4, { status: 503, match: { method: 'POST' } });
    w.hsb.injectTimeout(2, { match: { method: 'GET' } });
    w.hsb.injectLostResponse(3, { match: { method: 'POST' } });
    w.hsb.injectLostResponse(2, { match: { method: 'PATCH' } });
    totals.deadLetters += await settle(w);
    // Faults match calls by method; any the run did not meet were not injected into it.
    scenario(17 - w.hsb.pendingFaults());
    await verify(w, made);
  });

  it('expired OAuth access tokens are refreshed mid-run', async () => {
    const w = await world({ hubspotOAuthOnly: true });
    await w.installHubspotOAuth();
    const made = await tickets(w, 'hubspot', 5, 'HS expired token');
    w.hsb.expireAccessTokens();
    await w.pipeline.runDue();
    w.hsb.expireAccessTokens();
    totals.deadLetters += await settle(w);
    // The connector refreshed (proactively or after a 401) instead of failing the steps.
    expect(w.hsb.requests({ path: /oauth\/v1\/token/ }).length).toBeGreaterThanOrEqual(2);
    scenario(2);
    await verify(w, made);
  });
});

describe('Salesforce', () => {
  it('REQUEST_LIMIT_EXCEEDED: waits and retries', async () => {
    const w = await world();
    const made = await tickets(w, 'salesforce', 5, 'SF limit');
    w.sfb.injectError('REQUEST_LIMIT_EXCEEDED', 6);
    totals.deadLetters += await settle(w);
    expect(w.sfb.requests().filter((r) => r.status === 403)).toHaveLength(6);
    scenario(6);
    await verify(w, made);
  });

  it('INVALID_SESSION_ID: refreshes the session and carries on', async () => {
    const w = await world();
    const made = await tickets(w, 'salesforce', 5, 'SF session');
    w.sfb.injectError('INVALID_SESSION_ID', 2);
    w.sfb.expireSession();
    totals.deadLetters += await settle(w);
    expect(w.sfb.requests().filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(3);
    scenario(3);
    await verify(w, made);
  });

  // The write-back is two PATCH calls (the Case update collection and the Routing_Event__c upsert on Event_Key__c);
  // routing and write-back send no POST (Case creation by the Telegram intake does, outside this path), so the 5xx
  // go to both PATCH resources and to the reads.
  it('5xx on the PATCHes (Case outcome, Routing_Event__c upsert) and on reads', async () => {
    const w = await world();
    const made = await tickets(w, 'salesforce', 5, 'SF 5xx');
    w.sfb.injectError('SERVER_UNAVAILABLE', 4, { method: 'PATCH', path: '/composite/sobjects/Routing_Event__c' });
    w.sfb.injectError('UNKNOWN_EXCEPTION', 4, { method: 'PATCH' });
    w.sfb.injectError('SERVER_UNAVAILABLE', 3, { method: 'GET' });
    totals.deadLetters += await settle(w);
    expect(w.sfb.requests({ method: 'PATCH' }).filter((r) => r.status === 503)).toHaveLength(4);
    expect(w.sfb.requests({ method: 'PATCH' }).filter((r) => r.status === 500)).toHaveLength(4);
    expect(w.sfb.requests({ method: 'GET' }).filter((r) => r.status === 503)).toHaveLength(3);
    scenario(11);
    await verify(w, made);
  });

  it('a write-back refused outright becomes a dead letter; its retry through the admin API completes it', async () => {
    const w = await world();
    const made = await tickets(w, 'salesforce', 2, 'SF dead letter');
    w.sfb.injectError('INVALID_FIELD', 1, { method: 'PATCH' });
    await w.drain();
    const dead = await w.store.deadJobs();
    // The refusal hits the batched PATCH, so every write-back in that batch waits as a dead letter, not run again
    // blindly: a refused field is the admin's to fix (the error says how).
    expect(dead.length, 'the refused write-back is a visible dead letter').toBeGreaterThanOrEqual(1);
    for (const d of dead) expect(d.lastError).toMatch(/^misconfigured: .*deploy the force-app metadata/);
    const retried = await settle(w);
    expect(retried).toBe(dead.length);
    totals.deadLetters += retried;
    scenario(1);
    await verify(w, made);
  });
});

describe('Telegram', () => {
  it('FLOOD_WAIT above the pacer limit on topic creation and on the card: retried later, each once', async () => {
    const w = await world();
    const made = [...(await tickets(w, 'hubspot', 3, 'TG flood')), ...(await tickets(w, 'salesforce', 3, 'TG flood'))];
    w.tg.injectError({ method: 'channels.CreateForumTopic', error: 'FLOOD_WAIT_900', times: 2 });
    w.tg.injectError({ method: 'messages.SendMessage', error: 'FLOOD_WAIT_700', times: 2 });
    totals.deadLetters += await settle(w);
    expect(w.tg.stats().floodWaits).toBeGreaterThanOrEqual(4);
    scenario(4);
    await verify(w, made);
  });

  it('a deleted topic (TOPIC_DELETED) is recreated once, with the new link written back', async () => {
    const w = await world();
    const made = [...(await tickets(w, 'hubspot', 2, 'TG deleted')), ...(await tickets(w, 'salesforce', 2, 'TG deleted'))];
    await settle(w);
    const first = new Map<string, number>();
    for (const m of made) {
      const t = (await w.store.getTicket(m.key))!;
      first.set(m.key, t.topic!.topicId);
      const channel = w.tg.groups().find((g) => w.tg.topics(g.channelId).some((x) => x.topicId === t.topic!.topicId && x.title.includes(m.subject)))!.channelId;
      w.tg.deleteTopic(channel, t.topic!.topicId);
      await w.pipeline.escalate(m.key, 'customer called again');
    }
    totals.deadLetters += await settle(w);
    for (const m of made) {
      const t = (await w.store.getTicket(m.key))!;
      expect(t.topic!.topicId).not.toBe(first.get(m.key));
      const recreated = (await w.store.history({ ticketKey: m.key, kind: 'topic_recreated' })).entries;
      expect(recreated).toHaveLength(1);
    }
    scenario(made.length);
    await verify(w, made);
  });

  it('connections cut while requests are in flight: answers held, then delivered once the link is back', async () => {
    const w = await world({ telegramLatencyMs: 5 });
    const made = [...(await tickets(w, 'hubspot', 3, 'TG cut')), ...(await tickets(w, 'salesforce', 3, 'TG cut'))];
    const running = w.drain();
    let cuts = 0;
    // Cut whenever a topic or card request has gone out since the last look (its answer is then still on the way).
    let seen = 0;
    for (let i = 0; i < 2000 && cuts < 4; i++) {
      await new Promise((r) => setTimeout(r, 1));
      const s = w.tg.stats().requests;
      const n = (s['channels.CreateForumTopic'] ?? 0) + (s['messages.SendMessage'] ?? 0);
      if (n > seen) {
        seen = n;
        w.tg.cutConnections();
        cuts++;
        await new Promise((r) => setTimeout(r, 10));
        w.tg.restoreConnections();
      }
    }
    await running;
    totals.deadLetters += await settle(w);
    expect(cuts).toBeGreaterThan(0);
    scenario(cuts);
    await verify(w, made);
  });
});
