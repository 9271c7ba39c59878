// The webhook body parser's fast path (no zod for well-formed batches) must agree with the schema exactly: whatever it
// accepts, the schema accepts with the same result, and malformed input always reaches the schema's named message.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseWebhookBody, wellFormedBatch, WebhookBatchSchema } from '../../../connectors/hubspot/webhook.ts';

const creation = { eventId: 1001, subscriptionId: 11, portalId: 4242, appId: 77, occurredAt: 1_764_000_000_000, subscriptionType: 'ticket.creation', attemptNumber: 0, objectId: 555, changeSource: 'CRM_UI' };
const change = { ...creation, eventId: '1002', subscriptionType: 'ticket.propertyChange', propertyName: 'subject', propertyValue: 'Printer on fire', sourceId: null, changeFlag: 'NEW' };

// Values of every kind a field might carry, well-formed or not.
const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer({ min: -5, max: 1_000_000 }),
  fc.constantFrom(0, 1.5, -1, Number.MAX_SAFE_INTEGER, 2 ** 60, 1e21),
  fc.constantFrom('', '7', '0012', '12345678901234567890', '123456789012345678901', '1e3', ' 5', 'ticket.creation', 'x'.repeat(21), 'y'.repeat(101), 'z'.repeat(201)),
  fc.string({ maxLength: 30 }),
  fc.constant([1]),
  fc.constant({ a: 1 }),
  fc.boolean(),
);
const FIELDS = ['eventId', 'subscriptionId', 'portalId', 'appId', 'occurredAt', 'subscriptionType', 'attemptNumber', 'objectId', 'objectTypeId', 'propertyName', 'propertyValue', 'changeSource', 'changeFlag', 'sourceId'] as const;
const event = fc.record(Object.fromEntries(FIELDS.map((f) => [f, anyValue])) as Record<(typeof FIELDS)[number], fc.Arbitrary<unknown>>, { requiredKeys: [] });
// Mostly well-formed events with one or two fields replaced, so both paths are exercised often.
const nearlyValid = fc.tuple(fc.constantFrom(creation, change), fc.subarray([...FIELDS], { maxLength: 2 }), fc.array(anyValue, { minLength: 2, maxLength: 2 })).map(([base, keys, values]) => {
  const e: Record<string, unknown> = { ...base };
  keys.forEach((k, i) => (values[i] === undefined ? delete e[k] : (e[k] = values[i])));
  return e;
});

describe('HubSpot webhook body parsing', () => {
  it('takes well-formed HubSpot batches without the schema, with the schema’s result', () => {
    const batch = [creation, change];
    const fast = wellFormedBatch(batch);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(WebhookBatchSchema.parse(batch));
    expect(fast![0]!.eventId).toBe('1001');
  });

  it('agrees with the schema on 20,000 generated events: anything the fast path accepts, the schema accepts alike', () => {
    let fastAccepted = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(nearlyValid, event), { minLength: 0, maxLength: 3 }), (batch) => {
        const fast = wellFormedBatch(batch);
        const schema = WebhookBatchSchema.safeParse(batch);
        if (fast) {
          fastAccepted++;
          expect(schema.success).toBe(true);
          expect(fast).toEqual(schema.data);
        }
        // Through the whole parser (JSON drops undefined fields): accepted exactly when the schema accepts.
        const sent = JSON.stringify(batch);
        expect(parseWebhookBody(sent).ok).toBe(WebhookBatchSchema.safeParse(JSON.parse(sent)).success);
      }),
      { numRuns: 20_000, seed: 20261206 },
    );
    // The generator reaches the fast path often enough for the comparison to mean something.
    expect(fastAccepted).toBeGreaterThan(1_000);
  });

  it('malformed events still get the schema’s message naming the event and field', () => {
    const r = parseWebhookBody(JSON.stringify([creation, { ...creation, portalId: 'abc' }]));
    expect(r).toEqual({ ok: false, message: expect.stringMatching(/^Malformed HubSpot webhook: event 1\.portalId: /) });
    expect(parseWebhookBody('[]')).toEqual({ ok: false, message: 'Malformed HubSpot webhook: the batch: the batch is empty.' });
  });
});
