import type { CkksParameters } from './params.ts';

/**
 * Galois key bookkeeping: sizes, groups, and the rotation decomposition that lets a key set
 * hold fewer keys than the rotations it serves.
 *
 * Sizes (SEAL 4 key switching, "hybrid" with one special prime; Microsoft SEAL manual and
 * seal/keygenerator.cpp): with k = coeffModulusBits.length primes, ℓ = k − 1 of them data
 * primes, a key-switching key is ℓ ciphertexts of 2 polynomials over all k primes, N 64-bit
 * words per prime: 16·ℓ·k·N bytes expanded, 8·ℓ·k·N seeded (SEAL stores the PRNG seed instead
 * of the uniform half). Each Galois key and the relinearization key is one such key.
 */

/**
 * Non-adjacent form of a rotation: signed powers of two summing to `steps`, no two adjacent
 * (Reitwiesner 1960): the fewest power-of-two rotations that compose to it.
 *
 * @example
 * ```ts
 * naf(7); // [-1, 8]
 * ```
 */
export function naf(steps: number): number[] {
  const out: number[] = [];
  let n = steps;
  for (let bit = 1; n !== 0; bit *= 2) {
    if (n % 2 !== 0) {
      const z = 2 - (((n % 4) + 4) % 4);
      out.push(z * bit);
      n -= z;
    }
    n /= 2;
  }
  return out;
}

/**
 * The power-of-two steps whose keys serve every rotation in `steps` through {@link naf} (more
 * key switches per rotation, at most 2·log2(slots) keys in all).
 *
 * @example
 * ```ts
 * powerOfTwoSteps([3, 5, 7], 4096); // [-1, 1, 4, 8]
 * ```
 */
export function powerOfTwoSteps(steps: readonly number[], slots: number): number[] {
  const out = new Set<number>();
  for (const s of steps) {
    for (const t of naf(s)) {
      // A rotation by ±slots is the identity; reduce into (−slots, slots).
      const r = t % slots;
      if (r !== 0) out.add(r);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * The left rotations by powers of two that compose to `steps` (taken modulo `slots`, so a right
 * rotation is the left rotation by slots − |steps|): its binary digits.
 *
 * @example
 * ```ts
 * binaryTerms(-1, 8); // [1, 2, 4] (left by 7)
 * ```
 */
export function binaryTerms(steps: number, slots: number): number[] {
  const out: number[] = [];
  let n = ((steps % slots) + slots) % slots;
  for (let bit = 1; n > 0; bit *= 2, n = Math.floor(n / 2)) if (n % 2 === 1) out.push(bit);
  return out;
}

/**
 * The left power-of-two steps whose keys serve every rotation in `steps` through
 * {@link binaryTerms}: at most log2(slots) keys, at most log2(slots) key switches per rotation.
 *
 * @example
 * ```ts
 * binarySteps([3, -1], 8); // [1, 2, 4]
 * ```
 */
export function binarySteps(steps: readonly number[], slots: number): number[] {
  const out = new Set<number>();
  for (const s of steps) for (const t of binaryTerms(s, slots)) out.add(t);
  return [...out].sort((a, b) => a - b);
}

/** Bytes of one key-switching key (Galois or relinearization), seeded or expanded. */
export function keySwitchingKeyBytes(params: CkksParameters, seeded = true): number {
  const k = params.coeffModulusBits.length;
  return (seeded ? 8 : 16) * (k - 1) * k * params.polyModulusDegree;
}

/** Expected sizes of a key set (before zstd, which gains a few percent on residue words). */
export interface KeySetEstimate {
  /** key.pub: seeded public key, relinearization key and Galois keys. */
  readonly publicKeyBytes: number;
  readonly galoisKeys: number;
  /** Keygen's own peak beyond the runtime: one group of keys expanded in SEAL and seeded in JavaScript (key.pub is streamed to disk). */
  readonly keygenPeakBytes: number;
  /** Evaluation peak: every key expanded in SEAL. */
  readonly loadedBytes: number;
}

/** Keys generated (and held expanded) at once: bounds keygen memory to one group. */
export const GALOIS_GROUP_BYTES: number = 64 * 2 ** 20;

/**
 * Size of the Galois key groups for these parameters (at least one key per group).
 *
 * @example
 * ```ts
 * galoisGroupSize(params); // e.g. 4 at N = 16384 with 8 primes
 * ```
 */
export function galoisGroupSize(params: CkksParameters): number {
  return Math.max(1, Math.floor(GALOIS_GROUP_BYTES / keySwitchingKeyBytes(params, false)));
}

/**
 * Expected key sizes and memory for `galoisSteps` under `params`.
 *
 * @example
 * ```ts
 * estimateKeySet(params, keyParams.galoisSteps).publicKeyBytes;
 * ```
 */
export function estimateKeySet(params: CkksParameters, galoisSteps: readonly number[], relinearization = true): KeySetEstimate {
  const k = params.coeffModulusBits.length;
  const kss = keySwitchingKeyBytes(params);
  const publicKeyBytes = 8 * k * params.polyModulusDegree + (relinearization ? kss : 0) + galoisSteps.length * kss;
  const group = Math.min(galoisSteps.length, galoisGroupSize(params));
  return {
    publicKeyBytes,
    galoisKeys: galoisSteps.length,
    keygenPeakBytes: Math.max(group, 1) * (keySwitchingKeyBytes(params, false) + kss) + kss + 8 * k * params.polyModulusDegree,
    loadedBytes: 2 * publicKeyBytes,
  };
}

/**
 * Splits sorted steps into groups of at most `size`.
 *
 * @example
 * ```ts
 * groupSteps([1, 2, 4, 8, 16], 2); // [[1, 2], [4, 8], [16]]
 * ```
 */
export function groupSteps(steps: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < steps.length; i += size) out.push(steps.slice(i, i + size));
  return out;
}
