// A throwaway PostgreSQL cluster for tests and benchmarks: initdb into a temp dir, pg_ctl start on 127.0.0.1 with a
// free port, trust auth, removed again on stop. Uses Debian's binaries (/usr/lib/postgresql/<version>/bin). As root,
// the server runs as the `postgres` user (PostgreSQL refuses to run as root).
//
// TIERLINE_TEST_DATABASE_URL=postgres://... uses an existing server instead (each test gets its own database there).
// With neither, the PostgreSQL tests are skipped with the reason printed; TIERLINE_REQUIRE_POSTGRES=1 (set by CI)
// turns that skip into a failure.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.ts';

const run = promisify(execFile);

export type TestPostgres = {
  /** URL of the `postgres` maintenance database of this cluster. */
  url: string;
  /** A fresh empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
};

function findBinDir(): string | null {
  const explicit = process.env.TIERLINE_PG_BIN;
  if (explicit && existsSync(join(explicit, 'initdb'))) return explicit;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

const BIN = findBinDir();
const EXTERNAL = process.env.TIERLINE_TEST_DATABASE_URL || null;

/** Why the PostgreSQL tests cannot run here, or null when they can. */
export const postgresSkipReason: string | null =
  EXTERNAL || BIN ? null : 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install Debian\'s `postgresql` package, or set TIERLINE_TEST_DATABASE_URL)';

if (postgresSkipReason) {
  if (process.env.TIERLINE_REQUIRE_POSTGRES === '1') throw new Error(`PostgreSQL tests are required (TIERLINE_REQUIRE_POSTGRES=1) but cannot run: ${postgresSkipReason}`);
  process.stderr.write(`\n[postgres] SKIPPING the PostgreSQL store tests: ${postgresSkipReason}\n\n`);
}

/** The command line that runs a PostgreSQL binary, as the `postgres` user when we are root. */
function asServerUserCommand(bin: string, args: string[]): [string, string[]] {
  if (userInfo().uid !== 0) return [bin, args];
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p));
  if (runuser) return [runuser, ['-u', 'postgres', '--', bin, ...args]];
  const quoted = [bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['su', ['postgres', '-s', '/bin/sh', '-c', quoted]];
}

async function asServerUser(bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = asServerUserCommand(bin, args);
  await run(cmd, argv, { timeout: 60_000 });
}

async function serverUserIds(): Promise<{ uid: number; gid: number } | null> {
  if (userInfo().uid !== 0) return null;
  const { stdout } = await run('id', ['-u', 'postgres']).catch(() => {
    throw new Error('Running as root, but there is no `postgres` user to run the test cluster as; install Debian\'s postgresql package (it creates the user).');
  });
  const gid = (await run('id', ['-g', 'postgres'])).stdout;
  return { uid: Number(stdout.trim()), gid: Number(gid.trim()) };
}

let counter = 0;

async function createDb(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE "${name}"`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export type StartOptions = {
  /** fsync and synchronous commit as in production (benchmarks). Tests run without, for speed. */
  durable?: boolean;
  maxConnections?: number;
};

/** Starts a throwaway cluster (or attaches to TIERLINE_TEST_DATABASE_URL). Call only when postgresSkipReason is null. */
export async function startTestPostgres(opts: StartOptions = {}): Promise<TestPostgres> {
  const prefix = `tl_${process.pid}_${Date.now().toString(36)}`;
  if (EXTERNAL) {
    const made: string[] = [];
    return {
      url: EXTERNAL,
      async createDatabase(name) {
        const db = name ?? `${prefix}_${++counter}`;
        made.push(db);
        return createDb(EXTERNAL, db);
      },
      async stop() {
        const c = new pg.Client({ connectionString: EXTERNAL });
        await c.connect();
        try {
          for (const db of made) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
        } finally {
          await c.end();
        }
      },
    };
  }
  if (!BIN) throw new Error(postgresSkipReason ?? 'no PostgreSQL binaries');
  const dir = await mkdtemp(join(tmpdir(), 'tierline-pg-'));
  const ids = await serverUserIds();
  if (ids) await chown(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  await asServerUser(join(BIN, 'initdb'), ['-D', data, '-U', 'tierline', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions']).catch(async () =>
    // Older initdb versions do not know --no-instructions.
    asServerUser(join(BIN, 'initdb'), ['-D', data, '-U', 'tierline', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']),
  );
  const settings = [
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${dir}`,
    `-c max_connections=${opts.maxConnections ?? 200}`,
    `-c shared_buffers=256MB`,
    ...(opts.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await asServerUser(join(BIN, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} ${settings.join(' ')}`, 'start']);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (lastError) {
    const logText = await readFile(join(dir, 'server.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`The test PostgreSQL cluster did not start: ${(lastError as Error).message}\n${logText.slice(-2000)}`);
  }
  const url = `postgres://tierline@127.0.0.1:${port}/postgres`;
  let stopped = false;
  // If the test process dies without running stop(), do not leave a server running and a directory behind.
  const onExit = () => {
    try {
      const [cmd, argv] = asServerUserCommand(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      execFileSync(cmd, argv, { stdio: 'ignore' });
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  return {
    url,
    createDatabase: (name) => createDb(url, name ?? `${prefix}_${++counter}`),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      await asServerUser(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
