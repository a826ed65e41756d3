import { beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, loadSeal } from '../../src/ckks/index.ts';
import { runBatch } from '../../src/inference/batch.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { calibrate } from '../../src/inference/calibrate.ts';
import { runPlain } from '../../src/inference/execute.ts';
import type { Tensor } from '../../src/inference/onnx.ts';
import { parseOnnx, sizeOf } from '../../src/inference/onnx.ts';
import { packSingleInput, prepareSingle, runSingle } from '../../src/inference/single.ts';
import type { OperatorCase } from '../he-fixtures.ts';
import { centredTensor, ckksErrorUnit, errorDeviation, i64, NOISE_TAIL, seededRand } from '../he-fixtures.ts';

// Models mixing the operator variants of test/he-operators.test.ts (each checked there against
// onnxruntime) through both CKKS plans, against the plaintext executor on the calibrated model.
const rand0 = seededRand(778);
const rand = (): number => rand0() - 0.5;
const tensor = (dims: number[], scale = 1): Tensor => centredTensor(rand0, dims, scale);

describe('the operator variants through both CKKS plans, against the plaintext executor', () => {
  let seal: Awaited<ReturnType<typeof loadSeal>>;
  beforeAll(async () => {
    seal = await loadSeal();
  });
  const MODELS: OperatorCase[] = [
    {
      name: 'fixed batch [1, 2, 6, 6]: Pad reflect → grouped Conv → x² → AveragePool (ceil, count_include_pad) → Slice → Reshape → Gemm',
      opset: 13,
      input: [1, 2, 6, 6],
      build: (b, x) => {
        const p = b.node('Pad', [x, b.init('p', i64([0, 0, 1, 1, 0, 0, 1, 1]))], { mode: 'reflect' });
        const c = b.node('Conv', [p, b.init('w', tensor([4, 1, 3, 3], 0.5)), b.init('b', tensor([4]))], { group: 2 });
        const sq = b.node('Mul', [c, c]);
        const a = b.node('AveragePool', [sq], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 1, count_include_pad: 1 });
        const s = b.node('Slice', [a, b.init('st', i64([1])), b.init('en', i64([3])), b.init('ax', i64([1]))]);
        const f = b.node('Reshape', [s, b.node('Constant', [], { value_ints: [1, -1] })]);
        return b.node('Gemm', [f, b.init('fw', tensor([3, 18], 0.5)), b.init('fb', tensor([3]))], { transB: 1 });
      },
    },
    {
      name: 'symbolic batch [N, 3, 8]: depthwise Conv 1-D → Gelu → AveragePool 1-D → Flatten → Gemm',
      opset: 20,
      input: [3, 8],
      build: (b, x) => {
        const c = b.node('Conv', [x, b.init('w', tensor([3, 1, 3])), b.init('b', tensor([3]))], { group: 3, pads: [1, 1] });
        const g = b.node('Gelu', [c], {}, 'gelu_1');
        const a = b.node('AveragePool', [g], { kernel_shape: [3], strides: [2], pads: [1, 1], count_include_pad: 0 });
        return b.node('Gemm', [b.node('Flatten', [a]), b.init('fw', tensor([2, 12])), b.init('fb', tensor([2]))], { transB: 1 });
      },
    },
  ];
  for (const c of MODELS) {
    it(c.name, async () => {
      const b = new GraphBuilder(c.opset);
      const fixed = c.input.length === 4;
      const x = b.input('x', fixed ? c.input : [null, ...c.input]);
      b.output(c.build(b, x));
      const graph = parseOnnx(b.toBytes());
      const sample = fixed ? c.input.slice(1) : c.input;
      const per = sizeOf(sample);
      const calib = { dims: [32, ...sample], data: Float64Array.from({ length: 32 * per }, () => rand() * 2) };
      const { graph: calibrated, keyParams } = calibrate(seal, graph, calib, { degree: 4 });
      expect(calibrated.inputs[0]!.dims).toEqual(graph.inputs[0]!.dims);
      const samples = Array.from({ length: 3 }, () => Float64Array.from({ length: per }, () => rand() * 2));
      const want = samples.map((s) => runPlain(calibrated, { dims: [1, ...sample], data: s }).data);
      // Tolerance per output: NOISE_TAIL standard deviations of the CKKS error propagated through
      // the calibrated model (test/he-fixtures.ts), per plan.
      const sd = samples.map((s) => errorDeviation(calibrated, { dims: [1, ...sample], data: s }));
      const { scaleBits, polyModulusDegree, coeffModulusBits } = keyParams.params;
      const ctx = await CkksContext.create(keyParams.params, { galoisSteps: keyParams.galoisSteps });
      try {
        const inputs = Array.from({ length: per }, (_, j) => ctx.encryptVector(samples.map((v) => v[j]!)));
        const outs = runBatch(ctx, calibrated, inputs, { consumeInputs: true });
        outs.forEach((v, j) => {
          const got = ctx.decryptVector(v, samples.length);
          got.forEach((g, s) => expect(Math.abs(g - want[s]![j]!)).toBeLessThan(NOISE_TAIL * sd[s]![j]! * ckksErrorUnit(scaleBits, polyModulusDegree)));
          v.delete();
        });
        for (const v of inputs) v.delete();
        using prepared = prepareSingle(ctx, calibrated);
        using xv = ctx.encryptVector(packSingleInput(prepared.plan, samples[0]!, ctx.slotCount));
        using y = runSingle(ctx, prepared, xv);
        const slots = ctx.decryptVector(y, ctx.slotCount);
        const perMap = prepared.plan.cost.rotations / Math.max(1, prepared.plan.steps.filter((st) => st.kind === 'map').length);
        const unit = ckksErrorUnit(scaleBits, polyModulusDegree, { dataPrimes: coeffModulusBits.length - 1, keySwitches: Math.max(1, perMap) });
        prepared.plan.outputSlots.forEach((j, k) => expect(Math.abs(slots[j]! - want[0]![k]!)).toBeLessThan(NOISE_TAIL * sd[0]![k]! * unit));
      } finally {
        ctx.delete();
      }
    });
  }
});
