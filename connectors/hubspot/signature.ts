// HubSpot request signatures. v3 (webhooks, hubspot.fetch from cards, newer workflow actions): base64 HMAC-SHA256
// under the app's client secret over method + full URI + raw body + timestamp, with the timestamp (ms) at most five
// minutes old. v2 (workflow actions): hex SHA-256 of secret + method + URI + body, no timestamp. Comparisons are
// timing-safe, unlike @hubspot/api-client's Signature.isValid (which the tests use as the oracle).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_SIGNATURE_AGE_MS = 5 * 60_000;

/** HubSpot signs the URI with these characters decoded (its docs list exactly these); the query `?` stays. */
const DECODE: Record<string, string> = { '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';' };

export function normaliseUri(uri: string): string {
  return uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODE[m.toUpperCase()] ?? m);
}

export function signV3(secret: string, method: string, uri: string, body: string, timestamp: string | number): string {
  return createHmac('sha256', secret).update(`${method.toUpperCase()}${uri}${body}${timestamp}`, 'utf8').digest('base64');
}

export function signV2(secret: string, method: string, uri: string, body: string): string {
  return createHash('sha256').update(`${secret}${method.toUpperCase()}${uri}${body}`, 'utf8').digest('hex');
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // The expected length is fixed by the algorithm, so a length mismatch leaks nothing worth hiding.
  return a.length === b.length && timingSafeEqual(a, b);
}

export type SignedRequest = {
  method: string;
  /** Candidate URIs the sender may have signed (the public URL first, then the URL as received). */
  uris: string[];
  body: string;
  headers: { get(name: string): string | undefined | null };
};

export type Verdict = { ok: true; version: 'v3' | 'v2' } | { ok: false; reason: string };

/** Checks a v3 signature (and, when allowV2 and no v3 header came, a v2 one). Never throws. */
export function verifySignature(secret: string, req: SignedRequest, now: number, o: { allowV2?: boolean } = {}): Verdict {
  const v3 = req.headers.get('x-hubspot-signature-v3');
  if (v3) {
    const ts = req.headers.get('x-hubspot-request-timestamp') ?? '';
    if (!/^\d{10,16}$/.test(ts)) return { ok: false, reason: 'X-HubSpot-Request-Timestamp is missing or not a millisecond timestamp' };
    const age = now - Number(ts);
    if (age > MAX_SIGNATURE_AGE_MS) return { ok: false, reason: `the request timestamp is ${Math.round(age / 1000)} s old (more than 5 minutes): a replay or a clock problem` };
    if (age < -MAX_SIGNATURE_AGE_MS) return { ok: false, reason: 'the request timestamp is more than 5 minutes in the future: check the server clock' };
    // HubSpot's docs have the decoded form signed; a sender that signed the URI as sent is accepted as well.
    const forms = [...new Set(req.uris.flatMap((u) => [normaliseUri(u), u]))];
    for (const uri of forms) if (safeEqual(v3, signV3(secret, req.method, uri, req.body, ts))) return { ok: true, version: 'v3' };
    return { ok: false, reason: 'X-HubSpot-Signature-v3 does not match: check HUBSPOT_CLIENT_SECRET and that PUBLIC_URL is the URL HubSpot calls' };
  }
  const sig = req.headers.get('x-hubspot-signature');
  if (o.allowV2 && sig) {
    const version = (req.headers.get('x-hubspot-signature-version') ?? 'v1').toLowerCase();
    if (version !== 'v2') return { ok: false, reason: `signature version ${version.slice(0, 8)} is not accepted here (v2 or v3 expected)` };
    for (const uri of req.uris) if (safeEqual(sig.toLowerCase(), signV2(secret, req.method, uri, req.body))) return { ok: true, version: 'v2' };
    return { ok: false, reason: 'X-HubSpot-Signature (v2) does not match: check HUBSPOT_CLIENT_SECRET and that PUBLIC_URL is the URL HubSpot calls' };
  }
  return { ok: false, reason: o.allowV2 ? 'the request is not signed (no X-HubSpot-Signature-v3 or v2 header)' : 'the request is not signed (no X-HubSpot-Signature-v3 header)' };
}

/** The URIs a request may have been signed with: PUBLIC_URL + path + query, and the URL as this server saw it. */
export function candidateUris(publicUrl: string, requestUrl: string): string[] {
  const u = new URL(requestUrl);
  const fromPublic = `${publicUrl.replace(/\/+$/, '')}${u.pathname}${u.search}`;
  return fromPublic === requestUrl ? [fromPublic] : [fromPublic, requestUrl];
}
