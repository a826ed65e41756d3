import { CipherMLError } from '../errors.ts';
import { fixedBaseBigint, gcd, powmBigint, type FixedBasePow } from './bigint.ts';
import { loadGmpBackend } from './gmp.ts';

export { bitLength, byteLength, bigintToBytes, bytesToBigint, gcd, modInverse, randomBelow, randomBits, powmBigint } from './bigint.ts';
export type { FixedBasePow } from './bigint.ts';

/** The modular-exponentiation engine behind Paillier: pure BigInt, or system libgmp via N-API. */
export interface ModArithBackend {
  readonly name: 'bigint' | 'gmp';
  /** base^exp mod mod for public exponents. */
  powm(base: bigint, exp: bigint, mod: bigint): bigint;
  /** base^exp mod mod for secret exponents (constant-time with GMP's mpz_powm_sec; odd mod). */
  powmSec(base: bigint, exp: bigint, mod: bigint): bigint;
  /** A fixed-base table for base^e, e < 2^maxExpBits. */
  fixedBase(base: bigint, mod: bigint, maxExpBits: number, windowBits: number): FixedBasePow;
  /** Greatest common divisor of two non-negative integers. */
  gcd(a: bigint, b: bigint): bigint;
}

/** Which backend to use: `auto` takes GMP when the optional addon is built, else BigInt. */
export type BackendPreference = 'auto' | 'bigint' | 'gmp';

const bigintBackend: ModArithBackend = {
  name: 'bigint',
  powm: powmBigint,
  powmSec: powmBigint,
  fixedBase: fixedBaseBigint,
  gcd,
};

/**
 * Returns the modular-arithmetic backend. `CIPHERML_NATIVE=0` in the environment forces BigInt.
 *
 * @example
 * ```ts
 * const be = getBackend();            // 'gmp' if built, else 'bigint'
 * be.powm(4n, 13n, 497n);             // 445n
 * ```
 */
export function getBackend(preference: BackendPreference = 'auto'): ModArithBackend {
  if (preference === 'bigint') return bigintBackend;
  const gmp = loadGmpBackend();
  if (gmp !== null) return gmp;
  if (preference === 'gmp') {
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', 'the optional GMP accelerator is not built (needs libgmp-dev and a C compiler at install time; `npm rebuild cipherml` rebuilds it)', {
      param: 'backend',
    });
  }
  return bigintBackend;
}

/** Backends usable in this process, the reference first (for tests that must pass on both). */
export function availableBackends(): ModArithBackend[] {
  const gmp = loadGmpBackend();
  return gmp === null ? [bigintBackend] : [bigintBackend, gmp];
}
