import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import type { Seal } from './seal.ts';

/**
 * CKKS parameters (Cheon–Kim–Kim–Song 2017, as implemented by Microsoft SEAL 4.1).
 *
 * `coeffModulusBits` lists the bit sizes of the RNS primes q_0…q_L, p: the first prime holds the
 * final result (its bits minus `scaleBits` are the integer bits left at the last level), every
 * middle prime is consumed by one rescale (so `coeffModulusBits.length - 2` multiplicative levels),
 * and the last one is SEAL's special key-switching prime. Security: the total bit count must not
 * exceed SEAL's `CoeffModulus.MaxBitCount(N, tc128)` (HomomorphicEncryption.org standard, Table 1).
 */
export interface CkksParameters {
  /** Ring degree N, a power of two in [1024, 32768]; N/2 slots per ciphertext. */
  readonly polyModulusDegree: number;
  /** Bit sizes of the coefficient-modulus primes, each in [20, 60]; at least 2. */
  readonly coeffModulusBits: readonly number[];
  /** log2 of the encoding scale Δ; at most the smallest middle prime's bits. */
  readonly scaleBits: number;
}

/** Options of {@link chooseCkksParameters}. */
export interface ChooseParametersOptions {
  /** Multiplicative depth the computation needs (rescales along the longest path). */
  readonly depth: number;
  /** log2 Δ; default 40 (≈ 2^-20 relative precision after a few levels). */
  readonly scaleBits?: number;
  /** Bits of the first and special primes; default scaleBits + 20 (max 60): headroom for |x| < 2^19. */
  readonly outerBits?: number;
  /** Slots the plan needs in one ciphertext; N is at least 2·minSlots. */
  readonly minSlots?: number;
  /** Smallest ring degree to consider; default 4096. */
  readonly minPolyModulusDegree?: number;
  /**
   * Bits of the special (key-switching) prime: a number, or `'max'` for the largest value up to
   * 60 that the security bound leaves at the chosen ring degree. Key-switching noise (rotations,
   * relinearization) shrinks by 2^bits, so plans with many rotations want `'max'`. Default:
   * `outerBits`.
   */
  readonly specialBits?: number | 'max';
}

/** Multiplicative levels the parameters provide. */
export function levelsOf(params: CkksParameters): number {
  return params.coeffModulusBits.length - 2;
}

/**
 * Picks the smallest ring degree whose 128-bit security bound fits the modulus chain the depth
 * needs: `[outer, scale × depth, outer]`.
 *
 * @example
 * ```ts
 * const seal = await loadSeal();
 * chooseCkksParameters(seal, { depth: 3 }); // { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 40, 60], scaleBits: 40 }
 * ```
 */
export function chooseCkksParameters(seal: Seal, options: ChooseParametersOptions): CkksParameters {
  assertIntegerInRange(options.depth, 'depth', 0, 40);
  const scaleBits = options.scaleBits ?? 40;
  assertIntegerInRange(scaleBits, 'scaleBits', 20, 60);
  const outerBits = options.outerBits ?? Math.min(60, scaleBits + 20);
  assertIntegerInRange(outerBits, 'outerBits', scaleBits, 60);
  const minSlots = options.minSlots ?? 0;
  assertIntegerInRange(minSlots, 'minSlots', 0, 16384);
  const special = options.specialBits ?? outerBits;
  if (special !== 'max') assertIntegerInRange(special, 'specialBits', 20, 60);
  const chain = [outerBits, ...Array.from({ length: options.depth }, () => scaleBits)];
  const largest = Math.max(...chain);
  const total = chain.reduce((a, b) => a + b, 0) + (special === 'max' ? largest : special);
  for (let n = options.minPolyModulusDegree ?? 4096; n <= 32768; n *= 2) {
    const max = seal.CoeffModulus.MaxBitCount(n, seal.SecLevelType.tc128);
    if (n / 2 >= minSlots && total <= max) {
      const bits = special === 'max' ? Math.min(60, max - (total - largest)) : special;
      return { polyModulusDegree: n, coeffModulusBits: [...chain, bits], scaleBits };
    }
  }
  throw new CipherMLError('CIPHERML_E_CKKS_PARAMETERS_INSECURE', `depth ${options.depth} at scale 2^${scaleBits} needs a ${total}-bit modulus, more than 128-bit security allows at N = 32768`, {
    param: 'depth',
    details: { totalBits: total, maxBits: seal.CoeffModulus.MaxBitCount(32768, seal.SecLevelType.tc128) },
  });
}

/**
 * Checks parameters for shape and for 128-bit security; returns them unchanged.
 *
 * @example
 * ```ts
 * validateCkksParameters(seal, { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 });
 * ```
 */
export function validateCkksParameters(seal: Seal, params: CkksParameters): CkksParameters {
  if (typeof params !== 'object' || params === null) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected { polyModulusDegree, coeffModulusBits, scaleBits }', { param: 'params' });
  }
  const n = params.polyModulusDegree;
  assertIntegerInRange(n, 'polyModulusDegree', 1024, 32768);
  if ((n & (n - 1)) !== 0) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `ring degree ${n} is not a power of two`, { param: 'polyModulusDegree' });
  if (!Array.isArray(params.coeffModulusBits) || params.coeffModulusBits.length < 2 || params.coeffModulusBits.length > 64) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected 2 to 64 prime bit sizes', { param: 'coeffModulusBits' });
  }
  params.coeffModulusBits.forEach((b, i) => assertIntegerInRange(b, `coeffModulusBits[${i}]`, 20, 60));
  assertIntegerInRange(params.scaleBits, 'scaleBits', 20, 60);
  const middle = params.coeffModulusBits.slice(1, -1);
  const smallest = Math.min(params.coeffModulusBits[0]!, ...middle);
  if (params.scaleBits > smallest) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `scale 2^${params.scaleBits} exceeds the ${smallest}-bit prime it must be rescaled by`, { param: 'scaleBits' });
  }
  const total = params.coeffModulusBits.reduce((a, b) => a + b, 0);
  const max = seal.CoeffModulus.MaxBitCount(n, seal.SecLevelType.tc128);
  if (total > max) {
    throw new CipherMLError('CIPHERML_E_CKKS_PARAMETERS_INSECURE', `${total} modulus bits at N = ${n} exceed the 128-bit security bound of ${max}`, {
      param: 'coeffModulusBits',
      details: { totalBits: total, maxBits: max, polyModulusDegree: n },
    });
  }
  return params;
}
