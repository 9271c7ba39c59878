import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { SESSIONS_NS, SESSION_TTL_MS, safeNext } from '../../server/console/auth.ts';
import { setupConsole, TOKEN } from './harness.ts';

const PAGES = ['/', '/history', '/history.csv', '/tickets/hubspot%3A42%3A1', '/performance', '/config', '/config/mappings', '/config/versions/1', '/replay', '/forum', '/dead-letters'];
const FORMS = ['/config', '/config/rollback', '/config/mappings', '/config/mappings/rollback', '/replay', '/forum/reply', '/forum/close', '/forum/presence', '/dead-letters/retry', '/sandbox/generator', '/logout'];

describe('console sign-in and sessions', () => {
  it('sends every page to the sign-in page without a session, remembering where the reader was going', async () => {
    const c = await setupConsole();
    for (const p of PAGES) {
      const r = await c.app.request(p);
      expect(r.status, p).toBe(303);
      const next = new URL(r.headers.get('location')!, 'http://x').searchParams.get('next');
      expect([p, decodeURIComponent(p)], p).toContain(next);
    }
    // The live fragment answers 401 so the page script can say "signed out" instead of swapping in a login form.
    expect((await c.app.request('/overview/live')).status).toBe(401);
  });

  it('signs in with the admin token: HttpOnly, SameSite=Strict session cookie, stored hashed in the store with an expiry', async () => {
    const c = await setupConsole();
    const { response, cookie } = await c.login();
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/');
    const set = response.headers.getSetCookie().find((x) => x.startsWith('tierline_session='))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\//);
    expect(set).not.toMatch(/Secure/); // plain http PUBLIC_URL: a Secure cookie would never come back
    const sessions = await c.store.kvList<{ expiresAt: number; csrf: string }>(SESSIONS_NS);
    const sid = cookie.split('=')[1]!;
    expect(sessions.length).toBeGreaterThanOrEqual(1);
    expect(sessions.some((s) => s.key === sid)).toBe(false); // keyed by a hash, not the cookie value
    expect(sessions.every((s) => s.value.expiresAt === c.clock.now() + SESSION_TTL_MS)).toBe(true);
    expect((await c.get('/', cookie)).status).toBe(200);
  });

  it('marks the cookie Secure with the __Host- prefix when PUBLIC_URL is https', async () => {
    const c = await setupConsole({ publicUrl: 'https://tierline.example.com' });
    const set = c.session.response.headers.getSetCookie().find((x) => x.includes('tierline_session='))!;
    expect(set).toMatch(/^__Host-tierline_session=/);
    expect(set).toMatch(/Secure/);
    expect((await c.get('/')).status).toBe(200);
  });

  it('refuses a wrong token with a message that says where the token is, and leaves no session', async () => {
    const c = await setupConsole();
    const before = (await c.store.kvList(SESSIONS_NS)).length;
    const { response, cookie } = await c.login('not-the-token');
    expect(response.status).toBe(401);
    expect(cookie).toBe('');
    expect(await response.text()).toMatch(/not the admin token.*ADMIN_TOKEN/s);
    expect((await c.store.kvList(SESSIONS_NS)).length).toBe(before);
  });

  it('refuses a sign-in form that did not come from the sign-in page (no nonce cookie) or from another site', async () => {
    const c = await setupConsole();
    const noNonce = await c.app.request('/login', { method: 'POST', headers: c.formHeaders(''), body: c.form({ token: TOKEN, _login: 'x' }) });
    expect(noNonce.status).toBe(403);
    const page = await c.app.request('/login');
    const cookie = page.headers.getSetCookie()[0]!.split(';')[0]!;
    const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
    const crossSite = await c.app.request('/login', { method: 'POST', headers: c.formHeaders(cookie, { origin: 'https://evil.example' }), body: c.form({ token: TOKEN, _login: nonce }) });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.getSetCookie().some((x) => x.startsWith('tierline_session='))).toBe(false);
  });

  it('slows down guessing: after ten wrong tokens, even the right one waits (429 with Retry-After)', async () => {
    const c = await setupConsole();
    for (let i = 0; i < 10; i++) expect((await c.login(`guess-${i}`)).response.status).toBe(401);
    const blocked = await c.login();
    expect(blocked.response.status).toBe(429);
    expect(Number(blocked.response.headers.get('retry-after'))).toBeGreaterThan(0);
    c.clock.advance(11 * 60_000);
    expect((await c.login()).response.status).toBe(303);
  });

  it('expires sessions after 12 hours and removes them on sign-out', async () => {
    const c = await setupConsole();
    c.clock.advance(SESSION_TTL_MS - 1000);
    expect((await c.get('/')).status).toBe(200);
    c.clock.advance(2000);
    expect((await c.get('/')).status).toBe(303);

    const s = await c.login();
    const out = await c.post('/logout', {}, { cookie: s.cookie, csrf: s.csrf });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    expect(out.headers.getSetCookie().find((x) => x.startsWith('tierline_session='))).toMatch(/Max-Age=0/);
    expect((await c.get('/', s.cookie)).status).toBe(303);
  });

  it('only redirects back into the console after sign-in', () => {
    expect(safeNext('/history?tier=free')).toBe('/history?tier=free');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'javascript:alert(1)', '/ok\r\nSet-Cookie: x=1', undefined, 42]) expect(safeNext(bad)).toBe('/');
  });
});

describe('console CSRF protection', () => {
  it('refuses every form post without the session CSRF token, with a wrong one, or with another session\'s', async () => {
    const c = await setupConsole({ forum: true, generator: true, seed: 20 });
    const other = await c.login();
    expect(other.csrf).not.toBe(c.session.csrf);
    const version = (await c.store.getConfig())!.version;
    for (const path of FORMS) {
      for (const csrf of [null, '', 'forged', other.csrf]) {
        const r = await c.post(path, { version: '1', action: 'save', rules: '[]', id: 'x', all: '1', group: 'vip', topic: '1', user: '7000000001', text: 'hi', online: '0' }, { csrf });
        expect(r.status, `${path} with ${csrf}`).toBe(403);
      }
    }
    expect((await c.store.getConfig())!.version).toBe(version);
    expect(c.forum!.replies).toEqual([]);
    expect(c.generator.paused()).toBe(false);
    // The session survived all of it.
    expect((await c.get('/')).status).toBe(200);
  });

  it('refuses a cross-site post even with a valid token (Origin check), and accepts our own origin', async () => {
    const c = await setupConsole({ generator: true });
    const evil = await c.post('/sandbox/generator', { action: 'pause' }, { headers: { origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(c.generator.paused()).toBe(false);
    const nullOrigin = await c.post('/sandbox/generator', { action: 'pause' }, { headers: { origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    const ours = await c.post('/sandbox/generator', { action: 'pause' }, { headers: { origin: 'http://localhost:3000' } });
    expect(ours.status).toBe(303);
    expect(c.generator.paused()).toBe(true);
  });

  it('a form post without a session goes to the sign-in page and changes nothing', async () => {
    const c = await setupConsole({ generator: true });
    const r = await c.post('/sandbox/generator', { action: 'pause' }, { cookie: '' });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/login');
    expect(c.generator.paused()).toBe(false);
  });
});

describe('console response headers and mounting', () => {
  it('sends a strict Content-Security-Policy, no framing, no sniffing and no caching on pages; assets cache for good', async () => {
    const c = await setupConsole();
    for (const p of ['/', '/login']) {
      const r = p === '/login' ? await c.app.request(p) : await c.get(p);
      expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'.*frame-ancestors 'none'/);
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    const page = await (await c.get('/')).text();
    const css = /href="(\/console-assets\/console\.[0-9a-f]+\.css)"/.exec(page)![1]!;
    const js = /src="(\/console-assets\/console\.[0-9a-f]+\.js)"/.exec(page)![1]!;
    const cssR = await c.app.request(css);
    expect(cssR.status).toBe(200);
    expect(cssR.headers.get('content-type')).toMatch(/text\/css/);
    expect(cssR.headers.get('cache-control')).toMatch(/immutable/);
    expect((await c.app.request(js)).headers.get('content-type')).toMatch(/javascript/);
    // No inline script or style anywhere: the CSP would block it.
    expect(page).not.toMatch(/<script>(?!<\/script>)|style="/);
  });

  it('mounted at / after other routes, it leaves their answers and the service 404 alone', async () => {
    const c = await setupConsole();
    const service = new Hono();
    service.get('/healthz', (x) => x.json({ ok: true }));
    service.route('/', c.app);
    service.notFound((x) => x.json({ error: { code: 'not_found' } }, 404));
    expect(await (await service.request('/healthz')).json()).toEqual({ ok: true });
    const nope = await service.request('/api/v1/nope');
    expect(nope.status).toBe(404);
    expect(await nope.json()).toEqual({ error: { code: 'not_found' } });
    expect((await service.request('/history')).status).toBe(303);
  });
});
