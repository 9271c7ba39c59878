// Send pacing for Telegram: one lane per forum group (Telegram limits messages per group, ~20 a minute) under an
// account-wide limit, each lane a priority queue. A FLOOD_WAIT or slow-mode wait blocks only the lane that got it for
// the seconds Telegram asked; the job goes back into its lane and nobody upstream sees the error, unless the wait is
// so long that the caller is better off retrying later (then it surfaces as rate_limited with the wait attached).
import { AppError } from '../../core/errors.ts';
import type { Logger } from '../../core/ports.ts';
import type { Cancel, Timers } from './clock.ts';

export type PacerOptions = {
  timers: Timers;
  logger: Logger;
  /** Sends (messages, topics, pins: anything that adds a message to the group) per group per minute. */
  perGroupPerMinute?: number;
  /** All requests of the account per second. */
  perAccountPerSecond?: number;
  /**
   * Waits longer than this are handed back to the caller as rate_limited (with the wait) instead of being waited out;
   * default 300 s, under the pipeline's 10-minute job lease.
   */
  maxWaitSeconds?: number;
  /** How long Telegram asked us to wait, when err is a flood or slow-mode wait. */
  waitSecondsOf: (err: unknown) => number | null;
};

export type PacedJob<T> = {
  /** The forum group the request touches (its own flood limits), or "account" for requests about no group. */
  lane: string;
  priority: number;
  /** Counts against the group's message limit. */
  send: boolean;
  label: string;
  run: () => Promise<T>;
};

export type LaneStats = { lane: string; queued: number; blockedUntil: number | null; sentInWindow: number };

export type PacerStats = { queued: number; inFlight: number; dispatched: number; floodWaits: number; floodWaitSeconds: number; surfaced: number; lanes: LaneStats[] };

type Entry = { job: PacedJob<unknown>; seq: number; resolve: (v: unknown) => void; reject: (e: unknown) => void };

class Heap {
  private items: Entry[] = [];
  get size(): number {
    return this.items.length;
  }
  private before(a: Entry, b: Entry): boolean {
    return a.job.priority !== b.job.priority ? a.job.priority > b.job.priority : a.seq < b.seq;
  }
  push(e: Entry): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  peek(): Entry | undefined {
    return this.items[0];
  }
  pop(): Entry | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
  drain(): Entry[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}

type Lane = { id: string; sends: Heap; others: Heap; window: number[]; blockedUntil: number };

const WINDOW_MS = 60_000;

export type Pacer = ReturnType<typeof createPacer>;

export function createPacer(opts: PacerOptions) {
  const perGroup = opts.perGroupPerMinute ?? 20;
  const perAccount = opts.perAccountPerSecond ?? 20;
  const maxWaitMs = (opts.maxWaitSeconds ?? 300) * 1000;
  const { timers, logger } = opts;
  const lanes = new Map<string, Lane>();
  const accountWindow: number[] = [];
  let seq = 0;
  let inFlight = 0;
  let dispatched = 0;
  let floodWaits = 0;
  let floodWaitSeconds = 0;
  let surfaced = 0;
  let wake: { at: number; cancel: Cancel } | null = null;
  let stopped = false;
  let pumpSoon = false;

  const lane = (id: string): Lane => {
    let l = lanes.get(id);
    if (!l) lanes.set(id, (l = { id, sends: new Heap(), others: new Heap(), window: [], blockedUntil: 0 }));
    return l;
  };
  const prune = (w: number[], now: number, span: number) => {
    while (w.length && w[0]! <= now - span) w.shift();
  };

  function submit<T>(job: PacedJob<T>): Promise<T> {
    if (stopped) return Promise.reject(new AppError('upstream', 'The Telegram connector is stopping; the step will be retried when it is back.'));
    return new Promise<T>((resolve, reject) => {
      const l = lane(job.lane);
      const e: Entry = { job: job as PacedJob<unknown>, seq: ++seq, resolve: resolve as (v: unknown) => void, reject };
      (job.send ? l.sends : l.others).push(e);
      // Requests that arrive together (a burst, a batch of pipeline steps) are queued together before the first
      // one goes out, so the priorities decide the order rather than who called first.
      if (!pumpSoon) {
        pumpSoon = true;
        setImmediate(() => {
          pumpSoon = false;
          pump();
        });
      }
    });
  }

  /** When the head of this lane could go next (Infinity when the lane is empty). */
  function readyAt(l: Lane, now: number): { at: number; entry: Entry | undefined; heap: Heap | null } {
    let best: { at: number; entry: Entry | undefined; heap: Heap | null } = { at: Infinity, entry: undefined, heap: null };
    const consider = (heap: Heap, at: number) => {
      const e = heap.peek();
      if (!e) return;
      const b = best.entry;
      if (at < best.at || (at === best.at && b && (e.job.priority > b.job.priority || (e.job.priority === b.job.priority && e.seq < b.seq)))) best = { at, entry: e, heap };
    };
    const open = Math.max(now, l.blockedUntil);
    prune(l.window, now, WINDOW_MS);
    const sendAt = l.window.length < perGroup ? open : Math.max(open, l.window[l.window.length - perGroup]! + WINDOW_MS);
    consider(l.sends, sendAt);
    consider(l.others, open);
    return best;
  }

  function pump(): void {
    if (stopped) return;
    for (;;) {
      const now = timers.now();
      prune(accountWindow, now, 1000);
      let next = Infinity;
      let pick: { entry: Entry; heap: Heap; lane: Lane } | null = null;
      for (const l of lanes.values()) {
        const r = readyAt(l, now);
        if (!r.entry || !r.heap) continue;
        if (r.at <= now) {
          if (!pick || r.entry.job.priority > pick.entry.job.priority || (r.entry.job.priority === pick.entry.job.priority && r.entry.seq < pick.entry.seq)) pick = { entry: r.entry, heap: r.heap, lane: l };
        } else next = Math.min(next, r.at);
      }
      if (pick && accountWindow.length >= perAccount) {
        next = Math.min(next, accountWindow[0]! + 1000);
        pick = null;
      }
      if (!pick) {
        schedule(next);
        return;
      }
      pick.heap.pop();
      accountWindow.push(now);
      if (pick.entry.job.send) pick.lane.window.push(now);
      run(pick.entry, pick.lane, now);
    }
  }

  function schedule(at: number): void {
    if (!Number.isFinite(at)) return;
    if (wake && wake.at <= at) return;
    wake?.cancel();
    const w = { at, cancel: (() => {}) as Cancel };
    wake = w;
    w.cancel = timers.setTimer(() => {
      if (wake === w) wake = null;
      pump();
    }, at - timers.now());
  }

  function run(e: Entry, l: Lane, at: number): void {
    inFlight += 1;
    dispatched += 1;
    e.job.run().then(
      (v) => {
        inFlight -= 1;
        e.resolve(v);
        pump();
      },
      (err: unknown) => {
        inFlight -= 1;
        const wait = opts.waitSecondsOf(err);
        if (wait !== null && !stopped) {
          const ms = Math.max(1, wait) * 1000;
          floodWaits += 1;
          floodWaitSeconds += wait;
          if (ms > maxWaitMs) {
            surfaced += 1;
            e.reject(new AppError('rate_limited', `Telegram asked to wait ${wait} s before sending more to group ${l.id}; the step is retried after that.`, { retryAfterMs: ms, cause: err }));
          } else {
            // The lane waits; its other work waits with it, other groups carry on. Telegram did not take the
            // refused send, so it does not use up a place in the group's window either.
            l.blockedUntil = Math.max(l.blockedUntil, timers.now() + ms);
            if (e.job.send) {
              const i = l.window.lastIndexOf(at);
              if (i >= 0) l.window.splice(i, 1);
            }
            logger.warn('telegram flood wait: pausing this group', { group: l.id, seconds: wait, request: e.job.label });
            (e.job.send ? l.sends : l.others).push(e);
          }
        } else e.reject(err);
        pump();
      },
    );
  }

  return {
    submit,
    stats(): PacerStats {
      const now = timers.now();
      let queued = 0;
      const laneStats: LaneStats[] = [];
      for (const l of lanes.values()) {
        prune(l.window, now, WINDOW_MS);
        const q = l.sends.size + l.others.size;
        queued += q;
        laneStats.push({ lane: l.id, queued: q, blockedUntil: l.blockedUntil > now ? l.blockedUntil : null, sentInWindow: l.window.length });
      }
      return { queued, inFlight, dispatched, floodWaits, floodWaitSeconds, surfaced, lanes: laneStats };
    },
    stop(): void {
      stopped = true;
      wake?.cancel();
      wake = null;
      for (const l of lanes.values()) {
        for (const e of [...l.sends.drain(), ...l.others.drain()]) e.reject(new AppError('upstream', 'The Telegram connector stopped before this request was sent; it is retried on restart.'));
      }
    },
  };
}
