// The pending jobs by when they can next be claimed, so a claim costs O(k log n) for k jobs instead of a scan of the
// whole outbox. Under a backlog of tens of thousands of steps, a scan on every claim (and a claim follows every
// finished step) took a third of the service's CPU in the soak and kept the backlog from draining.
//
// Two binary min-heaps with lazy deletion: jobs not leased, by next attempt (then creation), and leased jobs, by the
// end of their lease, which move to the first heap once it has passed (a claim hands out the earliest next attempts,
// whether or not a lease ran out on the way). Each job has one current entry; rescheduling or removing a job leaves
// its old entry behind, skipped when it surfaces, and a heap is rebuilt once stale entries outnumber current ones
// (a completed job leaves its lease's entry, minutes ahead).

/** `n` orders jobs created in the same millisecond as they were added (the pipeline relies on it: a reply and a /resolve fetched together after a restart stay in order). */
type Entry = { at: number; nextAt: number; createdAt: number; n: number; id: string };

export type Schedulable = { id: string; nextAt: number; createdAt: number; leaseUntil: number };

const before = (a: Entry, b: Entry) => a.at < b.at || (a.at === b.at && (a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.n < b.n)));

class Heap {
  items: Entry[] = [];

  push(e: Entry): void {
    const h = this.items;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  pop(): void {
    const h = this.items;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.down(0);
  }

  /** Keeps only the entries `keep` accepts. */
  rebuild(keep: (e: Entry) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private down(i: number): void {
    const h = this.items;
    const e = h[i]!;
    const n = h.length;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(h[c + 1]!, h[c]!)) c++;
      if (!before(h[c]!, e)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}

export class DueIndex {
  private readonly ready = new Heap();
  private readonly leased = new Heap();
  private readonly current = new Map<string, Entry>();
  /** Each pending job's place in the order jobs were added, kept while it is rescheduled and taken. */
  private readonly added = new Map<string, number>();
  private nextN = 0;

  /** Pending jobs indexed (leased ones included: they come back when their lease runs out). */
  get size(): number {
    return this.current.size;
  }

  /** (Re)indexes a pending job: claimable from its next attempt, or once its lease has passed. */
  schedule(j: Schedulable): void {
    const isLeased = j.leaseUntil > j.nextAt;
    let n = this.added.get(j.id);
    if (n === undefined) this.added.set(j.id, (n = this.nextN++));
    const e: Entry = { at: isLeased ? j.leaseUntil : j.nextAt, nextAt: j.nextAt, createdAt: j.createdAt, n, id: j.id };
    this.current.set(j.id, e);
    (isLeased ? this.leased : this.ready).push(e);
    if (this.ready.items.length + this.leased.items.length > 2 * this.current.size + 1024) {
      const isCurrent = (x: Entry) => this.current.get(x.id) === x;
      this.ready.rebuild(isCurrent);
      this.leased.rebuild(isCurrent);
    }
  }

  /** The job is done or dead: it is no longer handed out. */
  remove(id: string): void {
    this.current.delete(id);
    this.added.delete(id);
  }

  /**
   * Takes the job with the earliest next attempt among those claimable at `now` out of the index (the caller schedules
   * it again, leased or not), or undefined when none is. Ties go to the job created first, then added first. `now` comes from the
   * service's clock: a lease once seen to have ended stays ended even if the clock steps back.
   */
  popDue(now: number): string | undefined {
    for (let top = this.leased.items[0]; top && (this.current.get(top.id) !== top || top.at <= now); top = this.leased.items[0]) {
      this.leased.pop();
      if (this.current.get(top.id) !== top) continue;
      const e: Entry = { ...top, at: top.nextAt };
      this.current.set(top.id, e);
      this.ready.push(e);
    }
    for (let top = this.ready.items[0]; top; top = this.ready.items[0]) {
      if (this.current.get(top.id) !== top) {
        this.ready.pop();
        continue;
      }
      if (top.at > now) return undefined;
      this.ready.pop();
      this.current.delete(top.id);
      return top.id;
    }
    return undefined;
  }
}
