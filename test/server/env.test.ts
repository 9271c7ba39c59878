import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv, retentionMs, secretValues } from '../../server/env.ts';
import { createLogger } from '../../server/logger.ts';

function problems(env: Record<string, string>): string[] {
  try {
    loadEnv(env);
  } catch (e) {
    expect(e).toBeInstanceOf(EnvError);
    return (e as EnvError).problems;
  }
  return [];
}

describe('environment', () => {
  it('with no credentials every connector runs sandboxed on the defaults', () => {
    const e = loadEnv({});
    expect(e).toMatchObject({ PORT: 8787, DATA_DIR: './data', PUBLIC_URL: 'http://localhost:8787', modes: { hubspot: 'sandbox', salesforce: 'sandbox', telegram: 'sandbox' } });
  });

  it('a connector with credentials runs for real while the others stay sandboxed', () => {
    const e = loadEnv({ HUBSPOT_ACCESS_TOKEN: 'pat-na1-xxxxxxxx', SECRETS_KEY: 'k'.repeat(44), ADMIN_TOKEN: 'a'.repeat(24), PUBLIC_URL: 'https://tierline.example.com/' });
    expect(e.modes).toEqual({ hubspot: 'real', salesforce: 'sandbox', telegram: 'sandbox' });
    expect(e.PUBLIC_URL).toBe('https://tierline.example.com');
  });

  it.each([
    [{ PORT: 'eighty' }, /^PORT: PORT must be a number/],
    [{ PUBLIC_URL: 'not a url' }, /^PUBLIC_URL: PUBLIC_URL must be a URL/],
    [{ ADMIN_TOKEN: 'short' }, /^ADMIN_TOKEN: .*openssl rand/],
    [{ HUBSPOT_ACCESS_TOKEN: 'pat-na1-xxxxxxxx' }, /^SECRETS_KEY: required when any connector runs for real/],
    [{ HUBSPOT_CLIENT_ID: 'abc', SECRETS_KEY: 'k'.repeat(44), ADMIN_TOKEN: 'a'.repeat(24), PUBLIC_URL: 'https://x.example' }, /^HUBSPOT_CLIENT_SECRET: required with HUBSPOT_CLIENT_ID/],
    [{ TELEGRAM_BOT_TOKEN: '123:abc' }, /^TELEGRAM_BOT_TOKEN: .*BotFather/],
    [{ SALESFORCE_CLIENT_ID: 'x', SALESFORCE_CLIENT_SECRET: 'y', SECRETS_KEY: 'k'.repeat(44), ADMIN_TOKEN: 'a'.repeat(24), PUBLIC_URL: 'https://x.example' }, /^SALESFORCE_ORG_IDS: /],
    [{ RETENTION_DAYS: '7' }, /^RETENTION_DAYS: .*0 \(keep everything for good\) or at least 30/],
    [{ RETENTION_DAYS: 'a year' }, /^RETENTION_DAYS: .*whole number of days/],
    [{ RETENTION_DAYS: '30', TELEGRAM_INTAKE_REOPEN_DAYS: '45' }, /^TELEGRAM_INTAKE_REOPEN_DAYS: longer than RETENTION_DAYS \(30\).*lower it or raise RETENTION_DAYS/],
  ])('%j is rejected naming the variable and the fix', (env, msg) => {
    const p = problems(env as Record<string, string>);
    expect(p.some((x) => msg.test(x)), p.join('\n')).toBe(true);
  });

  it('keeps routing history 400 days unless told otherwise; 0 keeps it for good', () => {
    expect(retentionMs(loadEnv({}))).toBe(400 * 24 * 3600_000);
    expect(retentionMs(loadEnv({ RETENTION_DAYS: '90' }))).toBe(90 * 24 * 3600_000);
    expect(retentionMs(loadEnv({ RETENTION_DAYS: '0' }))).toBe(Infinity);
    expect(retentionMs(loadEnv({ RETENTION_DAYS: '0', TELEGRAM_INTAKE_REOPEN_DAYS: '45' }))).toBe(Infinity);
  });

  it('error messages never contain the secret values', () => {
    const secret = 'pat-na1-super-secret-value';
    const p = problems({ HUBSPOT_ACCESS_TOKEN: secret });
    expect(p.join('\n')).not.toContain(secret);
  });

  it('the logger redacts every configured secret and bearer tokens', () => {
    const env = loadEnv({ HUBSPOT_ACCESS_TOKEN: 'pat-na1-super-secret-value', SECRETS_KEY: 'k'.repeat(44), ADMIN_TOKEN: 'admin-token-abcdef-123456', PUBLIC_URL: 'https://x.example' });
    const lines: string[] = [];
    const log = createLogger({ secrets: () => secretValues(env), write: (l) => lines.push(l) });
    log.info('calling hubspot', { header: 'Bearer pat-na1-super-secret-value', note: 'admin-token-abcdef-123456', other: 'Bearer abcdefghijklmnop' });
    expect(lines.join('\n')).not.toMatch(/super-secret|admin-token-abcdef|abcdefghijklmnop/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'calling hubspot' });
  });
});
