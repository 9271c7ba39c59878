// Salesforce errors -> AppError with a message an admin can act on. Salesforce reports request-level errors as
// [{message, errorCode, fields}] (jsforce: HttpApiError, name = errorCode) and per-record errors of sObject
// Collections as {statusCode, message, fields}; both end up here.
import { AppError } from '../../core/errors.ts';

export const DEPLOY_HINT = 'deploy the force-app metadata (`npm run salesforce:deploy`, or `sf project deploy start` in connectors/salesforce) and assign the Tierline Integration permission set to the connected user';

export type Classified =
  | { kind: 'rate_limited'; code: string; message: string }
  | { kind: 'transient'; code: string; message: string }
  | { kind: 'auth'; code: string; message: string }
  | { kind: 'missing_field'; code: string; message: string; field: string }
  | { kind: 'not_found'; code: string; message: string }
  | { kind: 'config'; code: string; message: string }
  | { kind: 'other'; code: string; message: string };

const TRANSIENT = new Set(['SERVER_UNAVAILABLE', 'UNKNOWN_EXCEPTION', 'UNABLE_TO_LOCK_ROW', 'REQUEST_RUNNING_TOO_LONG', 'QUERY_TIMEOUT', 'ERROR_HTTP_500', 'ERROR_HTTP_502', 'ERROR_HTTP_503', 'ERROR_HTTP_504', 'ERROR_HTTP_420']);
const NOT_FOUND = new Set(['ENTITY_IS_DELETED', 'INVALID_CROSS_REFERENCE_KEY', 'NOT_FOUND', 'MALFORMED_ID', 'INVALID_ID_FIELD']);
const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|UND_ERR|socket hang up|fetch failed|terminated|other side closed/i;

/** "No such column 'X' on sobject of type Case" / "... on entity 'Case'" / "sObject type 'X' is not supported" -> Case.X */
export function missingFieldOf(message: string): string | null {
  const col = /No such column '([^']+)' on (?:sobject of type |entity ')?([A-Za-z0-9_]+)/.exec(message);
  if (col) return `${col[2]}.${col[1]}`;
  const type = /sObject type '([^']+)' is not supported/.exec(message);
  if (type) return type[1]!;
  const ext = /external ID field does not exist or is not accessible: ([A-Za-z0-9_]+)/i.exec(message);
  if (ext) return ext[1]!;
  const rel = /Didn't understand relationship '([^']+)'/.exec(message);
  if (rel) return rel[1]!;
  return null;
}

export function classify(code: string, message: string): Classified {
  if (code === 'REQUEST_LIMIT_EXCEEDED' || code === 'ERROR_HTTP_429') return { kind: 'rate_limited', code, message };
  if (TRANSIENT.has(code) || NETWORK.test(message) || NETWORK.test(code)) return { kind: 'transient', code, message };
  if (code === 'INVALID_SESSION_ID' || /Unable to refresh session|invalid_grant|expired access\/refresh token|No refresh token/i.test(message) || code === 'invalid_grant') return { kind: 'auth', code, message };
  if (code === 'INVALID_FIELD' || code === 'INVALID_TYPE' || (code === 'NOT_FOUND' && /external ID field/i.test(message))) {
    return { kind: 'missing_field', code, message, field: missingFieldOf(message) ?? 'a Tierline field' };
  }
  if (NOT_FOUND.has(code)) return { kind: 'not_found', code, message };
  if (['INVALID_FIELD_FOR_INSERT_UPDATE', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', 'STRING_TOO_LONG', 'INSUFFICIENT_ACCESS_OR_READONLY', 'INSUFFICIENT_ACCESS', 'FIELD_CUSTOM_VALIDATION_EXCEPTION', 'API_DISABLED_FOR_ORG', 'API_CURRENTLY_DISABLED', 'FUNCTIONALITY_NOT_ENABLED'].includes(code)) {
    return { kind: 'config', code, message };
  }
  return { kind: 'other', code, message };
}

/** An error thrown by jsforce (or the network) -> code + message. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof AppError) return { code: err.code, message: err.message };
  if (err && typeof err === 'object') {
    const e = err as { errorCode?: unknown; name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
    const code = typeof e.errorCode === 'string' ? e.errorCode : typeof e.name === 'string' && /^[A-Z_0-9]+$/.test(e.name) ? e.name : typeof e.cause?.code === 'string' ? e.cause.code : 'ERROR';
    const message = [typeof e.message === 'string' ? e.message : '', typeof e.cause?.message === 'string' ? e.cause.message : ''].filter(Boolean).join(': ');
    return { code, message };
  }
  return { code: 'ERROR', message: String(err) };
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 300);

/** The AppError an admin sees; what names the org and the action, never a token. */
export function toAppError(c: Classified, ctx: { orgId: string; action: string }, cause?: unknown): AppError {
  const where = `Salesforce org ${ctx.orgId}`;
  const o = cause === undefined ? { details: { code: c.code } } : { details: { code: c.code }, cause };
  switch (c.kind) {
    case 'rate_limited':
      return new AppError('rate_limited', `${where} refused to ${ctx.action}: ${c.code} (${oneLine(c.message)}). Tierline backs off and retries; if the daily API allocation is used up, raise it or reduce other integrations.`, { ...o, retryAfterMs: 5 * 60_000 });
    case 'transient':
      return new AppError('upstream', `${where} could not ${ctx.action} (${c.code}: ${oneLine(c.message)}); Tierline retries with backoff.`, o);
    case 'auth':
      return new AppError('auth_expired', `${where}: the stored authorization no longer works (${c.code}). Reconnect the org: open /oauth/salesforce/install (or check SALESFORCE_USERNAME / SALESFORCE_PRIVATE_KEY_FILE for the JWT flow).`, o);
    case 'missing_field':
      return new AppError('misconfigured', `${where} has no ${c.field} (or the Tierline user cannot see it), needed to ${ctx.action}: ${DEPLOY_HINT}.`, { ...o, details: { code: c.code, field: c.field } });
    case 'not_found':
      return new AppError('not_found', `${where}: could not ${ctx.action}: the record no longer exists (deleted or merged) or the Tierline user cannot see it (${c.code}).`, o);
    case 'config':
      return new AppError('misconfigured', `${where} rejected the write to ${ctx.action} (${c.code}: ${oneLine(c.message)}): ${DEPLOY_HINT}.`, o);
    default:
      return new AppError('upstream', `${where} could not ${ctx.action}: ${c.code}: ${oneLine(c.message)}`, o);
  }
}
