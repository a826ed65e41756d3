import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';

/**
 * The degree-3 least-squares approximation of the logistic function used for training on CKKS
 * ciphertexts (HE4Cloud's `sigmoid_poly_3_approximation`):
 *
 *   σ₃(z) = 0.5 + 0.15012·z − 0.001593·z³,  fitted on z ∈ [−8, 8].
 *
 * Coefficients: A. Kim, Y. Song, M. Kim, K. Lee, J. H. Cheon, "Logistic regression model training
 * based on the approximate homomorphic encryption", BMC Medical Genomics 11 (Suppl 4):83, 2018
 * (iDASH 2017), §"Least squares approximation": σ₃(x) = 0.5 − 1.20096·(x/8) + 0.81562·(x/8)³ for
 * σ(−x), i.e. 1.20096/8 and 0.81562/8³ in the variable z = x. Outside [−8, 8] the cubic leaves
 * [0, 1] quickly; standardized features and small weights keep w·x inside the interval.
 *
 * @example
 * ```ts
 * SIGMOID_POLY3.a1; // 0.15012
 * ```
 */
export const SIGMOID_POLY3: { readonly a0: number; readonly a1: number; readonly a3: number; readonly interval: readonly [number, number] } = {
  a0: 0.5,
  a1: 1.20096 / 8,
  a3: -0.81562 / 512,
  interval: [-8, 8],
};

/**
 * σ₃(z), the cubic approximation of the logistic function (see {@link SIGMOID_POLY3}).
 *
 * @example
 * ```ts
 * sigmoidPoly3(0); // 0.5
 * ```
 */
export function sigmoidPoly3(z: number): number {
  return SIGMOID_POLY3.a0 + SIGMOID_POLY3.a1 * z + SIGMOID_POLY3.a3 * z * z * z;
}

/** Weights of a linear model in scikit-learn's shape (`coef_` is 1×features). */
export interface LinearWeights {
  readonly coef: Float64Array;
  readonly intercept: number;
}

/** Options of {@link trainPoly3LogReg}. */
export interface Poly3TrainOptions {
  /** Full-batch gradient steps; an integer in [1, 1000]. */
  readonly epochs: number;
  /** Step size; finite and in (0, 10]. */
  readonly learningRate: number;
}

/**
 * Plaintext reference of the encrypted trainer: full-batch gradient descent on the logistic loss
 * with σ replaced by σ₃,
 *
 *   w ← w − (η/n) Σᵢ (σ₃(w·xᵢ + b) − yᵢ) xᵢ,   b ← b − (η/n) Σᵢ (σ₃(w·xᵢ + b) − yᵢ),
 *
 * one step per epoch, starting from `init`. The encrypted trainer computes the same updates.
 *
 * @example
 * ```ts
 * const w = trainPoly3LogReg(ds.features, ds.labels, { coef: new Float64Array(30), intercept: 0 }, { epochs: 3, learningRate: 0.1 });
 * ```
 */
export function trainPoly3LogReg(features: readonly Float64Array[], labels: ArrayLike<number>, init: LinearWeights, options: Poly3TrainOptions): LinearWeights {
  assertIntegerInRange(options.epochs, 'epochs', 1, 1000);
  if (!(Number.isFinite(options.learningRate) && options.learningRate > 0 && options.learningRate <= 10)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `learning rate must be in (0, 10], got ${options.learningRate}`, { param: 'learningRate' });
  }
  const n = features.length;
  const d = init.coef.length;
  if (n === 0 || labels.length !== n) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${n} rows but ${labels.length} labels`, { param: 'labels' });
  for (const [i, x] of features.entries()) {
    if (x.length !== d) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `row ${i} has ${x.length} features, the model ${d}`, { param: 'features' });
  }
  const w = Float64Array.from(init.coef);
  let b = init.intercept;
  const g = new Float64Array(d);
  for (let e = 0; e < options.epochs; e++) {
    g.fill(0);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const x = features[i]!;
      let z = b;
      for (let j = 0; j < d; j++) z += w[j]! * x[j]!;
      const err = sigmoidPoly3(z) - labels[i]!;
      for (let j = 0; j < d; j++) g[j]! += err * x[j]!;
      gb += err;
    }
    const k = options.learningRate / n;
    for (let j = 0; j < d; j++) w[j]! -= k * g[j]!;
    b -= k * gb;
  }
  return { coef: w, intercept: b };
}
