import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, loadSeal } from '../../src/ckks/index.ts';
import { runBatch } from '../../src/inference/batch.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { calibrate } from '../../src/inference/calibrate.ts';
import { runPlain } from '../../src/inference/execute.ts';
import type { Tensor } from '../../src/inference/onnx.ts';
import { parseOnnx, serializeOnnx, sizeOf } from '../../src/inference/onnx.ts';
import { packSingleInput, prepareSingle, runSingle } from '../../src/inference/single.ts';

// Graphs laid out the way torch.onnx.export writes them at opsets 9–14 (no PyTorch on this
// machine, so the node patterns are rebuilt here): `x.view(x.size(0), -1)` as
// Shape → Gather → Unsqueeze → Concat → Reshape, `x ** 2` as Pow, eval-mode Dropout, Cast, a
// Linear on a 3-D tensor as Transpose → MatMul → Add, Squeeze/Unsqueeze with axes as an
// attribute (opset < 13) or an input (≥ 13). Each must match onnxruntime in plaintext (1e-4),
// and after calibration both CKKS plans must match onnxruntime on the calibrated model (2e-3 ×
// max(1, |value|) at the chosen scale).
let seed = 4242;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
};
const tensor = (dims: number[], scale = 1): Tensor => ({ dims, data: Float64Array.from({ length: sizeOf(dims) }, () => rand() * scale) });
const i64 = (values: number[], dims = [values.length]): Tensor => ({ dims, data: Float64Array.from(values), type: 'int64' });

interface Export {
  readonly name: string;
  readonly opset: number;
  readonly input: number[];
  readonly build: (b: GraphBuilder, x: string) => string;
}

// view(x.size(0), -1): the opset-9 form (Unsqueeze axes attribute) or the opset-13 one (axes input).
function viewFlat(b: GraphBuilder, x: string, opset: number): string {
  const shape = b.node('Shape', [x]);
  const n = b.node('Gather', [shape, b.node('Constant', [], { value: i64([0], []) })], { axis: 0 });
  const n1 = opset >= 13 ? b.node('Unsqueeze', [n, b.init(`ax${opset}`, i64([0]))]) : b.node('Unsqueeze', [n], { axes: [0] });
  const spec = b.node('Concat', [n1, b.node('Constant', [], { value: i64([-1]) })], { axis: 0 });
  return b.node('Reshape', [x, spec]);
}

const EXPORTS: Export[] = [
  {
    name: 'opset 9: Conv → Relu → view → Dropout → Linear → x**2 → Linear',
    opset: 9,
    input: [1, 6, 6],
    build: (b, x) => {
      const c = b.node('Conv', [x, b.init('cw', tensor([2, 1, 3, 3])), b.init('cb', tensor([2]))], { kernel_shape: [3, 3], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
      const r = b.node('Relu', [c], {}, 'relu_1');
      const f = viewFlat(b, r, 9);
      const d = b.node('Dropout', [f], { ratio: 0.5 });
      const h = b.node('Gemm', [d, b.init('w1', tensor([4, 32], 0.5)), b.init('b1', tensor([4]))], { alpha: 1, beta: 1, transB: 1 });
      const p = b.node('Pow', [h, b.node('Constant', [], { value: { dims: [], data: Float64Array.of(2) } })]);
      return b.node('Gemm', [p, b.init('w2', tensor([3, 4])), b.init('b2', tensor([3]))], { transB: 1 });
    },
  },
  {
    name: 'opset 11: AvgPool → view → Linear → Sigmoid → Neg → Linear',
    opset: 11,
    input: [2, 4, 4],
    build: (b, x) => {
      const a = b.node('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil_mode: 0, count_include_pad: 0 });
      const f = viewFlat(b, a, 11);
      const h = b.node('Gemm', [f, b.init('w1', tensor([5, 8])), b.init('b1', tensor([5]))], { transB: 1 });
      const s = b.node('Sigmoid', [h], {}, 'sigmoid_1');
      return b.node('Gemm', [b.node('Neg', [s]), b.init('w2', tensor([2, 5])), b.init('b2', tensor([2]))], { transB: 1 });
    },
  },
  {
    name: 'opset 13: Cast → Transpose → MatMul → Add (Linear on 3-D) → x**3 → Squeeze → Flatten',
    opset: 13,
    input: [3, 4],
    build: (b, x) => {
      const c = b.node('Cast', [x], { to: 1 });
      const t = b.node('Transpose', [c], { perm: [0, 2, 1] });
      const m = b.node('Add', [b.node('MatMul', [t, b.init('w', tensor([3, 2]))]), b.init('b', tensor([2]))]);
      const p = b.node('Pow', [m, b.init('three', { dims: [], data: Float64Array.of(3) })]);
      const u = b.node('Unsqueeze', [p, b.init('ax1', i64([1]))]);
      const q = b.node('Squeeze', [u, b.init('ax1b', i64([1]))]);
      return b.node('Flatten', [q], { axis: 1 });
    },
  },
  {
    name: 'opset 14: Conv → BatchNorm → Relu → Reshape(allowzero 0) → Gemm, with Concat of two branches',
    opset: 14,
    input: [1, 5, 5],
    build: (b, x) => {
      const c = b.node('Conv', [x, b.init('cw', tensor([2, 1, 2, 2])), b.init('cb', tensor([2]))], { kernel_shape: [2, 2], strides: [2, 2] });
      const bn = b.node('BatchNormalization', [c, b.init('s', tensor([2])), b.init('bb', tensor([2])), b.init('m', tensor([2], 0.2)), b.init('v', { dims: [2], data: Float64Array.of(0.7, 1.3) })], { epsilon: 1e-5, momentum: 0.9 });
      const r = b.node('Relu', [bn], {}, 'relu_1');
      const flat = b.node('Reshape', [r, b.init('shape', i64([0, -1]))], { allowzero: 0 });
      const both = b.node('Concat', [flat, b.node('Mul', [flat, flat])], { axis: 1 });
      return b.node('Gemm', [both, b.init('w', tensor([3, 16])), b.init('bias', tensor([3]))], { transB: 1 });
    },
  },
];

async function onnxruntime(bytes: Uint8Array, flat: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', flat, dims) });
  const data = out[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  return data;
}

const BATCH = 5;
let seal: Awaited<ReturnType<typeof loadSeal>>;
beforeAll(async () => {
  seal = await loadSeal();
});
afterAll(() => undefined);

describe('PyTorch export patterns (opsets 9–14): plaintext and both CKKS plans vs onnxruntime', () => {
  for (const e of EXPORTS) {
    it(e.name, async () => {
      const b = new GraphBuilder(e.opset);
      const x = b.input('x', [null, ...e.input]);
      b.output(e.build(b, x));
      const bytes = b.toBytes();
      const graph = parseOnnx(bytes);
      const per = sizeOf(e.input);
      const flat = Float32Array.from({ length: BATCH * per }, () => rand() * 3);
      const ref = await onnxruntime(bytes, flat, [BATCH, ...e.input]);
      const plain = runPlain(graph, { dims: [BATCH, ...e.input], data: Float64Array.from(flat) });
      plain.data.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));

      const calib = { dims: [64, ...e.input], data: Float64Array.from({ length: 64 * per }, () => rand() * 3) };
      const { graph: calibrated, keyParams } = calibrate(seal, graph, calib, { degree: 3, packing: 'auto' });
      const want = await onnxruntime(serializeOnnx(calibrated), flat, [BATCH, ...e.input]);
      const outPer = want.length / BATCH;
      const tol = (v: number): number => 2e-3 * Math.max(1, Math.abs(v));
      const ctx = await CkksContext.create(keyParams.params, { galoisSteps: keyParams.galoisSteps });
      try {
        const samples = Array.from({ length: BATCH }, (_, s) => flat.subarray(s * per, (s + 1) * per));
        const inputs = Array.from({ length: per }, (_, j) => ctx.encryptVector(samples.map((v) => v[j]!)));
        const outs = runBatch(ctx, calibrated, inputs, { consumeInputs: true });
        expect(outs.length).toBe(outPer);
        outs.forEach((v, j) => {
          const got = ctx.decryptVector(v, BATCH);
          for (let s = 0; s < BATCH; s++) expect(Math.abs(got[s]! - want[s * outPer + j]!)).toBeLessThan(tol(want[s * outPer + j]!));
          v.delete();
        });
        for (const v of inputs) v.delete();

        using prepared = prepareSingle(ctx, calibrated);
        for (let s = 0; s < 2; s++) {
          using xv = ctx.encryptVector(packSingleInput(prepared.plan, samples[s]!, ctx.slotCount));
          using y = runSingle(ctx, prepared, xv);
          const slots = ctx.decryptVector(y, ctx.slotCount);
          prepared.plan.outputSlots.forEach((j, k) => expect(Math.abs(slots[j]! - want[s * outPer + k]!)).toBeLessThan(tol(want[s * outPer + k]!)));
        }
        expect(ctx.liveVectors).toBe(0);
      } finally {
        ctx.delete();
      }
    });
  }

  it('an exporter pattern that cannot run encrypted is refused at keyparams, naming the node', () => {
    const b = new GraphBuilder(13);
    const x = b.input('x', [null, 4]);
    const c = b.node('Cast', [x], { to: 7 }, 'to_int64');
    b.output(b.node('Cast', [c], { to: 1 }));
    const graph = parseOnnx(b.toBytes());
    const calib = { dims: [8, 4], data: Float64Array.from({ length: 32 }, rand) };
    expect(() => calibrate(seal, graph, calib)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', message: expect.stringContaining('to_int64') }));
    const p = new GraphBuilder(13);
    const px = p.input('x', [null, 4]);
    p.output(p.node('Pow', [px, p.init('half', { dims: [], data: Float64Array.of(0.5) })], {}, 'sqrt_pow'));
    expect(() => calibrate(seal, parseOnnx(p.toBytes()), calib)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', message: expect.stringContaining('sqrt_pow') }));
  });
});
