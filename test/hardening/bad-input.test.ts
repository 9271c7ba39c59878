// Suite 1, bad input: property-based malformed, oversized, wrongly typed, deeply nested and hostile requests against
// every endpoint of the assembled service. Every one must get a 4xx with an error that names the problem (JSON; a
// SOAP fault on /webhooks/salesforce, which SOAP 1.1 sends with status 500; an HTML page on the browser-facing OAuth
// callbacks and console forms), never another 5xx, never a crash, and the store must be unchanged: the serialised
// snapshot before and after is identical and the journal of mutating store calls did not grow.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badActionRequest, badCardQuery, badSoap, badWebhookBatch, junkBody, jsonValue } from './gen.ts';
import { ADMIN_TOKEN, consoleLogin, startWorld, type World } from './world.ts';

const SCALE = Number(process.env.HARDENING_SCALE ?? 1);
const runs = (n: number) => Math.max(10, Math.round(n * SCALE));
// A fixed seed keeps CI deterministic; HARDENING_SEED=random (or a number) explores other inputs.
const SEED = process.env.HARDENING_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.HARDENING_SEED ?? 20_261_123);
const opts = (n: number) => ({ numRuns: runs(n), seed: SEED });

let w: World;
let portal: string;
let caseId: string;
const totals: Record<string, number> = {};

beforeAll(async () => {
  w = await startWorld();
  portal = w.hsb.portalId;
  // Some real state, so "unchanged" means something: a HubSpot ticket and a Salesforce Case routed and written back.
  await w.hsb.createTicket({ subject: 'Baseline ticket' });
  caseId = (await w.sfb.createCase({ subject: 'Baseline case' })).id;
  await w.drain();
  expect((await w.store.tickets()).length).toBe(2);
}, 60_000);

afterAll(async () => {
  await w?.close();
  const sum = Object.values(totals).reduce((a, b) => a + b, 0);
  console.log(`bad input (seed ${SEED}): ${sum} hostile requests in total (${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}); every one refused with a 4xx naming the problem (SOAP faults on /webhooks/salesforce), 0 other 5xx, store unchanged`);
});

type Expect = 'json' | 'soap' | 'html' | 'console';

/** Sends one request and checks the refusal; returns the status. */
async function refused(label: string, path: string, init: RequestInit, kind: Expect): Promise<number> {
  const before = await w.snapshot();
  const journal = w.store.journal.length;
  const res = await w.request(path, init);
  const text = await res.text();
  const where = `${label}: ${init.method ?? 'GET'} ${path.slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`;
  if (res.status === 413) {
    // The body limit answers before any route, in JSON, for every endpoint alike.
    expect(JSON.parse(text).error.code, where).toBe('payload_too_large');
  } else if (kind === 'soap') {
    expect(res.status, where).toBe(500);
    expect(res.headers.get('content-type'), where).toMatch(/text\/xml/);
    expect(text, where).toMatch(/<faultcode>soapenv:Client<\/faultcode><faultstring>[^<]{20,}<\/faultstring>/);
  } else if (kind === 'console') {
    // A form with bad values is answered with the page and its notice (4xx) or a redirect carrying the notice.
    expect(res.status === 303 || (res.status >= 400 && res.status < 500), where).toBe(true);
  } else {
    expect(res.status, where).toBeGreaterThanOrEqual(400);
    expect(res.status, where).toBeLessThan(500);
    if (kind === 'json') {
      const j = JSON.parse(text) as { error: { code: string; message: string } };
      expect(j.error.code, where).toMatch(/^[a-z_]+$/);
      expect(j.error.message.length, where).toBeGreaterThan(15);
    } else {
      expect(res.headers.get('content-type'), where).toMatch(/text\/html/);
      expect(text.length, where).toBeGreaterThan(40);
    }
  }
  expect(w.store.journal.slice(journal), `${where}: a rejected request wrote to the store`).toEqual([]);
  expect(await w.snapshot(), `${where}: a rejected request changed the store`).toBe(before);
  return res.status;
}

function tally(name: string, n: number) {
  totals[name] = (totals[name] ?? 0) + n;
}

describe('bad input, endpoint by endpoint', () => {
  it('HubSpot webhook batches, correctly signed so they reach the parser', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(badWebhookBatch(portal), async ({ why, body }) => {
        n++;
        await refused(`signed webhook (${why})`, '/webhooks/hubspot', { method: 'POST', headers: w.hubspotHeaders('POST', '/webhooks/hubspot', body), body }, 'json');
      }),
      opts(2000),
    );
    tally('hubspot webhook (signed)', n);
    console.log(`hubspot webhook, signed: ${n} malformed batches refused`);
  }, 60_000);

  it('HubSpot webhook batches and workflow actions without a valid signature', async () => {
    let n = 0;
    const headers = fc.oneof(
      fc.constant({} as Record<string, string>),
      fc.string({ maxLength: 60 }).map((s) => ({ 'x-hubspot-signature-v3': s || 'x', 'x-hubspot-request-timestamp': String(w.clock.now()) })),
      fc.string({ maxLength: 20 }).map((ts) => ({ 'x-hubspot-signature-v3': 'AAAA', 'x-hubspot-request-timestamp': ts })),
      fc.string({ maxLength: 64 }).map((s) => ({ 'x-hubspot-signature': s || 'x', 'x-hubspot-signature-version': 'v2' })),
      fc.string({ maxLength: 64 }).map((s) => ({ 'x-hubspot-signature': s || 'x', 'x-hubspot-signature-version': 'v1' })),
    );
    const bodies = fc.oneof(junkBody, badWebhookBatch(portal).map((x) => x.body), fc.constant(JSON.stringify([{ eventId: 1, subscriptionId: 1, portalId: Number(portal), occurredAt: 1, subscriptionType: 'ticket.creation', objectId: 1 }])));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/webhooks/hubspot', '/hubspot/actions/route'), bodies, headers, async (path, body, h) => {
        n++;
        const status = await refused('unsigned hubspot', path, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body }, 'json');
        if (status !== 413) expect(status).toBe(401);
      }),
      opts(1200),
    );
    tally('hubspot unsigned', n);
    console.log(`hubspot webhook/action, unsigned or wrongly signed: ${n} refused with 401`);
  }, 60_000);

  it('HubSpot workflow actions, correctly signed', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(badActionRequest(portal), async ({ why, body }) => {
        n++;
        await refused(`workflow action (${why})`, '/hubspot/actions/route', { method: 'POST', headers: w.hubspotHeaders('POST', '/hubspot/actions/route', body), body }, 'json');
      }),
      opts(1200),
    );
    tally('hubspot workflow action', n);
    console.log(`hubspot workflow action, signed: ${n} malformed requests refused`);
  }, 60_000);

  it('HubSpot card requests, signed and unsigned', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(badCardQuery(portal), fc.boolean(), async ({ why, query }, signed) => {
        n++;
        const path = `/hubspot/card${Object.keys(query).length ? `?${new URLSearchParams(query)}` : ''}`;
        const headers = signed ? w.hubspotHeaders('GET', path, '') : {};
        const status = await refused(`card (${why})`, path, { method: 'GET', headers }, 'json');
        expect(status).toBe(signed ? 400 : 401);
      }),
      opts(1000),
    );
    tally('hubspot card', n);
    console.log(`hubspot card: ${n} bad requests refused`);
  }, 60_000);

  it('Salesforce outbound messages: XML attacks, wrong namespaces, huge documents, foreign orgs', async () => {
    let n = 0;
    const whys: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(badSoap(w.sfb.orgId, caseId), async ({ why, body }) => {
        n++;
        whys[why] = (whys[why] ?? 0) + 1;
        await refused(`soap (${why})`, '/webhooks/salesforce', { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' }, body }, 'soap');
      }),
      opts(1500),
    );
    expect(whys['billion laughs']! + whys.XXE! + whys.DOCTYPE!).toBeGreaterThan(0);
    tally('salesforce soap', n);
    console.log(`salesforce outbound messages: ${n} hostile documents refused with SOAP faults (${Object.entries(whys).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }, 60_000);

  it('OAuth callbacks for both CRMs: bad, missing and unknown state, errors, junk codes', async () => {
    let n = 0;
    const q = fc.record({ code: fc.option(fc.string({ maxLength: 80 }), { nil: undefined }), state: fc.option(fc.oneof(fc.string({ maxLength: 60 }), fc.base64String({ minLength: 32, maxLength: 32 })), { nil: undefined }), error: fc.option(fc.constantFrom('access_denied', 'invalid_scope', '<script>alert(1)</script>'), { nil: undefined }), error_description: fc.option(fc.string({ maxLength: 400 }), { nil: undefined }) }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/oauth/hubspot/callback', '/oauth/salesforce/callback'), q, async (path, query) => {
        n++;
        const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
        const status = await refused('oauth callback', `${path}?${params}`, { method: 'GET' }, 'html');
        expect(status).toBe(400);
      }),
      opts(1000),
    );
    tally('oauth callbacks', n);
    console.log(`oauth callbacks: ${n} bad callbacks refused with 400`);
  }, 60_000);

  it('admin API bodies and query strings through the whole app', async () => {
    let n = 0;
    const routes = [
      ['PUT', '/api/v1/config'],
      ['POST', '/api/v1/config/validate'],
      ['POST', '/api/v1/config/rollback'],
      ['PUT', '/api/v1/rules'],
      ['PUT', '/api/v1/queues'],
      ['PUT', '/api/v1/agents'],
      ['PUT', '/api/v1/groups'],
      ['PUT', '/api/v1/tiering'],
      ['POST', '/api/v1/agents/nobody/status'],
      ['POST', '/api/v1/dead-letters/nope/retry'],
      ['PUT', '/api/v1/mappings/hubspot/999'],
      ['PUT', '/api/v1/mappings/salesforce/00D000000000000AAA'],
      ['GET', '/api/v1/tickets/nope'],
      ['GET', '/api/v1/history'],
      ['GET', '/api/v1/tickets'],
    ] as const;
    const hostile = fc.oneof(
      junkBody,
      fc.record({ config: fc.record({ rules: jsonValue, defaultQueue: jsonValue, queues: jsonValue, agents: jsonValue, tiering: jsonValue }, { requiredKeys: [] }), version: jsonValue, status: jsonValue, note: jsonValue }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    // Bodies that cannot be valid for the route: a section that must be an array never gets one, tiering (an object
    // with defaults) and a mapping never get an object, so any 2xx on a write is a bug rather than luck.
    const validShape = (path: string, body: string) => {
      let v: unknown;
      try {
        v = JSON.parse(body);
      } catch {
        return false;
      }
      if (/\/(rules|queues|agents|groups)$/.test(path)) return Array.isArray(v);
      // A rollback to a positive version number is a real rollback when that version exists.
      if (path.endsWith('/rollback')) return typeof v === 'object' && v !== null && Number.isInteger((v as { version?: unknown }).version) && (v as { version: number }).version > 0;
      // Tiering and field mappings are objects whose every field has a default: any object may be a valid one.
      if (path.endsWith('/tiering') || path.includes('/mappings/')) return typeof v === 'object' && v !== null && !Array.isArray(v);
      return false;
    };
    const query = fc.dictionary(fc.constantFrom('limit', 'offset', 'tier', 'kind', 'from', 'to', 'open', 'queue', 'agent', 'company', 'ticket'), fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('-1', '1e309', 'NaN', '99999999999', 'enterprise\u0000', '[object Object]')), { minKeys: 1, maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), hostile, query, fc.constantFrom('good', 'none', 'wrong'), async ([method, path], body, q, auth) => {
        if (validShape(path, body)) return;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (auth === 'good') headers.authorization = `Bearer ${ADMIN_TOKEN}`;
        if (auth === 'wrong') headers.authorization = `Bearer ${ADMIN_TOKEN.slice(0, -1)}x`;
        const url = `${path}?${new URLSearchParams(q)}`;
        const init: RequestInit = { method, headers, ...(method === 'GET' ? {} : { body }) };
        if ((method === 'GET' || path === '/api/v1/config/validate') && auth === 'good') {
          // Reads with odd filters may simply be valid (an empty page), and validate answers {valid: false, problems} by
          // design; neither may fail with a 5xx or write.
          const before = w.store.journal.length;
          const res = await w.request(url, init);
          expect(res.status, `${url} -> ${res.status}`).toBeLessThan(500);
          expect(w.store.journal.length).toBe(before);
          n++;
          return;
        }
        n++;
        const status = await refused('admin', url, init, 'json');
        if (auth !== 'good') expect(status).toBe(401);
      }),
      opts(2000),
    );
    tally('admin api', n);
    console.log(`admin API: ${n} hostile requests (bodies and query strings), all 4xx JSON or harmless reads`);
  }, 60_000);

  it('console form posts: hostile fields with a valid session and CSRF token, and without either', async () => {
    const s = await consoleLogin(w);
    let n = 0;
    const paths = ['/config', '/config/rollback', '/config/mappings', '/config/mappings/rollback', '/dead-letters/retry', '/replay', '/forum/reply', '/forum/close', '/forum/presence', '/sandbox/generator', '/logout'];
    const field = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('-1', '0', '1e309', 'NaN', '../../etc/passwd', '<script>', '{"a":1}', 'x'.repeat(5000)));
    const form = fc.dictionary(fc.constantFrom('version', 'id', 'group', 'topic', 'user', 'text', 'online', 'action', 'crm', 'account', 'mapping', 'rules', 'queues', 'agents', 'days', 'note', 'tier', 'json'), field, { maxKeys: 6 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths.filter((p) => p !== '/logout')), form, fc.constantFrom<'session' | 'no-csrf' | 'wrong-csrf' | 'no-session' | 'cross-site'>('session', 'no-csrf', 'wrong-csrf', 'no-session', 'cross-site'), async (path, f, mode) => {
        n++;
        const body = new URLSearchParams({ ...f, ...(mode === 'session' || mode === 'cross-site' ? { _csrf: s.csrf } : mode === 'wrong-csrf' ? { _csrf: s.csrf.slice(0, -2) + 'xx' } : {}) });
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        if (mode !== 'no-session') headers.cookie = s.cookie;
        if (mode === 'cross-site') headers.origin = 'https://evil.example';
        const status = await refused(`console ${mode}`, path, { method: 'POST', headers, body: body.toString() }, 'console');
        if (mode === 'no-csrf' || mode === 'wrong-csrf' || mode === 'cross-site') expect(status).toBe(403);
        if (mode === 'no-session') expect(status).toBe(303);
      }),
      opts(1500),
    );
    tally('console posts', n);
    console.log(`console form posts: ${n} hostile posts answered with 4xx or a redirect, none changed the store`);
  }, 60_000);
});
