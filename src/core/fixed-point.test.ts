import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FixedPointCodec } from './fixed-point.ts';
import { isCipherMLError } from './errors.ts';
import { codeOf } from '../../test/helpers.ts';


describe('FixedPointCodec', () => {
  const codec = new FixedPointCodec({ fractionalBits: 16, integerBits: 15 });

  it('encodes known values', () => {
    expect(codec.encode(1.5)).toBe(98304n);
    expect(codec.encode(-0.25)).toBe(-16384n);
    expect(codec.decode(98304n)).toBe(1.5);
  });

  it('round-trips within half a step', () => {
    fc.assert(
      fc.property(fc.double({ min: -32767, max: 32767, noNaN: true }), (x) => {
        expect(Math.abs(codec.decode(codec.encode(x)) - x)).toBeLessThanOrEqual(2 ** -17);
      }),
    );
  });

  it('rejects NaN, Infinity and out-of-range values with typed errors', () => {
    expect(codeOf(() => codec.encode(Number.NaN))).toBe('CIPHERML_E_NOT_FINITE');
    expect(codeOf(() => codec.encode(Number.POSITIVE_INFINITY))).toBe('CIPHERML_E_NOT_FINITE');
    expect(codeOf(() => codec.encode(40000))).toBe('CIPHERML_E_OUT_OF_RANGE');
    expect(codeOf(() => codec.encode(-40000))).toBe('CIPHERML_E_OUT_OF_RANGE');
    expect(codeOf(() => new FixedPointCodec({ fractionalBits: 40, integerBits: 20 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('names the caller parameter', () => {
    try {
      codec.encode(Number.NaN, 'weights[3]');
      expect.unreachable();
    } catch (e) {
      expect(isCipherMLError(e) && e.param).toBe('weights[3]');
    }
  });
});
