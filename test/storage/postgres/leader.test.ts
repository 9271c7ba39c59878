// The Telegram role: exactly one instance holds it, another takes over when the holder stops, loses its database
// connection, or is killed, and two never hold it at the same time.
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followerExcludes, MESSENGER_JOB_KINDS, startLeaderElection, type Leader } from '../../../server/storage/postgres/leader.ts';
import { job, postgresSkipReason, usePostgres } from './helpers.ts';

/** A TCP proxy to PostgreSQL that can stop forwarding without closing anything: a partition neither side notices. */
async function frozenProxy(target: URL): Promise<{ url: string; freeze(): void; close(): void }> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => void (frozen || upstream.write(d)));
    upstream.on('data', (d) => void (frozen || client.write(d)));
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done).on('close', () => frozen || done());
    upstream.on('error', done).on('close', () => frozen || done());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = new URL(target);
  u.port = String((server.address() as { port: number }).port);
  return {
    url: u.toString(),
    freeze: () => void (frozen = true),
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(postgresSkipReason !== null)('leader lock for the Telegram connection', () => {
  const db = usePostgres();
  let url = '';
  const started: Leader[] = [];
  beforeAll(async () => {
    await db.start();
    url = await db.database();
    await db.open({ url }); // migrates: the leaders table
  }, 60_000);
  afterAll(async () => {
    for (const l of started) await l.stop();
    await db.stop();
  });

  /** Electors that record how many of them believe they hold the role at each moment. */
  function contenders(n: number, name: string, urls: string[] = []) {
    const state = { holding: new Set<string>(), maxHolding: 0, elections: [] as string[], depositions: [] as string[] };
    const leaders = Array.from({ length: n }, (_, i) => {
      const id = `${name}/inst-${i}`;
      const l = startLeaderElection({
        url: urls[i] ?? url,
        name,
        instanceId: id,
        retryMs: 50,
        heartbeatMs: 100,
        heartbeatTimeoutMs: 500,
        onElected: () => {
          state.holding.add(id);
          state.elections.push(id);
          state.maxHolding = Math.max(state.maxHolding, state.holding.size);
        },
        onDeposed: (reason) => {
          state.holding.delete(id);
          state.depositions.push(`${id}: ${reason}`);
        },
      });
      started.push(l);
      return l;
    });
    return { state, leaders };
  }

  it('exactly one of three holds the role; stopping it hands the role on without overlap', async () => {
    const { state, leaders } = contenders(3, 'telegram:acct-1');
    await until(() => state.holding.size === 1, 'a holder');
    await new Promise((r) => setTimeout(r, 300)); // several retry rounds of the others
    expect(leaders.filter((l) => l.isLeader())).toHaveLength(1);
    const first = leaders.find((l) => l.isLeader())!;
    expect((await first.holder())?.instanceId).toBe([...state.holding][0]);
    await first.stop();
    await until(() => state.holding.size === 1 && state.elections.length === 2, 'a new holder');
    expect(state.maxHolding).toBe(1);
    expect(leaders.filter((l) => l.isLeader())).toHaveLength(1);
  });

  it('a holder whose database connection is cut stands down, and the next one takes over without overlap', async () => {
    const { state, leaders } = contenders(2, 'telegram:acct-2');
    await until(() => state.holding.size === 1, 'a holder');
    const holderId = [...state.holding][0]!;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    // What a database failover looks like to the holder: its session is gone.
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`tierline:${holderId}:leader`]);
    await admin.end();
    await until(() => state.elections.length === 2, 'the other instance to take over');
    expect(state.depositions.some((d) => d.startsWith(`${holderId}: lost`))).toBe(true);
    expect(state.maxHolding).toBe(1);
    expect(leaders.filter((l) => l.isLeader())).toHaveLength(1);
  });

  it('a network partition (silent, nothing closes): the holder stands down, the server frees the lock, the follower waits, then takes over', async () => {
    const proxy = await frozenProxy(new URL(url));
    const name = 'telegram:acct-6';
    const events: string[] = [];
    const held = new Set<string>();
    let maxHeld = 0;
    const mk = (id: string, via: string) => {
      const l = startLeaderElection({
        url: via,
        name,
        instanceId: id,
        retryMs: 50,
        heartbeatMs: 100,
        heartbeatTimeoutMs: 300,
        onElected: () => {
          held.add(id);
          maxHeld = Math.max(maxHeld, held.size);
          events.push(`elected ${id}`);
        },
        onDeposed: () => {
          held.delete(id);
          events.push(`deposed ${id}`);
        },
      });
      started.push(l);
      return l;
    };
    const behind = mk('behind-proxy', proxy.url);
    await until(() => behind.isLeader(), 'the proxied instance to hold the role');
    const direct = mk('direct', url);
    await new Promise((r) => setTimeout(r, 300));
    expect(direct.isLeader()).toBe(false);
    proxy.freeze();
    await until(() => direct.isLeader(), 'the direct instance to take over');
    expect(events).toEqual(['elected behind-proxy', 'deposed behind-proxy', 'elected direct']);
    expect(maxHeld).toBe(1);
    proxy.close();
  });

  it('a holder process killed with SIGKILL is replaced', async () => {
    const name = 'telegram:acct-3';
    const child = spawn(process.execPath, [new URL('./procs/leader-holder.ts', import.meta.url).pathname, JSON.stringify({ url, name, instanceId: 'child' })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await until(() => out.includes('elected'), 'the child to hold the role');
    const { state } = contenders(1, name);
    await new Promise((r) => setTimeout(r, 300));
    expect(state.holding.size).toBe(0); // the child still holds it
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    await until(() => state.holding.size === 1, 'takeover after the kill');
  });

  it('roles are independent per account, and followers leave the Telegram steps to the holder', async () => {
    const a = contenders(1, 'telegram:acct-4');
    const b = contenders(1, 'telegram:acct-5');
    await until(() => a.state.holding.size === 1 && b.state.holding.size === 1, 'both roles held');
    expect(followerExcludes(a.leaders[0]!)()).toEqual([]);
    expect(followerExcludes({ isLeader: () => false })()).toEqual(MESSENGER_JOB_KINDS);

    let follower = true;
    const store = await db.open({ url: await db.database(), excludeKinds: followerExcludes({ isLeader: () => !follower }) });
    await store.commit({ jobs: [job('r1', { kind: 'route', ticketKey: 'a' }), job('p1', { kind: 'post', ticketKey: 'b' }), job('t1', { kind: 'topic', ticketKey: 'c' }), job('w1', { kind: 'writeback', ticketKey: 'd' })] });
    expect((await store.claimJobs(2_000, 10, 1_000)).map((j) => j.id).sort()).toEqual(['r1', 'w1']);
    follower = false;
    expect((await store.claimJobs(2_000, 10, 1_000)).map((j) => j.id).sort()).toEqual(['p1', 't1']);
  });
});
