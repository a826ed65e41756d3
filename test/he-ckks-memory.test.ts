import { describe, expect, it } from 'vitest';
import { CkksContext, deserializeCiphertexts, encryptToBytes, sealHeapBytes, serializeCiphertexts } from '../src/ckks/index.ts';

// Every SEAL object is freed: 1,000 encrypt → compute → serialize → decrypt cycles must not grow
// the wasm heap (wasm memory never shrinks, so any leak of ≥ 1 ciphertext per cycle, ≈ 200 KB,
// would add ≥ 200 MB).
describe('CKKS lifetimes', () => {
  it('1,000 cycles keep the SEAL heap flat', async () => {
    const ctx = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [36, 30, 36], scaleBits: 30 }, { galoisSteps: [1] });
    const cycle = (i: number): number => {
      const bytes = encryptToBytes(ctx, [[i % 10, 1, 2]]);
      const { vectors } = deserializeCiphertexts(ctx, bytes);
      const x = vectors[0]!;
      const y = ctx.mul(x, x);
      const z = ctx.rotate(y, 1);
      const w = ctx.addScalar(z, 1);
      const back = deserializeCiphertexts(ctx, serializeCiphertexts(ctx, [w])).vectors[0]!;
      const out = ctx.decryptVector(back, 1)[0]!;
      for (const v of [x, y, z, w, back]) v.delete();
      return out;
    };
    for (let i = 0; i < 50; i++) cycle(i);
    const before = await sealHeapBytes();
    for (let i = 0; i < 1000; i++) expect(Math.abs(cycle(i) - 2)).toBeLessThan(1e-2);
    const after = await sealHeapBytes();
    expect(ctx.liveVectors).toBe(0);
    expect(after - before).toBeLessThanOrEqual(1 << 20);
    ctx.delete();
  });
});
