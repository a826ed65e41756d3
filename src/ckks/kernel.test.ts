import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext } from './context.ts';
import { MAX_LAZY_TERMS, rnsKernel, setKernelEnabled } from './kernel.ts';

// The RNS multiply-accumulate kernel must produce, bit for bit, the ciphertext SEAL's own
// path (encode each scalar, multiply_plain, add, rescale) produces: same integers, same primes.
const bytesOf = (ctx: CkksContext, v: { ct: { saveToArray(m: unknown): unknown } }): Uint8Array => v.ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;

function viaSeal<T>(f: () => T): T {
  setKernelEnabled(false);
  try {
    return f();
  } finally {
    setKernelEnabled(true);
  }
}

describe('RNS linear-combination kernel', () => {
  let ctx: CkksContext;
  beforeAll(async () => {
    ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [40, 30, 30, 40], scaleBits: 30 });
  });
  afterAll(() => ctx?.delete());

  it('is available here (otherwise both sides below would be SEAL\'s path and could not differ)', () => {
    expect(rnsKernel()).toBeDefined();
  });

  it('equals SEAL multiply_plain + add bit for bit, with bias, negative and drifted-scale terms', () => {
    const xs = Array.from({ length: 7 }, (_, i) => ctx.encryptVector(Float64Array.from({ length: 64 }, (_, j) => Math.sin(3 * i + j))));
    // A term at another scale (a product's Δ²/q): the compensated encoding makes the sum exact.
    const sq = ctx.mul(xs[0]!, xs[1]!);
    const low = xs.map((x) => ctx.toLevel(x, sq.level));
    const terms = [...low, sq];
    const ks = [0.5, -1.25, 3, 1e-12, -0.001, 2.5, 0, 0.75];
    try {
      for (const [vs, k, b] of [[xs, ks.slice(0, 7), 0.3], [terms, ks, -2]] as const) {
        using fast = ctx.linearCombination(vs, k, b);
        using slow = viaSeal(() => ctx.linearCombination(vs, k, b));
        expect(Buffer.from(bytesOf(ctx, fast)).equals(Buffer.from(bytesOf(ctx, slow)))).toBe(true);
        const got = ctx.decryptVector(fast, 64);
        const plain = vs.map((v) => ctx.decryptVector(v, 64));
        const want = Float64Array.from({ length: 64 }, (_, j) => b + plain.reduce((s, p, i) => s + k[i]! * p[j]!, 0));
        got.forEach((g, j) => expect(Math.abs(g - want[j]!)).toBeLessThan(1e-3));
      }
    } finally {
      for (const v of [...xs, ...low, sq]) v.delete();
    }
  });

  it('takes a given scale (options.scale), so partial combinations add to the whole one', () => {
    using x = ctx.encryptVector(Float64Array.from({ length: 64 }, (_, j) => Math.cos(j)));
    using y = ctx.encryptVector(Float64Array.from({ length: 64 }, (_, j) => Math.sin(j)));
    using sq = ctx.mul(x, y);
    using lowX = ctx.toLevel(x, sq.level);
    expect(Math.abs(sq.scale / lowX.scale - 1)).toBeGreaterThan(1e-5); // the drift the option is for
    using whole = ctx.linearCombination([lowX, sq], [0.5, -2], 0.1);
    using p1 = ctx.linearCombination([lowX], [0.5], 0.1);
    using p2 = ctx.linearCombination([sq], [-2], 0, { scale: lowX.scale });
    using p2Seal = viaSeal(() => ctx.linearCombination([sq], [-2], 0, { scale: lowX.scale }));
    expect(Buffer.from(bytesOf(ctx, p2)).equals(Buffer.from(bytesOf(ctx, p2Seal)))).toBe(true);
    expect(p2.scale).toBe(p1.scale);
    using sum = ctx.add(p1, p2);
    const w = ctx.decryptVector(whole, 64);
    ctx.decryptVector(sum, 64).forEach((g, j) => expect(Math.abs(g - w[j]!)).toBeLessThan(1e-4));
    // Without it the partials' scales differ past what addition aligns.
    using bare = ctx.linearCombination([sq], [-2], 0);
    expect(() => ctx.add(p1, bare)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_CKKS_SCALE_MISMATCH' }));
    expect(() => ctx.linearCombination([sq], [1], 0, { scale: sq.scale * 4 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_CKKS_SCALE_MISMATCH', param: 'options.scale' }));
  });

  it(`reduces between blocks of ${MAX_LAZY_TERMS} terms (the i64 accumulator's bound)`, () => {
    using x = ctx.encryptVector(Float64Array.from({ length: 8 }, (_, j) => (j - 4) / 4));
    const n = MAX_LAZY_TERMS + 5;
    const vs = Array.from({ length: n }, () => x);
    const ks = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 0.9 : -0.4));
    // Without the intermediate reduction the i64 words overflow and decrypt to noise.
    using fast = ctx.linearCombination(vs, ks);
    const sum = ks.reduce((a, b) => a + b, 0);
    ctx.decryptVector(fast, 8).forEach((g, j) => expect(Math.abs(g - (sum * (j - 4)) / 4)).toBeLessThan(0.05));
  });

  it('leaves primes ≥ 2^50 to SEAL (same result either way)', async () => {
    const wide = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [60, 55, 60], scaleBits: 40 });
    try {
      using x = wide.encryptVector([1, -2, 3]);
      using y = wide.linearCombination([x, x], [0.25, 0.5], 1);
      using z = viaSeal(() => wide.linearCombination([x, x], [0.25, 0.5], 1));
      expect(Buffer.from(bytesOf(wide, y)).equals(Buffer.from(bytesOf(wide, z)))).toBe(true);
      [...wide.decryptVector(y, 3)].forEach((g, j) => expect(Math.abs(g - (1 + 0.75 * [1, -2, 3][j]!))).toBeLessThan(1e-6));
    } finally {
      wide.delete();
    }
  });

  it('sums unfinished products into what the finished products add to (one relinearization and rescale)', () => {
    const xs = Array.from({ length: 4 }, (_, i) => ctx.encryptVector(Float64Array.from({ length: 16 }, (_, j) => Math.cos(i + j))));
    const raw = xs.map((x) => ctx.mul(x, x, { finish: false }));
    const done = xs.map((x) => ctx.mul(x, x));
    try {
      using s = ctx.sumProducts(raw);
      expect(s.level).toBe(done[0]!.level);
      expect(s.ct.size()).toBe(2);
      using ref = ctx.linearCombination(done, [1, 1, 1, 1]);
      using fromRaw = ctx.linearCombination([s], [1]);
      const a = ctx.decryptVector(fromRaw, 16);
      const b = ctx.decryptVector(ref, 16);
      a.forEach((v, j) => {
        const want = [0, 1, 2, 3].reduce((acc, i) => acc + Math.cos(i + j) ** 2, 0);
        expect(Math.abs(v - want)).toBeLessThan(1e-3);
        expect(Math.abs(v - b[j]!)).toBeLessThan(1e-3);
      });
    } finally {
      for (const v of [...xs, ...raw, ...done]) v.delete();
    }
  });
});
