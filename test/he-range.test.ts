import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseCkksParameters, CkksContext, loadSeal } from '../src/ckks/index.ts';
import { runBatch } from '../src/inference/batch.ts';
import { GraphBuilder } from '../src/inference/builder.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../src/inference/he.ts';
import { writeNpy } from '../src/inference/npy.ts';
import type { Graph } from '../src/inference/onnx.ts';
import { parseOnnx } from '../src/inference/onnx.ts';

// Range safety. Adversary: none (an honest user with large activations); the failure is silent
// wrap-around modulo the last prime. A polynomial model calibrated on inputs up to 200 must get
// parameters whose last prime holds its range with headroom, and decrypt right at the top of the
// range; the parameters the old rule chose (last prime capped at 60 bits at scale 2^30) wrap
// around on the same input, so the check can fail. A range no prime can hold is refused, naming
// the layer; decrypted values far outside the calibrated output range are flagged.

function powerModel(squarings: number): Graph {
  const b = new GraphBuilder(13);
  let v = b.node('Gemm', [b.input('x', [null, 1]), b.init('w', { dims: [1, 1], data: Float64Array.of(1) }), b.init('b', { dims: [1], data: Float64Array.of(0) })], {}, 'linear');
  for (let i = 0; i < squarings; i++) v = b.node('Mul', [v, v], {}, `square_${i + 1}`);
  b.output(v);
  return parseOnnx(b.toBytes());
}

const calibration = { dims: [64, 1], data: Float64Array.from({ length: 64 }, (_, i) => (200 * i) / 63) };

async function decryptAt(graph: Graph, params: Parameters<typeof CkksContext.create>[0], x: number): Promise<number> {
  const ctx = await CkksContext.create(params);
  try {
    // Every slot at x: the polynomial's constant coefficient is then x·Δ, the worst case for wrap-around
    // (one non-zero slot spreads x·Δ over the coefficients and hides the problem).
    const input = ctx.encryptVector(new Float64Array(ctx.slotCount).fill(x));
    const [y] = runBatch(ctx, graph, [input], { consumeInputs: true });
    const v = ctx.decryptVector(y!, 1)[0]!;
    y!.delete();
    return v;
  } finally {
    ctx.delete();
  }
}

describe('range safety', () => {
  it('x⁴ on inputs up to 200: parameters with headroom decrypt the top of the range; the old rule wraps around', async () => {
    const seal = await loadSeal();
    const graph = powerModel(2);
    const { keyParams } = calibrate(seal, graph, calibration, { packing: 'batch' });
    expect(keyParams.maxAbs).toBeCloseTo(200 ** 4, -3);
    const last = keyParams.params.coeffModulusBits[0]!;
    expect(last - keyParams.params.scaleBits).toBeGreaterThanOrEqual(Math.log2(200 ** 4) + 4);
    const want = 199 ** 4;
    const got = await decryptAt(graph, keyParams.params, 199);
    expect(Math.abs(got - want) / want).toBeLessThan(1e-3);
    // The rule before range safety: scale 2^30, last prime min(60, 30 + intBits).
    const old = chooseCkksParameters(seal, { depth: keyParams.depth, scaleBits: 30, outerBits: 60, minPolyModulusDegree: 8192 });
    const wrapped = await decryptAt(graph, old, 199);
    expect(Math.abs(wrapped - want) / want).toBeGreaterThan(0.1);
  });

  it('a range no 60-bit prime can hold is refused, naming the layer and its range', () => {
    const seal = Promise.resolve(loadSeal());
    return seal.then((s) => {
      expect(() => calibrate(s, powerModel(3), calibration, { packing: 'batch' })).toThrow(
        expect.objectContaining({ code: 'CIPHERML_E_HE_RANGE_UNSAFE', param: 'calibration', message: expect.stringContaining('square_3'), details: expect.objectContaining({ node: 'square_3' }) }),
      );
      expect(() => calibrate(s, powerModel(2), calibration, { packing: 'batch', scaleBits: 30 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_HE_RANGE_UNSAFE', param: 'scaleBits' }));
    });
  });

  it('he decrypt flags values far outside the calibrated output range, and only those', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-range-'));
    const b = new GraphBuilder(13);
    const h = b.node('Gemm', [b.input('x', [null, 2]), b.init('w', { dims: [2, 2], data: Float64Array.of(1, 0.5, -0.5, 1) }), b.init('b', { dims: [2], data: Float64Array.of(0.1, -0.1) })]);
    b.output(b.node('Mul', [h, h]));
    await writeFile(join(dir, 'model.onnx'), b.toBytes());
    await writeFile(join(dir, 'calib.npy'), writeNpy({ dims: [32, 2], data: Float64Array.from({ length: 64 }, (_, i) => (i % 7) / 7) }));
    await writeFile(join(dir, 'in.npy'), writeNpy({ dims: [2, 2], data: Float64Array.of(0.5, 0.25, 0.3, 0.6) }));
    await writeFile(join(dir, 'far.npy'), writeNpy({ dims: [2, 2], data: Float64Array.of(0.5, 0.25, 9, -7) }));
    const { calibratedModel } = await heKeyParams({ model: join(dir, 'model.onnx'), calibration: join(dir, 'calib.npy'), out: join(dir, 'kp.json'), packing: 'batch' });
    await heKeygen({ keyParams: join(dir, 'kp.json'), out: join(dir, 'key') });
    for (const name of ['in', 'far']) {
      await heEncrypt({ key: join(dir, 'key'), input: join(dir, `${name}.npy`), out: join(dir, `${name}.enc`) });
      await heInference({ model: calibratedModel, key: join(dir, 'key.pub'), input: join(dir, `${name}.enc`), out: join(dir, `${name}.out`) });
    }
    const ok = await heDecrypt({ key: join(dir, 'key'), input: join(dir, 'in.out'), out: join(dir, 'in.res.npy') });
    expect(ok.rangeWarning).toBeUndefined();
    const far = await heDecrypt({ key: join(dir, 'key'), input: join(dir, 'far.out'), out: join(dir, 'far.res.npy') });
    expect(far.rangeWarning).toMatchObject({ count: 2 });
    expect(far.rangeWarning!.worst.index).toBeGreaterThanOrEqual(2);
  });
});
