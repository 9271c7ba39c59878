// GramJS's StringSession (through MemorySession) caches every peer it meets in a Set of freshly built arrays, so the
// same user or channel is added again with every update that mentions it (gram-js/gramjs#816, open): memory grows
// without bound, and each lookup scans the whole set oldest first, so it slows down as the set grows and answers with
// the first access hash ever seen rather than the newest. Under the soak (50 tickets a second) that was 79,000 copies
// of the service account after five minutes. This session keeps one row per peer, the newest, indexed for each kind
// of lookup MemorySession.getInputEntity makes; everything else (auth key, DC, save()) is StringSession's own.
import { StringSession } from 'telegram/sessions/index.js';

type Row = (string | import('big-integer').BigInteger)[];

export class PeerCacheSession extends StringSession {
  readonly #byId = new Map<string, Row>();
  readonly #byUsername = new Map<string, string>();
  readonly #byPhone = new Map<string, string>();
  readonly #byName = new Map<string, string>();

  override processEntities(tlo: unknown): void {
    for (const row of this._entitiesToRows(tlo)) {
      // [id, access hash, username, phone, display name]
      const id = String(row[0]);
      this.#byId.set(id, row);
      if (row[2]) this.#byUsername.set(String(row[2]), id);
      if (row[3]) this.#byPhone.set(String(row[3]), id);
      if (row[4]) this.#byName.set(String(row[4]), id);
    }
  }

  /** Distinct peers cached (one row each, however often they were seen). */
  get cachedPeers(): number {
    return this.#byId.size;
  }

  #rowOf(id: string | undefined): [Row[0], Row[1]] | undefined {
    const row = id === undefined ? undefined : this.#byId.get(id);
    return row ? [row[0]!, row[1]!] : undefined;
  }

  override getEntityRowsByPhone(phone: string): Row | undefined {
    return this.#rowOf(this.#byPhone.get(phone));
  }

  override getEntityRowsByUsername(username: string): Row | undefined {
    return this.#rowOf(this.#byUsername.get(username));
  }

  override getEntityRowsByName(name: string): Row | undefined {
    return this.#rowOf(this.#byName.get(name));
  }

  override getEntityRowsById(id: string | import('big-integer').BigInteger, exact = true): Row | undefined {
    const key = String(id);
    if (exact) return this.#rowOf(key);
    // Not exact: a bare id may be a user's, a basic group's (-id) or a channel's (-100id), as MemorySession tries.
    const bare = key.replace(/^-(100)?/, '');
    return this.#rowOf(bare) ?? this.#rowOf(`-${bare}`) ?? this.#rowOf(`-100${bare}`);
  }
}
