import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange, describe as describeValue } from '../core/guards.ts';
import { accuracy, auc, logLoss } from './metrics.ts';
import { SeededRng, shuffleInPlace } from './rng.ts';

/**
 * Binary logistic regression p(y = 1 | x) = σ(w·x + b), trained by mini-batch SGD on the
 * L2-regularised mean log loss
 *
 *   L(w, b) = −(1/n) Σ [yᵢ ln pᵢ + (1 − yᵢ) ln(1 − pᵢ)] + (l2 / 2)·‖w‖²,
 *
 * whose mini-batch gradient is ((1/B) Σ (pᵢ − yᵢ) xᵢ + l2·w, (1/B) Σ (pᵢ − yᵢ)); the bias is not
 * decayed. The parameter layout is fixed as `[weights, [bias]]`, so federated averaging
 * (H. B. McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
 * Data", AISTATS 2017) can average `getParameters()` element-wise across workers.
 */

/**
 * Largest feature count a model accepts (bounds the parameter vector a peer can make us allocate).
 *
 * @example
 * ```ts
 * if (names.length > MAX_FEATURE_COUNT) throw new Error('too many features');
 * ```
 */
export const MAX_FEATURE_COUNT: number = 1 << 24;

/**
 * Options of {@link LogisticRegression.fit}.
 *
 * @example
 * ```ts
 * const options: FitOptions = { epochs: 30, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 };
 * ```
 */
export interface FitOptions {
  /** Passes over the data; an integer ≥ 1. */
  readonly epochs: number;
  /** Rows per SGD step; an integer ≥ 1 (a batch larger than the data is the whole data). */
  readonly batchSize: number;
  /** SGD step size; finite and > 0. */
  readonly learningRate: number;
  /** L2 penalty coefficient on the weights (not the bias); finite and ≥ 0. */
  readonly l2: number;
  /** Seed of the per-epoch shuffles. Default 0: training is reproducible unless a seed is varied. */
  readonly seed?: number;
}

/**
 * Metrics of {@link LogisticRegression.evaluate}.
 *
 * @example
 * ```ts
 * const { accuracy, auc } = model.evaluate(test.features, test.labels);
 * ```
 */
export interface Evaluation {
  /** Mean log loss (without the L2 term). */
  readonly loss: number;
  /** Fraction correct at threshold 0.5. */
  readonly accuracy: number;
  /** ROC AUC; NaN when the labels hold one class only. */
  readonly auc: number;
  /** Rows evaluated. */
  readonly count: number;
}

/**
 * A binary logistic-regression model with zero-initialised parameters.
 *
 * @example
 * ```ts
 * const train = await loadCsvDataset('examples/data/breast_homo_guest.csv', { label: 'y' });
 * const model = new LogisticRegression(train.featureNames.length);
 * model.fit(train.features, train.labels, { epochs: 30, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 });
 * model.predictProba(train.features[0]!); // ≈ 1 for a malignant row
 * ```
 */
export class LogisticRegression {
  readonly featureCount: number;
  weights: Float64Array;
  bias: number;

  constructor(featureCount: number) {
    assertIntegerInRange(featureCount, 'featureCount', 1, MAX_FEATURE_COUNT);
    this.featureCount = featureCount;
    this.weights = new Float64Array(featureCount);
    this.bias = 0;
  }

  /**
   * Trains in place for `options.epochs` shuffled passes and returns the mean log loss over the
   * given data after training (without the L2 term). The shuffle order depends only on `seed`,
   * so equal inputs give bit-identical models. If training diverges (a parameter becomes
   * non-finite, e.g. for a learning rate far too large) it throws CIPHERML_E_NOT_FINITE and
   * leaves the model unchanged.
   *
   * @example
   * ```ts
   * const { loss } = model.fit(ds.features, ds.labels, { epochs: 5, batchSize: 32, learningRate: 0.1, l2: 0 });
   * ```
   */
  fit(features: readonly Float64Array[], labels: Float64Array, options: FitOptions): { loss: number } {
    this.#checkData(features, labels, 'features');
    const { epochs, batchSize, learningRate, l2 } = options;
    assertIntegerInRange(epochs, 'epochs', 1, Number.MAX_SAFE_INTEGER);
    assertIntegerInRange(batchSize, 'batchSize', 1, Number.MAX_SAFE_INTEGER);
    if (typeof learningRate !== 'number' || !Number.isFinite(learningRate) || learningRate <= 0) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a finite number > 0, got ${describeValue(learningRate)}`, { param: 'learningRate' });
    }
    if (typeof l2 !== 'number' || !Number.isFinite(l2) || l2 < 0) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a finite number ≥ 0, got ${describeValue(l2)}`, { param: 'l2' });
    }
    const rng = new SeededRng(options.seed ?? 0);

    const d = this.featureCount;
    const n = features.length;
    const w = Float64Array.from(this.weights);
    let b = this.bias;
    const grad = new Float64Array(d);
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    for (let epoch = 0; epoch < epochs; epoch++) {
      shuffleInPlace(order, rng);
      for (let start = 0; start < n; start += batchSize) {
        const end = Math.min(start + batchSize, n);
        grad.fill(0);
        let gradB = 0;
        for (let k = start; k < end; k++) {
          const row = order[k]!;
          const x = features[row]!;
          const r = sigmoid(dot(w, x) + b) - labels[row]!;
          for (let j = 0; j < d; j++) grad[j] = grad[j]! + r * x[j]!;
          gradB += r;
        }
        const scale = learningRate / (end - start);
        for (let j = 0; j < d; j++) w[j] = w[j]! - scale * grad[j]! - learningRate * l2 * w[j]!;
        b -= scale * gradB;
      }
    }
    const bad = firstNonFinite(w, b);
    if (bad !== undefined) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `training diverged (${bad} became non-finite); the model was left unchanged — lower learningRate or l2`, {
        param: 'learningRate',
        details: { learningRate, l2 },
      });
    }
    this.weights = w;
    this.bias = b;
    return { loss: logLoss(this.#probs(features), labels) };
  }

  /**
   * P(y = 1 | x).
   *
   * @example
   * ```ts
   * new LogisticRegression(2).predictProba(Float64Array.of(1, -1)); // 0.5 before training
   * ```
   */
  predictProba(x: Float64Array): number {
    this.#checkRow(x, 'x', undefined);
    return sigmoid(dot(this.weights, x) + this.bias);
  }

  /**
   * P(y = 1 | x) for each row.
   *
   * @example
   * ```ts
   * const probs = model.predictProbaBatch(test.features);
   * ```
   */
  predictProbaBatch(rows: readonly Float64Array[]): Float64Array {
    if (!Array.isArray(rows)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array of Float64Array rows, got ${describeValue(rows)}`, { param: 'rows' });
    }
    rows.forEach((row, i) => this.#checkRow(row, 'rows', i));
    return this.#probs(rows);
  }

  /**
   * Loss, accuracy (threshold 0.5), ROC AUC and row count on labelled data.
   *
   * @example
   * ```ts
   * model.evaluate(test.features, test.labels); // { loss: 0.08, accuracy: 0.96, auc: 0.99, count: 114 }
   * ```
   */
  evaluate(features: readonly Float64Array[], labels: Float64Array): Evaluation {
    this.#checkData(features, labels, 'features');
    const probs = this.#probs(features);
    return { loss: logLoss(probs, labels), accuracy: accuracy(probs, labels), auc: auc(probs, labels), count: features.length };
  }

  /**
   * The parameters as `[weights (a copy), [bias]]`, the layout every worker and the server share.
   *
   * @example
   * ```ts
   * const [w, b] = model.getParameters(); // Float64Array(30), Float64Array(1)
   * ```
   */
  getParameters(): Float64Array[] {
    return [Float64Array.from(this.weights), Float64Array.of(this.bias)];
  }

  /**
   * Replaces the parameters with copies of `params` in the {@link getParameters} layout. Throws
   * CIPHERML_E_MODEL_MISMATCH for another layout and CIPHERML_E_NOT_FINITE for NaN/±Infinity,
   * leaving the model unchanged.
   *
   * @example
   * ```ts
   * global.setParameters(averaged); // e.g. the FedAvg mean of the workers' getParameters()
   * ```
   */
  setParameters(params: readonly Float64Array[]): void {
    const expected = `expected 2 tensors [${this.featureCount}, 1]`;
    if (!Array.isArray(params)) {
      throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `${expected}, got ${describeValue(params)}`, { param: 'params' });
    }
    const shapes = params.map((p: unknown) => (p instanceof Float64Array ? String(p.length) : describeValue(p)));
    const [w, b] = params;
    if (params.length !== 2 || !(w instanceof Float64Array) || !(b instanceof Float64Array) || w.length !== this.featureCount || b.length !== 1) {
      throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `${expected}, got ${params.length} tensors [${shapes.join(', ')}]`, {
        param: 'params',
        details: { expected: [this.featureCount, 1], actual: shapes },
      });
    }
    const bad = firstNonFinite(w, b[0]!);
    if (bad !== undefined) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `${bad} is non-finite`, { param: 'params' });
    }
    this.weights = Float64Array.from(w);
    this.bias = b[0]!;
  }

  #probs(rows: readonly Float64Array[]): Float64Array {
    return Float64Array.from(rows, (x) => sigmoid(dot(this.weights, x) + this.bias));
  }

  #checkData(features: readonly Float64Array[], labels: Float64Array, param: string): void {
    if (!Array.isArray(features)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array of Float64Array rows, got ${describeValue(features)}`, { param });
    }
    if (!(labels instanceof Float64Array)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Float64Array of 0/1 labels, got ${describeValue(labels)}`, { param: 'labels' });
    }
    if (features.length !== labels.length) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${features.length} feature rows but ${labels.length} labels`, {
        param,
        details: { rows: features.length, labels: labels.length },
      });
    }
    if (features.length === 0) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'no rows', { param });
    }
    features.forEach((row, i) => this.#checkRow(row, param, i));
    labels.forEach((y, i) => {
      if (y !== 0 && y !== 1) {
        throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `label ${i} is ${y}, expected 0 or 1`, { param: 'labels', details: { index: i, value: y } });
      }
    });
  }

  /** `index` is the row's position in a batch, undefined for a single row. */
  #checkRow(x: unknown, param: string, index: number | undefined): asserts x is Float64Array {
    const where = index === undefined ? '' : `row ${index} `;
    if (!(x instanceof Float64Array)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${where}is ${describeValue(x)}, expected a Float64Array`, { param, details: { row: index } });
    }
    if (x.length !== this.featureCount) {
      throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `${where}has ${x.length} features, the model expects ${this.featureCount}`, {
        param,
        details: { row: index, expected: this.featureCount, actual: x.length },
      });
    }
    for (let j = 0; j < x.length; j++) {
      if (!Number.isFinite(x[j])) {
        throw new CipherMLError('CIPHERML_E_NOT_FINITE', `${where}feature ${j} is ${String(x[j])}`, { param, details: { row: index, feature: j } });
      }
    }
  }
}

/**
 * The logistic function σ(z) = 1 / (1 + e^(−z)), evaluated so that exp never overflows
 * (e^z / (1 + e^z) for z < 0): σ(−800) is 0, not NaN.
 *
 * @example
 * ```ts
 * sigmoid(0);   // 0.5
 * sigmoid(-40); // 4.2e-18
 * ```
 */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

function dot(w: Float64Array, x: Float64Array): number {
  let s = 0;
  for (let j = 0; j < w.length; j++) s += w[j]! * x[j]!;
  return s;
}

function firstNonFinite(w: Float64Array, b: number): string | undefined {
  const j = w.findIndex((v) => !Number.isFinite(v));
  if (j >= 0) return `weights[${j}]`;
  return Number.isFinite(b) ? undefined : 'bias';
}
