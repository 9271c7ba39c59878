// What decisions read of the waiting lists must equal what a scan of the lists says: each queue's oldest waiting
// time (remembered between reads by the in-memory stores) and pages of the oldest tickets.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyCounterOps, emptyCounters, OldestWaiting, waitingPage } from '../../core/route.ts';
import type { CounterOp, WaitingTicket } from '../../core/ports.ts';

const queues = ['general', 'vip', 'billing'];
const op: fc.Arbitrary<CounterOp> = fc.oneof(
  fc.record({ op: fc.constant('wait' as const), queueId: fc.constantFrom(...queues), ticketKey: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), since: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ op: fc.constant('unwait' as const), queueId: fc.constantFrom(...queues), ticketKey: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f') }),
  fc.record({ op: fc.constant('load' as const), agentId: fc.constantFrom('ann', 'bob'), delta: fc.integer({ min: -1, max: 1 }) }),
);

describe('waiting lists as decisions read them', () => {
  it("each queue's oldest waiting time matches a scan after every change", () => {
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 4 }), { maxLength: 60 }), fc.array(fc.boolean(), { maxLength: 60 }), (batches, reads) => {
        const c = emptyCounters();
        const oldest = new OldestWaiting();
        batches.forEach((ops, i) => {
          oldest.apply(c, ops);
          // Reads come at random moments: a remembered value must survive changes made between reads.
          if (reads[i] === false) return;
          const want = Object.fromEntries(Object.entries(c.waiting).map(([q, w]) => [q, Math.min(...Object.values(w))]));
          expect(oldest.read(c).oldestWaiting).toEqual(want);
        });
      }),
      { numRuns: 3_000 },
    );
  });

  it('pages give every waiting ticket once, oldest first, ties by key then queue', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.subarray(queues, { minLength: 1 }), fc.integer({ min: 1, max: 5 }), (ops, qs, limit) => {
        const c = emptyCounters();
        applyCounterOps(c, ops);
        const want = qs
          .flatMap((queueId) => Object.entries(c.waiting[queueId] ?? {}).map(([key, since]) => ({ key, queueId, since })))
          .sort((a, b) => a.since - b.since || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) || (a.queueId < b.queueId ? -1 : 1));
        const got: WaitingTicket[] = [];
        let after: WaitingTicket | undefined;
        for (;;) {
          const page = waitingPage(c, qs, { limit, ...(after ? { after } : {}) });
          expect(page.length).toBeLessThanOrEqual(limit);
          if (!page.length) break;
          got.push(...page);
          after = page.at(-1);
        }
        expect(got).toEqual(want);
      }),
      { numRuns: 3_000 },
    );
  });
});
