import { describe, expect, it } from 'vitest';
import { binarySteps, CkksContext, loadSeal, powerOfTwoSteps } from '../src/ckks/index.ts';
import { runPlain } from '../src/inference/execute.ts';
import { GraphBuilder } from '../src/inference/builder.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import type { Tensor } from '../src/inference/onnx.ts';
import { parseOnnx, sizeOf } from '../src/inference/onnx.ts';
import { compileSingle, packSingleInput, preparedSingleBytes, prepareSingle, runSingle } from '../src/inference/single.ts';

// Keys that fit: keyparams states key.pub and keygen memory before keygen, and keeps key.pub
// under the budget by trading keys for key switches (the chained steps → ±2^k → +2^k, whichever has
// fewer keys), then by dropping the
// single plan (auto) or refusing (single), naming the budget.
let seed = 31;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
};
const t = (dims: number[]): Tensor => ({ dims, data: Float64Array.from({ length: sizeOf(dims) }, rand) });

function model() {
  const b = new GraphBuilder(13);
  const x = b.input('x', [null, 1, 8, 8]);
  const c = b.node('Conv', [x, b.init('w1', t([2, 1, 3, 3])), b.init('b1', t([2]))]);
  const f = b.node('Flatten', [b.node('Mul', [c, c])], { axis: 1 });
  b.output(b.node('Gemm', [f, b.init('w2', t([72, 3])), b.init('b2', t([3]))]));
  return parseOnnx(b.toBytes());
}

describe('key budget at keyparams', () => {
  it('the plan\'s chained keys within the budget; below them batch only, or refused', async () => {
    const seal = await loadSeal();
    const graph = model();
    const calib = { dims: [16, 1, 8, 8], data: Float64Array.from({ length: 16 * 64 }, rand) };
    const exact = calibrate(seal, graph, calib).keyParams;
    const plan = compileSingle(calibrate(seal, graph, calib).graph);
    expect(exact.keys).toMatchObject({ rotationKeys: 'exact', galoisKeys: plan.galoisSteps.length });
    expect(exact.galoisSteps).toEqual(plan.galoisSteps);
    const per = exact.keys.publicKeyBytes;
    expect(exact.keys.keygenPeakBytes).toBeGreaterThan(per);

    // The plan's own steps are the chained schedule's (a few per map); the ±2^k and binary tiers
    // only apply when they hold fewer keys, which for this two-map model they do not: one key under
    // the exact set's size leaves the batch plan alone.
    const slots = exact.params.polyModulusDegree / 2;
    expect(powerOfTwoSteps(plan.galoisSteps, slots).length).toBeGreaterThanOrEqual(plan.galoisSteps.length);
    expect(binarySteps(plan.galoisSteps, slots).length).toBeGreaterThanOrEqual(plan.galoisSteps.length);
    expect(plan.galoisSteps.length).toBeLessThan(plan.directSteps.length);
    const under = calibrate(seal, graph, calib, { maxKeyBytes: per - 1 }).keyParams;
    expect(under).toMatchObject({ packing: 'batch', galoisSteps: [] });
    expect(under.keys.note).toMatch(/only the batch plan/);

    const tiny = calibrate(seal, graph, calib, { maxKeyBytes: 2 ** 20 }).keyParams;
    expect(tiny).toMatchObject({ packing: 'batch', galoisSteps: [] });
    expect(tiny.plans.single).toBeUndefined();
    expect(tiny.keys.note).toMatch(/only the batch plan/);
    expect(() => calibrate(seal, graph, calib, { maxKeyBytes: 2 ** 20, packing: 'single' })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_KEYPARAMS_TOO_SMALL', param: 'maxKeyBytes' }));
  });

  it('the single plan runs on ±2^k keys: each rotation chained from them (it was refused as missing keys)', async () => {
    const seal = await loadSeal();
    const graph = model();
    const calib = { dims: [16, 1, 8, 8], data: Float64Array.from({ length: 16 * 64 }, rand) };
    const { graph: calibrated, keyParams } = calibrate(seal, graph, calib);
    const steps = powerOfTwoSteps(keyParams.galoisSteps, keyParams.params.polyModulusDegree / 2);
    const ctx = await CkksContext.create(keyParams.params, { galoisSteps: steps });
    try {
      const x = Float64Array.from({ length: 64 }, rand);
      const want = runPlain(calibrated, { dims: [1, 1, 8, 8], data: x }).data;
      using prepared = prepareSingle(ctx, calibrated);
      expect(prepared.plan.galoisSteps.some((st) => !steps.includes(st))).toBe(true);
      // keyparams' expected diagonal memory bounds what prepareSingle holds (zero diagonals are not stored).
      let held = 0;
      for (const ms of prepared.matrices) for (const m of ms) for (const row of m.plain.values()) for (const pt of row.values()) held += 8 * pt.coeffCount();
      expect(keyParams.plans.single!.diagonalBytes).toBe(preparedSingleBytes(prepared.plan, keyParams.params.polyModulusDegree, ctx.maxLevel));
      expect(held).toBeGreaterThan(0.5 * keyParams.plans.single!.diagonalBytes!);
      expect(held).toBeLessThanOrEqual(keyParams.plans.single!.diagonalBytes!);
      using xv = ctx.encryptVector(packSingleInput(prepared.plan, x, ctx.slotCount));
      using y = runSingle(ctx, prepared, xv);
      const slots = ctx.decryptVector(y, ctx.slotCount);
      prepared.plan.outputSlots.forEach((j, k) => expect(Math.abs(slots[j]! - want[k]!)).toBeLessThan(5e-3 * Math.max(1, Math.abs(want[k]!))));
    } finally {
      ctx.delete();
    }
  });
});
