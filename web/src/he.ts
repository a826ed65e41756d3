/**
 * The browser as the trusted gateway (docs/console.md): CKKS keys, encryption of the model and
 * the training CSV, answers to the training job's refreshes, decryption of the trained weights and
 * of predictions. Loaded on first use (a separate chunk with SEAL's wasm), never at first load.
 *
 * The wire format is not re-implemented here: key sets, ciphertext containers and their packing
 * come from the same modules the CLI gateway uses (src/ckks/serialize.ts, src/ml/encrypted-lr.ts),
 * built for the browser with the platform shims of web/src/platform/ (web/vite.config.ts). The
 * secret key exists in this page's memory and, sealed under the passphrase, in IndexedDB (and on
 * the service if the user asks); no function here sends it or a plaintext value anywhere.
 */
import { CkksContext } from '../../src/ckks/context.ts';
import { deserializeSecretKey, serializePublicContext, serializeSecretKey } from '../../src/ckks/serialize.ts';
import { parseCsvDataset } from '../../src/ml/csv.ts';
import type { CsvDataset } from '../../src/ml/csv.ts';
import { decryptScores, decryptWeights, encryptPredictData, encryptTrainingData, encryptWeights, TRAIN_CKKS_PARAMETERS, trainingGaloisSteps, validateHyperParams } from '../../src/ml/encrypted-lr.ts';
import type { TrainHyperParams } from '../../src/ml/encrypted-lr.ts';

export { validateHyperParams };
export type { CsvDataset, TrainHyperParams };

/** A key set made in this page: the context (holds the secret key) and its two serializations. */
export interface MadeKeys {
  readonly ctx: CkksContext;
  /** The service's public-context envelope (public, relinearization and Galois keys). */
  readonly publicContext: Uint8Array;
  /** The service's secret-key envelope: to be sealed under the passphrase, never sent as is. */
  readonly secretKey: Uint8Array;
  readonly fingerprint: string;
  readonly keygenMs: number;
}

/**
 * A fresh key set with the trainer's parameters and rotations (as `gateway fit` makes it:
 * N = 8192, Galois steps 1, 2, …, 2048). Evaluation keys are made once, seeded, while the public
 * context is serialized.
 */
export async function makeKeys(): Promise<MadeKeys> {
  const t0 = performance.now();
  const ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(TRAIN_CKKS_PARAMETERS.polyModulusDegree / 2), deferEvaluationKeys: true });
  try {
    const publicContext = serializePublicContext(ctx);
    const secretKey = serializeSecretKey(ctx);
    return { ctx, publicContext, secretKey, fingerprint: ctx.fingerprint, keygenMs: performance.now() - t0 };
  } catch (e) {
    ctx.delete();
    throw e;
  }
}

/** The context of a secret-key envelope (from an unsealed record); refuses one whose fingerprint is not `fingerprint`. */
export async function openKeys(secretKey: Uint8Array, fingerprint: string): Promise<CkksContext> {
  const ctx = await deserializeSecretKey(secretKey, 'secretKey');
  if (ctx.fingerprint !== fingerprint) {
    ctx.delete();
    throw new Error(`the unsealed key has fingerprint ${ctx.fingerprint}, the record says ${fingerprint}`);
  }
  return ctx;
}

/** Parses a training or prediction CSV as the CLI does (`loadCsvDataset`: header, label column `y`, `id` dropped). */
export function parseDataset(text: string, source: string): CsvDataset {
  return parseCsvDataset(text, { param: source }, source);
}

/** Encrypted uploads of a fit: the initial model (all zeros, bias first) and the training data. */
export interface FitUploads {
  readonly model: Uint8Array;
  readonly data: Uint8Array;
  readonly rows: number;
  readonly features: number;
  readonly encryptMs: number;
}

/** Encrypts the initial model (zeros) and the training set in the trainer's layout (`/encrypt/data/fit`). */
export function encryptFit(ctx: CkksContext, ds: CsvDataset, batchSize?: number): FitUploads {
  const t0 = performance.now();
  const F = ds.featureNames.length;
  const model = encryptWeights(ctx, new Float64Array(F), 0);
  const data = encryptTrainingData(ctx, ds.features, ds.labels, batchSize);
  return { model, data, rows: ds.features.length, features: F, encryptMs: performance.now() - t0 };
}

/** A refresh: decrypts the weights the job sent and re-encrypts them fresh (the trusted side's step between epochs); also returns the decrypted weights. */
export function refresh(ctx: CkksContext, bytes: Uint8Array): { fresh: Uint8Array; coef: Float64Array; intercept: number } {
  const w = decryptWeights(ctx, bytes);
  return { fresh: encryptWeights(ctx, w.coef, w.intercept), coef: w.coef, intercept: w.intercept };
}

/** Mean log loss of weights on a dataset with the exact logistic function (probabilities clipped to [1e-12, 1 − 1e-12]). */
export function logLoss(ds: CsvDataset, coef: ArrayLike<number>, intercept: number): number {
  let sum = 0;
  ds.features.forEach((x, i) => {
    let z = intercept;
    for (let j = 0; j < coef.length; j++) z += coef[j]! * x[j]!;
    const p = Math.min(1 - 1e-12, Math.max(1e-12, 1 / (1 + Math.exp(-z))));
    sum -= ds.labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
  });
  return sum / ds.features.length;
}

/** Decrypts trained weights; also returns them re-encrypted fresh, for predict (a trained model is at the last level). */
export function openTrained(ctx: CkksContext, bytes: Uint8Array): { coef: number[]; intercept: number; fresh: Uint8Array } {
  const w = decryptWeights(ctx, bytes);
  return { coef: Array.from(w.coef), intercept: w.intercept, fresh: encryptWeights(ctx, w.coef, w.intercept) };
}

/** Encrypts feature rows for predict (`/encrypt/data/predict`). */
export function encryptPredict(ctx: CkksContext, ds: CsvDataset): Uint8Array {
  return encryptPredictData(ctx, ds.features);
}

/** Decrypts the encrypted logits and applies the exact logistic function. */
export function openScores(ctx: CkksContext, bytes: Uint8Array): number[] {
  return Array.from(decryptScores(ctx, bytes), (z) => 1 / (1 + Math.exp(-z)));
}
