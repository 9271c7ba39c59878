// Suite 3, secrets: CRM access and refresh tokens and the Telegram session are stored sealed (AES-256-GCM under
// SECRETS_KEY), the service refuses real mode without SECRETS_KEY, and no configured or issued secret appears in any
// log line or console output of a full run: the service started with startService in sandbox mode (lowdb in a data
// directory), tickets through both CRMs with injected upstream faults, hostile and legitimate admin and console
// traffic, then every secret value looked for in everything that was written, and in the data directory.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../connectors/shared/secrets.ts';
import type { TelegramSandbox } from '../../connectors/telegram/sandbox/index.ts';
import { EnvError, loadEnv } from '../../server/env.ts';
import { createLogger } from '../../server/logger.ts';
import { startService, type Service } from '../../server/service.ts';
import { freePort } from '../setup/ports.ts';
import { SECRETS_KEY, startWorld, type World } from './world.ts';

const SEALED = /^v1:[\w-]{16}:[\w-]{22}:[\w-]+$/;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('secrets at rest', () => {
  it('HubSpot and Salesforce access and refresh tokens are sealed in the store and open only with the key', async () => {
    const w: World = await startWorld({ hubspotOAuthOnly: true });
    cleanup.push(() => w.close());
    await w.installHubspotOAuth();
    const box = createSecretBox(SECRETS_KEY);
    const plain: string[] = [];
    const hs = await w.store.kvList<Record<string, unknown>>('hubspot:installs');
    const sf = await w.store.kvList<Record<string, unknown>>('salesforce:installs');
    expect(hs.length).toBeGreaterThan(0);
    expect(sf.length).toBeGreaterThan(0);
    for (const { value } of [...hs, ...sf]) {
      for (const field of ['accessToken', 'refreshToken'] as const) {
        const v = value[field];
        if (v === null && field === 'refreshToken') continue;
        expect(v, `${field} is stored sealed`).toMatch(SEALED);
        const opened = box.open(v as string);
        expect(opened.length).toBeGreaterThan(8);
        plain.push(opened);
      }
    }
    // The plain tokens appear nowhere in what the store holds.
    const everything = JSON.stringify([await w.snapshot(), hs, sf]);
    for (const p of plain) expect(everything.includes(p), 'a plain token is in the store').toBe(false);
    // Another key, or one changed character, does not open them.
    const other = createSecretBox('another-secrets-key-0123456789abcdefghij');
    const one = hs[0]!.value.accessToken as string;
    expect(() => other.open(one)).toThrow(/SECRETS_KEY differs/);
    const tampered = one.slice(0, -2) + (one.endsWith('A') ? 'BB' : 'AA');
    expect(() => box.open(tampered)).toThrow(/cannot be decrypted/);
  });

  // The sandbox connects without a session string, so the path that stores one (a bot signing in for real, the intake
  // bot likewise) cannot run here; its source is checked instead: every write of a session goes through seal(), and
  // every read through open().
  it('the Telegram sessions (service account bot, intake bot) are only ever stored sealed', () => {
    const files = ['connectors/telegram/client.ts', 'connectors/telegram/intake/bot.ts'].map((f) => [f, readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8')] as const);
    let writes = 0;
    for (const [f, src] of files) {
      for (const line of src.split('\n').filter((l) => /kvPut\(NS_(BOT_)?SESSION/.test(l))) {
        writes++;
        expect(line, `${f}: a session written without seal()`).toMatch(/kvPut\(NS_(BOT_)?SESSION, '[a-z]+', (opts|o)\.secrets\.seal\(/);
      }
      for (const line of src.split('\n').filter((l) => /kvGet<string>\(NS_(BOT_)?SESSION/.test(l))) expect(src.includes('secrets.open(sealed)'), `${f}: ${line.trim()}`).toBe(true);
    }
    expect(writes).toBe(2);
  });

  it('sealing is AES-256-GCM with a fresh IV each time; short keys are refused', () => {
    const box = createSecretBox(SECRETS_KEY);
    const a = box.seal('refresh-token-value');
    const b = box.seal('refresh-token-value');
    expect(a).not.toBe(b);
    expect(a.split(':')[1]).not.toBe(b.split(':')[1]);
    expect(Buffer.from(a.split(':')[1]!, 'base64url')).toHaveLength(12); // GCM's 96-bit IV
    expect(Buffer.from(a.split(':')[2]!, 'base64url')).toHaveLength(16); // 128-bit tag
    expect(box.open(a)).toBe('refresh-token-value');
    expect(() => createSecretBox('too-short')).toThrow(/too short/);
  });
});

describe('SECRETS_KEY is required for real mode', () => {
  const base = { ADMIN_TOKEN: 'a'.repeat(32), PUBLIC_URL: 'https://tierline.example.com' };
  it.each([
    ['HubSpot', { HUBSPOT_ACCESS_TOKEN: 'pat-na1-secret-value-123456' }],
    ['HubSpot OAuth', { HUBSPOT_CLIENT_ID: 'client-id-1', HUBSPOT_CLIENT_SECRET: 'hs-client-secret-value-999' }],
    ['Salesforce', { SALESFORCE_CLIENT_ID: 'sf-client', SALESFORCE_CLIENT_SECRET: 'sf-client-secret-value-777', SALESFORCE_ORG_IDS: '00DTL00000000012AA' }],
    ['Telegram', { TELEGRAM_API_ID: '12345', TELEGRAM_API_HASH: '0123456789abcdef0123456789abcdef', TELEGRAM_SESSION: '1BQANOTAREALSESSIONSTRINGvalue==' }],
  ])('%s credentials without SECRETS_KEY: the service refuses to start, naming SECRETS_KEY and no secret', (_name, creds) => {
    let err: unknown = null;
    try {
      loadEnv({ ...base, ...creds });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvError);
    const msg = (err as EnvError).message;
    expect(msg).toMatch(/SECRETS_KEY: required when any connector runs for real/);
    for (const v of Object.values({ ...base, ...creds })) if (v.length >= 16 && !v.startsWith('https:')) expect(msg.includes(v), `message leaks ${v}`).toBe(false);
  });
});

async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('no secret in any log line of a full run', () => {
  it('service in sandbox mode with injected faults, hostile and legitimate traffic: every secret value is absent from all output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierline-secrets-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const ADMIN = 'scan-admin-token-4f1c9a7e2b5d8c3a6f0e';
    const KEY = 'scan-secrets-key-9d2e7a4c1b8f5e3a0d6c2b9f';
    const env = loadEnv({ DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ADMIN_TOKEN: ADMIN, SECRETS_KEY: KEY, LOG_LEVEL: 'debug', SAMPLE_TICKETS_PER_MINUTE: '0' });

    // Everything written: the service's own logger, with nothing redacted so that a leak cannot hide behind the
    // redactor, and anything that reaches stdout or stderr directly (SDK loggers, stray console calls).
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (l) => void lines.push(l) });
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const grab = (chunk: unknown) => void lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (grab(chunk), (out as (...a: unknown[]) => boolean)(chunk, ...rest))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (grab(chunk), (err as (...a: unknown[]) => boolean)(chunk, ...rest))) as typeof process.stderr.write;
    cleanup.push(() => {
      process.stdout.write = out;
      process.stderr.write = err;
    });

    const s: Service = await startService({ env, logger, simulatedAgents: true, pipeline: { backoffBaseMs: 50, backoffMaxMs: 500 } });
    let stopped = false;
    cleanup.push(async () => {
      if (!stopped) await s.stop();
    });
    const hs = s.sandboxes.hubspot!;
    const sf = s.sandboxes.salesforce!;

    // Upstream faults across the run.
    hs.inject429(3, { policyName: 'TEN_SECONDLY_ROLLING', retryAfterSec: 1 });
    hs.inject5xx(3);
    sf.injectError('INVALID_SESSION_ID', 1);
    sf.injectError('SERVER_UNAVAILABLE', 2, { method: 'PATCH' });
    // In sandbox mode the service's forum is the Telegram sandbox itself.
    (s.forum as TelegramSandbox).injectError({ method: 'messages.SendMessage', error: 'FLOOD_WAIT_3', times: 1 });
    const made: { hs: string[]; sf: string[] } = { hs: [], sf: [] };
    // Three of each: the sample configuration sends most to the VIP group, and more would meet Telegram's per-group
    // pacing (about 20 sends a minute), which waits in real time here.
    for (let i = 0; i < 3; i++) {
      made.hs.push((await hs.createTicket({ subject: `Secret scan HubSpot ${i}` })).id);
      made.sf.push((await sf.createCase({ subject: `Secret scan Salesforce ${i}` })).id);
    }
    sf.expireSession();

    // Hostile and legitimate requests that carry secrets in headers, bodies and query strings.
    const u = (p: string) => `${s.url}${p}`;
    await fetch(u('/api/v1/config'), { headers: { authorization: `Bearer ${ADMIN}x` } });
    await fetch(u('/api/v1/config'), { headers: { authorization: `Bearer ${ADMIN}` } });
    await fetch(u('/api/v1/tickets?token=' + ADMIN), { headers: { authorization: `Bearer ${ADMIN}` } });
    await fetch(u('/webhooks/hubspot'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': 'forged', 'x-hubspot-request-timestamp': String(Date.now()) }, body: JSON.stringify([{ token: hs.accessToken }]) });
    await fetch(u(`/oauth/hubspot/callback?code=${encodeURIComponent(hs.clientSecret)}&state=x`));
    await fetch(u(`/oauth/salesforce/callback?code=${encodeURIComponent(sf.refreshToken)}&state=y`));
    const loginPage = await fetch(u('/login'));
    const loginCookie = /tierline_login=([^;]+)/.exec(loginPage.headers.get('set-cookie') ?? '')![1]!;
    const nonce = /name="_login" value="([^"]+)"/.exec(await loginPage.text())![1]!;
    await fetch(u('/login'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${loginCookie}` }, body: new URLSearchParams({ _login: nonce, token: `${ADMIN}-wrong` }).toString() });
    const signedIn = await fetch(u('/login'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_login=${loginCookie}` }, body: new URLSearchParams({ _login: nonce, token: ADMIN }).toString() });
    const sessionCookie = /tierline_session=([^;]+)/.exec(signedIn.headers.get('set-cookie') ?? '')![1]!;
    const cfgPage = await (await fetch(u('/config'), { headers: { cookie: `tierline_session=${sessionCookie}` } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(cfgPage)![1]!;
    await fetch(u('/dead-letters/retry'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tierline_session=${sessionCookie}` }, body: new URLSearchParams({ _csrf: csrf, all: '1' }).toString() });

    await until('every ticket routed and written back', () => made.hs.every((id) => !!hs.ticket(id)?.properties.tierline_topic_link) && made.sf.every((id) => !!sf.case(id)?.Tierline_Topic_Link__c), 40_000);
    await fetch(u('/readyz'));
    await fetch(u('/metrics'));

    // Every secret the run knew: configured, issued by the sandboxes, minted by the service, and the ones at rest.
    const box = createSecretBox(KEY);
    const sealed = [...(await s.store.kvList<Record<string, unknown>>('hubspot:installs')), ...(await s.store.kvList<Record<string, unknown>>('salesforce:installs'))].flatMap(({ value }) => [value.accessToken, value.refreshToken].filter((v): v is string => typeof v === 'string'));
    const session = (await s.store.kvList<string>('telegram:session')).map((r) => box.open(r.value));
    const secrets: Record<string, string> = {
      ADMIN_TOKEN: ADMIN,
      SECRETS_KEY: KEY,
      'HubSpot access token': hs.accessToken,
      'HubSpot client secret': hs.clientSecret,
      'Salesforce client secret': sf.clientSecret,
      'Salesforce seeded access token': sf.accessToken,
      'Salesforce seeded refresh token': sf.refreshToken,
      'console session cookie': sessionCookie,
      'console CSRF token': csrf,
      'console sign-in nonce': nonce,
      ...Object.fromEntries(sealed.map((v, i) => [`stored token ${i}`, box.open(v)])),
      ...Object.fromEntries(session.map((v, i) => [`Telegram session ${i}`, v])),
    };
    await s.stop();
    stopped = true;
    process.stdout.write = out;
    process.stderr.write = err;

    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThan(50);
    const leaks = Object.entries(secrets).filter(([, v]) => v && v.length >= 8 && all.includes(v)).map(([k]) => k);
    expect(leaks, 'secrets found in log output').toEqual([]);
    // At rest: the data directory holds no plain token either (only sealed values).
    const files = filesUnder(dir);
    const disk = files.map((f) => readFileSync(f, 'latin1')).join('\n');
    const onDisk = Object.entries(secrets).filter(([k, v]) => !k.startsWith('console') && k !== 'ADMIN_TOKEN' && k !== 'SECRETS_KEY' && v.length >= 8 && disk.includes(v)).map(([k]) => k);
    expect(onDisk, 'plain secrets in the data directory').toEqual([]);
    expect(disk, 'the sealed tokens did reach the data directory').toMatch(/v1:[\w-]{16}:[\w-]{22}:/);
    console.log(`secrets: ${lines.length} log lines of a full run (${made.hs.length + made.sf.length} tickets, 10 injected upstream faults, hostile and signed-in traffic) and ${files.length} data files scanned for ${Object.keys(secrets).length} secret values: none found`);
  }, 60_000);
});
