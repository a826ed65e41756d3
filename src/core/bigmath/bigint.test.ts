import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bigintToBytes, bitLength, bytesToBigint, fixedBaseBigint, gcd, modInverse, powmBigint } from './bigint.ts';

/** Square-and-multiply from the definition, the oracle for the windowed versions. */
function naivePowm(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n % m;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

const big = (maxBits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(maxBits)) - 1n });

describe('pure BigInt modular arithmetic', () => {
  it('matches known answers', () => {
    expect(powmBigint(4n, 13n, 497n)).toBe(445n);
    expect(powmBigint(2n, 10n, 1000n)).toBe(24n);
    expect(modInverse(3n, 11n)).toBe(4n);
    expect(gcd(462n, 1071n)).toBe(21n);
    expect(bitLength(0n)).toBe(0);
    expect(bitLength(255n)).toBe(8);
  });

  it('powm agrees with square-and-multiply', () => {
    fc.assert(
      fc.property(big(600), big(700), big(600), (b, e, m0) => {
        const m = m0 + 2n;
        expect(powmBigint(b, e, m)).toBe(naivePowm(b, e, m));
      }),
      { numRuns: 200 },
    );
  });

  it('fixed-base tables agree with powm for every window size', () => {
    fc.assert(
      fc.property(big(300), big(256), fc.integer({ min: 1, max: 9 }), big(300), (b, e, w, m0) => {
        const m = m0 + 2n;
        expect(fixedBaseBigint(b, m, 256, w).pow(e)).toBe(powmBigint(b, e, m));
      }),
      { numRuns: 60 },
    );
  });

  it('fixed-base refuses an exponent wider than the table', () => {
    expect(() => fixedBaseBigint(3n, 101n, 8, 4).pow(256n)).toThrow(RangeError);
  });

  it('modInverse inverts and refuses non-units', () => {
    fc.assert(
      fc.property(big(256), big(256), (a, m0) => {
        const m = m0 + 2n;
        if (gcd(a, m) === 1n) expect((a * modInverse(a, m)) % m).toBe(1n % m);
        else expect(() => modInverse(a, m)).toThrow(RangeError);
      }),
    );
  });

  it('bytes round-trip, with left padding', () => {
    fc.assert(fc.property(big(2100), (x) => {
      expect(bytesToBigint(bigintToBytes(x))).toBe(x);
    }));
    expect(Array.from(bigintToBytes(258n, 4))).toEqual([0, 0, 1, 2]);
    expect(() => bigintToBytes(1n << 40n, 4)).toThrow(RangeError);
  });
});
