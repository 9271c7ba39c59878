// Installing Tierline into HubSpot: the private app token (portal discovered, properties provisioned on start) and
// the OAuth public-app flow (CSRF state, code exchange, sealed tokens, provisioning), several portals side by side,
// idempotent provisioning (upgrades options, leaves conflicting hand-made properties alone), token refresh on 401 and
// before expiry, and a revoked install surfacing as a clear error.
import { Client } from '@hubspot/api-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import type { StoredInstall } from '../../../connectors/hubspot/client.ts';
import { propertyDefs } from '../../../connectors/hubspot/properties.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function get(url: string) {
  const r = await fetch(url, { redirect: 'manual' });
  return { status: r.status, location: r.headers.get('location'), text: await r.text() };
}

/** Walks the OAuth install as an admin would: Tierline -> HubSpot authorize page -> callback. */
async function installViaOAuth(x: Harness, portalId?: string) {
  const start = await get(`${x.publicUrl}/oauth/hubspot/install`);
  expect(start.status).toBe(302);
  const authorize = new URL(start.location!);
  if (portalId) authorize.searchParams.set('portal_id', portalId);
  const approved = await get(authorize.toString());
  expect(approved.status).toBe(302);
  const callback = await get(approved.location!);
  return { start, authorize, callbackUrl: approved.location!, callback };
}

const ticketRef = (portal: string, id: string) => ({ crm: 'hubspot' as const, account: portal, ticketId: id });

describe('HubSpot install: private app token', () => {
  it('discovers the portal of the token and provisions the property group and every Tierline property', async () => {
    h = await startHarness();
    expect(await h.connector.portals()).toEqual([h.sb.portalId]);
    for (const type of ['tickets', 'companies', 'contacts'] as const) {
      expect(h.sb.groups(type).map((g) => g.name)).toContain('tierline');
      const props = new Map(h.sb.properties(type).map((p) => [p.name, p]));
      for (const d of propertyDefs(type)) {
        const p = props.get(d.name);
        expect(p, `${type}.${d.name}`).toBeTruthy();
        expect(p!.type).toBe(d.type);
        // The two read-only inputs existed before the install (the seed made them) and stay where the admin put them.
        if (d.name !== 'tierline_product' && d.name !== 'tierline_churn_risk') expect(p!.groupName).toBe('tierline');
      }
    }
    expect(h.sb.properties('tickets').find((p) => p.name === 'tierline_status')!.options.map((o) => o.value)).toEqual(['waiting', 'assigned', 'answered', 'resolved']);
    const health = await h.connector.health();
    expect(health).toMatchObject({ ok: true, mode: 'sandbox', lastError: null, portals: [{ portalId: h.sb.portalId, flow: 'private_app', provisioned: true }] });
    expect(health.detail).toContain('1 portal installed');
  });

  it('provisions idempotently: nothing is created twice, a missing option is added, a hand-made property of another type is left alone', async () => {
    h = await startHarness();
    h.sb.clearRequests();
    const again = await h.connector.provision(h.sb.portalId);
    expect(again.created).toEqual([]);
    expect(h.sb.requests({ method: 'POST' }).filter((r) => r.path.endsWith('/batch/create') || r.path.endsWith('/groups'))).toEqual([]);

    // An older Tierline made tierline_status without "answered"; an admin made tierline_rule as a number.
    const status = h.sb.properties('tickets').find((p) => p.name === 'tierline_status')!;
    const api = new Client({ accessToken: h.sb.accessToken, basePath: h.sb.url });
    await api.crm.properties.coreApi.update('tickets', 'tierline_status', { options: status.options.filter((o) => o.value !== 'answered') } as never);
    h.sb.deleteProperty('companies', 'tierline_rule');
    await api.crm.properties.coreApi.create('companies', { name: 'tierline_rule', label: 'Rule #', type: 'number', fieldType: 'number', groupName: 'tierline' } as never);

    const r = await h.connector.provision(h.sb.portalId);
    expect(r.updated).toEqual(['tickets.tierline_status']);
    expect(r.conflicts).toEqual(['companies.tierline_rule is a number property, Tierline expects string']);
    expect(h.sb.properties('tickets').find((p) => p.name === 'tierline_status')!.options.map((o) => o.value).sort()).toEqual(['answered', 'assigned', 'resolved', 'waiting']);
    expect(h.sb.properties('companies').find((p) => p.name === 'tierline_rule')!.type).toBe('number');
  });

  it('reports a rejected private app token in health instead of crashing the start', async () => {
    h = await startHarness({ start: false });
    // A second connector on the same sandbox with a token HubSpot does not know (rotated or mistyped).
    const { createHubspotConnector } = await import('../../../connectors/hubspot/index.ts');
    const { createSecretBox } = await import('../../../connectors/shared/secrets.ts');
    const { silentLogger } = await import('../../../server/logger.ts');
    const c = await createHubspotConnector({ env: { accessToken: 'pat-na1-not-a-real-token', apiBaseUrl: h.sb.url, publicUrl: h.publicUrl }, mode: 'real', store: h.store, secrets: createSecretBox('x'.repeat(32)), logger: silentLogger, clock: h.clock, intake: { accept: async () => ({ accepted: 0, duplicates: 0 }) } });
    await c.start();
    const health = await c.health();
    expect(health.ok).toBe(false);
    expect(health.lastError).toContain('HubSpot rejected HUBSPOT_ACCESS_TOKEN (401)');
    expect(health.lastError).not.toContain('pat-na1-not-a-real-token');
    await c.stop();
  });
});

describe('HubSpot install: OAuth', () => {
  it('walks install -> authorize -> callback with a CSRF state, stores sealed tokens and provisions the portal', async () => {
    h = await startHarness({ privateToken: false });
    expect(await h.connector.portals()).toEqual([]);
    const { authorize, callback } = await installViaOAuth(h);
    expect(authorize.origin + authorize.pathname).toBe(`${h.sb.url}/oauth/authorize`);
    expect(authorize.searchParams.get('client_id')).toBe(h.sb.clientId);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${h.publicUrl}/oauth/hubspot/callback`);
    expect(authorize.searchParams.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['tickets', 'crm.objects.companies.write', 'automation']));
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(callback.status).toBe(200);
    expect(callback.text).toContain(`HubSpot portal ${h.sb.portalId} is connected`);

    const inst = (await h.store.kvGet<StoredInstall>('hubspot:installs', h.sb.portalId))!;
    expect(inst).toMatchObject({ flow: 'oauth', currency: 'USD', provisioned: { version: expect.any(String) } });
    expect(inst.accessToken).toMatch(/^v1:/);
    expect(inst.refreshToken).toMatch(/^v1:/);
    expect(JSON.stringify(inst)).not.toMatch(/sbx-(at|rt)-/);
    expect(h.sb.groups('tickets').map((g) => g.name)).toContain('tierline');

    // The ticket API now works with the OAuth token.
    const t = await h.sb.createTicket({ subject: 'Via OAuth', notify: false });
    expect((await h.connector.crm.fetchContext(ticketRef(h.sb.portalId, t.id))).subject).toBe('Via OAuth');
  });

  it('refuses a reused, unknown or missing state and shows HubSpot’s own error', async () => {
    h = await startHarness({ privateToken: false });
    const { callbackUrl } = await installViaOAuth(h);
    const reused = await get(callbackUrl);
    expect(reused.status).toBe(400);
    expect(reused.text).toContain('expired or was already used');
    const unknown = new URL(callbackUrl);
    unknown.searchParams.set('state', 'forged');
    expect((await get(unknown.toString())).status).toBe(400);
    const denied = await get(`${h.publicUrl}/oauth/hubspot/callback?error=access_denied&error_description=User+cancelled`);
    expect(denied).toMatchObject({ status: 400, text: expect.stringContaining('User cancelled') });
  });

  it('explains what to set when OAuth is not configured', async () => {
    h = await startHarness({ oauth: false });
    const r = await get(`${h.publicUrl}/oauth/hubspot/install`);
    expect(r.status).toBe(503);
    expect(r.text).toContain('HUBSPOT_CLIENT_ID');
  });

  it('serves several portals: the private app portal and OAuth installs, each with its own token and limiter', async () => {
    h = await startHarness();
    const second = h.sb.addPortal({ seed: true });
    await installViaOAuth(h, second.portalId);
    expect(await h.connector.portals()).toEqual([h.sb.portalId, second.portalId].sort());
    const a = await h.sb.createTicket({ subject: 'Portal A', notify: false });
    const b = await h.sb.createTicket({ subject: 'Portal B', notify: false, portalId: second.portalId });
    const [ca, cb] = await Promise.all([h.connector.crm.fetchContext(ticketRef(h.sb.portalId, a.id)), h.connector.crm.fetchContext(ticketRef(second.portalId, b.id))]);
    expect([ca.subject, cb.subject]).toEqual(['Portal A', 'Portal B']);
    expect(h.sb.requests({ path: `/crm/v3/objects/tickets/${b.id}` })[0]!.portalId).toBe(second.portalId);
    const health = await h.connector.health();
    expect(health.portals).toEqual([expect.objectContaining({ flow: expect.any(String) }), expect.objectContaining({ flow: expect.any(String) })]);
    expect(health.detail).toContain('2 portals installed');
    // A portal nobody installed gets a clear error, not a crash.
    const e = await h.connector.crm.fetchContext(ticketRef('999', '1')).catch((x: unknown) => x);
    expect((e as AppError).code).toBe('misconfigured');
    expect((e as AppError).message).toContain('/oauth/hubspot/install');
  });
});

describe('HubSpot secrets', () => {
  it('never writes a token, code or the client secret into a log line or an error', async () => {
    const { recordingLogger, CLIENT_SECRET } = await import('./harness.ts');
    const logger = recordingLogger();
    h = await startHarness({ logger, pipeline: true });
    const second = h.sb.addPortal({ seed: true });
    await installViaOAuth(h, second.portalId);
    await h.sb.createTicket({ subject: 'Log check', portalId: second.portalId });
    h.sb.expireAccessTokens();
    await h.drain();
    h.sb.revokeRefreshTokens();
    h.sb.expireAccessTokens();
    const t = await h.sb.createTicket({ subject: 'Fails', notify: false, portalId: second.portalId });
    const e = await h.connector.crm.fetchContext(ticketRef(second.portalId, t.id)).catch((x: unknown) => x);
    const text = [...logger.lines, (e as Error).message, JSON.stringify(await h.connector.health())].join('\n');
    expect(logger.lines.length).toBeGreaterThan(5);
    for (const secret of [h.sb.accessToken, CLIENT_SECRET, 'sbx-at-', 'sbx-rt-', 'sbx-code-']) expect(text).not.toContain(secret);
  });
});

describe('HubSpot tokens', () => {
  it('refreshes an expired access token once on 401 and retries the call', async () => {
    h = await startHarness({ privateToken: false });
    await installViaOAuth(h);
    const t = await h.sb.createTicket({ subject: 'Refresh me', notify: false });
    h.sb.expireAccessTokens();
    h.sb.clearRequests();
    const ctx = await h.connector.crm.fetchContext(ticketRef(h.sb.portalId, t.id));
    expect(ctx.subject).toBe('Refresh me');
    const seq = h.sb.requests().map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(seq.slice(0, 3)).toEqual([`GET /crm/v3/objects/tickets/${t.id} 401`, 'POST /oauth/v1/token 200', `GET /crm/v3/objects/tickets/${t.id} 200`]);
    const inst = (await h.store.kvGet<StoredInstall>('hubspot:installs', h.sb.portalId))!;
    expect(inst.refreshedAt).toBe(h.clock.now());
  });

  it('refreshes before expiry, so no call meets a 401', async () => {
    h = await startHarness({ privateToken: false });
    await installViaOAuth(h);
    const t = await h.sb.createTicket({ subject: 'Early refresh', notify: false });
    h.clock.advance(26 * 60_000); // tokens live 30 min; refreshed within 5 min of expiry
    h.sb.clearRequests();
    await h.connector.crm.fetchContext(ticketRef(h.sb.portalId, t.id));
    const seq = h.sb.requests().map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(seq[0]).toBe('POST /oauth/v1/token 200');
    expect(seq.filter((s) => s.endsWith(' 401'))).toEqual([]);
    expect(h.sb.requests({ path: '/oauth/v1/token' }).map((r) => (r.body as { grant_type: string }).grant_type)).toEqual(['refresh_token']);
  });

  it('turns a revoked install into auth_expired with the reinstall link, and health says so', async () => {
    h = await startHarness({ privateToken: false });
    await installViaOAuth(h);
    const t = await h.sb.createTicket({ subject: 'Uninstalled', notify: false });
    h.sb.revokeRefreshTokens();
    h.sb.expireAccessTokens();
    const e = await h.connector.crm.fetchContext(ticketRef(h.sb.portalId, t.id)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('auth_expired');
    expect((e as AppError).message).toContain('/oauth/hubspot/install');
    const health = await h.connector.health();
    expect(health.ok).toBe(false);
    expect(health.detail).toContain('1 portal needs attention');
  });
});
