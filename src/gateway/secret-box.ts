import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';

const MAGIC_V1 = Buffer.from('CMLSBOX1');
const MAGIC = Buffer.from('CMLSBOX2');
/**
 * scrypt cost: N = 2^17, r = 8, p = 1 (128 MiB, OWASP Password Storage Cheat Sheet's scrypt
 * minimum; RFC 7914 §2 recommended N = 2^20 for file encryption at ~5 s). Measured ≈ 1.7 s here
 * on a loaded machine. A box records log2 N; opening accepts 17 ≤ log2 N ≤ 20 only, so a box
 * cannot make the opener spend unbounded memory.
 */
const LOG2_N = 17;
const MIN_LOG2_N = 17;
const MAX_LOG2_N = 20;
const SALT = 16;
const NONCE = 12;
const TAG = 16;

/** What a sealed secret key is bound to: authenticated as AES-GCM associated data (NIST SP 800-38D §5.2.1.1). */
export interface SecretBinding {
  /** The service user the gateway acts for (GET /api/v1/whoami). */
  readonly user: string;
  /** `NAME/VERSION` of the model. */
  readonly model: string;
  /** Fingerprint of the CKKS key set whose secret key is sealed. */
  readonly fingerprint: string;
}

function kdf(passphrase: string, salt: Buffer, log2N: number): Promise<Buffer> {
  const N = 2 ** log2N;
  return new Promise((resolve, reject) => scrypt(passphrase, salt, 32, { N, r: 8, p: 1, maxmem: 128 * N * 8 + (32 << 20) }, (e, key) => (e === null ? resolve(key) : reject(e))));
}

/**
 * Encrypts the gateway's secret key under a passphrase for storage on the untrusted service:
 * scrypt(passphrase, 16-byte salt; N = 2^17, r = 8, p = 1) → AES-256-GCM key, 12-byte nonce,
 * 16-byte tag. Layout `CMLSBOX2 ‖ log2N (1) ‖ binding length (2, BE) ‖ binding JSON ‖ salt ‖
 * nonce ‖ tag ‖ ciphertext`; everything before the salt is the associated data, so the user,
 * model and key fingerprint cannot be changed without failing the tag.
 *
 * @example
 * ```ts
 * const box = await sealSecret(secretKeyBytes, process.env.PASSPHRASE!, { user: 'alice', model: 'lr/1', fingerprint: ctx.fingerprint });
 * ```
 */
export async function sealSecret(plain: Uint8Array, passphrase: string, binding: SecretBinding): Promise<Uint8Array> {
  if (passphrase.length < 8) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the passphrase needs at least 8 characters', { param: 'passphrase' });
  const bound = Buffer.from(JSON.stringify({ user: binding.user, model: binding.model, fingerprint: binding.fingerprint }), 'utf8');
  const head = Buffer.alloc(MAGIC.length + 3);
  MAGIC.copy(head);
  head.writeUInt8(LOG2_N, MAGIC.length);
  head.writeUInt16BE(bound.length, MAGIC.length + 1);
  const aad = Buffer.concat([head, bound]);
  const salt = randomBytes(SALT);
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', await kdf(passphrase, salt, LOG2_N), nonce);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return new Uint8Array(Buffer.concat([aad, salt, nonce, c.getAuthTag(), body]));
}

/**
 * Opens a box made by {@link sealSecret} for the expected user and model; resolves with the
 * secret key bytes and the fingerprint the box was bound to (the caller checks the key against
 * it). A box of another user or model is refused before the KDF runs
 * (`CIPHERML_E_SECRET_BOX_BINDING`); a format-1 box (N = 2^15, nothing bound) with
 * `CIPHERML_E_SECRET_BOX_OUTDATED`; a wrong passphrase or any changed byte fails the tag
 * (`CIPHERML_E_FORMAT_CORRUPT`).
 *
 * @example
 * ```ts
 * const { plain, fingerprint } = await openSecret(box, process.env.PASSPHRASE!, { user: 'alice', model: 'lr/1' });
 * ```
 */
export async function openSecret(box: Uint8Array, passphrase: string, expected: Omit<SecretBinding, 'fingerprint'>): Promise<{ plain: Uint8Array; fingerprint: string }> {
  const b = Buffer.from(box.buffer, box.byteOffset, box.byteLength);
  if (b.length >= MAGIC_V1.length && b.subarray(0, MAGIC_V1.length).equals(MAGIC_V1)) {
    throw new CipherMLError('CIPHERML_E_SECRET_BOX_OUTDATED', 'the sealed secret key is in format 1 (scrypt N = 2^15, not bound to a user, model or key); this gateway opens format 2 only', { param: 'secretContext' });
  }
  if (b.length < MAGIC.length + 3 || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml secret box', { param: 'secretContext' });
  const log2N = b.readUInt8(MAGIC.length);
  const boundLength = b.readUInt16BE(MAGIC.length + 1);
  const start = MAGIC.length + 3 + boundLength;
  if (b.length < start + SALT + NONCE + TAG) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', 'the secret box ends before its ciphertext', { param: 'secretContext' });
  if (log2N < MIN_LOG2_N || log2N > MAX_LOG2_N) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `the secret box asks for scrypt N = 2^${log2N}; accepted: 2^${MIN_LOG2_N}…2^${MAX_LOG2_N}`, { param: 'secretContext' });
  let bound: Partial<SecretBinding>;
  try {
    bound = JSON.parse(b.subarray(MAGIC.length + 3, start).toString('utf8')) as Partial<SecretBinding>;
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the secret box binding is not JSON', { param: 'secretContext', cause: e });
  }
  if (typeof bound.fingerprint !== 'string' || bound.user !== expected.user || bound.model !== expected.model) {
    throw new CipherMLError('CIPHERML_E_SECRET_BOX_BINDING', `the secret box is bound to user ${JSON.stringify(bound.user)} and model ${JSON.stringify(bound.model)}, not to user ${JSON.stringify(expected.user)} and model ${JSON.stringify(expected.model)}`, { param: 'secretContext', details: { user: bound.user, model: bound.model } });
  }
  let o = start;
  const salt = b.subarray(o, (o += SALT));
  const nonce = b.subarray(o, (o += NONCE));
  const tag = b.subarray(o, (o += TAG));
  const d = createDecipheriv('aes-256-gcm', await kdf(passphrase, salt, log2N), nonce);
  d.setAAD(b.subarray(0, start));
  d.setAuthTag(tag);
  try {
    return { plain: new Uint8Array(Buffer.concat([d.update(b.subarray(o)), d.final()])), fingerprint: bound.fingerprint };
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the secret box did not authenticate: wrong passphrase or modified data (including its user, model or key binding)', { param: 'passphrase', cause: e });
  }
}
