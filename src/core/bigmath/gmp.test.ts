import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { gcd } from './bigint.ts';
import fc from 'fast-check';
import { bigintToBuffer, bufferToBigint, loadGmpBackend } from './gmp.ts';

/** Reference: right-to-left binary square-and-multiply in plain BigInt. */
function refPowm(base: bigint, exp: bigint, mod: bigint): bigint {
  let b = base % mod;
  let e = exp;
  let acc = 1n % mod;
  while (e > 0n) {
    if ((e & 1n) === 1n) acc = (acc * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return acc;
}

/** A bigint of exactly `bits` bits (top bit set), from an arbitrary lower part. */
const exactBits = (bits: number): fc.Arbitrary<bigint> =>
  fc.bigInt({ min: 0n, max: (1n << BigInt(bits - 1)) - 1n }).map((low) => (1n << BigInt(bits - 1)) | low);

/** [base, exp, mod] with a 64..4096-bit modulus > 1, base of any size below 2^4096, exp up to 4096 bits. */
const powmCase = (oddMod: boolean): fc.Arbitrary<[bigint, bigint, bigint]> =>
  fc
    .tuple(fc.integer({ min: 64, max: 4096 }), fc.integer({ min: 1, max: 4096 }))
    .chain(([modBits, expBits]) =>
      fc.tuple(
        fc.bigInt({ min: 0n, max: (1n << 4096n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << BigInt(expBits)) - 1n }),
        exactBits(modBits).map((m) => (oddMod ? m | 1n : m)),
      ),
    );

const gmp = loadGmpBackend();

describe('bigintToBuffer / bufferToBigint', () => {
  it('round-trip 0..2^4096 with minimal big-endian encoding', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 4096n }), (x) => {
        const b = bigintToBuffer(x);
        expect(bufferToBigint(b)).toBe(x);
        if (x === 0n) expect(b.length).toBe(0);
        else expect(b[0]).not.toBe(0);
      }),
    );
    expect(bigintToBuffer(0x0abcn)).toEqual(Buffer.from([0x0a, 0xbc]));
    expect(bufferToBigint(new Uint8Array([0, 0, 1, 2]))).toBe(0x102n);
    expect(bufferToBigint(new Uint8Array(0))).toBe(0n);
    expect(() => bigintToBuffer(-1n)).toThrow(RangeError);
  });
});

if (gmp === null) {
  describe('GMP backend', () => {
    it.skip(
      process.env['CIPHERML_NATIVE'] === '0'
        ? 'GMP backend disabled by CIPHERML_NATIVE=0'
        : 'GMP addon not built (needs libgmp-dev and a C compiler at install time)',
      () => {},
    );
  });
} else {
  const be = gmp;

  describe(`GMP backend (libgmp ${be.gmpVersion})`, () => {
    it('known answer: 4^13 mod 497 = 445', () => {
      expect(be.powm(4n, 13n, 497n)).toBe(445n);
      expect(be.powmSec(4n, 13n, 497n)).toBe(445n);
      expect(be.fixedBase(4n, 497n, 8, 3).pow(13n)).toBe(445n);
    });

    it('powm matches square-and-multiply on random 64..4096-bit inputs', () => {
      fc.assert(
        fc.property(powmCase(false), ([b, e, m]) => {
          expect(be.powm(b, e, m)).toBe(refPowm(b, e, m));
        }),
        { numRuns: 25 },
      );
    });

    it('gcd matches Euclid, including shared factors and zeros', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: 1n << 2100n }), fc.bigInt({ min: 0n, max: 1n << 1100n }), fc.bigInt({ min: 1n, max: 1n << 300n }), (a, b, k) => {
          expect(be.gcd(a * k, b * k)).toBe(gcd(a * k, b * k));
        }),
        { numRuns: 50 },
      );
      expect(be.gcd(0n, 0n)).toBe(0n);
      expect(be.gcd(0n, 12n)).toBe(12n);
      expect(be.gcd(462n, 1071n)).toBe(21n);
    });

    it('powmSec matches square-and-multiply on random odd moduli', () => {
      fc.assert(
        fc.property(powmCase(true), ([b, e, m]) => {
          expect(be.powmSec(b, e, m)).toBe(refPowm(b, e, m));
        }),
        { numRuns: 25 },
      );
    });

    it('powm / powmSec edge cases', () => {
      const m = (1n << 521n) - 1n;
      for (const f of [be.powm, be.powmSec]) {
        expect(f(12345n, 0n, m)).toBe(1n);
        expect(f(0n, 0n, m)).toBe(1n);
        expect(f(0n, 7n, m)).toBe(0n);
        expect(f(m, 5n, m)).toBe(0n);
        expect(f(m + 2n, 5n, m)).toBe(32n);
        expect(f(3n, 1n, 2n ** 4100n + 1n)).toBe(3n);
        expect(() => f(-1n, 3n, m)).toThrow(RangeError);
        expect(() => f(2n, -3n, m)).toThrow(RangeError);
        expect(() => f(2n, 3n, 1n)).toThrow(RangeError);
        expect(() => f(2n, 3n, 0n)).toThrow(RangeError);
        expect(() => f(2n, 3n, -7n)).toThrow(RangeError);
      }
      expect(be.powm(3n, 5n, 1n << 64n)).toBe(243n);
      expect(be.powm(3n, 1000n, 1000n)).toBe(refPowm(3n, 1000n, 1000n));
      expect(() => be.powmSec(3n, 5n, 1n << 64n)).toThrow(/odd/);
    });

    it('fixedBase.pow and powMany match square-and-multiply', () => {
      const tableCase = fc
        .tuple(fc.integer({ min: 64, max: 4096 }), fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 6 }))
        .chain(([modBits, maxExpBits, windowBits]) =>
          fc.tuple(
            fc.bigInt({ min: 0n, max: (1n << 4096n) - 1n }),
            exactBits(modBits),
            fc.constant(maxExpBits),
            fc.constant(windowBits),
            fc.array(fc.bigInt({ min: 0n, max: (1n << BigInt(maxExpBits)) - 1n }), { minLength: 1, maxLength: 4 }),
          ),
        );
      fc.assert(
        fc.property(tableCase, ([base, mod, maxExpBits, windowBits, exps]) => {
          const fb = be.fixedBase(base, mod, maxExpBits, windowBits);
          expect(fb.maxExpBits).toBe(maxExpBits);
          const all = [...exps, 0n, 1n, (1n << BigInt(maxExpBits)) - 1n];
          const want = all.map((e) => refPowm(base, e, mod));
          expect(all.map((e) => fb.pow(e))).toEqual(want);
          expect(fb.powMany(all)).toEqual(want);
        }),
        { numRuns: 20 },
      );
    });

    it('fixedBase at Paillier size: 4096-bit modulus, 1024-bit exponents, window 8', () => {
      const n2 = exactBits(4096).map((m) => m | 1n);
      const [mod] = fc.sample(n2, 1) as [bigint];
      const base = 0x1234567890abcdefn ** 40n;
      const fb = be.fixedBase(base, mod, 1024, 8);
      const exps = fc.sample(fc.bigInt({ min: 0n, max: (1n << 1024n) - 1n }), 5);
      const want = exps.map((e) => refPowm(base, e, mod));
      expect(exps.map((e) => fb.pow(e))).toEqual(want);
      expect(fb.powMany(exps)).toEqual(want);
      expect(fb.powMany([])).toEqual([]);
    });

    it('fixedBase edge cases and argument checks', () => {
      const m = 1_000_003n;
      const fb = be.fixedBase(5n, m, 16, 4);
      expect(fb.pow(0n)).toBe(1n);
      expect(fb.pow((1n << 16n) - 1n)).toBe(refPowm(5n, 65535n, m));
      expect(() => fb.pow(1n << 16n)).toThrow(RangeError);
      expect(() => fb.powMany([1n, 1n << 16n])).toThrow(RangeError);
      expect(() => fb.pow(-1n)).toThrow(RangeError);

      expect(be.fixedBase(0n, m, 8, 2).pow(0n)).toBe(1n);
      expect(be.fixedBase(0n, m, 8, 2).pow(9n)).toBe(0n);
      expect(be.fixedBase(m + 5n, m, 8, 3).pow(200n)).toBe(refPowm(5n, 200n, m));
      expect(be.fixedBase(3n, 1n << 40n, 12, 5).pow(4095n)).toBe(refPowm(3n, 4095n, 1n << 40n));
      expect(be.fixedBase(6n, 9n, 5, 1).powMany([0n, 1n, 2n, 31n])).toEqual([1n, 6n, 0n, 0n]);
      expect(be.fixedBase(7n, 65537n, 32, 16).pow(0xfedcba98n)).toBe(refPowm(7n, 0xfedcba98n, 65537n));

      expect(() => be.fixedBase(2n, 1n, 8, 4)).toThrow(RangeError);
      expect(() => be.fixedBase(-2n, m, 8, 4)).toThrow(RangeError);
      expect(() => be.fixedBase(2n, m, 0, 4)).toThrow(/maxExpBits/);
      expect(() => be.fixedBase(2n, m, 65537, 4)).toThrow(/maxExpBits/);
      expect(() => be.fixedBase(2n, m, 8, 0)).toThrow(/windowBits/);
      expect(() => be.fixedBase(2n, m, 8, 17)).toThrow(/windowBits/);
      expect(() => be.fixedBase(2n, m, 8, 2.5)).toThrow(/windowBits/);
      expect(() => be.fixedBase(2n, (1n << 4096n) - 1n, 65536, 16)).toThrow(/limit/);
    });

    it('loads and computes in concurrent worker_threads', async () => {
      const addon = fileURLToPath(new URL('../../../native/gmp/build/Release/cipherml_gmp.node', import.meta.url));
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const g = require(workerData);
        const t = g.fixedBaseCreate(Buffer.from([4]), Buffer.from([0x01, 0xf1]), 16, 4);
        const r = [g.powm(Buffer.from([4]), Buffer.from([13]), Buffer.from([0x01, 0xf1])), g.fixedBasePow(t, Buffer.from([13]))];
        parentPort.postMessage(r.map((b) => b.toString('hex')));
      `;
      const run = (): Promise<unknown> =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: addon });
          w.once('message', resolve);
          w.once('error', reject);
        });
      const results = await Promise.all([run(), run(), run()]);
      for (const r of results) expect(r).toEqual(['01bd', '01bd']);
    });
  });
}
