// The Salesforce connector: Outbound Messages (and optionally Change Data Capture) in, a fresh Case + Account read at
// routing time, the outcome written back onto the Case and as Routing_Event__c records. All Salesforce traffic goes
// through jsforce (client.ts); the server mounts `routes` and hands `crm` to the pipeline.
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { AppError } from '../../core/errors.ts';
import type { Clock, CrmIntakePort, CrmPort, Intake, IntakeEvent, Logger, Store } from '../../core/ports.ts';
import { createSalesforceIntake } from './intake.ts';
import { TicketRefSchema, type TicketRef } from '../../core/segment.ts';
import type { ConnectorHealth, ConnectorMappings, CrmConnector } from '../../server/contracts.ts';
import { versionedMappings } from '../shared/mapping-versions.ts';
import { reachAccounts } from '../shared/reach.ts';
import { storedMappingReader } from '../shared/stored-mapping.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { createCdcSubscription } from './cdc.ts';
import { createClients, DEFAULT_TUNING, NS, type SalesforceEnv, type Tuning } from './client.ts';
import { isSalesforceId, to18 } from './ids.ts';
import { SalesforceMappingSchema, type SalesforceMapping } from './mapping.ts';
import { caseUpdate, contextQuery, mapCaseRecord, routingEvent } from './mapper.ts';
import { deployForceApp, type DeployOutcome } from './metadata.ts';
import { createOAuth, installThroughOAuth } from './oauth.ts';
import { ACK_XML, faultXml, parseOutboundMessage } from './outbound-message.ts';
import { createWriter } from './writeback.ts';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET } from './sandbox/credentials.ts';
import { API_VERSION } from './schema.ts';

export type SalesforceConnectorOptions = {
  env: SalesforceEnv;
  mode: 'real' | 'sandbox';
  store: Store;
  secrets: SecretBox;
  logger: Logger;
  clock: Clock;
  intake: Intake;
  /** Retry, throttling and sleep settings (tests shorten the waits). */
  tuning?: Partial<Tuning>;
  /** How long the change-event subscription waits before resubscribing after a failure. */
  cdcRetryMs?: number;
};

export type SalesforceConnector = CrmConnector & {
  readonly id: 'salesforce';
  /** Deploys force-app/ into a connected org through the Metadata API (the `npm run salesforce:deploy` path). */
  deployMetadata(orgId: string, opts?: { checkOnly?: boolean }): Promise<DeployOutcome>;
  /** Orgs whose Outbound Messages are accepted. */
  allowedOrgs(): string[];
  /** For the Telegram intake bot: Contacts by email/phone/Telegram id, Cases it opens (connectors/salesforce/intake.ts). */
  readonly intake: CrmIntakePort;
};

const XML = { 'content-type': 'text/xml; charset=utf-8' };

export async function createSalesforceConnector(opts: SalesforceConnectorOptions): Promise<SalesforceConnector> {
  const { store, logger, clock, intake, mode } = opts;
  const tuning: Tuning = { ...DEFAULT_TUNING, ...opts.tuning };
  const env: SalesforceEnv = {
    ...opts.env,
    // With no credentials the connector talks to the sandbox as the sandbox's own connected app.
    clientId: opts.env.clientId ?? (mode === 'sandbox' ? SANDBOX_CLIENT_ID : undefined),
    clientSecret: opts.env.clientSecret ?? (mode === 'sandbox' ? SANDBOX_CLIENT_SECRET : undefined),
    loginUrl: opts.env.loginUrl.replace(/\/+$/, ''),
    publicUrl: opts.env.publicUrl.replace(/\/+$/, ''),
  };
  const badIds = env.orgIds.filter((o) => !isSalesforceId(o));
  if (badIds.length) throw new AppError('misconfigured', `SALESFORCE_ORG_IDS has entries that are not Salesforce org ids: ${badIds.join(', ')}. Use the 15- or 18-character id from Setup > Company Information.`);
  const allowed = new Set(env.orgIds.map(to18));

  let keyCache: string | null | undefined;
  let keyError: string | null = null;
  const privateKey = () => {
    if (keyCache !== undefined) return keyCache;
    if (!env.privateKeyFile) return (keyCache = null);
    try {
      keyCache = readFileSync(env.privateKeyFile, 'utf8');
    } catch (err) {
      keyError = `SALESFORCE_PRIVATE_KEY_FILE ${env.privateKeyFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); point it at the PEM private key of the connected app certificate.`;
      keyCache = null;
    }
    return keyCache;
  };

  const clients = createClients({ env, mode, store, secrets: opts.secrets, logger, clock, tuning, privateKey });

  // ------------------------------------------------------------------ mappings

  const mappingOf: (account: string) => Promise<SalesforceMapping> = storedMappingReader({
    store,
    ns: NS.mappings,
    schema: SalesforceMappingSchema,
    onInvalid: (account) => logger.warn('stored salesforce mapping is invalid; using the default', { org: account }),
  });

  const mappings: ConnectorMappings = versionedMappings({
    schema: SalesforceMappingSchema,
    get: async (account) => mappingOf(normaliseOrg(account)),
    async put(account, value) {
      const org = normaliseOrg(account);
      const p = SalesforceMappingSchema.safeParse(value);
      if (!p.success) {
        const i = p.error.issues[0]!;
        throw new AppError('invalid_input', `Salesforce mapping for org ${org}: ${i.path.join('.') || '(root)'}: ${i.message}`, { details: p.error.issues });
      }
      await store.kvPut(NS.mappings, org, p.data);
      await reconcileCdc(org);
      return p.data;
    },
    async accounts() {
      const orgs = new Set(allowed);
      for (const i of await clients.installs()) orgs.add(i.orgId);
      for (const m of await store.kvList(NS.mappings)) orgs.add(m.key);
      return [...orgs].sort();
    },
  }, { store, clock, ns: NS.mappingVersions, normalise: (a) => normaliseOrg(a) });

  function normaliseOrg(account: string): string {
    if (!isSalesforceId(account)) throw new AppError('invalid_input', `"${String(account).slice(0, 40)}" is not a Salesforce org id (15 or 18 characters, from Setup > Company Information).`);
    return to18(account);
  }

  // ------------------------------------------------------------------ CRM port

  function checkRef(ref: TicketRef): { org: string; caseId: string } {
    const p = TicketRefSchema.safeParse(ref);
    if (!p.success || p.data.crm !== 'salesforce' || !isSalesforceId(p.data.account) || !isSalesforceId(p.data.ticketId)) {
      throw new AppError('invalid_input', `Not a Salesforce ticket reference: ${JSON.stringify(ref).slice(0, 120)} (expected an org id and a Case id).`);
    }
    return { org: to18(p.data.account), caseId: to18(p.data.ticketId) };
  }

  const writers = new Map<string, ReturnType<typeof createWriter>>();
  const writerOf = (org: string) => {
    let w = writers.get(org);
    if (!w) writers.set(org, (w = createWriter(() => clients.session(org), org)));
    return w;
  };

  const crm: CrmPort = {
    crm: 'salesforce',
    async fetchContext(ref) {
      const { org, caseId } = checkRef(ref);
      const s = await clients.session(org);
      const mapping = await mappingOf(org);
      const soql = contextQuery(mapping, caseId);
      const res = await s.run('read', `read Case ${caseId}`, async (conn) => await conn.query(soql, { autoFetch: false, maxFetch: 1 }));
      const rec = (res as { records?: Record<string, unknown>[] }).records?.[0];
      if (!rec) throw new AppError('not_found', `Case ${caseId} no longer exists in Salesforce org ${org} (deleted or merged), or the Tierline user cannot see it; nothing to route.`);
      return mapCaseRecord(rec, { mapping, ref: { crm: 'salesforce', account: org, ticketId: caseId }, instanceUrl: s.instanceUrl() });
    },
    async writeBack(ref, update) {
      const { caseId, org } = checkRef(ref);
      await writerOf(org).write(caseUpdate(caseId, update.fields), routingEvent(caseId, update));
    },
  };

  // ------------------------------------------------------------------ routes

  const oauth = createOAuth({
    env,
    clients,
    store,
    clock,
    logger,
    allowedOrgs: () => allowed,
    onInstalled: async (org) => {
      await reconcileCdc(org);
    },
  });

  const routes = new Hono();
  routes.post('/webhooks/salesforce', async (c) => {
    const fault = (code: 'Client' | 'Server', message: string) => c.body(faultXml(code, message), 500, XML);
    const raw = await c.req.text();
    const parsed = parseOutboundMessage(raw);
    if (!parsed.ok) {
      logger.warn('salesforce outbound message refused', { reason: parsed.reason });
      return fault('Client', `Tierline refused this outbound message: ${parsed.reason}. Nothing was processed.`);
    }
    const m = parsed.message;
    if (!allowed.has(m.orgId)) {
      logger.warn('salesforce outbound message from an unknown org refused', { org: m.orgId });
      return fault('Client', `Organization ${m.orgId} is not configured in Tierline: add it to SALESFORCE_ORG_IDS. Nothing was processed.`);
    }
    const other = m.notifications.find((n) => n.objectType !== 'Case');
    if (other) return fault('Client', `Tierline routes Cases; this outbound message carries a ${other.objectType || 'record of unknown type'} (notification ${other.id}). Point the outbound message at Case. Nothing was processed.`);
    const events: IntakeEvent[] = m.notifications.map((n) => {
      const created = n.fields.CreatedDate ? Date.parse(n.fields.CreatedDate) : NaN;
      const modified = n.fields.LastModifiedDate ? Date.parse(n.fields.LastModifiedDate) : NaN;
      return {
        // Salesforce resends a notification with the same Notification Id until it gets our Ack.
        idempotencyKey: `salesforce:om:${m.orgId}:${n.id}`,
        ref: { crm: 'salesforce', account: m.orgId, ticketId: n.recordId },
        reason: Number.isFinite(created) && Number.isFinite(modified) && modified > created ? 'changed' : 'created',
        at: Number.isFinite(modified) ? modified : clock.now(),
      };
    });
    try {
      const r = await intake.accept(events);
      logger.info('salesforce outbound message accepted', { org: m.orgId, notifications: events.length, duplicates: r.duplicates });
    } catch (err) {
      logger.error('salesforce outbound message could not be stored', { org: m.orgId, error: err instanceof Error ? err.message : String(err) });
      return fault('Server', 'Tierline could not store the notifications right now; Salesforce will retry this message.');
    }
    return c.body(ACK_XML, 200, XML);
  });
  routes.route('/', oauth.routes);

  // ------------------------------------------------------------------ change events

  const cdc = new Map<string, ReturnType<typeof createCdcSubscription>>();
  const cdcErrors = new Map<string, string>();
  let started = false;

  async function reconcileCdc(org: string): Promise<void> {
    if (!started) return;
    const want = (await mappingOf(org)).changeEvents.enabled && !!(await clients.loadInstall(org));
    const cur = cdc.get(org);
    if (want && !cur) {
      const sub = createCdcSubscription({
        orgId: org,
        session: () => clients.session(org),
        mapping: () => mappingOf(org),
        intake,
        store,
        logger,
        clock,
        retryMs: opts.cdcRetryMs ?? 5_000,
        onError: (msg) => (msg ? cdcErrors.set(org, msg) : cdcErrors.delete(org)),
      });
      cdc.set(org, sub);
      await sub.start();
    } else if (!want && cur) {
      cdc.delete(org);
      await cur.stop();
    }
  }

  // ------------------------------------------------------------------ lifecycle and health

  async function deployMetadata(orgId: string, o: { checkOnly?: boolean } = {}): Promise<DeployOutcome> {
    const org = normaliseOrg(orgId);
    const s = await clients.session(org);
    const inst = await clients.loadInstall(org);
    const integrationUser = inst?.username ?? env.username;
    if (!integrationUser) throw new AppError('misconfigured', `The username Tierline is connected as in org ${org} is unknown; reinstall through /oauth/salesforce/install.`);
    return s.run('write', 'deploy the Tierline metadata', (conn) => deployForceApp(conn, { publicUrl: env.publicUrl, integrationUser, checkOnly: !!o.checkOnly }));
  }

  return {
    id: 'salesforce',
    mode,
    crm,
    routes,
    mappings,
    deployMetadata,
    allowedOrgs: () => [...allowed],
    intake: createSalesforceIntake({ session: (org) => clients.session(org) }),

    async start() {
      if (started) return;
      started = true;
      if (mode === 'sandbox') {
        for (const org of allowed) {
          // A sandbox lives as long as the process: an install from an earlier run points at a server that is gone,
          // and its change-event replay ids belong to that server's event log.
          const inst = await clients.loadInstall(org);
          if (inst && inst.instanceUrl === env.loginUrl) continue;
          if (inst) await store.kvDelete(NS.replay, org);
          await installThroughOAuth(routes, org);
        }
      } else if (env.username && env.privateKeyFile) {
        try {
          const org = await clients.connectJwt();
          if (!allowed.has(org)) logger.warn('the JWT user belongs to an org missing from SALESFORCE_ORG_IDS', { org });
        } catch (err) {
          logger.error('salesforce JWT login failed', { error: err instanceof Error ? err.message : String(err) });
          clients.noteError('jwt', err instanceof AppError ? { code: err.code, message: err.message } : { code: 'upstream', message: String(err) });
        }
      }
      for (const org of await mappings.accounts()) await reconcileCdc(org);
    },

    async stop() {
      started = false;
      const subs = [...cdc.values()];
      cdc.clear();
      await Promise.all(subs.map((s) => s.stop()));
    },

    async reach() {
      // The limits resource is the cheapest authenticated read, and its answer refreshes the API usage figures.
      const orgs = (await clients.installs()).map((i) => i.orgId);
      return reachAccounts(orgs, async (org) => (await clients.session(org)).run('read', 'check the connection', (conn) => conn.request(`/services/data/v${API_VERSION}/limits`)));
    },

    async health(): Promise<ConnectorHealth> {
      const installs = await clients.installs();
      const errors = clients.lastErrors();
      const orgs = installs.map((i) => {
        const u = clients.usage(i.orgId);
        const e = errors.get(i.orgId);
        return {
          orgId: i.orgId,
          instanceUrl: i.instanceUrl,
          flow: i.flow,
          accepted: allowed.has(i.orgId),
          apiUsage: u ? { used: u.used, max: u.max, percent: u.percent } : null,
          changeEvents: cdc.get(i.orgId)?.status() ?? { status: 'off', lastReplayId: null },
          lastError: e ? `${e.code}: ${e.message}` : (cdcErrors.get(i.orgId) ?? null),
        };
      });
      const worst = orgs.reduce<{ orgId: string; percent: number; used: number; max: number } | null>((w, o) => (o.apiUsage && (!w || o.apiUsage.percent > w.percent) ? { orgId: o.orgId, ...o.apiUsage } : w), null);
      const alert = worst && worst.percent >= tuning.alertAt * 100 ? `Salesforce org ${worst.orgId} has used ${worst.percent}% of its daily API allocation (${worst.used} of ${worst.max})${worst.percent >= tuning.reserveAt * 100 ? '; write-backs are on hold' : worst.percent >= tuning.slowAt * 100 ? '; Tierline is slowing down its calls' : ''}.` : null;
      const broken = [...errors.entries()].filter(([, e]) => e.code === 'auth_expired' || e.code === 'misconfigured');
      const lastErr = [...errors.values()].sort((a, b) => b.at - a.at)[0];
      const pending = [...allowed].filter((o) => !installs.some((i) => i.orgId === o));
      const detail = [
        installs.length ? `${installs.length} org${installs.length === 1 ? '' : 's'} connected${mode === 'sandbox' ? ' (sandbox)' : ''}` : `no org connected yet: open /oauth/salesforce/install`,
        pending.length && installs.length ? `${pending.length} listed in SALESFORCE_ORG_IDS not connected yet` : '',
        worst ? `API ${worst.percent}% used (org ${worst.orgId})` : '',
        keyError ?? '',
        broken.length ? `${broken.length} org${broken.length === 1 ? '' : 's'} need attention` : '',
      ]
        .filter(Boolean)
        .join('; ');
      return {
        ok: broken.length === 0 && !keyError,
        mode,
        detail,
        lastError: keyError ?? (lastErr ? `${lastErr.code}: ${lastErr.message}` : null),
        orgs,
        apiUsagePercent: worst?.percent ?? null,
        alert,
      };
    },
  };
}
