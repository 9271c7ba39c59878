import { describe, expect, it } from 'vitest';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createApp, MAX_BODY_BYTES } from '../../server/app.ts';
import { createConfigService } from '../../server/config-service.ts';
import { createRegistry } from '../../server/metrics.ts';
import { silentLogger } from '../../server/logger.ts';
import { parseRoutingConfig } from '../../core/config.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { harness } from '../pipeline/harness.ts';

const TOKEN = 'test-admin-token-0123456789';

async function setup() {
  const h = await harness(SAMPLE_CONFIG);
  const metrics = createRegistry();
  const cs = createConfigService(h.store, h.clock);
  const app = createApp({
    store: h.store,
    logger: silentLogger,
    metrics,
    pipeline: h.pipeline,
    adminToken: () => TOKEN,
    crmConnectors: [],
    health: [{ id: 'telegram', health: async () => ({ ok: true, mode: 'sandbox', detail: 'sandbox forum', lastError: null }) }],
    saveConfig: cs.save,
    rollbackConfig: cs.rollback,
    manifest: { id: 'tierline' },
  });
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  return { h, app, auth };
}

/** A PUT with a declared length, or chunked (no length: the size is only known while reading). */
function httpPut(url: string, headers: Record<string, string>, body: string, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(url, { method: 'PUT', headers: { ...headers, ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: text }));
    });
    // The server may answer 413 and close before the whole body is sent.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : fail(e)));
    if (chunked) for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
    else req.write(body);
    req.end();
  });
}

describe('HTTP surface', () => {
  it('the sample configuration is valid', () => {
    expect(() => parseRoutingConfig(SAMPLE_CONFIG)).not.toThrow();
  });

  it('health, readiness with per-connector mode, manifest and metrics', async () => {
    const { app } = await setup();
    expect(await (await app.request('/healthz')).json()).toEqual({ ok: true });
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, store: { ok: true }, connectors: { telegram: { ok: true, mode: 'sandbox' } } });
    expect(await (await app.request('/manifest.json')).json()).toEqual({ id: 'tierline' });
    const m = await (await app.request('/metrics')).text();
    expect(m).toMatch(/# TYPE tierline_http_request_seconds histogram/);
  });

  it('the admin API refuses a missing or wrong token with a JSON error', async () => {
    const { app } = await setup();
    const none = await app.request('/api/v1/config');
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/Authorization: Bearer/) } });
    const wrong = await app.request('/api/v1/config', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('rejects an invalid configuration naming each path, keeps the last good one, and rolls back', async () => {
    const { app, auth } = await setup();
    const cur = (await (await app.request('/api/v1/config', { headers: auth })).json()) as { version: number; config: { rules: { queue: string }[] } };
    expect(cur.version).toBe(1);
    const bad = structuredClone(cur.config);
    bad.rules[0]!.queue = 'nowhere';
    const r = await app.request('/api/v1/config', { method: 'PUT', headers: auth, body: JSON.stringify({ config: bad }) });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { code: string; details: { path: string; message: string }[] } };
    expect(body.error.code).toBe('invalid_config');
    expect(body.error.details).toContainEqual({ path: 'rules[0].queue', message: expect.stringMatching(/unknown queue "nowhere"/) });
    expect(((await (await app.request('/api/v1/config', { headers: auth })).json()) as { version: number }).version).toBe(1);

    const rules = structuredClone(cur.config.rules).slice(1);
    const ok = await app.request('/api/v1/rules', { method: 'PUT', headers: auth, body: JSON.stringify(rules) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { version: number }).version).toBe(2);
    const back = await app.request('/api/v1/config/rollback', { method: 'POST', headers: auth, body: JSON.stringify({ version: 1 }) });
    expect(((await back.json()) as { version: number; note: string }).note).toBe('rollback to version 1');
    const versions = (await (await app.request('/api/v1/config/versions', { headers: auth })).json()) as { version: number }[];
    expect(versions.map((v) => v.version)).toEqual([3, 2, 1]);
  });

  it('validates without saving', async () => {
    const { app, auth } = await setup();
    const r = await app.request('/api/v1/config/validate', { method: 'POST', headers: auth, body: JSON.stringify({ config: { rules: [], defaultQueue: 'x', queues: [], agents: [] } }) });
    const v = (await r.json()) as { valid: boolean; problems: { path: string }[] };
    expect(v.valid).toBe(false);
    expect(v.problems.map((p) => p.path)).toContain('queues');
  });

  it('bad bodies and queries get 400 naming the problem; unknown routes 404; big bodies 413', async () => {
    const { app, auth } = await setup();
    const notJson = await app.request('/api/v1/config', { method: 'PUT', headers: auth, body: '{nope' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toMatch(/must be JSON/);
    const q = await app.request('/api/v1/history?limit=100000', { headers: auth });
    expect(q.status).toBe(400);
    expect(((await q.json()) as { error: { message: string } }).error.message).toMatch(/^limit:/);
    const nf = await app.request('/nope');
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const big = await app.request('/api/v1/config', { method: 'PUT', headers: { ...auth, 'content-length': String(2 * 1024 * 1024) }, body: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('over a real socket: a declared length over 1 MB is refused unread, a chunked body is counted, small bodies are read', async () => {
    const { app, auth } = await setup();
    const server: ServerType = await new Promise((ok) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/config`;
    try {
      const declared = await httpPut(url, auth, 'x'.repeat(MAX_BODY_BYTES + 1), false);
      expect(declared.status).toBe(413);
      expect(JSON.parse(declared.body).error.code).toBe('payload_too_large');
      const chunked = await httpPut(url, auth, 'x'.repeat(MAX_BODY_BYTES + 1), true);
      expect(chunked.status).toBe(413);
      const small = await httpPut(url, auth, '{nope', false);
      expect(small.status).toBe(400);
      expect(JSON.parse(small.body).error.message).toMatch(/must be JSON/);
      const smallChunked = await httpPut(url, auth, '{nope', true);
      expect(smallChunked.status).toBe(400);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });

  it('routing history with explanations and filters, tickets, agent status and dead letters', async () => {
    const { h, app, auth } = await setup();
    const ent = h.crm.add('t1', { tier: 'enterprise' });
    const free = h.crm.add('t2', { tier: 'free', category: 'other', language: 'en' });
    await h.pipeline.intake.accept([
      { idempotencyKey: 'a', ref: ent, reason: 'created', at: h.clock.now() },
      { idempotencyKey: 'b', ref: free, reason: 'created', at: h.clock.now() },
      { idempotencyKey: 'c', ref: { crm: 'hubspot', account: '42', ticketId: 'deleted' }, reason: 'created', at: h.clock.now() },
    ]);
    await h.drain();
    const hist = (await (await app.request('/api/v1/history?tier=enterprise', { headers: auth })).json()) as { total: number; entries: { kind: string; explanation: string[] }[] };
    expect(hist.total).toBe(1);
    expect(hist.entries[0]!.explanation.join('\n')).toMatch(/Rule "enterprise" matched/);
    const t = (await (await app.request(`/api/v1/tickets/${encodeURIComponent('hubspot:42:t2')}`, { headers: auth })).json()) as { ticket: { queueId: string } };
    expect(t.ticket.queueId).toBe('general');
    const st = await app.request('/api/v1/agents/alice/status', { method: 'POST', headers: auth, body: JSON.stringify({ status: 'away' }) });
    expect(st.status).toBe(200);
    expect((await h.store.counters()).status.alice).toBe('away');
    const badStatus = await app.request('/api/v1/agents/alice/status', { method: 'POST', headers: auth, body: JSON.stringify({ status: 'asleep' }) });
    expect(badStatus.status).toBe(400);
    const dead = (await (await app.request('/api/v1/dead-letters', { headers: auth })).json()) as { id: string; lastError: string }[];
    expect(dead).toHaveLength(1);
    expect(dead[0]!.lastError).toMatch(/deleted/);
    const retry = await app.request(`/api/v1/dead-letters/${encodeURIComponent(dead[0]!.id)}/retry`, { method: 'POST', headers: auth });
    expect(retry.status).toBe(200);
    expect(await h.store.deadJobs()).toHaveLength(0);
  });

  it('serves an OpenAPI document generated from the schemas', async () => {
    const { app } = await setup();
    const doc = (await (await app.request('/api/v1/openapi.json')).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/config', '/api/v1/rules', '/api/v1/history', '/api/v1/dead-letters/{id}/retry', '/api/v1/mappings/{crm}/{account}']));
    expect(JSON.stringify(doc.paths['/api/v1/rules']!.put!.requestBody ?? {})).not.toBe('{}');
    // Bodies the handlers validate themselves are documented with the schemas they validate against.
    const bodyOf = (path: string, method: string) => JSON.stringify((doc.paths[path]![method]!.requestBody as { content: { 'application/json': { schema: unknown } } }).content['application/json'].schema);
    expect(bodyOf('/api/v1/rules', 'put')).toContain('"when"');
    expect(bodyOf('/api/v1/agents', 'put')).toContain('"capacity"');
    expect(bodyOf('/api/v1/config', 'put')).toContain('"queues"');
    expect(bodyOf('/api/v1/mappings/{crm}/{account}', 'put')).not.toBe('{}');
  });
});
