import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';

/**
 * Seeded pseudorandom numbers for reproducible training (shuffles, initialisation). Not a
 * cryptographic generator: never use it for keys, nonces or masks.
 *
 * Generator: xoshiro128** 1.1 (D. Blackman, S. Vigna, "Scrambled Linear Pseudorandom Number
 * Generators", ACM TOMS 47(4), 2021; reference C code at https://prng.di.unimi.it/xoshiro128starstar.c),
 * 128-bit state, period 2^128 − 1. The state is expanded from the seed with splitmix64
 * (G. Steele, D. Lea, C. Flood, "Fast Splittable Pseudorandom Number Generators", OOPSLA 2014),
 * as the xoshiro authors recommend.
 */

/**
 * A source of uniform pseudorandom numbers.
 *
 * @example
 * ```ts
 * const rng: Rng = new SeededRng(1);
 * const coin = rng.nextInt(2);
 * ```
 */
export interface Rng {
  /** A uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** A uniform integer in [0, bound), without modulo bias; bound is an integer in [1, 2^32]. */
  nextInt(bound: number): number;
}

const MASK64 = (1n << 64n) - 1n;

/**
 * xoshiro128** seeded through splitmix64: the same seed always yields the same sequence, on every
 * platform.
 *
 * @example
 * ```ts
 * const rng = new SeededRng(42);
 * rng.nextFloat(); // same value on every run
 * rng.nextInt(6);  // a die roll in [0, 6)
 * ```
 */
export class SeededRng implements Rng {
  readonly #s = new Uint32Array(4);

  /** @param seed any safe integer (negative seeds are taken modulo 2^64). */
  constructor(seed: number) {
    assertIntegerInRange(seed, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    // splitmix64 is a bijection of its counter and maps exactly one counter to 0, so two
    // consecutive outputs are never both 0: the xoshiro state is never the forbidden all-zero one.
    let x = BigInt.asUintN(64, BigInt(seed));
    for (let i = 0; i < 4; i += 2) {
      x = (x + 0x9e3779b97f4a7c15n) & MASK64;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
      z ^= z >> 31n;
      this.#s[i] = Number(z & 0xffffffffn);
      this.#s[i + 1] = Number(z >> 32n);
    }
  }

  nextUint32(): number {
    const s = this.#s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return result;
  }

  nextFloat(): number {
    // 27 + 26 high bits of two outputs → k / 2^53, k uniform in [0, 2^53).
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an integer in [1, 2^32], got ${String(bound)}`, { param: 'bound' });
    }
    // Rejection below 2^32 mod bound leaves a whole number of copies of [0, bound) (the
    // arc4random_uniform method), so every result is equally likely.
    const threshold = (2 ** 32 - bound) % bound;
    for (;;) {
      const r = this.nextUint32();
      if (r >= threshold) return r % bound;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Anything indexable and writable by position: arrays and typed arrays.
 *
 * @example
 * ```ts
 * const order: MutableIndexable<number> = new Uint32Array(8);
 * ```
 */
export interface MutableIndexable<T> {
  readonly length: number;
  [index: number]: T;
}

/**
 * Shuffles `array` in place with the Fisher–Yates algorithm (R. Durstenfeld, CACM 7(7), 1964;
 * D. Knuth, TAOCP vol. 2, Algorithm 3.4.2P): every permutation is equally likely given uniform
 * `rng.nextInt`. Returns the same array.
 *
 * @example
 * ```ts
 * const order = shuffleInPlace(Uint32Array.from({ length: 10 }, (_, i) => i), new SeededRng(7));
 * ```
 */
export function shuffleInPlace<A extends MutableIndexable<unknown>>(array: A, rng: Rng): A {
  const a: MutableIndexable<unknown> = array;
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
  return array;
}
