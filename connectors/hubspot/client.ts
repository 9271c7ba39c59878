// All HubSpot traffic goes through here: one @hubspot/api-client Client per portal and access token, every HTTP
// request behind that portal's token bucket (limiter.ts), our own retries with backoff for 5xx, network faults and
// timeouts (the SDK's retry decorator sleeps 10 s per attempt, logs to stderr and is global to the process, so it is
// off), 401 -> one token refresh and a retry, 429 -> the bucket paused and rate_limited surfaced to the pipeline.
// Installs (private-app token portal, OAuth portals) live in the store, their tokens sealed with SECRETS_KEY.
import { Client } from '@hubspot/api-client';
import { AppError, type ErrorCode } from '../../core/errors.ts';
import type { Clock, Logger, Store } from '../../core/ports.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { createBucket, type Bucket } from './limiter.ts';

export const NS = {
  installs: 'hubspot:installs',
  state: 'hubspot:oauth-state',
  mappings: 'hubspot:mappings',
  mappingVersions: 'hubspot:mapping-versions',
  notes: 'hubspot:notes',
  callbacks: 'hubspot:callbacks',
} as const;

export const PUBLIC_API = 'https://api.hubapi.com';

export type HubspotEnv = {
  accessToken?: string | undefined;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  apiBaseUrl: string;
  publicUrl: string;
  appId?: string | undefined;
};

export type Tuning = {
  /** Requests per window per portal (HubSpot: 100-190 per 10 s for private apps, 110 for OAuth apps). */
  rateLimit: number;
  rateWindowMs: number;
  /** Attempts per call for 5xx, network faults and timeouts (1 = no retry). */
  retryAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** One HTTP request may take this long before it counts as a timeout. */
  timeoutMs: number;
  /** OAuth access tokens are refreshed this long before they expire. */
  refreshMarginMs: number;
  /** Time for the limiter and backoff sleeps (tests make both instant). */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
};

export const DEFAULT_TUNING: Tuning = {
  rateLimit: 100,
  rateWindowMs: 10_000,
  retryAttempts: 4,
  retryBaseMs: 500,
  retryMaxMs: 8_000,
  timeoutMs: 20_000,
  refreshMarginMs: 5 * 60_000,
  now: () => Date.now(),
  sleep: (ms) => new Promise((ok) => setTimeout(ok, ms)),
};

/** What is stored per portal. Tokens are sealed; the private-app token is never stored (it lives in the env). */
export type StoredInstall = {
  portalId: string;
  flow: 'private_app' | 'oauth';
  hubDomain: string | null;
  currency: string | null;
  timeZone: string | null;
  scopes: string[];
  appId: string | null;
  accessToken: string | null;
  refreshToken: string | null;
  expiresAt: number | null;
  installedAt: number;
  refreshedAt: number | null;
  provisioned: { version: string; at: number } | null;
};

export type HsErrorDetails = { status: number; category: string | null; message: string; context: Record<string, unknown> | null; errors: unknown[]; policyName: string | null };

export type PortalSession = {
  portalId: string;
  install(): Promise<StoredInstall>;
  /**
   * Runs fn against the portal with the limiter, retries and error mapping; `action` names it in errors. A call that
   * is not idempotent (creating records) is not repeated here after a 5xx or timeout: HubSpot may have applied it, and
   * the caller's own retry path (the pipeline, with its duplicate check) decides.
   */
  run<T>(action: string, fn: (client: Client) => Promise<T>, o?: { idempotent?: boolean }): Promise<T>;
};

export type ClientDeps = { env: HubspotEnv; store: Store; secrets: SecretBox; logger: Logger; clock: Clock; tuning: Tuning };

type ErrorRecord = { code: ErrorCode; message: string; at: number };

class TimeoutError extends Error {}

/** Everything we can learn from a thrown SDK error (ApiException) or a network failure, without secrets. */
export function describeError(err: unknown, raw?: unknown): { status: number; details: HsErrorDetails } {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  const status = typeof e?.code === 'number' ? e.code : 0;
  const body = (raw && typeof raw === 'object' ? raw : e?.body && typeof e.body === 'object' ? e.body : {}) as Record<string, unknown>;
  const message = typeof body.message === 'string' ? body.message : err instanceof Error ? err.message : String(err);
  return {
    status,
    details: {
      status,
      category: typeof body.category === 'string' ? body.category : null,
      message: message.slice(0, 1000),
      context: body.context && typeof body.context === 'object' ? (body.context as Record<string, unknown>) : null,
      errors: Array.isArray(body.errors) ? body.errors : [],
      policyName: typeof body.policyName === 'string' ? body.policyName : null,
    },
  };
}

export const REINSTALL_HINT = 'open /oauth/hubspot/install to reinstall (or restart Tierline with the private app token) so Tierline provisions its properties again';

export function createClients(deps: ClientDeps) {
  const { env, store, secrets, logger, clock } = deps;
  const t = deps.tuning;
  const base = env.apiBaseUrl.replace(/\/+$/, '');
  const buckets = new Map<string, Bucket>();
  const clients = new Map<string, { token: string; client: Client }>();
  const tokens = new Map<string, { accessToken: string; expiresAt: number | null }>();
  const refreshing = new Map<string, Promise<string>>();
  const errors = new Map<string, ErrorRecord>();
  let lastError: (ErrorRecord & { portalId: string | null }) | null = null;
  let privatePortal: Promise<string> | null = null;
  /** Raw error bodies by response headers object: the SDK's error model drops policyName and errorType. */
  const rawBodies = new WeakMap<object, unknown>();

  function bucketOf(portalId: string): Bucket {
    let b = buckets.get(portalId);
    if (!b) buckets.set(portalId, (b = createBucket({ capacity: t.rateLimit, windowMs: t.rateWindowMs, now: t.now, sleep: t.sleep })));
    return b;
  }

  function sdk(token: string | undefined, bucket: Bucket | null): Client {
    return new Client({
      ...(token ? { accessToken: token } : {}),
      basePath: base,
      numberOfApiCallRetries: 0,
      middleware: [
        {
          pre: async (ctx: unknown) => {
            if (bucket) await bucket.take();
            return ctx;
          },
          post: async (ctx: unknown) => {
            const r = ctx as { httpStatusCode: number; headers: object; body: { text(): Promise<string> } };
            if (r.httpStatusCode >= 400) {
              try {
                rawBodies.set(r.headers, JSON.parse(await r.body.text()));
              } catch {
                // not JSON: the SDK's own error says what it can
              }
            }
            return ctx;
          },
        },
      ],
    });
  }

  function clientFor(portalId: string, token: string): Client {
    const cur = clients.get(portalId);
    if (cur && cur.token === token) return cur.client;
    const client = sdk(token, bucketOf(portalId));
    clients.set(portalId, { token, client });
    return client;
  }

  async function loadInstall(portalId: string): Promise<StoredInstall | null> {
    return store.kvGet<StoredInstall>(NS.installs, portalId);
  }

  async function installs(): Promise<StoredInstall[]> {
    return (await store.kvList<StoredInstall>(NS.installs)).map((r) => r.value).sort((a, b) => (a.portalId < b.portalId ? -1 : a.portalId > b.portalId ? 1 : 0));
  }

  async function saveInstall(i: StoredInstall): Promise<void> {
    await store.kvPut(NS.installs, i.portalId, i);
  }

  function noteError(portalId: string | null, e: AppError): void {
    const rec = { code: e.code, message: e.message, at: clock.now() };
    if (portalId) errors.set(portalId, rec);
    lastError = { ...rec, portalId };
  }

  function toAppError(err: unknown, action: string, portalId: string | null): AppError {
    if (err instanceof AppError) return err;
    const headers = (err as { headers?: unknown })?.headers;
    const raw = headers && typeof headers === 'object' ? rawBodies.get(headers) : undefined;
    const { status, details } = describeError(err, raw);
    const where = portalId ? ` in HubSpot portal ${portalId}` : ' at HubSpot';
    const msg = details.message;
    if (err instanceof TimeoutError) return new AppError('upstream', `HubSpot did not answer "${action}"${where} within ${Math.round(t.timeoutMs / 1000)} s; Tierline will try again.`, { details });
    if (status === 0) return new AppError('upstream', `HubSpot could not be reached for "${action}"${where} (${msg.slice(0, 200)}); check HUBSPOT_API_BASE_URL and the network. Tierline will try again.`, { details, cause: err });
    if (status === 401) return new AppError('auth_expired', `HubSpot rejected Tierline's access token for "${action}"${where} (401): ${REINSTALL_HINT.replace('so Tierline provisions its properties again', 'with a valid token')}.`, { details });
    if (status === 403) {
      const scopes = JSON.stringify(details.context?.requiredGranularScopes ?? details.context?.requiredScopes ?? '').slice(0, 200);
      return new AppError('misconfigured', `HubSpot refused "${action}"${where} (403: ${msg.slice(0, 200)}). The app lacks a scope${scopes && scopes !== '""' ? ` (${scopes})` : ''}: reinstall it granting the scopes listed in manifest.json.`, { details });
    }
    if (status === 409) return new AppError('conflict', `HubSpot reports a conflict for "${action}"${where} (409: ${msg.slice(0, 200)}).`, { details });
    if (status === 404) return new AppError('not_found', `HubSpot has no such record for "${action}"${where} (404: ${msg.slice(0, 200)}).`, { details });
    if (status === 429) return new AppError('rate_limited', `HubSpot's rate limit${where} was reached during "${action}" (${details.policyName ?? 'rate limit'}); Tierline waits and tries again.`, { details });
    if (status >= 500) return new AppError('upstream', `HubSpot failed "${action}"${where} (${status}: ${msg.slice(0, 200)}); Tierline will try again.`, { details });
    if (isMissingProperty(details)) return new AppError('misconfigured', `A Tierline property is missing${where} ("${action}": ${msg.slice(0, 300)}): ${REINSTALL_HINT}.`, { details });
    return new AppError('invalid_input', `HubSpot refused "${action}"${where} (${status}: ${msg.slice(0, 300)}).`, { details });
  }

  function withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new TimeoutError('timeout')), t.timeoutMs);
    });
    // The abandoned request settles on its own (the SDK takes no AbortSignal); nobody may see it reject unhandled.
    p.catch(() => undefined);
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  function retryAfterMs(err: unknown, details: HsErrorDetails): number {
    const headers = (err as { headers?: Record<string, string> })?.headers ?? {};
    const ra = Number(headers['retry-after']);
    if (Number.isFinite(ra) && ra >= 0) return Math.max(1000, ra * 1000);
    // TEN_SECONDLY_ROLLING and the burst policies reset within the window; the daily limit does not.
    if (details.policyName === 'DAILY') return 60 * 60_000;
    return t.rateWindowMs;
  }

  // ------------------------------------------------------------------ tokens

  async function discoverPrivatePortal(): Promise<string> {
    if (!env.accessToken) throw new AppError('misconfigured', 'HUBSPOT_ACCESS_TOKEN is not set.');
    const client = sdk(env.accessToken, null);
    let res: Response;
    try {
      res = await withTimeout(client.apiRequest({ method: 'GET', path: '/account-info/v3/details' }));
    } catch (err) {
      throw toAppError(err, 'read the account of HUBSPOT_ACCESS_TOKEN', null);
    }
    const body = (await res.json().catch(() => ({}))) as { portalId?: unknown; companyCurrency?: unknown; timeZone?: unknown; uiDomain?: unknown };
    if (res.status === 401) throw new AppError('auth_expired', 'HubSpot rejected HUBSPOT_ACCESS_TOKEN (401): copy the access token of the Tierline private app (Settings > Integrations > Private apps) into HUBSPOT_ACCESS_TOKEN and restart.');
    if (res.status === 403) throw new AppError('misconfigured', 'HUBSPOT_ACCESS_TOKEN may not read the account details (403): give the private app the scopes listed in manifest.json.');
    if (!res.ok || (typeof body.portalId !== 'number' && typeof body.portalId !== 'string')) throw new AppError('upstream', `HubSpot did not tell which portal HUBSPOT_ACCESS_TOKEN belongs to (${res.status}); Tierline will try again.`);
    const portalId = String(body.portalId);
    const prev = await loadInstall(portalId);
    // One private-app token serves one portal: records left by an earlier token (a sandbox restart) are dropped.
    for (const i of await installs()) if (i.flow === 'private_app' && i.portalId !== portalId) await store.kvDelete(NS.installs, i.portalId);
    await saveInstall({
      portalId,
      flow: 'private_app',
      hubDomain: typeof body.uiDomain === 'string' ? body.uiDomain : (prev?.hubDomain ?? null),
      currency: typeof body.companyCurrency === 'string' ? body.companyCurrency : null,
      timeZone: typeof body.timeZone === 'string' ? body.timeZone : null,
      scopes: [],
      appId: null,
      accessToken: null,
      refreshToken: null,
      expiresAt: null,
      installedAt: prev?.flow === 'private_app' ? prev.installedAt : clock.now(),
      refreshedAt: null,
      provisioned: prev?.flow === 'private_app' ? prev.provisioned : null,
    });
    tokens.set(portalId, { accessToken: env.accessToken, expiresAt: null });
    errors.delete(portalId);
    logger.info('hubspot private app connected', { portal: portalId });
    return portalId;
  }

  /** The portal HUBSPOT_ACCESS_TOKEN belongs to (asked once; asked again after a failure). */
  function privatePortalId(): Promise<string> {
    if (!privatePortal) {
      privatePortal = discoverPrivatePortal();
      privatePortal.catch((err: unknown) => {
        privatePortal = null;
        if (err instanceof AppError) noteError(null, err);
      });
    }
    return privatePortal;
  }

  async function refresh(portalId: string): Promise<string> {
    let p = refreshing.get(portalId);
    if (!p) {
      p = (async () => {
        const inst = await loadInstall(portalId);
        if (!inst || inst.flow !== 'oauth' || !inst.refreshToken) throw new AppError('auth_expired', `HubSpot portal ${portalId} has no refresh token: ${REINSTALL_HINT}.`);
        if (!env.clientId || !env.clientSecret) throw new AppError('misconfigured', `HubSpot portal ${portalId} was installed through OAuth, but HUBSPOT_CLIENT_ID / HUBSPOT_CLIENT_SECRET are not set, so its token cannot be refreshed.`);
        const oauth = sdk(undefined, null);
        let res: { accessToken: string; refreshToken?: string; expiresIn: number };
        try {
          res = await withTimeout(oauth.oauth.tokensApi.create('refresh_token', undefined, undefined, env.clientId, env.clientSecret, secrets.open(inst.refreshToken)));
        } catch (err) {
          const { status } = describeError(err);
          if (status >= 400 && status < 500) throw new AppError('auth_expired', `HubSpot refused to refresh the access token of portal ${portalId} (${status}): the app was uninstalled or its access revoked; ${REINSTALL_HINT}.`);
          throw toAppError(err, 'refresh the access token', portalId);
        }
        const cur = (await loadInstall(portalId)) ?? inst;
        const expiresAt = clock.now() + Math.max(60, Number(res.expiresIn) || 1800) * 1000;
        await saveInstall({ ...cur, accessToken: secrets.seal(res.accessToken), refreshToken: res.refreshToken ? secrets.seal(res.refreshToken) : cur.refreshToken, expiresAt, refreshedAt: clock.now() });
        tokens.set(portalId, { accessToken: res.accessToken, expiresAt });
        logger.info('hubspot access token refreshed', { portal: portalId });
        return res.accessToken;
      })().finally(() => refreshing.delete(portalId));
      refreshing.set(portalId, p);
    }
    return p;
  }

  async function accessToken(portalId: string): Promise<string> {
    const cached = tokens.get(portalId);
    if (cached && (cached.expiresAt === null || cached.expiresAt - clock.now() > t.refreshMarginMs)) return cached.accessToken;
    if (env.accessToken && !cached) {
      // The env token may belong to this portal and simply not be discovered yet.
      try {
        if ((await privatePortalId()) === portalId) return env.accessToken;
      } catch {
        // fall through to the stored OAuth install
      }
    }
    const inst = await loadInstall(portalId);
    if (!inst) throw new AppError('misconfigured', `HubSpot portal ${portalId} is not connected to Tierline: install the app at /oauth/hubspot/install (or set HUBSPOT_ACCESS_TOKEN to that portal's private app token).`);
    if (inst.flow === 'private_app') {
      if (!env.accessToken) throw new AppError('misconfigured', `HubSpot portal ${portalId} was connected with a private app token, but HUBSPOT_ACCESS_TOKEN is not set any more.`);
      return env.accessToken;
    }
    if (!inst.accessToken) return refresh(portalId);
    if (inst.expiresAt !== null && inst.expiresAt - clock.now() <= t.refreshMarginMs) return refresh(portalId);
    const token = secrets.open(inst.accessToken);
    tokens.set(portalId, { accessToken: token, expiresAt: inst.expiresAt });
    return token;
  }

  // ------------------------------------------------------------------ sessions

  function session(portalId: string): PortalSession {
    return {
      portalId,
      async install() {
        const i = await loadInstall(portalId);
        if (i) return i;
        await accessToken(portalId);
        const again = await loadInstall(portalId);
        if (!again) throw new AppError('misconfigured', `HubSpot portal ${portalId} is not connected to Tierline.`);
        return again;
      },
      async run<T>(action: string, fn: (client: Client) => Promise<T>, o: { idempotent?: boolean } = {}): Promise<T> {
        let refreshed = false;
        for (let attempt = 1; ; attempt++) {
          let e: AppError;
          try {
            const token = await accessToken(portalId);
            const result = await withTimeout(fn(clientFor(portalId, token)));
            errors.delete(portalId);
            return result;
          } catch (err) {
            e = toAppError(err, action, portalId);
            const d = e.details as HsErrorDetails | undefined;
            if (e.code === 'auth_expired' && d?.status === 401 && !refreshed) {
              const inst = await loadInstall(portalId);
              if (inst?.flow === 'oauth') {
                refreshed = true;
                tokens.delete(portalId);
                try {
                  await refresh(portalId);
                  continue;
                } catch (re) {
                  e = re instanceof AppError ? re : toAppError(re, 'refresh the access token', portalId);
                }
              } else if (inst?.flow === 'private_app' || env.accessToken) {
                e = new AppError('auth_expired', `HubSpot rejected HUBSPOT_ACCESS_TOKEN for portal ${portalId} (401) during "${action}": the private app token was rotated or deleted; set the current one and restart.`, { details: d });
              }
            } else if (e.code === 'rate_limited') {
              const wait = retryAfterMs(err, d ?? describeError(err).details);
              bucketOf(portalId).pause(wait);
              e = new AppError('rate_limited', e.message, { retryAfterMs: wait, details: d });
            } else if (e.code === 'upstream' && attempt < t.retryAttempts && o.idempotent !== false) {
              await t.sleep(Math.min(t.retryMaxMs, t.retryBaseMs * 2 ** (attempt - 1)));
              continue;
            }
          }
          if (e.code !== 'not_found' && e.code !== 'invalid_input' && e.code !== 'conflict') noteError(portalId, e);
          throw e;
        }
      },
    };
  }

  return {
    session,
    sdk,
    loadInstall,
    saveInstall,
    installs,
    privatePortalId,
    toAppError,
    noteError,
    withTimeout,
    forgetTokens(portalId: string) {
      tokens.delete(portalId);
      clients.delete(portalId);
    },
    headroom(portalId: string) {
      return bucketOf(portalId).headroom();
    },
    errors: () => new Map(errors),
    lastError: () => lastError,
  };
}

export type Clients = ReturnType<typeof createClients>;

export function isMissingProperty(d: HsErrorDetails): boolean {
  if (d.status !== 400) return false;
  const text = `${d.message} ${JSON.stringify(d.errors)}`;
  return /PROPERTY_DOESNT_EXIST|does not exist/i.test(text) && /propert/i.test(text);
}

/** Ids HubSpot names as missing in an OBJECT_NOT_FOUND error (batch endpoints put them in context.ids). */
export function missingIds(d: HsErrorDetails | null | undefined): string[] {
  if (!d || d.category !== 'OBJECT_NOT_FOUND') return [];
  const ids = d.context?.ids;
  return Array.isArray(ids) ? ids.map(String) : [];
}
