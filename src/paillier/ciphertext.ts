import { CipherMLError } from '../core/errors.ts';
import { assertBigInt } from '../core/guards.ts';
import { FixedPointCodec, DEFAULT_FIXED_POINT, type FixedPointSpec } from '../core/fixed-point.ts';
import { modInverse } from '../core/bigmath/index.ts';
import type { ObfuscationMode, PaillierPrivateKey, PaillierPublicKey } from './keys.ts';

/**
 * One Paillier ciphertext c = (1 + m·n)·ρ mod n² of m ∈ Z_n.
 *
 * Homomorphic laws (Paillier 1999, §8): Dec(c1·c2) = m1 + m2, Dec(c^k) = k·m, Dec(c1·c2^{−1}) =
 * m1 − m2, all mod n.
 *
 * `obfuscated` is true only when the value carries a fresh randomizer that no party but the
 * encryptor knows: encryption with a randomizer, or a product of such ciphertexts. A scalar
 * multiple or a sum with an unobfuscated operand is a deterministic function of public values and
 * is marked false; it is re-randomized before it is serialized.
 *
 * @example
 * ```ts
 * const a = encrypt(publicKey, 5n), b = encrypt(publicKey, 7n);
 * decrypt(privateKey, a.add(b).mulScalar(3n)); // 36n
 * ```
 */
export class PaillierCiphertext {
  readonly publicKey: PaillierPublicKey;
  readonly value: bigint;
  readonly obfuscated: boolean;

  constructor(publicKey: PaillierPublicKey, value: bigint, obfuscated: boolean) {
    this.publicKey = publicKey;
    this.value = value;
    this.obfuscated = obfuscated;
  }

  /** Validates a raw value received from elsewhere (Z*_{n²} membership) and wraps it. */
  static fromValue(publicKey: PaillierPublicKey, value: bigint, param = 'ciphertext'): PaillierCiphertext {
    publicKey.assertCiphertext(value, param);
    return new PaillierCiphertext(publicKey, value, true);
  }

  get fingerprint(): string {
    return this.publicKey.fingerprint;
  }

  /** Enc(m1 + m2). */
  add(other: PaillierCiphertext): PaillierCiphertext {
    this.#sameKey(other, 'other');
    return new PaillierCiphertext(this.publicKey, (this.value * other.value) % this.publicKey.nSquared, this.obfuscated && other.obfuscated);
  }

  /** Enc(m + k) for a plaintext k (any bigint, reduced mod n). */
  addPlain(k: bigint): PaillierCiphertext {
    assertBigInt(k, 'k');
    const { n, nSquared } = this.publicKey;
    const km = ((k % n) + n) % n;
    return new PaillierCiphertext(this.publicKey, (this.value * ((1n + km * n) % nSquared)) % nSquared, false);
  }

  /** Enc(m1 − m2) mod n. */
  sub(other: PaillierCiphertext): PaillierCiphertext {
    this.#sameKey(other, 'other');
    const { nSquared } = this.publicKey;
    return new PaillierCiphertext(this.publicKey, (this.value * modInverse(other.value, nSquared)) % nSquared, false);
  }

  /** Enc(k·m) mod n for a plaintext scalar k (negative k multiplies by k mod n). */
  mulScalar(k: bigint): PaillierCiphertext {
    assertBigInt(k, 'k');
    const { n, nSquared } = this.publicKey;
    const e = ((k % n) + n) % n;
    return new PaillierCiphertext(this.publicKey, this.publicKey.backend.powm(this.value, e, nSquared), false);
  }

  /** The same plaintext under a fresh randomizer. */
  obfuscate(mode: ObfuscationMode = 'djn'): PaillierCiphertext {
    const { nSquared } = this.publicKey;
    return new PaillierCiphertext(this.publicKey, (this.value * this.publicKey.randomizer(mode)) % nSquared, true);
  }

  /** This ciphertext if obfuscated, else a re-randomized copy: what may leave the process. */
  forExport(): PaillierCiphertext {
    return this.obfuscated ? this : this.obfuscate();
  }

  /** Enc(Σ mᵢ) of one or more ciphertexts under one key. */
  static sum(items: readonly PaillierCiphertext[]): PaillierCiphertext {
    const first = items[0];
    if (first === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'cannot sum an empty list', { param: 'items' });
    let acc = first;
    for (let i = 1; i < items.length; i++) acc = acc.add(items[i]!);
    return acc;
  }

  #sameKey(other: PaillierCiphertext, param: string): void {
    if (!(other instanceof PaillierCiphertext)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a PaillierCiphertext', { param });
    }
    if (other.publicKey.n !== this.publicKey.n) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `operand is under key ${other.fingerprint}, this ciphertext under ${this.fingerprint}`, {
        param,
        details: { expected: this.fingerprint, actual: other.fingerprint },
      });
    }
  }
}

/** Throws KEY_MISMATCH unless the ciphertext was made under this private key's public key. */
export function assertSameKey(privateKey: PaillierPrivateKey, fingerprint: string, param: string): void {
  if (fingerprint !== privateKey.fingerprint) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `data is under key ${fingerprint}, the private key is ${privateKey.fingerprint}`, {
      param,
      details: { expected: privateKey.fingerprint, actual: fingerprint },
    });
  }
}

/**
 * Encrypts a plaintext m ∈ [0, n).
 *
 * @example
 * ```ts
 * const c = encrypt(publicKey, 42n);
 * ```
 */
export function encrypt(publicKey: PaillierPublicKey, m: bigint, options: { obfuscate?: boolean | ObfuscationMode } = {}): PaillierCiphertext {
  const obf = options.obfuscate ?? true;
  return new PaillierCiphertext(publicKey, publicKey.encryptRaw(m, obf), obf !== false);
}

/**
 * Decrypts to m ∈ [0, n); refuses a ciphertext under another key.
 *
 * @example
 * ```ts
 * decrypt(privateKey, encrypt(publicKey, 42n)); // 42n
 * ```
 */
export function decrypt(privateKey: PaillierPrivateKey, c: PaillierCiphertext): bigint {
  assertSameKey(privateKey, c.fingerprint, 'ciphertext');
  return privateKey.decryptRaw(c.value);
}

/**
 * Encrypts one real number as signed fixed-point (negative values as n − |v|).
 *
 * @example
 * ```ts
 * const c = encryptNumber(publicKey, -2.25);
 * decryptNumber(privateKey, c.add(encryptNumber(publicKey, 1))); // -1.25
 * ```
 */
export function encryptNumber(publicKey: PaillierPublicKey, x: number, spec: FixedPointSpec = DEFAULT_FIXED_POINT): PaillierCiphertext {
  const v = new FixedPointCodec(spec).encode(x, 'x');
  return encrypt(publicKey, v < 0n ? publicKey.n + v : v);
}

/**
 * Decrypts a fixed-point number (a sum of encryptNumber ciphertexts, or a multiple by an integer).
 * Plaintexts above n/2 are read as negative.
 */
export function decryptNumber(privateKey: PaillierPrivateKey, c: PaillierCiphertext, spec: FixedPointSpec = DEFAULT_FIXED_POINT): number {
  const m = decrypt(privateKey, c);
  const n = privateKey.publicKey.n;
  return new FixedPointCodec(spec).decode(m > n / 2n ? m - n : m);
}
