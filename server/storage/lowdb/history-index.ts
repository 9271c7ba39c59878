// The in-memory index over every history entry the lowdb store holds. Entries themselves live in the dated history
// files (or, until the next compaction moves them there, in memory); the index keeps only what filtering and
// ordering need, column by column in typed arrays with strings interned, so 1,000,000 entries cost about 80 MB and a
// filtered page is a tight scan instead of a million parsed objects.
import type { HistoryEntry, HistoryQuery } from '../../../core/ports.ts';

/** Interned strings: each distinct queue, agent, kind, tier and ticket key is stored once and compared as a number. */
export class Dict {
  readonly ids = new Map<string, number>();
  readonly names: string[] = [];

  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(s);
      this.ids.set(s, i);
    }
    return i;
  }

  get(s: string): number | undefined {
    return this.ids.get(s);
  }
}

/** Where an entry's line is: a dated file (by index into the store's file list), byte offset and length. */
export type Loc = { file: number; off: number; len: number };

const NONE = -1;

export class HistoryIndex {
  n = 0;
  #cap = 0;
  at = new Float64Array(0);
  seq = new Float64Array(0);
  ticket = new Int32Array(0);
  kind = new Int32Array(0);
  queue = new Int32Array(0);
  agent = new Int32Array(0);
  tier = new Int32Array(0);
  file = new Int32Array(0);
  off = new Float64Array(0);
  len = new Int32Array(0);
  /** 1 when the entry's key is not `${ticketKey}#${seq}` (then it is deduped through oddKeys instead). */
  odd = new Uint8Array(0);

  tickets = new Dict();
  readonly kinds = new Dict();
  readonly queues = new Dict();
  readonly agents = new Dict();
  readonly tiers = new Dict();
  /** Entry ids per ticket dict id: the ticket filter and the dedupe check read only these. */
  byTicket: number[][] = [];
  /** Odd keys and the entry holding each (so forgetting the entry forgets its key). */
  oddKeys = new Map<string, number>();
  /** Entries not yet written to a dated file (until the next compaction), by entry id. */
  pending = new Map<number, HistoryEntry>();

  /** Entry ids ascending by (at, seq, newer id first); newest-first pages walk it backwards. */
  #order: number[] = [];
  #sorted = true;

  #grow(): void {
    const cap = Math.max(1024, this.#cap * 2);
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.at = f64(this.at);
    this.seq = f64(this.seq);
    this.off = f64(this.off);
    this.ticket = i32(this.ticket);
    this.kind = i32(this.kind);
    this.queue = i32(this.queue);
    this.agent = i32(this.agent);
    this.tier = i32(this.tier);
    this.file = i32(this.file);
    this.len = i32(this.len);
    const odd = new Uint8Array(cap);
    odd.set(this.odd);
    this.odd = odd;
    this.#cap = cap;
  }

  #cmp = (a: number, b: number): number => this.at[a]! - this.at[b]! || this.seq[a]! - this.seq[b]! || b - a;

  /** Whether an entry with this key is already stored (the first write of a key wins, as in every store). */
  has(e: HistoryEntry): boolean {
    if (e.key !== `${e.ticketKey}#${e.seq}`) return this.oddKeys.has(e.key);
    const t = this.tickets.get(e.ticketKey);
    if (t === undefined) return false;
    for (const id of this.byTicket[t] ?? []) if (this.seq[id] === e.seq && this.odd[id] === 0) return true;
    return false;
  }

  /**
   * Adds an entry unless its key is stored; loc null keeps the entry in memory until a compaction writes it out.
   * bulk skips keeping the order sorted (loading at open sorts once at the end). Returns the id, or -1 for a duplicate.
   */
  add(e: HistoryEntry, loc: Loc | null, bulk = false): number {
    if (this.has(e)) return NONE;
    if (this.n === this.#cap) this.#grow();
    const id = this.n++;
    this.at[id] = e.at;
    this.seq[id] = e.seq;
    const t = this.tickets.id(e.ticketKey);
    this.ticket[id] = t;
    (this.byTicket[t] ??= []).push(id);
    this.kind[id] = this.kinds.id(e.kind);
    this.queue[id] = this.queues.id(e.queueId);
    this.agent[id] = e.agentId === null ? NONE : this.agents.id(e.agentId);
    this.tier[id] = this.tiers.id(e.tier ?? 'unknown');
    if (e.key !== `${e.ticketKey}#${e.seq}`) {
      this.odd[id] = 1;
      this.oddKeys.set(e.key, id);
    }
    if (loc) this.locate(id, loc);
    else {
      this.file[id] = NONE;
      this.pending.set(id, e);
    }
    if (bulk || !this.#sorted) {
      this.#order.push(id);
      this.#sorted = false;
    } else this.#insert(id);
    return id;
  }

  /** The entry now lives in a dated file. */
  locate(id: number, loc: Loc): void {
    this.file[id] = loc.file;
    this.off[id] = loc.off;
    this.len[id] = loc.len;
    this.pending.delete(id);
  }

  #insert(id: number): void {
    const o = this.#order;
    // Entries mostly arrive newest last, so this is usually a push.
    if (o.length === 0 || this.#cmp(o[o.length - 1]!, id) < 0) {
      o.push(id);
      return;
    }
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cmp(o[mid]!, id) <= 0) lo = mid + 1;
      else hi = mid;
    }
    o.splice(lo, 0, id);
  }

  #ensureSorted(): void {
    if (this.#sorted) return;
    this.#order.sort(this.#cmp);
    this.#sorted = true;
  }

  /** First position in the order whose at is >= x (or > x when strict). */
  #bound(x: number, strict: boolean): number {
    const o = this.#order;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.at[o[mid]!]!;
      if (strict ? v <= x : v < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The ids of one page, newest first, and how many entries match in all. companyTickets is the set of ticket ids
   * whose ticket currently belongs to the company asked for (the store knows tickets; the index knows entries).
   */
  query(q: HistoryQuery, companyTickets: Set<number> | null): { total: number; ids: number[] } {
    this.#ensureSorted();
    const offset = Math.max(0, q.offset ?? 0);
    const limit = Math.max(0, q.limit ?? 50);
    const none = { total: 0, ids: [] };
    const lookup = (d: Dict, v: string | undefined): number | null | undefined => (v ? d.get(v) ?? undefined : null);
    const kind = lookup(this.kinds, q.kind);
    const queue = lookup(this.queues, q.queueId);
    const agent = lookup(this.agents, q.agentId);
    const tier = lookup(this.tiers, q.tier);
    const ticket = lookup(this.tickets, q.ticketKey);
    if (kind === undefined || queue === undefined || agent === undefined || tier === undefined || ticket === undefined) return none;
    if (companyTickets && companyTickets.size === 0) return none;
    const from = q.from ?? -Infinity;
    const to = q.to ?? Infinity;

    const ids: number[] = [];
    let total = 0;
    const visit = (id: number) => {
      if (kind !== null && this.kind[id] !== kind) return;
      if (queue !== null && this.queue[id] !== queue) return;
      if (agent !== null && this.agent[id] !== agent) return;
      if (tier !== null && this.tier[id] !== tier) return;
      if (companyTickets && !companyTickets.has(this.ticket[id]!)) return;
      if (total >= offset && ids.length < limit) ids.push(id);
      total++;
    };

    // One ticket's entries, or a small company's, are cheaper to gather and sort than the whole order is to scan.
    let few: number[] | null = null;
    if (ticket !== null) few = this.byTicket[ticket] ?? [];
    else if (companyTickets) {
      let count = 0;
      for (const t of companyTickets) count += this.byTicket[t]?.length ?? 0;
      if (count < this.n / 8) {
        few = [];
        for (const t of companyTickets) for (const id of this.byTicket[t] ?? []) few.push(id);
      }
    }
    if (few) {
      const own = few.filter((id) => this.at[id]! >= from && this.at[id]! <= to);
      own.sort((a, b) => this.#cmp(b, a));
      for (const id of own) visit(id);
    } else {
      const o = this.#order;
      const lo = q.from === undefined ? 0 : this.#bound(from, false);
      const hi = q.to === undefined ? o.length : this.#bound(to, true);
      for (let p = hi - 1; p >= lo; p--) visit(o[p]!);
    }
    return { total, ids };
  }

  /**
   * Forgets every entry older than cutoff (the retention window), and the tickets left with none, so the index
   * stays as large as the window rather than the whole past. Ids change: callers must not hold ids across it (the
   * store calls it only between compactions, when no entry is being written out). Returns how many went.
   */
  dropBefore(cutoff: number): number {
    this.#ensureSorted();
    const o = this.#order;
    const gone = this.#bound(cutoff, false);
    if (gone === 0) return 0;
    const keep = new Uint8Array(this.n);
    for (let p = gone; p < o.length; p++) keep[o[p]!] = 1;
    const next = new Int32Array(this.n).fill(NONE);
    const old = { at: this.at, seq: this.seq, ticket: this.ticket, kind: this.kind, queue: this.queue, agent: this.agent, tier: this.tier, file: this.file, off: this.off, len: this.len, odd: this.odd };
    const oldTickets = this.tickets;
    const oldPending = this.pending;
    const oldOdd = this.oddKeys;
    const kept = this.n - gone;
    this.#cap = 0;
    this.n = 0;
    for (const k of ['at', 'seq', 'off'] as const) this[k] = new Float64Array(0);
    for (const k of ['ticket', 'kind', 'queue', 'agent', 'tier', 'file', 'len'] as const) this[k] = new Int32Array(0);
    this.odd = new Uint8Array(0);
    while (this.#cap < kept) this.#grow();
    this.tickets = new Dict();
    this.byTicket = [];
    this.pending = new Map();
    this.oddKeys = new Map();
    for (let id = 0; id < keep.length; id++) {
      if (!keep[id]) continue;
      const to = this.n++;
      next[id] = to;
      this.at[to] = old.at[id]!;
      this.seq[to] = old.seq[id]!;
      const t = this.tickets.id(oldTickets.names[old.ticket[id]!]!);
      this.ticket[to] = t;
      (this.byTicket[t] ??= []).push(to);
      this.kind[to] = old.kind[id]!;
      this.queue[to] = old.queue[id]!;
      this.agent[to] = old.agent[id]!;
      this.tier[to] = old.tier[id]!;
      this.file[to] = old.file[id]!;
      this.off[to] = old.off[id]!;
      this.len[to] = old.len[id]!;
      this.odd[to] = old.odd[id]!;
      const p = oldPending.get(id);
      if (p) this.pending.set(to, p);
    }
    for (const [key, id] of oldOdd) if (next[id] !== NONE) this.oddKeys.set(key, next[id]!);
    // Ids keep their relative order, so the order stays sorted.
    this.#order = o.slice(gone).map((id) => next[id]!);
    return gone;
  }

  /** Ids of every entry, oldest first (for exporting the whole store). */
  allIds(): number[] {
    this.#ensureSorted();
    return [...this.#order];
  }
}
