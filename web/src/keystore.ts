/**
 * The browser's secret-key store: a CKKS secret key encrypted under the user's passphrase with
 * WebCrypto and kept in IndexedDB (database `cipherml`, store `keys`, one record per user).
 *
 * Format (version 1): PBKDF2-HMAC-SHA256 with 600,000 iterations (OWASP Password Storage Cheat
 * Sheet, 2023) and a 16-byte random salt derives an AES-256-GCM key; the 12-byte random IV and
 * the associated data `cipherml-browser-key-v1|<user>|<fingerprint>` bind the ciphertext to its
 * user and public-key fingerprint, so a record moved to another user or paired with another
 * public key fails to decrypt. The passphrase and the plaintext key never leave the page.
 */

export const PBKDF2_ITERATIONS = 600_000;

export interface KeyRecord {
  readonly version: 1;
  readonly user: string;
  readonly fingerprint: string;
  readonly parameters: { readonly polyModulusDegree: number; readonly coeffModulusBits: readonly number[]; readonly scaleBits: number };
  readonly salt: string;
  readonly iv: string;
  readonly sealed: string;
  readonly publicKey: string;
  readonly createdAt: number;
}

function b64(b: Uint8Array): string {
  let s = '';
  // In chunks: spreading a ~500 KB array into one call overflows the stack.
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
const unb64 = (s: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const utf8 = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s);
const aad = (user: string, fingerprint: string): Uint8Array<ArrayBuffer> => utf8(`cipherml-browser-key-v1|${user}|${fingerprint}`);

async function derive(passphrase: string, salt: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey('raw', utf8(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: PBKDF2_ITERATIONS }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** SHA-256 of the public key bytes, first 32 hex characters. */
export async function fingerprintOf(publicKey: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', unb64(publicKey)));
  return Array.from(d.subarray(0, 16), (x) => x.toString(16).padStart(2, '0')).join('');
}

export async function sealSecretKey(user: string, passphrase: string, secretKey: string, publicKey: string, parameters: KeyRecord['parameters']): Promise<KeyRecord> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const fingerprint = await fingerprintOf(publicKey);
  const key = await derive(passphrase, salt);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(user, fingerprint) }, key, utf8(secretKey)));
  return { version: 1, user, fingerprint, parameters, salt: b64(salt), iv: b64(iv), sealed: b64(sealed), publicKey, createdAt: Date.now() };
}

/** The secret key (SEAL base64), or an Error("wrong passphrase…") when the passphrase or record does not match. */
export async function openSecretKey(record: KeyRecord, passphrase: string): Promise<string> {
  const key = await derive(passphrase, unb64(record.salt));
  try {
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(record.iv), additionalData: aad(record.user, record.fingerprint) }, key, unb64(record.sealed));
    return new TextDecoder().decode(plain);
  } catch {
    throw new Error('wrong passphrase, or the stored key record was altered');
  }
}

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('cipherml', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('keys');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB unavailable'));
  });
}

export async function saveRecord(record: KeyRecord): Promise<void> {
  const d = await db();
  await new Promise<void>((resolve, reject) => {
    const tx = d.transaction('keys', 'readwrite');
    tx.objectStore('keys').put(record, record.user);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
  });
  d.close();
}

export async function loadRecord(user: string): Promise<KeyRecord | undefined> {
  const d = await db();
  const out = await new Promise<KeyRecord | undefined>((resolve, reject) => {
    const req = d.transaction('keys', 'readonly').objectStore('keys').get(user);
    req.onsuccess = () => resolve(req.result as KeyRecord | undefined);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB read failed'));
  });
  d.close();
  return out;
}
