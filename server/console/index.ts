// The admin console, server-rendered, mounted at '/' after the API and connector routes. Every route is declared
// with its own guard instead of app.use('*'): the sub-app's wildcard middleware would otherwise run for every
// unmatched path of the whole service and turn its JSON 404s into sign-in redirects.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { CSS, CSS_PATH, JS, JS_PATH } from './assets.ts';
import { createAuth, safeNext, type ConsoleEnv } from './auth.ts';
import type { ConsoleContext, ConsoleDeps, Routes } from './context.ts';
import { mountConfig } from './pages/config.ts';
import { mountDeadLetters } from './pages/dead-letters.ts';
import { mountForum } from './pages/forum.ts';
import { mountHistory } from './pages/history.ts';
import { mountOverview } from './pages/overview.ts';
import { mountPerformance } from './pages/performance.ts';
import { mountReplay } from './pages/replay.ts';
import { createReadModel, type ReadModelOptions } from './read-model.ts';
import { html, notice, raw, shell } from './ui.ts';

export type { ConsoleDeps } from './context.ts';

const CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "script-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers for every console response: no framing, no sniffing, no referrer to other sites, no caching of pages. */
const headers: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  await next();
  c.header('Content-Security-Policy', CSP);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('X-Frame-Options', 'DENY');
  c.header('Referrer-Policy', 'same-origin'); // not no-referrer: that makes browsers send "Origin: null" on our own form posts
  if (!c.res.headers.get('cache-control')) c.header('Cache-Control', 'no-store');
};

export function createConsole(deps: ConsoleDeps, opts: { readModel?: ReadModelOptions } = {}): Hono {
  const auth = createAuth({ store: deps.store, clock: deps.clock, adminToken: deps.adminToken, publicUrl: deps.publicUrl });
  const ctx: ConsoleContext = { ...deps, model: createReadModel(deps.store, deps.clock, deps.logger, opts.readModel), sandbox: Boolean(deps.sandboxForum) };
  ctx.model.warm();
  const inner = new Hono<ConsoleEnv>();

  // A page that throws shows an HTML error page with a way back, not the API's JSON.
  inner.onError((err, c) => {
    deps.logger.error('console page failed', { path: c.req.path, error: err instanceof Error ? err.message : String(err) });
    return c.html(
      shell({ title: 'Something went wrong', active: '', body: html`<h1>Something went wrong</h1>${notice('bad', 'The page could not be built; the details are in the service log. Reload to try again, or go back to the overview.')}<p><a href="/">Overview</a></p>` }),
      500,
    );
  });

  const asset = (body: string, type: string) => (c: Context) => c.body(body, 200, { 'content-type': type, 'cache-control': 'public, max-age=31536000, immutable' });
  inner.get(CSS_PATH, headers, asset(CSS, 'text/css; charset=utf-8'));
  inner.get(JS_PATH, headers, asset(JS, 'text/javascript; charset=utf-8'));

  inner.get('/login', headers, async (c) => {
    if (await auth.readSession(c)) return c.redirect(safeNext(c.req.query('next')), 303);
    return c.html(loginPage(auth.loginNonce(c), safeNext(c.req.query('next')), null, Boolean(deps.sandboxForum)));
  });
  inner.post('/login', headers, async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(form.next);
    const r = await auth.login(c, { token: form.token, nonce: form._login });
    if (r.ok) {
      deps.logger.info('console: signed in');
      return c.redirect(next, 303);
    }
    deps.logger.warn('console: sign-in refused', { status: r.status });
    if (r.retryAfterS) c.header('Retry-After', String(r.retryAfterS));
    return c.html(loginPage(auth.loginNonce(c), next, r.message, Boolean(deps.sandboxForum)), r.status);
  });
  inner.post('/logout', headers, auth.requireForm, async (c) => {
    await auth.logout(c);
    return c.redirect('/login', 303);
  });

  // Every page route gets the security headers first; the guards are per route (see the module comment).
  const app: Routes = {
    get: (path, ...h) => void inner.get(path, headers, ...h),
    post: (path, ...h) => void inner.post(path, headers, ...h),
  };
  mountOverview(app, ctx, auth);
  mountHistory(app, ctx, auth);
  mountPerformance(app, ctx, auth);
  mountConfig(app, ctx, auth);
  mountReplay(app, ctx, auth);
  mountForum(app, ctx, auth);
  mountDeadLetters(app, ctx, auth);

  return inner as unknown as Hono;
}

function loginPage(nonce: string, next: string, error: string | null, sandbox: boolean) {
  return shell({
    title: 'Sign in',
    active: '',
    sandbox,
    body: html`<div class="login">
<h1>Sign in to Tierline</h1>
${error ? notice('bad', error) : ''}
<form method="post" action="/login" class="card">
<input type="hidden" name="_login" value="${nonce}">
<input type="hidden" name="next" value="${next}">
<div class="field"><label for="token">Admin token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus aria-describedby="token-help"${error ? raw(' aria-invalid="true"') : ''}></div>
<p class="muted" id="token-help">The value of ADMIN_TOKEN. In sandbox mode without it, the token is in the <code>admin-token</code> file in DATA_DIR.</p>
<button type="submit">Sign in</button>
</form>
</div>`,
  });
}
