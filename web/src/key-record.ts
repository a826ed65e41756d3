import { scryptAsync } from '@noble/hashes/scrypt.js';
import { isSecretBox, openSecretBox, readSecretBoxBinding, sealSecretBox, type Scrypt } from '../../src/core/secret-box.ts';

/**
 * The browser's sealed key records: the service's secret-key envelope of a model's CKKS key set
 * (src/ckks/serialize.ts, kind privateKey), sealed under the user's passphrase (kept in IndexedDB
 * by keystore.ts). No DOM types here, so the Node test suite runs this same code.
 *
 * Version 3 records hold the secret box the CLI gateway writes (src/core/secret-box.ts: scrypt
 * N = 2^17, r = 8, p = 1 — memory-hard, here in JavaScript by @noble/hashes — and AES-256-GCM on
 * WebCrypto with the user, model and key fingerprint as associated data), so the box this page
 * keeps on the service (`PUT …/context/secret`) is restored by `cipherml gateway` and a box the
 * gateway sealed is restored here. Version 2 records (PBKDF2-HMAC-SHA256, 600,000 iterations;
 * associated data `cipherml-browser-key-v2|<user>|<model>|<fingerprint>`) still open. The
 * passphrase and the plaintext key never leave the page.
 */

export const PBKDF2_ITERATIONS = 600_000;

interface RecordBase {
  readonly user: string;
  /** `NAME/VERSION` of the deployed model. */
  readonly model: string;
  /** The key set's envelope fingerprint (src/ckks/context.ts `fingerprintOf`). */
  readonly fingerprint: string;
  readonly createdAt: number;
}

/** A record of the first sealed format (PBKDF2), opened but no longer written. */
export interface KeyRecordV2 extends RecordBase {
  readonly version: 2;
  readonly iterations: number;
  readonly salt: string;
  readonly iv: string;
  readonly sealed: string;
}

/** A record holding the shared secret box (base64). */
export interface KeyRecordV3 extends RecordBase {
  readonly version: 3;
  readonly box: string;
}

export type KeyRecord = KeyRecordV2 | KeyRecordV3;

function b64(b: Uint8Array): string {
  let s = '';
  // In chunks: spreading a large array into one call overflows the stack.
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
const unb64 = (s: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const utf8 = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s);
const aadV2 = (r: Pick<KeyRecord, 'user' | 'model' | 'fingerprint'>): Uint8Array<ArrayBuffer> => utf8(`cipherml-browser-key-v2|${r.user}|${r.model}|${r.fingerprint}`);

/** RFC 7914 scrypt in JavaScript (r = 8, p = 1), yielding to the page between blocks. */
const browserScrypt: Scrypt = (passphrase, salt, n) => scryptAsync(passphrase, salt, { N: n, r: 8, p: 1, dkLen: 32, asyncTick: 50 });

async function deriveV2(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): ReturnType<typeof crypto.subtle.deriveKey> {
  const base = await crypto.subtle.importKey('raw', utf8(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Seals a secret-key envelope for `user` and `model` under `passphrase` (a version-3 record). */
export async function sealSecretKey(user: string, model: string, fingerprint: string, passphrase: string, secretKey: Uint8Array): Promise<KeyRecordV3> {
  const box = await sealSecretBox(secretKey, passphrase, { user, model, fingerprint }, browserScrypt);
  return { version: 3, user, model, fingerprint, box: b64(box), createdAt: Date.now() };
}

/** The bytes this page keeps on the service for a record: the secret box itself, as the CLI gateway stores it. */
export function serviceBytes(record: KeyRecordV3): Uint8Array {
  return unb64(record.box);
}

/** The secret-key envelope, or an Error("wrong passphrase…") when the passphrase or the record does not match. */
export async function openSecretKey(record: KeyRecord, passphrase: string): Promise<Uint8Array> {
  if (record.version === 3) {
    try {
      const { plain, fingerprint } = await openSecretBox(unb64(record.box), passphrase, record, browserScrypt);
      if (fingerprint !== record.fingerprint) throw new Error(`the box is bound to key ${fingerprint}, the record names ${record.fingerprint}`);
      return plain;
    } catch (e) {
      if ((e as { code?: string }).code === 'CIPHERML_E_FORMAT_CORRUPT') throw new Error('wrong passphrase, or the stored key record was altered', { cause: e });
      throw e;
    }
  }
  const key = await deriveV2(passphrase, unb64(record.salt), record.iterations);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(record.iv), additionalData: aadV2(record) }, key, unb64(record.sealed)));
  } catch {
    throw new Error('wrong passphrase, or the stored key record was altered');
  }
}

/**
 * The record of what the service keeps in `context/secret`: a secret box (this page's or the CLI
 * gateway's) or a version-2 JSON record of an earlier console; refuses one of another user or model.
 */
export function recordFromService(bytes: Uint8Array, user: string, model: string): KeyRecord {
  if (isSecretBox(bytes)) {
    const { binding } = readSecretBoxBinding(bytes, { user, model });
    return { version: 3, user, model, fingerprint: binding.fingerprint, box: b64(bytes), createdAt: Date.now() };
  }
  let r: Partial<KeyRecordV2>;
  try {
    r = JSON.parse(new TextDecoder().decode(bytes)) as Partial<KeyRecordV2>;
  } catch {
    throw new Error(`the sealed key on the service is neither a secret box nor a key record of ${user} for ${model}`);
  }
  if (r.version !== 2 || r.user !== user || r.model !== model || typeof r.fingerprint !== 'string' || typeof r.sealed !== 'string') {
    throw new Error(`the record on the service is not a key record of ${user} for ${model}`);
  }
  return r as KeyRecordV2;
}
