import { scrypt } from 'node:crypto';
import { openSecretBox, sealSecretBox, type Scrypt, type SecretBinding } from '../core/secret-box.ts';

export type { SecretBinding } from '../core/secret-box.ts';

/** node:crypto's scrypt with r = 8, p = 1 and memory for the N the box asks for (at most 2^18, src/core/secret-box.ts). */
const nodeScrypt: Scrypt = (passphrase, salt, n) =>
  new Promise((resolve, reject) => scrypt(passphrase, salt, 32, { N: n, r: 8, p: 1, maxmem: 128 * n * 8 + (32 << 20) }, (e, key) => (e === null ? resolve(new Uint8Array(key)) : reject(e))));

/**
 * Encrypts the gateway's secret key under a passphrase for storage on the untrusted service, in
 * the secret-box format both trusted sides share (src/core/secret-box.ts: scrypt N = 2^17,
 * AES-256-GCM, user, model and key fingerprint as associated data); the web console opens it.
 *
 * @example
 * ```ts
 * const box = await sealSecret(secretKeyBytes, process.env.PASSPHRASE!, { user: 'alice', model: 'lr/1', fingerprint: ctx.fingerprint });
 * ```
 */
export function sealSecret(plain: Uint8Array, passphrase: string, binding: SecretBinding): Promise<Uint8Array> {
  return sealSecretBox(plain, passphrase, binding, nodeScrypt);
}

/**
 * Opens a box made by {@link sealSecret} or by the web console for the expected user and model;
 * resolves with the secret key bytes and the fingerprint the box was bound to (the caller checks
 * the key against it). A box of another user or model is refused before the KDF runs
 * (`CIPHERML_E_SECRET_BOX_BINDING`); a format-1 box with `CIPHERML_E_SECRET_BOX_OUTDATED`; a
 * wrong passphrase or any changed byte fails the tag (`CIPHERML_E_FORMAT_CORRUPT`).
 *
 * @example
 * ```ts
 * const { plain, fingerprint } = await openSecret(box, process.env.PASSPHRASE!, { user: 'alice', model: 'lr/1' });
 * ```
 */
export function openSecret(box: Uint8Array, passphrase: string, expected: Omit<SecretBinding, 'fingerprint'>): Promise<{ plain: Uint8Array; fingerprint: string }> {
  return openSecretBox(box, passphrase, expected, nodeScrypt);
}
