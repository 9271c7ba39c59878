// Where a ticket's time goes: each pipeline step's wall time split into time spent waiting on upstream calls (CRM
// and Telegram ports) and the service's own time (routing, store writes, scheduling). Operators read it from /metrics
// (tierline_step_own_seconds, tierline_step_upstream_seconds); the end-to-end benchmark reads the per-ticket sums.
import { AsyncLocalStorage } from 'node:async_hooks';
import { AppError } from '../core/errors.ts';
import type { Job, Store } from '../core/ports.ts';
import type { Registry } from './metrics.ts';

/**
 * active: upstream calls of the step now open; local: store calls made inside them now running. The upstream clock
 * runs only while a call is open and none of its store work is running.
 */
type StepContext = { active: number; local: number; since: number; upstreamMs: number };

/** pickupMs: gaps between a ticket's intake and steps in which none of them was running (scheduling). */
export type TicketTiming = {
  steps: number;
  ownMs: number;
  upstreamMs: number;
  pickupMs: number;
  intakeMs: number;
  ownByStep: Record<string, number>;
  upstreamByStep: Record<string, number>;
};

export type StepTiming = {
  /**
   * Wraps a port so that time inside its calls counts as upstream time of the step that made them, and every call
   * that fails counts in tierline_upstream_errors_total (rate-limited ones also in tierline_rate_limit_waits_total),
   * labelled with the connector.
   */
  upstream<T extends object>(port: T, connector: string): T;
  /**
   * The store as the connectors get it: time a connector spends in it during one of its calls (recording what it is
   * about to send, or what it got back) is the service's own time, not time waiting on an upstream.
   */
  connectorStore<S extends Store>(store: S): S;
  /**
   * Times the intake of webhook events: from the arrival of the request that carried them (see request; reading,
   * verifying and mapping it) until they are stored, or until the ticket's first step starts if that is sooner.
   */
  intake<R>(ticketKeys: string[], run: () => Promise<R>): Promise<R>;
  /** Runs the handling of an inbound request, noting when it arrived for intake. */
  request<R>(run: () => Promise<R>): Promise<R>;
  /** For PipelineDeps.observeStep. */
  observeStep(job: Job, run: () => Promise<void>): Promise<void>;
  /**
   * The store with its exclusive sections timed: how long each waited for its turn and how long it held it
   * (tierline_step_lock_wait_seconds / _hold_seconds). Decisions take turns, so a long hold slows every ticket.
   */
  lockTimed<S extends Store>(store: S): S;
  /** Per-ticket sums for the most recent tickets (bounded). */
  ticket(key: string): TicketTiming | undefined;
};

const KEEP_TICKETS = 20_000;

/** Port methods that make no upstream call (they prepare records for the pipeline's commit): the step's own time. */
const LOCAL_METHODS: ReadonlySet<string | symbol> = new Set(['reserveTopic', 'reserveWriteBack']);

const NO_ERROR = Symbol('no error');

/**
 * The object with every method call bracketed: start() runs before the call and returns what to run once it has
 * finished (synchronously or when its promise settles), given the error or NO_ERROR; null to bracket nothing.
 */
function aroundCalls<T extends object>(obj: T, start: (method: string | symbol) => ((err: unknown) => void) | null): T {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const end = start(prop);
        if (!end) return (v as (...a: unknown[]) => unknown).apply(target, args);
        let out: unknown;
        try {
          out = (v as (...a: unknown[]) => unknown).apply(target, args);
        } catch (err) {
          end(err);
          throw err;
        }
        if (!(out instanceof Promise)) {
          end(NO_ERROR);
          return out;
        }
        return out.then(
          (x) => {
            end(NO_ERROR);
            return x;
          },
          (err: unknown) => {
            end(err);
            throw err;
          },
        );
      };
    },
  });
}

export function createStepTiming(metrics: Registry): StepTiming {
  const als = new AsyncLocalStorage<StepContext>();
  const arrivals = new AsyncLocalStorage<number>();
  const tickets = new Map<string, TicketTiming>();
  const lastEnd = new Map<string, number>();
  /** Intakes still running (waiting for the disk, answering the CRM), by ticket: when their request arrived. */
  const openIntakes = new Map<string, number>();
  const now = () => performance.now();

  // Calls of one step may overlap (a card post and a pin in parallel); the union of their intervals is what the step
  // waited, so the clock only runs while at least one call is open. A connector's store work inside a call stops the
  // clock even if another call is open at that moment (counted as own: the conservative side).
  const waiting = (ctx: StepContext) => ctx.active > 0 && ctx.local === 0;
  const shift = (ctx: StepContext, change: () => void) => {
    const was = waiting(ctx);
    change();
    const is = waiting(ctx);
    if (was && !is) ctx.upstreamMs += now() - ctx.since;
    else if (!was && is) ctx.since = now();
  };
  const enter = (ctx: StepContext) => shift(ctx, () => ctx.active++);
  const leave = (ctx: StepContext) => shift(ctx, () => ctx.active--);

  const entry = (key: string): TicketTiming => {
    const t = tickets.get(key) ?? { steps: 0, ownMs: 0, upstreamMs: 0, pickupMs: 0, intakeMs: 0, ownByStep: {}, upstreamByStep: {} };
    tickets.delete(key);
    tickets.set(key, t);
    if (tickets.size > KEEP_TICKETS) {
      const oldest = tickets.keys().next().value!;
      tickets.delete(oldest);
      lastEnd.delete(oldest);
    }
    return t;
  };

  return {
    request: (run) => arrivals.run(now(), run),

    async intake(keys, run) {
      const t0 = arrivals.getStore() ?? now();
      const unique = [...new Set(keys)];
      for (const k of unique) openIntakes.set(k, t0);
      try {
        return await run();
      } finally {
        const end = now();
        for (const k of unique) {
          // Unless the ticket's first step started first (observeStep took the intake's share up to then).
          if (openIntakes.get(k) !== t0) continue;
          openIntakes.delete(k);
          entry(k).intakeMs += end - t0;
          lastEnd.set(k, end);
        }
      }
    },

    upstream<T extends object>(port: T, connector: string): T {
      const failed = (err: unknown) => {
        const code = err instanceof AppError ? err.code : 'upstream';
        metrics.inc('tierline_upstream_errors_total', { connector, code });
        if (code === 'rate_limited') metrics.inc('tierline_rate_limit_waits_total', { connector });
      };
      return aroundCalls(port, (method) => {
        if (LOCAL_METHODS.has(method)) return null;
        const ctx = als.getStore();
        if (ctx) enter(ctx);
        return (err) => {
          if (ctx) leave(ctx);
          if (err !== NO_ERROR) failed(err);
        };
      });
    },

    connectorStore<S extends Store>(store: S): S {
      return aroundCalls(store, () => {
        const ctx = als.getStore();
        // Only inside an upstream call of a step; elsewhere the store's time is already the step's own.
        if (!ctx || ctx.active === 0) return null;
        shift(ctx, () => ctx.local++);
        return () => shift(ctx, () => ctx.local--);
      });
    },

    async observeStep(job, run) {
      const ctx: StepContext = { active: 0, local: 0, since: 0, upstreamMs: 0 };
      const t0 = now();
      // A step may start while its intake still waits for the disk to acknowledge the delivery; from then on the
      // ticket's time is this step's (the rest of the intake runs beside it, off the ticket's path).
      const arrived = openIntakes.get(job.ticketKey);
      if (arrived !== undefined) {
        openIntakes.delete(job.ticketKey);
        entry(job.ticketKey).intakeMs += t0 - arrived;
        lastEnd.set(job.ticketKey, t0);
      }
      // The scheduling share: the gap since this ticket's intake or previous step ended, during which nothing of the
      // ticket was running (the next step was stored and waited for the worker to claim it).
      const last = lastEnd.get(job.ticketKey);
      const pickupMs = last === undefined ? 0 : Math.max(0, t0 - last);
      try {
        await als.run(ctx, run);
      } finally {
        const wall = now() - t0;
        const own = Math.max(0, wall - ctx.upstreamMs);
        metrics.observe('tierline_step_own_seconds', { kind: job.kind }, own / 1000);
        metrics.observe('tierline_step_upstream_seconds', { kind: job.kind }, ctx.upstreamMs / 1000);
        lastEnd.set(job.ticketKey, Math.max(lastEnd.get(job.ticketKey) ?? 0, t0 + wall));
        const t = entry(job.ticketKey);
        t.steps++;
        t.ownMs += own;
        t.ownByStep[job.kind] = (t.ownByStep[job.kind] ?? 0) + own;
        t.upstreamMs += ctx.upstreamMs;
        t.upstreamByStep[job.kind] = (t.upstreamByStep[job.kind] ?? 0) + ctx.upstreamMs;
        t.pickupMs += pickupMs;
      }
    },

    lockTimed<S extends Store>(store: S): S {
      const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
        const asked = now();
        return store.exclusive(async () => {
          const got = now();
          metrics.observe('tierline_step_lock_wait_seconds', {}, (got - asked) / 1000);
          try {
            return await fn();
          } finally {
            metrics.observe('tierline_step_lock_hold_seconds', {}, (now() - got) / 1000);
          }
        });
      };
      return new Proxy(store, { get: (target, prop, receiver) => (prop === 'exclusive' ? exclusive : Reflect.get(target, prop, receiver)) });
    },

    ticket: (key) => tickets.get(key),
  };
}
