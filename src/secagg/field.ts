import { CipherMLError } from '../core/errors.ts';
import { modInverse, randomBits } from '../core/bigmath/bigint.ts';

/**
 * Arithmetic in the prime field GF(P) with P = 2^521 − 1, the Mersenne prime used for Shamir
 * secret sharing of 32..64-byte secrets (Shamir 1979; Bonawitz et al., CCS 2017, §4 "SecAgg"
 * shares the DH secret key and the self-mask seed this way).
 *
 * Invariant: every function returns a canonical representative in [0, P). Inputs may be any
 * bigint (negative or ≥ P are reduced first); the fast paths assume canonical inputs.
 *
 * Reduction uses the Mersenne identity 2^521 ≡ 1 (mod P): x = hi·2^521 + lo ≡ hi + lo, so a
 * product of two canonical elements (< 2^1042) folds to < 2^522 in one step and to canonical
 * form after at most one more fold and one comparison.
 *
 * Not constant-time: V8 BigInt offers no constant-time primitives (same caveat as bigmath).
 */

/** Bit length of the field prime: P = 2^521 − 1. */
const FIELD_BITS = 521n;

/**
 * The Mersenne prime P = 2^521 − 1 (a 521-bit prime; 66 bytes big-endian).
 *
 * @example
 * ```ts
 * FIELD_PRIME === (1n << 521n) - 1n; // true
 * ```
 */
export const FIELD_PRIME: bigint = (1n << FIELD_BITS) - 1n;

/**
 * Bytes needed to hold any canonical field element big-endian: ⌈521/8⌉ = 66.
 *
 * @example
 * ```ts
 * bigintToBytes(randomFieldElement(), FIELD_BYTES).length; // 66
 * ```
 */
export const FIELD_BYTES = 66;

/**
 * Reduces any bigint to its canonical representative in [0, P).
 *
 * @example
 * ```ts
 * fieldReduce(FIELD_PRIME + 5n); // 5n
 * fieldReduce(-1n);              // FIELD_PRIME - 1n
 * ```
 */
export function fieldReduce(x: bigint): bigint {
  if (x >= 0n && x < FIELD_PRIME) return x;
  if (x < 0n) {
    const r = foldNonNegative(-x);
    return r === 0n ? 0n : FIELD_PRIME - r;
  }
  return foldNonNegative(x);
}

/** x ≥ 0 ↦ x mod P by Mersenne folding (2^521 ≡ 1). */
function foldNonNegative(x: bigint): bigint {
  while (x > FIELD_PRIME) x = (x & FIELD_PRIME) + (x >> FIELD_BITS);
  return x === FIELD_PRIME ? 0n : x;
}

/**
 * (a + b) mod P.
 *
 * @example
 * ```ts
 * fieldAdd(FIELD_PRIME - 1n, 2n); // 1n
 * ```
 */
export function fieldAdd(a: bigint, b: bigint): bigint {
  const s = a + b;
  // Canonical inputs give s < 2P: one conditional subtraction suffices.
  if (s >= 0n && s < FIELD_PRIME) return s;
  if (s >= FIELD_PRIME && s < 2n * FIELD_PRIME) return s - FIELD_PRIME;
  return fieldReduce(s);
}

/**
 * (a − b) mod P.
 *
 * @example
 * ```ts
 * fieldSub(1n, 2n); // FIELD_PRIME - 1n
 * ```
 */
export function fieldSub(a: bigint, b: bigint): bigint {
  const d = a - b;
  // Canonical inputs give −P < d < P: one conditional addition suffices.
  if (d >= 0n && d < FIELD_PRIME) return d;
  if (d < 0n && d > -FIELD_PRIME) return d + FIELD_PRIME;
  return fieldReduce(d);
}

/**
 * (a · b) mod P.
 *
 * @example
 * ```ts
 * fieldMul(1n << 520n, 2n); // 1n, since 2^521 ≡ 1 (mod P)
 * ```
 */
export function fieldMul(a: bigint, b: bigint): bigint {
  return fieldReduce(a * b);
}

/**
 * Multiplicative inverse a^(−1) mod P (extended Euclid). Throws CIPHERML_E_INVALID_ARGUMENT for
 * a ≡ 0 (mod P), which has no inverse.
 *
 * @example
 * ```ts
 * fieldMul(3n, fieldInv(3n)); // 1n
 * ```
 */
export function fieldInv(a: bigint): bigint {
  const r = fieldReduce(a);
  if (r === 0n) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'zero has no multiplicative inverse in GF(2^521 − 1)', { param: 'a' });
  }
  // P is prime, so gcd(r, P) = 1 for every r ≠ 0 and modInverse cannot fail.
  return modInverse(r, FIELD_PRIME);
}

/**
 * A uniformly random field element in [0, P), from the OS CSPRNG (rejection sampling on 521
 * random bits; the only rejected value is P itself, probability 2^−521).
 *
 * @example
 * ```ts
 * const r = randomFieldElement(); // 0n <= r && r < FIELD_PRIME
 * ```
 */
export function randomFieldElement(): bigint {
  for (;;) {
    const r = randomBits(Number(FIELD_BITS));
    if (r < FIELD_PRIME) return r;
  }
}
