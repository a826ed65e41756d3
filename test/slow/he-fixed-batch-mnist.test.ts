import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../../src/inference/he.ts';
import { readNpy, writeNpy } from '../../src/inference/npy.ts';
import type { Tensor } from '../../src/inference/onnx.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';

// HE-MAN's MNIST demo shape, at SIDE × SIDE (its model file is not available offline; the
// structure is rebuilt with the project's builder): the model declares a fixed input [1, 1, SIDE, SIDE], flattens with a
// constant Reshape [1, −1] as a fixed-batch export does, and is calibrated on an archive of 500
// samples. keyparams must calibrate sample by sample, keep the declared shapes in the calibrated
// model, and both packings must serve batches of several samples.
const SIDE = 28;
const PER = SIDE * SIDE;
const CONV = Math.floor((SIDE + 2 - 5) / 3) + 1;
let seed = 18;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const t = (dims: number[], scale: number): Tensor => ({ dims, data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * scale) });
const i64 = (values: number[]): Tensor => ({ dims: [values.length], data: Float64Array.from(values), type: 'int64' });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-heman-'));
  const b = new GraphBuilder(13);
  const x = b.input('input', [1, 1, SIDE, SIDE]);
  const c = b.node('Conv', [x, b.init('conv.weight', t([2, 1, 5, 5], 0.6)), b.init('conv.bias', t([2], 0.2))], { kernel_shape: [5, 5], strides: [3, 3], pads: [1, 1, 1, 1] }, 'conv');
  b.declare(c, [1, 2, CONV, CONV]);
  const sq = b.node('Mul', [c, c], {}, 'square');
  const f = b.node('Reshape', [sq, b.init('flat_shape', i64([1, -1]))], {}, 'flatten');
  b.declare(f, [1, 2 * CONV * CONV]);
  const out = b.node('Gemm', [f, b.init('fc.weight', t([10, 2 * CONV * CONV], 0.3)), b.init('fc.bias', t([10], 0.2))], { transB: 1 }, 'fc');
  b.output(out, [1, 10]);
  await writeFile(join(dir, 'model.onnx'), b.toBytes());
  await writeFile(join(dir, 'calibration.npy'), writeNpy({ dims: [500, 1, SIDE, SIDE], data: Float64Array.from({ length: 500 * PER }, rand) }));
  await writeFile(join(dir, 'four.npy'), writeNpy({ dims: [4, 1, SIDE, SIDE], data: Float64Array.from({ length: 4 * PER }, rand) }));
});

async function onnxruntime(model: string, data: Float64Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(await readFile(model));
  const out: number[] = [];
  // The declared batch is 1: onnxruntime runs sample by sample too.
  for (let s = 0; s < data.length / PER; s++) {
    const r = await session.run({ input: new ort.Tensor('float32', Float32Array.from(data.subarray(s * PER, (s + 1) * PER)), [1, 1, SIDE, SIDE]) });
    out.push(...(r[session.outputNames[0]!]!.data as Float32Array));
  }
  await session.release();
  return Float32Array.from(out);
}

describe('a model with a fixed batch of 1 (HE-MAN demo shape)', () => {
  it('calibrates on 500 samples, keeps [1, 1, SIDE, SIDE], and serves batches in both packings', async () => {
    const { keyParams, calibratedModel } = await heKeyParams({ model: join(dir, 'model.onnx'), calibration: join(dir, 'calibration.npy'), out: join(dir, 'keyparams.json') });
    expect(keyParams.samples).toBe(500);
    expect(keyParams.inputDims).toEqual([1, 1, SIDE, SIDE]);
    const calibrated = parseOnnx(await readFile(calibratedModel));
    expect(calibrated.inputs[0]!.dims).toEqual([1, 1, SIDE, SIDE]);
    expect(calibrated.declared?.get(calibrated.outputs[0]!)?.dims).toEqual([1, 10]);
    await heKeygen({ keyParams: join(dir, 'keyparams.json'), out: join(dir, 'key') });
    const four = readNpy(await readFile(join(dir, 'four.npy'))).data;
    const want = await onnxruntime(calibratedModel, four);
    for (const packing of ['batch', 'single'] as const) {
      const enc = await heEncrypt({ key: join(dir, 'key'), input: join(dir, 'four.npy'), out: join(dir, `${packing}.enc`), packing });
      expect(enc).toMatchObject({ batch: 4, dims: [1, SIDE, SIDE], packing });
      await heInference({ model: calibratedModel, key: join(dir, 'key.pub'), input: join(dir, `${packing}.enc`), out: join(dir, `${packing}.out`) });
      const got = await heDecrypt({ key: join(dir, 'key'), input: join(dir, `${packing}.out`), out: join(dir, `${packing}.npy`) });
      expect(got.dims).toEqual([4, 10]);
      got.data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(2e-3 * Math.max(1, Math.abs(want[i]!))));
      expect(got.rangeWarning).toBeUndefined();
    }
  });
});
