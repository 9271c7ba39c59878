// Installing the public app into a portal: GET /oauth/hubspot/install -> HubSpot's authorize page -> GET
// /oauth/hubspot/callback, with a single-use CSRF `state` kept in the store for ten minutes. The code is exchanged for
// tokens (sealed with SECRETS_KEY), the token tells which portal installed us, and the Tierline properties are
// provisioned right away. Any number of portals can install; each gets its own tokens and limiter.
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { AppError } from '../../core/errors.ts';
import type { Clock, Logger, Store } from '../../core/ports.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { describeError, NS, PUBLIC_API, type Clients, type HubspotEnv } from './client.ts';
import type { ProvisionReport } from './install.ts';
import { HUBSPOT_MANIFEST } from './properties.ts';

export const STATE_TTL_MS = 10 * 60_000;
export const SCOPES: string[] = HUBSPOT_MANIFEST.scopes;
export const CALLBACK_PATH = '/oauth/hubspot/callback';

type StateRecord = { createdAt: number };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const page = (ok: boolean, title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}h1{font-size:1.3rem;color:${ok ? '#146c2e' : '#a4161a'}}code{background:#f3f4f8;padding:0 .25rem}</style></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

export function authorizeBase(apiBaseUrl: string): string {
  const base = apiBaseUrl.replace(/\/+$/, '');
  // The authorize page lives on app.hubspot.com; a proxy or the sandbox serves it next to the API.
  return base === PUBLIC_API ? 'https://app.hubspot.com/oauth/authorize' : `${base}/oauth/authorize`;
}

export type OAuthDeps = {
  env: HubspotEnv;
  clients: Clients;
  store: Store;
  secrets: SecretBox;
  clock: Clock;
  logger: Logger;
  provision: (portalId: string) => Promise<ProvisionReport>;
};

export function createOAuth(deps: OAuthDeps) {
  const { env, clients, store, secrets, clock, logger } = deps;
  const redirectUri = `${env.publicUrl.replace(/\/+$/, '')}${CALLBACK_PATH}`;

  async function pruneStates(): Promise<void> {
    for (const { key, value } of await store.kvList<StateRecord>(NS.state)) if (clock.now() - value.createdAt > STATE_TTL_MS) await store.kvDelete(NS.state, key);
  }

  async function begin(): Promise<string> {
    if (!env.clientId || !env.clientSecret) throw new AppError('misconfigured', `HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET are not set: create the app from connectors/hubspot/app (redirect URL ${redirectUri}) and set them, or use a private app token (HUBSPOT_ACCESS_TOKEN).`);
    await pruneStates();
    const state = randomBytes(24).toString('base64url');
    await store.kvPut(NS.state, state, { createdAt: clock.now() } satisfies StateRecord);
    const u = new URL(authorizeBase(env.apiBaseUrl));
    u.searchParams.set('client_id', env.clientId);
    u.searchParams.set('redirect_uri', redirectUri);
    u.searchParams.set('scope', SCOPES.join(' '));
    u.searchParams.set('state', state);
    return u.toString();
  }

  async function complete(q: { code?: string | undefined; state?: string | undefined }): Promise<{ portalId: string; hubDomain: string | null; provisioned: ProvisionReport | null; provisionError: string | null }> {
    const state = q.state ?? '';
    const rec = state ? await store.kvGet<StateRecord>(NS.state, state) : null;
    // Deleting first makes the state single-use even when two callbacks race.
    const consumed = rec ? await store.kvDelete(NS.state, state) : false;
    if (!rec || !consumed || clock.now() - rec.createdAt > STATE_TTL_MS) throw new AppError('invalid_input', 'This install link has expired or was already used (CSRF state check). Start again at /oauth/hubspot/install.');
    if (!q.code) throw new AppError('invalid_input', 'HubSpot did not send an authorization code; start again at /oauth/hubspot/install.');
    if (!env.clientId || !env.clientSecret) throw new AppError('misconfigured', 'HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET are not set.');
    const bare = clients.sdk(undefined, null);
    let tok: { accessToken: string; refreshToken: string; expiresIn: number };
    try {
      tok = await clients.withTimeout(bare.oauth.tokensApi.create('authorization_code', q.code, redirectUri, env.clientId, env.clientSecret));
    } catch (err) {
      const d = describeError(err);
      throw new AppError('unauthorized', `HubSpot refused the authorization code (${d.status}: ${d.details.message.slice(0, 200)}). Check HUBSPOT_CLIENT_ID / HUBSPOT_CLIENT_SECRET and that the app's redirect URL is ${redirectUri}; then install again.`);
    }
    let info: { hubId: number; hubDomain?: string; scopes: string[]; appId: number };
    try {
      info = await clients.withTimeout(bare.oauth.accessTokensApi.get(tok.accessToken));
    } catch (err) {
      throw clients.toAppError(err, 'read which portal installed the app', null);
    }
    const portalId = String(info.hubId);
    let account: { companyCurrency?: unknown; timeZone?: unknown } = {};
    try {
      const res = await clients.withTimeout(clients.sdk(tok.accessToken, null).apiRequest({ method: 'GET', path: '/account-info/v3/details' }));
      if (res.ok) account = (await res.json()) as typeof account;
    } catch (err) {
      logger.warn('could not read the hubspot account details', { portal: portalId, error: describeError(err).details.message.slice(0, 200) });
    }
    const prev = await clients.loadInstall(portalId);
    await clients.saveInstall({
      portalId,
      flow: 'oauth',
      hubDomain: info.hubDomain ?? null,
      currency: typeof account.companyCurrency === 'string' ? account.companyCurrency : (prev?.currency ?? null),
      timeZone: typeof account.timeZone === 'string' ? account.timeZone : (prev?.timeZone ?? null),
      scopes: info.scopes ?? [],
      appId: info.appId ? String(info.appId) : null,
      accessToken: secrets.seal(tok.accessToken),
      refreshToken: secrets.seal(tok.refreshToken),
      expiresAt: clock.now() + Math.max(60, Number(tok.expiresIn) || 1800) * 1000,
      installedAt: clock.now(),
      refreshedAt: null,
      provisioned: prev?.provisioned ?? null,
    });
    clients.forgetTokens(portalId);
    logger.info('hubspot portal installed', { portal: portalId, scopes: (info.scopes ?? []).length });
    try {
      return { portalId, hubDomain: info.hubDomain ?? null, provisioned: await deps.provision(portalId), provisionError: null };
    } catch (err) {
      const msg = err instanceof AppError ? err.message : String(err);
      logger.error('hubspot properties could not be provisioned', { portal: portalId, error: msg });
      return { portalId, hubDomain: info.hubDomain ?? null, provisioned: null, provisionError: msg };
    }
  }

  const routes = new Hono();
  routes.get('/oauth/hubspot/install', async (c) => {
    try {
      return c.redirect(await begin(), 302);
    } catch (err) {
      const msg = err instanceof AppError ? err.message : 'Could not start the HubSpot install.';
      return c.html(page(false, 'HubSpot is not configured', `<p>${esc(msg)}</p>`), 503);
    }
  });
  routes.get(CALLBACK_PATH, async (c) => {
    const error = c.req.query('error');
    if (error) {
      const state = c.req.query('state');
      if (state) await store.kvDelete(NS.state, state);
      const why = c.req.query('error_description') ?? error;
      return c.html(page(false, 'HubSpot did not connect', `<p>HubSpot said: <code>${esc(why.slice(0, 300))}</code>.</p><p>Start again at <a href="/oauth/hubspot/install">/oauth/hubspot/install</a>.</p>`), 400);
    }
    try {
      const r = await complete({ code: c.req.query('code'), state: c.req.query('state') });
      const props = r.provisioned
        ? `<p>Tierline created ${r.provisioned.created.length} propert${r.provisioned.created.length === 1 ? 'y' : 'ies'} (group <code>${esc(HUBSPOT_MANIFEST.propertyGroup.label)}</code>) on tickets, companies and contacts${r.provisioned.conflicts.length ? `; left alone because of a different type: ${esc(r.provisioned.conflicts.join('; '))}` : ''}.</p>`
        : `<p><strong>The Tierline properties could not be created:</strong> ${esc(r.provisionError ?? '')} Open <a href="/oauth/hubspot/install">/oauth/hubspot/install</a> again once that is fixed.</p>`;
      return c.html(
        page(
          !!r.provisioned,
          `HubSpot portal ${r.portalId} is connected`,
          `<p>New tickets in ${esc(r.hubDomain ?? `portal ${r.portalId}`)} are now routed by Tierline, and the outcome is written back on the ticket and its company.</p>${props}<p>Add the <b>Tierline routing</b> card to the ticket and company record pages, and use the <b>Route to Telegram</b> workflow action where you want a workflow to wait for the routing.</p>`,
        ),
        200,
      );
    } catch (err) {
      const ae = err instanceof AppError ? err : null;
      logger.warn('hubspot install failed', { error: ae ? `${ae.code}: ${ae.message}` : describeError(err).details.message.slice(0, 200) });
      return c.html(page(false, 'HubSpot did not connect', `<p>${esc(ae?.message ?? 'The install failed; see the Tierline log.')}</p>`), ae?.code === 'invalid_input' ? 400 : ae?.code === 'unauthorized' ? 403 : 502);
    }
  });

  return { routes, begin, complete, redirectUri };
}
