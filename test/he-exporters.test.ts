import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { runPlain } from '../src/inference/execute.ts';
import { parseOnnx, sizeOf } from '../src/inference/onnx.ts';
import { exporterPatterns } from './exporter-patterns.ts';

// The plaintext executor against onnxruntime on every exporter pattern (test/exporter-patterns.ts),
// on 3 samples (a fixed batch of 1 runs them one at a time, as onnxruntime must too).
// test/slow/he-exporters-encrypted.test.ts runs them through both CKKS plans.
let seed = 99;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

describe('exporter patterns: plaintext executor against onnxruntime', () => {
  for (const e of exporterPatterns()) {
    it(e.name, async () => {
      const session = await ort.InferenceSession.create(e.bytes);
      const graph = parseOnnx(e.bytes);
      const sample = e.input.slice(1) as number[];
      const fixed = e.input[0] !== null;
      const per = sizeOf(sample);
      const data = Float32Array.from({ length: 3 * per }, () => rand() * 2);
      const runs = fixed ? [0, 1, 2].map((s) => ({ n: 1, off: s * per })) : [{ n: 3, off: 0 }];
      for (const { n, off } of runs) {
        const x = data.subarray(off, off + n * per);
        const ref = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(x), [n, ...sample]) }))[session.outputNames[0]!]!;
        const got = runPlain(graph, { dims: [n, ...sample], data: Float64Array.from(x) });
        expect(got.dims).toEqual([...ref.dims]);
        const want = ref.data as Float32Array;
        got.data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(v))));
      }
      await session.release();
    });
  }
});
