import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { dequantizeSum, modulusBitsFor, quantize } from './quantize.ts';
import type { QuantizationSpec } from './quantize.ts';
import { addModInPlace, expandMask, subModInPlace } from './prg.ts';
import { isCipherMLError } from '../core/errors.ts';
import { codeOf } from '../../test/helpers.ts';

const specArb = fc.record({
  clippingRange: fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
  quantizationRange: fc.integer({ min: 2, max: 2 ** 24 }),
});

describe('quantize', () => {
  it('maps −c, 0, c to 0, (Q − 1)/2, Q − 1 exactly and clips beyond', () => {
    const spec: QuantizationSpec = { clippingRange: 10, quantizationRange: 1001 };
    const { values, clipped } = quantize([-10, 0, 10, -1e9, 1e9, 0.5], spec);
    expect(Array.from(values)).toEqual([0, 500, 1000, 0, 1000, 525]);
    expect(clipped).toBe(2);
  });

  it('rounds stochastically by the rng: u < frac rounds up', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 3 }; // positions −1, 0, 1
    expect(Array.from(quantize([0.25], spec, () => 0.2).values)).toEqual([2]); // p = 1.25, 0.2 < 0.25
    expect(Array.from(quantize([0.25], spec, () => 0.3).values)).toEqual([1]);
    expect(Array.from(quantize([0.25], spec, () => 0.999999).values)).toEqual([1]);
  });

  it('is unbiased: the mean of many roundings is the exact position (default CSPRNG rng)', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 11 }; // step 0.2
    const x = 0.137; // position (x + 1)·5 = 5.685
    const n = 40_000;
    const { values } = quantize(new Float64Array(n).fill(x), spec);
    const mean = values.reduce((s, v) => s + v, 0) / n;
    // Bernoulli(0.685) has σ ≈ 0.46; σ of the mean ≈ 0.0023. Tolerance ≈ 9σ.
    expect(Math.abs(mean - 5.685)).toBeLessThan(0.02);
    expect(new Set(values).size).toBe(2); // only ⌊p⌋ = 5 and ⌈p⌉ = 6 occur
  });

  it('round-trips within one step of the clipped value, counting clipped values exactly', () => {
    fc.assert(
      fc.property(specArb, fc.array(fc.double({ min: -2e3, max: 2e3, noNaN: true }), { maxLength: 50 }), (spec, xs) => {
        const c = spec.clippingRange;
        const step = (2 * c) / (spec.quantizationRange - 1);
        const { values, clipped } = quantize(xs, spec);
        expect(clipped).toBe(xs.filter((x) => x > c || x < -c).length);
        const back = dequantizeSum(values, 1, spec);
        xs.forEach((x, i) => {
          expect(values[i]!).toBeLessThanOrEqual(spec.quantizationRange - 1);
          const target = Math.min(c, Math.max(-c, x));
          expect(Math.abs(back[i]! - target)).toBeLessThanOrEqual(step * (1 + 1e-9) + 1e-12 * c);
        });
      }),
    );
  });

  it('rejects non-finite values naming the index, and bad specs or rngs', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 16 };
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      try {
        quantize([0, 0.5, bad], spec);
        expect.unreachable();
      } catch (e) {
        expect(isCipherMLError(e, 'CIPHERML_E_NOT_FINITE')).toBe(true);
        expect(isCipherMLError(e) && e.param).toBe('values[2]');
      }
    }
    expect(codeOf(() => quantize(['1' as unknown as number], spec))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0], { clippingRange: 0, quantizationRange: 16 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0], { clippingRange: Number.POSITIVE_INFINITY, quantizationRange: 16 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0], { clippingRange: 1, quantizationRange: 1 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0], { clippingRange: 1, quantizationRange: 2 ** 24 + 1 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0], { clippingRange: 1, quantizationRange: 2.5 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => quantize([0.1], spec, () => 1))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('dequantizeSum', () => {
  it('inverts the sum of count vectors: x_sum = sum·2c/(Q − 1) − count·c', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 3 };
    expect(Array.from(dequantizeSum(Uint32Array.of(0, 2, 4), 2, spec))).toEqual([-2, 0, 2]);
  });

  it('estimates the sum of many clients within count steps (and usually far better)', () => {
    const spec: QuantizationSpec = { clippingRange: 4, quantizationRange: 2 ** 16 };
    const clients = 20;
    const dim = 100;
    const inputs = Array.from({ length: clients }, () => Float64Array.from({ length: dim }, () => Math.random() * 8 - 4));
    const sum = new Uint32Array(dim);
    const k = modulusBitsFor(clients, spec);
    for (const x of inputs) addModInPlace(sum, quantize(x, spec).values, k);
    const est = dequantizeSum(sum, clients, spec);
    const step = (2 * spec.clippingRange) / (spec.quantizationRange - 1);
    for (let j = 0; j < dim; j++) {
      const exact = inputs.reduce((s, x) => s + x[j]!, 0);
      expect(Math.abs(est[j]! - exact)).toBeLessThan(clients * step);
    }
  });

  it('flags sums that cannot come from count quantized vectors (wrapped modulus)', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 3 };
    expect(codeOf(() => dequantizeSum(Uint32Array.of(5), 2, spec))).toBe('CIPHERML_E_OUT_OF_RANGE');
    expect(codeOf(() => dequantizeSum(Uint32Array.of(1), 0, spec))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => dequantizeSum([1] as unknown as Uint32Array, 1, spec))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('modulusBitsFor', () => {
  it('is the smallest k with clients·(Q − 1) < 2^k', () => {
    expect(modulusBitsFor(1, { clippingRange: 1, quantizationRange: 2 })).toBe(1);
    expect(modulusBitsFor(2, { clippingRange: 1, quantizationRange: 2 })).toBe(2);
    expect(modulusBitsFor(100, { clippingRange: 1, quantizationRange: 2 ** 20 })).toBe(27);
    expect(modulusBitsFor(256, { clippingRange: 1, quantizationRange: 2 ** 24 })).toBe(32);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 256 }), specArb, (clients, spec) => {
        const k = modulusBitsFor(clients, spec);
        const max = clients * (spec.quantizationRange - 1);
        expect(max).toBeLessThan(2 ** k);
        expect(max).toBeGreaterThanOrEqual(2 ** (k - 1));
      }),
    );
  });

  it('never wraps: clients vectors of the maximum value sum exactly mod 2^k, masked or not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), specArb, (clients, spec) => {
        const k = modulusBitsFor(clients, spec);
        const top = spec.quantizationRange - 1;
        const sum = new Uint32Array(3);
        const masks = Array.from({ length: clients }, () => expandMask(new Uint8Array(randomBytes(32)), 3, k));
        for (let i = 0; i < clients; i++) addModInPlace(sum, addModInPlace(Uint32Array.of(top, 0, top), masks[i]!, k), k);
        for (const m of masks) subModInPlace(sum, m, k);
        expect(Array.from(sum)).toEqual([clients * top, 0, clients * top]);
        const back = dequantizeSum(sum, clients, spec);
        expect(back[0]!).toBeCloseTo(clients * spec.clippingRange, 6);
        expect(back[1]!).toBeCloseTo(-clients * spec.clippingRange, 6);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses more than 32 bits, suggesting a quantization range that fits', () => {
    const spec: QuantizationSpec = { clippingRange: 1, quantizationRange: 2 ** 24 };
    try {
      modulusBitsFor(257, spec);
      expect.unreachable();
    } catch (e) {
      expect(isCipherMLError(e, 'CIPHERML_E_OUT_OF_RANGE')).toBe(true);
      expect(isCipherMLError(e) && e.param).toBe('spec.quantizationRange');
      const suggested = isCipherMLError(e) ? (e.details?.['maxQuantizationRange'] as number) : 0;
      expect(modulusBitsFor(257, { clippingRange: 1, quantizationRange: suggested })).toBe(32);
      expect(codeOf(() => modulusBitsFor(257, { clippingRange: 1, quantizationRange: suggested + 1 }))).toBe('CIPHERML_E_OUT_OF_RANGE');
    }
    expect(codeOf(() => modulusBitsFor(0, spec))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});
