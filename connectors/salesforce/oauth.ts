// Connecting an org: the OAuth 2.0 web server flow (GET /oauth/salesforce/install -> Salesforce login -> GET
// /oauth/salesforce/callback), with a single-use CSRF `state` kept in the store for ten minutes, and only orgs listed
// in SALESFORCE_ORG_IDS accepted. Tokens are stored sealed with SECRETS_KEY (client.ts). The JWT bearer flow for
// server-to-server installs lives in client.ts (it needs no browser).
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Hono } from 'hono';
import { AppError } from '../../core/errors.ts';
import type { Clock, Logger, Store } from '../../core/ports.ts';
import { identityOf, NS, type Clients, type SalesforceEnv, type TokenResponse } from './client.ts';
import { describeError } from './errors.ts';
import { to18 } from './ids.ts';
import { escapeXml } from './outbound-message.ts';

export const STATE_TTL_MS = 10 * 60_000;
export const SCOPES = 'api refresh_token offline_access';
const SANDBOX_LOGIN = 'https://test.salesforce.com';

type StateRecord = { createdAt: number; loginUrl: string };

export type OAuthDeps = {
  env: SalesforceEnv;
  clients: Clients;
  store: Store;
  clock: Clock;
  logger: Logger;
  allowedOrgs: () => Set<string>;
  onInstalled: (orgId: string) => Promise<void> | void;
};

const page = (status: 'ok' | 'error', title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}h1{font-size:1.3rem;color:${status === 'ok' ? '#146c2e' : '#a4161a'}}code{background:#f3f4f8;padding:0 .25rem}</style></head><body><h1>${escapeXml(title)}</h1>${body}</body></html>`;

export function createOAuth(deps: OAuthDeps) {
  const { env, clients, store, clock, logger } = deps;

  /** States of installs that were started and abandoned must not pile up. */
  async function pruneStates(): Promise<void> {
    for (const { key, value } of await store.kvList<StateRecord>(NS.state)) if (clock.now() - value.createdAt > STATE_TTL_MS) await store.kvDelete(NS.state, key);
  }

  /** Starts an install: a fresh state, remembered for ten minutes, and the Salesforce authorize URL. */
  async function begin(login: 'production' | 'sandbox' = 'production'): Promise<string> {
    if (!env.clientId) throw new AppError('misconfigured', 'SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set: create a connected app in Salesforce (callback URL ' + clients.redirectUri + ') and set them.');
    const loginUrl = login === 'sandbox' ? SANDBOX_LOGIN : env.loginUrl.replace(/\/+$/, '');
    await pruneStates();
    const state = randomBytes(24).toString('base64url');
    await store.kvPut(NS.state, state, { createdAt: clock.now(), loginUrl } satisfies StateRecord);
    const conn = clients.connection({ oauth2: clients.oauth2Config(loginUrl), loginUrl });
    return conn.oauth2.getAuthorizationUrl({ state, scope: SCOPES, prompt: 'login consent' });
  }

  /** Finishes an install: state checked and consumed, code exchanged, org checked, tokens stored. */
  async function complete(q: { code?: string | undefined; state?: string | undefined }): Promise<{ orgId: string; instanceUrl: string; username: string | null }> {
    const state = q.state ?? '';
    const rec = state ? await store.kvGet<StateRecord>(NS.state, state) : null;
    // Deleting first makes the state single-use even when two callbacks race.
    const consumed = rec ? await store.kvDelete(NS.state, state) : false;
    await pruneStates();
    if (!rec || !consumed || clock.now() - rec.createdAt > STATE_TTL_MS) {
      throw new AppError('invalid_input', 'This install link has expired or was already used (CSRF state check). Start again at /oauth/salesforce/install.');
    }
    if (!q.code) throw new AppError('invalid_input', 'Salesforce did not send an authorization code; start again at /oauth/salesforce/install.');
    const conn = clients.connection({ oauth2: clients.oauth2Config(rec.loginUrl), loginUrl: rec.loginUrl });
    let tok: TokenResponse;
    try {
      tok = (await conn.oauth2.requestToken(q.code)) as unknown as TokenResponse;
    } catch (err) {
      const d = describeError(err);
      throw new AppError('unauthorized', `Salesforce refused the authorization code (${d.code}: ${d.message}). Check SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET and that the connected app's callback URL is ${clients.redirectUri}; then install again.`, { cause: err });
    }
    const who = identityOf(tok.id);
    if (!deps.allowedOrgs().has(who.orgId)) {
      await conn.oauth2.revokeToken(tok.refresh_token ?? tok.access_token).catch(() => undefined);
      throw new AppError('unauthorized', `Salesforce org ${who.orgId} is not in SALESFORCE_ORG_IDS, so Tierline would refuse its outbound messages. Add ${who.orgId} to SALESFORCE_ORG_IDS, restart, and install again.`);
    }
    let username: string | null = null;
    try {
      const ident = (await clients.connection({ instanceUrl: tok.instance_url, accessToken: tok.access_token }).request(tok.id)) as { username?: string };
      username = typeof ident.username === 'string' ? ident.username : null;
    } catch (err) {
      logger.warn('could not read the salesforce identity of the installing user', { org: who.orgId, error: describeError(err).code });
    }
    await clients.saveInstall({ orgId: who.orgId, instanceUrl: tok.instance_url, userId: who.userId, username, flow: 'web_server', loginUrl: rec.loginUrl, accessToken: tok.access_token, refreshToken: tok.refresh_token ?? null });
    await deps.onInstalled(who.orgId);
    return { orgId: who.orgId, instanceUrl: tok.instance_url, username };
  }

  const routes = new Hono();
  routes.get('/oauth/salesforce/install', async (c) => {
    try {
      return c.redirect(await begin(c.req.query('login') === 'sandbox' ? 'sandbox' : 'production'), 302);
    } catch (err) {
      const msg = err instanceof AppError ? err.message : 'Could not start the Salesforce install.';
      return c.html(page('error', 'Salesforce is not configured', `<p>${escapeXml(msg)}</p>`), 503);
    }
  });
  routes.get('/oauth/salesforce/callback', async (c) => {
    const error = c.req.query('error');
    if (error) {
      const state = c.req.query('state');
      if (state) await store.kvDelete(NS.state, state);
      const why = c.req.query('error_description') ?? error;
      return c.html(page('error', 'Salesforce did not connect', `<p>Salesforce said: <code>${escapeXml(why.slice(0, 300))}</code>.</p><p>Start again at <a href="/oauth/salesforce/install">/oauth/salesforce/install</a>.</p>`), 400);
    }
    try {
      const r = await complete({ code: c.req.query('code'), state: c.req.query('state') });
      return c.html(
        page(
          'ok',
          `Salesforce org ${r.orgId} is connected`,
          `<p>Tierline can now read Cases and write the routing outcome back${r.username ? ` as <code>${escapeXml(r.username)}</code>` : ''}.</p>
<ol><li>Deploy the Tierline fields, the Routing Event object, the permission sets and the new-Case flow: <code>npm run salesforce:deploy -- --org ${r.orgId}</code> (or <code>sf project deploy start</code> in <code>connectors/salesforce</code>).</li>
<li>Assign the <b>Tierline Integration</b> permission set to the connected user and <b>Tierline Routing History</b> to reps; add the <b>Routing History</b> related list to the Case page layout.</li></ol>`,
        ),
        200,
      );
    } catch (err) {
      const ae = err instanceof AppError ? err : null;
      logger.warn('salesforce install failed', { error: ae ? `${ae.code}: ${ae.message}` : describeError(err).code });
      return c.html(page('error', 'Salesforce did not connect', `<p>${escapeXml(ae?.message ?? 'The install failed; see the Tierline log.')}</p>`), ae?.code === 'invalid_input' ? 400 : ae?.code === 'unauthorized' ? 403 : 502);
    }
  });

  return { routes, begin, complete };
}

/** GET on loopback without redirects or proxies (the sandbox "login page" auto-approves and redirects). */
function loopbackGet(url: string): Promise<{ status: number; location: string | null }> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => ok({ status: res.statusCode ?? 0, location: typeof res.headers.location === 'string' ? res.headers.location : null }));
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * In sandbox mode nobody is there to click "Allow": the connector walks the same web server flow itself, through its
 * own routes and the sandbox's authorize endpoint, so sandbox and real installs share every line after the login.
 */
export async function installThroughOAuth(routes: Hono, sandboxOrg: string): Promise<void> {
  const start = await routes.request('/oauth/salesforce/install');
  const authorizeUrl = start.headers.get('location');
  if (start.status !== 302 || !authorizeUrl) throw new AppError('misconfigured', `the sandbox install did not start (${start.status})`);
  const login = await loopbackGet(authorizeUrl);
  if (login.status !== 302 || !login.location) throw new AppError('upstream', `the Salesforce sandbox did not authorize the install (${login.status})`);
  const cb = new URL(login.location);
  const done = await routes.request(`/oauth/salesforce/callback${cb.search}`);
  if (done.status !== 200) throw new AppError('upstream', `the sandbox install of org ${to18(sandboxOrg)} failed (${done.status}): ${(await done.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
}
