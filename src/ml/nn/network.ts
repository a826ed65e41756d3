import { CipherMLError } from '../../core/errors.ts';
import { SeededRng, shuffleInPlace } from '../rng.ts';
import type { ImageDataset } from '../idx.ts';
import type { Tf } from './engine.ts';
import { paramSpecs, type ModelSpec, type ParamTensor } from './models.ts';

/**
 * A model of {@link ModelSpec} on the tfjs engine: parameters as tfjs variables, mini-batch SGD
 * (optionally with momentum) on softmax cross-entropy, and FedProx's proximal term
 * μ/2·‖w − w_global‖² (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys
 * 2020, eq. 2) against the parameters the round started from.
 */

type Variable = ReturnType<Tf['variable']>;
type Tensor = ReturnType<Tf['tensor']>;

/** Options of {@link Network.train}. */
export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** SGD momentum (0: plain SGD). */
  readonly momentum?: number;
  /** FedProx μ (0: FedAvg's local objective). */
  readonly proximalMu?: number;
  /** Shuffling seed. */
  readonly seed: number;
  /** Called after every batch with the images seen so far. */
  readonly onBatch?: (seen: number) => void;
}

/** Loss and accuracy on a dataset. */
export interface Evaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly count: number;
}

/**
 * A trainable network.
 *
 * @example
 * ```ts
 * const { tf } = await loadEngine();
 * const net = new Network(tf, MODELS.lenet5, initParameters(MODELS.lenet5, 1));
 * net.train(data, { epochs: 1, batchSize: 32, learningRate: 0.05, seed: 1 });
 * console.log(net.evaluate(test).accuracy);
 * ```
 */
export class Network {
  readonly spec: ModelSpec;
  readonly #tf: Tf;
  readonly #vars: Map<string, Variable>;
  readonly #specs: { name: string; shape: number[] }[];

  constructor(tf: Tf, spec: ModelSpec, params: readonly ParamTensor[]) {
    this.#tf = tf;
    this.spec = spec;
    this.#specs = paramSpecs(spec);
    this.#vars = new Map(this.#specs.map((s) => [s.name, tf.variable(tf.zeros(s.shape), true, undefined, 'float32')]));
    this.setParameters(params);
  }

  /** Parameter names and shapes. */
  get specs(): readonly { name: string; shape: readonly number[] }[] {
    return this.#specs;
  }

  /**
   * Replaces the parameters. Every tensor of the model must be given once with its shape; a
   * difference is `CIPHERML_E_MODEL_MISMATCH` naming the tensor.
   */
  setParameters(params: readonly { readonly name: string; readonly shape: readonly number[]; readonly values: ArrayLike<number> }[], param = 'parameters'): void {
    const byName = new Map(params.map((p) => [p.name, p]));
    if (byName.size !== params.length || params.length !== this.#specs.length) {
      throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `model ${this.spec.name} has ${this.#specs.length} tensors (${this.#specs.map((s) => s.name).join(', ')}); got ${params.length}${byName.size !== params.length ? ' with repeated names' : ''}`, { param });
    }
    for (const s of this.#specs) {
      const p = byName.get(s.name);
      if (p === undefined) throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `tensor ${s.name} of model ${this.spec.name} is missing`, { param });
      if (p.shape.length !== s.shape.length || p.shape.some((d, i) => d !== s.shape[i]) || p.values.length !== s.shape.reduce((a, b) => a * b, 1)) {
        throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `tensor ${s.name} has shape [${p.shape.join(', ')}] (${p.values.length} values); model ${this.spec.name} expects [${s.shape.join(', ')}]`, { param, details: { tensor: s.name } });
      }
      const v = this.#vars.get(s.name)!;
      this.#tf.tidy(() => v.assign(this.#tf.tensor(Float32Array.from(p.values), s.shape, 'float32')));
    }
  }

  /** The parameters as Float32Arrays (copies). */
  getParameters(): ParamTensor[] {
    return this.#specs.map((s) => ({ name: s.name, shape: s.shape, values: this.#vars.get(s.name)!.dataSync() as Float32Array }));
  }

  /** Frees the engine memory of the variables. */
  dispose(): void {
    for (const v of this.#vars.values()) v.dispose();
  }

  /** Logits of a batch [n, h, w, c] (a tensor the caller disposes, inside tidy). */
  #forward(x: Tensor): Tensor {
    const tf = this.#tf;
    let h = x;
    for (const l of this.spec.layers) {
      switch (l.op) {
        case 'conv':
          h = tf.add(tf.conv2d(h as never, this.#vars.get(`${l.name}.weight`)! as never, 1, l.padding), this.#vars.get(`${l.name}.bias`)!);
          break;
        case 'maxpool':
          h = tf.maxPool(h as never, l.size, l.size, 'valid');
          break;
        case 'avgpool':
          h = tf.avgPool(h as never, l.size, l.size, 'valid');
          break;
        case 'relu':
          h = tf.relu(h);
          break;
        case 'square':
          h = tf.square(h);
          break;
        case 'flatten':
          h = tf.reshape(h, [h.shape[0]!, -1]);
          break;
        case 'dense':
          h = tf.add(tf.matMul(h as never, this.#vars.get(`${l.name}.weight`)! as never), this.#vars.get(`${l.name}.bias`)!);
          break;
      }
    }
    return h;
  }

  #batch(ds: ImageDataset, order: ArrayLike<number>, from: number, to: number): { x: Tensor; y: Tensor } {
    const px = ds.rows * ds.cols;
    const n = to - from;
    const xs = new Float32Array(n * px);
    const ys = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const i = order[from + k]!;
      for (let j = 0; j < px; j++) xs[k * px + j] = ds.images[i * px + j]! / 255;
      ys[k] = ds.labels[i]!;
    }
    const [h, w, c] = this.spec.input;
    return { x: this.#tf.tensor4d(xs, [n, h, w, c]), y: this.#tf.oneHot(this.#tf.tensor1d(ys, 'int32'), this.spec.classes) };
  }

  /**
   * Trains on `ds`; returns the mean training loss of the last epoch (cross-entropy only,
   * without the proximal term).
   */
  train(ds: ImageDataset, options: TrainOptions): { loss: number } {
    const tf = this.#tf;
    if (ds.count === 0) throw new CipherMLError('CIPHERML_E_PARTITION_INVALID', 'this client holds no training data', { param: 'dataset' });
    const mu = options.proximalMu ?? 0;
    const momentum = options.momentum ?? 0;
    const optimizer = momentum > 0 ? tf.train.momentum(options.learningRate, momentum) : tf.train.sgd(options.learningRate);
    const anchor = mu > 0 ? new Map([...this.#vars].map(([k, v]) => [k, tf.clone(v)])) : null;
    const rng = new SeededRng(options.seed);
    let lossSum = 0;
    let seen = 0;
    try {
      for (let e = 0; e < options.epochs; e++) {
        const order = shuffleInPlace(Uint32Array.from({ length: ds.count }, (_, i) => i), rng);
        lossSum = 0;
        for (let from = 0; from < ds.count; from += options.batchSize) {
          const to = Math.min(ds.count, from + options.batchSize);
          const ce = tf.tidy(() => {
            const { x, y } = this.#batch(ds, order, from, to);
            let crossEntropy: Tensor | null = null;
            optimizer.minimize(() => {
              const l = tf.losses.softmaxCrossEntropy(y, this.#forward(x)) as Tensor;
              crossEntropy = tf.keep(l.clone());
              if (anchor === null) return l as never;
              const prox = tf.addN([...this.#vars].map(([k, v]) => tf.sum(tf.squaredDifference(v, anchor.get(k)!))));
              return tf.add(l, tf.mul(mu / 2, prox)) as never;
            });
            return crossEntropy!;
          });
          lossSum += (ce as Tensor).dataSync()[0]! * (to - from);
          (ce as Tensor).dispose();
          seen += to - from;
          options.onBatch?.(seen);
        }
      }
    } finally {
      optimizer.dispose();
      if (anchor !== null) for (const t of anchor.values()) t.dispose();
    }
    return { loss: lossSum / ds.count };
  }

  /** Logits [count × classes] of `ds`, row-major. */
  predict(ds: ImageDataset, batchSize = 256): Float32Array {
    const tf = this.#tf;
    const out = new Float32Array(ds.count * this.spec.classes);
    const idx = Uint32Array.from({ length: ds.count }, (_, i) => i);
    for (let from = 0; from < ds.count; from += batchSize) {
      const to = Math.min(ds.count, from + batchSize);
      const logits = tf.tidy(() => this.#forward(this.#batch(ds, idx, from, to).x));
      out.set(logits.dataSync() as Float32Array, from * this.spec.classes);
      logits.dispose();
    }
    return out;
  }

  /** Mean cross-entropy and accuracy on `ds`. */
  evaluate(ds: ImageDataset): Evaluation {
    const k = this.spec.classes;
    const logits = this.predict(ds);
    let loss = 0;
    let correct = 0;
    for (let i = 0; i < ds.count; i++) {
      const row = logits.subarray(i * k, (i + 1) * k);
      let max = -Infinity;
      let arg = 0;
      for (let j = 0; j < k; j++) if (row[j]! > max) [max, arg] = [row[j]!, j];
      let s = 0;
      for (let j = 0; j < k; j++) s += Math.exp(row[j]! - max);
      loss += Math.log(s) + max - row[ds.labels[i]!]!;
      if (arg === ds.labels[i]) correct++;
    }
    return { loss: loss / ds.count, accuracy: correct / ds.count, count: ds.count };
  }
}
