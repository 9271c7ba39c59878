// One error type for the whole service. The code decides retry and HTTP status; the message is for a CRM admin.
export const ERROR_CODES = ['invalid_input', 'unauthorized', 'not_found', 'conflict', 'payload_too_large', 'rate_limited', 'auth_expired', 'upstream', 'topic_gone', 'misconfigured', 'internal'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  readonly code: ErrorCode;
  /** For rate_limited: how long the upstream asked us to wait. */
  readonly retryAfterMs: number | undefined;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, opts: { retryAfterMs?: number; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.retryAfterMs = opts.retryAfterMs;
    this.details = opts.details;
  }
}

/** Whether retrying the same step later can succeed. Bad input and missing records will not fix themselves. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof AppError)) return true; // unknown faults (network, bugs in an upstream) get the benefit of the doubt
  return err.code === 'rate_limited' || err.code === 'upstream' || err.code === 'auth_expired' || err.code === 'topic_gone' || err.code === 'internal';
}

export function errorMessage(err: unknown): string {
  if (err instanceof AppError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
