// All Salesforce traffic goes through here: one jsforce Connection per org, built from the install stored (encrypted)
// in the store; token refresh wired so a refreshed (or rotated) token is persisted; our own retry with backoff for
// REQUEST_LIMIT_EXCEEDED, 5xx and network faults (jsforce only retries idempotent verbs, and not on our schedule);
// Sforce-Limit-Info tracked per org, with calls slowed as the daily allocation runs out.
import { createSign } from 'node:crypto';
import jsforce, { type Connection } from 'jsforce';
import { AppError } from '../../core/errors.ts';
import type { Clock, Logger, Store } from '../../core/ports.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { classify, describeError, toAppError } from './errors.ts';
import { isSalesforceId, to18 } from './ids.ts';
import { DirectAwareTransport } from './proxy.ts';
import { API_VERSION } from './schema.ts';

export const NS = { installs: 'salesforce:installs', state: 'salesforce:oauth-state', replay: 'salesforce:replay', mappings: 'salesforce:mappings', mappingVersions: 'salesforce:mapping-versions' } as const;

export type SalesforceEnv = {
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  loginUrl: string;
  username?: string | undefined;
  privateKeyFile?: string | undefined;
  orgIds: string[];
  publicUrl: string;
};

export type Tuning = {
  /** Attempts per call for rate limits, 5xx and network faults (1 = no retry). */
  retryAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Share of the daily API allocation at which the console shows an alert. */
  alertAt: number;
  /** From here every call waits a little longer, up to maxThrottleMs. */
  slowAt: number;
  /** From here write-backs are held (rate_limited) so the rest of the allocation goes to routing reads. */
  reserveAt: number;
  maxThrottleMs: number;
  /** How long held write-backs wait before the pipeline tries again. */
  reserveRetryMs: number;
  sleep: (ms: number) => Promise<void>;
};

export const DEFAULT_TUNING: Tuning = {
  retryAttempts: 4,
  retryBaseMs: 500,
  retryMaxMs: 8_000,
  alertAt: 0.8,
  slowAt: 0.9,
  reserveAt: 0.98,
  maxThrottleMs: 2_000,
  reserveRetryMs: 15 * 60_000,
  sleep: (ms) => new Promise((ok) => setTimeout(ok, ms)),
};

/** What is stored per org (tokens sealed with SECRETS_KEY). */
export type StoredInstall = {
  orgId: string;
  instanceUrl: string;
  userId: string;
  username: string | null;
  flow: 'web_server' | 'jwt';
  loginUrl: string;
  accessToken: string;
  refreshToken: string | null;
  installedAt: number;
  refreshedAt: number | null;
};

export type TokenResponse = { access_token: string; refresh_token?: string; instance_url: string; id: string; issued_at?: string };

export type ApiUsage = { used: number; max: number; percent: number; at: number };

export type OrgSession = {
  orgId: string;
  conn: Connection;
  instanceUrl(): string;
  /** Runs fn with throttling, retries and error mapping; kind 'write' is held back when the allocation is nearly gone. */
  run<T>(kind: 'read' | 'write', action: string, fn: (conn: Connection) => Promise<T>): Promise<T>;
  /** Gets a new access token now (refresh token or a new JWT assertion) and persists it. */
  refresh(): Promise<void>;
};

export type ClientDeps = { env: SalesforceEnv; mode: 'real' | 'sandbox'; store: Store; secrets: SecretBox; logger: Logger; clock: Clock; tuning: Tuning; privateKey: () => string | null };

export function signJwtAssertion(o: { clientId: string; username: string; audience: string; privateKeyPem: string; nowMs: number }): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iss: o.clientId, sub: o.username, aud: o.audience, exp: Math.floor(o.nowMs / 1000) + 180 })}`;
  const sig = createSign('RSA-SHA256').update(body).sign(o.privateKeyPem).toString('base64url');
  return `${body}.${sig}`;
}

export const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The org and user a token belongs to, from the identity URL .../id/<org>/<user>. */
export function identityOf(idUrl: string): { orgId: string; userId: string } {
  const [orgId, userId] = idUrl.split('/').slice(-2);
  if (!isSalesforceId(orgId) || !isSalesforceId(userId)) throw new AppError('upstream', 'Salesforce returned a token without a valid identity URL; try the install again.');
  return { orgId: to18(orgId), userId: to18(userId) };
}

export function createClients(deps: ClientDeps) {
  const { store, secrets, logger, clock } = deps;
  const t = deps.tuning;
  const sessions = new Map<string, Promise<OrgSession>>();
  const usage = new Map<string, ApiUsage>();
  const alerted = new Set<string>();
  const lastError = new Map<string, { code: string; message: string; at: number }>();
  const transport = new DirectAwareTransport();

  const redirectUri = `${deps.env.publicUrl.replace(/\/+$/, '')}/oauth/salesforce/callback`;
  const oauth2Config = (loginUrl: string) => ({ clientId: deps.env.clientId, clientSecret: deps.env.clientSecret, redirectUri, loginUrl });

  /** A Connection whose HTTP goes through our transport (proxy rules, no hidden retries). */
  function connection(cfg: ConstructorParameters<typeof jsforce.Connection>[0]): Connection {
    const conn = new jsforce.Connection({ version: API_VERSION, ...cfg });
    conn._transport = transport;
    conn.oauth2._transport = transport;
    return conn;
  }

  async function loadInstall(orgId: string): Promise<StoredInstall | null> {
    return store.kvGet<StoredInstall>(NS.installs, orgId);
  }

  async function saveInstall(i: Omit<StoredInstall, 'accessToken' | 'refreshToken' | 'installedAt' | 'refreshedAt'> & { accessToken: string; refreshToken: string | null }): Promise<void> {
    const prev = await loadInstall(i.orgId);
    await store.kvPut(NS.installs, i.orgId, {
      ...i,
      accessToken: secrets.seal(i.accessToken),
      refreshToken: i.refreshToken ? secrets.seal(i.refreshToken) : (prev?.refreshToken ?? null),
      installedAt: clock.now(),
      refreshedAt: null,
    } satisfies StoredInstall);
    sessions.delete(i.orgId);
    lastError.delete(i.orgId);
    logger.info('salesforce org connected', { org: i.orgId, instanceUrl: i.instanceUrl, flow: i.flow });
  }

  async function persistRefresh(orgId: string, accessToken: string, res: Partial<TokenResponse> | undefined): Promise<void> {
    const cur = await loadInstall(orgId);
    if (!cur) return;
    await store.kvPut(NS.installs, orgId, {
      ...cur,
      accessToken: secrets.seal(accessToken),
      refreshToken: res?.refresh_token ? secrets.seal(res.refresh_token) : cur.refreshToken,
      instanceUrl: res?.instance_url ?? cur.instanceUrl,
      refreshedAt: clock.now(),
    } satisfies StoredInstall);
    logger.info('salesforce session refreshed', { org: orgId, rotated: !!res?.refresh_token });
  }

  /** JWT bearer: sign an assertion for SALESFORCE_USERNAME and exchange it for a token. */
  async function jwtToken(conn?: Connection): Promise<TokenResponse> {
    const key = deps.privateKey();
    if (!deps.env.clientId || !deps.env.username || !key) throw new AppError('misconfigured', 'The JWT bearer flow needs SALESFORCE_CLIENT_ID, SALESFORCE_USERNAME and a readable SALESFORCE_PRIVATE_KEY_FILE.');
    const assertion = signJwtAssertion({ clientId: deps.env.clientId, username: deps.env.username, audience: deps.env.loginUrl.replace(/\/+$/, ''), privateKeyPem: key, nowMs: clock.now() });
    const c = conn ?? connection({ oauth2: oauth2Config(deps.env.loginUrl), loginUrl: deps.env.loginUrl });
    try {
      return (await c.oauth2.requestToken({ grant_type: JWT_GRANT, assertion })) as unknown as TokenResponse;
    } catch (err) {
      const d = describeError(err);
      throw new AppError('auth_expired', `Salesforce refused the JWT bearer login for ${deps.env.username} (${d.code}: ${d.message}). Check that the connected app has the certificate of SALESFORCE_PRIVATE_KEY_FILE, the user is pre-authorized (admin approved users) and SALESFORCE_LOGIN_URL is the right login host.`, { cause: err });
    }
  }

  /** Logs in with the JWT flow and stores the install; returns the org id. */
  async function connectJwt(): Promise<string> {
    const tok = await jwtToken();
    const who = identityOf(tok.id);
    await saveInstall({ orgId: who.orgId, instanceUrl: tok.instance_url, userId: who.userId, username: deps.env.username ?? null, flow: 'jwt', loginUrl: deps.env.loginUrl, accessToken: tok.access_token, refreshToken: null });
    lastError.delete('jwt');
    return who.orgId;
  }

  function trackUsage(orgId: string, conn: Connection): void {
    const u = conn.limitInfo?.apiUsage;
    if (!u || !u.limit) return;
    const percent = u.used / u.limit;
    usage.set(orgId, { used: u.used, max: u.limit, percent: Math.round(percent * 1000) / 10, at: clock.now() });
    if (percent >= t.alertAt && !alerted.has(orgId)) {
      alerted.add(orgId);
      logger.warn('salesforce API allocation nearly used', { org: orgId, used: u.used, max: u.limit, percent: Math.round(percent * 100) });
    } else if (percent < t.alertAt) alerted.delete(orgId);
  }

  async function throttle(orgId: string, kind: 'read' | 'write', action: string): Promise<void> {
    const u = usage.get(orgId);
    if (!u) return;
    const p = u.used / u.max;
    if (p >= t.reserveAt && kind === 'write') {
      throw new AppError(
        'rate_limited',
        `Salesforce org ${orgId} has used ${u.percent}% of its daily API allocation (${u.used} of ${u.max}); Tierline holds write-backs (${action}) so the rest is left for routing reads. They resume as the 24-hour window frees up; raise the allocation or reduce other integrations' usage.`,
        { retryAfterMs: t.reserveRetryMs },
      );
    }
    if (p >= t.slowAt) await t.sleep(Math.round(t.maxThrottleMs * Math.min(1, (p - t.slowAt) / Math.max(0.001, t.reserveAt - t.slowAt))));
  }

  async function build(orgId: string): Promise<OrgSession> {
    let inst = await loadInstall(orgId);
    if (!inst && deps.env.username && deps.env.privateKeyFile && deps.mode === 'real') {
      const jwtOrg = await connectJwt();
      if (jwtOrg === orgId) inst = await loadInstall(orgId);
    }
    if (!inst) throw new AppError('misconfigured', `Salesforce org ${orgId} is not connected to Tierline: open /oauth/salesforce/install as an admin of that org${deps.env.username ? ', or check that SALESFORCE_USERNAME belongs to it' : ''}.`);
    const accessToken = secrets.open(inst.accessToken);
    const refreshToken = inst.refreshToken ? secrets.open(inst.refreshToken) : undefined;
    let conn!: Connection;
    const jwtRefresh = (c: Connection, cb: (err?: Error | null, accessToken?: string, res?: unknown) => void) => {
      jwtToken(c).then(
        (tok) => {
          c._establish({ instanceUrl: tok.instance_url, accessToken: tok.access_token });
          cb(null, tok.access_token, tok);
        },
        (err: Error) => cb(err),
      );
    };
    conn = connection({
      instanceUrl: inst.instanceUrl,
      accessToken,
      loginUrl: inst.loginUrl,
      oauth2: oauth2Config(inst.loginUrl),
      ...(inst.flow === 'jwt' ? { refreshFn: jwtRefresh as never } : refreshToken ? { refreshToken } : {}),
    });
    let persisting: Promise<void> = Promise.resolve();
    conn.on('refresh', (newToken: string, res: Partial<TokenResponse> | undefined) => {
      // Refresh token rotation: jsforce keeps the old refresh token unless told.
      if (res?.refresh_token) conn.refreshToken = res.refresh_token;
      persisting = persisting.then(() => persistRefresh(orgId, newToken, res)).catch((err) => logger.error('could not persist the refreshed salesforce token', { org: orgId, error: describeError(err).message }));
    });

    const session: OrgSession = {
      orgId,
      conn,
      instanceUrl: () => conn.instanceUrl,
      async run(kind, action, fn) {
        for (let attempt = 1; ; attempt++) {
          await throttle(orgId, kind, action);
          try {
            const r = await fn(conn);
            trackUsage(orgId, conn);
            await persisting;
            lastError.delete(orgId);
            return r;
          } catch (err) {
            trackUsage(orgId, conn);
            await persisting;
            if (err instanceof AppError) throw err;
            const d = describeError(err);
            const c = classify(d.code, d.message);
            if ((c.kind === 'rate_limited' || c.kind === 'transient') && attempt < t.retryAttempts) {
              const wait = Math.min(t.retryMaxMs, t.retryBaseMs * 2 ** (attempt - 1));
              logger.warn('salesforce call failed, retrying', { org: orgId, action, code: c.code, attempt, waitMs: wait });
              await t.sleep(Math.round(wait * (0.75 + Math.random() * 0.5)));
              continue;
            }
            const e = toAppError(c, { orgId, action }, err);
            // A missing record is about that record, not about the org's health.
            if (e.code !== 'not_found') lastError.set(orgId, { code: e.code, message: e.message, at: clock.now() });
            throw e;
          }
        }
      },
      async refresh() {
        const delegate = conn._refreshDelegate;
        if (!delegate) throw new AppError('auth_expired', `Salesforce org ${orgId} has no refresh token; reconnect it at /oauth/salesforce/install.`);
        try {
          await delegate.refresh(Date.now() + 1);
        } catch (err) {
          const e = toAppError(classify('INVALID_SESSION_ID', describeError(err).message), { orgId, action: 'refresh the session' }, err);
          lastError.set(orgId, { code: e.code, message: e.message, at: clock.now() });
          throw e;
        } finally {
          await persisting;
        }
      },
    };
    return session;
  }

  return {
    redirectUri,
    oauth2Config,
    connection,
    saveInstall,
    loadInstall,
    connectJwt,
    async session(orgId: string): Promise<OrgSession> {
      let s = sessions.get(orgId);
      if (!s) {
        s = build(orgId);
        sessions.set(orgId, s);
        s.catch(() => sessions.delete(orgId));
      }
      return s;
    },
    async installs(): Promise<Pick<StoredInstall, 'orgId' | 'instanceUrl' | 'flow' | 'username' | 'installedAt' | 'refreshedAt'>[]> {
      return (await store.kvList<StoredInstall>(NS.installs)).map(({ value: v }) => ({ orgId: v.orgId, instanceUrl: v.instanceUrl, flow: v.flow, username: v.username, installedAt: v.installedAt, refreshedAt: v.refreshedAt }));
    },
    usage: (orgId: string) => usage.get(orgId) ?? null,
    usages: () => new Map(usage),
    lastError: (orgId: string) => lastError.get(orgId) ?? null,
    lastErrors: () => new Map(lastError),
    noteError(orgId: string, e: { code: string; message: string } | null) {
      if (e) lastError.set(orgId, { ...e, at: clock.now() });
      else lastError.delete(orgId);
    },
  };
}

export type Clients = ReturnType<typeof createClients>;
