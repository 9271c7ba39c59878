// HTTP conventions shared by every route: JSON errors {error: {code, message}}, status by error code, admin auth.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, type ErrorCode } from '../core/errors.ts';
import { ConfigError } from '../core/config.ts';

export const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_input: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  auth_expired: 401,
  upstream: 502,
  topic_gone: 502,
  misconfigured: 503,
  internal: 500,
};

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Maps any thrown value to a JSON response; unknown faults become 500 without leaking internals. */
export function errorResponse(c: Context, err: unknown) {
  if (err instanceof ConfigError) return c.json(errorBody('invalid_config', 'The configuration was rejected; the last good configuration stays in force.', err.problems), 400);
  if (err instanceof AppError) {
    if (err.retryAfterMs !== undefined) c.header('Retry-After', String(Math.ceil(err.retryAfterMs / 1000)));
    return c.json(errorBody(err.code, err.message, err.details), STATUS[err.code]);
  }
  return c.json(errorBody('internal', `Internal error (request ${c.get('requestId' as never) ?? '-'}); the details are in the service log.`), 500);
}

/** Constant-time token comparison; hashing first makes the lengths equal so length does not leak either. */
export function tokenEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

export function requireAdmin(token: () => string): MiddlewareHandler {
  return async (c, next) => {
    const h = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return c.json(errorBody('unauthorized', 'Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>".'), 401);
    if (!tokenEquals(m[1]!.trim(), token())) return c.json(errorBody('unauthorized', 'The admin token is wrong; check ADMIN_TOKEN.'), 401);
    await next();
  };
}
