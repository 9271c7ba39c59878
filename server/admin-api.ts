// The admin API under /api/v1. Each route is declared once with its zod schemas; the same declarations validate
// requests and generate /api/v1/openapi.json, so the document cannot drift from the behaviour.
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AgentSchema, AgentStatusSchema, GroupSchema, QueueSchema, RoutingConfigSchema, RuleSchema, TieringSchema, parseRoutingConfig, ConfigError } from '../core/config.ts';
import { AppError } from '../core/errors.ts';
import { HISTORY_KINDS, type Clock, type ConfigVersion, type Store } from '../core/ports.ts';
import { TIERS } from '../core/segment.ts';
import type { Pipeline } from '../core/pipeline.ts';
import type { ConnectorMappings } from './contracts.ts';
import { errorBody, errorResponse, requireAdmin } from './http.ts';

export type AdminDeps = {
  store: Store;
  pipeline: Pipeline;
  adminToken: () => string;
  mappings: Record<string, ConnectorMappings>;
  saveConfig: (input: unknown, meta: { author: string; note: string }) => Promise<ConfigVersion>;
  rollbackConfig: (version: number, author: string) => Promise<ConfigVersion>;
  /** The service's clock (a retried dead letter is due at its now, the same time line the pipeline claims on). */
  clock?: Clock;
};

type Method = 'get' | 'put' | 'post';
type RouteDef = {
  method: Method;
  path: string; // hono syntax: /config/:section
  summary: string;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** What the document shows for a body the handler validates itself (with the same schema, and cross-checks). */
  documentedBody?: z.ZodType;
  response?: z.ZodType;
  handler: (c: Context, input: { query: Record<string, unknown>; body: unknown }) => Promise<Response>;
};

const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });
const VersionSchema = z.object({ version: z.number().int(), savedAt: z.number(), author: z.string(), note: z.string(), config: RoutingConfigSchema });
const SaveBody = z.object({ config: z.unknown(), note: z.string().max(500).default('') });
const SECTIONS = { rules: z.array(RuleSchema), queues: z.array(QueueSchema), agents: z.array(AgentSchema), groups: z.array(GroupSchema), tiering: TieringSchema } as const;
type Section = keyof typeof SECTIONS;
const num = () => z.coerce.number().int().min(0);
const HistoryQuerySchema = z.object({
  ticket: z.string().max(300).optional(),
  company: z.string().max(100).optional(),
  tier: z.enum([...TIERS, 'unknown']).optional(),
  queue: z.string().max(63).optional(),
  agent: z.string().max(63).optional(),
  kind: z.enum(HISTORY_KINDS).optional(),
  from: num().optional(),
  to: num().optional(),
  offset: num().max(10_000_000).default(0),
  limit: num().min(1).max(500).default(50),
});

export function createAdminApi(deps: AdminDeps): Hono {
  const { store, pipeline } = deps;
  const author = (c: Context) => `api:${c.req.header('x-tierline-user')?.slice(0, 60) ?? 'admin'}`;
  const current = async () => {
    const v = await store.getConfig();
    if (!v) throw new AppError('not_found', 'No configuration saved yet; PUT /api/v1/config with rules, queues, agents and groups.');
    return v;
  };

  // A mapping body is checked by its connector's schema (which one depends on the :crm in the path).
  const mappingSchemas = Object.values(deps.mappings).map((m) => m.schema);
  const routes: RouteDef[] = [
    {
      method: 'get',
      path: '/config',
      summary: 'The routing configuration in force, with its version',
      response: VersionSchema,
      handler: async (c) => c.json(await current()),
    },
    {
      method: 'put',
      path: '/config',
      summary: 'Replace the whole routing configuration (validated; the previous version is kept for rollback)',
      body: SaveBody,
      documentedBody: SaveBody.extend({ config: RoutingConfigSchema }),
      response: VersionSchema,
      handler: async (c, { body }) => {
        const b = body as z.output<typeof SaveBody>;
        return c.json(await deps.saveConfig(b.config, { author: author(c), note: b.note }));
      },
    },
    {
      method: 'post',
      path: '/config/validate',
      summary: 'Check a configuration without saving it; lists every problem with its path',
      body: z.object({ config: z.unknown() }),
      documentedBody: z.object({ config: RoutingConfigSchema }),
      response: z.object({ valid: z.boolean(), problems: z.array(z.object({ path: z.string(), message: z.string() })) }),
      handler: async (c, { body }) => {
        try {
          parseRoutingConfig((body as { config: unknown }).config);
          return c.json({ valid: true, problems: [] });
        } catch (e) {
          if (e instanceof ConfigError) return c.json({ valid: false, problems: e.problems });
          throw e;
        }
      },
    },
    {
      method: 'get',
      path: '/config/versions',
      summary: 'Saved configuration versions, newest first',
      response: z.array(VersionSchema.omit({ config: true })),
      handler: async (c) => c.json((await store.configVersions()).map(({ config: _c, ...rest }) => rest)),
    },
    {
      method: 'post',
      path: '/config/rollback',
      summary: 'Make an earlier version current again (saved as a new version)',
      body: z.object({ version: z.number().int().positive() }),
      response: VersionSchema,
      handler: async (c, { body }) => c.json(await deps.rollbackConfig((body as { version: number }).version, author(c))),
    },
    ...(Object.keys(SECTIONS) as Section[]).flatMap((section): RouteDef[] => [
      {
        method: 'get',
        path: `/${section}`,
        summary: `The ${section} in force`,
        response: SECTIONS[section],
        handler: async (c) => c.json((await current()).config[section]),
      },
      {
        method: 'put',
        path: `/${section}`,
        summary: `Replace the ${section} (the whole configuration is re-validated)`,
        body: z.unknown(),
        documentedBody: SECTIONS[section],
        response: VersionSchema,
        handler: async (c, { body }) => {
          const v = await current();
          return c.json(await deps.saveConfig({ ...v.config, [section]: body }, { author: author(c), note: `replaced ${section}` }));
        },
      },
    ]),
    {
      method: 'get',
      path: '/mappings',
      summary: 'CRM accounts with a field mapping, per connector',
      response: z.record(z.string(), z.array(z.string())),
      handler: async (c) => c.json(Object.fromEntries(await Promise.all(Object.entries(deps.mappings).map(async ([k, m]) => [k, await m.accounts()] as const)))),
    },
    {
      method: 'get',
      path: '/mappings/:crm/:account',
      summary: 'The field mapping in force for a HubSpot portal or Salesforce org',
      handler: async (c) => c.json(await mappingOf(param(c, 'crm')).get(param(c, 'account'))),
    },
    {
      method: 'put',
      path: '/mappings/:crm/:account',
      summary: 'Replace the field mapping of a HubSpot portal or Salesforce org',
      body: z.unknown(),
      ...(mappingSchemas.length ? { documentedBody: mappingSchemas.length === 1 ? mappingSchemas[0]! : z.union(mappingSchemas as [z.ZodType, z.ZodType, ...z.ZodType[]]) } : {}),
      handler: async (c, { body }) => c.json(await mappingOf(param(c, 'crm')).put(param(c, 'account'), body, { author: author(c), note: c.req.header('x-tierline-note')?.slice(0, 200) ?? '' })),
    },
    {
      method: 'get',
      path: '/mappings/:crm/:account/versions',
      summary: 'Saved versions of a field mapping, newest first (version 0 is the one in force before the first change)',
      response: z.array(z.object({ version: z.number().int(), savedAt: z.number(), author: z.string(), note: z.string() })),
      handler: async (c) => c.json(await mappingOf(param(c, 'crm')).versions(param(c, 'account'))),
    },
    {
      method: 'post',
      path: '/mappings/:crm/:account/rollback',
      summary: 'Make an earlier version of a field mapping current again (saved as a new version)',
      body: z.object({ version: z.number().int().min(0) }),
      handler: async (c, { body }) => c.json(await mappingOf(param(c, 'crm')).rollback(param(c, 'account'), (body as { version: number }).version, author(c))),
    },
    {
      method: 'get',
      path: '/history',
      summary: 'Routing history with explanations, newest first; filter by ticket, company, tier, queue, agent, kind and time (ms)',
      query: HistoryQuerySchema,
      handler: async (c, { query }) => {
        const q = query as z.output<typeof HistoryQuerySchema>;
        const r = await store.history({ ticketKey: q.ticket, companyId: q.company, tier: q.tier, queueId: q.queue, agentId: q.agent, kind: q.kind, from: q.from, to: q.to, offset: q.offset, limit: q.limit });
        return c.json({ total: r.total, offset: q.offset, limit: q.limit, entries: r.entries });
      },
    },
    {
      method: 'get',
      path: '/tickets',
      summary: 'Open tickets (or all known, with open=false), with their current outcome',
      query: z.object({ open: z.enum(['true', 'false']).default('true'), queue: z.string().max(63).optional(), agent: z.string().max(63).optional() }),
      handler: async (c, { query }) => {
        const q = query as { open: string; queue?: string; agent?: string };
        const filter: Parameters<Store['tickets']>[0] = { open: q.open === 'true' };
        if (q.queue) filter.queueId = q.queue;
        if (q.agent) filter.agentId = q.agent;
        return c.json(await store.tickets(filter));
      },
    },
    {
      method: 'get',
      path: '/tickets/:key',
      summary: 'One ticket (key crm:account:id) with its explanation and full history',
      handler: async (c) => {
        const key = param(c, 'key');
        const t = await store.getTicket(key);
        if (!t) throw new AppError('not_found', `No ticket "${key}"; keys look like hubspot:<portal>:<ticketId> or salesforce:<orgId>:<caseId>.`);
        const h = await store.history({ ticketKey: key, limit: 500 });
        return c.json({ ticket: t, history: h.entries });
      },
    },
    {
      method: 'post',
      path: '/agents/:id/status',
      summary: 'Set an agent available, away or offline (offline moves their unanswered tickets)',
      body: z.object({ status: AgentStatusSchema }),
      handler: async (c, { body }) => {
        const id = param(c, 'id');
        const router = await pipeline.currentRouter();
        if (!router.agent(id)) throw new AppError('not_found', `No agent "${id}" in the configuration.`);
        await pipeline.setAgentStatus(id, (body as { status: z.infer<typeof AgentStatusSchema> }).status, 'admin');
        return c.json({ agent: id, status: (body as { status: string }).status });
      },
    },
    {
      method: 'get',
      path: '/dead-letters',
      summary: 'Steps that kept failing, with their last error',
      handler: async (c) => c.json(await store.deadJobs()),
    },
    {
      method: 'post',
      path: '/dead-letters/:id/retry',
      summary: 'Queue a dead letter to run again',
      handler: async (c) => {
        const ok = await store.retryDeadJob(param(c, 'id'), (deps.clock ?? { now: () => Date.now() }).now());
        if (!ok) throw new AppError('not_found', `No dead letter "${param(c, 'id')}"; list them with GET /api/v1/dead-letters.`);
        return c.json({ retried: true });
      },
    },
  ];

  function mappingOf(crm: string): ConnectorMappings {
    const m = deps.mappings[crm];
    if (!m) throw new AppError('not_found', `No connector "${crm}"; use one of: ${Object.keys(deps.mappings).join(', ') || '(none configured)'}.`);
    return m;
  }

  const api = new Hono();
  api.get('/openapi.json', (c) => c.json(openApi(routes)));
  api.use('*', requireAdmin(deps.adminToken));
  for (const r of routes) {
    api[r.method](r.path, async (c) => {
      try {
        let body: unknown;
        if (r.body) {
          let raw: unknown;
          try {
            raw = await c.req.json();
          } catch {
            return c.json(errorBody('invalid_input', 'The request body must be JSON (Content-Type: application/json).'), 400);
          }
          const parsed = r.body.safeParse(raw);
          if (!parsed.success) return c.json(errorBody('invalid_input', describe(parsed.error), parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))), 400);
          body = parsed.data;
        }
        let query: Record<string, unknown> = {};
        if (r.query) {
          const parsed = r.query.safeParse(c.req.query());
          if (!parsed.success) return c.json(errorBody('invalid_input', describe(parsed.error)), 400);
          query = parsed.data as Record<string, unknown>;
        }
        return await r.handler(c, { query, body });
      } catch (err) {
        return errorResponse(c, err);
      }
    });
  }
  return api;
}

function param(c: Context, name: string): string {
  return c.req.param(name) ?? '';
}

function describe(e: z.ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

function toSchema(s: z.ZodType, io: 'input' | 'output'): unknown {
  try {
    return z.toJSONSchema(s, { io, unrepresentable: 'any' });
  } catch {
    return {};
  }
}

function openApi(routes: RouteDef[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = `/api/v1${r.path.replace(/:([a-z]+)/gi, '{$1}')}`;
    const params = [...r.path.matchAll(/:([a-z]+)/gi)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) for (const [name, s] of Object.entries(r.query.shape)) params.push({ name, in: 'query', required: !(s as z.ZodType).safeParse(undefined).success, schema: toSchema(s as z.ZodType, 'input') as never });
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      security: [{ bearer: [] }],
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(r.documentedBody ?? r.body, 'input') } } } } : {}),
      responses: {
        200: { description: 'OK', content: { 'application/json': { schema: r.response ? toSchema(r.response, 'output') : {} } } },
        400: { description: 'Invalid input: the message names the field and the fix', content: { 'application/json': { schema: toSchema(ErrorSchema, 'output') } } },
        401: { description: 'Missing or wrong admin token', content: { 'application/json': { schema: toSchema(ErrorSchema, 'output') } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tierline admin API', version: '1', description: 'Routing configuration, history, agents and dead letters. Authenticate with "Authorization: Bearer <ADMIN_TOKEN>".' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
