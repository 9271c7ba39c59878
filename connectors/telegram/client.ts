// GramJS behind one module: building and connecting the client (user session, bot token, or the sandbox), and turning
// its errors into AppErrors a CRM admin can act on. Swapping GramJS for a fork (teleproto) is meant to touch this
// folder only.
import { Api, TelegramClient } from 'telegram';
import { FloodWaitError, RPCError, SlowModeWaitError } from 'telegram/errors/index.js';
import { Logger as GramLogger, LogLevel } from 'telegram/extensions/Logger.js';
import { returnBigInt } from 'telegram/Helpers.js';
import { PeerCacheSession } from './session.ts';
import { AppError } from '../../core/errors.ts';
import type { Logger, Store } from '../../core/ports.ts';
import type { SecretBox } from '../shared/secrets.ts';
import type { TelegramSandbox } from './sandbox/index.ts';

export { Api, TelegramClient };
export const bigId = (v: string | number) => returnBigInt(v);

export type TelegramEnv = { apiId?: number | undefined; apiHash?: string | undefined; session?: string | undefined; botToken?: string | undefined };
export type AccountKind = 'user' | 'bot';

export const NS_SESSION = 'telegram:session';

/** The RPC error name (FLOOD_WAIT_X, TOPIC_DELETED, ...) of a GramJS error, if it is one. */
export function rpcName(err: unknown): string | null {
  if (err instanceof FloodWaitError) return `FLOOD_WAIT_${err.seconds}`;
  if (err instanceof SlowModeWaitError) return `SLOWMODE_WAIT_${err.seconds}`;
  if (err instanceof RPCError) return err.errorMessage ?? null;
  return null;
}

/** Seconds Telegram asked us to wait, for FLOOD_WAIT_X and SLOWMODE_WAIT_X (both are the pacer's to handle). */
export function waitSecondsOf(err: unknown): number | null {
  if (err instanceof FloodWaitError || err instanceof SlowModeWaitError) return err.seconds;
  const name = rpcName(err);
  const m = name ? /^(?:FLOOD_WAIT|FLOOD_PREMIUM_WAIT|SLOWMODE_WAIT)_(\d+)$/.exec(name) : null;
  return m ? Number(m[1]) : null;
}

export const TOPIC_GONE_ERRORS = new Set(['TOPIC_DELETED', 'TOPIC_CLOSED', 'TOPIC_ID_INVALID', 'REPLY_MESSAGE_ID_INVALID', 'MSG_ID_INVALID']);

/** Maps a GramJS failure to an AppError naming the problem and the fix. `what` says what we were doing. */
export function toAppError(err: unknown, what: string, group?: { id: string; title?: string }): AppError {
  if (err instanceof AppError) return err;
  const g = group ? `group "${group.title ?? group.id}"` : 'the group';
  const wait = waitSecondsOf(err);
  if (wait !== null) return new AppError('rate_limited', `Telegram asked to wait ${wait} s (${what}); the step is retried after that.`, { retryAfterMs: wait * 1000, cause: err });
  const name = rpcName(err);
  if (name) {
    if (TOPIC_GONE_ERRORS.has(name)) return new AppError('topic_gone', `The Telegram topic is gone (${name}) while ${what}; the ticket gets a new topic.`, { cause: err });
    if (name === 'CHANNEL_FORUM_MISSING') return new AppError('misconfigured', `Telegram ${g} is not a forum: turn on Topics in the group's settings (Edit → Topics).`, { cause: err });
    if (name === 'CHAT_ADMIN_REQUIRED' || name === 'RIGHT_FORBIDDEN' || name === 'CHAT_WRITE_FORBIDDEN')
      return new AppError('misconfigured', `The Telegram account lacks an admin right in ${g} (${name}) while ${what}: make it an admin with "Manage topics", "Pin messages" and (user accounts) "Add members".`, { cause: err });
    if (name === 'CHANNEL_INVALID' || name === 'CHANNEL_PRIVATE' || name === 'PEER_ID_INVALID')
      return new AppError('misconfigured', `Telegram does not let this account reach ${g} (${name}): add the account to the group (bots: as an admin), then relink the groups from the console.`, { cause: err });
    if (/^(AUTH_KEY_UNREGISTERED|AUTH_KEY_INVALID|SESSION_REVOKED|SESSION_EXPIRED|USER_DEACTIVATED.*|ACCESS_TOKEN_INVALID|ACCESS_TOKEN_EXPIRED)$/.test(name))
      return new AppError('auth_expired', `Telegram no longer accepts the login (${name}): run \`npm run telegram:login\` for a new TELEGRAM_SESSION, or check TELEGRAM_BOT_TOKEN with @BotFather.`, { cause: err });
    return new AppError('upstream', `Telegram refused the request (${name}) while ${what}.`, { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new AppError('upstream', `Telegram could not be reached while ${what} (${msg.slice(0, 120)}); the step is retried.`, { cause: err });
}

export type ConnectedClient = { client: TelegramClient; kind: AccountKind; self: Api.User };

/**
 * Builds and connects the GramJS client. floodSleepThreshold is 0 so that every FLOOD_WAIT reaches the pacer (GramJS
 * would otherwise sleep inside invoke for waits up to 60 s, holding a request and hiding the wait from the
 * scheduler). Secrets never appear in what this throws.
 */
export async function connectClient(opts: { mode: 'real' | 'sandbox'; env: TelegramEnv; secrets: SecretBox; store: Store; logger: Logger; sandbox?: TelegramSandbox | undefined }): Promise<ConnectedClient> {
  const { env } = opts;
  const kind: AccountKind = opts.mode === 'sandbox' ? (env.botToken ? 'bot' : 'user') : env.session ? 'user' : env.botToken ? 'bot' : 'user';
  const params = { baseLogger: new GramLogger(LogLevel.NONE), floodSleepThreshold: 0, connectionRetries: 5, autoReconnect: true, requestRetries: 3 };

  if (opts.mode === 'sandbox') {
    if (!opts.sandbox) throw new AppError('misconfigured', 'Telegram runs in sandbox mode but no sandbox was given to the connector.');
    const client = new TelegramClient(new PeerCacheSession(''), 1, 'sandbox', params);
    opts.sandbox.attach(client, kind);
    if (kind === 'bot') await client.signInBot({ apiId: 1, apiHash: 'sandbox' }, { botAuthToken: env.botToken ?? opts.sandbox.botToken });
    return { client, kind, self: (await client.getMe()) as Api.User };
  }

  if (!env.apiId || !env.apiHash) throw new AppError('misconfigured', 'TELEGRAM_API_ID and TELEGRAM_API_HASH are required for MTProto; create them at https://my.telegram.org.');
  let session = '';
  if (kind === 'user') {
    const raw = env.session ?? '';
    // `npm run telegram:login` prints the session sealed with SECRETS_KEY; a plain StringSession also works.
    session = raw.startsWith('v1:') ? opts.secrets.open(raw) : raw;
  } else {
    const sealed = await opts.store.kvGet<string>(NS_SESSION, 'bot');
    if (sealed) {
      try {
        session = opts.secrets.open(sealed);
      } catch {
        session = '';
      }
    }
  }
  const client = new TelegramClient(new PeerCacheSession(session), env.apiId, env.apiHash, params);
  try {
    await client.connect();
  } catch (err) {
    throw toAppError(err, 'connecting to Telegram');
  }
  if (!(await client.checkAuthorization())) {
    if (kind === 'user') throw new AppError('auth_expired', 'The Telegram session is not authorised (expired, revoked or from another api_id): run `npm run telegram:login` and set the new TELEGRAM_SESSION.');
    try {
      await client.signInBot({ apiId: env.apiId, apiHash: env.apiHash }, { botAuthToken: env.botToken! });
    } catch (err) {
      throw toAppError(err, 'signing in the bot');
    }
    // Kept so a restart does not import the bot authorisation again (Telegram limits how often that may happen).
    await opts.store.kvPut(NS_SESSION, 'bot', opts.secrets.seal(String(client.session.save())));
  }
  return { client, kind, self: (await client.getMe()) as Api.User };
}
