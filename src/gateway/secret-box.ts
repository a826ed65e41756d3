import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';

const MAGIC = Buffer.from('CMLSBOX1');
/** scrypt cost (RFC 7914 §2: N = 2^15, r = 8, p = 1 ≈ 32 MiB, ~0.1 s here). */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/**
 * Encrypts the gateway's secret context under a passphrase for storage on the untrusted
 * service: scrypt(passphrase, 16-byte salt) → AES-256-GCM key, 12-byte nonce, 16-byte tag;
 * layout `CMLSBOX1 ‖ salt ‖ nonce ‖ tag ‖ ciphertext`. The service stores it as an opaque blob.
 *
 * @example
 * ```ts
 * const box = sealSecret(secretKeyBytes, process.env.PASSPHRASE!);
 * ```
 */
export function sealSecret(plain: Uint8Array, passphrase: string): Uint8Array {
  if (passphrase.length < 8) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the passphrase needs at least 8 characters', { param: 'passphrase' });
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const key = scryptSync(passphrase, salt, 32, SCRYPT);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(MAGIC);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return new Uint8Array(Buffer.concat([MAGIC, salt, nonce, c.getAuthTag(), body]));
}

/**
 * Opens a box made by {@link sealSecret}; a wrong passphrase or a modified box fails the tag check.
 *
 * @example
 * ```ts
 * const secretKeyBytes = openSecret(box, process.env.PASSPHRASE!);
 * ```
 */
export function openSecret(box: Uint8Array, passphrase: string): Uint8Array {
  const b = Buffer.from(box.buffer, box.byteOffset, box.byteLength);
  if (b.length < MAGIC.length + 44 || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml secret box', { param: 'secretContext' });
  let o = MAGIC.length;
  const salt = b.subarray(o, (o += 16));
  const nonce = b.subarray(o, (o += 12));
  const tag = b.subarray(o, (o += 16));
  const key = scryptSync(passphrase, salt, 32, SCRYPT);
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAAD(MAGIC);
  d.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([d.update(b.subarray(o)), d.final()]));
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the secret box did not authenticate: wrong passphrase or modified data', { param: 'passphrase', cause: e });
  }
}
