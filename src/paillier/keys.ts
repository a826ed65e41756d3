import { createHash, generatePrime } from 'node:crypto';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertBigInt, assertIntegerInRange, assertOneOf } from '../core/guards.ts';
import { bitLength, byteLength, gcd, getBackend, modInverse, randomBelow, randomBits, type BackendPreference, type FixedBasePow, type ModArithBackend } from '../core/bigmath/index.ts';

/**
 * Paillier keys (Paillier, EUROCRYPT 1999) with g = n + 1, so g^m = 1 + m·n mod n² and
 * encryption costs one multiplication plus the randomizer.
 *
 * Randomizers (obfuscation):
 * - `djn`: Damgård–Jurik–Nielsen short exponent (DJN 2010, §4 with s = 1): the public key carries
 *   h_s = h^n mod n², h = −x² mod n for random x ∈ Z*_n; a randomizer is h_s^α with α uniform in
 *   [0, 2^⌈k/2⌉), k = bitLength(n). h_s is fixed per key, so h_s^α comes from a fixed-base table.
 * - `classic`: r^n mod n² with r uniform in Z*_n (the textbook scheme).
 */

function generatePrimeAsync(bits: number): Promise<bigint> {
  return new Promise((resolve, reject) => generatePrime(bits, { bigint: true }, (err, prime) => (err ? reject(err) : resolve(prime))));
}

/** Key sizes offered: 2048 is the default (~112-bit security, NIST SP 800-57). */
export const PAILLIER_KEY_BITS = [1024, 2048, 3072, 4096] as const;
export type PaillierKeyBits = (typeof PAILLIER_KEY_BITS)[number];

/** How a fresh randomizer is made. */
export type ObfuscationMode = 'djn' | 'classic';

/** Options for constructing keys. */
export interface PaillierKeyOptions {
  /** Modular-arithmetic backend; `auto` takes the GMP addon when built. */
  readonly backend?: BackendPreference;
  /** Window of the DJN fixed-base table, in bits (table size ⌈k/2w⌉·2^w entries of n² size). */
  readonly tableWindowBits?: number;
}

const LEGACY_FINGERPRINT_DOMAIN = 'cipherml/paillier/v1';
const FINGERPRINT_DOMAIN = 'cipherml/paillier/v2';

function lengthPrefixed(h: ReturnType<typeof createHash>, x: bigint): void {
  const hex = x.toString(16);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(hex.length);
  h.update(len).update(hex);
}

/**
 * The key fingerprint: first 16 bytes of SHA-256(domain ‖ len ‖ n ‖ len ‖ h_s), hex. It covers
 * all public material, so pinning it pins the DJN base as well as the modulus (a key with the
 * right n and a substituted h_s has another fingerprint).
 *
 * @example
 * ```ts
 * paillierFingerprint(publicKey.n, publicKey.hs) === publicKey.fingerprint; // true
 * ```
 */
export function paillierFingerprint(n: bigint, hs: bigint): string {
  const h = createHash('sha256').update(FINGERPRINT_DOMAIN);
  lengthPrefixed(h, n);
  lengthPrefixed(h, hs);
  return h.digest('hex').slice(0, 32);
}

/**
 * The fingerprint of cipherml ≤ 0.1 (SHA-256 over n only). Files written then carry it; they are
 * still read (the key is re-fingerprinted at load), but it never pins a key: it misses h_s.
 */
export function legacyPaillierFingerprint(n: bigint): string {
  return createHash('sha256').update(LEGACY_FINGERPRINT_DOMAIN).update(n.toString(16)).digest('hex').slice(0, 32);
}

/** The smallest modulus a party accepts from another party (NIST SP 800-57: 112-bit security). */
export const MIN_RECEIVED_KEY_BITS = 2048;

/**
 * Refuses a public key received from another party whose modulus is below `minBits` (default
 * 2048), or whose h_s has order 1 or 2 (h_s = ±1 or h_s² = 1 mod n²: every DJN randomizer would
 * be ±1, so ciphertexts would not be hiding). `param` names the flag or field the key came from.
 *
 * @example
 * ```ts
 * assertReceivedPublicKey(deserializePublicKey(reply.publicKey), 'publicKey');
 * ```
 */
export function assertReceivedPublicKey(pk: PaillierPublicKey, param: string, minBits: number = MIN_RECEIVED_KEY_BITS): void {
  if (pk.bits < minBits) {
    throw new CipherMLError('CIPHERML_E_KEY_TOO_SMALL', `the Paillier key ${pk.fingerprint} has a ${pk.bits}-bit modulus; at least ${minBits} bits are required`, { param, details: { bits: pk.bits, minBits, fingerprint: pk.fingerprint } });
  }
  if (defences.keyBaseCheck) assertBaseOrder(pk, param);
}

function assertBaseOrder(pk: PaillierPublicKey, param: string): void {
  const n2 = pk.nSquared;
  if (pk.hs === 1n || pk.hs === n2 - 1n || (pk.hs * pk.hs) % n2 === 1n) {
    throw new CipherMLError('CIPHERML_E_KEY_INVALID', `the DJN base h_s of key ${pk.fingerprint} has order 1 or 2 (h_s = ±1 or h_s² = 1 mod n²): its randomizers would not hide anything`, { param: `${param}.hs`, details: { fingerprint: pk.fingerprint } });
  }
}

/**
 * A Paillier public key with g = n + 1 and the DJN base h_s.
 *
 * @example
 * ```ts
 * const { publicKey } = await generatePaillierKeyPair({ bits: 2048 });
 * const c = encrypt(publicKey, 42n);
 * ```
 */
export class PaillierPublicKey {
  readonly n: bigint;
  readonly nSquared: bigint;
  /** DJN fixed base h_s = (−x²)^n mod n². */
  readonly hs: bigint;
  /** Bit length of n. */
  readonly bits: number;
  /** Bit length of the DJN short exponent α: ⌈bits/2⌉. */
  readonly djnExponentBits: number;
  readonly fingerprint: string;
  /** The fingerprint of cipherml ≤ 0.1 (n only): accepted in file headers, never for pinning. */
  readonly legacyFingerprint: string;
  /** Bytes of a ciphertext in fixed-width serialization (⌈bitLength(n²)/8⌉). */
  readonly ciphertextBytes: number;
  readonly backend: ModArithBackend;
  readonly #windowBits: number;
  #table: FixedBasePow | undefined;

  constructor(n: bigint, hs: bigint, options: PaillierKeyOptions = {}) {
    assertBigInt(n, 'n');
    assertBigInt(hs, 'hs');
    const bits = bitLength(n);
    if (bits < 512 || (n & 1n) === 0n) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `n must be an odd modulus of at least 512 bits, got ${bits} bits`, { param: 'n' });
    }
    const nSquared = n * n;
    if (hs <= 1n || hs >= nSquared || gcd(hs, n) !== 1n) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'hs must be an element of Z*_{n^2} other than 1', { param: 'hs' });
    }
    const windowBits = options.tableWindowBits ?? 8;
    assertIntegerInRange(windowBits, 'tableWindowBits', 1, 12);
    this.n = n;
    this.nSquared = nSquared;
    this.hs = hs;
    this.bits = bits;
    this.djnExponentBits = Math.ceil(bits / 2);
    this.fingerprint = paillierFingerprint(n, hs);
    this.legacyFingerprint = legacyPaillierFingerprint(n);
    this.ciphertextBytes = byteLength(nSquared);
    this.backend = getBackend(options.backend ?? 'auto');
    this.#windowBits = windowBits;
  }

  /** Builds the DJN fixed-base table now (otherwise it is built on first use). */
  precompute(): this {
    this.#fixedBase();
    return this;
  }

  /**
   * A fresh randomizer ρ with ρ = r^n mod n² for some r ∈ Z*_n, to multiply into a ciphertext.
   *
   * @example
   * ```ts
   * const rho = publicKey.randomizer('djn');
   * ```
   */
  randomizer(mode: ObfuscationMode = 'djn'): bigint {
    if (mode === 'djn') return this.#fixedBase().pow(randomBits(this.djnExponentBits));
    assertOneOf(mode, 'obfuscation', ['djn', 'classic'] as const);
    let r: bigint;
    do r = randomBelow(this.n);
    while (gcd(r, this.n) !== 1n);
    return this.backend.powm(r, this.n, this.nSquared);
  }

  /** Many randomizers at once (one native call on the GMP backend). */
  randomizers(count: number, mode: ObfuscationMode = 'djn'): bigint[] {
    if (mode === 'classic') return Array.from({ length: count }, () => this.randomizer('classic'));
    const exps = Array.from({ length: count }, () => randomBits(this.djnExponentBits));
    return this.#fixedBase().powMany(exps);
  }

  /**
   * Encrypts m ∈ [0, n) as (1 + m·n)·ρ mod n². With `obfuscate: false` the randomizer is left out
   * (ciphertext marked unobfuscated); it is applied before the ciphertext is serialized.
   */
  encryptRaw(m: bigint, obfuscate: boolean | ObfuscationMode = true): bigint {
    this.assertPlaintext(m, 'plaintext');
    const base = (1n + m * this.n) % this.nSquared;
    if (obfuscate === false) return base;
    return (base * this.randomizer(obfuscate === true ? 'djn' : obfuscate)) % this.nSquared;
  }

  /** Throws unless 0 ≤ m < n. */
  assertPlaintext(m: bigint, param: string): void {
    assertBigInt(m, param);
    if (m < 0n || m >= this.n) {
      throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `plaintext must be in [0, n) for this ${this.bits}-bit key`, { param });
    }
  }

  /** Throws CIPHERTEXT_INVALID unless c ∈ Z*_{n²}, i.e. 0 < c < n² and gcd(c, n) = 1. */
  assertCiphertext(c: bigint, param: string): void {
    assertBigInt(c, param);
    if (c <= 0n || c >= this.nSquared) {
      throw new CipherMLError('CIPHERML_E_CIPHERTEXT_INVALID', 'value is outside (0, n^2)', { param });
    }
    if (this.backend.gcd(c, this.n) !== 1n) {
      throw new CipherMLError('CIPHERML_E_CIPHERTEXT_INVALID', 'value shares a factor with n', { param });
    }
  }

  /** True when `other` is the same key (same n and h_s). */
  equals(other: PaillierPublicKey): boolean {
    return other.n === this.n && other.hs === this.hs;
  }

  #fixedBase(): FixedBasePow {
    this.#table ??= this.backend.fixedBase(this.hs, this.nSquared, this.djnExponentBits, this.#windowBits);
    return this.#table;
  }
}

/**
 * A Paillier private key (the factors p, q) with CRT decryption (Paillier 1999, §7):
 * m_p = L_p(c^{p−1} mod p²)·h_p mod p, m_q likewise, m = CRT(m_p, m_q), where
 * L_p(u) = (u − 1)/p and h_p = L_p(g^{p−1} mod p²)^{−1} mod p.
 *
 * @example
 * ```ts
 * const { publicKey, privateKey } = await generatePaillierKeyPair();
 * privateKey.decryptRaw(publicKey.encryptRaw(7n)); // 7n
 * ```
 */
export class PaillierPrivateKey {
  readonly publicKey: PaillierPublicKey;
  readonly p: bigint;
  readonly q: bigint;
  readonly #pSquared: bigint;
  readonly #qSquared: bigint;
  readonly #hp: bigint;
  readonly #hq: bigint;
  readonly #qInvP: bigint;

  constructor(publicKey: PaillierPublicKey, p: bigint, q: bigint) {
    assertBigInt(p, 'p');
    assertBigInt(q, 'q');
    if (p === q || p * q !== publicKey.n) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', 'p·q does not equal the public modulus n (or p = q)', { param: 'p' });
    }
    if (p > q) [p, q] = [q, p];
    this.publicKey = publicKey;
    this.p = p;
    this.q = q;
    this.#pSquared = p * p;
    this.#qSquared = q * q;
    const g = publicKey.n + 1n;
    const be = publicKey.backend;
    this.#hp = modInverse((be.powm(g, p - 1n, this.#pSquared) - 1n) / p, p);
    this.#hq = modInverse((be.powm(g, q - 1n, this.#qSquared) - 1n) / q, q);
    this.#qInvP = modInverse(q, p);
    this.#checkBase();
  }

  /**
   * The key holder's check of h_s (DJN 2010 §4): h_s ≠ ±1, h_s² ≠ 1 mod n² (order not 1 or 2), and
   * h_s an n-th residue mod n², i.e. h_s^(p−1) ≡ 1 mod p² and h_s^(q−1) ≡ 1 mod q² (by CRT, since
   * Z*_{p²} ≅ Z_p × Z_{p−1} and the n-th powers are its elements of order dividing p − 1). An h_s
   * outside that subgroup would carry a plaintext component into every randomizer.
   */
  #checkBase(): void {
    const pk = this.publicKey;
    assertBaseOrder(pk, 'privateKey');
    const be = pk.backend;
    if (be.powm(pk.hs % this.#pSquared, this.p - 1n, this.#pSquared) !== 1n || be.powm(pk.hs % this.#qSquared, this.q - 1n, this.#qSquared) !== 1n) {
      throw new CipherMLError('CIPHERML_E_KEY_INVALID', `the DJN base h_s of key ${pk.fingerprint} is not an n-th residue mod n²: randomizers would shift plaintexts`, { param: 'privateKey.hs', details: { fingerprint: pk.fingerprint } });
    }
  }

  get fingerprint(): string {
    return this.publicKey.fingerprint;
  }

  /**
   * Throws CIPHERTEXT_INVALID unless c ∈ Z*_{n²}. With the factors, gcd(c, n) = 1 is checked as
   * p ∤ c and q ∤ c: two reductions instead of a gcd.
   */
  assertCiphertext(c: bigint, param: string): void {
    assertBigInt(c, param);
    if (c <= 0n || c >= this.publicKey.nSquared) {
      throw new CipherMLError('CIPHERML_E_CIPHERTEXT_INVALID', 'value is outside (0, n^2)', { param });
    }
    if (c % this.p === 0n || c % this.q === 0n) {
      throw new CipherMLError('CIPHERML_E_CIPHERTEXT_INVALID', 'value shares a factor with n', { param });
    }
  }

  /** Decrypts a raw ciphertext to m ∈ [0, n). Validates c ∈ Z*_{n²} first. */
  decryptRaw(c: bigint): bigint {
    this.assertCiphertext(c, 'ciphertext');
    return this.decryptUnchecked(c);
  }

  /** CRT decryption without the Z*_{n²} membership check (for already-validated input). */
  decryptUnchecked(c: bigint): bigint {
    const { p, q } = this;
    const be = this.publicKey.backend;
    const mp = (((be.powmSec(c % this.#pSquared, p - 1n, this.#pSquared) - 1n) / p) * this.#hp) % p;
    const mq = (((be.powmSec(c % this.#qSquared, q - 1n, this.#qSquared) - 1n) / q) * this.#hq) % q;
    let h = ((mp - mq) * this.#qInvP) % p;
    if (h < 0n) h += p;
    return mq + h * q;
  }
}

/** A generated key pair. */
export interface PaillierKeyPair {
  readonly publicKey: PaillierPublicKey;
  readonly privateKey: PaillierPrivateKey;
}

/** Options of {@link generatePaillierKeyPair}. */
export interface GenerateOptions extends PaillierKeyOptions {
  /** Modulus size: 2048 (default), 3072 or 4096; 1024 only for tests (insecure). */
  readonly bits?: number;
}

/**
 * Generates a key pair with OpenSSL's prime generation (node:crypto `generatePrime`, off the
 * main thread). p and q are distinct primes of bits/2 bits with bitLength(pq) = bits; since they
 * have equal length, gcd(pq, (p−1)(q−1)) = 1 as g = n + 1 requires.
 *
 * @example
 * ```ts
 * const { publicKey, privateKey } = await generatePaillierKeyPair({ bits: 3072 });
 * ```
 */
export async function generatePaillierKeyPair(options: GenerateOptions = {}): Promise<PaillierKeyPair> {
  const bits = options.bits ?? 2048;
  assertOneOf(bits, 'bits', PAILLIER_KEY_BITS);
  for (;;) {
    const [p, q] = await Promise.all([generatePrimeAsync(bits / 2), generatePrimeAsync(bits / 2)]);
    const n = p * q;
    if (p === q || bitLength(n) !== bits || gcd(n, (p - 1n) * (q - 1n)) !== 1n) continue;
    const hs = djnBase(n, options);
    const publicKey = new PaillierPublicKey(n, hs, options);
    return { publicKey, privateKey: new PaillierPrivateKey(publicKey, p, q) };
  }
}

/** h_s = (−x²)^n mod n² for a random x ∈ Z*_n (DJN 2010, key generation with s = 1). */
export function djnBase(n: bigint, options: PaillierKeyOptions = {}): bigint {
  let x: bigint;
  do x = randomBelow(n);
  while (gcd(x, n) !== 1n);
  const h = n - ((x * x) % n);
  return getBackend(options.backend ?? 'auto').powm(h, n, n * n);
}
