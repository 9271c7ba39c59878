// A stateful HubSpot-shaped HTTP server on loopback: CRM objects v3 (single and batch), associations v4, properties
// and groups, account info, the OAuth authorize/token/introspection endpoints, workflow-action callbacks, HubSpot's
// status codes and error bodies (401, 404, 207 multi-status, 400 VALIDATION_ERROR, the 429 rate-limit body), a
// ten-second rolling rate limit per portal, injectable faults, and HubSpot's outbound side: signed webhook batches,
// workflow-action requests and hubspot.fetch calls from a card. It powers the tests and `npm start` without
// credentials, always driven through the real @hubspot/api-client.
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { associationTypeIds, createPortal, OBJECT_TYPES, SINGULAR, TICKET_PIPELINES, TYPE_ALIASES, UniqueConflict, ValidationFailure, type Callback, type HsObjectRecord, type ObjectType, type Portal, type PropDef } from './portal.ts';
import { SEED_COMPANIES, seedCustomProperties, seedPortal } from './seed.ts';

export type FaultMatch = { method?: string; path?: string | RegExp };
type Fault = { kind: '429' | '5xx' | 'hang' | 'lost'; status: number; policyName?: string; retryAfterSec?: number; match?: FaultMatch };

export type HubspotSandboxOptions = {
  /** The app's client secret: webhooks, workflow actions and card fetches are signed with it. */
  clientSecret: string;
  clientId?: string;
  appId?: string;
  /** Where ticket events are POSTed (the connector's /webhooks/hubspot), like the app's webhook target URL. */
  webhookUrl?: string;
  seed?: boolean;
  /** Delay added to every API call (the end-to-end bench uses 100 ms). */
  latencyMs?: number;
  /** Faults for the first API calls, in order (see inject429 / inject5xx / injectTimeout). */
  faults?: { kind: '429' | '5xx' | 'hang' | 'lost'; count: number; status?: number; match?: FaultMatch }[];
  portalId?: string;
  /** Requests per rolling window per portal before the 429 (HubSpot private apps: 100-190 per 10 s); null = off. */
  rateLimit?: { max: number; windowMs: number } | null;
  accessTokenTtlSeconds?: number;
  /** The time on signatures, timestamps and token expiry (tests pass their clock). */
  now?: () => number;
};

export type WebhookEvent = {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  occurredAt: number;
  subscriptionType: string;
  attemptNumber: number;
  objectId: number;
  changeFlag?: string;
  changeSource: string;
  sourceId?: string;
  propertyName?: string;
  propertyValue?: string;
};

export type Delivery = { events: WebhookEvent[]; status: number; text: string; at: number };
export type RequestLog = { method: string; path: string; query: string; status: number; portalId: string | null; body: unknown };

/** Requests and deliveries the sandbox remembers for inspection (the most recent ones). */
const LOG_LIMIT = 5_000;

export type HubspotSandbox = Awaited<ReturnType<typeof startHubspotSandbox>>;

const SUBSCRIPTION_IDS = { creation: 1_201_001, propertyChange: 1_201_002 } as const;

const json = (c: Context, status: number, body: unknown) => c.json(body as object, status as 200);

export async function startHubspotSandbox(opts: HubspotSandboxOptions) {
  const now = opts.now ?? (() => Date.now());
  const clientId = opts.clientId ?? 'tierline-sandbox-client';
  const appId = opts.appId ?? '4206301';
  const ttl = opts.accessTokenTtlSeconds ?? 1800;
  const rate = opts.rateLimit === undefined ? { max: 190, windowMs: 10_000 } : opts.rateLimit;
  const portals = new Map<string, Portal>();
  const privateTokens = new Map<string, string>(); // token -> portal
  const oauthTokens = new Map<string, { portalId: string; expiresAt: number; scopes: string[]; refreshToken: string }>();
  const refreshTokens = new Map<string, { portalId: string; scopes: string[] }>();
  const codes = new Map<string, { portalId: string; redirectUri: string; scopes: string[] }>();
  const windows = new Map<string, number[]>();
  const faults: Fault[] = [];
  const log: RequestLog[] = [];
  const deliveries: Delivery[] = [];
  const hanging = new Set<() => void>();
  let nextEventId = 3_000_000_000 + Math.floor(Math.random() * 1_000_000);
  let closed = false;

  function addPortal(o: { seed?: boolean; portalId?: string } = {}): { portalId: string; accessToken: string } {
    const portalId = o.portalId ?? String(40_000_000 + Math.floor(Math.random() * 9_000_000));
    // Record ids start high and differ per portal and run, as HubSpot's do, so ids from an earlier sandbox never collide.
    const p = createPortal({ portalId, now, idBase: 10_000_000_000 + Math.floor(Math.random() * 1_000_000) * 1000 });
    if (o.seed) seedPortal(p);
    else seedCustomProperties(p);
    portals.set(portalId, p);
    const accessToken = `pat-sbx-${randomBytes(12).toString('hex')}`;
    privateTokens.set(accessToken, portalId);
    return { portalId, accessToken };
  }

  const main = addPortal({ seed: opts.seed ?? false, ...(opts.portalId ? { portalId: opts.portalId } : {}) });
  for (const f of opts.faults ?? []) for (let i = 0; i < f.count; i++) faults.push({ kind: f.kind, status: f.status ?? (f.kind === '429' ? 429 : f.kind === '5xx' ? 502 : 504), ...(f.match ? { match: f.match } : {}) });

  const portalOf = (id: string): Portal => {
    const p = portals.get(id);
    if (!p) throw new Error(`no sandbox portal ${id}`);
    return p;
  };

  // ------------------------------------------------------------------ HTTP

  const app = new Hono();

  const errorBody = (category: string, message: string, extra: Record<string, unknown> = {}) => ({ status: 'error', message, correlationId: randomUUID(), category, ...extra });

  function takeFault(method: string, path: string): Fault | null {
    const i = faults.findIndex((f) => {
      if (!f.match) return true;
      if (f.match.method && f.match.method.toUpperCase() !== method) return false;
      if (f.match.path && !(typeof f.match.path === 'string' ? path.includes(f.match.path) : f.match.path.test(path))) return false;
      return true;
    });
    return i < 0 ? null : faults.splice(i, 1)[0]!;
  }

  function rateLimited(portalId: string): boolean {
    if (!rate) return false;
    const t = performance.now();
    const w = (windows.get(portalId) ?? []).filter((x) => t - x < rate.windowMs);
    if (w.length >= rate.max) {
      windows.set(portalId, w);
      return true;
    }
    w.push(t);
    windows.set(portalId, w);
    return false;
  }

  function authPortal(c: Context): { portal: Portal } | { error: Response } {
    const h = c.req.header('authorization') ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(h)?.[1]?.trim() ?? '';
    const priv = privateTokens.get(token);
    if (priv) return { portal: portalOf(priv) };
    const oa = oauthTokens.get(token);
    if (oa && oa.expiresAt > now()) return { portal: portalOf(oa.portalId) };
    if (oa) return { error: json(c, 401, errorBody('EXPIRED_AUTHENTICATION', 'The OAuth token used to make this call expired 0 second(s) ago.')) };
    return { error: json(c, 401, errorBody('INVALID_AUTHENTICATION', 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview')) };
  }

  // OAuth: the authorize "page" approves at once; the token and introspection endpoints are HubSpot's.
  app.get('/oauth/authorize', (c) => {
    const q = c.req.query();
    if (q.client_id !== clientId) return c.html('<h1>Authorization failed</h1><p>Unknown client_id.</p>', 400);
    if (!q.redirect_uri) return c.html('<h1>Authorization failed</h1><p>redirect_uri is required.</p>', 400);
    const portalId = q.portal_id && portals.has(q.portal_id) ? q.portal_id : main.portalId;
    const code = `sbx-code-${randomBytes(12).toString('hex')}`;
    codes.set(code, { portalId, redirectUri: q.redirect_uri, scopes: (q.scope ?? '').split(/[\s+]+/).filter(Boolean) });
    const to = new URL(q.redirect_uri);
    to.searchParams.set('code', code);
    if (q.state !== undefined) to.searchParams.set('state', q.state);
    return c.redirect(to.toString(), 302);
  });

  function issue(portalId: string, scopes: string[], refreshToken?: string) {
    const accessToken = `sbx-at-${randomBytes(16).toString('hex')}`;
    const rt = refreshToken ?? `sbx-rt-${randomBytes(16).toString('hex')}`;
    oauthTokens.set(accessToken, { portalId, expiresAt: now() + ttl * 1000, scopes, refreshToken: rt });
    refreshTokens.set(rt, { portalId, scopes });
    return { access_token: accessToken, refresh_token: rt, expires_in: ttl, token_type: 'bearer' };
  }

  app.post('/oauth/v1/token', async (c) => {
    const form = new URLSearchParams(await c.req.text());
    const grant = form.get('grant_type');
    log.push({ method: 'POST', path: '/oauth/v1/token', query: '', status: 0, portalId: null, body: { grant_type: grant } });
    const entry = log[log.length - 1]!;
    const fail = (status: string, message: string) => {
      entry.status = 400;
      return json(c, 400, { status, message, correlationId: randomUUID() });
    };
    if (form.get('client_id') !== clientId) return fail('BAD_CLIENT_ID', 'missing or unknown client id');
    if (form.get('client_secret') !== opts.clientSecret) return fail('BAD_CLIENT_SECRET', 'missing or invalid client secret');
    if (grant === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '');
      if (!code) return fail('BAD_AUTH_CODE', 'missing or unknown auth code');
      if (code.redirectUri !== form.get('redirect_uri')) return fail('BAD_REDIRECT_URI', 'redirect_uri does not match the one the code was issued for');
      codes.delete(form.get('code')!);
      entry.status = 200;
      entry.portalId = code.portalId;
      return json(c, 200, issue(code.portalId, code.scopes));
    }
    if (grant === 'refresh_token') {
      const rt = form.get('refresh_token') ?? '';
      const r = refreshTokens.get(rt);
      if (!r) return fail('BAD_REFRESH_TOKEN', 'missing or unknown refresh token');
      entry.status = 200;
      entry.portalId = r.portalId;
      return json(c, 200, issue(r.portalId, r.scopes, rt));
    }
    return fail('BAD_GRANT_TYPE', `grant_type ${String(grant).slice(0, 40)} is not supported`);
  });

  app.get('/oauth/v1/access-tokens/:token', (c) => {
    const t = oauthTokens.get(c.req.param('token'));
    if (!t || t.expiresAt <= now()) return json(c, 404, errorBody('OBJECT_NOT_FOUND', 'The access token is expired or unknown.'));
    return json(c, 200, { token: c.req.param('token'), user: 'admin@tierline.example', hub_domain: `sandbox-${t.portalId}.hubspot.example`, scopes: t.scopes, hub_id: Number(t.portalId), app_id: Number(appId), expires_in: Math.max(0, Math.floor((t.expiresAt - now()) / 1000)), user_id: 9100001, token_type: 'access' });
  });

  // Everything else is an authenticated API call: latency, fault injection, auth, the rate limit, then the API.
  app.all('*', async (c) => {
    const url = new URL(c.req.url);
    const method = c.req.method.toUpperCase();
    const raw = method === 'GET' || method === 'DELETE' ? '' : await c.req.text();
    let body: unknown = null;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        return json(c, 400, errorBody('VALIDATION_ERROR', 'Invalid input JSON on line 1'));
      }
    }
    const entry: RequestLog = { method, path: url.pathname, query: url.search, status: 0, portalId: null, body };
    log.push(entry);
    // Bounded: `npm start` runs the sandbox for days; tests look at the recent requests only.
    if (log.length > LOG_LIMIT) log.splice(0, log.length - LOG_LIMIT);
    if (opts.latencyMs) await new Promise((ok) => setTimeout(ok, opts.latencyMs));
    const fault = takeFault(method, url.pathname);
    if (fault?.kind === 'hang') {
      await new Promise<void>((ok) => {
        hanging.add(ok);
      });
      entry.status = 504;
      return json(c, 504, errorBody('GATEWAY_TIMEOUT', 'The request timed out'));
    }
    if (fault?.kind === '5xx') {
      entry.status = fault.status;
      return json(c, fault.status, errorBody('INTERNAL_ERROR', 'internal error'));
    }
    const auth = authPortal(c);
    if ('error' in auth) {
      entry.status = 401;
      return auth.error;
    }
    const p = auth.portal;
    entry.portalId = p.id;
    if (fault?.kind === '429' || rateLimited(p.id)) {
      entry.status = 429;
      if (fault?.retryAfterSec !== undefined) c.header('Retry-After', String(fault.retryAfterSec));
      c.header('X-HubSpot-RateLimit-Max', String(rate?.max ?? 190));
      c.header('X-HubSpot-RateLimit-Remaining', '0');
      c.header('X-HubSpot-RateLimit-Interval-Milliseconds', String(rate?.windowMs ?? 10_000));
      return json(c, 429, errorBody('RATE_LIMITS', 'You have reached your ten_secondly_rolling limit.', { errorType: 'RATE_LIMIT', policyName: fault?.policyName ?? 'TEN_SECONDLY_ROLLING', groupName: `privateapp:${appId}` }));
    }
    const res = await api(c, p, method, url, body);
    if (fault?.kind === 'lost') {
      // Applied, but the answer never reached the caller (a gateway timeout on the way back).
      entry.status = 504;
      return json(c, 504, errorBody('GATEWAY_TIMEOUT', 'The request timed out'));
    }
    entry.status = res.status;
    return res;
  });

  // ------------------------------------------------------------------ API

  function objectType(seg: string | undefined): ObjectType | null {
    return (seg && TYPE_ALIASES[seg.toLowerCase()]) || null;
  }

  function listParam(url: URL, name: string): string[] {
    return url.searchParams.getAll(name).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  }

  /** An object as the v3 API shows it: the requested properties that exist (null when empty) plus the defaults. */
  function view(p: Portal, type: ObjectType, rec: HsObjectRecord, properties: string[], associations: string[] = []) {
    const out: Record<string, string | null> = {};
    const defaults = ['hs_object_id', 'createdate', type === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate'];
    const wanted = properties.length ? [...properties, ...defaults] : [...p.props[type].keys()].filter((n) => rec.properties[n] !== undefined && rec.properties[n] !== '');
    for (const n of wanted) {
      if (!p.props[type].has(n)) continue;
      const v = rec.properties[n];
      out[n] = v === undefined || v === '' ? null : v;
    }
    const v: Record<string, unknown> = { id: rec.id, properties: out, createdAt: rec.createdAt, updatedAt: rec.updatedAt, archived: rec.archived };
    const assoc: Record<string, { results: { id: string; type: string }[] }> = {};
    for (const a of associations) {
      const to = objectType(a);
      if (!to) continue;
      const results: { id: string; type: string }[] = [];
      for (const id of p.associated(type, rec.id, to)) {
        const base = `${SINGULAR[type]}_to_${SINGULAR[to]}`;
        const ids = associationTypeIds(type, to);
        if (ids.length > 1 && p.isPrimary(type, rec.id, to, id)) results.push({ id, type: base });
        results.push({ id, type: ids.length > 1 ? `${base}_unlabeled` : base });
      }
      if (results.length) assoc[to] = { results };
    }
    if (Object.keys(assoc).length) v.associations = assoc;
    return v;
  }

  function validationError(c: Context, e: ValidationFailure) {
    return json(c, 400, errorBody('VALIDATION_ERROR', e.message, { errors: e.problems.map((x) => ({ message: x.message, code: x.error, context: { propertyName: [x.name] } })) }));
  }

  const notFound = (c: Context) => json(c, 404, errorBody('OBJECT_NOT_FOUND', 'resource not found'));
  const batchTime = () => ({ startedAt: new Date(now()).toISOString(), completedAt: new Date(now()).toISOString() });

  function missingObjects(type: ObjectType, ids: string[]) {
    return { status: 'error', category: 'OBJECT_NOT_FOUND', message: `Could not get some ${SINGULAR[type].toUpperCase()} objects, they may be deleted or not exist. Check that ids are valid.`, context: { ids } };
  }

  type AssocInput = { to?: { id?: unknown }; types?: { associationCategory?: unknown; associationTypeId?: unknown }[] };

  /** Checks create-time associations (v4 shape); returns an error message or applies nothing and returns null. */
  function checkAssociations(p: Portal, type: ObjectType, list: unknown): { pairs: { to: ObjectType; id: string }[] } | { error: string } {
    const pairs: { to: ObjectType; id: string }[] = [];
    for (const a of (Array.isArray(list) ? list : []) as AssocInput[]) {
      const id = String(a?.to?.id ?? '');
      const typeId = Number(a?.types?.[0]?.associationTypeId);
      const to = OBJECT_TYPES.find((t) => associationTypeIds(type, t).includes(typeId));
      if (!to) return { error: `Association type id ${typeId} is not valid from ${SINGULAR[type]}` };
      if (!p.get(to, id)) return { error: `One or more associations are invalid: ${SINGULAR[to].toUpperCase()} ${id} does not exist` };
      pairs.push({ to, id });
    }
    return { pairs };
  }

  async function api(c: Context, p: Portal, method: string, url: URL, body: unknown): Promise<Response> {
    const seg = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const b = (body ?? {}) as Record<string, unknown>;

    if (method === 'GET' && url.pathname === '/account-info/v3/details') {
      return json(c, 200, { portalId: Number(p.id), accountType: 'STANDARD', timeZone: p.timeZone, companyCurrency: p.currency, additionalCurrencies: [], utcOffset: '+01:00', utcOffsetMilliseconds: 3_600_000, uiDomain: 'app.hubspot.com', dataHostingLocation: 'eu1' });
    }

    // /automation/v4/actions/callbacks/{callbackId}/complete
    if (method === 'POST' && seg[0] === 'automation' && seg[1] === 'v4' && seg[3] === 'callbacks' && seg[5] === 'complete') {
      const cb = p.callbacks.get(seg[4] ?? '');
      if (!cb) return json(c, 404, errorBody('OBJECT_NOT_FOUND', `Callback ${seg[4]} not found`));
      if (cb.state === 'COMPLETED') return json(c, 400, errorBody('VALIDATION_ERROR', `Callback ${cb.callbackId} has already been completed`));
      const out = (b.outputFields ?? {}) as Record<string, unknown>;
      cb.state = 'COMPLETED';
      cb.outputFields = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, String(v)]));
      cb.completedAt = now();
      return c.body(null, 204);
    }

    // /crm/v3/pipelines/tickets: the pipelines with their stages (metadata.ticketState OPEN / CLOSED)
    if (method === 'GET' && seg[0] === 'crm' && seg[1] === 'v3' && seg[2] === 'pipelines' && seg.length === 4) {
      if (objectType(seg[3]) !== 'tickets') return json(c, 400, errorBody('VALIDATION_ERROR', `Unable to infer object type from: ${seg[3]}`));
      const at = '2026-01-05T09:00:00.000Z';
      return json(c, 200, {
        results: TICKET_PIPELINES.map((x, i) => ({
          id: x.id,
          label: x.label,
          displayOrder: i,
          archived: false,
          createdAt: at,
          updatedAt: at,
          stages: x.stages.map((st, j) => ({ id: st.id, label: st.label, displayOrder: j, archived: false, createdAt: at, updatedAt: at, writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT', metadata: { ticketState: st.ticketState } })),
        })),
      });
    }

    // /crm/v3/properties/{objectType}[/groups[/{name}] | /batch/{read,create} | /{name}]
    if (seg[0] === 'crm' && seg[1] === 'v3' && seg[2] === 'properties') {
      const type = objectType(seg[3]);
      if (!type) return json(c, 400, errorBody('VALIDATION_ERROR', `Unable to infer object type from: ${seg[3]}`));
      const defs = p.props[type];
      const groups = p.groups[type];
      const show = (d: PropDef) => ({ ...d, options: d.options.map((o) => ({ ...o })), formField: false, calculated: false, externalOptions: false, hasUniqueValue: !!d.hasUniqueValue, hidden: false, displayOrder: -1, modificationMetadata: { archivable: true, readOnlyDefinition: d.hubspotDefined, readOnlyValue: false } });
      if (seg[4] === 'groups') {
        if (method === 'GET' && seg[5]) {
          const g = groups.get(seg[5]);
          return g ? json(c, 200, g) : json(c, 404, errorBody('OBJECT_NOT_FOUND', `Unable to find group ${seg[5]} for object type ${SINGULAR[type]}`));
        }
        if (method === 'GET') return json(c, 200, { results: [...groups.values()] });
        if (method === 'POST') {
          const name = String(b.name ?? '');
          if (!/^[a-z0-9_]+$/.test(name)) return json(c, 400, errorBody('VALIDATION_ERROR', 'Group name must be lower case letters, digits and underscores'));
          if (groups.has(name)) return json(c, 409, errorBody('CONFLICT', `A group named ${name} already exists`));
          const g = { name, label: String(b.label ?? name), displayOrder: Number(b.displayOrder ?? -1), archived: false };
          groups.set(name, g);
          return json(c, 201, g);
        }
      }
      const makeDef = (x: Record<string, unknown>): PropDef | string => {
        const name = String(x.name ?? '');
        if (!/^[a-z][a-z0-9_]*$/.test(name)) return `Property name ${name} is invalid`;
        if (defs.has(name)) return `Property named '${name}' already exists.`;
        const groupName = String(x.groupName ?? '');
        if (!groups.has(groupName)) return `Property group ${groupName} does not exist`;
        const type_ = String(x.type ?? '');
        if (!['string', 'number', 'datetime', 'date', 'enumeration', 'bool'].includes(type_)) return `Property type ${type_} is invalid`;
        const options = Array.isArray(x.options) ? (x.options as Record<string, unknown>[]).map((o, i) => ({ label: String(o.label), value: String(o.value), displayOrder: Number(o.displayOrder ?? i), hidden: Boolean(o.hidden) })) : [];
        if ((type_ === 'enumeration' || type_ === 'bool') && !options.length) return `Property ${name} of type ${type_} needs options`;
        return { name, label: String(x.label ?? name), description: String(x.description ?? ''), type: type_, fieldType: String(x.fieldType ?? 'text'), groupName, options, hubspotDefined: false, createdAt: p.iso(), updatedAt: p.iso(), ...(x.hasUniqueValue === true ? { hasUniqueValue: true } : {}) };
      };
      if (seg[4] === 'batch' && seg[5] === 'read' && method === 'POST') {
        const names = ((b.inputs ?? []) as { name?: unknown }[]).map((i) => String(i.name));
        const found = names.map((n) => defs.get(n)).filter((d): d is PropDef => !!d);
        const missing = names.filter((n) => !defs.has(n));
        return json(c, missing.length ? 207 : 200, { status: 'COMPLETE', results: found.map(show), ...(missing.length ? { numErrors: missing.length, errors: missing.map((n) => ({ status: 'error', category: 'OBJECT_NOT_FOUND', message: `Unable to find property ${n}`, context: { propertyName: [n] } })) } : {}), ...batchTime() });
      }
      if (seg[4] === 'batch' && seg[5] === 'create' && method === 'POST') {
        const inputs = (b.inputs ?? []) as Record<string, unknown>[];
        const made: PropDef[] = [];
        for (const x of inputs) {
          const d = makeDef(x);
          if (typeof d === 'string') return json(c, 400, errorBody(d.includes('already exists') ? 'CONFLICT' : 'VALIDATION_ERROR', d));
          made.push(d);
        }
        for (const d of made) defs.set(d.name, d);
        return json(c, 201, { status: 'COMPLETE', results: made.map(show), ...batchTime() });
      }
      if (method === 'GET' && !seg[4]) return json(c, 200, { results: [...defs.values()].map(show) });
      if (method === 'POST' && !seg[4]) {
        const d = makeDef(b);
        if (typeof d === 'string') return json(c, d.includes('already exists') ? 409 : 400, errorBody(d.includes('already exists') ? 'CONFLICT' : 'VALIDATION_ERROR', d));
        defs.set(d.name, d);
        return json(c, 201, show(d));
      }
      const d = seg[4] ? defs.get(seg[4]) : undefined;
      if (!d) return json(c, 404, errorBody('OBJECT_NOT_FOUND', `Unable to find property ${seg[4]} for object type ${SINGULAR[type]}`));
      if (method === 'GET') return json(c, 200, show(d));
      if (method === 'PATCH') {
        if (Array.isArray(b.options)) d.options = (b.options as Record<string, unknown>[]).map((o, i) => ({ label: String(o.label), value: String(o.value), displayOrder: Number(o.displayOrder ?? i), hidden: Boolean(o.hidden) }));
        for (const k of ['label', 'description', 'groupName', 'fieldType'] as const) if (typeof b[k] === 'string') d[k] = b[k] as string;
        d.updatedAt = p.iso();
        return json(c, 200, show(d));
      }
      if (method === 'DELETE') {
        defs.delete(d.name);
        return c.body(null, 204);
      }
    }

    // /crm/v4/associations/{from}/{to}/batch/read
    if (seg[0] === 'crm' && seg[1] === 'v4' && seg[2] === 'associations' && seg[5] === 'batch' && seg[6] === 'read' && method === 'POST') {
      const from = objectType(seg[3]);
      const to = objectType(seg[4]);
      if (!from || !to) return json(c, 400, errorBody('VALIDATION_ERROR', 'Unknown object type'));
      const inputs = (Array.isArray(b.inputs) ? b.inputs : []) as { id?: unknown }[];
      if (inputs.length > 1000) return json(c, 400, errorBody('VALIDATION_ERROR', 'Batch input limit exceeded: at most 1000 inputs are allowed per request'));
      const results: unknown[] = [];
      const errors: unknown[] = [];
      for (const i of inputs) {
        const id = String(i.id ?? '');
        const ids = p.get(from, id) ? p.associated(from, id, to) : [];
        if (!ids.length) {
          errors.push({ status: 'error', category: 'OBJECT_NOT_FOUND', message: `No ${SINGULAR[to]} is associated with ${SINGULAR[from]} ${id}.`, context: { fromObjectId: [id] } });
          continue;
        }
        const typeIds = associationTypeIds(from, to);
        results.push({
          from: { id },
          to: ids.map((tid) => ({
            toObjectId: Number(tid),
            associationTypes: typeIds.length > 1 ? [...(p.isPrimary(from, id, to, tid) ? [{ category: 'HUBSPOT_DEFINED', typeId: typeIds[0]!, label: 'Primary' }] : []), { category: 'HUBSPOT_DEFINED', typeId: typeIds[1]!, label: null }] : typeIds.map((typeId) => ({ category: 'HUBSPOT_DEFINED', typeId, label: null })),
          })),
        });
      }
      return json(c, errors.length ? 207 : 200, { status: 'COMPLETE', results, ...(errors.length ? { numErrors: errors.length, errors } : {}), ...batchTime() });
    }

    // /crm/v4/objects/{from}/{id}/associations/{to}
    if (seg[0] === 'crm' && seg[1] === 'v4' && seg[2] === 'objects' && seg[5] === 'associations' && method === 'GET') {
      const from = objectType(seg[3]);
      const to = objectType(seg[6]);
      if (!from || !to) return json(c, 400, errorBody('VALIDATION_ERROR', 'Unknown object type'));
      if (!p.get(from, seg[4] ?? '')) return notFound(c);
      const ids = p.associated(from, seg[4]!, to);
      const limit = Math.min(500, Number(url.searchParams.get('limit') ?? 500) || 500);
      const after = Number(url.searchParams.get('after') ?? 0) || 0;
      const page = ids.slice(after, after + limit);
      return json(c, 200, {
        results: page.map((id) => {
          const typeIds = associationTypeIds(from, to);
          // Two type ids: the first is the primary label (only on the primary record), the second the unlabeled one.
          const types = typeIds.length > 1 ? [...(p.isPrimary(from, seg[4]!, to, id) ? [{ typeId: typeIds[0]!, label: 'Primary' }] : []), { typeId: typeIds[1]!, label: null }] : typeIds.map((typeId) => ({ typeId, label: null }));
          return { toObjectId: Number(id), associationTypes: types.map((x) => ({ category: 'HUBSPOT_DEFINED', ...x })) };
        }),
        ...(after + limit < ids.length ? { paging: { next: { after: String(after + limit), link: '' } } } : {}),
      });
    }

    // /crm/v3/objects/{type}[/{id} | /batch/{read,update,create}]
    if (seg[0] === 'crm' && seg[1] === 'v3' && seg[2] === 'objects') {
      const type = objectType(seg[3]);
      if (!type) return json(c, 400, errorBody('VALIDATION_ERROR', `Unable to infer object type from: ${seg[3]}`));
      if (seg[4] === 'batch') {
        const inputs = (Array.isArray(b.inputs) ? b.inputs : []) as Record<string, unknown>[];
        if (inputs.length > 100) return json(c, 400, errorBody('VALIDATION_ERROR', 'Batch input limit exceeded: at most 100 inputs are allowed per request', { context: { limit: ['100'] } }));
        if (seg[5] === 'read' && method === 'POST') {
          const props = ((b.properties ?? []) as string[]).map(String);
          const ids = inputs.map((i) => String(i.id));
          const found = ids.map((id) => p.get(type, id)).filter((r): r is HsObjectRecord => !!r);
          const missing = ids.filter((id) => !p.get(type, id));
          return json(c, missing.length ? 207 : 200, { status: 'COMPLETE', results: found.map((r) => view(p, type, r, props)), ...(missing.length ? { numErrors: 1, errors: [missingObjects(type, missing)] } : {}), ...batchTime() });
        }
        if (seg[5] === 'update' && method === 'POST') {
          try {
            for (const i of inputs) p.validate(type, (i.properties ?? {}) as Record<string, unknown>, false);
          } catch (e) {
            if (e instanceof ValidationFailure) return validationError(c, e);
            throw e;
          }
          const results: HsObjectRecord[] = [];
          const missing: string[] = [];
          for (const i of inputs) {
            const r = p.update(type, String(i.id), (i.properties ?? {}) as Record<string, unknown>);
            if (r) results.push(r);
            else missing.push(String(i.id));
          }
          const propsOf = (i: Record<string, unknown>) => Object.keys((i.properties ?? {}) as object);
          return json(c, missing.length ? 207 : 200, { status: 'COMPLETE', results: results.map((r) => view(p, type, r, propsOf(inputs.find((i) => String(i.id) === r.id)!))), ...(missing.length ? { numErrors: 1, errors: [missingObjects(type, missing)] } : {}), ...batchTime() });
        }
        if (seg[5] === 'create' && method === 'POST') {
          const checked: { pairs: { to: ObjectType; id: string }[] }[] = [];
          try {
            for (const i of inputs) {
              p.validate(type, (i.properties ?? {}) as Record<string, unknown>, true);
              const a = checkAssociations(p, type, i.associations);
              if ('error' in a) return json(c, 400, errorBody('VALIDATION_ERROR', a.error));
              checked.push(a);
            }
          } catch (e) {
            if (e instanceof ValidationFailure) return validationError(c, e);
            throw e;
          }
          const made = inputs.map((i, n) => {
            const r = p.create(type, (i.properties ?? {}) as Record<string, unknown>);
            for (const pair of checked[n]!.pairs) p.associate(type, r.id, pair.to, pair.id);
            return { ...view(p, type, r, Object.keys((i.properties ?? {}) as object)), ...(typeof i.objectWriteTraceId === 'string' ? { objectWriteTraceId: i.objectWriteTraceId } : {}) };
          });
          // HubSpot does not promise input order in batch results; neither does the sandbox.
          return json(c, 201, { status: 'COMPLETE', results: made.reverse(), ...batchTime() });
        }
      }
      // /crm/v3/objects/{type}/search: filter groups are ORed, the filters inside a group ANDed.
      if (seg[4] === 'search' && method === 'POST') {
        const groupsIn = (Array.isArray(b.filterGroups) ? b.filterGroups : []) as { filters?: { propertyName?: string; operator?: string; value?: unknown; values?: unknown[] }[] }[];
        if (groupsIn.length > 5) return json(c, 400, errorBody('VALIDATION_ERROR', 'Too many filter groups: at most 5 are allowed'));
        const match = (r: HsObjectRecord, f: { propertyName?: string; operator?: string; value?: unknown; values?: unknown[] }) => {
          const v = r.properties[String(f.propertyName ?? '')] ?? null;
          switch (f.operator) {
            case 'EQ':
              return v !== null && v !== '' && v.toLowerCase() === String(f.value ?? '').toLowerCase();
            case 'NEQ':
              return v !== String(f.value ?? '');
            case 'IN':
              return v !== null && (f.values ?? []).map((x) => String(x).toLowerCase()).includes(v.toLowerCase());
            case 'HAS_PROPERTY':
              return v !== null && v !== '';
            case 'NOT_HAS_PROPERTY':
              return v === null || v === '';
            default:
              return false;
          }
        };
        for (const g of groupsIn) for (const f of g.filters ?? []) if (!p.props[type].has(String(f.propertyName ?? ''))) return json(c, 400, errorBody('VALIDATION_ERROR', `There was a problem with the request: property ${f.propertyName} does not exist`));
        const all = [...p.objects[type].values()].filter((r) => !r.archived && (!groupsIn.length || groupsIn.some((g) => (g.filters ?? []).every((f) => match(r, f)))));
        all.sort((x, y) => Number(x.id) - Number(y.id));
        const limit = Math.min(200, Number(b.limit ?? 10) || 10);
        const after = Number(b.after ?? 0) || 0;
        const page = all.slice(after, after + limit);
        const props = ((b.properties ?? []) as string[]).map(String);
        return json(c, 200, { total: all.length, results: page.map((r) => view(p, type, r, props)), ...(after + limit < all.length ? { paging: { next: { after: String(after + limit) } } } : {}) });
      }
      const id = seg[4];
      if (method === 'POST' && !id) {
        try {
          const a = checkAssociations(p, type, b.associations);
          if ('error' in a) return json(c, 400, errorBody('VALIDATION_ERROR', a.error));
          const r = p.create(type, (b.properties ?? {}) as Record<string, unknown>);
          for (const pair of a.pairs) p.associate(type, r.id, pair.to, pair.id);
          return json(c, 201, view(p, type, r, Object.keys((b.properties ?? {}) as object)));
        } catch (e) {
          if (e instanceof ValidationFailure) return validationError(c, e);
          if (e instanceof UniqueConflict) return json(c, 409, errorBody('CONFLICT', e.message, { context: { property: [e.property], existingId: [e.existingId] } }));
          throw e;
        }
      }
      if (id && method === 'GET') {
        const idProperty = url.searchParams.get('idProperty');
        const r = idProperty ? p.getBy(type, idProperty, id) : p.get(type, id);
        return r ? json(c, 200, view(p, type, r, listParam(url, 'properties'), listParam(url, 'associations'))) : notFound(c);
      }
      if (id && method === 'PATCH') {
        try {
          const r = p.update(type, id, (b.properties ?? {}) as Record<string, unknown>);
          return r ? json(c, 200, view(p, type, r, Object.keys((b.properties ?? {}) as object))) : notFound(c);
        } catch (e) {
          if (e instanceof ValidationFailure) return validationError(c, e);
          throw e;
        }
      }
      if (id && method === 'DELETE') {
        p.archive(type, id);
        return c.body(null, 204);
      }
    }
    return json(c, 404, errorBody('NOT_FOUND', `No route for ${method} ${url.pathname}`));
  }

  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: (req) => app.fetch(req), port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // ------------------------------------------------------------------ HubSpot's outbound side

  // HubSpot signs the URI with a few percent-escapes decoded (its v3 docs list them); so does the sandbox.
  const decoded = (uri: string) => uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => decodeURIComponent(m));
  const signV3 = (method: string, uri: string, body: string, ts: string) => createHmac('sha256', opts.clientSecret).update(`${method}${decoded(uri)}${body}${ts}`).digest('base64');

  /** POSTs a batch of events to the webhook URL exactly as HubSpot does (v1 and v3 signature headers). */
  async function sendEvents(events: WebhookEvent[], o: { to?: string; tamper?: boolean; timestamp?: number; unsigned?: boolean; rawBody?: string } = {}): Promise<Delivery> {
    const to = o.to ?? opts.webhookUrl;
    if (!to) throw new Error('the sandbox has no webhookUrl to deliver to');
    const body = o.rawBody ?? JSON.stringify(events);
    const ts = String(o.timestamp ?? now());
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'HubSpot Connect 2.0 (http://dev.hubspot.com/)' };
    if (!o.unsigned) {
      headers['x-hubspot-signature'] = createHash('sha256').update(opts.clientSecret + body).digest('hex');
      headers['x-hubspot-signature-version'] = 'v1';
      headers['x-hubspot-signature-v3'] = o.tamper ? signV3('POST', to, body + ' ', ts) : signV3('POST', to, body, ts);
      headers['x-hubspot-request-timestamp'] = ts;
    }
    const res = await fetch(to, { method: 'POST', headers, body });
    const d: Delivery = { events, status: res.status, text: await res.text(), at: now() };
    deliveries.push(d);
    if (deliveries.length > LOG_LIMIT) deliveries.splice(0, deliveries.length - LOG_LIMIT);
    return d;
  }

  function event(portalId: string, type: string, objectId: string, extra: Partial<WebhookEvent> = {}): WebhookEvent {
    return {
      eventId: nextEventId++,
      subscriptionId: type.endsWith('propertyChange') ? SUBSCRIPTION_IDS.propertyChange : SUBSCRIPTION_IDS.creation,
      portalId: Number(portalId),
      appId: Number(appId),
      occurredAt: now(),
      subscriptionType: type,
      attemptNumber: 0,
      objectId: Number(objectId),
      changeSource: 'CRM_UI',
      sourceId: 'userId:9100001',
      ...(type.endsWith('creation') ? { changeFlag: 'CREATED' } : {}),
      ...extra,
    };
  }

  let rotate = 0;
  const CATEGORIES = ['PRODUCT_ISSUE', 'BILLING_ISSUE', 'GENERAL_INQUIRY', 'FEATURE_REQUEST'];

  /** Creates a ticket as an agent would in HubSpot, associated with a company and contact, and sends ticket.creation. */
  async function createTicket(o: {
    subject: string;
    content?: string;
    companyId?: string | null;
    contactId?: string | null;
    category?: string | null;
    priority?: string;
    language?: string | null;
    product?: string | null;
    /** Pipeline stage of the default pipeline (default "1" New; "4" is Closed, e.g. a ticket imported closed). */
    stage?: string;
    portalId?: string;
    notify?: boolean;
  }) {
    const p = portalOf(o.portalId ?? main.portalId);
    const companies = [...p.objects.companies.values()].filter((x) => !x.archived);
    let companyId = o.companyId;
    if (companyId === undefined) companyId = companies.length ? companies[rotate++ % companies.length]!.id : null;
    let contactId = o.contactId;
    if (contactId === undefined) contactId = companyId ? (p.associated('companies', companyId, 'contacts')[0] ?? null) : null;
    const n = rotate;
    const props: Record<string, string> = {
      subject: o.subject,
      content: o.content ?? `${o.subject}. Sent from the Tierline sandbox.`,
      hs_pipeline: '0',
      hs_pipeline_stage: o.stage ?? '1',
      hs_ticket_priority: o.priority ?? 'MEDIUM',
      hs_ticket_category: o.category === undefined ? CATEGORIES[n % CATEGORIES.length]! : (o.category ?? ''),
    };
    if (o.language) props.hs_language = o.language;
    const product = o.product === undefined ? ['API', 'Dashboard', 'SSO', 'Billing', 'Mobile app'][n % 5]! : o.product;
    if (product && p.props.tickets.has('tierline_product')) props.tierline_product = product;
    const t = p.create('tickets', props);
    if (companyId) p.associate('tickets', t.id, 'companies', companyId, true);
    if (contactId) p.associate('tickets', t.id, 'contacts', contactId);
    let delivery: Delivery | null = null;
    let ev: WebhookEvent | null = null;
    if (o.notify !== false && opts.webhookUrl) {
      ev = event(p.id, 'ticket.creation', t.id);
      delivery = await sendEvents([ev]);
    }
    return { id: t.id, companyId: companyId ?? null, contactId: contactId ?? null, event: ev, delivery };
  }

  /** Changes ticket properties and sends one ticket.propertyChange event per changed property. */
  async function updateTicket(id: string, properties: Record<string, string>, o: { portalId?: string; notify?: boolean } = {}) {
    const p = portalOf(o.portalId ?? main.portalId);
    if (!p.update('tickets', id, properties)) throw new Error(`no ticket ${id}`);
    const events = Object.entries(properties).map(([propertyName, propertyValue]) => event(p.id, 'ticket.propertyChange', id, { propertyName, propertyValue }));
    return o.notify === false || !opts.webhookUrl ? null : sendEvents(events);
  }

  /** The "Route to Telegram" workflow action: POSTs the v4 request to the action URL, signed (v2 by default). */
  async function runWorkflowAction(ticketId: string, o: { actionUrl?: string; signature?: 'v2' | 'v3' | 'tampered' | 'none'; portalId?: string; inputFields?: Record<string, string>; callbackId?: string; objectType?: string } = {}) {
    const p = portalOf(o.portalId ?? main.portalId);
    const actionUrl = o.actionUrl ?? (opts.webhookUrl ? new URL('/hubspot/actions/route', opts.webhookUrl).toString() : null);
    if (!actionUrl) throw new Error('the sandbox has no action URL');
    const callbackId = o.callbackId ?? `ap-${appId}-${Date.now()}-${randomBytes(3).toString('hex')}-0`;
    if (!p.callbacks.has(callbackId)) p.callbacks.set(callbackId, { callbackId, ticketId, state: 'BLOCKED', outputFields: null, createdAt: now(), completedAt: null });
    const body = JSON.stringify({
      callbackId,
      origin: { portalId: Number(p.id), actionDefinitionId: 91_000_001, actionDefinitionVersion: 1, actionExecutionIndexIdentifier: { enrollmentId: 1, actionExecutionIndex: 0 }, extensionDefinitionId: 91_000_001, extensionDefinitionVersionId: 1 },
      context: { source: 'WORKFLOWS', workflowId: 7_700_001 },
      object: { objectId: Number(ticketId), objectType: o.objectType ?? 'TICKET' },
      fields: o.inputFields ?? {},
      inputFields: o.inputFields ?? {},
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const sig = o.signature ?? 'v2';
    if (sig === 'v2' || sig === 'tampered') {
      headers['x-hubspot-signature'] = createHash('sha256').update(`${opts.clientSecret}POST${actionUrl}${body}${sig === 'tampered' ? 'x' : ''}`).digest('hex');
      headers['x-hubspot-signature-version'] = 'v2';
    } else if (sig === 'v3') {
      const ts = String(now());
      headers['x-hubspot-signature-v3'] = signV3('POST', actionUrl, body, ts);
      headers['x-hubspot-request-timestamp'] = ts;
    }
    const res = await fetch(actionUrl, { method: 'POST', headers, body });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, callbackId };
  }

  /** A card's hubspot.fetch(): HubSpot appends the user and portal to the query and signs the request with v3. */
  async function hubspotFetch(target: string, o: { method?: string; body?: unknown; portalId?: string; userId?: number; userEmail?: string; tamper?: boolean; timestamp?: number } = {}) {
    const u = new URL(target);
    u.searchParams.set('userId', String(o.userId ?? 9_100_001));
    u.searchParams.set('userEmail', o.userEmail ?? 'rep@tierline.example');
    u.searchParams.set('appId', appId);
    u.searchParams.set('portalId', o.portalId ?? main.portalId);
    const method = (o.method ?? 'GET').toUpperCase();
    const body = o.body === undefined ? '' : JSON.stringify(o.body);
    const ts = String(o.timestamp ?? now());
    const headers: Record<string, string> = { 'x-hubspot-signature-v3': signV3(method, u.toString(), body + (o.tamper ? ' ' : ''), ts), 'x-hubspot-request-timestamp': ts, 'x-hubspot-signature-version': 'v3' };
    if (body) headers['content-type'] = 'application/json';
    return fetch(u, { method, headers, ...(body ? { body } : {}) });
  }

  // ------------------------------------------------------------------ inspection

  function notesOf(p: Portal, type: ObjectType, id: string) {
    return p.associated(type, id, 'notes').map((nid) => {
      const n = p.get('notes', nid)!;
      return { id: nid, body: n.properties.hs_note_body ?? '', timestamp: n.properties.hs_timestamp ?? null, ticketIds: p.associated('notes', nid, 'tickets'), companyIds: p.associated('notes', nid, 'companies') };
    });
  }

  const plain = (r: HsObjectRecord) => ({ id: r.id, properties: { ...r.properties } });

  return {
    url,
    clientId,
    /** The app secret the sandbox signs with (tests and the load benchmark sign their own deliveries with it). */
    clientSecret: opts.clientSecret,
    appId,
    portalId: main.portalId,
    accessToken: main.accessToken,
    addPortal: (o: { seed?: boolean } = {}) => addPortal(o),
    companies: (portalId = main.portalId) => [...portalOf(portalId).objects.companies.values()].filter((r) => !r.archived).map(plain),
    company: (id: string, portalId = main.portalId) => {
      const p = portalOf(portalId);
      const r = p.get('companies', id);
      return r ? { ...plain(r), notes: notesOf(p, 'companies', id) } : null;
    },
    contacts: (portalId = main.portalId) => [...portalOf(portalId).objects.contacts.values()].filter((r) => !r.archived).map(plain),
    products: (portalId = main.portalId) => [...portalOf(portalId).objects.products.values()].filter((r) => !r.archived).map(plain),
    ticket: (id: string, portalId = main.portalId) => {
      const p = portalOf(portalId);
      const r = p.get('tickets', id);
      return r ? { ...plain(r), companyIds: p.associated('tickets', id, 'companies'), contactIds: p.associated('tickets', id, 'contacts'), notes: notesOf(p, 'tickets', id) } : null;
    },
    companyByName: (name: string, portalId = main.portalId) => [...portalOf(portalId).objects.companies.values()].find((r) => !r.archived && r.properties.name === name) ?? null,
    properties: (type: ObjectType, portalId = main.portalId) => [...portalOf(portalId).props[type].values()].map((d) => ({ ...d })),
    groups: (type: ObjectType, portalId = main.portalId) => [...portalOf(portalId).groups[type].values()].map((g) => ({ ...g })),
    deleteProperty: (type: ObjectType, name: string, portalId = main.portalId) => portalOf(portalId).props[type].delete(name),
    deleteTicket: (id: string, portalId = main.portalId) => portalOf(portalId).archive('tickets', id),
    deleteCompany: (id: string, portalId = main.portalId) => portalOf(portalId).archive('companies', id),
    callbacks: (portalId = main.portalId): Callback[] => [...portalOf(portalId).callbacks.values()].map((x) => ({ ...x })),
    callback: (id: string, portalId = main.portalId): Callback | null => {
      const x = portalOf(portalId).callbacks.get(id);
      return x ? { ...x } : null;
    },
    requests: (f: { method?: string; path?: string | RegExp } = {}) =>
      log.filter((r) => (!f.method || r.method === f.method.toUpperCase()) && (!f.path || (typeof f.path === 'string' ? r.path.includes(f.path) : f.path.test(r.path)))).map((r) => ({ ...r })),
    clearRequests: () => void log.splice(0),
    deliveries: () => [...deliveries],
    /** Seed company names by tier group (for tests and the console). */
    seedCompanies: SEED_COMPANIES,
    createTicket,
    updateTicket,
    sendEvents,
    event: (type: string, objectId: string, extra: Partial<WebhookEvent> = {}, portalId = main.portalId) => event(portalId, type, objectId, extra),
    /** Sends a delivery again as HubSpot's retry would: same events, attemptNumber + 1. */
    redeliver: (d: Delivery) => sendEvents(d.events.map((e) => ({ ...e, attemptNumber: e.attemptNumber + 1 }))),
    runWorkflowAction,
    hubspotFetch,
    inject429(count: number, o: { policyName?: string; retryAfterSec?: number; match?: FaultMatch } = {}) {
      for (let i = 0; i < count; i++) faults.push({ kind: '429', status: 429, ...(o.policyName ? { policyName: o.policyName } : {}), ...(o.retryAfterSec !== undefined ? { retryAfterSec: o.retryAfterSec } : {}), ...(o.match ? { match: o.match } : {}) });
    },
    inject5xx(count: number, o: { status?: number; match?: FaultMatch } = {}) {
      for (let i = 0; i < count; i++) faults.push({ kind: '5xx', status: o.status ?? 502, ...(o.match ? { match: o.match } : {}) });
    },
    /** The next matching calls never answer (until close), as a hung upstream would. */
    injectTimeout(count: number, o: { match?: FaultMatch } = {}) {
      for (let i = 0; i < count; i++) faults.push({ kind: 'hang', status: 504, ...(o.match ? { match: o.match } : {}) });
    },
    /** The next matching calls are carried out, but the caller gets a 504 instead of the answer. */
    injectLostResponse(count: number, o: { match?: FaultMatch } = {}) {
      for (let i = 0; i < count; i++) faults.push({ kind: 'lost', status: 504, ...(o.match ? { match: o.match } : {}) });
    },
    pendingFaults: () => faults.length,
    /** Every OAuth access token issued so far expires now (the next call gets 401 EXPIRED_AUTHENTICATION). */
    expireAccessTokens() {
      for (const t of oauthTokens.values()) t.expiresAt = now() - 1;
    },
    /** The app is uninstalled: refresh tokens stop working. */
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const release of hanging) release();
      hanging.clear();
      (server as import('node:http').Server).closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
