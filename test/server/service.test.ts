// The composition root as `npm start` runs it with no credentials: every connector against its sandbox, the lowdb
// store in DATA_DIR. A ticket created in the HubSpot sandbox and a Case created in the Salesforce sandbox each go
// through signed webhooks, fresh reads, routing, a Telegram topic with the card, and the write-back; a restart on the
// same data directory neither loses nor repeats any of it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../server/logger.ts';
import { loadEnv } from '../../server/env.ts';
import { startService, type Service } from '../../server/service.ts';

const dirs: string[] = [];
const services: Service[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dir: string, extraEnv: Record<string, string> = {}): Promise<Service> {
  const env = loadEnv({ DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', SAMPLE_TICKETS_PER_MINUTE: '0', ...extraEnv });
  const s = await startService({ env, logger: silentLogger, simulatedAgents: false });
  services.push(s);
  return s;
}

async function until<T>(what: string, probe: () => T | null | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const allTopics = (s: Service) => s.forum!.groups().flatMap((g) => s.forum!.topics(g.channelId).map((t) => ({ ...t, channelId: g.channelId })));

describe('the service in sandbox mode (npm start without credentials)', () => {
  it('routes a HubSpot ticket and a Salesforce Case into Telegram topics and writes the outcome back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierline-service-'));
    dirs.push(dir);
    const s = await start(dir);

    const ready = await (await fetch(`${s.url}/readyz`)).json();
    expect(ready).toMatchObject({ ok: true, connectors: { hubspot: { mode: 'sandbox', ok: true }, salesforce: { mode: 'sandbox', ok: true }, telegram: { mode: 'sandbox', ok: true } } });

    const hs = s.sandboxes.hubspot!;
    const sf = s.sandboxes.salesforce!;
    const t = await hs.createTicket({ subject: 'Invoice shows the wrong VAT' });
    const c = await sf.createCase({ subject: 'Cannot log in after SSO change' });

    const hsTicket = await until('the HubSpot write-back', () => {
      const p = hs.ticket(t.id)?.properties;
      return p?.tierline_queue && p.tierline_topic_link ? p : null;
    });
    const sfCase = await until('the Salesforce write-back', () => {
      const r = sf.case(c.id);
      return r?.Tierline_Queue__c && r.Tierline_Topic_Link__c ? r : null;
    });
    expect(hsTicket.tierline_agent).toBeTruthy();
    expect(sfCase.Tierline_Agent__c).toBeTruthy();
    // The Routing_Event__c record is created right after the Case fields are updated.
    await until('the Routing_Event__c record', () => sf.routingEvents(c.id).some((e) => e.Kind__c === 'routed'));

    // One topic each, titled after the ticket, with the card posted in it.
    const topics = await until('both topics', () => {
      const all = allTopics(s);
      return all.length >= 2 ? all : null;
    });
    expect(topics).toHaveLength(2);
    for (const subject of ['Invoice shows the wrong VAT', 'Cannot log in after SSO change']) {
      const topic = topics.find((x) => x.title.includes(subject))!;
      expect(topic).toBeTruthy();
      await until(`the card in “${subject}”`, () => s.forum!.messages(topic.channelId, topic.topicId).some((m) => m.text.includes("Why this ticket is here")));
    }

    const auth = { authorization: `Bearer ${await adminToken(s)}` };
    const history = await (await fetch(`${s.url}/api/v1/history`, { headers: auth })).json();
    expect(JSON.stringify(history)).toContain(t.id);
    // The intake bot's admin routes answer behind the admin token like the rest of the API; unknown paths get the
    // JSON error every other failure gets.
    expect((await fetch(`${s.url}/api/v1/intake/blocked`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${s.url}/api/v1/intake/blocked`)).status).toBe(401);
    const missing = await fetch(`${s.url}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('/readyz calls each connected portal and org, reuses the answer, and names the one that cannot be reached', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierline-service-'));
    dirs.push(dir);
    const s = await start(dir, { READYZ_CRM_CHECK_SECONDS: '30' });
    const hs = s.sandboxes.hubspot!;
    const sf = s.sandboxes.salesforce!;
    type Ready = { ok: boolean; connectors: Record<string, { ok: boolean; reachable?: { ok: boolean; accounts: { account: string; ok: boolean; error: string | null }[] } }> };
    const readyz = async () => {
      const r = await fetch(`${s.url}/readyz`);
      return { status: r.status, body: (await r.json()) as Ready };
    };
    hs.clearRequests();
    const first = await readyz();
    expect(first.status).toBe(200);
    expect(first.body.connectors.hubspot!.reachable).toMatchObject({ ok: true, accounts: [{ account: hs.portalId, ok: true }] });
    expect(first.body.connectors.salesforce!.reachable).toMatchObject({ ok: true, accounts: [{ ok: true }] });
    expect(hs.requests({ path: '/account-info/v3/details' })).toHaveLength(1);
    const sfCalls = sf.requests({ path: '/limits' }).length;
    expect(sfCalls).toBeGreaterThanOrEqual(1);

    // Within READYZ_CRM_CHECK_SECONDS the answer is reused: a load balancer probing often costs no API allowance.
    await readyz();
    await readyz();
    expect(hs.requests({ path: '/account-info/v3/details' })).toHaveLength(1);
    expect(sf.requests({ path: '/limits' })).toHaveLength(sfCalls);

    // HubSpot failing (checked on every probe here): 503 naming the portal and the error, ready again once it answers.
    const dir2 = mkdtempSync(join(tmpdir(), 'tierline-service-'));
    dirs.push(dir2);
    const t = await start(dir2, { READYZ_CRM_CHECK_SECONDS: '0' });
    t.sandboxes.hubspot!.inject5xx(1, { status: 503, match: { path: '/account-info/v3/details' } });
    const r = await fetch(`${t.url}/readyz`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as Ready;
    expect(body.ok).toBe(false);
    expect(body.connectors.hubspot).toMatchObject({ ok: false, reachable: { ok: false, accounts: [{ account: t.sandboxes.hubspot!.portalId, ok: false, error: expect.stringMatching(/503/) }] } });
    expect(body.connectors.salesforce!.ok).toBe(true);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });

  it('picks up where it left off after a restart on the same data directory, without repeating anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierline-service-'));
    dirs.push(dir);
    const first = await start(dir);
    const hs = first.sandboxes.hubspot!;
    const t = await hs.createTicket({ subject: 'Export to CSV times out' });
    await until('the first routing', () => hs.ticket(t.id)?.properties.tierline_topic_link);
    const before = (await first.store.tickets({})).map((x) => [x.key, x.topic?.topicId]);
    const historyBefore = (await first.store.history({ limit: 100 })).entries.length;
    await first.stop();
    services.splice(services.indexOf(first), 1);

    // The sandboxes lived in the stopped process; the state that must survive is Tierline's own.
    const second = await start(dir);
    expect((await second.store.tickets({})).map((x) => [x.key, x.topic?.topicId])).toEqual(before);
    await second.worker.idle();
    expect((await second.store.history({ limit: 100 })).entries.length).toBe(historyBefore);
    expect(await second.store.deadJobs()).toEqual([]);
  });
});

async function adminToken(s: Service): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(s.adminTokenFile!, 'utf8')).trim();
}
