import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSeal } from '../src/ckks/index.ts';
import { importOptional } from '../src/core/optional.ts';
import { assertIntegerInRange } from '../src/core/guards.ts';
import type { ActivationFit } from '../src/inference/calibrate.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { runPlain } from '../src/inference/execute.ts';
import { readIdx } from '../src/inference/idx.ts';
import { parseOnnx } from '../src/inference/onnx.ts';
import type { HeBenchResult, KeygenFigures } from './he.ts';
import { estimateBatch, measureKeygen, runHeBench } from './he.ts';

/**
 * `bench he --model lenet5`: HE-MAN's evaluation model class next to the bundled MNIST model, in
 * one run, each against onnxruntime on the original model:
 *
 * - `mnist_square` (bundled, Conv → x² → Gemm → x² → Gemm) and `lenet5_square` (LeNet-5 with x²
 *   activations and average pooling, trained by scripts/train-lenet5.ts): the full encrypted run
 *   of `bench he` (keygen in its own process, batch plan on worker threads, single plan).
 * - `lenet5_relu` (LeNet-5 with Relu and average pooling, trained by the same script): keyparams
 *   with the per-layer Relu fits (weighted by the calibrated inputs, degrees 2^k per layer from the
 *   target error; packing batch: with auto, keyparams drops the single plan, whose keys exceed
 *   the default 256 MiB budget at N = 32768); its
 *   key set made by `he keygen`'s code in a child process (time, peak RSS, key.pub); the
 *   approximated model's argmax against onnxruntime on the original Relu model over
 *   `agreementDigits` test digits (the calibrated polynomial model in the plaintext executor);
 *   and the encrypted batch plan's time ESTIMATED from its operation counts and the measured time
 *   of one plaintext-scalar product and one ciphertext product at its parameters, or, with
 *   `reluEncrypted`, the batch plan run end to end (`bench he` on the model, packing batch), its
 *   decrypted argmax compared with onnxruntime on the original Relu model (depth 13 at N = 16384;
 *   not yet completed on a 2-core machine: the run held 14 GiB and had done 14 % of its
 *   instructions after 6 minutes, docs/inference.md).
 */

/** Options of {@link runHeLenetBench}. */
export interface HeLenetBenchOptions {
  /** Images in each batch run (default: all slots). */
  readonly batch?: number;
  readonly threads?: number;
  readonly singleImages?: number;
  /** Images through lenet5_square's single plan (default 0: not run; 5–6 s an image on a quiet machine with the chained schedule, 212 s under load before it, plus 15–20 s preparing). */
  readonly lenetSingleImages?: number;
  /** Estimate lenet5_square's batch plan from operation times instead of running it (default false: run). */
  readonly lenetEstimateBatch?: boolean;
  /** Test digits for the Relu model's argmax agreement (default 200). */
  readonly agreementDigits?: number;
  /** Run lenet5_relu's batch plan encrypted end to end instead of estimating it (default false). */
  readonly reluEncrypted?: boolean;
  readonly onProgress?: (line: string) => void;
}

/** The Relu LeNet-5's figures. */
export interface ReluFigures {
  readonly model: string;
  readonly calibrateMs: number;
  readonly depth: number;
  readonly polyModulusDegree: number;
  readonly coeffModulusBits: readonly number[];
  readonly packing: string;
  readonly estimatedPublicKeyBytes: number;
  readonly estimatedKeygenPeakBytes: number;
  /** `he keygen` on the batch-plan key set, in a child process. */
  readonly keygen: KeygenFigures;
  /** key.pub of that key set. */
  readonly publicKeyBytes: number;
  /** keyparams' note on the keys (why the single plan was dropped). */
  readonly keyNote?: string;
  readonly activations: readonly Pick<ActivationFit, 'node' | 'range' | 'degree' | 'maxError' | 'meanError' | 'targetError'>[];
  /** Digits compared, approximated model against onnxruntime on the original. */
  readonly agreementDigits: number;
  readonly argmaxAgreement: number;
  readonly accuracyOriginal: number;
  readonly accuracyApproximated: number;
  /** Batch plan operation counts (keyparams' cost model). */
  readonly plainProducts: number;
  readonly products: number;
  /** Measured at the top level of its parameters (upper bounds for lower levels). */
  readonly msPerPlainProduct: number;
  readonly msPerProduct: number;
  /** (plainProducts·msPerPlainProduct + products·msPerProduct) / threads. */
  readonly estimatedBatchMs: number;
  readonly estimatedImagesPerSecond: number;
  readonly slots: number;
  /** With `reluEncrypted`: the batch plan run encrypted (argmaxAgreementOriginal: against the original Relu model). */
  readonly encrypted?: HeBenchResult;
}

/** Result of {@link runHeLenetBench}. */
export interface HeLenetBenchResult {
  readonly mnist: HeBenchResult;
  readonly lenet5Square: HeBenchResult;
  readonly lenet5Relu: ReluFigures;
  readonly targets: { readonly keygenMs: number; readonly keygenPeakBytes: number; readonly publicKeyBytes: number; readonly imagesPerSecondBatched: number; readonly latencyMsSingle: number; readonly argmaxAgreement: number };
}

const HE = new URL('../examples/he/', import.meta.url);
const DATA = new URL('../examples/data/mnist/', import.meta.url);

const argmax = (a: ArrayLike<number>, off: number): number => {
  let best = 0;
  for (let k = 1; k < 10; k++) if (a[off + k]! > a[off + best]!) best = k;
  return best;
};

/**
 * Runs the three models.
 *
 * @example
 * ```ts
 * const r = await runHeLenetBench({ batch: 256, singleImages: 2 });
 * ```
 */
export async function runHeLenetBench(o: HeLenetBenchOptions = {}): Promise<HeLenetBenchResult> {
  const log = o.onProgress ?? (() => undefined);
  const digits = o.agreementDigits ?? 200;
  assertIntegerInRange(digits, 'agreementDigits', 100, 9_500);
  const common = { ...(o.batch === undefined ? {} : { batch: o.batch }), ...(o.threads === undefined ? {} : { threads: o.threads }), ...(o.singleImages === undefined ? {} : { singleImages: o.singleImages }) };
  const reluPath = new URL('lenet5_relu.onnx', HE).pathname;
  const figures = await reluFigures(reluPath, digits, o.threads ?? availableParallelism(), log);
  let relu: ReluFigures = figures;
  if (o.reluEncrypted === true) {
    log('— lenet5_relu (encrypted batch plan)');
    const encrypted = await runHeBench({ ...common, singleImages: 0, model: reluPath, original: reluPath, calibration: { packing: 'batch' }, onProgress: log });
    relu = { ...figures, encrypted };
  }
  log('— mnist_square (bundled)');
  const mnist = await runHeBench({ ...common, onProgress: log });
  log('— lenet5_square');
  // Its batch plan runs (352 K scalar products and 6,304 products at N = 16384 since the pooling
  // sums, the RNS kernel and deferred relinearization; docs/inference.md). Its single plan took
  // 212 s an image here under load with the ±2^k keys, 5–6 s quiet with the chained schedule
  // (docs/inference.md): not run unless asked for.
  const lenet5Square = await runHeBench({ ...common, singleImages: o.lenetSingleImages ?? 0, model: new URL('lenet5_square.onnx', HE).pathname, estimateBatch: o.lenetEstimateBatch === true, onProgress: log });
  return {
    mnist,
    lenet5Square,
    lenet5Relu: relu,
    targets: { keygenMs: 60_000, keygenPeakBytes: 2 * 2 ** 30, publicKeyBytes: 200 * 2 ** 20, imagesPerSecondBatched: 10, latencyMsSingle: 10_000, argmaxAgreement: 0.97 },
  };
}

async function reluFigures(modelPath: string, digits: number, threads: number, log: (line: string) => void): Promise<ReluFigures> {
  const ort = (await importOptional(() => import('onnxruntime-node'), { name: 'onnxruntime-node', param: 'bench he', purpose: 'the onnxruntime baseline of `cipherml bench he`', dev: true })).default;
  const images = readIdx(await readFile(new URL('t10k-images-idx3-ubyte.gz', DATA)));
  const labels = readIdx(await readFile(new URL('t10k-labels-idx1-ubyte.gz', DATA)));
  const count = images.dims[0]!;
  const bytes = await readFile(modelPath);
  const graph = parseOnnx(bytes);
  // Calibrate on the last 500 test digits, compare on the first `digits` (disjoint).
  const calib = Float64Array.from(images.data.subarray((count - 500) * 784), (v) => v / 255);
  const t = performance.now();
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, { dims: [500, 1, 28, 28], data: calib }, { packing: 'batch' });
  const calibrateMs = performance.now() - t;
  log(`lenet5_relu keyparams (${(calibrateMs / 1000).toFixed(1)} s): depth ${keyParams.depth}, N = ${keyParams.params.polyModulusDegree}; ${keyParams.activations.map((a) => `${a.node} degree ${a.degree} max error ${a.maxError.toFixed(3)} mean ${a.meanError.toFixed(3)}`).join(', ')}`);
  const x = Float64Array.from(images.data.subarray(0, digits * 784), (v) => v / 255);
  const approx = runPlain(calibrated, { dims: [digits, 1, 28, 28], data: x }).data;
  const session = await ort.InferenceSession.create(bytes);
  const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(x), [digits, 1, 28, 28]) });
  const ref = res[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  let agree = 0;
  let okOrig = 0;
  let okApprox = 0;
  for (let i = 0; i < digits; i++) {
    const a = argmax(approx, i * 10);
    const r = argmax(ref, i * 10);
    if (a === r) agree++;
    if (r === labels.data[i]) okOrig++;
    if (a === labels.data[i]) okApprox++;
  }
  log(`lenet5_relu: approximated vs original argmax ${agree}/${digits}`);
  const dir = await mkdtemp(join(tmpdir(), 'cipherml-bench-relu-'));
  let keygen: KeygenFigures;
  let publicKeyBytes: number;
  try {
    await writeFile(join(dir, 'keyparams.json'), JSON.stringify(keyParams));
    keygen = await measureKeygen(join(dir, 'keyparams.json'), join(dir, 'key'), keyParams);
    publicKeyBytes = (await stat(join(dir, 'key.pub'))).size;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  log(`lenet5_relu keygen: ${(keygen.ms / 1000).toFixed(1)} s, peak RSS ${(keygen.peakRssBytes / 2 ** 20).toFixed(0)} MiB, key.pub ${(publicKeyBytes / 2 ** 20).toFixed(1)} MiB`);
  const est = await estimateBatch(keyParams, threads);
  const { msPerPlainProduct, msPerProduct } = est;
  const plan = keyParams.plans.batch!;
  const estimatedBatchMs = est.ms;
  const slots = keyParams.params.polyModulusDegree / 2;
  return {
    model: modelPath,
    calibrateMs,
    depth: keyParams.depth,
    polyModulusDegree: keyParams.params.polyModulusDegree,
    coeffModulusBits: keyParams.params.coeffModulusBits,
    packing: keyParams.packing,
    estimatedPublicKeyBytes: keyParams.keys.publicKeyBytes,
    estimatedKeygenPeakBytes: keyParams.keys.keygenPeakBytes,
    keygen,
    publicKeyBytes,
    ...(keyParams.keys.note === undefined ? {} : { keyNote: keyParams.keys.note }),
    activations: keyParams.activations.map((a) => ({ node: a.node, range: a.range, degree: a.degree, maxError: a.maxError, meanError: a.meanError, targetError: a.targetError })),
    agreementDigits: digits,
    argmaxAgreement: agree / digits,
    accuracyOriginal: okOrig / digits,
    accuracyApproximated: okApprox / digits,
    plainProducts: plan.plainProducts,
    products: plan.products,
    msPerPlainProduct,
    msPerProduct,
    estimatedBatchMs,
    estimatedImagesPerSecond: slots / (estimatedBatchMs / 1000),
    slots,
  };
}

/** A human-readable table. */
export function formatHeLenetBench(r: HeLenetBenchResult): string {
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
  const cols = (h: HeBenchResult): string[] => [
    `N = ${h.polyModulusDegree}, depth ${h.depth}`,
    `${(h.keygen.ms / 1000).toFixed(1)} s / ${mb(h.keygen.peakRssBytes)}`,
    mb(h.publicKeyBytes),
    h.batchEstimate === undefined ? h.imagesPerSecondBatched.toFixed(1) : `${h.imagesPerSecondBatched.toFixed(1)} (ESTIMATED, not run)`,
    h.latencyMsSingle === null ? 'not run' : (h.latencyMsSingle / 1000).toFixed(2),
    h.argmaxAgreement === null ? 'not measured (no encrypted run)' : `${pct(h.argmaxAgreement)} of ${h.batchEstimate === undefined ? h.batch + h.singleImages : h.singleImages} (encrypted)`,
    `${h.onnxruntimeImagesPerSecond.toFixed(0)} img/s, ${h.onnxruntimeMsSingle.toFixed(2)} ms`,
  ];
  const x = r.lenet5Relu;
  const e = x.encrypted;
  const rows: string[][] = [
    ['model', 'parameters', 'keygen time / peak RSS', 'key.pub', 'images/s (batch)', 'latency s (single)', 'argmax vs onnxruntime', 'onnxruntime (same images)'],
    ['mnist_square (bundled)', ...cols(r.mnist)],
    ['lenet5_square', ...cols(r.lenet5Square)],
    [
      'lenet5_relu (approximated)',
      `N = ${x.polyModulusDegree}, depth ${x.depth}`,
      `${(x.keygen.ms / 1000).toFixed(1)} s / ${mb(x.keygen.peakRssBytes)}`,
      `${mb(x.publicKeyBytes)} (batch only)`,
      e === undefined ? `${x.estimatedImagesPerSecond.toFixed(2)} (ESTIMATED, not run)` : `${e.imagesPerSecondBatched.toFixed(2)} (${e.batch} images, encrypted)`,
      x.packing === 'batch' ? 'not run (batch packing)' : 'not run',
      `${pct(x.argmaxAgreement)} of ${x.agreementDigits} (plaintext polynomial)${e === undefined || e.argmaxAgreementOriginal === null ? '' : `; ${pct(e.argmaxAgreementOriginal)} of ${e.batch} (encrypted)`}`,
      e === undefined ? `accuracy ${pct(x.accuracyOriginal)} / approximated ${pct(x.accuracyApproximated)}` : `${e.onnxruntimeImagesPerSecond.toFixed(0)} img/s (polynomial model); accuracy ${pct(x.accuracyOriginal)}`,
    ],
    ['target', '', `≤ ${r.targets.keygenMs / 1000} s / ≤ ${mb(r.targets.keygenPeakBytes)}`, `≤ ${mb(r.targets.publicKeyBytes)}`, `≥ ${r.targets.imagesPerSecondBatched}`, `≤ ${r.targets.latencyMsSingle / 1000}`, `≥ ${pct(r.targets.argmaxAgreement)}`, ''],
  ];
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return [
    `cipherml he bench --model lenet5 — ${r.mnist.cores} cores, ${r.mnist.threads} threads, batch ${r.mnist.batch} + ${r.mnist.singleImages} single images per model`,
    ...rows.map((row) => row.map((c, i) => c.padEnd(w[i]!)).join('  ')),
    `lenet5_relu fits: ${x.activations.map((a) => `${a.node} [${a.range[0].toFixed(1)}, ${a.range[1].toFixed(1)}] degree ${a.degree} max error ${a.maxError.toFixed(3)}, mean ${a.meanError.toFixed(3)}`).join('; ')}`,
    ...(x.keyNote === undefined ? [] : [`lenet5_relu keys: ${x.keyNote}`]),
    ...(e === undefined ? [] : [`lenet5_relu encrypted batch: ${e.batch} / (${(e.batchMs.encrypt / 1000).toFixed(1)} s encrypt + ${(e.batchMs.inference / 1000).toFixed(1)} s inference + ${(e.batchMs.decrypt / 1000).toFixed(2)} s decrypt); max |decrypted − onnxruntime on the polynomial model| ${e.maxAbsError.toExponential(2)}; argmax vs the polynomial model ${e.argmaxAgreement === null ? 'not measured' : pct(e.argmaxAgreement)}`]),
    `lenet5_relu estimate: (${x.plainProducts} plaintext-scalar products × ${x.msPerPlainProduct.toFixed(3)} ms + ${x.products} products × ${x.msPerProduct.toFixed(1)} ms) / ${r.mnist.threads} threads (measured at N = ${x.polyModulusDegree}, top level) per batch of ${x.slots}`,
    ...(r.lenet5Square.batchEstimate === undefined ? [] : [`lenet5_square batch estimate: (${r.lenet5Square.batchEstimate.plainProducts} × ${r.lenet5Square.batchEstimate.msPerPlainProduct.toFixed(3)} ms + ${r.lenet5Square.batchEstimate.products} × ${r.lenet5Square.batchEstimate.msPerProduct.toFixed(1)} ms) / ${r.lenet5Square.batchEstimate.threads} threads per batch of ${r.lenet5Square.batch}`]),
    ...(r.lenet5Square.keyNote === undefined ? [] : [`lenet5_square keys: ${r.lenet5Square.keyNote}`]),
  ].join('\n');
}
