// The burst benchmark's promises on a smaller burst (the full 600 runs in `npm run bench`). Simulated clock: the
// figures are deterministic, not timings.
import { expect, it } from 'vitest';
import { benchTelegramBurst } from './bench.ts';

it('drains a burst over three groups with nothing lost, no flood error reaching a ticket and enterprise first', async () => {
  const f = await benchTelegramBurst({ tickets: 120, floodWaitSeconds: 10 });
  expect(f).toMatchObject({ tickets: 120, lost: 0, floodErrorsReachingTickets: 0, enterpriseBeforeFree: true });
  expect(f.floodWaitsAbsorbed).toBeGreaterThan(0);
  expect(f.drainOverIdealPct).toBeLessThan(10);
});
