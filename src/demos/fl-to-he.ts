import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';
import { packageRoot } from '../core/paths.ts';
import { readRunModel } from '../fl/export-checkpoint.ts';
import { exportOnnx } from '../inference/export-nn.ts';
import { runPlain } from '../inference/execute.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams, readModel } from '../inference/he.ts';
import { writeNpy } from '../inference/npy.ts';
import { loadIdxDataset, type ImageDataset } from '../ml/idx.ts';
import { runFlMnistDemo } from './fl-mnist.ts';

/**
 * The road from federated training to encrypted serving in one command: the HE-friendly LeNet-5
 * (x² activations, average pooling: polynomial throughout) is trained by separate server and
 * worker processes over gRPC with secure aggregation, the final global model is exported to
 * ONNX, and the HE-MAN steps run on files through the library API — keyparams (calibrated on
 * training images), keygen, encrypt (test digits, batch packing), inference on the public keys
 * only, decrypt — and the decrypted argmax is compared with the plaintext model's.
 */

/** Options of {@link runFlToHeDemo}. */
export interface FlToHeDemoOptions {
  /** Folder for the run, the ONNX model, keys and ciphertexts. */
  readonly out: string;
  readonly clients?: number;
  readonly rounds?: number;
  /** Training images shared among the clients (0: all 60,000). */
  readonly trainLimit?: number;
  /** Test digits encrypted and classified (at most the slot count of the chosen ring, 4,096 for N = 8192). */
  readonly digits?: number;
  readonly partition?: string;
  readonly strategy?: 'plain' | 'paillier' | 'secagg';
  /** A polynomial (HE-friendly) bundled model: 'cnn-he' (default; minutes on 2 cores) or 'lenet5-he' (its batch plan takes over an hour on 2 cores). */
  readonly model?: 'cnn-he' | 'lenet5-he';
  readonly seed?: number;
  readonly onLine?: (line: string) => void;
}

/** What the demo measured. */
export interface FlToHeDemoResult {
  /** Test accuracy of the exported model on the digits, in plaintext (reference executor). */
  readonly accuracy: number;
  /** Test accuracy of the decrypted encrypted-inference scores on the same digits. */
  readonly encryptedAccuracy: number;
  /** Fraction of digits whose decrypted argmax equals the plaintext argmax. */
  readonly argmaxAgreement: number;
  /** Largest |decrypted − plaintext| logit. */
  readonly maxAbsError: number;
  readonly digits: number;
  /** The exported model's path under `out`. */
  readonly onnx: string;
  readonly training: Record<string, unknown>;
  readonly ckks: { readonly polyModulusDegree: number; readonly coeffModulusBits: readonly number[]; readonly depth: number; readonly activationsReplaced: number };
  readonly seconds: { readonly training: number; readonly export: number; readonly keyparams: number; readonly keygen: number; readonly encrypt: number; readonly inference: number; readonly decrypt: number };
}

const argmax = (a: ArrayLike<number>, from: number, len: number): number => {
  let best = 0;
  for (let j = 1; j < len; j++) if (a[from + j]! > a[from + best]!) best = j;
  return best;
};

/** Pixels scaled to [0, 1], rounded to float32 as the .npy files store them. */
function pixels(ds: ImageDataset): Float64Array {
  return Float64Array.from(ds.images, (v) => Math.fround(v / 255));
}

/**
 * Runs the whole road and returns accuracy in plaintext and encrypted, and argmax agreement.
 *
 * @example
 * ```ts
 * const r = await runFlToHeDemo({ out: 'runs/fl-to-he' });
 * console.log(r.accuracy, r.encryptedAccuracy, r.argmaxAgreement, r.onnx);
 * ```
 */
export async function runFlToHeDemo(options: FlToHeDemoOptions): Promise<FlToHeDemoResult> {
  const log = options.onLine ?? (() => undefined);
  const digits = options.digits ?? 1000;
  if (!Number.isInteger(digits) || digits < 1 || digits > 4096) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected 1–4096 test digits (one batch of CKKS slots), got ${digits}`, { param: '--digits' });
  const out = options.out;
  await mkdir(out, { recursive: true });
  const dataDir = join(packageRoot(), 'examples', 'fl-mnist', 'mnist');
  const secs = (t: number): number => Math.round((performance.now() - t) / 100) / 10;

  let t = performance.now();
  const model = options.model ?? 'cnn-he';
  log(`1/7 federated training of ${model} (${options.strategy ?? 'secagg'} aggregation, ${options.clients ?? 4} worker processes)`);
  const { summary } = await runFlMnistDemo({
    strategy: options.strategy ?? 'secagg',
    clients: options.clients ?? 4,
    partition: options.partition ?? 'dirichlet:0.5',
    dataset: 'mnist',
    rounds: options.rounds ?? 3,
    model,
    trainLimit: options.trainLimit ?? 4000,
    testLimit: digits,
    seed: options.seed ?? 42,
    runDir: join(out, 'run'),
    onLine: (l) => log(`  ${l}`),
  });
  const tTrain = secs(t);

  t = performance.now();
  const onnx = join(out, 'model.onnx');
  const { spec, tensors, round } = await readRunModel(join(out, 'run'));
  await writeFileSafely(onnx, exportOnnx(spec, new Map(tensors.map((x) => [x.name, x]))), { overwrite: true });
  const tExport = secs(t);
  log(`2/7 fl export-onnx: ${spec.name} after round ${round} → ${onnx}`);

  // Calibration on training images (the model owner's plaintext data), never on the test digits.
  t = performance.now();
  const calibration = await loadIdxDataset(dataDir, 'train', 256);
  const calibrationPath = join(out, 'calibration.npy');
  await writeFileSafely(calibrationPath, writeNpy({ dims: [calibration.count, 1, 28, 28], data: pixels(calibration) }), { overwrite: true });
  const keyParamsPath = join(out, 'keyparams.json');
  const kp = await heKeyParams({ model: onnx, calibration: calibrationPath, out: keyParamsPath, overwrite: true, packing: 'batch' });
  const tKp = secs(t);
  const p = kp.keyParams.params;
  log(`3/7 he keyparams: N = ${p.polyModulusDegree}, moduli [${p.coeffModulusBits.join(', ')}], depth ${kp.keyParams.depth}, ${kp.keyParams.activations.length} activation(s) replaced`);

  t = performance.now();
  const keyPath = join(out, 'key');
  await heKeygen({ keyParams: keyParamsPath, out: keyPath, overwrite: true });
  const tKg = secs(t);
  log(`4/7 he keygen: ${keyPath} (secret) and ${keyPath}.pub`);

  const test = await loadIdxDataset(dataDir, 't10k', digits);
  const inputPath = join(out, 'input.npy');
  await writeFileSafely(inputPath, writeNpy({ dims: [test.count, 1, 28, 28], data: pixels(test) }), { overwrite: true });
  t = performance.now();
  const enc = await heEncrypt({ key: keyPath, input: inputPath, out: join(out, 'input.enc'), overwrite: true, packing: 'batch', threads: 'auto' });
  const tEnc = secs(t);
  log(`5/7 he encrypt: ${test.count} test digits, ${enc.packing} packing, ${enc.bytes} bytes`);

  t = performance.now();
  await heInference({ model: kp.calibratedModel, key: `${keyPath}.pub`, input: join(out, 'input.enc'), out: join(out, 'output.enc'), overwrite: true, threads: 'auto' });
  const tInf = secs(t);
  log(`6/7 he inference on the public keys only (${tInf} s)`);

  t = performance.now();
  const dec = await heDecrypt({ key: keyPath, input: join(out, 'output.enc'), out: join(out, 'output.npy'), overwrite: true });
  const tDec = secs(t);

  // The plaintext model: the exported ONNX graph on the reference executor (checked against
  // onnxruntime in the inference tests).
  const plain = runPlain(await readModel(onnx), { dims: [test.count, 1, 28, 28], data: pixels(test) });
  const k = spec.classes;
  let correct = 0;
  let correctEnc = 0;
  let agree = 0;
  let maxAbsError = 0;
  for (let i = 0; i < test.count; i++) {
    const a = argmax(plain.data, i * k, k);
    const b = argmax(dec.data, i * k, k);
    if (a === test.labels[i]) correct++;
    if (b === test.labels[i]) correctEnc++;
    if (a === b) agree++;
    for (let j = 0; j < k; j++) maxAbsError = Math.max(maxAbsError, Math.abs(plain.data[i * k + j]! - dec.data[i * k + j]!));
  }
  const result: FlToHeDemoResult = {
    accuracy: correct / test.count,
    encryptedAccuracy: correctEnc / test.count,
    argmaxAgreement: agree / test.count,
    maxAbsError,
    digits: test.count,
    onnx,
    training: summary,
    ckks: { polyModulusDegree: p.polyModulusDegree, coeffModulusBits: p.coeffModulusBits, depth: kp.keyParams.depth, activationsReplaced: kp.keyParams.activations.length },
    seconds: { training: tTrain, export: tExport, keyparams: tKp, keygen: tKg, encrypt: tEnc, inference: tInf, decrypt: tDec },
  };
  log(`7/7 he decrypt: plaintext accuracy ${(result.accuracy * 100).toFixed(1)} %, encrypted ${(result.encryptedAccuracy * 100).toFixed(1)} %, argmax agreement ${(result.argmaxAgreement * 100).toFixed(1)} % on ${test.count} digits (max |Δ logit| ${maxAbsError.toExponential(2)})`);
  return result;
}
