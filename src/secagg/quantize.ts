import { randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange, describe } from '../core/guards.ts';
import { SECAGG_TEST_HOOKS } from './testing.ts';

/**
 * Quantization of real vectors into Z_{2^k} for secure aggregation, as in Flower's SecAgg+
 * (clipping_range / quantization_range, `flwr.common.secure_aggregation.quantization`) and
 * Bonawitz et al. (CCS 2017, §3: inputs are integer vectors in Z_R^m). Masks are only ever
 * applied to these integers, never to floats.
 *
 * Map: x ↦ clip(x, −c, c) ↦ p = (x + c)·(Q − 1)/(2c) ∈ [0, Q − 1] ↦ ⌊p⌋ + Bernoulli(p − ⌊p⌋).
 * Stochastic rounding is unbiased: E[q] = p exactly, so the dequantized SUM of many clients is an
 * unbiased estimate of the sum of the clipped inputs, with per-value error < one step 2c/(Q − 1).
 * Sums of n quantized vectors are ≤ n·(Q − 1), which must stay < 2^k so that the modular sum
 * equals the integer sum ({@link modulusBitsFor}).
 */

/**
 * Largest quantization range (2^24: every step index and any sum below 2^32 is an exact float).
 *
 * @example
 * ```ts
 * const spec = { clippingRange: 1, quantizationRange: MAX_QUANTIZATION_RANGE }; // ≤ 256 clients in 32 bits
 * ```
 */
export const MAX_QUANTIZATION_RANGE: number = 2 ** 24;

/**
 * How reals become integers.
 *
 * @example
 * ```ts
 * const spec: QuantizationSpec = { clippingRange: 8, quantizationRange: 2 ** 20 };
 * ```
 */
export interface QuantizationSpec {
  /** c > 0: inputs are clipped to [−c, c]. */
  readonly clippingRange: number;
  /** Q in [2, 2^24]: quantized values are the integers 0..Q − 1. */
  readonly quantizationRange: number;
}

/**
 * Clips each value to [−c, c] and quantizes it with stochastic rounding to an integer in
 * [0, Q − 1]. `clipped` counts the values that were outside [−c, c]. `rng` must return uniform
 * numbers in [0, 1); it defaults to a CSPRNG-backed source with 53-bit resolution (rounding is not
 * secret, but crypto-quality uniformity keeps the rounding unbiased); pass a seeded rng in tests.
 *
 * Throws CIPHERML_E_NOT_FINITE (param `values[i]`) for NaN or ±Infinity,
 * CIPHERML_E_INVALID_ARGUMENT for non-numbers, a bad spec (param `spec.clippingRange` /
 * `spec.quantizationRange`) or an rng value outside [0, 1) (param `rng`).
 *
 * @example
 * ```ts
 * const { values, clipped } = quantize([0.5, -3, 12], { clippingRange: 10, quantizationRange: 1001 });
 * // values = [525, 350, 1000] (these positions are exact; others round stochastically), clipped === 1
 * ```
 */
export function quantize(values: ArrayLike<number>, spec: QuantizationSpec, rng?: () => number): { values: Uint32Array; clipped: number } {
  assertSpec(spec);
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array-like of numbers, got ${describe(values)}`, { param: 'values' });
  }
  if (rng !== undefined && typeof rng !== 'function') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a function returning numbers in [0, 1), got ${describe(rng)}`, { param: 'rng' });
  }
  const uniform = rng ?? cryptoUniform();
  const c = spec.clippingRange;
  const top = spec.quantizationRange - 1;
  const scale = top / (2 * c);
  const out = new Uint32Array(values.length);
  let clipped = 0;
  for (let i = 0; i < values.length; i++) {
    let v: unknown = values[i];
    if (typeof v !== 'number') {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `element ${i} is ${describe(v)}, not a number`, { param: `values[${i}]`, details: { index: i } });
    }
    if (!Number.isFinite(v)) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `element ${i} is ${String(v)}`, { param: `values[${i}]`, details: { index: i, value: String(v) } });
    }
    if (v > c) {
      v = c;
      clipped++;
    } else if (v < -c) {
      v = -c;
      clipped++;
    }
    // p ∈ [0, Q − 1]: (v + c) ∈ [0, 2c] and rounding is monotone; clamp guards the last ulp.
    const p = Math.min(top, Math.max(0, ((v as number) + c) * scale));
    const floor = Math.floor(p);
    const frac = p - floor;
    let q = floor;
    if (frac > 0) {
      const u = uniform();
      if (!(u >= 0 && u < 1)) {
        throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `rng returned ${String(u)}, expected a number in [0, 1)`, { param: 'rng' });
      }
      // P(u < frac) = frac, so E[q] = floor + frac = p.
      if (u < frac) q = floor + 1;
    }
    out[i] = q;
  }
  return { values: out, clipped };
}

/**
 * Maps the integer sum of `count` quantized vectors back to reals:
 * x_sum[i] = sum[i]·2c/(Q − 1) − count·c. The result estimates the sum of the clipped inputs
 * (unbiased; error < count steps per element, typically ~√count steps).
 *
 * Throws CIPHERML_E_INVALID_ARGUMENT for a bad spec, a non-Uint32Array `sum` or `count` not a
 * positive integer, and CIPHERML_E_OUT_OF_RANGE (param `sum`) when an element exceeds
 * count·(Q − 1) — impossible for a correct sum, so the aggregate wrapped modulo 2^k or `count`
 * is wrong.
 *
 * @example
 * ```ts
 * const spec = { clippingRange: 1, quantizationRange: 3 };  // steps −1, 0, 1
 * dequantizeSum(Uint32Array.of(4), 2, spec);              // Float64Array [2]
 * ```
 */
export function dequantizeSum(sum: Uint32Array, count: number, spec: QuantizationSpec): Float64Array {
  assertSpec(spec);
  if (!(sum instanceof Uint32Array)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint32Array, got ${describe(sum)}`, { param: 'sum' });
  }
  assertIntegerInRange(count, 'count', 1, Number.MAX_SAFE_INTEGER);
  const c = spec.clippingRange;
  const top = spec.quantizationRange - 1;
  const max = count * top;
  const step = (2 * c) / top;
  const offset = count * c;
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const s = sum[i]!;
    if (s > max && !SECAGG_TEST_HOOKS.disableRangeCheck) {
      throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `element ${i} is ${s} > count·(Q − 1) = ${max}: the aggregate wrapped modulo 2^k or count is wrong`, {
        param: 'sum',
        details: { index: i, value: s, max },
      });
    }
    out[i] = s * step - offset;
  }
  return out;
}

/**
 * The smallest k with clients·(Q − 1) < 2^k: the modulus 2^k under which the masked sum of
 * `clients` quantized vectors never wraps. Throws CIPHERML_E_OUT_OF_RANGE (param
 * `spec.quantizationRange`, with the largest workable Q in `details`) when k would exceed 32, and
 * CIPHERML_E_INVALID_ARGUMENT for clients < 1 or a bad spec.
 *
 * @example
 * ```ts
 * modulusBitsFor(100, { clippingRange: 1, quantizationRange: 2 ** 20 }); // 27
 * ```
 */
export function modulusBitsFor(clients: number, spec: QuantizationSpec): number {
  assertSpec(spec);
  assertIntegerInRange(clients, 'clients', 1, Number.MAX_SAFE_INTEGER);
  const maxSum = BigInt(clients) * BigInt(spec.quantizationRange - 1);
  const k = maxSum.toString(2).length; // maxSum ≥ 1, so 2^(k−1) ≤ maxSum < 2^k
  if (k > 32) {
    const suggested = Math.floor((2 ** 32 - 1) / clients) + 1;
    throw new CipherMLError(
      'CIPHERML_E_OUT_OF_RANGE',
      `${clients} clients × (Q − 1) = ${maxSum} needs a ${k}-bit modulus, more than 32; use a quantization range ≤ ${suggested}`,
      { param: 'spec.quantizationRange', details: { clients, quantizationRange: spec.quantizationRange, bits: k, maxQuantizationRange: suggested } },
    );
  }
  return k;
}

function assertSpec(spec: unknown): asserts spec is QuantizationSpec {
  if (typeof spec !== 'object' || spec === null) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected { clippingRange, quantizationRange }, got ${describe(spec)}`, { param: 'spec' });
  }
  const { clippingRange, quantizationRange } = spec as { clippingRange?: unknown; quantizationRange?: unknown };
  if (typeof clippingRange !== 'number' || !Number.isFinite(clippingRange) || clippingRange <= 0) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a finite number > 0, got ${describe(clippingRange)}`, { param: 'spec.clippingRange' });
  }
  assertIntegerInRange(quantizationRange, 'spec.quantizationRange', 2, MAX_QUANTIZATION_RANGE);
}

/**
 * A CSPRNG-backed uniform source on [0, 1) with 53-bit resolution: each draw takes 7 bytes
 * (21 + 32 bits) from a pooled randomBytes buffer.
 */
function cryptoUniform(): () => number {
  const POOL = 7 * 1024;
  let pool = randomBytes(POOL);
  let pos = 0;
  return () => {
    if (pos + 7 > POOL) {
      pool = randomBytes(POOL);
      pos = 0;
    }
    const hi = pool.readUIntBE(pos, 3) & 0x1fffff; // 21 bits
    const lo = pool.readUInt32BE(pos + 3); // 32 bits
    pos += 7;
    return (hi * 2 ** 32 + lo) / 2 ** 53;
  };
}
