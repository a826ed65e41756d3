import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';

/**
 * Password hashing for console accounts: scrypt (RFC 7914) at the OWASP Password Storage Cheat
 * Sheet's recommended cost, N = 2^17, r = 8, p = 1 (128 MiB and about 0.3 s per hash on one
 * core). Stored as `scrypt$N$r$p$salt$hash` (base64url, 16-byte salt, 32-byte hash) so the cost
 * can rise later without invalidating stored hashes: {@link verifyPassword} reads the cost from
 * the stored string.
 *
 * Memory: each hash holds 128·N·r·p bytes for its duration, so at most {@link KDF_CONCURRENCY}
 * run at once and at most {@link KDF_QUEUE} wait; more are refused with CIPHERML_E_SERVICE_BUSY
 * (a sign-in flood costs bounded memory, never 128 MiB per request).
 */

/** scrypt cost of new hashes (OWASP: N = 2^17, r = 8, p = 1). */
export const SCRYPT_COST: { readonly N: number; readonly r: number; readonly p: number } = { N: 2 ** 17, r: 8, p: 1 };
/** Hashes computed at once. */
export const KDF_CONCURRENCY = 2;
/** Hashes waiting for a slot; one more is refused. */
export const KDF_QUEUE = 32;
/** Longest password accepted (characters); the schema refuses longer ones before any hashing. */
export const PASSWORD_MAX = 256;
/** Shortest password accepted (NIST SP 800-63B §3.1.1.2 asks for at least 8; we ask 12). */
export const PASSWORD_MIN = 12;

const SALT_BYTES = 16;
const HASH_BYTES = 32;

let active = 0;
const waiting: (() => void)[] = [];

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (active >= KDF_CONCURRENCY) {
    if (waiting.length >= KDF_QUEUE) throw new CipherMLError('CIPHERML_E_SERVICE_BUSY', 'too many password checks in progress', { param: 'password', advice: 'The service is hashing many passwords at once; retry in a few seconds.' });
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else active++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next !== undefined) next();
    else active--;
  }
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, { N, r, p, maxmem: 128 * N * r * p + (32 << 20) }, (err, key) => (err === null ? resolve(key) : reject(err))),
  );
}

/**
 * Hashes a password for storage.
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse battery staple');
 * await verifyPassword('correct horse battery staple', stored); // true
 * ```
 */
export async function hashPassword(password: string, cost: { readonly N: number; readonly r: number; readonly p: number } = SCRYPT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await slot(() => derive(password, salt, cost.N, cost.r, cost.p));
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/**
 * Checks a password against a stored hash in constant time (with respect to the hash). A
 * malformed stored string is a storage error, never a match.
 *
 * @example
 * ```ts
 * await verifyPassword('wrong', await hashPassword('right password!')); // false
 * ```
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{16,128})$/.exec(stored);
  if (m === null) throw new CipherMLError('CIPHERML_E_STORAGE', 'a stored password hash is malformed', { param: 'password' });
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Only costs this code could have written: a tampered row must not make the service allocate gigabytes.
  if (N < 2 ** 14 || N > 2 ** 20 || (N & (N - 1)) !== 0 || r < 1 || r > 16 || p < 1 || p > 4) throw new CipherMLError('CIPHERML_E_STORAGE', 'a stored password hash has an unsupported cost', { param: 'password' });
  const expected = Buffer.from(m[5]!, 'base64url');
  const key = await slot(() => derive(password, Buffer.from(m[4]!, 'base64url'), N, r, p));
  return key.length === expected.length && timingSafeEqual(key, expected);
}
