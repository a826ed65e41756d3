import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { MASK_SEGMENT_WORDS, accumulateMask, accumulateMasks, addMod, addModInPlace, aesCtrKeystream, expandMask, reduceModInPlace, subMod, subModInPlace } from './prg.ts';
import { codeOf } from '../../test/helpers.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const seed32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const bits = fc.integer({ min: 1, max: 32 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('aesCtrKeystream', () => {
  it('matches NIST SP 800-38A F.5.5 CTR-AES256.Encrypt (keystream = plaintext ⊕ ciphertext)', () => {
    const key = hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
    const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
    const plaintext = hex(
      '6bc1bee22e409f96e93d7e117393172a' + 'ae2d8a571e03ac9c9eb76fac45af8e51' + '30c81c46a35ce411e5fbc1191a0a52ef' + 'f69f2445df4f9b17ad2b417be66c3710',
    );
    const ciphertext = hex(
      '601ec313775789a5b7a7f504bbf3d228' + 'f443e3ca4d62b59aca84e990cacaf5c5' + '2b0930daa23de94ce87017ba2d84988d' + 'dfc9c58db67aada613c2dd08457941a6',
    );
    const expected = plaintext.map((p, i) => p ^ ciphertext[i]!);
    expect(aesCtrKeystream(key, iv, 64)).toEqual(expected);
    // Output block #1 of the vector, as printed in SP 800-38A.
    expect(Buffer.from(expected.subarray(0, 16)).toString('hex')).toBe('0bdf7df1591716335e9a8b15c860c502');
  });

  it('is consistent across chunk boundaries (64 KiB chunks)', () => {
    const key = new Uint8Array(randomBytes(32));
    const iv = new Uint8Array(16);
    const long = aesCtrKeystream(key, iv, (1 << 16) * 2 + 5);
    expect(long.subarray(0, 1000)).toEqual(aesCtrKeystream(key, iv, 1000));
    expect(aesCtrKeystream(key, iv, 0).length).toBe(0);
  });
});

describe('expandMask', () => {
  it('is the zero-IV AES-256-CTR keystream read as little-endian uint32 words', () => {
    const seed = new Uint8Array(randomBytes(32));
    const ks = aesCtrKeystream(seed, new Uint8Array(16), 4 * 10);
    const view = new DataView(ks.buffer);
    const words = Array.from({ length: 10 }, (_, i) => view.getUint32(4 * i, true));
    expect(Array.from(expandMask(seed, 10, 32))).toEqual(words);
    expect(Array.from(expandMask(seed, 10, 12))).toEqual(words.map((w) => w % 4096));
  });

  it('is deterministic, prefix-consistent, and different for different seeds', () => {
    fc.assert(
      fc.property(seed32, fc.integer({ min: 1, max: 500 }), bits, (seed, n, k) => {
        const a = expandMask(seed, n, k);
        expect(expandMask(seed, n, k)).toEqual(a);
        expect(expandMask(seed, n + 7, k).subarray(0, n)).toEqual(a);
        const other = seed.slice();
        other[0] = other[0]! ^ 1;
        if (k >= 16 && n >= 4) expect(expandMask(other, n, k)).not.toEqual(a);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps every value below 2^k', () => {
    fc.assert(
      fc.property(seed32, bits, (seed, k) => {
        for (const v of expandMask(seed, 256, k)) expect(v < 2 ** k).toBe(true);
      }),
    );
  });

  it('is roughly uniform (k = 1: half ones; k = 32: top bit set about half the time)', () => {
    const seed = new Uint8Array(randomBytes(32));
    const n = 100_000;
    const ones = expandMask(seed, n, 1).reduce((s, v) => s + v, 0);
    expect(Math.abs(ones / n - 0.5)).toBeLessThan(0.01); // σ ≈ 0.0016
    const top = expandMask(seed, n, 32).reduce((s, v) => s + (v >>> 31), 0);
    expect(Math.abs(top / n - 0.5)).toBeLessThan(0.01);
  });

  it('rejects bad seeds, lengths and modulus bits', () => {
    expect(codeOf(() => expandMask(new Uint8Array(16), 4, 8))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => expandMask(new Uint8Array(32), -1, 8))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => expandMask(new Uint8Array(32), 1.5, 8))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => expandMask(new Uint8Array(32), 4, 0))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => expandMask(new Uint8Array(32), 4, 33))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(expandMask(new Uint8Array(32), 0, 8).length).toBe(0);
  });
});

describe('modular vector arithmetic in Z_{2^k}', () => {
  const pair = fc.integer({ min: 0, max: 40 }).chain((n) => fc.tuple(fc.array(u32, { minLength: n, maxLength: n }), fc.array(u32, { minLength: n, maxLength: n })));
  const refMod = (x: bigint, k: number): number => Number(((x % (1n << BigInt(k))) + (1n << BigInt(k))) % (1n << BigInt(k)));

  it('agrees with a BigInt reference for every k in 1..32 (inputs taken mod 2^k)', () => {
    fc.assert(
      fc.property(pair, bits, ([xs, ys], k) => {
        const a = Uint32Array.from(xs);
        const b = Uint32Array.from(ys);
        const sum = addMod(a, b, k);
        const diff = subMod(a, b, k);
        for (let i = 0; i < xs.length; i++) {
          expect(sum[i]).toBe(refMod(BigInt(xs[i]!) + BigInt(ys[i]!), k));
          expect(diff[i]).toBe(refMod(BigInt(xs[i]!) - BigInt(ys[i]!), k));
        }
        expect(addModInPlace(a.slice(), b, k)).toEqual(sum);
        expect(subModInPlace(a.slice(), b, k)).toEqual(diff);
        // The new-array forms leave their inputs alone.
        expect(Array.from(a)).toEqual(xs);
      }),
    );
  });

  it('handles the 32-bit edges', () => {
    expect(Array.from(addMod(Uint32Array.of(0xffffffff), Uint32Array.of(2), 32))).toEqual([1]);
    expect(Array.from(subMod(Uint32Array.of(0), Uint32Array.of(1), 32))).toEqual([0xffffffff]);
    expect(Array.from(addMod(Uint32Array.of(0x7fffffff), Uint32Array.of(1), 31))).toEqual([0]);
    expect(Array.from(subMod(Uint32Array.of(1), Uint32Array.of(2), 8))).toEqual([255]);
  });

  it('removes a mask exactly: (x + m) − m = x mod 2^k', () => {
    fc.assert(
      fc.property(seed32, bits, fc.array(u32, { maxLength: 64 }), (seed, k, xs) => {
        const x = Uint32Array.from(xs.map((v) => (k === 32 ? v : v % 2 ** k)));
        const m = expandMask(seed, x.length, k);
        const masked = addModInPlace(x.slice(), m, k);
        expect(subModInPlace(masked, m, k)).toEqual(x);
      }),
    );
  });

  it('reports length mismatches as SHAPE_MISMATCH and bad operands as INVALID_ARGUMENT', () => {
    const a = new Uint32Array(3);
    const b = new Uint32Array(4);
    expect(codeOf(() => addMod(a, b, 8))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => subMod(a, b, 8))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => addModInPlace(a, b, 8))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => subModInPlace(a, b, 8))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => addMod(a, a, 33))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => addMod([1, 2, 3] as unknown as Uint32Array, a, 8))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('accumulateMask (masks added mod 2^32, reduced once)', () => {
  it('equals adding and subtracting the materialised masks in Z_{2^k}, across chunk boundaries (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 1, max: 32 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), (length, bits, signs) => {
        const seeds = signs.map(() => randomBytes(32));
        const start = expandMask(randomBytes(32), length, bits);
        const expected = start.slice();
        const got = start.slice();
        seeds.forEach((seed, i) => {
          const mask = expandMask(seed, length, bits);
          if (signs[i]) addModInPlace(expected, mask, bits);
          else subModInPlace(expected, mask, bits);
          accumulateMask(got, seed, signs[i] ? 1 : -1);
        });
        expect(reduceModInPlace(got, bits)).toEqual(expected);
      }),
      { numRuns: 25 },
    );
  });

  it('accumulateMasks (SIMD, per segment) equals the masks added one by one, across segment and lane boundaries', () => {
    for (const length of [1, 3, 4, 5, 1000, MASK_SEGMENT_WORDS - 1, MASK_SEGMENT_WORDS, MASK_SEGMENT_WORDS + 5, 2 * MASK_SEGMENT_WORDS + 4]) {
      const masks = [1, -1, -1].map((sign) => ({ seed: new Uint8Array(randomBytes(32)), sign: sign as 1 | -1 }));
      const start = expandMask(randomBytes(32), length, 32);
      const expected = start.slice();
      for (const { seed, sign } of masks) {
        const mask = expandMask(seed, length, 32);
        if (sign > 0) addModInPlace(expected, mask, 32);
        else subModInPlace(expected, mask, 32);
      }
      expect(accumulateMasks(start.slice(), masks)).toEqual(expected);
    }
    expect(codeOf(() => accumulateMasks(new Uint32Array(4), [{ seed: new Uint8Array(31), sign: 1 }]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('rejects a short seed and a non-Uint32Array accumulator', () => {
    expect(codeOf(() => accumulateMask(new Uint32Array(4), new Uint8Array(31), 1))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => accumulateMask([0, 0] as unknown as Uint32Array, new Uint8Array(32), 1))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => reduceModInPlace(new Uint32Array(2), 0))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});
