// `npm run telegram:login`: signs the Tierline user account in to Telegram (phone, code, 2FA password at the prompt)
// and prints TELEGRAM_SESSION sealed with SECRETS_KEY. The plain session (which is a full login) is never printed or
// written; the sealed one is useless without SECRETS_KEY.
// Needs TELEGRAM_API_ID, TELEGRAM_API_HASH (https://my.telegram.org) and SECRETS_KEY in the environment.
import { createInterface } from 'node:readline/promises';
import { stdin, stdout } from 'node:process';
import { Writable } from 'node:stream';
import { TelegramClient } from 'telegram';
import { Logger as GramLogger, LogLevel } from 'telegram/extensions/Logger.js';
import { StringSession } from 'telegram/sessions/index.js';
import { createSecretBox } from '../shared/secrets.ts';

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

const apiId = Number(process.env.TELEGRAM_API_ID);
const apiHash = process.env.TELEGRAM_API_HASH ?? '';
const secretsKey = process.env.SECRETS_KEY ?? '';
if (!Number.isInteger(apiId) || apiId <= 0) fail('Set TELEGRAM_API_ID (the numeric api_id from https://my.telegram.org → API development tools).');
if (!/^[0-9a-f]{32}$/i.test(apiHash)) fail('Set TELEGRAM_API_HASH (the 32-character api_hash from https://my.telegram.org).');
if (!secretsKey) fail('Set SECRETS_KEY (the same one the service runs with; e.g. `openssl rand -base64 32`): the session is stored encrypted with it.');
const box = createSecretBox(secretsKey);

// Echo is muted while the password is typed.
let muted = false;
const output = new Writable({
  write(chunk, enc, done) {
    if (!muted) stdout.write(chunk, enc as BufferEncoding);
    done();
  },
});
const rl = createInterface({ input: stdin, output, terminal: true });
const ask = async (q: string) => (await rl.question(q)).trim();
const askHidden = async (q: string) => {
  stdout.write(q);
  muted = true;
  try {
    return await rl.question('');
  } finally {
    muted = false;
    stdout.write('\n');
  }
};

const client = new TelegramClient(new StringSession(''), apiId, apiHash, { baseLogger: new GramLogger(LogLevel.ERROR), connectionRetries: 5 });
try {
  await client.start({
    phoneNumber: () => ask('Phone number of the Tierline account (international format, e.g. +4915112345678): '),
    phoneCode: (viaApp) => ask(viaApp ? 'Code Telegram sent to your Telegram app: ' : 'Code Telegram sent by SMS: '),
    password: (hint) => askHidden(`Two-step verification password${hint ? ` (hint: ${hint})` : ''}: `),
    onError: async (err) => {
      process.stderr.write(`Telegram: ${err.message}\n`);
      return /PHONE_NUMBER_INVALID|PHONE_NUMBER_BANNED|API_ID_INVALID/.test(err.message);
    },
  });
  const me = await client.getMe();
  const sealed = box.seal(String(client.session.save()));
  const name = 'firstName' in me ? [me.firstName, me.lastName].filter(Boolean).join(' ') : 'the account';
  stdout.write(`\nSigned in as ${name}${'username' in me && me.username ? ` (@${me.username})` : ''}.\n`);
  stdout.write('Add this line to the service environment (it is encrypted with SECRETS_KEY; keep both secret):\n\n');
  stdout.write(`TELEGRAM_SESSION=${sealed}\n\n`);
  stdout.write('Then add this account to each forum group as an admin with "Manage topics", "Pin messages" and "Add members".\n');
} catch (err) {
  fail(`Login failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  rl.close();
  await client.destroy().catch(() => {});
}
