// The HubSpot connector: signed webhooks and the "Route to Telegram" workflow action in, a fresh read of the ticket,
// its company and contact at routing time, the outcome written back as properties on the ticket and company plus a
// note on the timeline, and the record card's data. All HubSpot traffic goes through @hubspot/api-client
// (client.ts); the server mounts `routes` and hands `crm` to the pipeline.
import { Hono, type Context } from 'hono';
import { AppError } from '../../core/errors.ts';
import type { Clock, CrmIntakePort, CrmPort, HistoryEntry, Intake, Logger, Store } from '../../core/ports.ts';
import { TicketRefSchema, ticketKey, type TicketRef } from '../../core/segment.ts';
import type { ConnectorHealth, ConnectorMappings, CrmConnector } from '../../server/contracts.ts';
import { versionedMappings } from '../shared/mapping-versions.ts';
import { reachAccounts } from '../shared/reach.ts';
import { storedMappingReader } from '../shared/stored-mapping.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { cardData } from './card.ts';
import { createClients, DEFAULT_TUNING, NS, type HubspotEnv, type StoredInstall, type Tuning } from './client.ts';
import { createHubspotIntake } from './intake.ts';
import { provisionPortal, type ProvisionReport } from './install.ts';
import { HubspotMappingSchema, watchedTicketProperties, type HubspotMapping } from './mapping.ts';
import { companyProperties, mapTicket, noteBody, ticketProperties } from './mapper.ts';
import { createOAuth } from './oauth.ts';
import { createReader } from './reader.ts';
import { createStageStates } from './stages.ts';
import { DEFINITIONS_VERSION } from './properties.ts';
import { candidateUris, verifySignature } from './signature.ts';
import { parseWebhookBody, selectEvents } from './webhook.ts';
import { createCallbacks, parseActionBody } from './workflow-action.ts';
import { createWriter, type NoteRecord } from './writeback.ts';

export type { HubspotEnv, Tuning } from './client.ts';
export type { HubspotMapping } from './mapping.ts';

export type HubspotConnectorOptions = {
  env: HubspotEnv;
  mode: 'real' | 'sandbox';
  store: Store;
  secrets: SecretBox;
  logger: Logger;
  clock: Clock;
  intake: Intake;
  /** Limiter, retry, timeout and sleep settings (tests make the waits instant). */
  tuning?: Partial<Tuning>;
};

export type HubspotConnector = CrmConnector & {
  readonly id: 'hubspot';
  /** Creates (idempotently) the Tierline property group and properties in a connected portal. */
  provision(portalId: string): Promise<ProvisionReport>;
  /** Portals with an install (private app token or OAuth). */
  portals(): Promise<string[]>;
  /** For the Telegram intake bot: contacts by email/phone/Telegram id, tickets it opens (connectors/hubspot/intake.ts). */
  readonly intake: CrmIntakePort;
};

const PORTAL = /^\d{1,20}$/;
const RECORD = /^\d{1,30}$/;

export async function createHubspotConnector(opts: HubspotConnectorOptions): Promise<HubspotConnector> {
  const { store, logger, clock, intake, mode } = opts;
  const tuning: Tuning = { ...DEFAULT_TUNING, ...opts.tuning };
  const env: HubspotEnv = { ...opts.env, apiBaseUrl: (opts.env.apiBaseUrl || 'https://api.hubapi.com').replace(/\/+$/, ''), publicUrl: opts.env.publicUrl.replace(/\/+$/, '') };
  const clients = createClients({ env, store, secrets: opts.secrets, logger, clock, tuning });
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.catch((err: unknown) => logger.error('hubspot background task failed', { error: err instanceof Error ? err.message : String(err) })).finally(() => background.delete(q));
    background.add(q);
  };

  // ------------------------------------------------------------------ mappings

  const mappingOf: (account: string) => Promise<HubspotMapping> = storedMappingReader({
    store,
    ns: NS.mappings,
    schema: HubspotMappingSchema,
    onInvalid: (account) => logger.warn('stored hubspot mapping is invalid; using the default', { portal: account }),
  });

  function normalisePortal(account: string): string {
    const a = String(account ?? '').trim();
    if (!PORTAL.test(a)) throw new AppError('invalid_input', `"${a.slice(0, 40)}" is not a HubSpot portal id (the account number shown under your account name in HubSpot).`);
    return a;
  }

  const mappings: ConnectorMappings = versionedMappings({
    schema: HubspotMappingSchema,
    get: async (account) => mappingOf(normalisePortal(account)),
    async put(account, value) {
      const portal = normalisePortal(account);
      const p = HubspotMappingSchema.safeParse(value);
      if (!p.success) {
        const i = p.error.issues[0]!;
        throw new AppError('invalid_input', `HubSpot mapping for portal ${portal}: ${i.path.join('.') || '(root)'}: ${i.message}`, { details: p.error.issues });
      }
      await store.kvPut(NS.mappings, portal, p.data);
      return p.data;
    },
    async accounts() {
      const ids = new Set((await clients.installs()).map((i) => i.portalId));
      for (const m of await store.kvList(NS.mappings)) ids.add(m.key);
      return [...ids].sort();
    },
  }, { store, clock, ns: NS.mappingVersions, normalise: normalisePortal });

  // ------------------------------------------------------------------ provisioning

  async function provision(portalId: string): Promise<ProvisionReport> {
    const portal = normalisePortal(portalId);
    const report = await provisionPortal(clients.session(portal), logger);
    const inst = await clients.loadInstall(portal);
    if (inst) await clients.saveInstall({ ...inst, provisioned: { version: DEFINITIONS_VERSION, at: clock.now() } });
    return report;
  }

  // ------------------------------------------------------------------ CRM port

  function checkRef(ref: TicketRef): { portal: string; ticketId: string } {
    const p = TicketRefSchema.safeParse(ref);
    if (!p.success || p.data.crm !== 'hubspot' || !PORTAL.test(p.data.account) || !RECORD.test(p.data.ticketId)) {
      throw new AppError('invalid_input', `Not a HubSpot ticket reference: ${JSON.stringify(ref).slice(0, 120)} (expected a portal id and a numeric ticket id).`);
    }
    return { portal: p.data.account, ticketId: p.data.ticketId };
  }

  const readers = new Map<string, ReturnType<typeof createReader>>();
  const readerOf = (portal: string) => {
    let r = readers.get(portal);
    if (!r) readers.set(portal, (r = createReader({ portalId: portal, session: () => clients.session(portal), mapping: () => mappingOf(portal) })));
    return r;
  };

  const writers = new Map<string, ReturnType<typeof createWriter>>();
  const writerOf = (portal: string) => {
    let w = writers.get(portal);
    if (!w) writers.set(portal, (w = createWriter({ session: () => clients.session(portal), portalId: portal, store, logger, clock })));
    return w;
  };
  const callbacks = createCallbacks({ store, clock, logger, session: (p) => clients.session(p) });
  const stages = createStageStates({ session: (p) => clients.session(p), clock, logger });

  const crm: CrmPort = {
    crm: 'hubspot',
    async fetchContext(ref) {
      const { portal, ticketId } = checkRef(ref);
      const { bundle, mapping } = await readerOf(portal).read(ticketId);
      const inst = await clients.session(portal).install();
      const ctx = mapTicket(bundle, { mapping, ref: { crm: 'hubspot', account: portal, ticketId }, currency: mapping.currency ?? inst.currency ?? 'USD' });
      const { hs_pipeline: pipeline, hs_pipeline_stage: stage } = bundle.ticket.properties;
      // "0" is the id of every portal's default ticket pipeline.
      if (stage && (await stages.isClosed(portal, pipeline || '0', stage))) ctx.closedInCrm = true;
      return ctx;
    },

    async writeBack(ref, update) {
      const { portal, ticketId } = checkRef(ref);
      const e = update.entry;
      const stored = update.history ?? (await store.history({ ticketKey: e.ticketKey, limit: 10_000 })).entries;
      const history: HistoryEntry[] = stored.some((x) => x.key === e.key) ? stored : [...stored, e];
      await writerOf(portal).write({
        ticketId,
        companyId: update.companyId && RECORD.test(update.companyId) ? update.companyId : null,
        ticketProperties: ticketProperties(update.fields, history),
        companyProperties: companyProperties(update.fields),
        entryKey: e.key,
        note: { body: noteBody(update), timestamp: new Date(e.at).toISOString() },
        firstRun: update.firstRun,
      });
      if (e.kind === 'routed' || e.kind === 'assigned') {
        await callbacks.complete(e.ticketKey, { queue: update.fields.queue, agent: update.fields.agent ?? '', topic_link: update.fields.topicLink ?? '' });
      }
    },

    async reserveWriteBack(ref, entryKey) {
      const { portal, ticketId } = checkRef(ref);
      return writerOf(portal).reserve(ticketId, entryKey);
    },

    async notRouted(ref) {
      checkRef(ref);
      await callbacks.complete(ticketKey(ref), { queue: '', agent: '', topic_link: '' }, 'FAIL_CONTINUE');
    },
  };

  // ------------------------------------------------------------------ routes

  const err = (c: Context, status: 400 | 401 | 403 | 404 | 503, code: string, message: string) => c.json({ error: { code, message } }, status);
  const secretMissing = (c: Context) => err(c, 503, 'misconfigured', 'HUBSPOT_CLIENT_SECRET is not set, so Tierline cannot verify that requests come from HubSpot and refuses them. Set it to the client secret of the Tierline app.');

  function verify(c: Context, raw: string, allowV2: boolean): string | null {
    const v = verifySignature(env.clientSecret!, { method: c.req.method, uris: candidateUris(env.publicUrl, c.req.url), body: raw, headers: { get: (n) => c.req.header(n) } }, clock.now(), { allowV2 });
    return v.ok ? null : v.reason;
  }

  /**
   * Portals whose requests Tierline takes: the installed ones. Null while none is known (the private app token has not
   * been checked yet, e.g. HubSpot was down at start), so the caller asks HubSpot to retry instead of dropping events.
   */
  async function connectedPortals(): Promise<Set<string> | null> {
    const list = await clients.installs();
    return list.length ? new Set(list.map((i) => i.portalId)) : null;
  }
  const noPortalYet = (c: Context) => err(c, 503, 'misconfigured', 'No HubSpot portal is connected to Tierline yet (the private app token could not be checked, or no OAuth install has finished); HubSpot will retry. See /readyz for the connection error.');

  const oauth = createOAuth({ env, clients, store, secrets: opts.secrets, clock, logger, provision });
  const routes = new Hono();

  routes.post('/webhooks/hubspot', async (c) => {
    if (!env.clientSecret) return secretMissing(c);
    const raw = await c.req.text();
    const bad = verify(c, raw, false);
    if (bad) {
      logger.warn('hubspot webhook refused', { reason: bad });
      return err(c, 401, 'unauthorized', `HubSpot signature check failed: ${bad}. Nothing was processed.`);
    }
    const parsed = parseWebhookBody(raw);
    if (!parsed.ok) return err(c, 400, 'invalid_input', `${parsed.message} Nothing was processed.`);
    // Events of a portal that is not connected are never taken in: Tierline holds no tokens there, and a correctly
    // signed event from another installation of the same app must not start routing work here.
    const known = await connectedPortals();
    if (!known) return noPortalYet(c);
    const foreign = parsed.events.filter((e) => !known.has(e.portalId));
    if (foreign.length) logger.warn('hubspot webhook events of portals not connected to Tierline ignored', { portals: [...new Set(foreign.map((e) => e.portalId))].slice(0, 10), events: foreign.length });
    const ours = parsed.events.filter((e) => known.has(e.portalId));
    const portals = [...new Set(ours.map((e) => e.portalId))];
    const watched = new Map<string, Set<string> | null>();
    for (const p of portals) {
      const m = await mappingOf(p);
      watched.set(p, m.webhooks.propertyChange ? new Set(watchedTicketProperties(m)) : null);
    }
    const sel = selectEvents(ours, { appId: env.appId ?? null, watched: (p) => watched.get(p) ?? null });
    let accepted = 0;
    let duplicates = 0;
    if (sel.events.length) {
      try {
        ({ accepted, duplicates } = await intake.accept(sel.events));
      } catch (e) {
        logger.error('hubspot webhook could not be stored', { error: e instanceof Error ? e.message : String(e) });
        return err(c, 503, 'upstream', 'Tierline could not store the events right now; HubSpot will retry this delivery.');
      }
    }
    logger.info('hubspot webhook accepted', { events: parsed.events.length, accepted, duplicates, ignored: sel.ignored.length });
    return c.json({ accepted, duplicates, ignored: sel.ignored.length + foreign.length }, 200);
  });

  routes.post('/hubspot/actions/route', async (c) => {
    if (!env.clientSecret) return secretMissing(c);
    const raw = await c.req.text();
    const bad = verify(c, raw, true);
    if (bad) {
      logger.warn('hubspot workflow action refused', { reason: bad });
      return err(c, 401, 'unauthorized', `HubSpot signature check failed: ${bad}. Nothing was processed.`);
    }
    const parsed = parseActionBody(raw);
    if (!parsed.ok) return err(c, 400, 'invalid_input', `${parsed.message} Nothing was processed.`);
    const r = parsed.request;
    const type = r.object.objectType.toUpperCase();
    if (type !== 'TICKET' && type !== '0-5') return err(c, 400, 'invalid_input', `"Route to Telegram" routes tickets; this workflow enrolled a ${r.object.objectType.slice(0, 40)}. Use the action in a ticket-based workflow.`);
    const known = await connectedPortals();
    if (!known) return noPortalYet(c);
    if (!known.has(r.origin.portalId)) {
      logger.warn('hubspot workflow action of a portal not connected to Tierline refused', { portal: r.origin.portalId });
      return err(c, 403, 'unauthorized', `Portal ${r.origin.portalId} is not connected to Tierline, so its workflows cannot route tickets here. Install the app in that portal (/oauth/hubspot/install) first. Nothing was processed.`);
    }
    const ref: TicketRef = { crm: 'hubspot', account: r.origin.portalId, ticketId: r.object.objectId };
    const key = ticketKey(ref);
    try {
      // Remembered before the intake, so the write-back that follows always finds the callback to complete.
      await callbacks.remember(key, { callbackId: r.callbackId, portalId: ref.account, ticketId: ref.ticketId, at: clock.now() });
      await intake.accept([{ idempotencyKey: `hubspot:wa:${r.callbackId}`, ref, reason: 'workflow', at: clock.now() }]);
    } catch (e) {
      logger.error('hubspot workflow action could not be stored', { error: e instanceof Error ? e.message : String(e) });
      return err(c, 503, 'upstream', 'Tierline could not store the request right now; HubSpot will retry it.');
    }
    // Routed (and written back) before this workflow ran: no write-back will come to complete it, so do it now.
    const written = await store.kvGet<NoteRecord>(NS.notes, `${key}#1`);
    const t = written?.status === 'done' ? await store.getTicket(key) : null;
    if (t?.routedAt) {
      const cfg = (await store.getConfig())?.config;
      const queue = t.queueId ? (cfg?.queues.find((q) => q.id === t.queueId)?.name ?? t.queueId) : '';
      const agent = t.agentId ? (cfg?.agents.find((a) => a.id === t.agentId)?.name ?? t.agentId) : '';
      track(callbacks.complete(key, { queue, agent, topic_link: t.topic?.link ?? '' }));
    }
    return c.json({ outputFields: { hs_execution_state: 'BLOCK' } }, 200);
  });

  routes.get('/hubspot/card', async (c) => {
    if (!env.clientSecret) return secretMissing(c);
    const bad = verify(c, '', false);
    if (bad) {
      logger.warn('hubspot card request refused', { reason: bad });
      return err(c, 401, 'unauthorized', `HubSpot signature check failed: ${bad}.`);
    }
    const portalId = c.req.query('portalId') ?? '';
    const rawType = (c.req.query('objectType') ?? '').toLowerCase();
    const objectType = rawType === 'ticket' || rawType === 'tickets' || rawType === '0-5' ? 'ticket' : rawType === 'company' || rawType === 'companies' || rawType === '0-2' ? 'company' : null;
    const objectId = c.req.query('objectId') ?? '';
    if (!PORTAL.test(portalId)) return err(c, 400, 'invalid_input', 'portalId is missing: the card must call this URL through hubspot.fetch(), which adds it.');
    if (!objectType) return err(c, 400, 'invalid_input', 'objectType must be ticket or company.');
    if (!RECORD.test(objectId)) return err(c, 400, 'invalid_input', 'objectId must be the numeric id of the record.');
    return c.json(await cardData(store, clock, { portalId, objectType, objectId }), 200);
  });

  routes.route('/', oauth.routes);

  // ------------------------------------------------------------------ lifecycle and health

  let started = false;

  async function connectPrivate(): Promise<void> {
    try {
      const portal = await clients.privatePortalId();
      const inst = await clients.loadInstall(portal);
      // Provisioned again on every start: cheap, idempotent, and a sandbox portal is new after each restart.
      if (inst) await provision(portal);
    } catch (e) {
      const ae = e instanceof AppError ? e : new AppError('upstream', e instanceof Error ? e.message : String(e));
      clients.noteError(null, ae);
      logger.error('hubspot private app connection failed', { error: `${ae.code}: ${ae.message}` });
    }
  }

  async function upgradeOAuthInstalls(): Promise<void> {
    for (const i of await clients.installs()) {
      if (i.flow !== 'oauth' || i.provisioned?.version === DEFINITIONS_VERSION) continue;
      try {
        await provision(i.portalId);
      } catch (e) {
        logger.error('hubspot properties could not be provisioned', { portal: i.portalId, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  return {
    id: 'hubspot',
    mode,
    crm,
    routes,
    mappings,
    provision,
    portals: async () => (await clients.installs()).map((i) => i.portalId),
    intake: createHubspotIntake({ session: (portal) => clients.session(portal), logger }),

    async start() {
      if (started) return;
      started = true;
      if (env.accessToken) await connectPrivate();
      track(upgradeOAuthInstalls());
    },

    async stop() {
      started = false;
      while (background.size) await Promise.all([...background]);
    },

    async reach() {
      // The account details are the cheapest authenticated read; they go through the portal's rate limiter.
      const portals = (await clients.installs()).map((i) => i.portalId);
      return reachAccounts(portals, (portal) =>
        clients.session(portal).run('check the connection', async (client) => {
          const res = await client.apiRequest({ method: 'GET', path: '/account-info/v3/details' });
          // Shaped like the SDK's ApiException, so the session maps it as any other call (401 refreshes, 429 waits).
          if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { code: res.status, body: await res.json().catch(() => ({})) });
        }, { idempotent: false }), // one attempt: readiness tells how HubSpot answers now, the next probe asks again
      );
    },

    async health(): Promise<ConnectorHealth> {
      const installs: StoredInstall[] = await clients.installs();
      const errors = clients.errors();
      const portals = installs.map((i) => {
        const e = errors.get(i.portalId);
        const h = clients.headroom(i.portalId);
        return {
          portalId: i.portalId,
          flow: i.flow,
          hubDomain: i.hubDomain,
          provisioned: i.provisioned?.version === DEFINITIONS_VERSION,
          limiter: h,
          lastError: e ? `${e.code}: ${e.message}` : null,
        };
      });
      const broken = portals.filter((p) => /^(auth_expired|misconfigured)/.test(p.lastError ?? ''));
      const last = clients.lastError();
      const privateFailed = !!env.accessToken && !installs.some((i) => i.flow === 'private_app');
      const headroom = portals.length ? Math.min(...portals.map((p) => p.limiter.available / p.limiter.capacity)) : 1;
      const detail = [
        portals.length ? `${portals.length} portal${portals.length === 1 ? '' : 's'} installed${mode === 'sandbox' ? ' (sandbox)' : ''}` : env.clientId ? 'no portal installed yet: open /oauth/hubspot/install' : 'no portal connected',
        privateFailed ? 'HUBSPOT_ACCESS_TOKEN could not be used (see last error)' : '',
        portals.some((p) => !p.provisioned) ? `${portals.filter((p) => !p.provisioned).length} without the Tierline properties` : '',
        broken.length ? `${broken.length} portal${broken.length === 1 ? ' needs' : 's need'} attention` : '',
        portals.length ? `rate limit headroom ${Math.round(headroom * 100)}%` : '',
      ]
        .filter(Boolean)
        .join('; ');
      return {
        ok: broken.length === 0 && !privateFailed && (portals.length > 0 || !!env.clientId),
        mode,
        detail,
        lastError: last ? `${last.code}: ${last.message}` : null,
        portals,
        limiterHeadroom: Math.round(headroom * 100) / 100,
      };
    },
  };
}
