import { CipherMLError } from './errors.ts';

/**
 * The sealed secret key that both trusted sides write and read: the CLI gateway (node:crypto's
 * scrypt) and the web console (a JavaScript scrypt), so a key sealed by one opens in the other.
 * AES-256-GCM runs on WebCrypto, present in Node ≥ 20 and in browsers.
 *
 * Format 2 (`CMLSBOX2`): `magic (8) ‖ log2 N (1) ‖ binding length (2, BE) ‖ binding JSON ‖ salt (16)
 * ‖ nonce (12) ‖ tag (16) ‖ ciphertext`. The key is scrypt(UTF-8 passphrase, salt; N = 2^log2N,
 * r = 8, p = 1, 32 bytes) (RFC 7914). Everything before the salt is the GCM associated data
 * (NIST SP 800-38D §5.2.1.1), so the user, model and key fingerprint the box is bound to cannot be
 * changed without failing the tag. Openers accept 17 ≤ log2 N ≤ 18 only: a box (from the
 * untrusted service) cannot make its opener — a browser tab included — allocate more than
 * 256 MiB (128·r·N bytes); boxes are written at N = 2^17.
 */

const MAGIC_V1 = 'CMLSBOX1';
const MAGIC = 'CMLSBOX2';
const HEAD = MAGIC.length + 3;
/** scrypt cost of new boxes: N = 2^17, r = 8, p = 1 (128 MiB; OWASP Password Storage Cheat Sheet's scrypt minimum). */
export const SECRET_BOX_LOG2_N = 17;
const MIN_LOG2_N = 17;
const MAX_LOG2_N = 18;
const SALT = 16;
const NONCE = 12;
const TAG = 16;

/** What a sealed secret key is bound to: authenticated as AES-GCM associated data. */
export interface SecretBinding {
  /** The service user the trusted side acts for. */
  readonly user: string;
  /** `NAME/VERSION` of the model (the console's inference keys use `NAME/VERSION#inference`). */
  readonly model: string;
  /** Fingerprint of the CKKS key set whose secret key is sealed. */
  readonly fingerprint: string;
}

/** scrypt(passphrase, salt; N, r = 8, p = 1) → 32 bytes: node:crypto on the CLI, a JavaScript implementation in the browser. */
export type Scrypt = (passphrase: Uint8Array, salt: Uint8Array, n: number) => Promise<Uint8Array>;

const latin1 = (s: string): Uint8Array<ArrayBuffer> => Uint8Array.from(s, (c) => c.charCodeAt(0));
const startsWith = (b: Uint8Array, magic: string): boolean => b.length >= magic.length && [...magic].every((c, i) => b[i] === c.charCodeAt(0));
const copy = (b: Uint8Array): Uint8Array<ArrayBuffer> => Uint8Array.from(b);

async function aesKey(scrypt: Scrypt, passphrase: string, salt: Uint8Array, log2N: number): ReturnType<typeof crypto.subtle.importKey> {
  const derived = await scrypt(new TextEncoder().encode(passphrase), salt, 2 ** log2N);
  const raw = copy(derived);
  try {
    return await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
  } finally {
    // The derived key lives on only inside the non-extractable CryptoKey.
    derived.fill(0);
    raw.fill(0);
  }
}

/** Whether `bytes` is a secret box of any format (the console tells a box from its older JSON record with this). */
export function isSecretBox(bytes: Uint8Array): boolean {
  return startsWith(bytes, MAGIC) || startsWith(bytes, MAGIC_V1);
}

/**
 * Seals `plain` (a secret-key envelope) under `passphrase`, bound to `binding`.
 *
 * @example
 * ```ts
 * const box = await sealSecretBox(envelope, 'correct horse battery', { user: 'alice', model: 'lr/1', fingerprint }, scrypt);
 * ```
 */
export async function sealSecretBox(plain: Uint8Array, passphrase: string, binding: SecretBinding, scrypt: Scrypt): Promise<Uint8Array> {
  if (passphrase.length < 8) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the passphrase needs at least 8 characters', { param: 'passphrase' });
  const bound = new TextEncoder().encode(JSON.stringify({ user: binding.user, model: binding.model, fingerprint: binding.fingerprint }));
  if (bound.length > 0xffff) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the binding (user, model, fingerprint) is ${bound.length} bytes as JSON; at most 65,535 fit the box`, { param: 'binding' });
  const aad = new Uint8Array(HEAD + bound.length);
  aad.set(latin1(MAGIC));
  aad[MAGIC.length] = SECRET_BOX_LOG2_N;
  new DataView(aad.buffer).setUint16(MAGIC.length + 1, bound.length);
  aad.set(bound, HEAD);
  const salt = crypto.getRandomValues(new Uint8Array(SALT));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
  const key = await aesKey(scrypt, passphrase, salt, SECRET_BOX_LOG2_N);
  // WebCrypto answers ciphertext ‖ tag; the box keeps the tag before the ciphertext.
  const secret = copy(plain);
  let sealed: Uint8Array;
  try {
    sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key, secret));
  } finally {
    secret.fill(0);
  }
  const body = sealed.subarray(0, sealed.length - TAG);
  const out = new Uint8Array(aad.length + SALT + NONCE + TAG + body.length);
  let o = 0;
  for (const part of [aad, salt, nonce, sealed.subarray(body.length), body]) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

/**
 * The binding and cost a box declares, checked against the expected user and model before any
 * KDF runs: `CIPHERML_E_SECRET_BOX_BINDING` for another user's or model's box,
 * `CIPHERML_E_SECRET_BOX_OUTDATED` for format 1, `CIPHERML_E_FORMAT_*` for anything else.
 *
 * @example
 * ```ts
 * const { fingerprint } = readSecretBoxBinding(box, { user: 'alice', model: 'lr/1' });
 * ```
 */
export function readSecretBoxBinding(box: Uint8Array, expected: Omit<SecretBinding, 'fingerprint'>): { binding: SecretBinding; log2N: number; start: number } {
  if (startsWith(box, MAGIC_V1)) {
    throw new CipherMLError('CIPHERML_E_SECRET_BOX_OUTDATED', 'the sealed secret key is in format 1 (scrypt N = 2^15, not bound to a user, model or key); this version opens format 2 only', { param: 'secretContext' });
  }
  if (box.length < HEAD || !startsWith(box, MAGIC)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml secret box', { param: 'secretContext' });
  const log2N = box[MAGIC.length]!;
  const boundLength = new DataView(box.buffer, box.byteOffset + MAGIC.length + 1, 2).getUint16(0);
  const start = HEAD + boundLength;
  if (box.length < start + SALT + NONCE + TAG) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', 'the secret box ends before its ciphertext', { param: 'secretContext' });
  if (log2N < MIN_LOG2_N || log2N > MAX_LOG2_N) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `the secret box asks for scrypt N = 2^${log2N}; accepted: 2^${MIN_LOG2_N}…2^${MAX_LOG2_N}`, { param: 'secretContext' });
  let bound: Partial<SecretBinding>;
  try {
    bound = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(box.subarray(HEAD, start))) as Partial<SecretBinding>;
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the secret box binding is not JSON', { param: 'secretContext', cause: e });
  }
  if (typeof bound !== 'object' || bound === null || typeof bound.fingerprint !== 'string' || bound.user !== expected.user || bound.model !== expected.model) {
    throw new CipherMLError('CIPHERML_E_SECRET_BOX_BINDING', `the secret box is bound to user ${JSON.stringify(bound?.user)} and model ${JSON.stringify(bound?.model)}, not to user ${JSON.stringify(expected.user)} and model ${JSON.stringify(expected.model)}`, { param: 'secretContext', details: { user: bound?.user, model: bound?.model } });
  }
  return { binding: { user: bound.user, model: bound.model, fingerprint: bound.fingerprint }, log2N, start };
}

/**
 * Opens a box made by {@link sealSecretBox} for the expected user and model; resolves with the
 * plaintext and the fingerprint the box was bound to (the caller checks the key against it). A
 * wrong passphrase or any changed byte fails the tag (`CIPHERML_E_FORMAT_CORRUPT`).
 *
 * @example
 * ```ts
 * const { plain, fingerprint } = await openSecretBox(box, passphrase, { user: 'alice', model: 'lr/1' }, scrypt);
 * ```
 */
export async function openSecretBox(box: Uint8Array, passphrase: string, expected: Omit<SecretBinding, 'fingerprint'>, scrypt: Scrypt): Promise<{ plain: Uint8Array; fingerprint: string }> {
  const { binding, log2N, start } = readSecretBoxBinding(box, expected);
  let o = start;
  const salt = box.subarray(o, (o += SALT));
  const nonce = copy(box.subarray(o, (o += NONCE)));
  const tag = box.subarray(o, (o += TAG));
  const body = box.subarray(o);
  const sealed = new Uint8Array(body.length + TAG);
  sealed.set(body);
  sealed.set(tag, body.length);
  const key = await aesKey(scrypt, passphrase, salt, log2N);
  try {
    const plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: copy(box.subarray(0, start)), tagLength: 128 }, key, sealed));
    return { plain, fingerprint: binding.fingerprint };
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the secret box did not authenticate: wrong passphrase or modified data (including its user, model or key binding)', { param: 'passphrase', cause: e });
  }
}
