// A stateful, Salesforce-shaped HTTP server on 127.0.0.1 for tests and `npm start` without credentials. It answers
// what Tierline (through the real jsforce) calls: the OAuth token endpoint (web server, refresh, JWT bearer), sObject
// REST and SOQL, sObject Collections, the Metadata API deploy, and a CometD endpoint with Case change events. It
// sends Outbound Messages in Salesforce's SOAP envelope and retries them until acknowledged. Errors use the documented
// bodies ([{message, errorCode, fields}], per-record statusCode) and every API response carries Sforce-Limit-Info.
import { createPublicKey, createVerify, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { to18 } from '../ids.ts';
import { buildOutboundMessage, escapeXml } from '../outbound-message.ts';
import { API_VERSION } from '../schema.ts';
import { createCometd } from './cometd.ts';
import { createMetadataApi } from './metadata-api.ts';
import { createOrg, SfError, type SaveResult, type SfRecord } from './org.ts';
import { languageFor, seedOrg, SEED_PRODUCTS } from './seed.ts';
import { runSoql } from './soql.ts';

import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_ORG_ID, SANDBOX_USERNAME } from './credentials.ts';

export { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_ORG_ID, SANDBOX_USERNAME };
export const CASE_CHANNEL = '/data/CaseChangeEvent';

export type SalesforceSandboxOptions = {
  orgId?: string;
  /** Where Outbound Messages go (Tierline's POST /webhooks/salesforce). */
  outboundUrl?: string;
  seed?: boolean;
  /** Delay added to every API call (the end-to-end benchmark uses 100 ms). */
  latencyMs?: number;
  /** false: the Tierline metadata (Case outcome fields, Routing_Event__c) is not deployed yet. */
  deployed?: boolean;
  /** Issue a new refresh token on every refresh (Salesforce's refresh token rotation). */
  rotateRefreshTokens?: boolean;
  /** How long a CometD connect is held open without events. */
  cometdHoldMs?: number;
  clock?: () => number;
};

export type CreateCaseInput = {
  subject: string;
  description?: string;
  accountId?: string | null;
  contactId?: string | null;
  type?: string | null;
  reason?: string | null;
  priority?: string;
  product?: string | null;
  language?: string | null;
  origin?: string;
  /** Default New; Closed makes IsClosed true (an old Case imported or edited after it was closed). */
  status?: string;
  /** Send the Outbound Message (default true when an outboundUrl is set). */
  notify?: boolean;
};

export type Delivery = { notificationId: string; caseId: string; attempts: number; status: 'pending' | 'acked' | 'failed'; lastError: string | null };
export type RequestLogEntry = { method: string; path: string; status: number; soql?: string; records?: number; auth: 'ok' | 'invalid' | 'none' };
type Injected = { code: string; remaining: number; method?: string; path?: string };

const ERRORS: Record<string, { status: number; message: string }> = {
  REQUEST_LIMIT_EXCEEDED: { status: 403, message: 'TotalRequests Limit exceeded.' },
  SERVER_UNAVAILABLE: { status: 503, message: 'Server temporarily unavailable: please try again later' },
  UNKNOWN_EXCEPTION: { status: 500, message: 'An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)' },
  INVALID_SESSION_ID: { status: 401, message: 'Session expired or invalid' },
  UNABLE_TO_LOCK_ROW: { status: 400, message: 'unable to obtain exclusive access to this record or 1 records' },
};

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));
const token = (n: number) => randomBytes(n).toString('base64url');

export async function startSalesforceSandbox(opts: SalesforceSandboxOptions = {}) {
  const now = opts.clock ?? (() => Date.now());
  const orgId = to18(opts.orgId ?? SANDBOX_ORG_ID);
  const org = createOrg({ orgId, now, deployed: opts.deployed ?? true });
  const user = org.insert('User', { Username: SANDBOX_USERNAME, Name: 'Sandbox Admin', Email: SANDBOX_USERNAME }, { system: true });
  const userId = user.id!;
  if (opts.seed) seedOrg(org);

  const clients = new Map<string, { secret: string; jwtKey: KeyObject | null }>([[SANDBOX_CLIENT_ID, { secret: SANDBOX_CLIENT_SECRET, jwtKey: null }]]);
  const accessTokens = new Map<string, { userId: string; issuedAt: number }>();
  const refreshTokens = new Map<string, { userId: string; clientId: string }>();
  const codes = new Map<string, { clientId: string; redirectUri: string; userId: string; expires: number }>();
  const limit = { used: 0, max: 100_000 };
  const injected: Injected[] = [];
  const requestLog: RequestLogEntry[] = [];
  const deliveries = new Map<string, Delivery & { body: string; createdAt: number }>();
  let retryTimer: NodeJS.Timeout | null = null;
  let closed = false;
  let url = '';

  const issueAccess = (uid: string) => {
    const t = `${orgId.slice(0, 15)}!${token(36)}`;
    accessTokens.set(t, { userId: uid, issuedAt: now() });
    return t;
  };
  const issueRefresh = (uid: string, clientId: string) => {
    const t = `5Aep${token(60)}`;
    refreshTokens.set(t, { userId: uid, clientId });
    return t;
  };
  const initialAccess = issueAccess(userId);
  const initialRefresh = issueRefresh(userId, SANDBOX_CLIENT_ID);

  const bearer = (h: string | undefined) => /^(?:Bearer|OAuth)\s+(.+)$/i.exec(h ?? '')?.[1]?.trim() ?? null;
  const validToken = (t: string | null) => !!t && accessTokens.has(t);

  const cometd = createCometd({ channels: [CASE_CHANNEL], authorize: validToken, ...(opts.cometdHoldMs ? { holdMs: opts.cometdHoldMs } : {}) });
  const metadata = createMetadataApi(org, { usernames: () => org.all('User').map((u) => String(u.Username)), now });

  // Change Data Capture: every committed Case change becomes an event on /data/CaseChangeEvent.
  let commitNumber = 0;
  org.onChange((e) => {
    if (e.object !== 'Case') return;
    const fields: Record<string, unknown> = {};
    const src = e.type === 'CREATE' ? Object.keys(e.record) : e.changed;
    for (const k of src) if (!['Id', 'IsDeleted', 'SystemModstamp'].includes(k) && e.record[k] !== null) fields[k] = e.record[k];
    cometd.publish(CASE_CHANNEL, {
      ChangeEventHeader: {
        entityName: 'Case',
        recordIds: [e.record.Id],
        changeType: e.type,
        changeOrigin: `com/salesforce/api/rest/${API_VERSION}`,
        transactionKey: org.transactionKey(),
        sequenceNumber: 1,
        commitTimestamp: now(),
        commitNumber: ++commitNumber,
        commitUser: userId,
        changedFields: e.type === 'UPDATE' ? e.changed : [],
        nulledFields: e.type === 'UPDATE' ? e.changed.filter((k) => e.record[k] === null) : [],
        diffFields: [],
      },
      ...fields,
    });
  });

  // ------------------------------------------------------------------ HTTP plumbing

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    if (res.headersSent || res.destroyed) return;
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const type = typeof body === 'string' ? (text.startsWith('<?xml') ? 'text/xml; charset=utf-8' : 'text/html; charset=utf-8') : 'application/json;charset=UTF-8';
    res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': type }), ...headers });
    res.end(text);
  }

  const limitHeader = () => ({ 'sforce-limit-info': `api-usage=${limit.used}/${limit.max}` });

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 20 * 1024 * 1024) throw new SfError(413, 'REQUEST_ENTITY_TOO_LARGE', 'request body too large');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  function parseJson(text: string): unknown {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      throw new SfError(400, 'JSON_PARSER_ERROR', 'Unexpected character: was expecting a JSON value');
    }
  }

  // ------------------------------------------------------------------ OAuth

  const idUrl = (uid: string) => `${url}/id/${orgId}/${uid}`;
  const tokenResponse = (access: string, refresh: string | null) => ({
    access_token: access,
    ...(refresh ? { refresh_token: refresh } : {}),
    signature: token(32),
    scope: 'refresh_token api',
    instance_url: url,
    id: idUrl(userId),
    token_type: 'Bearer',
    issued_at: String(now()),
  });
  const oauthError = (res: ServerResponse, status: number, error: string, description: string) => send(res, status, { error, error_description: description });

  function authorize(res: ServerResponse, q: URLSearchParams) {
    const clientId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri') ?? '';
    if (q.get('response_type') !== 'code') return send(res, 400, '<html><body>error=unsupported_response_type</body></html>');
    if (!clients.has(clientId)) return send(res, 400, '<html><body>error=invalid_client_id&amp;error_description=client%20identifier%20invalid</body></html>');
    if (!/^https?:\/\//.test(redirectUri)) return send(res, 400, '<html><body>error=redirect_uri_mismatch&amp;error_description=redirect_uri%20must%20match%20configuration</body></html>');
    // The sandbox admin is always logged in and always clicks "Allow".
    const code = `aPrx${token(40)}`;
    codes.set(code, { clientId, redirectUri, userId, expires: now() + 15 * 60_000 });
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    if (q.has('state')) to.searchParams.set('state', q.get('state')!);
    res.writeHead(302, { location: to.toString() });
    res.end();
  }

  function verifyJwt(assertion: string): { ok: true; clientId: string; username: string } | { ok: false; description: string } {
    const parts = assertion.split('.');
    if (parts.length !== 3) return { ok: false, description: 'invalid assertion' };
    let header: { alg?: string };
    let claims: { iss?: string; sub?: string; aud?: string; exp?: number };
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, description: 'invalid assertion' };
    }
    const client = claims.iss ? clients.get(claims.iss) : undefined;
    if (header.alg !== 'RS256') return { ok: false, description: 'invalid assertion: algorithm must be RS256' };
    if (!client?.jwtKey) return { ok: false, description: 'invalid client_id' };
    const ok = createVerify('RSA-SHA256').update(`${parts[0]}.${parts[1]}`).verify(client.jwtKey, Buffer.from(parts[2]!, 'base64url'));
    if (!ok) return { ok: false, description: 'invalid assertion' };
    if (claims.aud !== url && claims.aud !== 'https://login.salesforce.com' && claims.aud !== 'https://test.salesforce.com') return { ok: false, description: 'audience is invalid' };
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < now()) return { ok: false, description: 'expired authorization code' };
    if (!org.all('User').some((u) => u.Username === claims.sub)) return { ok: false, description: 'user hasn\'t approved this consumer' };
    return { ok: true, clientId: claims.iss!, username: claims.sub! };
  }

  function tokenEndpoint(res: ServerResponse, form: URLSearchParams) {
    const grant = form.get('grant_type');
    const clientId = form.get('client_id') ?? '';
    const client = clients.get(clientId);
    if (grant === 'authorization_code') {
      if (!client) return oauthError(res, 400, 'invalid_client_id', 'client identifier invalid');
      if (form.get('client_secret') !== client.secret) return oauthError(res, 400, 'invalid_client', 'invalid client credentials');
      const c = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (!c || c.expires < now() || c.clientId !== clientId) return oauthError(res, 400, 'invalid_grant', 'invalid authorization code');
      if (c.redirectUri !== form.get('redirect_uri')) return oauthError(res, 400, 'redirect_uri_mismatch', 'redirect_uri must match configuration');
      return send(res, 200, tokenResponse(issueAccess(c.userId), issueRefresh(c.userId, clientId)));
    }
    if (grant === 'refresh_token') {
      if (!client) return oauthError(res, 400, 'invalid_client_id', 'client identifier invalid');
      if (form.has('client_secret') && form.get('client_secret') !== client.secret) return oauthError(res, 400, 'invalid_client', 'invalid client credentials');
      const old = form.get('refresh_token') ?? '';
      const r = refreshTokens.get(old);
      if (!r || r.clientId !== clientId) return oauthError(res, 400, 'invalid_grant', 'expired access/refresh token');
      let next: string | null = null;
      if (opts.rotateRefreshTokens) {
        refreshTokens.delete(old);
        next = issueRefresh(r.userId, clientId);
      }
      return send(res, 200, tokenResponse(issueAccess(r.userId), next));
    }
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const v = verifyJwt(form.get('assertion') ?? '');
      if (!v.ok) return oauthError(res, 400, 'invalid_grant', v.description);
      const u = org.all('User').find((x) => x.Username === v.username)!;
      const { refresh_token: _none, ...body } = tokenResponse(issueAccess(u.Id), null);
      return send(res, 200, { ...body, id: idUrl(u.Id) });
    }
    return oauthError(res, 400, 'unsupported_grant_type', 'grant type not supported');
  }

  // ------------------------------------------------------------------ REST

  function takeInjected(method: string, path: string): Injected | null {
    const i = injected.findIndex((x) => x.remaining > 0 && (!x.method || x.method === method) && (!x.path || path.includes(x.path)));
    if (i < 0) return null;
    const x = injected[i]!;
    x.remaining -= 1;
    if (x.remaining === 0) injected.splice(i, 1);
    return x;
  }

  const saveError = (r: SaveResult) => {
    const e = r.errors[0]!;
    return new SfError(e.statusCode === 'ENTITY_IS_DELETED' || e.statusCode === 'INVALID_CROSS_REFERENCE_KEY' ? 404 : 400, e.statusCode === 'INVALID_CROSS_REFERENCE_KEY' ? 'NOT_FOUND' : e.statusCode, e.statusCode === 'INVALID_CROSS_REFERENCE_KEY' ? 'The requested resource does not exist' : e.message, e.fields);
  };

  function collection(records: unknown, max = 200): Record<string, unknown>[] {
    if (!Array.isArray(records)) throw new SfError(400, 'JSON_PARSER_ERROR', 'records must be an array');
    if (records.length > max) throw new SfError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${max} records into this call`);
    return records as Record<string, unknown>[];
  }

  function allOrNoneRun(allOrNone: boolean, fn: () => SaveResult[]): SaveResult[] {
    const results = org.transaction(fn, (rs) => !allOrNone || rs.every((r) => r.success));
    if (allOrNone && results.some((r) => !r.success)) {
      return results.map((r) => (r.success ? { id: r.id, success: false, errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] }] } : { ...r, id: r.id ?? undefined }));
    }
    return results;
  }

  function typeOf(rec: Record<string, unknown>, fallback?: string): string {
    const t = (rec.attributes as { type?: string } | undefined)?.type ?? fallback;
    if (!t) throw new SfError(400, 'INVALID_TYPE', 'Must specify a type in attributes');
    return t;
  }

  function rest(method: string, sub: string, q: URLSearchParams, body: unknown, version: string): { status: number; body?: unknown; entry?: Partial<RequestLogEntry> } {
    const seg = sub.split('/').filter(Boolean).map(decodeURIComponent);
    if (seg[0] === 'query' || seg[0] === 'queryAll') {
      if (method !== 'GET') throw new SfError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are GET`);
      const soql = q.get('q') ?? '';
      const r = runSoql(org, soql, version);
      return { status: 200, body: r, entry: { soql, records: r.totalSize } };
    }
    // SOSL, as much as the Telegram intake uses: FIND {term} IN EMAIL|PHONE|NAME|ALL FIELDS RETURNING Object(fields) [LIMIT n].
    // Phone search ignores formatting, as Salesforce's does ("+1 512 555 0100" is found by +15125550100).
    if (seg[0] === 'search' && method === 'GET') {
      const sosl = q.get('q') ?? '';
      const m = /^\s*FIND\s+\{((?:\\.|[^}])*)\}\s+IN\s+(ALL|EMAIL|PHONE|NAME)\s+FIELDS\s+RETURNING\s+(\w+)\s*\(([^)]*)\)(?:\s+LIMIT\s+(\d+))?\s*$/i.exec(sosl);
      if (!m) throw new SfError(400, 'MALFORMED_SEARCH', `No search term found. The search term must be enclosed in braces: ${sosl.slice(0, 80)}`);
      const term = m[1]!.replace(/\\(.)/g, '$1');
      if (term.replace(/[*?]/g, '').length < 2) throw new SfError(400, 'INVALID_SEARCH', 'search term must be longer than one character');
      const object = m[3]!;
      const d = org.describe(object);
      const fields = m[4]!.split(',').map((f) => f.trim()).filter(Boolean);
      for (const f of fields) if (!d.fields.has(f)) throw new SfError(400, 'INVALID_FIELD', `No such column '${f}' on entity '${object}'.`);
      const scope = m[2]!.toUpperCase();
      const digits = (v: unknown) => String(v ?? '').replace(/\D/g, '');
      const hit = (r: Record<string, unknown>) => {
        const phones = [...d.fields.values()].filter((f) => f.kind === 'phone').map((f) => digits(r[f.name]));
        const emails = [...d.fields.values()].filter((f) => f.kind === 'email').map((f) => String(r[f.name] ?? '').toLowerCase());
        const t = digits(term);
        const phoneHit = t.length >= 7 && phones.some((p) => p.length >= 7 && (p === t || p.endsWith(t) || t.endsWith(p)));
        const emailHit = emails.includes(term.toLowerCase());
        const nameHit = String(r.Name ?? '').toLowerCase().includes(term.toLowerCase());
        return scope === 'PHONE' ? phoneHit : scope === 'EMAIL' ? emailHit : scope === 'NAME' ? nameHit : phoneHit || emailHit || nameHit;
      };
      const limit = m[5] ? Number(m[5]) : 2000;
      const found = org.all(object).filter(hit).slice(0, limit);
      return { status: 200, body: { searchRecords: found.map((r) => ({ attributes: { type: object, url: `/services/data/v${version}/sobjects/${object}/${r.Id}` }, Id: r.Id, ...Object.fromEntries(fields.filter((f) => f !== 'Id').map((f) => [f, r[f] ?? null])) })) }, entry: { records: found.length } };
    }
    if (seg[0] === 'limits' && method === 'GET') return { status: 200, body: { DailyApiRequests: { Max: limit.max, Remaining: Math.max(0, limit.max - limit.used) } } };
    if (seg[0] === 'sobjects' && seg.length >= 2) {
      const type = seg[1]!;
      org.describe(type);
      if (seg.length === 2 && method === 'POST') {
        const r = org.transaction(() => org.insert(type, (body ?? {}) as Record<string, unknown>), (x) => x.success);
        if (!r.success) throw saveError(r);
        return { status: 201, body: r, entry: { records: 1 } };
      }
      if (seg.length === 3 && seg[2] === 'describe' && method === 'GET') {
        const d = org.describe(type);
        return { status: 200, body: { name: type, custom: d.custom, keyPrefix: d.prefix, fields: [...d.fields.values()].map((f) => ({ name: f.name, type: f.kind, length: f.length ?? 0, custom: f.custom, externalId: !!f.externalId, unique: !!f.unique, updateable: f.writable, createable: f.writable, referenceTo: f.referenceTo ? [f.referenceTo] : [], relationshipName: f.relationshipName ?? null, picklistValues: (f.values ?? []).map((v) => ({ value: v, label: v, active: true })) })) } };
      }
      if (seg.length === 3) {
        const id = seg[2]!;
        if (method === 'GET') {
          const found = org.get(id);
          if (!found || found.object !== type) throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
          if (found.record.IsDeleted) throw new SfError(404, 'ENTITY_IS_DELETED', 'entity is deleted');
          const want = q.get('fields')?.split(',').map((s) => s.trim());
          const rec: Record<string, unknown> = { attributes: { type, url: `/services/data/v${version}/sobjects/${type}/${found.record.Id}` } };
          for (const [k, v] of Object.entries(found.record)) if (!want || want.includes(k) || k === 'Id') rec[k] = v;
          if (want) for (const f of want) if (!org.describe(type).fields.has(f)) throw new SfError(400, 'INVALID_FIELD', `No such column '${f}' on sobject of type ${type}`);
          return { status: 200, body: rec };
        }
        if (method === 'PATCH') {
          const found = org.get(id);
          if (!found || found.object !== type) throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
          const r = org.transaction(() => org.update(type, id, (body ?? {}) as Record<string, unknown>), (x) => x.success);
          if (!r.success) throw saveError(r);
          return { status: 204, entry: { records: 1 } };
        }
        if (method === 'DELETE') {
          const r = org.transaction(() => org.remove(type, id), (x) => x.success);
          if (!r.success) throw saveError(r);
          return { status: 204, entry: { records: 1 } };
        }
      }
      if (seg.length === 4 && method === 'PATCH') {
        const [, , extField, value] = seg as [string, string, string, string];
        const r = org.transaction(() => org.upsert(type, extField, { ...((body ?? {}) as Record<string, unknown>), [extField]: value }), (x) => x.success);
        if (!r.success) throw saveError(r);
        return { status: r.created ? 201 : 200, body: r, entry: { records: 1 } };
      }
    }
    if (seg[0] === 'composite' && seg[1] === 'sobjects') {
      const b = (body ?? {}) as { allOrNone?: boolean; records?: unknown };
      if (seg.length === 2 && method === 'POST') {
        const recs = collection(b.records);
        return { status: 200, body: allOrNoneRun(!!b.allOrNone, () => recs.map((r) => org.insert(typeOf(r), r))), entry: { records: recs.length } };
      }
      if (seg.length === 2 && method === 'PATCH') {
        const recs = collection(b.records);
        for (const r of recs) org.describe(typeOf(r));
        return {
          status: 200,
          body: allOrNoneRun(!!b.allOrNone, () => recs.map((r) => {
            const id = String(r.id ?? r.Id ?? '');
            const { id: _id, ...fields } = r;
            return org.update(typeOf(r), id, fields);
          })),
          entry: { records: recs.length },
        };
      }
      if (seg.length === 4 && method === 'PATCH') {
        const [, , type, extField] = seg as [string, string, string, string];
        org.describe(type);
        const recs = collection(b.records);
        return { status: 200, body: allOrNoneRun(!!b.allOrNone, () => recs.map((r) => org.upsert(typeOf(r, type), extField, r))), entry: { records: recs.length } };
      }
      if (seg.length === 2 && method === 'DELETE') {
        const ids = (q.get('ids') ?? '').split(',').filter(Boolean);
        if (ids.length > 200) throw new SfError(400, 'EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 200 records into this call');
        return { status: 200, body: allOrNoneRun(q.get('allOrNone') === 'true', () => ids.map((id) => org.remove(org.get(id)?.object ?? 'Case', id))), entry: { records: ids.length } };
      }
    }
    throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  // ------------------------------------------------------------------ Lightning record page (for people in sandbox mode)

  function casePage(id: string): string {
    const found = org.get(id);
    if (!found || found.object !== 'Case') return '<!doctype html><title>Not found</title><p>No such Case.</p>';
    const c = found.record;
    const acc = c.AccountId ? org.get(String(c.AccountId))?.record : null;
    const events = routingEvents(c.Id);
    const row = (k: string, v: unknown) => `<tr><th>${escapeXml(k)}</th><td>${escapeXml(v === null || v === undefined ? '' : String(v))}</td></tr>`;
    const fields = Object.entries(c).filter(([k]) => k.startsWith('Tierline_'));
    return `<!doctype html><html><head><meta charset="utf-8"><title>Case ${escapeXml(String(c.CaseNumber))}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccd;padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f3f4f8}pre{white-space:pre-wrap;margin:0}</style></head>
<body><p><small>Tierline Salesforce sandbox (simulated org ${orgId})</small></p><h1>Case ${escapeXml(String(c.CaseNumber))}: ${escapeXml(String(c.Subject ?? ''))}</h1>
<table>${row('Account', acc?.Name)}${row('Status', c.Status)}${row('Type', c.Type)}${row('Product', c.Product__c)}${row('Language', c.Language__c)}${row('Deleted', c.IsDeleted ? 'yes (in the recycle bin)' : 'no')}</table>
<h2>Tierline</h2><table>${fields.map(([k, v]) => row(k, v)).join('')}</table>
<h2>Routing History (${events.length})</h2><table><tr><th>Name</th><th>Kind</th><th>At</th><th>Queue</th><th>Agent</th><th>Tier</th><th>Rule</th><th>Reason</th></tr>
${events.map((e) => `<tr><td>${escapeXml(String(e.Name))}</td><td>${escapeXml(String(e.Kind__c ?? ''))}</td><td>${escapeXml(String(e.Routed_At__c ?? ''))}</td><td>${escapeXml(String(e.Queue__c ?? ''))}</td><td>${escapeXml(String(e.Agent__c ?? ''))}</td><td>${escapeXml(String(e.Tier__c ?? ''))}</td><td>${escapeXml(String(e.Rule__c ?? ''))}</td><td><pre>${escapeXml(String(e.Reason__c ?? ''))}</pre></td></tr>`).join('\n')}</table></body></html>`;
  }

  // ------------------------------------------------------------------ dispatch

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (err instanceof SfError) send(res, err.status, err.body(), limitHeader());
      else send(res, 500, [{ message: `sandbox error: ${(err as Error).message}`, errorCode: 'UNKNOWN_EXCEPTION' }]);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://sandbox');
    const method = req.method ?? 'GET';
    const path = u.pathname;

    if (path.startsWith('/cometd/') && method === 'POST') {
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return send(res, 400, [{ successful: false, error: '400::Bad JSON' }]);
      }
      return cometd.handle(body, req.headers.authorization, (status, b) => send(res, status, b));
    }
    const page = /^\/lightning\/r\/Case\/([a-zA-Z0-9]{15,18})\/view$/.exec(path);
    if (page && method === 'GET') return send(res, 200, casePage(page[1]!));

    if (opts.latencyMs) await sleep(opts.latencyMs);

    if (path === '/services/oauth2/authorize' && method === 'GET') return authorize(res, u.searchParams);
    if (path === '/services/oauth2/token' && method === 'POST') return tokenEndpoint(res, new URLSearchParams(await readBody(req)));
    if (path === '/services/oauth2/revoke' && method === 'POST') {
      const t = new URLSearchParams(await readBody(req)).get('token') ?? '';
      accessTokens.delete(t);
      refreshTokens.delete(t);
      return send(res, 200, undefined);
    }

    const tok = bearer(req.headers.authorization);
    if (path.startsWith('/services/Soap/m/') && method === 'POST') {
      const [status, xml] = metadata.handle(await readBody(req), validToken);
      return send(res, status, xml);
    }
    const idMatch = /^\/id\/([a-zA-Z0-9]{15,18})\/([a-zA-Z0-9]{15,18})$/.exec(path);
    if ((idMatch || path === '/services/oauth2/userinfo') && method === 'GET') {
      if (!validToken(tok)) return send(res, 403, 'Bad_OAuth_Token');
      const uid = accessTokens.get(tok!)!.userId;
      const usr = org.get(uid)!.record;
      return send(res, 200, {
        id: idUrl(uid),
        user_id: uid,
        organization_id: orgId,
        username: usr.Username,
        display_name: usr.Name,
        email: usr.Email,
        active: true,
        urls: { rest: `${url}/services/data/v{version}/`, sobjects: `${url}/services/data/v{version}/sobjects/`, query: `${url}/services/data/v{version}/query/`, metadata: `${url}/services/Soap/m/{version}/${orgId.slice(0, 15)}` },
      });
    }

    const m = /^\/services\/data(?:\/v(\d+\.\d)(\/.*)?)?\/?$/.exec(path);
    if (!m) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (!m[1]) return send(res, 200, [{ label: "Winter '25", url: `/services/data/v${API_VERSION}`, version: API_VERSION }]);
    const entry: RequestLogEntry = { method, path: path.replace(/^\/services\/data\/v[\d.]+/, ''), status: 0, auth: tok ? 'ok' : 'none' };
    requestLog.push(entry);
    // Bounded: `npm start` runs the sandbox for days; tests look at the recent requests only.
    if (requestLog.length > 5_000) requestLog.splice(0, requestLog.length - 5_000);
    if (!validToken(tok)) {
      entry.auth = tok ? 'invalid' : 'none';
      entry.status = 401;
      return send(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    const inj = takeInjected(method, entry.path);
    if (inj) {
      const e = ERRORS[inj.code] ?? { status: 400, message: inj.code };
      if (inj.code === 'INVALID_SESSION_ID') accessTokens.delete(tok!);
      entry.status = e.status;
      return send(res, e.status, [{ message: e.message, errorCode: inj.code }], limitHeader());
    }
    if (limit.used >= limit.max) {
      entry.status = 403;
      return send(res, 403, [{ message: ERRORS.REQUEST_LIMIT_EXCEEDED!.message, errorCode: 'REQUEST_LIMIT_EXCEEDED' }], limitHeader());
    }
    limit.used += 1;
    const raw = method === 'GET' || method === 'DELETE' ? '' : await readBody(req);
    try {
      const r = rest(method, m[2] ?? '/', u.searchParams, raw ? parseJson(raw) : null, m[1]);
      Object.assign(entry, r.entry ?? {});
      entry.status = r.status;
      return send(res, r.status, r.body, limitHeader());
    } catch (err) {
      if (err instanceof SfError) entry.status = err.status;
      throw err;
    }
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // ------------------------------------------------------------------ Outbound Messages

  const actionId = to18('04kTL0000000001');
  let notificationSeq = 0;

  async function deliver(d: Delivery & { body: string; createdAt: number }): Promise<Delivery> {
    if (!opts.outboundUrl) return { ...d };
    d.attempts += 1;
    try {
      const r = await fetch(opts.outboundUrl, { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' }, body: d.body, signal: AbortSignal.timeout(60_000) });
      const text = await r.text();
      if (r.status === 200 && /<(?:\w+:)?Ack>\s*true\s*<\/(?:\w+:)?Ack>/.test(text)) {
        d.status = 'acked';
        d.lastError = null;
      } else {
        d.status = 'pending';
        d.lastError = `HTTP ${r.status}: ${text.slice(0, 300)}`;
      }
    } catch (err) {
      d.status = 'pending';
      d.lastError = (err as Error).message;
    }
    if (d.status === 'pending') scheduleRetry();
    return { notificationId: d.notificationId, caseId: d.caseId, attempts: d.attempts, status: d.status, lastError: d.lastError };
  }

  // Salesforce keeps unacknowledged messages and retries them with growing intervals for 24 hours.
  function scheduleRetry() {
    if (retryTimer || closed) return;
    const pending = [...deliveries.values()].filter((d) => d.status === 'pending');
    if (!pending.length) return;
    const wait = Math.min(60_000, 1000 * 2 ** Math.min(6, Math.min(...pending.map((d) => d.attempts))));
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void flushOutbound();
    }, wait);
    retryTimer.unref();
  }

  async function flushOutbound(): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const d of [...deliveries.values()].filter((x) => x.status === 'pending')) {
      if (now() - d.createdAt > 24 * 3600_000) {
        d.status = 'failed';
        continue;
      }
      out.push(await deliver(d));
    }
    return out;
  }

  function notificationFor(c: SfRecord): Delivery & { body: string; createdAt: number } {
    const notificationId = to18(`04lTL${String(++notificationSeq).padStart(10, '0')}`);
    const fields: Record<string, string | null> = {};
    for (const f of ['Id', 'AccountId', 'CaseNumber', 'CreatedDate', 'LastModifiedDate']) fields[f] = c[f] === null || c[f] === undefined ? null : String(c[f]).replace('+0000', 'Z');
    const body = buildOutboundMessage({ orgId, actionId, instanceUrl: url, notifications: [{ id: notificationId, type: 'Case', fields }] });
    const d: Delivery & { body: string; createdAt: number } = { notificationId, caseId: c.Id, attempts: 0, status: 'pending', lastError: null, body, createdAt: now() };
    deliveries.set(notificationId, d);
    return d;
  }

  let caseSeq = 0;
  const CATEGORIES = ['Technical', 'Billing', 'Question', 'Problem', 'Technical', 'Feature Request'];

  function routingEvents(caseId: string): SfRecord[] {
    if (!org.hasObject('Routing_Event__c')) return [];
    return org
      .all('Routing_Event__c')
      .filter((r) => typeof r.Case__c === 'string' && r.Case__c.slice(0, 15) === caseId.slice(0, 15))
      .sort((a, b) => String(a.Routed_At__c).localeCompare(String(b.Routed_At__c)) || String(a.Name).localeCompare(String(b.Name)))
      .map((r) => structuredClone(r));
  }

  return {
    url,
    instanceUrl: url,
    orgId,
    userId,
    username: SANDBOX_USERNAME,
    clientId: SANDBOX_CLIENT_ID,
    clientSecret: SANDBOX_CLIENT_SECRET,
    /** A valid session for the sandbox admin (what an install would have produced). */
    accessToken: initialAccess,
    refreshToken: initialRefresh,

    /** Creates a Case as a user would in Salesforce; the Flow then sends the Outbound Message (awaited). */
    async createCase(input: CreateCaseInput) {
      const accounts = org.all('Account');
      const n = caseSeq++;
      const account = input.accountId === undefined ? (accounts.length ? accounts[n % accounts.length]! : null) : input.accountId ? (org.get(input.accountId)?.record ?? null) : null;
      const contact = input.contactId === undefined ? (account ? (org.all('Contact').find((c) => c.AccountId === account.Id) ?? null) : null) : input.contactId ? (org.get(input.contactId)?.record ?? null) : null;
      const r = org.insert('Case', {
        Subject: input.subject,
        Description: input.description ?? null,
        AccountId: account?.Id ?? null,
        ContactId: contact?.Id ?? null,
        Type: input.type === undefined ? CATEGORIES[n % CATEGORIES.length] : input.type,
        Reason: input.reason ?? null,
        Priority: input.priority ?? 'Medium',
        Origin: input.origin ?? 'Web',
        Status: input.status ?? 'New',
        Product__c: input.product === undefined ? SEED_PRODUCTS[n % SEED_PRODUCTS.length] : input.product,
        Language__c: input.language === undefined ? languageFor((account?.BillingCountry as string | null) ?? null) : input.language,
      });
      if (!r.success || !r.id) throw new Error(`createCase failed: ${r.errors.map((e) => `${e.statusCode}: ${e.message}`).join('; ')}`);
      const rec = org.get(r.id)!.record;
      if (input.notify === false || !opts.outboundUrl) return { id: r.id, caseNumber: String(rec.CaseNumber), notificationId: null, delivery: null };
      const d = notificationFor(rec);
      const delivery = await deliver(d);
      return { id: r.id, caseNumber: String(rec.CaseNumber), notificationId: d.notificationId, delivery };
    },
    /** Changes a Case as a user would (publishes a change event). */
    updateCase(id: string, fields: Record<string, unknown>) {
      const r = org.update('Case', id, fields);
      if (!r.success) throw new Error(`updateCase failed: ${r.errors.map((e) => `${e.statusCode}: ${e.message}`).join('; ')}`);
    },
    /** Deletes a Case (to the recycle bin: later writes get ENTITY_IS_DELETED). */
    deleteCase(id: string) {
      const r = org.remove('Case', id);
      if (!r.success) throw new Error(`deleteCase failed: ${r.errors.map((e) => e.message).join('; ')}`);
    },
    case: (id: string) => {
      const f = org.get(id);
      return f && f.object === 'Case' ? structuredClone(f.record) : null;
    },
    cases: () => org.all('Case').map((r) => structuredClone(r)),
    routingEvents,
    accounts: () => org.all('Account').map((r) => structuredClone(r)),
    contacts: (accountId?: string) => org.all('Contact').filter((c) => !accountId || c.AccountId === to18(accountId)).map((r) => structuredClone(r)),
    products: () => org.all('Product2').map((r) => structuredClone(r)),
    updateAccount(id: string, fields: Record<string, unknown>) {
      const r = org.update('Account', id, fields);
      if (!r.success) throw new Error(`updateAccount failed: ${r.errors.map((e) => e.message).join('; ')}`);
    },

    /** Sets the org's daily API allocation and how much of it is used (reported in Sforce-Limit-Info). */
    setLimit(used: number, max: number) {
      limit.used = used;
      limit.max = max;
    },
    limit: () => ({ ...limit }),
    /** The next n API calls (optionally only with this method / path part) fail with this documented error code. */
    injectError(code: string, n = 1, filter: { method?: string; path?: string } = {}) {
      injected.push({ code, remaining: n, ...filter });
    },
    /** Every access token stops working (a session timeout or an admin's "revoke sessions"); refresh tokens still work. */
    expireSession() {
      accessTokens.clear();
    },
    /** Revokes every refresh token too (the connected app was uninstalled or its policy changed). */
    revokeAll() {
      accessTokens.clear();
      refreshTokens.clear();
    },
    /** Registers the certificate of a connected app for the JWT bearer flow. */
    registerJwtClient(clientId: string, publicKeyPem: string) {
      const existing = clients.get(clientId);
      clients.set(clientId, { secret: existing?.secret ?? token(16), jwtKey: createPublicKey(publicKeyPem) });
    },
    /** Marks the Tierline metadata deployed without going through the Metadata API (only these "Object.Field"s if given). */
    deployMetadata: (only?: string[]) => org.deploy(only),
    metadataDeployed: () => org.hasObject('Routing_Event__c'),
    deploys: metadata.deploys,

    requests: (filter?: { method?: string; path?: string }) => requestLog.filter((r) => (!filter?.method || r.method === filter.method) && (!filter?.path || r.path.includes(filter.path))).map((r) => ({ ...r })),
    clearRequests: () => void requestLog.splice(0),
    changeEvents: () => cometd.events(CASE_CHANNEL),
    streamingClients: () => cometd.clientCount(),
    deliveries: (): Delivery[] => [...deliveries.values()].map(({ body: _b, createdAt: _c, ...d }) => ({ ...d })),
    /** Retries every unacknowledged Outbound Message now. */
    flushOutbound,
    /** Sends a notification again with the same Notification Id, as Salesforce does when it missed the Ack. */
    async redeliver(notificationId: string) {
      const d = deliveries.get(notificationId);
      if (!d) throw new Error(`no notification ${notificationId}`);
      return deliver(d);
    },

    async close() {
      if (closed) return;
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      cometd.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

export type SalesforceSandbox = Awaited<ReturnType<typeof startSalesforceSandbox>>;
