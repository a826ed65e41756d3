import { CipherMLError } from '../core/errors.ts';
import { activationShapes, type ModelSpec } from '../ml/nn/models.ts';
import { GraphBuilder } from './builder.ts';

/**
 * ONNX export of a trained {@link ModelSpec} (ONNX operators at opset 13): the NHWC tfjs model
 * becomes an NCHW graph — input "input" [batch, c, h, w], output the logits — whose every
 * operator onnxruntime runs and whose polynomial variants (x² activations, average pooling)
 * `cipherml he` evaluates under CKKS.
 *
 * Layout changes, each exact: conv weights [kh, kw, in, out] → OIHW [out, in, kh, kw]; x² →
 * Mul(x, x); the dense layer after a flatten gets its rows permuted from HWC to CHW order, since
 * ONNX Flatten of an NCHW tensor lists channels first.
 */

/** Parameters by name, float values in the model's (tfjs) layout. */
export type ExportParams = ReadonlyMap<string, { readonly shape: readonly number[]; readonly values: ArrayLike<number> }>;

/**
 * The ModelProto bytes of `spec` with `params`.
 *
 * @example
 * ```ts
 * const bytes = exportOnnx(MODELS.lenet5, new Map(net.getParameters().map((p) => [p.name, p])));
 * await writeFile('model.onnx', bytes);
 * ```
 */
export function exportOnnx(spec: ModelSpec, params: ExportParams, opset = 13): Uint8Array {
  const b = new GraphBuilder(opset);
  const [h0, w0, c0] = spec.input;
  let x = b.input('input', [null, c0, h0, w0]);
  const shapes = activationShapes(spec);
  const get = (name: string, shape: readonly number[]): ArrayLike<number> => {
    const p = params.get(name);
    if (p === undefined) throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `the checkpoint has no tensor ${name} of model ${spec.name}`, { param: 'checkpoint' });
    if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i])) {
      throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `tensor ${name} has shape [${p.shape.join(', ')}]; model ${spec.name} expects [${shape.join(', ')}]`, { param: 'checkpoint' });
    }
    return p.values;
  };
  let flattenedFrom: readonly number[] | null = null;
  spec.layers.forEach((l, i) => {
    const before = i === 0 ? [...spec.input] : shapes[i - 1]!;
    const op = (l as { op: string }).op;
    switch (l.op) {
      case 'conv': {
        const [k, ci, co] = [l.kernel, before[2]!, l.filters];
        const w = get(`${l.name}.weight`, [k, k, ci, co]);
        const oihw = new Float64Array(co * ci * k * k);
        for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) oihw[((o * ci + c) * k + u) * k + v] = w[((u * k + v) * ci + c) * co + o]!;
        const bias = Float64Array.from(get(`${l.name}.bias`, [co]));
        // tfjs "same" pads (k − 1) split with the extra row at the bottom/right (TensorFlow's rule).
        const total = l.padding === 'same' ? k - 1 : 0;
        const [lo, hi] = [Math.floor(total / 2), total - Math.floor(total / 2)];
        x = b.node('Conv', [x, b.init(`${l.name}.weight`, { dims: [co, ci, k, k], data: oihw }), b.init(`${l.name}.bias`, { dims: [co], data: bias })], { kernel_shape: [k, k], strides: [1, 1], pads: [lo, lo, hi, hi] }, l.name);
        break;
      }
      case 'relu':
        x = b.node('Relu', [x]);
        break;
      case 'square':
        x = b.node('Mul', [x, x]);
        break;
      case 'maxpool':
      case 'avgpool':
        x = b.node(l.op === 'maxpool' ? 'MaxPool' : 'AveragePool', [x], { kernel_shape: [l.size, l.size], strides: [l.size, l.size] });
        break;
      case 'flatten':
        if (before.length === 3) flattenedFrom = before;
        x = b.node('Flatten', [x], { axis: 1 });
        break;
      case 'dense': {
        const [n, m] = [before[0]!, l.units];
        const w = get(`${l.name}.weight`, [n, m]);
        const rows = new Float64Array(n * m);
        const f = flattenedFrom;
        if (f !== null) {
          const [fh, fw, fc] = f as [number, number, number];
          for (let c = 0; c < fc; c++) for (let y = 0; y < fh; y++) for (let z = 0; z < fw; z++) {
            const chw = (c * fh + y) * fw + z;
            const hwc = (y * fw + z) * fc + c;
            for (let j = 0; j < m; j++) rows[chw * m + j] = w[hwc * m + j]!;
          }
          flattenedFrom = null;
        } else for (let i2 = 0; i2 < n * m; i2++) rows[i2] = w[i2]!;
        x = b.node('Gemm', [x, b.init(`${l.name}.weight`, { dims: [n, m], data: rows }), b.init(`${l.name}.bias`, { dims: [m], data: Float64Array.from(get(`${l.name}.bias`, [m])) })], { transB: 0 }, l.name);
        break;
      }
      default:
        throw new CipherMLError('CIPHERML_E_ONNX_EXPORT_UNSUPPORTED', `layer ${i + 1} of model ${spec.name} is a ${JSON.stringify(op)} layer, which the exporter does not know`, { param: 'model', details: { layer: i + 1, op } });
    }
  });
  b.output(x);
  return b.toBytes();
}
