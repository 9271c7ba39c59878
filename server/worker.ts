// Runs the pipeline's due jobs and timers: at once when work is queued (wake), otherwise on a short poll so stored
// timers fire on time. One loop per process; the store's leases keep two processes off the same job.
import type { Logger } from '../core/ports.ts';

export type Worker = { wake(): void; stop(): Promise<void>; idle(): Promise<void> };

/**
 * runDue claims and starts due work and says how much it found; with `drain`, steps may still be running when it
 * returns (the pipeline's pump), and stop() waits for them.
 */
export function startWorker(runDue: () => Promise<{ jobs: number; timers: number }>, logger: Logger, opts: { pollMs?: number; drain?: () => Promise<void>; stopGraceMs?: number } = {}): Worker {
  const pollMs = opts.pollMs ?? 250;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let idleWaiters: (() => void)[] = [];

  const loop = async () => {
    do {
      again = false;
      try {
        for (;;) {
          const r = await runDue();
          if (r.jobs === 0 && r.timers === 0) break;
          if (stopped) return;
        }
      } catch (err) {
        logger.error('worker pass failed', { error: err instanceof Error ? err.message : String(err) });
      }
    } while (again && !stopped);
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };
  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = loop().finally(() => {
      running = null;
      schedule();
    });
  };
  const schedule = () => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(kick, pollMs);
    timer.unref?.();
  };
  kick();
  return {
    wake: kick,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      // Steps still running get a moment to finish; one held longer (a Telegram flood wait) stays claimed in the store
      // and runs again after a restart (lowdb) or once its lease lapses (PostgreSQL). Every step is idempotent.
      if (opts.drain) {
        let t: NodeJS.Timeout | undefined;
        await Promise.race([opts.drain(), new Promise<void>((ok) => (t = setTimeout(ok, opts.stopGraceMs ?? 10_000)))]);
        clearTimeout(t);
      }
    },
    /** Resolves after the next pass that found nothing left to do (tests and the bench use it). */
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        kick();
      });
    },
  };
}
