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
 * Standard deviation of the CKKS error on every output of `graph` at `input`, in units of one
 * operation's error (see {@link ckksErrorUnit}), under the usual heuristic that the errors of
 * distinct operations are independent and centred (Costache, Curtis, Hales, Murphy, Ogilvie,
 * Player, "On the precision loss in approximate homomorphic encryption", SAC 2023, §3): fresh
 * inputs carry 1; an affine map Σ k_i·x_i + b carries √(Σ k_i²·e_i² + 1); a product a·b carries
 * √(a²·e_b² + b²·e_a² + 1) (first order). The result follows the model's own magnitudes (after
 * two x² layers the error grows with the squared activations), which a fixed absolute tolerance
 * cannot.
 *
 * @example
 * ```ts
 * const sd = errorDeviation(graph, input); // |decrypted − plaintext| ≤ NOISE_TAIL·sd[i]·unit for output i
 * ```
 */
export function errorDeviation(graph: Graph, input: Tensor): Float64Array {
  type E = { readonly v: number; readonly e2: number };
  const algebra: Algebra<E | number> = {
    lin: (terms, bias) => {
      let v = bias;
      let e2 = 0;
      let symbolic = false;
      for (const [x, k] of terms) {
        if (typeof x === 'number') v += k * x;
        else {
          v += k * x.v;
          e2 += k * k * x.e2;
          symbolic = true;
        }
      }
      return symbolic ? { v, e2: e2 + 1 } : v;
    },
    mul: (a, b) => {
      if (typeof a === 'number' || typeof b === 'number') return algebra.lin([[typeof a === 'number' ? b : a, typeof a === 'number' ? a : (b as number)]], 0);
      return { v: a.v * b.v, e2: a.v * a.v * b.e2 + b.v * b.v * a.e2 + 1 };
    },
    nonlinear: (op, a, node) => (typeof a === 'number' ? PLAIN.nonlinear(op, a, node) : { v: PLAIN.nonlinear(op, a.v, node), e2: Infinity }),
  };
  const [y] = execute(graph, algebra, [{ dims: input.dims, data: Array.from(input.data, (v) => ({ v, e2: 1 })) }]);
  return Float64Array.from(y!.data, (x) => (typeof x === 'number' ? 0 : Math.sqrt(x.e2)));
}

/**
 * Standard deviation of the error one CKKS operation adds at scale Δ = 2^scaleBits in ring
 * degree n (slot domain). Batch plan: the rescale's rounding dominates, √(n/12·(1 + h))/Δ with
 * h = 2n/3 the expected weight of SEAL's uniform ternary secret (Cheon, Kim, Kim, Song,
 * ASIACRYPT 2017, Lemma 2). Single plan: each linear map also sums `keySwitches` rotations, each a
 * hybrid key switch with one special prime P ≥ the data primes, ≈ n·σ·√ℓ/Δ for ℓ data primes and
 * σ = 3.2 (Kim, Polyakov, Zucca, ASIACRYPT 2021, §3.3), independent, so √keySwitches of them.
 */
export function ckksErrorUnit(scaleBits: number, polyModulusDegree: number, single?: { readonly dataPrimes: number; readonly keySwitches: number }): number {
  const n = polyModulusDegree;
  const rescale = Math.sqrt((n / 12) * (1 + (2 * n) / 3));
  const keySwitch = single === undefined ? 0 : n * 3.2 * Math.sqrt(single.dataPrimes * single.keySwitches);
  return Math.hypot(rescale, keySwitch) / 2 ** scaleBits;
}

/**
 * Tail factor for {@link errorDeviation}: 10 standard deviations. The σ model is a heuristic
 * (independence, first order, one unit per operation): on the pool test's model the largest of
 * 12,297 batch outputs reached 6.1 σ, so 6 would not hold as a bound; 10 leaves that margin.
 */
export const NOISE_TAIL = 10;

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
