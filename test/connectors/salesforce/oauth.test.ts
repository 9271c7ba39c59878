// Connecting orgs for real (mode 'real' against the sandbox's OAuth endpoints): the web server flow with its
// single-use CSRF state, refresh on an expired session with the new token persisted (sealed), refresh token
// rotation, a revoked install surfacing as auth_expired, and the JWT bearer flow with its own re-login.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { IntakeEvent, Store } from '../../../core/ports.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { createSalesforceConnector, type SalesforceConnector } from '../../../connectors/salesforce/index.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_USERNAME, startSalesforceSandbox, type SalesforceSandbox } from '../../../connectors/salesforce/sandbox/index.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';
import { silentLogger } from '../../../server/logger.ts';
import { ManualClock, SECRETS_KEY } from './harness.ts';

const PUBLIC_URL = 'https://tierline.example.com';
const box = createSecretBox(SECRETS_KEY);
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(o: { sandbox?: Parameters<typeof startSalesforceSandbox>[0]; env?: Record<string, unknown>; orgIds?: (sb: SalesforceSandbox) => string[] } = {}) {
  const clock = new ManualClock();
  const sb = await startSalesforceSandbox({ seed: true, clock: clock.now, ...o.sandbox });
  cleanup.push(() => sb.close());
  const store: Store = createMemoryStore({ clock });
  const accepted: IntakeEvent[] = [];
  const connector: SalesforceConnector = await createSalesforceConnector({
    env: { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, loginUrl: sb.url, orgIds: o.orgIds ? o.orgIds(sb) : [sb.orgId], publicUrl: PUBLIC_URL, ...o.env },
    mode: 'real',
    store,
    secrets: box,
    logger: silentLogger,
    clock,
    intake: { accept: async (e) => (accepted.push(...e), { accepted: e.length, duplicates: 0 }) },
    tuning: { sleep: async () => {}, retryBaseMs: 1 },
  });
  cleanup.push(() => connector.stop());
  return { sb, store, clock, connector, accepted };
}

/** What an admin's browser does: our install link -> Salesforce login (auto-approved) -> our callback. */
async function browserInstall(connector: SalesforceConnector, tamper?: (callback: URL) => void) {
  const start = await connector.routes.request('/oauth/salesforce/install');
  expect(start.status).toBe(302);
  const authorize = new URL(start.headers.get('location')!);
  const login = await fetch(authorize, { redirect: 'manual' });
  const callback = new URL(login.headers.get('location')!);
  tamper?.(callback);
  const done = await connector.routes.request(`/oauth/salesforce/callback${callback.search}`);
  return { authorize, callback, done, html: await done.text() };
}

describe('Salesforce OAuth web server flow', () => {
  it('installs an org: state, code exchange, tokens stored sealed', async () => {
    const { sb, store, connector } = await setup();
    const { authorize, callback, done, html } = await browserInstall(connector);
    expect(authorize.origin + authorize.pathname).toBe(`${sb.url}/services/oauth2/authorize`);
    expect(authorize.searchParams.get('client_id')).toBe(SANDBOX_CLIENT_ID);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/oauth/salesforce/callback`);
    expect(authorize.searchParams.get('scope')).toBe('api refresh_token offline_access');
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(callback.searchParams.get('state')).toBe(authorize.searchParams.get('state'));
    expect(done.status).toBe(200);
    expect(html).toContain(`Salesforce org ${sb.orgId} is connected`);
    expect(html).toContain('npm run salesforce:deploy');

    const inst = await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId);
    expect(inst).toMatchObject({ orgId: sb.orgId, instanceUrl: sb.url, flow: 'web_server', username: SANDBOX_USERNAME });
    expect(inst!.accessToken).toMatch(/^v1:/);
    expect(box.open(inst!.refreshToken!)).toMatch(/^5Aep/);
    expect(await store.kvList('salesforce:oauth-state')).toEqual([]);

    // The connection works: a Case reads through jsforce with the installed tokens.
    const c = await sb.createCase({ subject: 'After install', notify: false });
    const ctx = await connector.crm.fetchContext({ crm: 'salesforce', account: sb.orgId, ticketId: c.id });
    expect(ctx.subject).toBe('After install');
    expect((await connector.health()).detail).toContain('1 org connected');
  });

  it('accepts a state once only, and refuses unknown or expired ones', async () => {
    const { connector, clock, store } = await setup();
    let saved: URL | null = null;
    const first = await browserInstall(connector, (cb) => (saved = new URL(cb)));
    expect(first.done.status).toBe(200);
    const replay = await connector.routes.request(`/oauth/salesforce/callback${saved!.search}`);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('expired or was already used');

    const forged = await browserInstall(connector, (cb) => cb.searchParams.set('state', 'forged-state-value'));
    expect(forged.done.status).toBe(400);

    const start = await connector.routes.request('/oauth/salesforce/install');
    const login = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    clock.advance(11 * 60_000);
    const late = await connector.routes.request(`/oauth/salesforce/callback${new URL(login.headers.get('location')!).search}`);
    expect(late.status).toBe(400);
    expect(await store.kvList('salesforce:oauth-state')).toEqual([]);
  });

  it('shows Salesforce\'s refusal and keeps nothing', async () => {
    const { connector, store } = await setup();
    const r = await connector.routes.request('/oauth/salesforce/callback?error=access_denied&error_description=end-user+denied+authorization&state=x');
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('end-user denied authorization');
    expect(await store.kvList('salesforce:installs')).toEqual([]);
  });

  it('refuses an org that is not in SALESFORCE_ORG_IDS', async () => {
    const { connector, store } = await setup({ orgIds: () => [to18('00D5g000004Sbx1')] });
    const { done, html } = await browserInstall(connector);
    expect(done.status).toBe(403);
    expect(html).toContain('is not in SALESFORCE_ORG_IDS');
    expect(await store.kvList('salesforce:installs')).toEqual([]);
  });

  it('explains a missing connected app instead of redirecting nowhere', async () => {
    const { connector } = await setup({ env: { clientId: undefined, clientSecret: undefined } });
    const r = await connector.routes.request('/oauth/salesforce/install');
    expect(r.status).toBe(503);
    expect(await r.text()).toContain('SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set');
  });
});

describe('Salesforce session refresh', () => {
  it('refreshes an expired session and persists the new access token, sealed', async () => {
    const { sb, store, connector } = await setup();
    await browserInstall(connector);
    const c = await sb.createCase({ subject: 'Refresh me', notify: false });
    const ref = { crm: 'salesforce' as const, account: sb.orgId, ticketId: c.id };
    await connector.crm.fetchContext(ref);
    const before = (await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!;

    sb.expireSession();
    sb.clearRequests();
    const ctx = await connector.crm.fetchContext(ref);
    expect(ctx.subject).toBe('Refresh me');
    expect(sb.requests().map((r) => r.status)).toEqual([401, 200]); // one refused call, then the retried one

    const after = (await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!;
    expect(box.open(after.accessToken!)).not.toBe(box.open(before.accessToken!));
    expect(after.refreshedAt).not.toBeNull();
    expect(box.open(after.refreshToken!)).toBe(box.open(before.refreshToken!));

    // A restarted service (new connector, same store) uses the refreshed token without refreshing again.
    const again = await createSalesforceConnector({ env: { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, loginUrl: sb.url, orgIds: [sb.orgId], publicUrl: PUBLIC_URL }, mode: 'real', store, secrets: box, logger: silentLogger, clock: new ManualClock(), intake: { accept: async () => ({ accepted: 0, duplicates: 0 }) } });
    sb.clearRequests();
    await again.crm.fetchContext(ref);
    expect(sb.requests().map((r) => r.status)).toEqual([200]);
  });

  it('persists a rotated refresh token', async () => {
    const { sb, store, connector } = await setup({ sandbox: { rotateRefreshTokens: true } });
    await browserInstall(connector);
    const first = box.open((await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!.refreshToken!);
    const c = await sb.createCase({ subject: 'Rotate', notify: false });
    const ref = { crm: 'salesforce' as const, account: sb.orgId, ticketId: c.id };
    sb.expireSession();
    await connector.crm.fetchContext(ref);
    const second = box.open((await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!.refreshToken!);
    expect(second).not.toBe(first);
    // The old refresh token is dead at Salesforce; only the persisted new one can refresh again.
    sb.expireSession();
    await expect(connector.crm.fetchContext(ref)).resolves.toMatchObject({ subject: 'Rotate' });
  });

  it('reports a revoked install as auth_expired and tells the admin to reconnect', async () => {
    const { sb, connector } = await setup();
    await browserInstall(connector);
    const c = await sb.createCase({ subject: 'Revoked', notify: false });
    sb.revokeAll();
    const err = await connector.crm.fetchContext({ crm: 'salesforce', account: sb.orgId, ticketId: c.id }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('auth_expired');
    expect((err as AppError).message).toContain('/oauth/salesforce/install');
    const health = await connector.health();
    expect(health.ok).toBe(false);
    expect(health.lastError).toContain('auth_expired');
  });

  it('says which org is not connected yet', async () => {
    const { sb, connector } = await setup();
    const err = await connector.crm.fetchContext({ crm: 'salesforce', account: sb.orgId, ticketId: to18('500TL0000000001') }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('misconfigured');
    expect((err as AppError).message).toContain(`Salesforce org ${sb.orgId} is not connected`);
  });
});

describe('Salesforce JWT bearer flow', () => {
  function keyFile() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = mkdtempSync(join(tmpdir(), 'tierline-sf-jwt-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'server.key');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    return { file, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
  }

  it('connects server-to-server and signs a new assertion when the session expires', async () => {
    const k = keyFile();
    const { sb, store, connector } = await setup({ env: { clientId: 'jwt-connected-app', clientSecret: undefined, username: SANDBOX_USERNAME, privateKeyFile: k.file } });
    sb.registerJwtClient('jwt-connected-app', k.publicPem);
    await connector.start();
    const inst = await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId);
    expect(inst).toMatchObject({ flow: 'jwt', username: SANDBOX_USERNAME, refreshToken: null });

    const c = await sb.createCase({ subject: 'JWT', notify: false });
    const ref = { crm: 'salesforce' as const, account: sb.orgId, ticketId: c.id };
    await connector.crm.fetchContext(ref);
    const firstToken = box.open((await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!.accessToken!);
    sb.expireSession();
    await expect(connector.crm.fetchContext(ref)).resolves.toMatchObject({ subject: 'JWT' });
    expect(box.open((await store.kvGet<Record<string, string>>('salesforce:installs', sb.orgId))!.accessToken!)).not.toBe(firstToken);
  });

  it('reports a key the connected app does not know', async () => {
    const k = keyFile();
    const other = keyFile();
    const { sb, connector } = await setup({ env: { clientId: 'jwt-connected-app', username: SANDBOX_USERNAME, privateKeyFile: k.file } });
    sb.registerJwtClient('jwt-connected-app', other.publicPem);
    await connector.start();
    const h = await connector.health();
    expect(h.ok).toBe(false);
    expect(h.lastError).toContain('Salesforce refused the JWT bearer login');
    expect(h.lastError).not.toContain('BEGIN');
  });

  it('reports an unreadable key file by name', async () => {
    const { connector } = await setup({ env: { clientId: 'jwt-connected-app', username: SANDBOX_USERNAME, privateKeyFile: '/nonexistent/server.key' } });
    await connector.start();
    const h = await connector.health();
    expect(h.ok).toBe(false);
    expect(h.lastError).toContain('SALESFORCE_PRIVATE_KEY_FILE /nonexistent/server.key cannot be read');
  });
});
