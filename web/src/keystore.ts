/**
 * The browser's secret-key store: the service's secret-key envelope of a model's CKKS key set
 * (src/ckks/serialize.ts, kind privateKey), encrypted under the user's passphrase with WebCrypto
 * and kept in IndexedDB (database `cipherml`, store `keys`, one record per user and model).
 *
 * Format (version 2): PBKDF2-HMAC-SHA256 with 600,000 iterations (OWASP Password Storage Cheat
 * Sheet, 2023; WebCrypto has no memory-hard KDF) and a 16-byte random salt derives an AES-256-GCM
 * key; the 12-byte random IV and the associated data
 * `cipherml-browser-key-v2|<user>|<model>|<fingerprint>` bind the ciphertext to its user, model
 * and key-set fingerprint, so a record moved to another user or model, or relabelled with another
 * fingerprint, fails to decrypt. The passphrase and the plaintext key never leave the page; the
 * sealed record may be kept on the service (`PUT …/context/secret`), which cannot open it.
 */

export const PBKDF2_ITERATIONS = 600_000;

export interface KeyRecord {
  readonly version: 2;
  readonly user: string;
  /** `NAME/VERSION` of the deployed model. */
  readonly model: string;
  /** The key set's envelope fingerprint (src/ckks/context.ts `fingerprintOf`). */
  readonly fingerprint: string;
  readonly iterations: number;
  readonly salt: string;
  readonly iv: string;
  readonly sealed: string;
  readonly createdAt: number;
}

function b64(b: Uint8Array): string {
  let s = '';
  // In chunks: spreading a large array into one call overflows the stack.
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
const unb64 = (s: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const utf8 = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s);
const aad = (r: Pick<KeyRecord, 'user' | 'model' | 'fingerprint'>): Uint8Array<ArrayBuffer> => utf8(`cipherml-browser-key-v2|${r.user}|${r.model}|${r.fingerprint}`);

async function derive(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey('raw', utf8(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Seals a secret-key envelope for `user` and `model` under `passphrase`. */
export async function sealSecretKey(user: string, model: string, fingerprint: string, passphrase: string, secretKey: Uint8Array): Promise<KeyRecord> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await derive(passphrase, salt, PBKDF2_ITERATIONS);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad({ user, model, fingerprint }) }, key, new Uint8Array(secretKey)));
  return { version: 2, user, model, fingerprint, iterations: PBKDF2_ITERATIONS, salt: b64(salt), iv: b64(iv), sealed: b64(sealed), createdAt: Date.now() };
}

/** The secret-key envelope, or an Error("wrong passphrase…") when the passphrase or the record does not match. */
export async function openSecretKey(record: KeyRecord, passphrase: string): Promise<Uint8Array> {
  const key = await derive(passphrase, unb64(record.salt), record.iterations);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(record.iv), additionalData: aad(record) }, key, unb64(record.sealed)));
  } catch {
    throw new Error('wrong passphrase, or the stored key record was altered');
  }
}

/** Parses a record kept on the service; refuses one of another version, user or model. */
export function parseRecord(text: string, user: string, model: string): KeyRecord {
  const r = JSON.parse(text) as Partial<KeyRecord>;
  if (r.version !== 2 || r.user !== user || r.model !== model || typeof r.fingerprint !== 'string' || typeof r.sealed !== 'string') {
    throw new Error(`the record on the service is not a version-2 key record of ${user} for ${model}`);
  }
  return r as KeyRecord;
}

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('cipherml', 2);
    req.onupgradeneeded = () => {
      // Version 1 held SEAL-format keys not bound to a model: unusable by the trainer, dropped.
      if (req.result.objectStoreNames.contains('keys')) req.result.deleteObjectStore('keys');
      req.result.createObjectStore('keys');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB unavailable'));
  });
}

const idOf = (user: string, model: string): string => `${user}|${model}`;

export async function saveRecord(record: KeyRecord): Promise<void> {
  const d = await db();
  await new Promise<void>((resolve, reject) => {
    const tx = d.transaction('keys', 'readwrite');
    tx.objectStore('keys').put(record, idOf(record.user, record.model));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
  });
  d.close();
}

export async function loadRecord(user: string, model: string): Promise<KeyRecord | undefined> {
  const d = await db();
  const out = await new Promise<KeyRecord | undefined>((resolve, reject) => {
    const req = d.transaction('keys', 'readonly').objectStore('keys').get(idOf(user, model));
    req.onsuccess = () => resolve(req.result as KeyRecord | undefined);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB read failed'));
  });
  d.close();
  return out;
}
