import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FIELD_BYTES, FIELD_PRIME, fieldAdd, fieldInv, fieldMul, fieldReduce, fieldSub, randomFieldElement } from './field.ts';
import { codeOf } from '../../test/helpers.ts';

const P = FIELD_PRIME;
const element = fc.bigInt({ min: 0n, max: P - 1n });
/** Reference reduction with plain `%`, independent of the Mersenne folding under test. */
const ref = (x: bigint): bigint => ((x % P) + P) % P;

describe('GF(2^521 − 1)', () => {
  it('is the Mersenne prime M521 in 66 bytes', () => {
    expect(P).toBe(2n ** 521n - 1n);
    expect(P.toString(2)).toBe('1'.repeat(521));
    expect(FIELD_BYTES).toBe(66);
  });

  it('reduces by the Mersenne identity 2^521 ≡ 1', () => {
    expect(fieldReduce(P)).toBe(0n);
    expect(fieldReduce(P + 5n)).toBe(5n);
    expect(fieldReduce(-1n)).toBe(P - 1n);
    expect(fieldReduce(-P)).toBe(0n);
    expect(fieldMul(1n << 520n, 2n)).toBe(1n);
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 1100n), max: 1n << 1100n }), (x) => {
        expect(fieldReduce(x)).toBe(ref(x));
      }),
    );
  });

  it('adds, subtracts and multiplies like the % reference', () => {
    fc.assert(
      fc.property(element, element, (a, b) => {
        expect(fieldAdd(a, b)).toBe(ref(a + b));
        expect(fieldSub(a, b)).toBe(ref(a - b));
        expect(fieldMul(a, b)).toBe(ref(a * b));
      }),
    );
    expect(fieldAdd(P - 1n, 2n)).toBe(1n);
    expect(fieldSub(1n, 2n)).toBe(P - 1n);
    expect(fieldMul(P - 1n, P - 1n)).toBe(1n); // (−1)² = 1
  });

  it('accepts non-canonical inputs and still returns canonical results', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 600n), max: 1n << 600n }), fc.bigInt({ min: -(1n << 600n), max: 1n << 600n }), (a, b) => {
        expect(fieldAdd(a, b)).toBe(ref(a + b));
        expect(fieldSub(a, b)).toBe(ref(a - b));
        expect(fieldMul(a, b)).toBe(ref(a * b));
      }),
    );
  });

  it('inverts every non-zero element and rejects zero', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: P - 1n }), (a) => {
        expect(fieldMul(a, fieldInv(a))).toBe(1n);
      }),
      { numRuns: 50 },
    );
    expect(codeOf(() => fieldInv(0n))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => fieldInv(P))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('draws random elements in [0, P) that differ', () => {
    const seen = new Set<bigint>();
    for (let i = 0; i < 200; i++) {
      const r = randomFieldElement();
      expect(r >= 0n && r < P).toBe(true);
      seen.add(r);
    }
    expect(seen.size).toBe(200);
    // The top bit (2^520) is set about half the time, so the full 521-bit range is used.
    const top = [...seen].filter((r) => r >> 520n === 1n).length;
    expect(top).toBeGreaterThan(60);
    expect(top).toBeLessThan(140);
  });
});
