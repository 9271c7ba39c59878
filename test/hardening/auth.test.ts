// Suite 2, authentication: wrong, missing and replayed signatures, timestamps outside the window, another portal's or
// org's events, the admin API without or with a wrong token, console session fixation and CSRF, OAuth state reuse.
// Each attempt is checked to be refused before any processing: the store snapshot and its mutation journal are
// unchanged and nothing reached the intake.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signV2 } from '../../connectors/hubspot/signature.ts';
import { to18 } from '../../connectors/salesforce/ids.ts';
import { actionRequest, hubspotEvent, outboundMessage } from './gen.ts';
import { ADMIN_TOKEN, consoleLogin, HS_CLIENT_SECRET, startWorld, type World } from './world.ts';

let w: World;
let tried = 0;
let refusedCount = 0;

beforeAll(async () => {
  w = await startWorld();
}, 60_000);
afterAll(async () => {
  await w?.close();
  console.log(`authentication: ${tried} forged, stale, replayed or unauthenticated requests tried, ${refusedCount} refused before any processing (store and intake untouched), the rest deduplicated replays with no effect`);
});

/** Sends a request that must be refused: the status is checked and the store must be untouched. */
async function refused(path: string, init: RequestInit, status: number | ((s: number) => boolean)): Promise<Response> {
  tried++;
  const before = await w.snapshot();
  const journal = w.store.journal.length;
  const res = await w.request(path, init);
  if (typeof status === 'number') expect(res.status, `${path}`).toBe(status);
  else expect(status(res.status), `${path} -> ${res.status}`).toBe(true);
  expect(w.store.journal.slice(journal), `${path}: refused request wrote to the store`).toEqual([]);
  expect(await w.snapshot()).toBe(before);
  refusedCount++;
  return res;
}

const WEBHOOK = '/webhooks/hubspot';
const ACTION = '/hubspot/actions/route';

describe('HubSpot signatures', () => {
  const body = () => JSON.stringify([hubspotEvent(w.hsb.portalId, 1, Number(w.hsb.appId))]);

  it('refuses missing, wrong, tampered and wrong-URL v3 signatures', async () => {
    const b = body();
    const good = w.hubspotHeaders('POST', WEBHOOK, b);
    const cases: Record<string, string>[] = [
      { 'content-type': 'application/json' },
      w.hubspotHeaders('POST', WEBHOOK, b, { secret: 'not-the-client-secret' }),
      { ...good, 'x-hubspot-signature-v3': good['x-hubspot-signature-v3']!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) },
      w.hubspotHeaders('POST', '/hubspot/actions/route', b),
      w.hubspotHeaders('GET', WEBHOOK, b),
      { ...good, 'x-hubspot-signature-v3': '' },
      { 'content-type': 'application/json', 'x-hubspot-signature': signV2(HS_CLIENT_SECRET, 'POST', `${w.publicUrl}${WEBHOOK}`, b), 'x-hubspot-signature-version': 'v2' },
      { 'content-type': 'application/json', 'x-hubspot-signature': createHmac('sha256', HS_CLIENT_SECRET).update(b).digest('hex'), 'x-hubspot-signature-version': 'v1' },
    ];
    for (const headers of cases) {
      const res = await refused(WEBHOOK, { method: 'POST', headers, body: b }, 401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/signature|not signed/i);
    }
    // The body the signature covers, changed by one character.
    await refused(WEBHOOK, { method: 'POST', headers: good, body: b.replace('"objectId":901', '"objectId":902') }, 401);
  });

  it('refuses timestamps outside the five-minute window, in either direction, and non-numeric ones', async () => {
    const b = body();
    for (const at of [w.clock.now() - 5 * 60_000 - 1, w.clock.now() - 24 * 3600_000, w.clock.now() + 5 * 60_000 + 1_000]) {
      const res = await refused(WEBHOOK, { method: 'POST', headers: w.hubspotHeaders('POST', WEBHOOK, b, { at }), body: b }, 401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/timestamp/);
    }
    const h = w.hubspotHeaders('POST', WEBHOOK, b);
    await refused(WEBHOOK, { method: 'POST', headers: { ...h, 'x-hubspot-request-timestamp': 'yesterday' }, body: b }, 401);
    await refused(WEBHOOK, { method: 'POST', headers: { ...h, 'x-hubspot-request-timestamp': '' }, body: b }, 401);
  });

  it('a captured request replayed after the window is refused; within it, the replay is a duplicate with no effect', async () => {
    const t = await w.hsb.createTicket({ subject: 'Replay me', notify: false });
    const b = JSON.stringify([{ ...hubspotEvent(w.hsb.portalId, 7, Number(w.hsb.appId)), objectId: Number(t.id) }]);
    const headers = w.hubspotHeaders('POST', WEBHOOK, b);
    const first = await w.request(WEBHOOK, { method: 'POST', headers, body: b });
    expect(await first.json()).toMatchObject({ accepted: 1 });
    await w.drain();
    const topicsBefore = w.tg.groups().flatMap((g) => w.tg.topics(g.channelId)).length;

    tried++;
    const before = await w.snapshot();
    const again = await w.request(WEBHOOK, { method: 'POST', headers, body: b });
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    await w.drain();
    // The intake re-offers the (deterministic, already completed) route job, which the store ignores: no change.
    expect(await w.snapshot()).toBe(before);
    expect(w.tg.groups().flatMap((g) => w.tg.topics(g.channelId)).length).toBe(topicsBefore);

    await w.clock.advance(5 * 60_000 + 1_000);
    await refused(WEBHOOK, { method: 'POST', headers, body: b }, 401);
  });

  it('workflow actions: v2 must match, v3 must be fresh; card fetches must be signed', async () => {
    const b = JSON.stringify(actionRequest(w.hsb.portalId, '123'));
    await refused(ACTION, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hubspot-signature': signV2('wrong-secret', 'POST', `${w.publicUrl}${ACTION}`, b), 'x-hubspot-signature-version': 'v2' }, body: b }, 401);
    await refused(ACTION, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hubspot-signature': signV2(HS_CLIENT_SECRET, 'POST', `${w.publicUrl}${ACTION}`, b + ' '), 'x-hubspot-signature-version': 'v2' }, body: b }, 401);
    await refused(ACTION, { method: 'POST', headers: w.hubspotHeaders('POST', ACTION, b, { at: w.clock.now() - 10 * 60_000 }), body: b }, 401);
    const card = `/hubspot/card?portalId=${w.hsb.portalId}&objectType=ticket&objectId=1`;
    await refused(card, {}, 401);
    await refused(card, { headers: w.hubspotHeaders('GET', card, '', { secret: 'nope' }) }, 401);
    // Signed for a different object: the query is part of what is signed.
    await refused(card, { headers: w.hubspotHeaders('GET', card.replace('objectId=1', 'objectId=2'), '') }, 401);
  });

  it("another portal's events, correctly signed, are not taken in", async () => {
    const b = JSON.stringify([hubspotEvent('99887766', 3, Number(w.hsb.appId))]);
    // 200 with the events counted as ignored: HubSpot must not retry them, and nothing of them is stored.
    const res = await refused(WEBHOOK, { method: 'POST', headers: w.hubspotHeaders('POST', WEBHOOK, b), body: b }, 200);
    expect(await res.json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    const a = JSON.stringify(actionRequest('99887766', '5'));
    await refused(ACTION, { method: 'POST', headers: w.hubspotHeaders('POST', ACTION, a), body: a }, 403);
  });
});

describe('Salesforce outbound messages', () => {
  it("refuses another org's message and one naming no org, with a SOAP fault", async () => {
    const c = await w.sfb.createCase({ subject: 'Org check', notify: false });
    for (const org of [to18('00DTL0000000002'), to18('00D000000000001')]) {
      const res = await refused('/webhooks/salesforce', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: outboundMessage(org, c.id) }, 500);
      expect(await res.text()).toMatch(/soapenv:Client.*is not configured in Tierline/);
    }
  });
});

describe('admin API', () => {
  const paths = ['/api/v1/config', '/api/v1/tickets', '/api/v1/history', '/api/v1/dead-letters', '/api/v1/mappings', '/api/v1/config/versions'];
  it('refuses a missing, wrong, truncated, extended or differently schemed token on every route', async () => {
    const auths = [undefined, '', 'Bearer', 'Bearer ', `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, `Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.toUpperCase()}`, `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`, ADMIN_TOKEN, `Token ${ADMIN_TOKEN}`];
    for (const p of paths)
      for (const a of auths) {
        const res = await refused(p, { headers: a === undefined ? {} : { authorization: a } }, 401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
    for (const a of auths.slice(0, 5)) await refused('/api/v1/config', { method: 'PUT', headers: { 'content-type': 'application/json', ...(a ? { authorization: a } : {}) }, body: JSON.stringify({ config: (await w.store.getConfig())!.config }) }, 401);
  });
});

describe('console', () => {
  it('session fixation: a cookie chosen before sign-in is never the session', async () => {
    const page = await w.request('/login');
    const login = /tierline_login=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1]!;
    const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
    const planted = 'attacker-chosen-session-id-0123456789';
    const res = await w.request('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${login}; tierline_session=${planted}` }, body: new URLSearchParams({ _login: nonce, token: ADMIN_TOKEN }).toString() });
    expect(res.status).toBe(303);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const issued = /tierline_session=([^;]+)/.exec(setCookie)![1]!;
    expect(issued).not.toBe(planted);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    tried++;
    const withPlanted = await w.request('/config', { headers: { cookie: `tierline_session=${planted}` } });
    expect(withPlanted.status).toBe(303);
    expect(withPlanted.headers.get('location')).toMatch(/^\/login/);
    refusedCount++;
  });

  it('login CSRF: a sign-in without the form nonce, or from another site, is refused', async () => {
    await refused('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: ADMIN_TOKEN }).toString() }, 403);
    const page = await w.request('/login');
    const login = /tierline_login=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1]!;
    const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
    await refused('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${login}`, origin: 'https://evil.example' }, body: new URLSearchParams({ _login: nonce, token: ADMIN_TOKEN }).toString() }, 403);
    await refused('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${login}x` }, body: new URLSearchParams({ _login: nonce, token: ADMIN_TOKEN }).toString() }, 403);
  });

  it('CSRF: state-changing posts need the session token and our own origin; a signed-out session is dead', async () => {
    const s = await consoleLogin(w);
    const cfg = (await w.store.getConfig())!;
    const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie, ...headers }, body: new URLSearchParams(fields).toString() });
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version) }), 403);
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version), _csrf: 'guess' }), 403);
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version), _csrf: s.csrf }, { origin: 'https://evil.example' }), 403);
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version), _csrf: s.csrf }, { origin: 'null' }), 403);
    await refused('/dead-letters/retry', post('/dead-letters/retry', { all: '1' }), 403);
    // Another session's CSRF token does not work with this session.
    const other = await consoleLogin(w);
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version), _csrf: other.csrf }), 403);
    // After sign-out the old cookie opens nothing.
    const out = await w.request('/logout', post('/logout', { _csrf: s.csrf }));
    expect(out.status).toBe(303);
    await refused('/config/rollback', post('/config/rollback', { version: String(cfg.version), _csrf: s.csrf }), 303);
    tried++;
    const page = await w.request('/config', { headers: { cookie: s.cookie } });
    expect(page.status).toBe(303);
    refusedCount++;
  });
});

describe('OAuth state', () => {
  it('HubSpot: a state works once; the replayed callback is refused and changes nothing', async () => {
    const start = await w.request('/oauth/hubspot/install');
    expect(start.status).toBe(302);
    const approved = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const callback = new URL(approved.headers.get('location')!);
    const done = await w.request(`${callback.pathname}${callback.search}`);
    expect(done.status).toBe(200);
    const res = await refused(`${callback.pathname}${callback.search}`, {}, 400);
    expect(await res.text()).toMatch(/expired or was already used/);
  });

  it('Salesforce: a state works once; the replayed callback is refused and changes nothing', async () => {
    const start = await w.request('/oauth/salesforce/install');
    expect(start.status).toBe(302);
    const login = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const callback = new URL(login.headers.get('location')!);
    const done = await w.request(`${callback.pathname}${callback.search}`);
    expect(done.status).toBe(200);
    const res = await refused(`${callback.pathname}${callback.search}`, {}, 400);
    expect(await res.text()).toMatch(/expired or was already used/);
  });

  it('a state older than its ten minutes is refused', async () => {
    for (const crm of ['hubspot', 'salesforce']) {
      const start = await w.request(`/oauth/${crm}/install`);
      const authorize = new URL(start.headers.get('location')!);
      const state = authorize.searchParams.get('state')!;
      await w.clock.advance(11 * 60_000);
      tried++;
      const res = await w.request(`/oauth/${crm}/callback?code=whatever&state=${state}`);
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/expired or was already used/);
      refusedCount++;
    }
  });
});
