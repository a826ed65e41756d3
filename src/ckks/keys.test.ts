import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext } from './context.ts';
import { binarySteps, binaryTerms, estimateKeySet, naf, powerOfTwoSteps } from './keys.ts';
import { chooseCkksParameters } from './params.ts';
import { loadSeal } from './seal.ts';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserializePublicContext, serializePublicContext, writePublicContextFile } from './serialize.ts';

describe('non-adjacent form', () => {
  it('known answers', () => {
    expect(naf(7)).toEqual([-1, 8]);
    expect(naf(-3)).toEqual([1, -4]);
    expect(naf(12)).toEqual([-4, 16]);
    expect(naf(0)).toEqual([]);
  });
  it('binary terms: left rotations by powers of two, modulo the slots', () => {
    expect(binaryTerms(-1, 8)).toEqual([1, 2, 4]);
    expect(binaryTerms(5, 8)).toEqual([1, 4]);
    expect(binarySteps([3, 100], 4096)).toEqual([1, 2, 4, 32, 64]);
    expect(binarySteps([-1], 4096)).toHaveLength(12);
  });
  it('sums to the step with signed powers of two, no two adjacent', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8191, max: 8191 }), (n) => {
        const t = naf(n);
        expect(t.reduce((a, b) => a + b, 0)).toBe(n);
        for (const x of t) expect(Number.isInteger(Math.log2(Math.abs(x)))).toBe(true);
        for (let i = 1; i < t.length; i++) expect(Math.abs(t[i]!)).toBeGreaterThanOrEqual(4 * Math.abs(t[i - 1]!));
      }),
    );
  });
});

describe('Galois key groups and power-of-two keys', () => {
  let ctx: CkksContext;
  const wanted = [3, 7, -5, 100];
  beforeAll(async () => {
    const seal = await loadSeal();
    ctx = await CkksContext.create(chooseCkksParameters(seal, { depth: 1 }), { galoisSteps: powerOfTwoSteps(wanted, 4096), galoisGroupSize: 2 });
  });
  afterAll(() => ctx.delete());

  it('rotations without their own key chain power-of-two keys across groups, also after a key.pub round trip', async () => {
    expect(ctx.galoisSteps.length).toBeLessThan(8);
    const a = Array.from({ length: 4096 }, (_, i) => (i % 97) / 97);
    const rot = (v: readonly number[], k: number): number[] => v.map((_, i) => v[(((i + k) % 4096) + 4096) % 4096]!);
    const bytes = serializePublicContext(ctx);
    // The streamed file is a well-formed key.pub of the same key set (fresh seeded keys, same length).
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-keys-'));
    await writePublicContextFile(join(dir, 'key.pub'), ctx);
    const streamed = await readFile(join(dir, 'key.pub'));
    expect(streamed.length).toBeGreaterThan(bytes.length * 0.98);
    expect(streamed.length).toBeLessThan(bytes.length * 1.02);
    const server = await deserializePublicContext(streamed);
    try {
      for (const k of wanted) {
        using x = ctx.encryptVector(a);
        for (const c of [ctx, server]) {
          using r = c.rotate(x, k);
          const got = ctx.decryptVector(r, 64);
          got.forEach((v, i) => expect(Math.abs(v - rot(a, k)[i]!)).toBeLessThan(1e-3));
        }
      }
      using y = ctx.encryptVector(a);
      // 2 = naf [2]: no key for 2 in this set.
      expect(() => server.rotate(y, 2)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_CKKS_GALOIS_KEY_MISSING' }));
      // Left powers of two only (the smallest key set): a right rotation chains its binary digits.
      const binary = await CkksContext.create(ctx.params, { galoisSteps: binarySteps([-5], 4096) });
      try {
        using z = binary.encryptVector(a);
        using r = binary.rotate(z, -5);
        binary.decryptVector(r, 64).forEach((v, i) => expect(Math.abs(v - rot(a, -5)[i]!)).toBeLessThan(1e-3));
      } finally {
        binary.delete();
      }
      const est = estimateKeySet(ctx.params, ctx.galoisSteps);
      expect(bytes.length).toBeLessThan(est.publicKeyBytes * 1.02);
      expect(bytes.length).toBeGreaterThan(est.publicKeyBytes * 0.8);
    } finally {
      server.delete();
    }
  });
});
