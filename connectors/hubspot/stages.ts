// Whether a ticket's pipeline stage is a closed one. HubSpot says so per stage (metadata.ticketState OPEN / CLOSED),
// and stage ids and names differ per portal and pipeline, so the pipelines are read from the portal (one call) and
// kept for a while: stages change rarely, and a stage Tierline has not seen yet makes it read them again.
import { isRetryable, errorMessage } from '../../core/errors.ts';
import type { Clock, Logger } from '../../core/ports.ts';
import type { PortalSession } from './client.ts';

/** How long a portal's pipelines are trusted; an unknown stage re-reads them sooner (at most once a minute). */
const FRESH_MS = 10 * 60_000;
const UNKNOWN_RETRY_MS = 60_000;

type Pipelines = { results?: { id: string; stages?: { id: string; metadata?: Record<string, string> }[] }[] };
/** When the pipelines were read, and each stage seen: closed or not. */
type Known = { at: number; closed: Map<string, boolean> };

const stageKey = (pipeline: string, stage: string) => `${pipeline}\u0000${stage}`;

export function createStageStates(o: { session: (portal: string) => PortalSession; clock: Clock; logger: Logger }) {
  const portals = new Map<string, Known>();
  const loading = new Map<string, Promise<Known>>();

  async function load(portal: string): Promise<Known> {
    const now = o.clock.now();
    try {
      const r = (await o.session(portal).run('read the ticket pipelines', (c) => c.crm.pipelines.pipelinesApi.getAll('tickets'))) as Pipelines;
      const closed = new Map<string, boolean>();
      for (const p of r.results ?? []) for (const s of p.stages ?? []) closed.set(stageKey(String(p.id), String(s.id)), s.metadata?.ticketState === 'CLOSED');
      return { at: now, closed };
    } catch (err) {
      if (isRetryable(err)) throw err;
      // A portal that will not show its pipelines (a scope taken away): tickets are routed as open, as before this
      // check existed, and the log says why until it works again.
      o.logger.warn('hubspot: could not read the ticket pipelines; tickets in closed stages will be routed as open', { portal, error: errorMessage(err) });
      return { at: now, closed: new Map() };
    }
  }

  function refresh(portal: string): Promise<Known> {
    let p = loading.get(portal);
    if (!p) {
      p = load(portal)
        .then((k) => (portals.set(portal, k), k))
        .finally(() => loading.delete(portal));
      loading.set(portal, p);
    }
    return p;
  }

  return {
    /** Whether the stage is closed in this portal (false for an unknown stage once the pipelines were re-read). */
    async isClosed(portal: string, pipeline: string, stage: string): Promise<boolean> {
      const key = stageKey(pipeline, stage);
      const now = o.clock.now();
      let k = portals.get(portal);
      const stale = !k || now - k.at >= FRESH_MS;
      const unseen = !!k && !k.closed.has(key) && now - k.at >= UNKNOWN_RETRY_MS;
      if (stale || unseen) k = await refresh(portal);
      return k!.closed.get(key) === true;
    },
  };
}
