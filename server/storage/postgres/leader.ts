// One holder per role across all instances, decided by a PostgreSQL session advisory lock. The role that needs it is
// the Telegram MTProto connection of each account: two connections on one session would both consume its updates
// (each agent reply handled twice) and Telegram may revoke a session that is used from two places at once.
//
// The holder keeps a dedicated connection that holds the lock. If the holder dies, PostgreSQL drops the lock with
// the connection and a follower, retrying every retryMs, takes over. If the holder is cut off from the database
// while still running, its heartbeat fails within heartbeatMs + heartbeatTimeoutMs and it disconnects from Telegram
// at once, while the server ends the silent session (idle_session_timeout) and so frees the lock; a follower that
// takes over from a holder that did not release cleanly waits until the holder must have stood down, so the two
// never overlap. Followers do not touch Telegram: the store leaves the Telegram steps (MESSENGER_JOB_KINDS) to the
// holder (`excludeKinds: followerExcludes(leader)`), so every instance's tickets are sent through the holder.
import pg from 'pg';
import type { Clock, JobKind, Logger } from '../../../core/ports.ts';
import { withTimeout } from '../../with-timeout.ts';
import { LOCK_SPACE, PG_TYPES, describeDatabase, lockIdOf } from './pg-util.ts';

/** Pipeline steps that call Telegram; only the holder of the Telegram role runs them. */
export const MESSENGER_JOB_KINDS: readonly JobKind[] = ['topic', 'post', 'close_topic'];

export type LeaderOptions = {
  url: string;
  /** The role, e.g. `telegram:<account>`. One holder per name. */
  name: string;
  instanceId: string;
  logger?: Logger;
  clock?: Clock;
  /** This instance now holds the role: connect (MTProto) here. Heartbeats run meanwhile. */
  onElected(): Promise<void> | void;
  /** This instance no longer holds the role (stop, lost database, failed heartbeat): disconnect at once. */
  onDeposed(reason: string): Promise<void> | void;
  /** How often a follower tries to take the role (default 2 s). */
  retryMs?: number;
  /** How often the holder proves it still holds the lock (default 2 s). */
  heartbeatMs?: number;
  /** A heartbeat slower than this counts as a lost connection (default 3 s). */
  heartbeatTimeoutMs?: number;
};

export type LeaderInfo = { instanceId: string; since: number; heartbeatAt: number; released: boolean };

export type Leader = {
  readonly name: string;
  isLeader(): boolean;
  /** Who holds the role according to the database (for the console and /readyz). */
  holder(): Promise<LeaderInfo | null>;
  /** Releases the role if held (onDeposed runs first) and stops trying. */
  stop(): Promise<void>;
};

/** For openPostgresStore's excludeKinds: followers leave the Telegram steps to the holder. */
export function followerExcludes(leader: Pick<Leader, 'isLeader'>): () => readonly JobKind[] {
  return () => (leader.isLeader() ? [] : MESSENGER_JOB_KINDS);
}

export function startLeaderElection(opts: LeaderOptions): Leader {
  const clock = opts.clock ?? { now: () => Date.now() };
  const log = opts.logger;
  const retryMs = opts.retryMs ?? 2_000;
  const heartbeatMs = opts.heartbeatMs ?? 2_000;
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 3_000;
  const lockId = lockIdOf(opts.name);
  const where = describeDatabase(opts.url);

  let leader = false;
  let stopped = false;
  let wakeSleep: (() => void) | null = null;
  let lost: ((err: Error) => void) | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeSleep = null;
        resolve();
      }
      wakeSleep = done;
    });

  async function depose(reason: string): Promise<void> {
    if (!leader) return;
    leader = false;
    log?.warn('gave up the role', { role: opts.name, reason });
    try {
      await opts.onDeposed(reason);
    } catch (err) {
      log?.error('onDeposed failed', { role: opts.name, error: err instanceof Error ? err.message : String(err) });
    }
  }

  async function hold(c: pg.Client): Promise<void> {
    const prev = (await c.query<{ instance_id: string; heartbeat_at: number; released: boolean }>('SELECT instance_id, heartbeat_at, released FROM leaders WHERE name = $1', [opts.name])).rows[0];
    if (prev && !prev.released && prev.instance_id !== opts.instanceId) {
      // The previous holder did not hand over cleanly; if it is still alive but cut off from the database it stops
      // itself within one heartbeat plus timeout of its last heartbeat. Wait that out before connecting.
      const wait = prev.heartbeat_at + heartbeatMs + heartbeatTimeoutMs - clock.now();
      if (wait > 0) {
        log?.info('waiting for the previous holder to stand down', { role: opts.name, previous: prev.instance_id, waitMs: Math.round(wait) });
        await sleep(wait);
        if (stopped) return;
      }
    }
    const now = clock.now();
    await c.query(
      `INSERT INTO leaders (name, instance_id, since, heartbeat_at, released) VALUES ($1, $2, $3, $3, false)
       ON CONFLICT (name) DO UPDATE SET instance_id = EXCLUDED.instance_id, since = EXCLUDED.since, heartbeat_at = EXCLUDED.heartbeat_at, released = false`,
      [opts.name, opts.instanceId, now],
    );
    leader = true;
    log?.info('took the role', { role: opts.name, instance: opts.instanceId });
    // Connecting to Telegram can take seconds; heartbeats keep running meanwhile.
    const elected = Promise.resolve()
      .then(() => opts.onElected())
      .catch((err) => {
        log?.error('could not start after taking the role; handing it on', { role: opts.name, error: err instanceof Error ? err.message : String(err) });
        lost?.(new Error('onElected failed'));
      });
    try {
      while (!stopped && leader) {
        await sleep(heartbeatMs);
        if (stopped || !leader) break;
        const r = await withTimeout(
          c.query<{ held: boolean }>(
            `WITH hb AS (UPDATE leaders SET heartbeat_at = $3 WHERE name = $1 AND instance_id = $2)
             SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $4::oid AND objid = $5::oid AND objsubid = 2 AND pid = pg_backend_pid() AND granted) AS held`,
            [opts.name, opts.instanceId, clock.now(), LOCK_SPACE, lockId],
          ),
          heartbeatTimeoutMs,
        );
        if (!r.rows[0]?.held) throw new Error('the advisory lock is no longer held');
      }
    } finally {
      await elected;
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      const c = new pg.Client({ connectionString: opts.url, application_name: `tierline:${opts.instanceId}:leader`.slice(0, 63), keepAlive: true, types: PG_TYPES });
      // A dropped connection surfaces here (and as a failed query); either way the role is given up at once.
      const onLost = new Promise<never>((_, reject) => {
        lost = reject;
        c.on('error', reject);
      });
      onLost.catch(() => undefined);
      try {
        await Promise.race([c.connect(), onLost]);
        // The server ends this session (dropping the lock) when heartbeats stop arriving, e.g. behind a network
        // partition that neither side's TCP notices for minutes. PostgreSQL 14+; older servers keep the lock until
        // TCP keepalive gives up.
        await Promise.race([c.query(`SET idle_session_timeout = ${Math.round(2 * heartbeatMs + heartbeatTimeoutMs)}`).catch(() => undefined), onLost]);
        let got = false;
        while (!stopped && !got) {
          got = (await Promise.race([c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_SPACE, lockId]), onLost])).rows[0]!.ok;
          if (!got) await Promise.race([sleep(retryMs), onLost]);
        }
        if (got && !stopped) await Promise.race([hold(c), onLost]);
        if (stopped) {
          const wasLeader = leader;
          await depose('stopping');
          if (wasLeader) await c.query('UPDATE leaders SET released = true WHERE name = $1 AND instance_id = $2', [opts.name, opts.instanceId]).catch(() => undefined);
          await c.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
        }
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        await depose(`lost ${where}: ${msg}`);
        if (!stopped) log?.warn('role election connection failed; retrying', { role: opts.name, error: msg, retryMs });
      } finally {
        lost = null;
        await c.end().catch(() => undefined);
      }
      if (!stopped) await sleep(retryMs);
    }
  }

  const running = loop();

  return {
    name: opts.name,
    isLeader: () => leader,
    async holder() {
      const c = new pg.Client({ connectionString: opts.url, types: PG_TYPES });
      await c.connect();
      try {
        const r = (await c.query<{ instance_id: string; since: number; heartbeat_at: number; released: boolean }>('SELECT instance_id, since, heartbeat_at, released FROM leaders WHERE name = $1', [opts.name])).rows[0];
        return r ? { instanceId: r.instance_id, since: r.since, heartbeatAt: r.heartbeat_at, released: r.released } : null;
      } finally {
        await c.end();
      }
    },
    async stop() {
      if (stopped) return running;
      stopped = true;
      wakeSleep?.();
      await running;
    },
  };
}
