import { describe, expect, it } from 'vitest';
import { CkksContext, loadSeal } from '../../src/ckks/index.ts';
import { runBatch } from '../../src/inference/batch.ts';
import { calibrate } from '../../src/inference/calibrate.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { parseOnnx, sizeOf } from '../../src/inference/onnx.ts';
import { packSingleInput, prepareSingle, runSingle } from '../../src/inference/single.ts';
import { exporterPatterns } from '../exporter-patterns.ts';

// Every exporter pattern (each checked against onnxruntime in test/he-exporters.test.ts),
// calibrated, through both CKKS plans against the plaintext executor on the calibrated model.
let seed = 7;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

describe('exporter patterns through both CKKS plans', () => {
  for (const e of exporterPatterns()) {
    it(e.name, async () => {
      const seal = await loadSeal();
      const graph = parseOnnx(e.bytes);
      const sample = e.input.slice(1) as number[];
      const per = sizeOf(sample);
      const calib = { dims: [32, ...sample], data: Float64Array.from({ length: 32 * per }, () => rand() * 2) };
      const { graph: calibrated, keyParams } = calibrate(seal, graph, calib, { degree: 3 });
      const samples = Array.from({ length: 3 }, () => Float64Array.from({ length: per }, () => rand() * 2));
      const want = samples.map((s) => runPlain(calibrated, { dims: [1, ...sample], data: s }).data);
      const tol = (v: number): number => 5e-3 * Math.max(1, Math.abs(v));
      const ctx = await CkksContext.create(keyParams.params, { galoisSteps: keyParams.galoisSteps });
      try {
        const inputs = Array.from({ length: per }, (_, j) => ctx.encryptVector(samples.map((v) => v[j]!)));
        const outs = runBatch(ctx, calibrated, inputs, { consumeInputs: true });
        outs.forEach((v, j) => {
          ctx.decryptVector(v, 3).forEach((g, s) => expect(Math.abs(g - want[s]![j]!)).toBeLessThan(tol(want[s]![j]!)));
          v.delete();
        });
        for (const v of inputs) v.delete();
        using prepared = prepareSingle(ctx, calibrated);
        using xv = ctx.encryptVector(packSingleInput(prepared.plan, samples[0]!, ctx.slotCount));
        using y = runSingle(ctx, prepared, xv);
        const slots = ctx.decryptVector(y, ctx.slotCount);
        prepared.plan.outputSlots.forEach((j, k) => expect(Math.abs(slots[j]! - want[0]![k]!)).toBeLessThan(tol(want[0]![k]!)));
      } finally {
        ctx.delete();
      }
    });
  }
});
