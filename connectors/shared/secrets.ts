// Secrets at rest (OAuth refresh tokens, the Telegram session): AES-256-GCM under SECRETS_KEY.
// The stored form is "v1:<iv>:<tag>:<ciphertext>" in base64url; a wrong key or a tampered value fails loudly.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AppError } from '../../core/errors.ts';

export type SecretBox = { seal(plain: string): string; open(sealed: string): string };

/** SECRETS_KEY may be 32 bytes as base64/hex or any passphrase of 32+ characters (hashed to a key). */
export function createSecretBox(secretsKey: string): SecretBox {
  const key = deriveKey(secretsKey);
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join(':');
    },
    open(sealed) {
      const [v, iv, tag, ct] = sealed.split(':');
      if (v !== 'v1' || !iv || !tag || ct === undefined) throw new AppError('misconfigured', 'a stored secret is not in the expected format; reinstall the connector');
      try {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        d.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
      } catch {
        throw new AppError('misconfigured', 'a stored secret cannot be decrypted: SECRETS_KEY differs from the one it was saved with; restore that key or reinstall the connector');
      }
    },
  };
}

function deriveKey(k: string): Buffer {
  if (/^[0-9a-f]{64}$/i.test(k)) return Buffer.from(k, 'hex');
  const b = Buffer.from(k, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(k)) return b;
  if (k.length < 32) throw new AppError('misconfigured', 'SECRETS_KEY is too short: use 32 random bytes (e.g. `openssl rand -base64 32`)');
  return createHash('sha256').update(k, 'utf8').digest();
}
