// Time for the Telegram connector and its sandbox. Pacing and flood waits need timers, not just "now", and tests and
// the burst benchmark must not wait in real time: a manual clock fires timers only when it is advanced.
import type { Clock } from '../../core/ports.ts';

export type Cancel = () => void;

export interface Timers extends Clock {
  setTimer(fn: () => void, ms: number): Cancel;
}

export interface ManualClock extends Timers {
  readonly manual: true;
  /** Moves time forward, firing due timers in order and letting the promise chains they start settle in between. */
  advance(ms: number): Promise<void>;
  /** Moves time to the next pending timer (if any) and fires it; false when no timer is pending. */
  next(): Promise<boolean>;
  pendingTimers(): number;
  nextTimerAt(): number | null;
}

export function isTimers(c: unknown): c is Timers {
  return !!c && typeof (c as Timers).setTimer === 'function' && typeof (c as Timers).now === 'function';
}

/** Real timers on top of any clock; unref'd so a pending pacing timer never keeps the process alive. */
export function realTimers(clock: Clock = { now: () => Date.now() }): Timers {
  return {
    now: () => clock.now(),
    setTimer(fn, ms) {
      const t = setTimeout(fn, Math.max(0, ms));
      t.unref?.();
      return () => clearTimeout(t);
    },
  };
}

export function toTimers(c: Clock | undefined): Timers {
  return isTimers(c) ? c : realTimers(c);
}

/** Lets every promise chain that can progress without a timer run to its end. */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((ok) => setImmediate(ok));
}

export function createManualClock(start = Date.UTC(2026, 0, 5, 9, 0, 0)): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void; seq: number }>();
  const due = () => {
    let best: { id: number; at: number; seq: number } | null = null;
    for (const [id, t] of timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = { id, at: t.at, seq: t.seq };
    return best;
  };
  const fire = async (id: number) => {
    const t = timers.get(id);
    if (!t) return;
    timers.delete(id);
    t.fn();
    await settle();
  };
  return {
    manual: true,
    now: () => now,
    setTimer(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn, seq: id });
      return () => void timers.delete(id);
    },
    async advance(ms) {
      const target = now + ms;
      await settle();
      for (;;) {
        const d = due();
        if (!d || d.at > target) break;
        now = Math.max(now, d.at);
        await fire(d.id);
      }
      now = target;
      await settle();
    },
    async next() {
      await settle();
      const d = due();
      if (!d) return false;
      now = Math.max(now, d.at);
      await fire(d.id);
      return true;
    },
    pendingTimers: () => timers.size,
    nextTimerAt: () => due()?.at ?? null,
  };
}
