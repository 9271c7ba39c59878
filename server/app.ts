// The HTTP surface: health, metrics, manifest, admin API, the connectors' routes and the console, with the cross-
// cutting rules (request ids, structured access logs, 1 MB body limit, JSON errors) applied once here.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { randomUUID } from 'node:crypto';
import type { Clock, Logger, Store } from '../core/ports.ts';
import type { Pipeline } from '../core/pipeline.ts';
import type { ConfigVersion } from '../core/ports.ts';
import { createAdminApi } from './admin-api.ts';
import type { CrmConnector } from './contracts.ts';
import { errorBody, errorResponse } from './http.ts';
import type { Registry } from './metrics.ts';
import { createReadiness, type ReadinessSource } from './readiness.ts';

export const MAX_BODY_BYTES = 1024 * 1024;


export type AppDeps = {
  store: Store;
  logger: Logger;
  metrics: Registry;
  pipeline: Pipeline;
  adminToken: () => string;
  crmConnectors: CrmConnector[];
  /** Every connector whose health /readyz reports (CRMs and Telegram); the CRMs are also called (see readiness.ts). */
  health: ReadinessSource[];
  /** How long /readyz reuses a CRM reachability result (default 30 s). */
  crmCheckMs?: number;
  saveConfig: (input: unknown, meta: { author: string; note: string }) => Promise<ConfigVersion>;
  rollbackConfig: (version: number, author: string) => Promise<ConfigVersion>;
  manifest: unknown;
  console?: Hono;
  /** Extra routes (the Telegram intake bot), under the same request ids, body limit and errors, before the console. */
  extra?: Hono;
  /** The service's clock; the admin API dates dead-letter retries with it (default: real time). */
  clock?: Clock;
  /** Runs the handling of a request that may carry webhook events (a POST), from its arrival (step timing). */
  aroundPost?: <T>(run: () => Promise<T>) => Promise<T>;
};

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const log = deps.logger;

  app.use('*', async (c, next) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 64).replace(/[^\w.-]/g, '') || randomUUID();
    c.set('requestId' as never, requestId as never);
    c.header('x-request-id', requestId);
    const started = performance.now();
    await (deps.aroundPost && c.req.method === 'POST' ? deps.aroundPost(next) : next());
    const ms = performance.now() - started;
    const route = c.req.routePath || 'unmatched';
    deps.metrics.observe('tierline_http_request_seconds', { route, status: String(c.res.status) }, ms / 1000);
    // The path only, never the query string: OAuth callbacks carry codes there.
    log.info('http', { requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(ms * 10) / 10 });
  });
  const tooLarge = (c: Context) => c.json(errorBody('payload_too_large', `Request bodies are limited to ${MAX_BODY_BYTES} bytes; HubSpot and Salesforce batches stay far below this, so check the sender.`), 413);
  const streamedLimit = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge });
  app.use('*', async (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    // A declared length is checked from the header alone (Node's parser never reads past it). Hono's bodyLimit would
    // build a web Request and stream around every body, the largest allocation per webhook at 500 events/s; it is kept
    // for chunked bodies, whose size is only known by counting while reading.
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) return Number(length) > MAX_BODY_BYTES ? tooLarge(c) : next();
    return streamedLimit(c, next);
  });
  app.onError((err, c) => {
    log.error('unhandled error', { requestId: c.get('requestId' as never), path: c.req.path, error: err instanceof Error ? err.message : String(err) });
    return errorResponse(c, err);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  const readiness = createReadiness({ store: deps.store, sources: deps.health, ...(deps.crmCheckMs !== undefined ? { crmCheckMs: deps.crmCheckMs } : {}) });
  app.get('/readyz', async (c) => {
    const report = await readiness.check();
    return c.json(report, report.ok ? 200 : 503);
  });
  app.get('/metrics', async (c) => c.text(await deps.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4' }));
  app.get('/manifest.json', (c) => c.json(deps.manifest));

  app.route(
    '/api/v1',
    createAdminApi({ store: deps.store, pipeline: deps.pipeline, adminToken: deps.adminToken, mappings: Object.fromEntries(deps.crmConnectors.map((x) => [x.id, x.mappings])), saveConfig: deps.saveConfig, rollbackConfig: deps.rollbackConfig, ...(deps.clock ? { clock: deps.clock } : {}) }),
  );
  for (const conn of deps.crmConnectors) app.route('/', conn.routes);
  if (deps.extra) app.route('/', deps.extra);
  if (deps.console) app.route('/', deps.console);
  app.notFound((c) => c.json(errorBody('not_found', `No route ${c.req.method} ${c.req.path}; the admin API is under /api/v1 (see /api/v1/openapi.json).`), 404));
  return app;
}
