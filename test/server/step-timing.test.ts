// What an operator reads from /metrics about upstream trouble: failed calls per connector and error code, and the
// calls that came back rate limited, counted at the ports the pipeline calls; and how a ticket's time is split
// between waiting on upstreams and the service's own work (what the end-to-end benchmark reports).
import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import { createRegistry } from '../../server/metrics.ts';
import { createStepTiming } from '../../server/step-timing.ts';
import type { Job, Store } from '../../core/ports.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const step = (ticketKey: string): Job => ({ id: `topic:${ticketKey}`, kind: 'topic', ticketKey, payload: {}, attempts: 0, nextAt: 0, status: 'pending', lastError: null, leaseUntil: 0, createdAt: 0 });

describe('upstream calls in /metrics', () => {
  it('counts failed calls by connector and code, rate-limited ones as waits too, and not the calls that succeed', async () => {
    const metrics = createRegistry();
    const timing = createStepTiming(metrics);
    let calls = 0;
    const port = timing.upstream(
      {
        async read(fail: 'none' | 'limit' | 'down') {
          calls++;
          if (fail === 'limit') throw new AppError('rate_limited', 'HubSpot rate limit', { retryAfterMs: 1000 });
          if (fail === 'down') throw new Error('socket hang up');
          return 'ok';
        },
      },
      'hubspot',
    );
    expect(await port.read('none')).toBe('ok');
    await expect(port.read('limit')).rejects.toThrow('HubSpot rate limit');
    await expect(port.read('limit')).rejects.toThrow('HubSpot rate limit');
    await expect(port.read('down')).rejects.toThrow('socket hang up');
    expect(calls).toBe(4);
    const text = await metrics.render();
    expect(text).toContain('tierline_upstream_errors_total{code="rate_limited",connector="hubspot"} 2');
    expect(text).toContain('tierline_upstream_errors_total{code="upstream",connector="hubspot"} 1');
    expect(text).toContain('tierline_rate_limit_waits_total{connector="hubspot"} 2');
  });
});

describe("a ticket's own time and upstream time", () => {
  it("counts a connector's store work inside an upstream call as the service's own time, not as waiting on the upstream", async () => {
    const timing = createStepTiming(createRegistry());
    // A connector that records what it is about to send (40 ms of store work), then waits 40 ms on the network.
    const store = timing.connectorStore({ kvPut: () => sleep(40) } as unknown as Store);
    const messenger = timing.upstream(
      {
        async createTopic() {
          await store.kvPut('telegram:topics', 'r1', {});
          await sleep(40);
          return 7;
        },
      },
      'telegram',
    );
    await timing.observeStep(step('hubspot:1:1'), async () => void (await messenger.createTopic()));
    const t = timing.ticket('hubspot:1:1')!;
    expect(t.ownMs).toBeGreaterThanOrEqual(38);
    expect(t.upstreamMs).toBeGreaterThanOrEqual(38);
    // The store's 40 ms are not also counted as waiting (generous bound for a slow machine).
    expect(t.upstreamMs).toBeLessThan(t.ownMs + 38);
  });

  it('counts intake from the arrival of the request that carried the events, not from when they were handed over', async () => {
    const timing = createStepTiming(createRegistry());
    await timing.request(async () => {
      await sleep(30); // reading, verifying and mapping the webhook
      await timing.intake(['hubspot:1:2', 'hubspot:1:2'], () => sleep(5));
    });
    expect(timing.ticket('hubspot:1:2')!.intakeMs).toBeGreaterThanOrEqual(33);
  });
});
