import { GraphBuilder } from '../src/inference/builder.ts';
import type { Tensor } from '../src/inference/onnx.ts';
import { sizeOf } from '../src/inference/onnx.ts';

/**
 * Small models in the exact node patterns real exporters write (no PyTorch or TensorFlow on this
 * machine, so the patterns are rebuilt with the project's builder from the exporters' documented
 * output): PyTorch's legacy TorchScript exporter (opsets 13–20), the dynamo exporter (opsets 18–23,
 * with and without its optimizer), tf2onnx (NHWC in, Transposes around Conv), and HE-MAN's
 * fixed-batch models. Used by test/he-exporters.test.ts (plaintext against onnxruntime) and
 * test/slow/he-exporters-encrypted.test.ts (both CKKS plans against the plaintext executor).
 */

let seed = 2024;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
};
const tensor = (dims: number[], scale = 1): Tensor => ({ dims, data: Float64Array.from({ length: sizeOf(dims) }, () => rand() * scale) });
const i64 = (values: number[], dims = [values.length]): Tensor => ({ dims, data: Float64Array.from(values), type: 'int64' });

/** One exporter pattern: the model's declared input (batch first) and its bytes. */
export interface ExportPattern {
  readonly name: string;
  readonly input: readonly (number | null)[];
  readonly bytes: Uint8Array;
}

/** PyTorch legacy exporter: Conv → BatchNorm → Relu → AvgPool → x.view(x.size(0), −1) → Linear → Relu → Linear. */
function torchLegacy(opset: number): ExportPattern {
  const b = new GraphBuilder(opset);
  const x = b.input('input', [null, 1, 8, 8]);
  const c = b.node('Conv', [x, b.init('conv1.weight', tensor([3, 1, 3, 3], 0.6)), b.init('conv1.bias', tensor([3], 0.2))], { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }, '/conv1/Conv');
  const bn = b.node('BatchNormalization', [c, b.init('bn.weight', tensor([3])), b.init('bn.bias', tensor([3], 0.2)), b.init('bn.running_mean', tensor([3], 0.1)), b.init('bn.running_var', { dims: [3], data: Float64Array.of(0.8, 1.1, 1.4) })], { epsilon: 1e-5, momentum: 0.9 }, '/bn/BatchNormalization');
  const r = b.node('Relu', [bn], {}, '/relu1/Relu');
  const p = b.node('AveragePool', [r], { ceil_mode: 0, count_include_pad: 1, kernel_shape: [2, 2], pads: [0, 0, 0, 0], strides: [2, 2] }, '/pool/AveragePool');
  // x.view(x.size(0), -1): Shape → Gather(0) → Unsqueeze(axes input) → Concat([-1]) → Reshape.
  const shape = b.node('Shape', [p], {}, '/Shape');
  const n = b.node('Gather', [shape, b.node('Constant', [], { value: i64([0], []) }, '/Constant')], { axis: 0 }, '/Gather');
  const n1 = b.node('Unsqueeze', [n, b.node('Constant', [], { value: i64([0]) }, '/Constant_1')], {}, '/Unsqueeze');
  const spec = b.node('Concat', [n1, b.node('Constant', [], { value: i64([-1]) }, '/Constant_2')], { axis: 0 }, '/Concat');
  const f = b.node('Reshape', [p, spec], opset >= 14 ? { allowzero: 0 } : {}, '/Reshape');
  const h = b.node('Gemm', [f, b.init('fc1.weight', tensor([6, 48], 0.4)), b.init('fc1.bias', tensor([6], 0.2))], { alpha: 1, beta: 1, transB: 1 }, '/fc1/Gemm');
  const r2 = b.node('Relu', [h], {}, '/relu2/Relu');
  b.output(b.node('Gemm', [r2, b.init('fc2.weight', tensor([4, 6])), b.init('fc2.bias', tensor([4]))], { alpha: 1, beta: 1, transB: 1 }, '/fc2/Gemm'), [null, 4]);
  return { name: `PyTorch legacy exporter, opset ${opset}`, input: [null, 1, 8, 8], bytes: b.toBytes() };
}

/**
 * The dynamo exporter traces with the example's batch (fixed [1, …]), declares every value's
 * shape (value_info), writes `view(1, -1)` as a Reshape with a constant shape and, unoptimized,
 * Linear as Transpose(weight) → MatMul → Add with Constants in value_ints / value_float form.
 */
function torchDynamo(opset: number, optimized: boolean): ExportPattern {
  const b = new GraphBuilder(opset);
  const x = b.input('x', [1, 2, 6, 6]);
  const c = b.node('Conv', [x, b.init('conv.weight', tensor([4, 1, 3, 3], 0.5)), b.init('conv.bias', tensor([4], 0.2))], { auto_pad: 'NOTSET', dilations: [1, 1], group: 2, pads: [0, 0, 0, 0], strides: [1, 1] }, 'node_conv2d');
  b.declare(c, [1, 4, 4, 4]);
  // Gelu is an ONNX operator from opset 20; before that the exporter writes Relu models as Relu.
  const g = opset >= 20 ? b.node('Gelu', [c], { approximate: 'none' }, 'node_gelu') : b.node('Relu', [c], {}, 'node_relu');
  b.declare(g, [1, 4, 4, 4]);
  const p = b.node('AveragePool', [g], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil_mode: 0, count_include_pad: 1 }, 'node_avg_pool2d');
  b.declare(p, [1, 4, 2, 2]);
  const spec = optimized ? b.init('val_shape', i64([1, 16])) : b.node('Constant', [], { value_ints: [1, -1] }, 'node_Constant_shape');
  const f = b.node('Reshape', [p, spec], { allowzero: 0 }, 'node_view');
  b.declare(f, [1, 16]);
  let y: string;
  if (optimized) y = b.node('Gemm', [f, b.init('fc.weight', tensor([3, 16], 0.5)), b.init('fc.bias', tensor([3], 0.2))], { transB: 1 }, 'node_linear');
  else {
    const wt = b.node('Transpose', [b.init('fc.weight', tensor([3, 16], 0.5))], { perm: [1, 0] }, 'node_permute');
    const mm = b.node('MatMul', [f, wt], {}, 'node_mm');
    b.declare(mm, [1, 3]);
    const add = b.node('Add', [mm, b.init('fc.bias', tensor([3], 0.2))], {}, 'node_add');
    y = b.node('Mul', [add, b.node('Constant', [], { value_float: 0.5 }, 'node_Constant_scale')], {}, 'node_mul');
    y = b.node('Identity', [y], {}, 'node_Identity');
  }
  b.output(y, [1, 3]);
  return { name: `PyTorch dynamo exporter, opset ${opset}, ${optimized ? 'optimized' : 'unoptimized'}`, input: [1, 2, 6, 6], bytes: b.toBytes() };
}

/** tf2onnx: NHWC input, Transpose to NCHW around each Conv, Reshape [−1, k] (int64 initializer), MatMul + Add. */
function tf2onnx(opset: number): ExportPattern {
  const b = new GraphBuilder(opset);
  const x = b.input('input_1', [null, 6, 6, 1]);
  const t = b.node('Transpose', [x], { perm: [0, 3, 1, 2] }, 'sequential/conv2d/BiasAdd__6');
  const c = b.node('Conv', [t, b.init('sequential/conv2d/Conv2D/ReadVariableOp:0', tensor([2, 1, 3, 3], 0.6)), b.init('sequential/conv2d/BiasAdd/ReadVariableOp:0', tensor([2], 0.2))], { dilations: [1, 1], strides: [1, 1], kernel_shape: [3, 3], auto_pad: 'VALID' }, 'sequential/conv2d/BiasAdd');
  const s = b.node('Sigmoid', [c], {}, 'sequential/conv2d/Sigmoid');
  const back = b.node('Transpose', [s], { perm: [0, 2, 3, 1] }, 'sequential/conv2d/Sigmoid__10');
  const f = b.node('Reshape', [back, b.init('const_fold_opt__15', i64([-1, 32]))], {}, 'sequential/flatten/Reshape');
  const mm = b.node('MatMul', [f, b.init('sequential/dense/MatMul/ReadVariableOp:0', tensor([32, 3], 0.4))], {}, 'sequential/dense/MatMul');
  b.output(b.node('Add', [mm, b.init('sequential/dense/BiasAdd/ReadVariableOp:0', tensor([3], 0.2))], {}, 'sequential/dense/BiasAdd'), [null, 3]);
  return { name: `tf2onnx, opset ${opset} (NHWC)`, input: [null, 6, 6, 1], bytes: b.toBytes() };
}

/** HE-MAN's test models: fixed batch 1, Pad(input pads) → Conv → x·x → Flatten → Gemm. */
function hemanFixed(): ExportPattern {
  const b = new GraphBuilder(13);
  const x = b.input('input', [1, 1, 7, 7]);
  const pd = b.node('Pad', [x, b.init('pads', i64([0, 0, 1, 1, 0, 0, 1, 1])), b.init('pad_value', { dims: [], data: Float64Array.of(0) })], { mode: 'constant' }, 'Pad_0');
  const c = b.node('Conv', [pd, b.init('w', tensor([2, 1, 3, 3], 0.6)), b.init('b', tensor([2], 0.2))], { kernel_shape: [3, 3], strides: [2, 2] }, 'Conv_1');
  const sq = b.node('Mul', [c, c], {}, 'Mul_2');
  const f = b.node('Flatten', [sq], { axis: 1 }, 'Flatten_3');
  b.output(b.node('Gemm', [f, b.init('fc_w', tensor([3, 32], 0.3)), b.init('fc_b', tensor([3]))], { transB: 1 }, 'Gemm_4'), [1, 3]);
  return { name: 'HE-MAN fixed-batch model (opset 13)', input: [1, 1, 7, 7], bytes: b.toBytes() };
}

/** Every pattern, in a fixed order (seeded weights). */
export function exporterPatterns(): ExportPattern[] {
  seed = 2024;
  return [
    torchLegacy(13),
    torchLegacy(17),
    torchLegacy(20),
    torchDynamo(18, true),
    torchDynamo(18, false),
    torchDynamo(20, true),
    torchDynamo(23, false),
    tf2onnx(13),
    tf2onnx(15),
    hemanFixed(),
  ];
}
