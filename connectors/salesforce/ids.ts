// Salesforce record ids: 15 case-sensitive characters, or 18 with a checksum that makes them case-insensitive.
// Everything Tierline stores and compares is the 18-character form, so a 15-character id from a formula field or a
// hand-typed SALESFORCE_ORG_IDS entry still matches the id in an outbound message.

const ID_RE = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

export function isSalesforceId(s: unknown): s is string {
  return typeof s === 'string' && ID_RE.test(s);
}

/** The 18-character form of a 15- or 18-character id (an 18-character id is re-derived, fixing its case). */
export function to18(id: string): string {
  if (!isSalesforceId(id)) throw new Error(`not a Salesforce id: ${JSON.stringify(id).slice(0, 40)}`);
  const base = id.slice(0, 15);
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let bits = 0;
    for (let i = 0; i < 5; i++) {
      const c = base.charCodeAt(chunk * 5 + i);
      if (c >= 65 && c <= 90) bits |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET[bits];
  }
  return base + suffix;
}

/** Same record? Compares the case-sensitive 15-character part, so "500...AAA" and "500..." match. */
export function sameId(a: string, b: string): boolean {
  return isSalesforceId(a) && isSalesforceId(b) && a.slice(0, 15) === b.slice(0, 15);
}

/** Key prefixes of the objects Tierline touches (the first three characters of every id). */
export const KEY_PREFIX = { Organization: '00D', User: '005', Account: '001', Contact: '003', Case: '500', Product2: '01t', Notification: '04l', OutboundAction: '04k' } as const;
