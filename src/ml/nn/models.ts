import { CipherMLError } from '../../core/errors.ts';
import { SeededRng } from '../rng.ts';

/**
 * Model descriptions shared by training (src/ml/nn/network.ts) and the ONNX exporter: a model is
 * a list of layers over NHWC images, and its parameters are named float tensors in tfjs layout —
 * conv `<name>.weight` [kh, kw, in, out] and `<name>.bias` [out], dense `<name>.weight`
 * [in, out] and `<name>.bias` [out] — which is what crosses the wire as the runtime's named
 * tensors.
 */

/** One layer. */
export type LayerSpec =
  | { readonly op: 'conv'; readonly name: string; readonly filters: number; readonly kernel: number; readonly padding: 'same' | 'valid' }
  | { readonly op: 'maxpool'; readonly size: number }
  | { readonly op: 'avgpool'; readonly size: number }
  | { readonly op: 'relu' }
  | { readonly op: 'square' }
  | { readonly op: 'flatten' }
  | { readonly op: 'dense'; readonly name: string; readonly units: number };

/** A model: input [height, width, channels], class count and layers. */
export interface ModelSpec {
  readonly name: string;
  readonly input: readonly [number, number, number];
  readonly classes: number;
  readonly layers: readonly LayerSpec[];
}

/** A named float tensor in the model's layout. */
export interface ParamTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

const LENET_CONV: readonly LayerSpec[] = [
  { op: 'conv', name: 'conv1', filters: 6, kernel: 5, padding: 'same' },
  { op: 'relu' },
  { op: 'maxpool', size: 2 },
  { op: 'conv', name: 'conv2', filters: 16, kernel: 5, padding: 'valid' },
  { op: 'relu' },
  { op: 'maxpool', size: 2 },
  { op: 'flatten' },
];

/** Name of a bundled model. */
export type ModelName = 'lenet5' | 'lenet5-he' | 'cnn' | 'cnn-he' | 'mlp';

/**
 * The bundled models: LeNet-5 (LeCun et al. 1998, as in Flower's FedAvgHE example: 61,706
 * parameters), its HE-friendly variant (same tensors; x² activations, average pooling: every
 * layer is a polynomial, so CKKS evaluates the trained model itself), a small CNN, its HE-friendly
 * variant (the size of the bundled mnist_square.onnx) and an MLP.
 *
 * @example
 * ```ts
 * const spec = MODELS['lenet5'];
 * ```
 */
export const MODELS: Readonly<Record<ModelName, ModelSpec>> = {
  lenet5: {
    name: 'lenet5',
    input: [28, 28, 1],
    classes: 10,
    layers: [...LENET_CONV, { op: 'dense', name: 'fc1', units: 120 }, { op: 'relu' }, { op: 'dense', name: 'fc2', units: 84 }, { op: 'relu' }, { op: 'dense', name: 'fc3', units: 10 }],
  },
  // CryptoNets-style (Gilad-Bachrach et al., ICML 2016): x² after each convolution, average
  // pooling, and the three dense layers without activations between them (an affine map CKKS
  // applies at the cost of one level): multiplicative depth 2 plus the linear layers.
  'lenet5-he': {
    name: 'lenet5-he',
    input: [28, 28, 1],
    classes: 10,
    layers: [
      ...LENET_CONV.map((l): LayerSpec => (l.op === 'relu' ? { op: 'square' } : l.op === 'maxpool' ? { op: 'avgpool', size: l.size } : l)),
      { op: 'dense', name: 'fc1', units: 120 },
      { op: 'dense', name: 'fc2', units: 84 },
      { op: 'dense', name: 'fc3', units: 10 },
    ],
  },
  cnn: {
    name: 'cnn',
    input: [28, 28, 1],
    classes: 10,
    layers: [
      { op: 'conv', name: 'conv1', filters: 16, kernel: 3, padding: 'same' },
      { op: 'relu' },
      { op: 'maxpool', size: 2 },
      { op: 'conv', name: 'conv2', filters: 32, kernel: 3, padding: 'same' },
      { op: 'relu' },
      { op: 'maxpool', size: 2 },
      { op: 'flatten' },
      { op: 'dense', name: 'fc1', units: 64 },
      { op: 'relu' },
      { op: 'dense', name: 'fc2', units: 10 },
    ],
  },
  // The shape of the bundled examples/he/mnist_square.onnx (CryptoNets-sized): one 5×5
  // convolution, x², average pooling, a dense layer, x², the output layer. About 0.1 M
  // plaintext-scalar products in the CKKS batch plan against LeNet-5's 1.08 M.
  'cnn-he': {
    name: 'cnn-he',
    input: [28, 28, 1],
    classes: 10,
    layers: [
      { op: 'conv', name: 'conv1', filters: 4, kernel: 5, padding: 'valid' },
      { op: 'square' },
      { op: 'avgpool', size: 2 },
      { op: 'flatten' },
      { op: 'dense', name: 'fc1', units: 64 },
      { op: 'square' },
      { op: 'dense', name: 'fc2', units: 10 },
    ],
  },
  mlp: {
    name: 'mlp',
    input: [28, 28, 1],
    classes: 10,
    layers: [{ op: 'flatten' }, { op: 'dense', name: 'fc1', units: 128 }, { op: 'relu' }, { op: 'dense', name: 'fc2', units: 10 }],
  },
};


/**
 * The bundled model called `name`, or a typed error naming the choices.
 *
 * @example
 * ```ts
 * const spec = modelByName('lenet5', '--model');
 * ```
 */
export function modelByName(name: string, param = '--model'): ModelSpec {
  const m = (MODELS as Readonly<Record<string, ModelSpec>>)[name];
  if (m === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `unknown model ${JSON.stringify(name)}; expected one of ${Object.keys(MODELS).join(', ')}`, { param });
  return m;
}

/** Shapes of the activations after each layer (NHWC without the batch, or [features]). */
export function activationShapes(spec: ModelSpec): number[][] {
  let shape: number[] = [...spec.input];
  const out: number[][] = [];
  for (const l of spec.layers) {
    if (l.op === 'conv') {
      const [h, w] = shape as [number, number, number];
      const o = l.padding === 'same' ? [h, w] : [h - l.kernel + 1, w - l.kernel + 1];
      shape = [o[0]!, o[1]!, l.filters];
    } else if (l.op === 'maxpool' || l.op === 'avgpool') {
      const [h, w, c] = shape as [number, number, number];
      shape = [Math.floor(h / l.size), Math.floor(w / l.size), c];
    } else if (l.op === 'flatten') shape = [shape.reduce((a, b) => a * b, 1)];
    else if (l.op === 'dense') {
      if (shape.length !== 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `dense layer ${l.name} of model ${spec.name} follows a ${shape.length}-D activation; put a flatten layer before it`, { param: 'model' });
      shape = [l.units];
    }
    out.push(shape);
  }
  return out;
}

/**
 * The model's parameter names and shapes, in layer order.
 *
 * @example
 * ```ts
 * paramSpecs(MODELS.lenet5).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0); // 61706
 * ```
 */
export function paramSpecs(spec: ModelSpec): { name: string; shape: number[] }[] {
  const shapes = activationShapes(spec);
  const out: { name: string; shape: number[] }[] = [];
  spec.layers.forEach((l, i) => {
    const before = i === 0 ? [...spec.input] : shapes[i - 1]!;
    if (l.op === 'conv') {
      out.push({ name: `${l.name}.weight`, shape: [l.kernel, l.kernel, before[2]!, l.filters] }, { name: `${l.name}.bias`, shape: [l.filters] });
    } else if (l.op === 'dense') {
      out.push({ name: `${l.name}.weight`, shape: [before[0]!, l.units] }, { name: `${l.name}.bias`, shape: [l.units] });
    }
  });
  return out;
}

/**
 * Glorot-uniform weights and zero biases (Glorot & Bengio, AISTATS 2010; the Keras default),
 * from a seed, independent of the engine backend.
 *
 * @example
 * ```ts
 * const params = initParameters(MODELS.lenet5, 42);
 * ```
 */
export function initParameters(spec: ModelSpec, seed: number): ParamTensor[] {
  const rng = new SeededRng(seed);
  return paramSpecs(spec).map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith('.weight')) {
      const receptive = shape.length === 4 ? shape[0]! * shape[1]! : 1;
      const fanIn = shape[shape.length - 2]! * receptive;
      const fanOut = shape[shape.length - 1]! * receptive;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) values[i] = (2 * rng.nextFloat() - 1) * limit;
    }
    return { name, shape, values };
  });
}
