// Readiness: is this instance able to do its work right now? The store must take a write, and each connector must be
// healthy by its own account (connection state, recorded errors) and reachable: the CRMs are called (one cheap read
// per connected portal or org). CRM calls cost API allowance (Salesforce counts every call against the org's daily
// limit), and load balancers probe every few seconds, so a reachability result is reused for `crmCheckMs` and
// concurrent probes share one check.
import type { Store } from '../core/ports.ts';
import { errorMessage } from '../core/errors.ts';
import type { ConnectorHealth, Reachability } from './contracts.ts';
import { withTimeout } from './with-timeout.ts';

export type ReadinessSource = {
  id: string;
  health(): Promise<ConnectorHealth>;
  /** Calls the upstream (CRMs); sources without it are judged by health() alone (Telegram keeps a live connection). */
  reach?: () => Promise<Reachability>;
};

export type ReadinessReport = {
  ok: boolean;
  store: { ok: boolean; error?: string };
  connectors: Record<string, (ConnectorHealth & { reachable?: Reachability & { checkedAt: number } }) | { ok: false; error: string }>;
  outbox: { pending: number };
};

export type ReadinessOptions = {
  store: Store;
  sources: ReadinessSource[];
  /** How long a CRM reachability result is reused (default 30 s). */
  crmCheckMs?: number;
  /** A check that takes longer than this counts as unreachable (default 5 s). */
  timeoutMs?: number;
};

const FAILED_RECHECK_MS = 5_000;

export function createReadiness(opts: ReadinessOptions): { check(): Promise<ReadinessReport> } {
  const ttl = opts.crmCheckMs ?? 30_000;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  type CacheEntry = { at: number; failed: boolean; result: Promise<Reachability> };
  const cache = new Map<string, CacheEntry>();

  /**
   * The cached result while fresh; otherwise one new check, shared by every probe that arrives meanwhile. A failed
   * check is reused for at most 5 s, so an instance is not kept out of a load balancer long after its CRM recovered.
   */
  const reach = (id: string, call: () => Promise<Reachability>): Promise<Reachability & { checkedAt: number }> => {
    const now = Date.now(); // wall time, also under a test's manual clock: this paces calls to real upstreams
    let hit = cache.get(id);
    if (!hit || now - hit.at >= (hit.failed ? Math.min(ttl, FAILED_RECHECK_MS) : ttl)) {
      const entry: CacheEntry = { at: now, failed: false, result: withTimeout(call(), timeoutMs).catch((err: unknown): Reachability => ({ ok: false, accounts: [], error: errorMessage(err) })) };
      entry.result.then((r) => void (entry.failed = !r.ok));
      cache.set(id, (hit = entry));
    }
    const at = hit.at;
    return hit.result.then((r) => ({ ...r, checkedAt: at }));
  };

  return {
    async check() {
      let ok = true;
      let store: ReadinessReport['store'];
      try {
        await opts.store.kvPut('health', 'probe', Date.now());
        store = { ok: true };
      } catch (err) {
        ok = false;
        store = { ok: false, error: errorMessage(err) };
      }
      const connectors: ReadinessReport['connectors'] = {};
      await Promise.all(
        opts.sources.map(async (s) => {
          try {
            const [health, reachable] = await Promise.all([s.health(), s.reach ? reach(s.id, s.reach) : undefined]);
            connectors[s.id] = reachable ? { ...health, ok: health.ok && reachable.ok, reachable } : health;
          } catch (err) {
            connectors[s.id] = { ok: false, error: errorMessage(err) };
          }
          if (!connectors[s.id]!.ok) ok = false;
        }),
      );
      return { ok, store, connectors, outbox: { pending: await opts.store.pendingJobs().catch(() => -1) } };
    },
  };
}
