import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { CkksContext, loadSeal, serializePublicContext, deserializePublicContext } from '../src/ckks/index.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { decryptOutput as decryptBatch, encryptBatch, encryptSingle, inferBytes } from '../src/inference/he.ts';
import { readIdx } from '../src/inference/idx.ts';
import { parseOnnx, serializeOnnx } from '../src/inference/onnx.ts';

/**
 * Encrypted MNIST inference benchmark: the CKKS batch plan (one image per slot) against
 * onnxruntime-node on the same model and images, in one run.
 *
 * - latencyMsSingle: client encrypt + server inference + client decrypt of ONE image. The batch
 *   plan's cost does not depend on how many slots are used, so this equals a full batch.
 * - imagesPerSecondBatched: images / (encrypt + inference + decrypt) for a full batch.
 * - maxAbsError, argmaxAgreement: decrypted scores against onnxruntime's float32 scores.
 */

export interface HeBenchOptions {
  readonly model?: string;
  /** Images in the batch (default: all slots). */
  readonly batch?: number;
  readonly onProgress?: (line: string) => void;
}

export interface HeBenchResult {
  readonly model: string;
  readonly cores: number;
  readonly polyModulusDegree: number;
  readonly coeffModulusBits: readonly number[];
  readonly depth: number;
  readonly batch: number;
  readonly latencyMsSingle: number;
  readonly imagesPerSecondBatched: number;
  readonly batchMs: { readonly encrypt: number; readonly inference: number; readonly decrypt: number };
  readonly onnxruntimeMs: number;
  readonly onnxruntimeImagesPerSecond: number;
  readonly maxAbsError: number;
  readonly argmaxAgreement: number;
  readonly plaintextAccuracy: number;
  readonly encryptedAccuracy: number;
  readonly publicKeyBytes: number;
  readonly ciphertextBytesPerImage: number;
}

const DEFAULT_MODEL = new URL('../examples/he/mnist_square.onnx', import.meta.url).pathname;
const DATA = new URL('../examples/data/mnist/', import.meta.url);

/** Runs the benchmark. */
export async function runHeBench(o: HeBenchOptions = {}): Promise<HeBenchResult> {
  const log = o.onProgress ?? (() => undefined);
  const modelPath = o.model ?? DEFAULT_MODEL;
  const images = readIdx(await readFile(new URL('t10k-images-idx3-ubyte.gz', DATA)));
  const labels = readIdx(await readFile(new URL('t10k-labels-idx1-ubyte.gz', DATA)));
  const pixels = (i: number): Float64Array => Float64Array.from(images.data.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
  const graph = parseOnnx(await readFile(modelPath));
  // Calibrate on the last 500 test images; measure on the first `batch`.
  const calib = new Float64Array(500 * 784);
  for (let i = 0; i < 500; i++) calib.set(pixels(9500 + i), i * 784);
  const seal = await loadSeal();
  const { graph: calibrated, keyParams } = calibrate(seal, graph, { dims: [500, 1, 28, 28], data: calib });
  log(`keyparams: depth ${keyParams.depth}, N = ${keyParams.params.polyModulusDegree}, moduli [${keyParams.params.coeffModulusBits.join(', ')}]`);
  const client = await CkksContext.create(keyParams.params, { galoisSteps: keyParams.galoisSteps });
  const pub = serializePublicContext(client);
  const server = await deserializePublicContext(pub);
  const batch = Math.min(o.batch ?? client.slotCount, client.slotCount, 9500);
  const samples = Array.from({ length: batch }, (_, i) => pixels(i));
  try {
    // Single image.
    let t = performance.now();
    const one = decryptBatch(client, inferBytes(server, calibrated, encryptSingle(client, [samples[0]!], [1, 28, 28])));
    const latencyMsSingle = performance.now() - t;
    log(`single image: ${latencyMsSingle.toFixed(0)} ms`);
    // Full batch.
    t = performance.now();
    const enc = encryptBatch(client, samples, [1, 28, 28]);
    const tEnc = performance.now() - t;
    t = performance.now();
    const outBytes = inferBytes(server, calibrated, enc, { onProgress: (d, n, op) => log(`  [${d}/${n}] ${op}`) });
    const tInf = performance.now() - t;
    t = performance.now();
    const dec = decryptBatch(client, outBytes);
    const tDec = performance.now() - t;
    log(`batch of ${batch}: encrypt ${tEnc.toFixed(0)} ms, inference ${tInf.toFixed(0)} ms, decrypt ${tDec.toFixed(0)} ms`);
    // Baseline: onnxruntime on the same images (float32).
    const session = await ort.InferenceSession.create(serializeOnnx(calibrated));
    const flat = new Float32Array(batch * 784);
    samples.forEach((s, i) => flat.set(s, i * 784));
    t = performance.now();
    const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', flat, [batch, 1, 28, 28]) });
    const tOrt = performance.now() - t;
    const ref = res[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    let maxAbsError = 0;
    let agree = 0;
    let correctPlain = 0;
    let correctEnc = 0;
    const argmax = (a: ArrayLike<number>, off: number): number => {
      let best = 0;
      for (let k = 1; k < 10; k++) if (a[off + k]! > a[off + best]!) best = k;
      return best;
    };
    for (let i = 0; i < batch; i++) {
      for (let k = 0; k < 10; k++) maxAbsError = Math.max(maxAbsError, Math.abs(dec.data[i * 10 + k]! - ref[i * 10 + k]!));
      const pe = argmax(dec.data, i * 10);
      const pp = argmax(ref, i * 10);
      if (pe === pp) agree++;
      if (pp === labels.data[i]) correctPlain++;
      if (pe === labels.data[i]) correctEnc++;
    }
    for (let k = 0; k < 10; k++) maxAbsError = Math.max(maxAbsError, Math.abs(one.data[k]! - ref[k]!));
    return {
      model: modelPath,
      cores: availableParallelism(),
      polyModulusDegree: keyParams.params.polyModulusDegree,
      coeffModulusBits: keyParams.params.coeffModulusBits,
      depth: keyParams.depth,
      batch,
      latencyMsSingle,
      imagesPerSecondBatched: batch / ((tEnc + tInf + tDec) / 1000),
      batchMs: { encrypt: tEnc, inference: tInf, decrypt: tDec },
      onnxruntimeMs: tOrt,
      onnxruntimeImagesPerSecond: batch / (tOrt / 1000),
      maxAbsError,
      argmaxAgreement: agree / batch,
      plaintextAccuracy: correctPlain / batch,
      encryptedAccuracy: correctEnc / batch,
      publicKeyBytes: pub.length,
      ciphertextBytesPerImage: enc.length / batch,
    };
  } finally {
    server.delete();
    client.delete();
  }
}

/** A human-readable table. */
export function formatHeBench(r: HeBenchResult): string {
  const rows: [string, string, string][] = [
    ['images per second (batched, end to end)', r.imagesPerSecondBatched.toFixed(1), `${r.onnxruntimeImagesPerSecond.toFixed(0)} (onnxruntime, plaintext)`],
    ['single-image latency (ms)', r.latencyMsSingle.toFixed(0), '—'],
    ['batch: encrypt / inference / decrypt (ms)', `${r.batchMs.encrypt.toFixed(0)} / ${r.batchMs.inference.toFixed(0)} / ${r.batchMs.decrypt.toFixed(0)}`, `${r.onnxruntimeMs.toFixed(1)} (onnxruntime)`],
    ['max |decrypted − onnxruntime|', r.maxAbsError.toExponential(2), '0'],
    ['argmax agreement', `${(100 * r.argmaxAgreement).toFixed(2)} %`, '100 %'],
    ['accuracy (encrypted / plaintext)', `${(100 * r.encryptedAccuracy).toFixed(2)} %`, `${(100 * r.plaintextAccuracy).toFixed(2)} %`],
    ['public key bytes', String(r.publicKeyBytes), '—'],
    ['ciphertext bytes per image', r.ciphertextBytesPerImage.toFixed(0), String(784 * 4)],
  ];
  const w = Math.max(...rows.map((x) => x[0].length));
  return [
    `cipherml he bench — ${r.model}: batch ${r.batch}, N = ${r.polyModulusDegree}, moduli [${r.coeffModulusBits.join(', ')}], depth ${r.depth}, ${r.cores} cores`,
    `${'metric'.padEnd(w)}  cipherml CKKS            baseline`,
    ...rows.map(([a, b, c]) => `${a.padEnd(w)}  ${b.padEnd(22)}  ${c}`),
  ].join('\n');
}
