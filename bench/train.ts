import { CkksContext, deserializePublicContext, serializePublicContext } from '../src/ckks/index.ts';
import { loadCsvDataset } from '../src/ml/csv.ts';
import { trainPoly3LogReg } from '../src/ml/poly-logreg.ts';
import { SeededRng } from '../src/ml/rng.ts';
import { decryptWeights, encryptTrainingData, encryptWeights, TRAIN_CKKS_PARAMETERS, trainEncrypted, trainingGaloisSteps, validateHyperParams } from '../src/ml/encrypted-lr.ts';

/**
 * Encrypted training benchmark: the CKKS trainer of the service (gateway keys, encryption, the
 * service's training with gateway refreshes, decryption; all in one process, no HTTP) against
 * the named baseline, the plaintext trainer with the same σ₃ polynomial (src/ml/poly-logreg.ts),
 * on the same data. Data: a synthetic balanced set (seeded, standardized features; the real
 * fraud-detection sample is not available here) or the bundled breast cancer data.
 */

/** Options of {@link runTrainBench}. */
export interface TrainBenchOptions {
  readonly rows: number;
  readonly features: number;
  readonly epochs: number;
  readonly learningRate?: number;
  /** `synthetic` (default) or `breast-cancer` (examples/data, 455 × 30; ignores rows/features). */
  readonly data?: 'synthetic' | 'breast-cancer';
  readonly seed?: number;
  readonly onProgress?: (line: string) => void;
}

/** Result of {@link runTrainBench}. */
export interface TrainBenchResult {
  readonly rows: number;
  readonly features: number;
  readonly epochs: number;
  readonly data: string;
  readonly encryptedTrainMs: number;
  readonly keygenMs: number;
  readonly encryptMs: number;
  readonly totalMs: number;
  readonly plaintextTrainMs: number;
  readonly peakRssMb: number;
  readonly maxWeightError: number;
  readonly refreshes: number;
  readonly ckks: { readonly polyModulusDegree: number; readonly coeffModulusBits: readonly number[]; readonly scaleBits: number };
  readonly baseline: { readonly name: string };
}

/**
 * A balanced two-class set: labels alternate, each class's features are Gaussian around ±μ_j,
 * then every column is standardized (mean 0, variance 1).
 *
 * @example
 * ```ts
 * const { rows, labels } = syntheticBalanced(984, 30, 1);
 * ```
 */
export function syntheticBalanced(rows: number, features: number, seed: number): { rows: Float64Array[]; labels: Float64Array } {
  const rng = new SeededRng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
  const mu = Float64Array.from({ length: features }, () => 0.8 * gauss());
  const labels = Float64Array.from({ length: rows }, (_, i) => i % 2);
  const xs = Array.from({ length: rows }, (_, i) => Float64Array.from(mu, (m) => (labels[i] === 1 ? m : -m) + gauss()));
  for (let j = 0; j < features; j++) {
    const mean = xs.reduce((s, x) => s + x[j]!, 0) / rows;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x[j]! - mean) ** 2, 0) / rows) || 1;
    for (const x of xs) x[j] = (x[j]! - mean) / sd;
  }
  return { rows: xs, labels };
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await runTrainBench({ rows: 984, features: 30, epochs: 3 });
 * ```
 */
export async function runTrainBench(o: TrainBenchOptions): Promise<TrainBenchResult> {
  const lr = o.learningRate ?? 0.1;
  let rows: Float64Array[];
  let labels: Float64Array;
  if (o.data === 'breast-cancer') {
    const a = await loadCsvDataset('examples/data/breast_homo_guest.csv');
    const b = await loadCsvDataset('examples/data/breast_homo_host.csv');
    rows = [...a.features, ...b.features];
    labels = Float64Array.from([...a.labels, ...b.labels]);
  } else {
    ({ rows, labels } = syntheticBalanced(o.rows, o.features, o.seed ?? 1));
  }
  const F = rows[0]!.length;
  const init = { coef: new Float64Array(F), intercept: 0 };
  const hyper = validateHyperParams({ numberOfEpochs: o.epochs, learningRate: lr, numberOfFeatures: F });
  const progress = o.onProgress ?? ((): void => undefined);

  let t = performance.now();
  const plain = trainPoly3LogReg(rows, labels, init, { epochs: o.epochs, learningRate: lr });
  const plaintextTrainMs = performance.now() - t;

  const t0 = performance.now();
  const gateway = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(TRAIN_CKKS_PARAMETERS.polyModulusDegree / 2) });
  const service = await deserializePublicContext(serializePublicContext(gateway));
  const keygenMs = performance.now() - t0;
  try {
    t = performance.now();
    const data = encryptTrainingData(gateway, rows, labels);
    const model = encryptWeights(gateway, init.coef, init.intercept);
    const encryptMs = performance.now() - t;
    progress(`keys ${keygenMs.toFixed(0)} ms, encrypted ${rows.length} × ${F} in ${encryptMs.toFixed(0)} ms`);
    t = performance.now();
    const r = await trainEncrypted(service, data, model, hyper, {
      refresh: async (bytes, epoch) => {
        progress(`refresh before epoch ${epoch + 1}`);
        const w = decryptWeights(gateway, bytes);
        return encryptWeights(gateway, w.coef, w.intercept);
      },
      onEpoch: async (epoch) => progress(`epoch ${epoch} done at ${(performance.now() - t).toFixed(0)} ms`),
    });
    const encryptedTrainMs = performance.now() - t;
    const got = decryptWeights(gateway, r.weights);
    const maxWeightError = Math.max(Math.abs(got.intercept - plain.intercept), ...Array.from(plain.coef, (w, j) => Math.abs(w - got.coef[j]!)));
    return {
      rows: rows.length,
      features: F,
      epochs: o.epochs,
      data: o.data ?? 'synthetic',
      encryptedTrainMs: Math.round(encryptedTrainMs),
      keygenMs: Math.round(keygenMs),
      encryptMs: Math.round(encryptMs),
      totalMs: Math.round(performance.now() - t0),
      plaintextTrainMs: Number(plaintextTrainMs.toFixed(3)),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      maxWeightError,
      refreshes: r.refreshes,
      ckks: { polyModulusDegree: TRAIN_CKKS_PARAMETERS.polyModulusDegree, coeffModulusBits: TRAIN_CKKS_PARAMETERS.coeffModulusBits, scaleBits: TRAIN_CKKS_PARAMETERS.scaleBits },
      baseline: { name: 'plaintext full-batch GD with the same sigma_3 polynomial (src/ml/poly-logreg.ts)' },
    };
  } finally {
    gateway.delete();
    service.delete();
  }
}

/**
 * The human table of a result.
 *
 * @example
 * ```ts
 * console.log(formatTrainBench(await runTrainBench({ rows: 984, features: 30, epochs: 3 })));
 * ```
 */
export function formatTrainBench(r: TrainBenchResult): string {
  return [
    `encrypted logistic regression, ${r.rows} rows × ${r.features} features (${r.data}), ${r.epochs} epochs, CKKS N=${r.ckks.polyModulusDegree} [${r.ckks.coeffModulusBits.join(', ')}]`,
    `  keygen                 ${r.keygenMs} ms`,
    `  encrypt data + model   ${r.encryptMs} ms`,
    `  encrypted training     ${r.encryptedTrainMs} ms  (${r.refreshes} gateway refreshes)`,
    `  total                  ${r.totalMs} ms`,
    `  baseline: plaintext σ₃ ${r.plaintextTrainMs} ms`,
    `  max |w_enc − w_plain|  ${r.maxWeightError.toExponential(2)}`,
    `  peak RSS               ${r.peakRssMb} MB`,
  ].join('\n');
}
