// What an operator reads from /metrics about upstream trouble: failed calls per connector and error code, and the
// calls that came back rate limited, counted at the ports the pipeline calls.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import { createRegistry } from '../../server/metrics.ts';
import { createStepTiming } from '../../server/step-timing.ts';

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
