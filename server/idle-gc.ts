// Garbage collection in the service's lulls. A support desk's tickets arrive seconds apart, and between them the
// service does nothing; V8 still collects when its heap limits say so, which is usually in the middle of a ticket: a
// scavenge that promotes what the ticket has in flight (up to 13 ms measured) or the final pause of a full collection
// (9-13 ms), on a path that otherwise takes 5-8 ms of the service's own time. Collecting once the service has been idle
// for a while moves that work into the lull (as browsers do with idle-time collection), so the next ticket starts with
// an empty young generation and an old generation far from its limit.
//
// Only in lulls: any request or pipeline step in progress, or one that ended less than idleMs ago, postpones it, so
// under steady load V8 collects as it always does. Needs Node's --expose-gc (`npm start` passes it); without it this
// does nothing.
import { getHeapSpaceStatistics } from 'node:v8';
import type { Logger } from '../core/ports.ts';

type GcFn = (options?: { type?: 'major' | 'minor' }) => void;

export type IdleGcOptions = {
  /** How long nothing must have run before collecting (default 1 s). */
  idleMs?: number;
  /** A full collection once the old generation has grown this much since the last full one (default 4 MB). */
  majorGrowthBytes?: number;
  /** A young-generation collection once this much is allocated there (default 512 KB). */
  minorBytes?: number;
  /** Defaults to the global gc that --expose-gc installs. */
  gc?: GcFn | null;
  now?: () => number;
  logger?: Logger;
};

export type IdleGc = {
  /** Runs fn as activity: no idle collection starts while it runs, nor for idleMs after it ends. */
  during<T>(fn: () => Promise<T>): Promise<T>;
  /** Collects now if the service is idle and there is enough to collect; what it did (the timer calls this). */
  tick(): 'major' | 'minor' | null;
  readonly enabled: boolean;
  stop(): void;
};

type HeapUse = { young: number; old: number };

function heapUse(): HeapUse {
  let young = 0;
  let old = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === 'new_space') young += s.space_used_size;
    else if (s.space_name === 'old_space' || s.space_name === 'code_space' || s.space_name === 'large_object_space') old += s.space_used_size;
  }
  return { young, old };
}

export function startIdleGc(o: IdleGcOptions = {}, readHeap: () => HeapUse = heapUse): IdleGc {
  const gc = o.gc === undefined ? ((globalThis as { gc?: GcFn }).gc ?? null) : o.gc;
  const idleMs = o.idleMs ?? 1_000;
  const majorGrowth = o.majorGrowthBytes ?? 4 * 1024 * 1024;
  const minorBytes = o.minorBytes ?? 512 * 1024;
  const now = o.now ?? (() => performance.now());
  let active = 0;
  let lastActivity = now();
  // The old generation's smallest size since the last full collection of ours (one of V8's own lowers it too).
  let oldBase = readHeap().old;
  // One collection per lull: after it, nothing changes until something runs again.
  let collectedThisLull = false;

  const tick = (): 'major' | 'minor' | null => {
    if (!gc || active > 0 || collectedThisLull || now() - lastActivity < idleMs) return null;
    const use = readHeap();
    oldBase = Math.min(oldBase, use.old);
    collectedThisLull = true;
    if (use.old - oldBase >= majorGrowth) {
      const started = now();
      gc({ type: 'major' });
      oldBase = readHeap().old;
      o.logger?.debug('idle full collection', { ms: Math.round((now() - started) * 10) / 10, oldBytesBefore: use.old, oldBytesAfter: oldBase });
      return 'major';
    }
    if (use.young >= minorBytes) {
      gc({ type: 'minor' });
      return 'minor';
    }
    return null;
  };

  const timer = gc ? setInterval(tick, Math.max(50, idleMs / 4)) : null;
  timer?.unref();

  return {
    enabled: gc !== null,
    // Without a collector to call there is nothing to postpone: requests and steps run as they are.
    during: !gc ? (fn) => fn() : async (fn) => {
      active++;
      collectedThisLull = false;
      try {
        return await fn();
      } finally {
        active--;
        lastActivity = now();
      }
    },
    tick,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
