import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseCkksParameters, CkksContext, loadSeal } from '../../src/ckks/index.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { batchDepth, runBatch } from '../../src/inference/batch.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import type { AttributeValue, Tensor } from '../../src/inference/onnx.ts';
import { parseOnnx, sizeOf } from '../../src/inference/onnx.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { compileSingle, packSingleInput, prepareSingle, runSingle } from '../../src/inference/single.ts';

// Per-operator models with seeded random weights: the plaintext reference, the CKKS batch plan
// (one sample per slot) and the single plan (one sample in the slots) must all match onnxruntime. Tolerances: 1e-4 (float32 vs float64) for
// the reference, 2e-3 for CKKS at Δ = 2^40 on values of magnitude ≲ 10.
const BATCH = 6;
const SINGLE_SAMPLES = 2;

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
}
const tensor = (dims: number[], scale = 1): Tensor => ({ dims, data: Float64Array.from({ length: sizeOf(dims) }, () => rand() * scale) });

interface Case {
  readonly name: string;
  readonly opset?: number;
  readonly input: number[];
  readonly build: (b: GraphBuilder, x: string) => string;
}

const conv = (b: GraphBuilder, x: string, attrs: Record<string, AttributeValue> = {}) =>
  b.node('Conv', [x, b.init(`w${Math.abs(seed)}`, tensor([3, 2, 3, 3])), b.init(`b${Math.abs(seed)}`, tensor([3]))], attrs);

const CASES: Case[] = [
  { name: 'Conv stride 2 pads 1', input: [2, 7, 7], build: (b, x) => conv(b, x, { strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { name: 'Conv → x·x (square activation)', input: [2, 6, 6], build: (b, x) => { const c = conv(b, x); return b.node('Mul', [c, c]); } },
  { name: 'Gemm transB', input: [5], build: (b, x) => b.node('Gemm', [x, b.init('w', tensor([4, 5])), b.init('c', tensor([4]))], { transB: 1, alpha: 0.5, beta: 2 }) },
  { name: 'MatMul', input: [5], build: (b, x) => b.node('MatMul', [x, b.init('w', tensor([5, 3]))]) },
  { name: 'Add/Sub/Mul/Div with constants and ciphertexts', input: [4], build: (b, x) => {
    const a = b.node('Add', [x, b.init('c1', tensor([4]))]);
    const s = b.node('Sub', [b.init('c2', tensor([1])), a]);
    const m = b.node('Mul', [s, b.init('c3', tensor([4]))]);
    const d = b.node('Div', [m, b.init('c4', { dims: [], data: Float64Array.of(4) })]);
    return b.node('Add', [d, x]);
  } },
  { name: 'Mul of two ciphertexts', input: [3], build: (b, x) => b.node('Mul', [b.node('Add', [x, b.init('k', tensor([3]))]), x]) },
  { name: 'AveragePool + GlobalAveragePool', input: [2, 6, 6], build: (b, x) => b.node('GlobalAveragePool', [b.node('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] })]) },
  { name: 'BatchNormalization', input: [2, 3, 3], build: (b, x) => b.node('BatchNormalization', [x, b.init('s', tensor([2])), b.init('bb', tensor([2])), b.init('m', tensor([2])), b.init('v', { dims: [2], data: Float64Array.of(0.5, 2) })], { epsilon: 1e-5 }) },
  ...(['constant', 'edge', 'reflect'] as const).map((mode): Case => ({
    name: `Pad ${mode} (opset 13 inputs)`,
    input: [1, 3, 3],
    build: (b, x) => b.node('Pad', [x, b.init('p', { dims: [8], data: Float64Array.of(0, 0, 1, 2, 0, 0, 2, 1), type: 'int64' }), ...(mode === 'constant' ? [b.init('v', { dims: [], data: Float64Array.of(0.5) })] : [])], { mode }),
  })),
  { name: 'Pad (opset 9 attributes)', opset: 9, input: [1, 3, 3], build: (b, x) => b.node('Pad', [x], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 0.25 }) },
  { name: 'Flatten + Reshape + Constant', input: [2, 2, 2], build: (b, x) => {
    const f = b.node('Flatten', [x], { axis: 1 });
    const shape = b.node('Constant', [], { value: { dims: [2], data: Float64Array.of(-1, 4), type: 'int64' } });
    const r = b.node('Reshape', [f, shape]);
    return b.node('Gemm', [r, b.init('w', tensor([4, 2]))]);
  } },
];

let ctx: CkksContext;
beforeAll(async () => {
  ctx = await CkksContext.create(chooseCkksParameters(await loadSeal(), { depth: 2 }));
});
afterAll(() => ctx.delete());

async function reference(bytes: Uint8Array, input: Float32Array, dims: number[]): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', input, dims) });
  const t = out[session.outputNames[0]!]!;
  await session.release();
  return { dims: t.dims, data: t.data as Float32Array };
}

describe('operators: plaintext reference and both CKKS plans vs onnxruntime', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const b = new GraphBuilder(c.opset ?? 13);
      const x = b.input('x', [null, ...c.input]);
      b.output(c.build(b, x));
      const bytes = b.toBytes();
      const graph = parseOnnx(bytes);
      const per = sizeOf(c.input);
      const samples = Array.from({ length: BATCH }, () => Float64Array.from({ length: per }, () => rand() * 4));
      const flat = new Float32Array(BATCH * per);
      samples.forEach((s, i) => flat.set(s, i * per));
      const ref = await reference(bytes, flat, [BATCH, ...c.input]);
      const plain = runPlain(graph, { dims: [BATCH, ...c.input], data: Float64Array.from(flat) });
      expect(plain.dims).toEqual(ref.dims);
      plain.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));

      expect(batchDepth(graph)).toBeLessThanOrEqual(2);
      const inputs = Array.from({ length: per }, (_, j) => ctx.encryptVector(samples.map((s) => Math.fround(s[j]!))));
      const outs = runBatch(ctx, graph, inputs, { consumeInputs: true });
      const outPer = ref.data.length / BATCH;
      expect(outs.length).toBe(outPer);
      outs.forEach((v, j) => {
        const got = ctx.decryptVector(v, BATCH);
        for (let s = 0; s < BATCH; s++) expect(Math.abs(got[s]! - ref.data[s * outPer + j]!)).toBeLessThan(2e-3);
        v.delete();
      });
      for (const v of inputs) v.delete();
      expect(ctx.liveVectors).toBe(0);

      // Single plan: each sample alone in the slots, diagonal matrix-vector products.
      const plan = compileSingle(graph);
      const sctx = await CkksContext.create(chooseCkksParameters(await loadSeal(), { depth: plan.depth, specialBits: 'max' }), { galoisSteps: plan.galoisSteps });
      try {
        const prepared = prepareSingle(sctx, graph);
        for (let s = 0; s < SINGLE_SAMPLES; s++) {
          const xv = sctx.encryptVector(packSingleInput(plan, samples[s]!.map(Math.fround), sctx.slotCount));
          const y = runSingle(sctx, prepared, xv);
          const slots = sctx.decryptVector(y, sctx.slotCount);
          plan.outputSlots.forEach((j, k) => expect(Math.abs(slots[j]! - ref.data[s * outPer + k]!)).toBeLessThan(2e-3));
          xv.delete();
          y.delete();
        }
        prepared.delete();
        expect(sctx.liveVectors).toBe(0);
      } finally {
        sctx.delete();
      }
    });
  }

  it('unsupported operators and Relu without calibration are typed errors naming the node', () => {
    const b = new GraphBuilder(13);
    const x = b.input('x', [null, 3]);
    b.output(b.node('Tanh', [x], {}, 'my_tanh'));
    let err: unknown;
    try {
      batchDepth(parseOnnx(b.toBytes()));
    } catch (e) {
      err = e;
    }
    expect(isCipherMLError(err, 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR')).toBe(true);
    expect((err as Error).message).toContain('my_tanh');
    const r = new GraphBuilder(13);
    r.output(r.node('Relu', [r.input('x', [null, 3])], {}, 'act'));
    expect(() => batchDepth(parseOnnx(r.toBytes()))).toThrow(/act/);
    expect(() => parseOnnx(Uint8Array.of(1, 2, 3, 4, 5))).toThrow(/CIPHERML_E_ONNX_INVALID/);
  });

  it('wrong input shape is a typed error', () => {
    const b = new GraphBuilder(13);
    b.output(b.node('MatMul', [b.input('x', [null, 4]), b.init('w', tensor([4, 2]))]));
    const inputs = [ctx.encryptVector([1]), ctx.encryptVector([2])];
    expect(() => runBatch(ctx, parseOnnx(b.toBytes()), inputs)).toThrow(/CIPHERML_E_INFERENCE_INPUT_SHAPE/);
    expect(() => runPlain(parseOnnx(b.toBytes()), { dims: [1, 5], data: new Float64Array(5) })).toThrow(/CIPHERML_E_INFERENCE_INPUT_SHAPE/);
    for (const v of inputs) v.delete();
  });
});
