// `npm run salesforce:deploy -- [options]`: deploys connectors/salesforce/force-app (the Tierline fields, the
// Routing_Event__c object, the permission sets, the outbound message and the new-Case flow) into an org through
// jsforce's Metadata API, for admins without the sf CLI.
//
// Options:
//   --org <orgId>              the org whose install Tierline stored (DATA_DIR + SECRETS_KEY), when not using the env below
//   --check-only               validate only; the org is not changed
//   --public-url <url>         where Salesforce reaches Tierline (default PUBLIC_URL); the outbound message posts to
//                              <url>/webhooks/salesforce
//   --integration-user <name>  the user outbound messages are sent as (default: the user this command connects as)
//   --out <file.zip>           write the Metadata API package to a file instead of deploying (no login needed)
//   --json                     print the result as JSON
// Login (the first that applies):
//   SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN         an admin's session
//   SALESFORCE_CLIENT_ID + SALESFORCE_USERNAME + SALESFORCE_PRIVATE_KEY_FILE (+ SALESFORCE_LOGIN_URL): JWT bearer
//   --org: the install stored by Tierline in DATA_DIR (the service must have been connected through OAuth)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import jsforce, { type Connection } from 'jsforce';
import type { Store } from '../../core/ports.ts';
import { createSecretBox } from '../shared/secrets.ts';
import { createClients, DEFAULT_TUNING, identityOf, signJwtAssertion, JWT_GRANT, type TokenResponse } from './client.ts';
import { describeError } from './errors.ts';
import { isSalesforceId, to18 } from './ids.ts';
import { deployForceApp, readForceApp, toMetadataPackage, zipPackage, type DeployOutcome } from './metadata.ts';
import { DirectAwareTransport } from './proxy.ts';
import { API_VERSION } from './schema.ts';

type Args = { org?: string; checkOnly: boolean; publicUrl?: string; integrationUser?: string; out?: string; json: boolean };

export class UsageError extends Error {}

export function parseArgs(argv: string[]): Args {
  const a: Args = { checkOnly: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (!v || v.startsWith('--')) throw new UsageError(`${k} needs a value`);
      return v;
    };
    if (k === '--org') a.org = val();
    else if (k === '--check-only') a.checkOnly = true;
    else if (k === '--public-url') a.publicUrl = val();
    else if (k === '--integration-user') a.integrationUser = val();
    else if (k === '--out') a.out = val();
    else if (k === '--json') a.json = true;
    else throw new UsageError(`unknown option ${k}`);
  }
  if (a.org && !isSalesforceId(a.org)) throw new UsageError(`--org ${a.org} is not a Salesforce org id`);
  return a;
}

type Env = Record<string, string | undefined>;

function connection(cfg: ConstructorParameters<typeof jsforce.Connection>[0]): Connection {
  const conn = new jsforce.Connection({ version: API_VERSION, ...cfg });
  const t = new DirectAwareTransport();
  conn._transport = t;
  conn.oauth2._transport = t;
  return conn;
}

async function usernameOf(conn: Connection, idUrl: string | null): Promise<string | null> {
  try {
    const ident = (await conn.request(idUrl ?? `${conn.instanceUrl}/services/oauth2/userinfo`)) as { username?: string; preferred_username?: string };
    return ident.username ?? ident.preferred_username ?? null;
  } catch {
    return null;
  }
}

/** Logs in with whatever the environment offers; returns the connection and who it is. */
/** close: releases what the login holds (the store behind an --org install); call it after the deploy, not before. */
export async function login(a: Args, env: Env): Promise<{ conn: Connection; username: string | null; how: string; close?: () => Promise<void> }> {
  if (env.SALESFORCE_INSTANCE_URL && env.SALESFORCE_ACCESS_TOKEN) {
    const conn = connection({ instanceUrl: env.SALESFORCE_INSTANCE_URL.replace(/\/+$/, ''), accessToken: env.SALESFORCE_ACCESS_TOKEN });
    return { conn, username: await usernameOf(conn, null), how: 'the session in SALESFORCE_ACCESS_TOKEN' };
  }
  const loginUrl = (env.SALESFORCE_LOGIN_URL || 'https://login.salesforce.com').replace(/\/+$/, '');
  if (env.SALESFORCE_CLIENT_ID && env.SALESFORCE_USERNAME && env.SALESFORCE_PRIVATE_KEY_FILE) {
    const conn = connection({ loginUrl, oauth2: { clientId: env.SALESFORCE_CLIENT_ID, loginUrl } });
    const assertion = signJwtAssertion({ clientId: env.SALESFORCE_CLIENT_ID, username: env.SALESFORCE_USERNAME, audience: loginUrl, privateKeyPem: readFileSync(env.SALESFORCE_PRIVATE_KEY_FILE, 'utf8'), nowMs: Date.now() });
    const tok = (await conn.oauth2.requestToken({ grant_type: JWT_GRANT, assertion })) as unknown as TokenResponse;
    conn._establish({ instanceUrl: tok.instance_url, accessToken: tok.access_token });
    identityOf(tok.id);
    return { conn, username: env.SALESFORCE_USERNAME, how: `the JWT bearer flow as ${env.SALESFORCE_USERNAME}` };
  }
  if (a.org) {
    const dataDir = resolve(env.DATA_DIR || './data');
    const keyFile = join(dataDir, 'secrets-key');
    const secretsKey = env.SECRETS_KEY || (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '');
    if (!secretsKey) throw new UsageError(`--org needs SECRETS_KEY (or ${keyFile}) to open the stored install`);
    if (!env.SALESFORCE_CLIENT_ID || !env.SALESFORCE_CLIENT_SECRET) throw new UsageError('--org needs SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET (the connected app the org was installed with) to refresh the stored session; use the same values as the service');
    // The service's store: PostgreSQL when DATABASE_URL is set (the service may keep running), else the lowdb data
    // directory (stop the service first: one process owns it). Loaded by path so this command has no compile-time
    // tie to the server. The store stays open until the deploy ends, so a token refreshed meanwhile is saved.
    const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
    const clock = { now: () => Date.now() };
    const serverModule = (f: string) => pathToFileURL(resolve(import.meta.dirname, '../../server/storage', f)).href;
    let store: Store;
    if (env.DATABASE_URL) {
      const { openPostgresStore } = (await import(serverModule('postgres/postgres-store.ts'))) as { openPostgresStore: (o: { url: string; clock: { now(): number }; logger: unknown; instanceId: string; migrate: boolean }) => Promise<Store> };
      store = await openPostgresStore({ url: env.DATABASE_URL, clock, logger: silent, instanceId: 'salesforce-deploy', migrate: false });
    } else {
      const { openLowdbStore } = (await import(serverModule('lowdb-store.ts'))) as { openLowdbStore: (o: { dir: string; clock: { now(): number }; logger: unknown }) => Promise<Store> };
      store = await openLowdbStore({ dir: dataDir, clock, logger: silent });
    }
    try {
      const clients = createClients({
        env: { clientId: env.SALESFORCE_CLIENT_ID, clientSecret: env.SALESFORCE_CLIENT_SECRET, loginUrl, orgIds: [a.org], publicUrl: env.PUBLIC_URL || 'http://localhost' },
        mode: 'real',
        store,
        secrets: createSecretBox(secretsKey),
        logger: silent,
        clock,
        tuning: DEFAULT_TUNING,
        privateKey: () => null,
      });
      const s = await clients.session(to18(a.org));
      await s.run('read', 'check the connection', (conn) => conn.request(`/services/data/v${API_VERSION}/limits`));
      const inst = await clients.loadInstall(to18(a.org));
      return { conn: s.conn, username: inst?.username ?? null, how: `the install Tierline stored for org ${to18(a.org)}`, close: () => store.close() };
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  throw new UsageError('no Salesforce login: set SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN, or SALESFORCE_CLIENT_ID + SALESFORCE_USERNAME + SALESFORCE_PRIVATE_KEY_FILE, or pass --org for an org connected through Tierline');
}

export async function main(argv: string[], env: Env, out: (s: string) => void): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(argv);
  } catch (err) {
    out(`salesforce:deploy: ${(err as Error).message}\nSee the header of connectors/salesforce/deploy.ts for the options.`);
    return 2;
  }
  const publicUrl = (a.publicUrl ?? env.PUBLIC_URL ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s]+$/.test(publicUrl)) {
    out('salesforce:deploy: set PUBLIC_URL (or --public-url) to the URL Salesforce reaches Tierline at; the outbound message posts to <url>/webhooks/salesforce.');
    return 2;
  }
  try {
    if (a.out) {
      if (!a.integrationUser) throw new UsageError('--out needs --integration-user (no login happens to find the user)');
      writeFileSync(a.out, zipPackage(toMetadataPackage(readForceApp(), { publicUrl, integrationUser: a.integrationUser })));
      out(`wrote ${a.out}: deploy it with Workbench (Migration > Deploy) or any Metadata API client`);
      return 0;
    }
    const who = await login(a, env);
    let r: DeployOutcome;
    try {
      const integrationUser = a.integrationUser ?? who.username;
      if (!integrationUser) throw new UsageError('could not tell which user this login is; pass --integration-user <username>');
      if (!a.json) out(`${a.checkOnly ? 'Validating' : 'Deploying'} Tierline metadata to ${who.conn.instanceUrl} using ${who.how}; outbound messages go to ${publicUrl}/webhooks/salesforce as ${integrationUser}...`);
      r = await deployForceApp(who.conn, { publicUrl, integrationUser, checkOnly: a.checkOnly });
    } finally {
      await who.close?.();
    }
    if (a.json) out(JSON.stringify(r));
    else if (r.success) {
      out(`${a.checkOnly ? 'Validated' : 'Deployed'}: ${r.componentsDeployed || r.componentsTotal} of ${r.componentsTotal} components (deploy ${r.id}).`);
      if (!a.checkOnly) out('Next: assign the "Tierline Integration" permission set to the connected user, "Tierline Routing History" to reps, and add the Routing History related list to the Case page layout.');
    } else {
      out(`Deploy ${r.id} failed (${r.status}); nothing was changed:`);
      for (const f of r.failures) out(`  - ${f.component}: ${f.problem}`);
    }
    return r.success ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      out(`salesforce:deploy: ${err.message}`);
      return 2;
    }
    const d = describeError(err);
    out(`salesforce:deploy failed: ${d.code}: ${d.message}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main(process.argv.slice(2), process.env, (s) => process.stdout.write(s + '\n')).then((code) => process.exit(code));
}
