// Our signature check against HubSpot's own: Signature.isValid from @hubspot/api-client is the oracle for v3 and v2
// on valid and tampered requests (it is not timing-safe; ours is, and must agree with it on every verdict).
import { Signature } from '@hubspot/api-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { candidateUris, MAX_SIGNATURE_AGE_MS, normaliseUri, signV2, signV3, verifySignature } from '../../../connectors/hubspot/signature.ts';

const SECRET = 'app-client-secret-1234';
const URI = 'https://tierline.example.com/webhooks/hubspot';

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });

function ours(o: { method: string; uri: string; body: string; sig: string; ts?: number; version: 'v2' | 'v3' }, now = Date.now()) {
  const h: Record<string, string> = o.version === 'v3' ? { 'x-hubspot-signature-v3': o.sig, 'x-hubspot-request-timestamp': String(o.ts) } : { 'x-hubspot-signature': o.sig, 'x-hubspot-signature-version': 'v2' };
  return verifySignature(SECRET, { method: o.method, uris: [o.uri], body: o.body, headers: headers(h) }, now, { allowV2: true }).ok;
}

function oracle(o: { method: string; uri: string; body: string; sig: string; ts?: number; version: 'v2' | 'v3' }) {
  try {
    return Signature.isValid({ signatureVersion: o.version, method: o.method, url: o.uri, requestBody: o.body, clientSecret: SECRET, signature: o.sig, ...(o.ts !== undefined ? { timestamp: o.ts } : {}) });
  } catch {
    return false; // the oracle throws on a stale v3 timestamp
  }
}

describe('HubSpot signatures agree with Signature.isValid', () => {
  it('v3: valid, tampered body, wrong secret, other URI, stale timestamp', () => {
    const body = JSON.stringify([{ eventId: 1, subscriptionId: 2, portalId: 3, occurredAt: 4, subscriptionType: 'ticket.creation', objectId: 5 }]);
    const ts = Date.now();
    const good = signV3(SECRET, 'POST', URI, body, ts);
    const cases = [
      { method: 'POST', uri: URI, body, sig: good, ts, version: 'v3' as const },
      { method: 'POST', uri: URI, body: body + ' ', sig: good, ts, version: 'v3' as const },
      { method: 'POST', uri: URI, body, sig: signV3('other-secret', 'POST', URI, body, ts), ts, version: 'v3' as const },
      { method: 'POST', uri: URI + '?x=1', body, sig: good, ts, version: 'v3' as const },
      { method: 'POST', uri: URI, body, sig: good, ts: ts + 1, version: 'v3' as const },
      { method: 'POST', uri: URI, body, sig: signV3(SECRET, 'POST', URI, body, ts - MAX_SIGNATURE_AGE_MS - 60_000), ts: ts - MAX_SIGNATURE_AGE_MS - 60_000, version: 'v3' as const },
    ];
    const verdicts = cases.map((c) => [ours(c), oracle(c)]);
    expect(verdicts).toEqual([
      [true, true],
      [false, false],
      [false, false],
      [false, false],
      [false, false],
      [false, false],
    ]);
  });

  it('v3 and v2 agree with the oracle on arbitrary bodies, methods and tampering', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('GET', 'POST', 'PUT'), fc.boolean(), fc.constantFrom('v2' as const, 'v3' as const), (body, method, tamper, version) => {
        const ts = Date.now();
        const sig = version === 'v3' ? signV3(SECRET, method, URI, body, ts) : signV2(SECRET, method, URI, body);
        const c = { method, uri: URI, body: tamper ? body + 'x' : body, sig, ts, version };
        expect(ours(c)).toBe(oracle(c));
        expect(ours(c)).toBe(!tamper);
      }),
      { numRuns: 200 },
    );
  });

  it('signs the URI with the characters HubSpot decodes, and tries PUBLIC_URL before the URL as received', () => {
    expect(normaliseUri('https://x.example/hubspot/card?objectId=1&userEmail=rep%40acme.example%2Cx')).toBe('https://x.example/hubspot/card?objectId=1&userEmail=rep@acme.example,x');
    expect(candidateUris('https://tierline.example.com', 'http://127.0.0.1:8787/webhooks/hubspot?a=1')).toEqual(['https://tierline.example.com/webhooks/hubspot?a=1', 'http://127.0.0.1:8787/webhooks/hubspot?a=1']);
  });

  it('refuses unsigned requests, v1 signatures and timestamps far in the future', () => {
    const body = '[]';
    const v1 = verifySignature(SECRET, { method: 'POST', uris: [URI], body, headers: headers({ 'x-hubspot-signature': 'abc', 'x-hubspot-signature-version': 'v1' }) }, Date.now(), { allowV2: true });
    expect(v1).toMatchObject({ ok: false, reason: expect.stringContaining('v1') });
    expect(verifySignature(SECRET, { method: 'POST', uris: [URI], body, headers: headers({}) }, Date.now())).toMatchObject({ ok: false, reason: expect.stringContaining('not signed') });
    const future = Date.now() + 10 * 60_000;
    const sig = signV3(SECRET, 'POST', URI, body, future);
    expect(verifySignature(SECRET, { method: 'POST', uris: [URI], body, headers: headers({ 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': String(future) }) }, Date.now())).toMatchObject({ ok: false, reason: expect.stringContaining('future') });
  });
});
