import { CipherMLError } from './errors.ts';
import { assertIntegerInRange } from './guards.ts';

/**
 * Signed fixed-point encoding of reals: x ↦ v = round(x · 2^fractionalBits), an integer with
 * |v| ≤ 2^(fractionalBits + integerBits) − 1. Every representable v is exactly a float64
 * (fractionalBits + integerBits ≤ 52), so encode∘decode is exact on the grid and within
 * 2^−(fractionalBits+1) of x elsewhere.
 */
export interface FixedPointSpec {
  /** Bits after the binary point: resolution 2^−fractionalBits. */
  readonly fractionalBits: number;
  /** Bits before the binary point: |x| must stay below 2^integerBits. */
  readonly integerBits: number;
}

/** Default precision: resolution 2^−16 ≈ 1.5e−5, |x| < 2^15 = 32768. */
export const DEFAULT_FIXED_POINT: FixedPointSpec = { fractionalBits: 16, integerBits: 15 };

/**
 * Encodes and decodes reals as signed fixed-point bigints.
 *
 * @example
 * ```ts
 * const codec = new FixedPointCodec({ fractionalBits: 16, integerBits: 15 });
 * codec.encode(1.5);          // 98304n
 * codec.decode(98304n);       // 1.5
 * ```
 */
export class FixedPointCodec implements FixedPointSpec {
  readonly fractionalBits: number;
  readonly integerBits: number;
  /** Largest |v| allowed: 2^(fractionalBits + integerBits) − 1. */
  readonly maxMagnitude: bigint;
  readonly #scale: number;
  readonly #maxAbsReal: number;

  constructor(spec: FixedPointSpec = DEFAULT_FIXED_POINT) {
    assertIntegerInRange(spec.fractionalBits, 'fractionalBits', 0, 52);
    assertIntegerInRange(spec.integerBits, 'integerBits', 1, 52);
    if (spec.fractionalBits + spec.integerBits > 52) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `fractionalBits + integerBits = ${spec.fractionalBits + spec.integerBits} exceeds 52 (float64 mantissa)`, {
        param: 'fractionalBits',
      });
    }
    this.fractionalBits = spec.fractionalBits;
    this.integerBits = spec.integerBits;
    this.maxMagnitude = (1n << BigInt(spec.fractionalBits + spec.integerBits)) - 1n;
    this.#scale = 2 ** spec.fractionalBits;
    this.#maxAbsReal = Number(this.maxMagnitude) / this.#scale;
  }

  /** Largest |x| that encodes. */
  get maxAbs(): number {
    return this.#maxAbsReal;
  }

  /** Encodes one real; `param` names the caller's argument in errors. */
  encode(x: number, param = 'value'): bigint {
    if (typeof x !== 'number') {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a number, got ${typeof x}`, { param });
    }
    if (!Number.isFinite(x)) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `${String(x)} cannot be encoded`, { param, details: { value: String(x) } });
    }
    const v = Math.round(x * this.#scale);
    if (Math.abs(v) > this.#maxAbsReal * this.#scale) {
      throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `${x} is outside ±${this.#maxAbsReal} (integerBits=${this.integerBits}, fractionalBits=${this.fractionalBits})`, {
        param,
        details: { value: x, maxAbs: this.#maxAbsReal },
      });
    }
    return BigInt(v);
  }

  /** Decodes a signed integer produced by encode, or a sum of `count` such integers. */
  decode(v: bigint): number {
    return Number(v) / this.#scale;
  }
}
