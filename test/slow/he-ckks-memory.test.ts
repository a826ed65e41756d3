import { describe, expect, it } from 'vitest';
import { CkksContext, deserializeCiphertexts, encryptToBytes, sealHeapBytes, serializeCiphertexts } from '../../src/ckks/index.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { decryptOutput, encryptBatch, encryptSingle, inferBytes } from '../../src/inference/he.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';
import { compileSingle, prepareSingle } from '../../src/inference/single.ts';

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

// The same for whole inferences: 1,000 of them through the file-level API, alternating the batch
// plan, the single plan with diagonals prepared once, and the single plan preparing its own.
describe('inference lifetimes', () => {
  it('1,000 encrypted inferences (both plans) keep the SEAL heap flat', async () => {
    const b = new GraphBuilder(13);
    const x = b.input('x', [null, 4]);
    const h = b.node('Gemm', [x, b.init('w1', { dims: [4, 3], data: Float64Array.of(0.5, -0.2, 0.1, 0.3, 0.4, -0.5, -0.1, 0.2, 0.6, 0.25, -0.3, 0.05) })]);
    b.output(b.node('Gemm', [b.node('Mul', [h, h]), b.init('w2', { dims: [3, 2], data: Float64Array.of(1, -1, 0.5, 2, -0.5, 0.25) })]));
    const graph = parseOnnx(b.toBytes());
    const plan = compileSingle(graph);
    const ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [39, 28, 28, 28, 39], scaleBits: 28 }, { galoisSteps: plan.galoisSteps });
    const prepared = prepareSingle(ctx, graph);
    const sample = (i: number): Float64Array => Float64Array.of((i % 7) / 7, 0.5, -0.25, 1 - (i % 3) / 3);
    const infer = (i: number): number => {
      const s = sample(i);
      const ref = runPlain(graph, { dims: [1, 4], data: s }).data;
      const bytes = i % 3 === 0 ? encryptBatch(ctx, [s], [4]) : encryptSingle(ctx, [s], [4]);
      const out = decryptOutput(ctx, inferBytes(ctx, graph, bytes, i % 3 === 1 ? { prepared } : {})).data;
      return Math.max(Math.abs(out[0]! - ref[0]!), Math.abs(out[1]! - ref[1]!));
    };
    for (let i = 0; i < 30; i++) infer(i);
    const before = await sealHeapBytes();
    for (let i = 0; i < 1000; i++) expect(infer(i)).toBeLessThan(1e-2);
    const after = await sealHeapBytes();
    expect(ctx.liveVectors).toBe(0);
    expect(after - before).toBeLessThanOrEqual(1 << 20);
    prepared.delete();
    ctx.delete();
  }, 300_000);
});
