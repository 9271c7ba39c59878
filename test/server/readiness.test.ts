// /readyz's reachability checks: reused while fresh so a load balancer's probes cost no CRM allowance, a failure
// re-checked within seconds, a hung CRM reported as unreachable instead of hanging the probe.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Reachability } from '../../server/contracts.ts';
import { createReadiness } from '../../server/readiness.ts';
import { createMemoryStore } from '../../server/storage/memory-store.ts';

const healthy = async () => ({ ok: true, mode: 'sandbox' as const, detail: 'ok', lastError: null });

afterEach(() => vi.useRealTimers());

function crm(answers: (() => Promise<Reachability>)[]) {
  let calls = 0;
  return {
    calls: () => calls,
    source: { id: 'hubspot', health: healthy, reach: () => answers[Math.min(calls++, answers.length - 1)]!() },
  };
}

describe('readiness', () => {
  it('reuses a good answer for crmCheckMs and re-checks a failed one after 5 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const up: Reachability = { ok: true, accounts: [{ account: '42', ok: true, ms: 3, error: null }] };
    const down: Reachability = { ok: false, accounts: [{ account: '42', ok: false, ms: 3, error: 'upstream: HubSpot failed (503)' }] };
    const c = crm([async () => up, async () => down, async () => down, async () => up]);
    const r = createReadiness({ store: createMemoryStore(), sources: [c.source], crmCheckMs: 30_000 });

    expect((await r.check()).ok).toBe(true);
    vi.setSystemTime(1_029_000);
    expect((await r.check()).ok).toBe(true);
    expect(c.calls()).toBe(1);

    vi.setSystemTime(1_030_000);
    const failed = await r.check();
    expect(failed).toMatchObject({ ok: false, connectors: { hubspot: { ok: false, reachable: { ok: false, checkedAt: 1_030_000, accounts: [{ account: '42', error: expect.stringMatching(/503/) }] } } } });
    vi.setSystemTime(1_034_000);
    expect((await r.check()).ok).toBe(false);
    expect(c.calls()).toBe(2);
    vi.setSystemTime(1_035_000);
    expect((await r.check()).ok).toBe(false);
    vi.setSystemTime(1_040_000);
    expect((await r.check()).ok).toBe(true);
    expect(c.calls()).toBe(4);
  });

  it('a CRM that does not answer is reported unreachable after the timeout; concurrent probes share one call', async () => {
    const c = crm([() => new Promise<Reachability>(() => undefined)]);
    const r = createReadiness({ store: createMemoryStore(), sources: [c.source], timeoutMs: 50 });
    const [a, b] = await Promise.all([r.check(), r.check()]);
    expect(a).toMatchObject({ ok: false, connectors: { hubspot: { ok: false, reachable: { ok: false, error: 'no answer within 0.05 s' } } } });
    expect(b.ok).toBe(false);
    expect(c.calls()).toBe(1);
  });
});
