// Console sign-in: the admin token once, then a session cookie (HttpOnly, SameSite=Strict, Secure and __Host- on
// https). Sessions live in the store (kv 'console:sessions'), keyed by a hash of the cookie value, so a copy of the
// store does not hold usable cookies and every instance behind a load balancer sees the same sessions. Each session
// carries its own CSRF token that every form POST must echo; Origin is checked as well when the browser sends it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Clock, Store } from '../../core/ports.ts';
import { tokenEquals } from '../http.ts';

export const SESSIONS_NS = 'console:sessions';
export const SESSION_TTL_MS = 12 * 3600_000;
const LOGIN_NONCE_TTL_S = 30 * 60;

export type Session = { csrf: string; createdAt: number; expiresAt: number };
export type ConsoleEnv = { Variables: { session: Session } };

const hash = (v: string) => createHash('sha256').update(v).digest('hex');
const token = () => randomBytes(32).toString('base64url');

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Where to go after signing in: a path on this console only, never another site (//evil.example, /\evil). */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n]/.test(next)) return '/';
  return next.slice(0, 2000);
}

export function createAuth(opts: { store: Store; clock: Clock; adminToken: string; publicUrl: string }) {
  const { store, clock } = opts;
  const secure = /^https:/i.test(opts.publicUrl);
  const cookieOpts = { httpOnly: true, sameSite: 'Strict' as const, path: '/', secure, ...(secure ? { prefix: 'host' as const } : {}) };
  const SESSION = 'tierline_session';
  const LOGIN = 'tierline_login';
  const prefix = secure ? ('host' as const) : undefined;
  const publicOrigin = (() => {
    try {
      return new URL(opts.publicUrl).origin;
    } catch {
      return null;
    }
  })();
  // Failed sign-ins per client address: ten per ten minutes, then a pause. In memory: a restart forgives, which is
  // fine against guessing a 24-byte token; the point is to make guessing slow, not to account for it.
  const failures = new Map<string, { count: number; resetAt: number }>();

  async function readSession(c: Context): Promise<Session | null> {
    const sid = getCookie(c, SESSION, prefix);
    if (!sid || sid.length > 100) return null;
    const s = await store.kvGet<Session>(SESSIONS_NS, hash(sid));
    if (!s) return null;
    if (s.expiresAt <= clock.now()) {
      await store.kvDelete(SESSIONS_NS, hash(sid));
      return null;
    }
    return s;
  }

  /** The browser sent this from one of our own pages (or did not say, as curl and old browsers do not). */
  function sameOrigin(c: Context): boolean {
    const origin = c.req.header('origin');
    if (!origin) return true;
    if (origin === 'null') return false;
    return origin === new URL(c.req.url).origin || origin === publicOrigin;
  }

  const clientOf = (c: Context): string => {
    const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
    return env?.incoming?.socket?.remoteAddress ?? 'local';
  };

  return {
    readSession,

    /** Pages: no session -> the sign-in page, remembering where the reader was going. */
    requirePage: ((async (c, next) => {
      const s = await readSession(c);
      if (!s) return c.redirect(`/login?next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}`, 303);
      c.set('session', s);
      await next();
    }) as MiddlewareHandler<ConsoleEnv>),

    /** Fragments fetched by the page script: 401 instead of a redirect, so the script can say "signed out". */
    requireFragment: ((async (c, next) => {
      const s = await readSession(c);
      if (!s) return c.text('Signed out', 401);
      c.set('session', s);
      await next();
    }) as MiddlewareHandler<ConsoleEnv>),

    /** Form posts: a session, the session's CSRF token in `_csrf`, and (when sent) our own Origin. */
    requireForm: ((async (c, next) => {
      if (!sameOrigin(c)) return c.text('Cross-site form posts are refused. Use the console pages.', 403);
      const s = await readSession(c);
      if (!s) return c.redirect('/login', 303);
      const body = await c.req.parseBody();
      const given = typeof body._csrf === 'string' ? body._csrf : '';
      if (!safeEqual(given, s.csrf)) return c.text('This form has expired or did not come from the console (CSRF check failed). Reload the page and try again.', 403);
      c.set('session', s);
      await next();
    }) as MiddlewareHandler<ConsoleEnv>),

    /** A nonce for the sign-in form (double-submit): a page on another site cannot sign the browser in. */
    loginNonce(c: Context): string {
      const n = token();
      setCookie(c, LOGIN, n, { ...cookieOpts, maxAge: LOGIN_NONCE_TTL_S });
      return n;
    },

    /** Checks the sign-in form. Returns the session cookie's outcome or why it was refused. */
    async login(c: Context, form: { token: unknown; nonce: unknown }): Promise<{ ok: true } | { ok: false; status: 401 | 403 | 429; message: string; retryAfterS?: number }> {
      if (!sameOrigin(c)) return { ok: false, status: 403, message: 'Cross-site sign-in refused.' };
      const nonce = getCookie(c, LOGIN, prefix);
      if (!nonce || typeof form.nonce !== 'string' || !safeEqual(form.nonce, nonce)) {
        return { ok: false, status: 403, message: 'The sign-in form expired (or cookies are blocked). Reload the page and sign in again.' };
      }
      const who = clientOf(c);
      const now = clock.now();
      const f = failures.get(who);
      if (f && f.resetAt <= now) failures.delete(who);
      const cur = failures.get(who);
      if (cur && cur.count >= 10) return { ok: false, status: 429, message: 'Too many wrong tokens from this address; wait a few minutes and try again.', retryAfterS: Math.ceil((cur.resetAt - now) / 1000) };
      const given = typeof form.token === 'string' ? form.token.trim() : '';
      if (!given || !tokenEquals(given, opts.adminToken)) {
        if (failures.size > 10_000) for (const [k, v] of failures) if (v.resetAt <= now) failures.delete(k);
        const e = failures.get(who) ?? { count: 0, resetAt: now + 10 * 60_000 };
        e.count++;
        failures.set(who, e);
        return { ok: false, status: 401, message: 'That is not the admin token. Use the value of ADMIN_TOKEN (in sandbox mode without it, the token is in the admin-token file in DATA_DIR).' };
      }
      failures.delete(who);
      const sid = token();
      const session: Session = { csrf: token(), createdAt: now, expiresAt: now + SESSION_TTL_MS };
      // Expired sessions are swept at sign-in, the only moment the list grows.
      for (const { key, value } of await store.kvList<Session>(SESSIONS_NS)) if (value.expiresAt <= now) await store.kvDelete(SESSIONS_NS, key);
      await store.kvPut(SESSIONS_NS, hash(sid), session);
      setCookie(c, SESSION, sid, { ...cookieOpts, maxAge: Math.floor(SESSION_TTL_MS / 1000) });
      deleteCookie(c, LOGIN, { path: '/', secure, ...(secure ? { prefix: 'host' as const } : {}) });
      return { ok: true };
    },

    async logout(c: Context): Promise<void> {
      const sid = getCookie(c, SESSION, prefix);
      if (sid) await store.kvDelete(SESSIONS_NS, hash(sid));
      deleteCookie(c, SESSION, { path: '/', secure, ...(secure ? { prefix: 'host' as const } : {}) });
    },
  };
}

export type Auth = ReturnType<typeof createAuth>;
