import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { describe } from '../core/guards.ts';

/**
 * Key agreement and authenticated encryption for secure aggregation (Bonawitz et al., CCS 2017,
 * §3 "Cryptographic primitives": key agreement KA, authenticated encryption AE).
 *
 * - KA: X25519 (RFC 7748 §5, §6.1) followed by HKDF-SHA256 (RFC 5869) with a fixed 32-byte zero
 *   salt and a domain-separated info string "cipherml/secagg/v1/" + purpose, so the mask seed and
 *   the share-encryption key derived from one DH secret are independent.
 * - AE: AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per message. Random nonces
 *   are safe for far fewer than 2^32 messages under one key (SP 800-38D §8.3); keys here are per
 *   pair of clients and per round, so a key seals a handful of messages.
 *
 * Raw key formats: 32-byte little-endian scalars / u-coordinates exactly as in RFC 7748.
 */

/**
 * X25519 raw key length in bytes (RFC 7748 §5).
 *
 * @example
 * ```ts
 * generateX25519KeyPair().publicKey.length === X25519_KEY_BYTES; // true
 * ```
 */
export const X25519_KEY_BYTES = 32;

/**
 * AES-256-GCM nonce ‖ tag overhead of a sealed box: 12 + 16 = 28 bytes.
 *
 * @example
 * ```ts
 * sealBox(key, plaintext, aad).length === plaintext.length + BOX_OVERHEAD_BYTES; // true
 * ```
 */
export const BOX_OVERHEAD_BYTES = 28;

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KDF_INFO_PREFIX = 'cipherml/secagg/v1/';
/** 32 zero bytes: HashLen zeros, which RFC 5869 §2.2 also uses when the salt is omitted. */
const KDF_SALT = new Uint8Array(32);
/** PKCS#8 DER header of an X25519 private key (RFC 8410 §7), followed by the 32 raw bytes. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** SPKI DER header of an X25519 public key (RFC 8410 §4), followed by the 32 raw bytes. */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * An X25519 key pair as raw RFC 7748 byte strings (32 bytes each).
 *
 * @example
 * ```ts
 * const { publicKey, privateKey } = generateX25519KeyPair();
 * publicKey.length === 32 && privateKey.length === 32; // true
 * ```
 */
export interface X25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

/**
 * A fresh X25519 key pair from the OS CSPRNG.
 *
 * @example
 * ```ts
 * const alice = generateX25519KeyPair();
 * ```
 */
export function generateX25519KeyPair(): X25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicKey: copyTail(publicKey.export({ format: 'der', type: 'spki' }), SPKI_PREFIX.length),
    privateKey: copyTail(privateKey.export({ format: 'der', type: 'pkcs8' }), PKCS8_PREFIX.length),
  };
}

/**
 * The public key X25519(privateKey, 9) of a raw 32-byte private key. Throws
 * CIPHERML_E_INVALID_ARGUMENT (param `privateKey`) for a wrong length.
 *
 * @example
 * ```ts
 * const kp = generateX25519KeyPair();
 * x25519PublicFromPrivate(kp.privateKey); // equals kp.publicKey
 * ```
 */
export function x25519PublicFromPrivate(privateKey: Uint8Array): Uint8Array {
  const sk = importPrivate(privateKey, 'privateKey');
  return copyTail(createPublicKey(sk).export({ format: 'der', type: 'spki' }), SPKI_PREFIX.length);
}

/**
 * Derives a 32-byte symmetric key shared with a peer:
 * HKDF-SHA256(ikm = X25519(privateKey, peerPublicKey), salt = 32 zero bytes,
 * info = "cipherml/secagg/v1/" + info, L = 32). Symmetric: agreeKey(a.sk, b.pk, i) equals
 * agreeKey(b.sk, a.pk, i). Different `info` strings give independent keys.
 *
 * Throws CIPHERML_E_INVALID_ARGUMENT naming `privateKey`, `peerPublicKey` or `info` for a wrong
 * length or type, and CIPHERML_E_PROTOCOL when the peer key is a low-order point (the X25519
 * output would be all zero, RFC 7748 §6.1 — a malicious peer forcing a known key).
 *
 * @example
 * ```ts
 * const a = generateX25519KeyPair(), b = generateX25519KeyPair();
 * const k1 = agreeKey(a.privateKey, b.publicKey, 'mask');
 * const k2 = agreeKey(b.privateKey, a.publicKey, 'mask'); // same bytes as k1
 * ```
 */
export function agreeKey(privateKey: Uint8Array, peerPublicKey: Uint8Array, info: string): Uint8Array {
  const sk = importPrivate(privateKey, 'privateKey');
  const pk = importPublic(peerPublicKey, 'peerPublicKey');
  if (typeof info !== 'string') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a string, got ${describe(info)}`, { param: 'info' });
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: sk, publicKey: pk });
  } catch (cause) {
    // OpenSSL refuses an all-zero X25519 output (low-order peer point) with a derivation error;
    // both keys were already validated, so this is the only way derivation can fail here.
    throw new CipherMLError('CIPHERML_E_PROTOCOL', 'the peer public key is a low-order point (X25519 shared secret would be all zero)', {
      param: 'peerPublicKey',
      cause,
    });
  }
  // Belt and braces (RFC 7748 §6.1 "MAY check"): never derive a key from an all-zero secret.
  let acc = 0;
  for (const byte of shared) acc |= byte;
  if (acc === 0) {
    throw new CipherMLError('CIPHERML_E_PROTOCOL', 'the peer public key is a low-order point (X25519 shared secret is all zero)', { param: 'peerPublicKey' });
  }
  const okm = hkdfSync('sha256', shared, KDF_SALT, Buffer.from(KDF_INFO_PREFIX + info, 'utf8'), 32);
  shared.fill(0);
  return new Uint8Array(okm);
}

/**
 * Authenticated encryption: returns nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ 16-byte
 * tag, binding `aad` (authenticated, not encrypted — e.g. sender, recipient and round ids).
 * Throws CIPHERML_E_INVALID_ARGUMENT for a key that is not 32 bytes or non-Uint8Array inputs.
 *
 * @example
 * ```ts
 * const box = sealBox(key, new TextEncoder().encode('hi'), aad);
 * openBox(key, box, aad); // Uint8Array of 'hi'
 * ```
 */
export function sealBox(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertBytes(key, 'key', 32);
  assertBytes(plaintext, 'plaintext');
  assertBytes(aad, 'aad');
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(NONCE_BYTES + body.length + tail.length + TAG_BYTES);
  out.set(nonce, 0);
  out.set(body, NONCE_BYTES);
  out.set(tail, NONCE_BYTES + body.length);
  out.set(tag, out.length - TAG_BYTES);
  return out;
}

/**
 * Opens a box made by {@link sealBox} under the same key and aad. Throws
 * CIPHERML_E_FORMAT_CORRUPT when the box is shorter than 28 bytes or fails authentication (any
 * modified byte, wrong key or wrong aad); nothing is returned from an unauthenticated box.
 *
 * @example
 * ```ts
 * const pt = openBox(key, box, aad);
 * ```
 */
export function openBox(key: Uint8Array, box: Uint8Array, aad: Uint8Array): Uint8Array {
  assertBytes(key, 'key', 32);
  assertBytes(box, 'box');
  assertBytes(aad, 'aad');
  if (box.length < BOX_OVERHEAD_BYTES) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a sealed box is at least ${BOX_OVERHEAD_BYTES} bytes (nonce ‖ tag), got ${box.length}`, {
      param: 'box',
      details: { minimum: BOX_OVERHEAD_BYTES, actual: box.length },
    });
  }
  const nonce = box.subarray(0, NONCE_BYTES);
  const body = box.subarray(NONCE_BYTES, box.length - TAG_BYTES);
  const tag = box.subarray(box.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(tag);
  decipher.setAAD(aad);
  const head = decipher.update(body);
  let tail: Buffer;
  try {
    tail = decipher.final();
  } catch (cause) {
    head.fill(0);
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the sealed box failed authentication (modified, wrong key or wrong associated data)', {
      param: 'box',
      cause,
    });
  }
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

/**
 * Imported KeyObjects per raw key array: a client agrees keys with every peer under the same
 * private key, and importing costs more than the agreement itself. An entry is used only while
 * the array still holds the bytes it was imported from.
 */
const IMPORTED = new WeakMap<Uint8Array, { readonly bytes: Buffer; readonly key: KeyObject }>();

function cachedImport(raw: Uint8Array, make: () => KeyObject): KeyObject {
  const hit = IMPORTED.get(raw);
  if (hit !== undefined && hit.bytes.equals(raw)) return hit.key;
  const key = make();
  IMPORTED.set(raw, { bytes: Buffer.from(raw), key });
  return key;
}

function importPrivate(raw: Uint8Array, param: string): KeyObject {
  assertBytes(raw, param, X25519_KEY_BYTES);
  return cachedImport(raw, () => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' }));
}

function importPublic(raw: Uint8Array, param: string): KeyObject {
  assertBytes(raw, param, X25519_KEY_BYTES);
  return cachedImport(raw, () => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' }));
}

function assertBytes(value: unknown, param: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) {
    const want = length === undefined ? 'a Uint8Array' : `a Uint8Array of ${length} bytes`;
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected ${want}, got ${describe(value)}`, {
      param,
      ...(length === undefined ? {} : { details: { expected: length, actual: value instanceof Uint8Array ? value.length : null } }),
    });
  }
}

/** A fresh Uint8Array holding `der` from `offset` on (the raw key after a fixed DER header). */
function copyTail(der: Buffer, offset: number): Uint8Array {
  return Uint8Array.from(der.subarray(offset));
}
