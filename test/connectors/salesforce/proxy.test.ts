// Proxy variables set in the environment (a corporate proxy, or a dead one) must not break loopback use: jsforce on
// its own would send even 127.0.0.1 through https_proxy and ignore NO_PROXY, and faye (streaming) would too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DEAD_PROXY = 'http://127.0.0.1:9';
const saved = { https_proxy: process.env.https_proxy, http_proxy: process.env.http_proxy };
// Set before jsforce and faye are loaded in this (isolated) test process: they read the variables at import, so
// everything that imports them is imported dynamically below.
process.env.https_proxy = DEAD_PROXY;
process.env.http_proxy = DEAD_PROXY;
const { proxyFor } = await import('../../../connectors/salesforce/proxy.ts');

describe('proxyFor', () => {
  it.each([
    ['http://127.0.0.1:4000/x', { https_proxy: DEAD_PROXY, http_proxy: DEAD_PROXY }, undefined],
    ['http://localhost:4000/x', { http_proxy: DEAD_PROXY }, undefined],
    ['http://[::1]:4000/x', { http_proxy: DEAD_PROXY }, undefined],
    ['https://acme.my.salesforce.com/services', { https_proxy: 'http://proxy:3128' }, 'http://proxy:3128'],
    ['https://acme.my.salesforce.com/services', { HTTPS_PROXY: 'http://proxy:3128' }, 'http://proxy:3128'],
    ['https://acme.my.salesforce.com/services', { http_proxy: 'http://proxy:3128' }, 'http://proxy:3128'],
    ['http://internal.example/x', { https_proxy: 'http://proxy:3128' }, undefined],
    ['https://acme.my.salesforce.com/', { https_proxy: 'http://proxy:3128', no_proxy: '.salesforce.com' }, undefined],
    ['https://acme.my.salesforce.com/', { https_proxy: 'http://proxy:3128', NO_PROXY: 'example.org, salesforce.com' }, undefined],
    ['https://acme.my.salesforce.com/', { https_proxy: 'http://proxy:3128', no_proxy: 'salesforce.com:8443' }, 'http://proxy:3128'],
    ['https://acme.my.salesforce.com/', { https_proxy: 'http://proxy:3128', no_proxy: '*' }, undefined],
    ['https://acme.my.salesforce.com/', { https_proxy: '', http_proxy: '' }, undefined],
    ['https://acme.my.salesforce.com/', {}, undefined],
  ])('%s with %j -> %s', (url, env, want) => {
    expect(proxyFor(url, env)).toBe(want);
  });
});

describe('with https_proxy / http_proxy pointing at a dead proxy', () => {
  let h: Awaited<ReturnType<typeof import('./harness.ts').startHarness>>;
  beforeAll(async () => {
    const { startHarness } = await import('./harness.ts');
    h = await startHarness({ pipeline: true, sandbox: { cometdHoldMs: 200 } });
  });
  afterAll(async () => {
    await h?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('would break jsforce left to itself (the proxy variables are in effect)', async () => {
    const { default: jsforce } = await import('jsforce');
    const plain = new jsforce.Connection({ instanceUrl: h.sb.url, accessToken: h.sb.accessToken, version: '62.0' });
    await expect(plain.sobject('Account').create({ Name: 'Through the proxy' })).rejects.toThrow();
  });

  it('installs, routes, writes back and streams over loopback all the same', async () => {
    const c = await h.sb.createCase({ subject: 'Behind a proxy' });
    expect(c.delivery?.status).toBe('acked');
    await h.drain();
    expect(h.sb.routingEvents(c.id)).toHaveLength(1);

    await h.connector.mappings.put(h.sb.orgId, { changeEvents: { enabled: true } });
    expect((await h.connector.health()).orgs).toMatchObject([{ changeEvents: { status: 'subscribed' } }]);
    const d = await h.sb.createCase({ subject: 'Streamed behind a proxy', notify: false });
    const until = Date.now() + 8000;
    while (!h.accepted.some((e) => e.ref.ticketId === d.id && e.idempotencyKey.includes(':cdc:'))) {
      if (Date.now() > until) throw new Error('no change event arrived');
      await new Promise((ok) => setTimeout(ok, 10));
    }
  });
});
