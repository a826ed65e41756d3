import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadSeal } from '../../src/ckks/index.ts';
import { batchCost, batchDepth, recordBatch } from '../../src/inference/batch.ts';
import { calibrate } from '../../src/inference/calibrate.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { readIdx } from '../../src/inference/idx.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';

// The bundled LeNet-5 with Relu and average pooling (examples/he/lenet5_relu.onnx, trained by
// scripts/train-lenet5.ts with the project's engine): `he keyparams` with its defaults replaces
// each Relu by its per-layer fit weighted by the calibrated inputs (degree 2^k from the target
// error); the chain must fit N = 16384 at 128-bit security (≤ 438 bits of modulus) and the
// approximated model must agree with onnxruntime on the original Relu model's argmax on at least
// the measured share of test digits (docs/inference.md; the target is 97 %). The
// polynomial model runs in the plaintext executor: what both CKKS plans compute up to their noise
// (the encrypted runs are `bench he --model lenet5` and the x² models' tests).
const HE = new URL('../../examples/he/', import.meta.url);
const DATA = new URL('../../examples/data/mnist/', import.meta.url);
const DIGITS = 1000;
/** Measured with these defaults: 976 of the first 1,000 test digits (docs/inference.md). */
const AGREEMENT = 0.97;

const argmax = (a: ArrayLike<number>, off: number): number => {
  let best = 0;
  for (let k = 1; k < 10; k++) if (a[off + k]! > a[off + best]!) best = k;
  return best;
};

describe('LeNet-5 with Relu (HE-MAN evaluation model class)', () => {
  it(`default fits: N = 16384 at 128-bit security, and the approximated model agrees with the original on ≥ ${AGREEMENT * 100} % of ${DIGITS} test digits; the batch plan stays within its cost model`, async () => {
    const images = readIdx(await readFile(new URL('t10k-images-idx3-ubyte.gz', DATA)));
    const count = images.dims[0]!;
    const bytes = await readFile(new URL('lenet5_relu.onnx', HE));
    const graph = parseOnnx(bytes);
    const calib = Float64Array.from(images.data.subarray((count - 500) * 784), (v) => v / 255);
    const seal = await loadSeal();
    const { graph: calibrated, keyParams } = calibrate(seal, graph, { dims: [500, 1, 28, 28], data: calib }, { packing: 'batch' });
    expect(keyParams.activations.map((a) => a.op)).toEqual(['Relu', 'Relu', 'Relu', 'Relu']);
    const p = keyParams.params;
    expect(p.polyModulusDegree).toBe(16384);
    expect(p.coeffModulusBits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(seal.CoeffModulus.MaxBitCount(16384, seal.SecLevelType.tc128));
    for (const a of keyParams.activations) {
      expect(Number.isInteger(Math.log2(a.degree))).toBe(true);
      expect(a.meanError).toBeLessThanOrEqual(a.maxError);
    }
    // 5 linear levels (Conv, Conv, Gemm, Gemm, Gemm; pooling merges) + ⌈log2 degree⌉ per Relu.
    expect(keyParams.depth).toBe(5 + keyParams.activations.reduce((s, a) => s + a.depth, 0));
    const x = Float64Array.from(images.data.subarray(0, DIGITS * 784), (v) => v / 255);
    const approx: number[] = [];
    for (let s = 0; s < DIGITS; s += 100) approx.push(...runPlain(calibrated, { dims: [100, 1, 28, 28], data: x.subarray(s * 784, (s + 100) * 784) }).data);
    const session = await ort.InferenceSession.create(bytes);
    const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(x), [DIGITS, 1, 28, 28]) });
    const ref = res[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    let agree = 0;
    for (let i = 0; i < DIGITS; i++) if (argmax(approx, i * 10) === argmax(ref, i * 10)) agree++;
    console.log(`lenet5_relu: degrees ${keyParams.activations.map((a) => a.degree).join(', ')}, depth ${keyParams.depth}, N = ${p.polyModulusDegree}; argmax agreement ${agree}/${DIGITS}`);
    expect(agree / DIGITS).toBeGreaterThanOrEqual(AGREEMENT);

    // A materialized form (each polynomial's t) enters the next layer as its ciphertext: before,
    // each degree-1 term carried the previous layer's whole form along and calibration ran out of
    // memory. The cost model counts exactly the terms the recorded program combines, and its
    // depth is the levels the program uses.
    const program = recordBatch(calibrated, 40);
    const terms = program.instrs.reduce((s, ins) => s + (ins.op === 'lc' ? ins.ins.length : 0), 0);
    expect(batchCost(calibrated).scalarProducts).toBe(terms);
    expect(keyParams.plans.batch!.plainProducts).toBe(terms);
    // A pooled Relu polynomial (c_k/4 on the four t^k of each window) enters the next layer as one
    // sum per power: 1,303,416 terms with the default fits, 4,759,416 when each t^k was its own term.
    expect(terms).toBeLessThan(1_400_000);
    const levels = new Map<number, number>();
    for (let i = 0; i < program.inputs; i++) levels.set(i, 40);
    for (const ins of program.instrs) {
      const lv = ins.op === 'lc' ? Math.min(...ins.ins.map((id) => levels.get(id)!)) - 1 : ins.op === 'mul' ? Math.min(levels.get(ins.a)!, levels.get(ins.b)!) - 1 : ins.op === 'toLevel' ? ins.level : ins.op === 'const' ? 40 : ins.op === 'sum' ? Math.min(...ins.ins.map((id) => levels.get(id)!)) : levels.get(ins.a)!;
      levels.set(ins.out, lv);
    }
    expect(40 - Math.min(...program.outputs.map((id) => levels.get(id)!))).toBe(batchDepth(calibrated));
  });
});
