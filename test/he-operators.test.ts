import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../src/inference/builder.ts';
import { runPlain } from '../src/inference/execute.ts';
import type { Tensor } from '../src/inference/onnx.ts';
import { parseOnnx, sizeOf } from '../src/inference/onnx.ts';
import type { OperatorCase } from './he-fixtures.ts';
import { centredTensor, i64, seededRand } from './he-fixtures.ts';

// Every operator variant the executor claims, against onnxruntime (the reference implementation
// of the ONNX spec) in plaintext: shape and every value. test/slow/he-operators-encrypted.test.ts
// runs models mixing the variants through both CKKS plans against the plaintext executor.
const rand0 = seededRand(777);
const rand = (): number => rand0() - 0.5;
const tensor = (dims: number[], scale = 1): Tensor => centredTensor(rand0, dims, scale);

const CASES: OperatorCase[] = [
  // Shape-15 start/end feeding a Reshape: flatten all but the first and last axes.
  {
    name: 'Shape start/end (opset 15) → Concat → Reshape',
    opset: 15,
    input: [2, 3, 4, 5],
    build: (b, x) => {
      const head = b.node('Shape', [x], { end: 1 });
      const tail = b.node('Shape', [x], { start: -1 });
      const spec = b.node('Concat', [head, b.node('Constant', [], { value_ints: [-1] }), tail], { axis: 0 });
      return b.node('Reshape', [x, spec]);
    },
  },
  { name: 'Shape start past the rank, end before start (opset 19), as a Concat operand', opset: 19, input: [2, 3], build: (b, x) => b.node('Reshape', [x, b.node('Concat', [b.node('Shape', [x], { start: 5 }), b.node('Shape', [x], { start: 1, end: 0 }), b.node('Constant', [], { value_ints: [-1] })], { axis: 0 })]) },
  { name: 'Reshape allowzero = 0 copies a dimension (opset 14)', opset: 14, input: [2, 3, 4], build: (b, x) => b.node('Reshape', [x, b.init('s', i64([0, 0, 2, 2]))], { allowzero: 0 }) },
  { name: 'AveragePool 1-D, pads, strides, ceil_mode, count_include_pad = 1', opset: 19, input: [2, 3, 11], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [3], strides: [2], pads: [1, 2], ceil_mode: 1, count_include_pad: 1 }) },
  { name: 'AveragePool 1-D, count_include_pad = 0, ceil_mode', opset: 11, input: [1, 2, 10], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [4], strides: [3], pads: [2, 1], ceil_mode: 1, count_include_pad: 0 }) },
  { name: 'AveragePool 2-D, asymmetric pads and strides', opset: 13, input: [1, 2, 7, 6], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [3, 2], strides: [2, 3], pads: [1, 0, 0, 1], count_include_pad: 1 }) },
  { name: 'AveragePool 2-D, auto_pad SAME_LOWER', opset: 11, input: [1, 1, 5, 5], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_LOWER' }) },
  { name: 'AveragePool 3-D (the issue: [1, 1, 8, 10, 10] → [1, 1, 4, 5, 5])', opset: 13, input: [1, 1, 8, 10, 10], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }) },
  { name: 'AveragePool 3-D with pads and ceil_mode', opset: 19, input: [1, 2, 5, 4, 6], build: (b, x) => b.node('AveragePool', [x], { kernel_shape: [2, 3, 2], strides: [2, 2, 2], pads: [1, 0, 1, 0, 1, 0], ceil_mode: 1 }) },
  { name: 'GlobalAveragePool 1-D and 3-D', opset: 13, input: [2, 3, 2, 3, 4], build: (b, x) => b.node('GlobalAveragePool', [x]) },
  { name: 'Pad constant, pads and value as inputs (opset 13)', opset: 13, input: [1, 2, 3, 3], build: (b, x) => b.node('Pad', [x, b.init('p', i64([0, 0, 1, 2, 0, 1, 0, 1])), b.init('v', { dims: [], data: Float64Array.of(0.25) })], { mode: 'constant' }) },
  { name: 'Pad edge (opset 11)', opset: 11, input: [1, 2, 3, 4], build: (b, x) => b.node('Pad', [x, b.init('p', i64([0, 0, 2, 1, 0, 0, 1, 2]))], { mode: 'edge' }) },
  { name: 'Pad reflect (opset 13)', opset: 13, input: [1, 1, 4, 5], build: (b, x) => b.node('Pad', [x, b.init('p', i64([0, 0, 2, 3, 0, 0, 3, 1]))], { mode: 'reflect' }) },
  { name: 'Pad as attributes (opset 2), negative pad crops', opset: 2, input: [1, 2, 4, 4], build: (b, x) => b.node('Pad', [x], { mode: 'constant', pads: [0, 0, 1, -1, 0, 0, -1, 2], value: 1.5 }) },
  { name: 'Pad with axes (opset 18) and wrap (opset 19)', opset: 19, input: [1, 2, 3, 4], build: (b, x) => b.node('Pad', [x, b.init('p', i64([2, 1, 1, 3])), b.init('cv', { dims: [], data: Float64Array.of(0) }), b.init('ax', i64([-1, 2]))], { mode: 'wrap' }) },
  { name: 'Conv grouped (group 2) with bias', opset: 11, input: [1, 4, 6, 6], build: (b, x) => b.node('Conv', [x, b.init('w', tensor([6, 2, 3, 3])), b.init('b', tensor([6]))], { group: 2, pads: [1, 1, 1, 1] }) },
  { name: 'Conv depthwise (group = C, MobileFaceNets), stride 2', opset: 13, input: [2, 3, 7, 7], build: (b, x) => b.node('Conv', [x, b.init('w', tensor([3, 1, 3, 3]))], { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { name: 'Conv 1-D with dilation and pads', opset: 11, input: [1, 2, 9], build: (b, x) => b.node('Conv', [x, b.init('w', tensor([3, 2, 3])), b.init('b', tensor([3]))], { dilations: [2], pads: [2, 1] }) },
  { name: 'Conv 2-D with auto_pad SAME_UPPER, stride 2', opset: 11, input: [1, 2, 7, 6], build: (b, x) => b.node('Conv', [x, b.init('w', tensor([2, 2, 2, 3]))], { strides: [2, 2], auto_pad: 'SAME_UPPER' }) },
  { name: 'Conv 3-D', opset: 13, input: [1, 2, 4, 5, 5], build: (b, x) => b.node('Conv', [x, b.init('w', tensor([2, 2, 2, 3, 3]))], { strides: [1, 2, 2] }) },
  {
    name: 'Constant value_float / value_floats / value_int / value_ints (dynamo without optimization)',
    opset: 13,
    input: [2, 3],
    build: (b, x) => {
      const s = b.node('Mul', [x, b.node('Constant', [], { value_float: 2 })]);
      const v = b.node('Add', [s, b.node('Constant', [], { value_floats: [0.5, -1.25, 3] })]);
      const k = b.node('Cast', [b.node('Constant', [], { value_int: 3 })], { to: 1 });
      return b.node('Reshape', [b.node('Sub', [v, k]), b.node('Constant', [], { value_ints: [3, 2] })]);
    },
  },
  {
    name: 'ConstantOfShape → Concat → Reshape → Slice(step −1) → Transpose → Pad (PyTorch F.pad, legacy exporter)',
    opset: 13,
    input: [1, 2, 4, 4],
    build: (b, x) => {
      // pads (1, 2, 0, 1) for the last two axes, extended to rank 4 and reordered the way torch writes it.
      const given = b.init('given', i64([1, 2, 0, 1]));
      const zeros = b.node('ConstantOfShape', [b.init('four', i64([4]))], { value: i64([0], [1]) });
      const all = b.node('Concat', [given, zeros], { axis: 0 });
      const pairs = b.node('Reshape', [all, b.init('m12', i64([-1, 2]))]);
      const rev = b.node('Slice', [pairs, b.init('st', i64([-1])), b.init('en', i64([-9007199254740991])), b.init('axs', i64([0])), b.init('stp', i64([-1]))]);
      const t = b.node('Transpose', [rev], { perm: [1, 0] });
      const pads = b.node('Reshape', [t, b.init('m1', i64([-1]))]);
      return b.node('Pad', [x, pads, b.init('v', { dims: [], data: Float64Array.of(0) })], { mode: 'constant' });
    },
  },
  { name: 'Slice with attributes (opset 1) on a dynamic tensor', opset: 9, input: [2, 6, 5], build: (b, x) => b.node('Slice', [x], { starts: [1, -4], ends: [5, 1000], axes: [1, 2] }) },
  { name: 'Tanh and Gelu (opset 20) in plaintext', opset: 20, input: [2, 7], build: (b, x) => b.node('Add', [b.node('Tanh', [x]), b.node('Gelu', [x])]) },
];

async function onnxruntime(bytes: Uint8Array, flat: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', flat, dims) });
  const t = out[session.outputNames[0]!]!;
  await session.release();
  return { data: t.data as Float32Array, dims: t.dims };
}

describe('operators against onnxruntime (plaintext, every claimed variant)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const b = new GraphBuilder(c.opset);
      const x = b.input('x', c.input);
      b.output(c.build(b, x));
      const bytes = b.toBytes();
      const flat = Float32Array.from({ length: sizeOf(c.input) }, () => rand() * 4);
      const ref = await onnxruntime(bytes, flat, c.input);
      const got = runPlain(parseOnnx(bytes), { dims: c.input, data: Float64Array.from(flat) });
      expect(got.dims).toEqual([...ref.dims]);
      got.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(v))));
    });
  }
});

describe('never a silently wrong tensor', () => {
  it('a shape the executor computes must equal the declared one (value_info), naming the node', () => {
    const b = new GraphBuilder(13);
    const x = b.input('x', [1, 1, 8, 10, 10]);
    const p = b.node('AveragePool', [x], { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }, 'pool3d');
    b.declare(p, [1, 16]); // what a wrong executor computed in the issue
    b.output(b.node('Mul', [p, b.init('two', { dims: [], data: Float64Array.of(2) })]));
    const run = (): unknown => runPlain(parseOnnx(b.toBytes()), { dims: [1, 1, 8, 10, 10], data: new Float64Array(800) });
    expect(run).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_SHAPE_MISMATCH', message: expect.stringContaining('pool3d'), details: expect.objectContaining({ computed: [1, 1, 4, 5, 5], declared: [1, 16] }) }));
    // The right declaration passes, symbolic dims match anything.
    const ok = new GraphBuilder(13);
    const y = ok.input('x', [null, 1, 8, 10, 10]);
    const q = ok.node('AveragePool', [y], { kernel_shape: [2, 2, 2], strides: [2, 2, 2] });
    ok.declare(q, [null, 1, 4, 5, 5]);
    ok.output(q, [null, 1, 4, 5, 5]);
    expect(runPlain(parseOnnx(ok.toBytes()), { dims: [2, 1, 8, 10, 10], data: new Float64Array(1600) }).dims).toEqual([2, 1, 4, 5, 5]);
  });

  it('a Reshape that does not keep the element count is refused (the [1, 1, 28, 28, 144] export)', () => {
    const b = new GraphBuilder(13);
    const x = b.input('x', [1, 16, 12, 12]);
    b.output(b.node('Reshape', [x, b.init('s', i64([1, 1, 28, 28, 144]))], {}, 'bad_view'));
    expect(() => runPlain(parseOnnx(b.toBytes()), { dims: [1, 16, 12, 12], data: new Float64Array(2304) })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_INVALID', message: expect.stringContaining('bad_view') }));
    const two = new GraphBuilder(13);
    const y = two.input('x', [2, 6]);
    two.output(two.node('Reshape', [y, two.init('s', i64([-1, -1]))], {}, 'two_minus'));
    expect(() => runPlain(parseOnnx(two.toBytes()), { dims: [2, 6], data: new Float64Array(12) })).toThrow(expect.objectContaining({ message: expect.stringContaining('two_minus') }));
  });

  it('variants onnxruntime itself does not define are refused, not guessed: dilated AveragePool, dilated SAME Conv', () => {
    const b = new GraphBuilder(19);
    const x = b.input('x', [1, 1, 6]);
    b.output(b.node('AveragePool', [x], { kernel_shape: [2], dilations: [2] }, 'dilated'));
    expect(() => runPlain(parseOnnx(b.toBytes()), { dims: [1, 1, 6], data: new Float64Array(6) })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', message: expect.stringContaining('dilated') }));
    const c = new GraphBuilder(11);
    const y = c.input('x', [1, 1, 6]);
    c.output(c.node('Conv', [y, c.init('w', tensor([1, 1, 3]))], { dilations: [2], auto_pad: 'SAME_UPPER' }, 'same_dilated'));
    expect(() => runPlain(parseOnnx(c.toBytes()), { dims: [1, 1, 6], data: new Float64Array(6) })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', message: expect.stringContaining('same_dilated') }));
  });
});
