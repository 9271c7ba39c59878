// Hostile and malformed requests against the admin API and the service's own endpoints: every one gets a 4xx with
// a JSON error naming the problem, never a 5xx, and a rejected request changes nothing in the store.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { createConfigService } from '../../server/config-service.ts';
import { createRegistry } from '../../server/metrics.ts';
import { silentLogger } from '../../server/logger.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { harness } from '../pipeline/harness.ts';
import type { Store } from '../../core/ports.ts';

const TOKEN = 'fuzz-admin-token-0123456789';
export const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

async function snapshot(store: Store): Promise<string> {
  return JSON.stringify([await store.configVersions(), await store.counters(), await store.deadJobs(), await store.tickets(), await store.history({ limit: 1000 }), await store.pendingJobs()]);
}

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double(), fc.integer(), fc.string({ maxLength: 40 }), fc.array(tie('value'), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 12 }), tie('value'), { maxKeys: 6 })),
})).value;

/** Deep nesting, huge strings, prototype-pollution keys, wrong types for every known field. */
const hostile = fc.oneof(
  jsonValue,
  fc.integer({ min: 50, max: 3000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 1, max: 200 }).map((n) => JSON.stringify({ config: { rules: Array.from({ length: n }, (_, i) => ({ id: `r${i}`, when: [], queue: 'ghost' })), defaultQueue: 'x', queues: [], agents: [] } })),
  fc.constant('{"__proto__":{"polluted":true},"config":{"constructor":{"prototype":{"x":1}}}}'),
  fc.record({ config: fc.record({ rules: jsonValue, defaultQueue: jsonValue, queues: jsonValue, agents: jsonValue, tiering: jsonValue }, { requiredKeys: [] }), note: jsonValue }, { requiredKeys: [] }),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
);

const routes: { method: string; path: string }[] = [
  { method: 'PUT', path: '/api/v1/config' },
  { method: 'POST', path: '/api/v1/config/validate' },
  { method: 'POST', path: '/api/v1/config/rollback' },
  { method: 'PUT', path: '/api/v1/rules' },
  { method: 'PUT', path: '/api/v1/queues' },
  { method: 'PUT', path: '/api/v1/agents' },
  { method: 'PUT', path: '/api/v1/groups' },
  { method: 'PUT', path: '/api/v1/tiering' },
  { method: 'POST', path: '/api/v1/agents/alice/status' },
  { method: 'POST', path: '/api/v1/agents/nobody/status' },
  { method: 'POST', path: '/api/v1/dead-letters/nope/retry' },
  { method: 'GET', path: '/api/v1/history' },
  { method: 'GET', path: '/api/v1/tickets' },
  { method: 'GET', path: '/api/v1/tickets/nope' },
  { method: 'GET', path: '/api/v1/mappings/hubspot/1' },
];

describe('admin API under hostile input', () => {
  it(`${RUNS} malformed requests: 4xx JSON errors, no 5xx, a rejection never changes the store`, async () => {
    const h = await harness(SAMPLE_CONFIG);
    const cs = createConfigService(h.store, h.clock);
    const app = createApp({ store: h.store, logger: silentLogger, metrics: createRegistry(), pipeline: h.pipeline, adminToken: () => TOKEN, crmConnectors: [], health: [], saveConfig: cs.save, rollbackConfig: cs.rollback, manifest: {} });
    let tried = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), hostile, fc.dictionary(fc.constantFrom('limit', 'offset', 'tier', 'kind', 'from', 'to', 'open', 'queue', 'ticket'), fc.string({ maxLength: 30 }), { maxKeys: 4 }), fc.boolean(), async (route, body, query, authed) => {
        tried++;
        const qs = new URLSearchParams(query).toString();
        const raw = typeof body === 'string' ? body : JSON.stringify(body);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (authed) headers.authorization = `Bearer ${TOKEN}`;
        const snap = await snapshot(h.store);
        const res = await app.request(`${route.path}${qs ? `?${qs}` : ''}`, { method: route.method, headers, ...(route.method === 'GET' ? {} : { body: raw }) });
        if (res.status >= 200 && res.status < 300) return; // some random queries are simply valid reads
        expect(res.status, `${route.method} ${route.path} -> ${res.status}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        const j = (await res.json()) as { error: { code: string; message: string } };
        expect(j.error.code).toMatch(/^[a-z_]+$/);
        expect(j.error.message.length).toBeGreaterThan(10);
        expect(await snapshot(h.store), 'a rejected request changed the store').toBe(snap);
        rejected++;
      }),
      { numRuns: RUNS },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(rejected).toBeGreaterThan(tried * 0.8);
    console.log(`admin API fuzz: ${tried} requests, ${rejected} rejected with 4xx JSON, 0 server errors, store unchanged by every rejection`);
  }, 120_000);
});
