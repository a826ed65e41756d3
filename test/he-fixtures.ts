import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../src/inference/builder.ts';
import type { Algebra } from '../src/inference/execute.ts';
import { execute, PLAIN } from '../src/inference/execute.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../src/inference/he.ts';
import { readNpy, writeNpy } from '../src/inference/npy.ts';
import type { Graph, Tensor } from '../src/inference/onnx.ts';
import { parseOnnx, sizeOf } from '../src/inference/onnx.ts';

// Builders shared by the encrypted-inference suites and their slow twins (test/he-*.test.ts,
// test/slow/he-*.test.ts): seeded values, tensors, operator cases, and the fixed-batch suite.

/**
 * A seeded linear congruential generator (glibc's constants) with values in [0, 1): every suite
 * draws the same model weights and inputs on every run.
 */
export function seededRand(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** A float tensor of `dims` with values from `rand`, centred and scaled: (rand() − 0.5)·scale. */
export function centredTensor(rand: () => number, dims: readonly number[], scale = 1): Tensor {
  return { dims: [...dims], data: Float64Array.from({ length: sizeOf(dims) }, () => (rand() - 0.5) * scale) };
}

/** An int64 initializer (shapes, pads, axes). */
export function i64(values: readonly number[], dims: readonly number[] = [values.length]): Tensor {
  return { dims: [...dims], data: Float64Array.from(values), type: 'int64' };
}

/** One operator pattern: a model body built on input `x` of shape `input` at `opset`. */
export interface OperatorCase {
  readonly name: string;
  readonly opset: number;
  readonly input: number[];
  readonly build: (b: GraphBuilder, x: string) => string;
}

/**
 * First-order bound of the CKKS error on every output of `graph` at `input`, in units of `unit`
 * (the error one encryption, rescale or key switch adds, see {@link ckksErrorUnit}): fresh inputs
 * carry 1 unit; an affine map Σ k_i·x_i + b carries Σ |k_i|·e_i + 1 unit; a product a·b carries
 * |a|·e_b + |b|·e_a + e_a·e_b + 1 unit. The bound follows the model's own magnitudes (after two x²
 * layers the error grows with the squared activations), which a fixed absolute tolerance cannot.
 *
 * @example
 * ```ts
 * const bound = errorBound(graph, input); // bound[i] × unit ≥ |decrypted − plaintext| for output i
 * ```
 */
export function errorBound(graph: Graph, input: Tensor): Float64Array {
  type E = { readonly v: number; readonly e: number };
  const algebra: Algebra<E | number> = {
    lin: (terms, bias) => {
      let v = bias;
      let e = 0;
      let symbolic = false;
      for (const [x, k] of terms) {
        if (typeof x === 'number') v += k * x;
        else {
          v += k * x.v;
          e += Math.abs(k) * x.e;
          symbolic = true;
        }
      }
      return symbolic ? { v, e: e + 1 } : v;
    },
    mul: (a, b) => {
      if (typeof a === 'number' || typeof b === 'number') return algebra.lin([[typeof a === 'number' ? b : a, typeof a === 'number' ? a : (b as number)]], 0);
      return { v: a.v * b.v, e: Math.abs(a.v) * b.e + Math.abs(b.v) * a.e + a.e * b.e + 1 };
    },
    nonlinear: (op, a, node) => (typeof a === 'number' ? PLAIN.nonlinear(op, a, node) : { v: PLAIN.nonlinear(op, a.v, node), e: Infinity }),
  };
  const [y] = execute(graph, algebra, [{ dims: input.dims, data: Array.from(input.data, (v) => ({ v, e: 1 })) }]);
  return Float64Array.from(y!.data, (x) => (typeof x === 'number' ? 0 : x.e));
}

/**
 * The error one CKKS operation adds at scale 2^scaleBits in ring degree n, with a safety factor:
 * encoding rounding and fresh-encryption noise are ≈ √n·σ·c/Δ in the canonical embedding (σ = 3.2,
 * c ≈ 6 for a 6σ tail; Cheon et al., ASIACRYPT 2017, Lemma 1 and §3.4), rescaling adds
 * ≈ √(n/12)·‖s‖/Δ, key switching less with a special prime; 4× covers their sum.
 */
export function ckksErrorUnit(scaleBits: number, polyModulusDegree: number): number {
  return (4 * Math.sqrt(polyModulusDegree) * 3.2 * 6) / 2 ** scaleBits;
}

/**
 * HE-MAN's MNIST demo shape, at side × side (its model file is not available offline; the
 * structure is rebuilt with the project's builder): the model declares a fixed input
 * [1, 1, side, side], flattens with a constant Reshape [1, −1] as a fixed-batch export does, and is
 * calibrated on an archive of 500 samples. keyparams must calibrate sample by sample, keep the
 * declared shapes in the calibrated model, and both packings must serve batches of several samples.
 * test/he-fixed-batch.test.ts runs it at 10 × 10, test/slow/he-fixed-batch-mnist.test.ts at 28 × 28.
 */
export function describeFixedBatch(side: number): void {
  const PER = side * side;
  const CONV = Math.floor((side + 2 - 5) / 3) + 1;
  const rand = seededRand(18);
  const t = (dims: number[], scale: number): Tensor => centredTensor(rand, dims, scale);

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-heman-'));
    const b = new GraphBuilder(13);
    const x = b.input('input', [1, 1, side, side]);
    const c = b.node('Conv', [x, b.init('conv.weight', t([2, 1, 5, 5], 0.6)), b.init('conv.bias', t([2], 0.2))], { kernel_shape: [5, 5], strides: [3, 3], pads: [1, 1, 1, 1] }, 'conv');
    b.declare(c, [1, 2, CONV, CONV]);
    const sq = b.node('Mul', [c, c], {}, 'square');
    const f = b.node('Reshape', [sq, b.init('flat_shape', i64([1, -1]))], {}, 'flatten');
    b.declare(f, [1, 2 * CONV * CONV]);
    const out = b.node('Gemm', [f, b.init('fc.weight', t([10, 2 * CONV * CONV], 0.3)), b.init('fc.bias', t([10], 0.2))], { transB: 1 }, 'fc');
    b.output(out, [1, 10]);
    await writeFile(join(dir, 'model.onnx'), b.toBytes());
    await writeFile(join(dir, 'calibration.npy'), writeNpy({ dims: [500, 1, side, side], data: Float64Array.from({ length: 500 * PER }, rand) }));
    await writeFile(join(dir, 'four.npy'), writeNpy({ dims: [4, 1, side, side], data: Float64Array.from({ length: 4 * PER }, rand) }));
  });

  async function onnxruntime(model: string, data: Float64Array): Promise<Float32Array> {
    const session = await ort.InferenceSession.create(await readFile(model));
    const out: number[] = [];
    // The declared batch is 1: onnxruntime runs sample by sample too.
    for (let s = 0; s < data.length / PER; s++) {
      const r = await session.run({ input: new ort.Tensor('float32', Float32Array.from(data.subarray(s * PER, (s + 1) * PER)), [1, 1, side, side]) });
      out.push(...(r[session.outputNames[0]!]!.data as Float32Array));
    }
    await session.release();
    return Float32Array.from(out);
  }

  describe(`a model with a fixed batch of 1 (HE-MAN demo shape, ${side} × ${side})`, () => {
    it('calibrates on 500 samples, keeps [1, 1, side, side], and serves batches in both packings', async () => {
      const { keyParams, calibratedModel } = await heKeyParams({ model: join(dir, 'model.onnx'), calibration: join(dir, 'calibration.npy'), out: join(dir, 'keyparams.json') });
      expect(keyParams.samples).toBe(500);
      expect(keyParams.inputDims).toEqual([1, 1, side, side]);
      const calibrated = parseOnnx(await readFile(calibratedModel));
      expect(calibrated.inputs[0]!.dims).toEqual([1, 1, side, side]);
      expect(calibrated.declared?.get(calibrated.outputs[0]!)?.dims).toEqual([1, 10]);
      await heKeygen({ keyParams: join(dir, 'keyparams.json'), out: join(dir, 'key') });
      const four = readNpy(await readFile(join(dir, 'four.npy'))).data;
      const want = await onnxruntime(calibratedModel, four);
      for (const packing of ['batch', 'single'] as const) {
        const enc = await heEncrypt({ key: join(dir, 'key'), input: join(dir, 'four.npy'), out: join(dir, `${packing}.enc`), packing });
        expect(enc).toMatchObject({ batch: 4, dims: [1, side, side], packing });
        await heInference({ model: calibratedModel, key: join(dir, 'key.pub'), input: join(dir, `${packing}.enc`), out: join(dir, `${packing}.out`) });
        const got = await heDecrypt({ key: join(dir, 'key'), input: join(dir, `${packing}.out`), out: join(dir, `${packing}.npy`) });
        expect(got.dims).toEqual([4, 10]);
        got.data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(2e-3 * Math.max(1, Math.abs(want[i]!))));
        expect(got.rangeWarning).toBeUndefined();
      }
    });
  });
}
