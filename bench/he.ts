import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CkksContext, deserializePublicContext, loadSeal, readSecretKeyFile, serializePublicContext, serializeSecretKey } from '../src/ckks/index.ts';
import { assertIntegerInRange } from '../src/core/guards.ts';
import { importOptional } from '../src/core/optional.ts';
import type { CalibrateOptions, KeyParams } from '../src/inference/calibrate.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { decryptOutput, encryptSingle, inferBytes } from '../src/inference/he.ts';
import { readIdx } from '../src/inference/idx.ts';
import { parseOnnx, serializeOnnx } from '../src/inference/onnx.ts';
import type { PoolRunStats } from '../src/inference/pool.ts';
import { EncryptionPool, InferencePool } from '../src/inference/pool.ts';
import { prepareSingle } from '../src/inference/single.ts';

/**
 * Encrypted MNIST inference, both plans of one key set (made with packing auto), against
 * onnxruntime-node on the same calibrated model and images, in one run.
 *
 * - latencyMsSingle: one image through the single plan, end to end: client encrypt, server
 *   inference (diagonals already prepared: `prepareMs`, once per model and key), client decrypt.
 * - imagesPerSecondBatched: a full batch through the batch plan, end to end: images / (client
 *   encrypt + server inference + client decrypt), encryption and inference each on `threads`
 *   worker threads. Both pools are started before timing (`batchMs.encryptPoolStart`,
 *   `batchMs.poolStart`: once per client and server). `serverImagesPerSecond` counts the
 *   inference alone.
 * - maxAbsError, argmaxAgreement: decrypted scores against onnxruntime's float32 scores, over
 *   the batch and the single-plan images.
 */

export interface HeBenchOptions {
  readonly model?: string;
  /** Images in the batch (default: all slots; more than the slots run as several chunks). */
  readonly batch?: number;
  /** Worker threads for the batch plan (default: the machine's cores). */
  readonly threads?: number;
  /** Images run one by one through the single plan (default 10). */
  readonly singleImages?: number;
  /**
   * Estimate the batch plan's inference instead of running it (models whose batch plan takes
   * longer than the bench should): operation counts × measured operation times.
   */
  readonly estimateBatch?: boolean;
  /** Calibration options (default: packing auto). */
  readonly calibration?: CalibrateOptions;
  /**
   * The model before calibration replaced its activations (e.g. Relu): the decrypted argmax is
   * also compared with onnxruntime on it (`argmaxAgreementOriginal`), over the same images.
   */
  readonly original?: string;
  readonly onProgress?: (line: string) => void;
}

/** `he keygen` measured in a child process of its own (its peak memory is not the bench's). */
export interface KeygenFigures {
  /** heKeygen's wall time (keys generated and key.pub streamed to disk). */
  readonly ms: number;
  /** The child's peak resident set (process.resourceUsage().maxRSS), the runtime included. */
  readonly peakRssBytes: number;
  /** SEAL's WebAssembly heap at the end (it never shrinks: its peak). */
  readonly sealHeapBytes: number;
  /** keyparams' estimates before keygen. */
  readonly estimatedPeakBytes: number;
  readonly estimatedPublicKeyBytes: number;
  readonly galoisKeys: number;
}

export interface HeBenchResult {
  readonly model: string;
  readonly cores: number;
  readonly threads: number;
  readonly polyModulusDegree: number;
  readonly coeffModulusBits: readonly number[];
  readonly scaleBits: number;
  readonly depth: number;
  readonly batch: number;
  /** null when not measured; `nullReasons` says why (JSON never carries NaN). */
  readonly latencyMsSingle: number | null;
  readonly singleMs: { readonly prepare: number | null; readonly encrypt: number | null; readonly inference: number | null; readonly decrypt: number | null };
  readonly singleImages: number;
  readonly imagesPerSecondBatched: number;
  readonly serverImagesPerSecond: number;
  /** poolStart: the server's inference threads; encryptPoolStart: the client's encryption threads (each once). */
  readonly batchMs: { readonly poolStart: number; readonly encryptPoolStart: number; readonly encrypt: number; readonly inference: number; readonly decrypt: number };
  readonly onnxruntimeMs: number;
  readonly onnxruntimeMsSingle: number;
  readonly onnxruntimeImagesPerSecond: number;
  readonly maxAbsError: number;
  readonly argmaxAgreement: number | null;
  /** Decrypted argmax against onnxruntime on `original` (null without it or without decrypted output). */
  readonly argmaxAgreementOriginal: number | null;
  /** onnxruntime's accuracy on `original` over the compared images. */
  readonly originalAccuracy: number | null;
  readonly plaintextAccuracy: number | null;
  readonly encryptedAccuracy: number | null;
  /** Field path ↦ why it is null (not measured in this run). */
  readonly nullReasons: Readonly<Record<string, string>>;
  /** Per inference thread, its heap budget's cost in the (last chunk of the) batch run; null when estimated. */
  readonly poolStats: readonly PoolRunStats[] | null;
  /** key.pub of the key set (both plans: includes the single plan's Galois keys). */
  readonly publicKeyBytes: number;
  /** key.pub without Galois keys (what a batch-only key set weighs). */
  readonly publicKeyBytesBatchOnly: number;
  /** Batch plan: input file bytes / images. */
  readonly ciphertextBytesPerImage: number;
  /** Single plan: one image's input file. */
  readonly ciphertextBytesSingle: number;
  readonly targets: { readonly imagesPerSecondBatched: number; readonly latencyMsSingle: number; readonly argmaxAgreement: number };
  readonly keygen: KeygenFigures;
  /** Present when the batch plan was not run: imagesPerSecondBatched and batchMs.inference are this estimate. */
  readonly batchEstimate?: BatchEstimate;
  /** How the single plan's rotations are keyed, and why (keyparams' note). */
  readonly rotationKeys: string;
  readonly keyNote?: string;
}

const execFileP = promisify(execFile);

/**
 * Runs `he keygen` (src/inference/he.ts heKeygen) on `keyParamsPath` in a child Node process and
 * returns its time and peak memory.
 */
export async function measureKeygen(keyParamsPath: string, out: string, kp: KeyParams): Promise<KeygenFigures> {
  const he = new URL('../src/inference/he.ts', import.meta.url).href;
  const seal = new URL('../src/ckks/index.ts', import.meta.url).href;
  const script = `const { heKeygen } = await import(${JSON.stringify(he)}); const { sealHeapBytes } = await import(${JSON.stringify(seal)});
const t = performance.now(); await heKeygen({ keyParams: ${JSON.stringify(keyParamsPath)}, out: ${JSON.stringify(out)} }); const ms = performance.now() - t;
process.stdout.write(JSON.stringify({ ms, peakRssBytes: process.resourceUsage().maxRSS * 1024, sealHeapBytes: await sealHeapBytes() }));`;
  const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', script], { maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout) as { ms: number; peakRssBytes: number; sealHeapBytes: number };
  return { ...r, estimatedPeakBytes: kp.keys.keygenPeakBytes, estimatedPublicKeyBytes: kp.keys.publicKeyBytes, galoisKeys: kp.galoisSteps.length };
}

const DEFAULT_MODEL = new URL('../examples/he/mnist_square.onnx', import.meta.url).pathname;
const DATA = new URL('../examples/data/mnist/', import.meta.url);

const argmax = (a: ArrayLike<number>, off: number): number => {
  let best = 0;
  for (let k = 1; k < 10; k++) if (a[off + k]! > a[off + best]!) best = k;
  return best;
};

/** The batch plan's inference time, estimated (never measured end to end). */
export interface BatchEstimate {
  readonly plainProducts: number;
  readonly products: number;
  /** One term of a 64-term plaintext-scalar linear combination, at the top level (lower levels are cheaper). */
  readonly msPerPlainProduct: number;
  /** One ciphertext product with relinearization and rescale, at the top level. */
  readonly msPerProduct: number;
  readonly threads: number;
  /** (plainProducts·msPerPlainProduct + products·msPerProduct) / threads: a perfect split. */
  readonly ms: number;
}

/**
 * Estimates the batch plan of `kp` from its operation counts (keyparams' cost model, which
 * counts exactly what the recorded program does) and operation times measured here.
 */
export async function estimateBatch(kp: KeyParams, threads: number): Promise<BatchEstimate> {
  const plan = kp.plans.batch;
  if (plan === undefined) throw new Error('keyparams have no batch plan');
  const ctx = await CkksContext.create(kp.params);
  try {
    const vs = Array.from({ length: 64 }, (_, i) => ctx.encryptVector(new Float64Array(8).fill(i / 64)));
    const reps = 3;
    let t = performance.now();
    for (let r = 0; r < reps; r++) ctx.linearCombination(vs, vs.map((_, i) => (i + 1) / 64), 0.5).delete();
    const msPerPlainProduct = (performance.now() - t) / (reps * vs.length);
    t = performance.now();
    for (let r = 0; r < reps; r++) ctx.mul(vs[r]!, vs[r + 1]!).delete();
    const msPerProduct = (performance.now() - t) / reps;
    for (const v of vs) v.delete();
    const ms = (plan.plainProducts * msPerPlainProduct + plan.products * msPerProduct) / threads;
    return { plainProducts: plan.plainProducts, products: plan.products, msPerPlainProduct, msPerProduct, threads, ms };
  } finally {
    ctx.delete();
  }
}

/** Runs the benchmark. */
export async function runHeBench(o: HeBenchOptions = {}): Promise<HeBenchResult> {
  // The baseline is a devDependency: asked for by name before any encryption work starts.
  const ort = (await importOptional(() => import('onnxruntime-node'), { name: 'onnxruntime-node', param: 'bench he', purpose: 'the onnxruntime baseline of `cipherml bench he`', dev: true })).default;
  const log = o.onProgress ?? (() => undefined);
  if (o.batch !== undefined) assertIntegerInRange(o.batch, 'batch', 1, 10_000);
  if (o.threads !== undefined) assertIntegerInRange(o.threads, 'threads', 1, 64);
  // 0: the single plan is not run (its figures are null with a reason, printed as "not run").
  if (o.singleImages !== undefined) assertIntegerInRange(o.singleImages, 'singleImages', 0, 10_000);
  const modelPath = o.model ?? DEFAULT_MODEL;
  const images = readIdx(await readFile(new URL('t10k-images-idx3-ubyte.gz', DATA)));
  const labels = readIdx(await readFile(new URL('t10k-labels-idx1-ubyte.gz', DATA)));
  const count = images.dims[0]!;
  const pixels = (i: number): Float64Array => Float64Array.from(images.data.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
  const graph = parseOnnx(await readFile(modelPath));
  // Calibrate on the last 500 test images; measure on the first `batch` (disjoint up to 9,500).
  const calib = new Float64Array(500 * 784);
  for (let i = 0; i < 500; i++) calib.set(pixels(count - 500 + i), i * 784);
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, { dims: [500, 1, 28, 28], data: calib }, { packing: 'auto', ...o.calibration });
  log(`keyparams: depth ${keyParams.depth}, N = ${keyParams.params.polyModulusDegree}, moduli [${keyParams.params.coeffModulusBits.join(', ')}], ${keyParams.galoisSteps.length} Galois keys (${keyParams.keys.rotationKeys}), key.pub ≈ ${(keyParams.keys.publicKeyBytes / 2 ** 20).toFixed(1)} MiB`);
  // The key set is made by `he keygen`'s own code in a child process (time, peak memory), then read back.
  const dir = await mkdtemp(join(tmpdir(), 'cipherml-bench-he-'));
  let keygen: KeygenFigures;
  let client: CkksContext;
  let pub: Uint8Array;
  try {
    await writeFile(join(dir, 'keyparams.json'), JSON.stringify(keyParams));
    keygen = await measureKeygen(join(dir, 'keyparams.json'), join(dir, 'key'), keyParams);
    client = await readSecretKeyFile(join(dir, 'key'));
    pub = await readFile(join(dir, 'key.pub'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  log(`keygen: ${(keygen.ms / 1000).toFixed(1)} s, peak RSS ${(keygen.peakRssBytes / 2 ** 20).toFixed(0)} MiB, key.pub ${(pub.length / 2 ** 20).toFixed(1)} MiB`);
  const batchOnly = await CkksContext.create(keyParams.params);
  const publicKeyBytesBatchOnly = serializePublicContext(batchOnly).length;
  batchOnly.delete();
  const server = await deserializePublicContext(pub);
  const batch = Math.min(o.batch ?? client.slotCount, count);
  const threads = o.threads ?? availableParallelism();
  const singleImages = Math.min(o.singleImages ?? 10, batch);
  const samples = Array.from({ length: batch }, (_, i) => pixels(i));
  let pool: InferencePool | undefined;
  let encPool: EncryptionPool | undefined;
  try {
    // Single plan: prepare once, then per image encrypt → infer → decrypt (skipped for 0 images).
    const single = { encrypt: 0, inference: 0, decrypt: 0 };
    const singleScores: Float64Array[] = [];
    let ciphertextBytesSingle = 0;
    let prepareMs = Number.NaN;
    if (singleImages > 0) {
      using prepared = prepareSingle(server, calibrated);
      prepareMs = prepared.prepareMs;
      log(`single plan: ${prepared.plan.cost.rotations} rotations, ${prepared.plan.cost.diagonals} diagonals, depth ${prepared.plan.depth}; prepared in ${prepared.prepareMs.toFixed(0)} ms`);
      for (let i = 0; i < singleImages; i++) {
        let t = performance.now();
        const bytes = encryptSingle(client, [samples[i]!], [1, 28, 28]);
        single.encrypt += performance.now() - t;
        ciphertextBytesSingle = bytes.length;
        t = performance.now();
        const out = inferBytes(server, calibrated, bytes, { prepared });
        single.inference += performance.now() - t;
        t = performance.now();
        singleScores.push(Float64Array.from(decryptOutput(client, out).data));
        single.decrypt += performance.now() - t;
      }
    } else {
      log('single plan: NOT RUN (0 single images)');
    }
    const nullReasons: Record<string, string> = {};
    const noSingle = 'the single plan was not run (0 single images)';
    const per = (name: string, x: number): number | null => {
      if (singleImages > 0) return x / singleImages;
      nullReasons[`singleMs.${name}`] = noSingle;
      return null;
    };
    const singleMs = { prepare: singleImages > 0 ? prepareMs : null, encrypt: per('encrypt', single.encrypt), inference: per('inference', single.inference), decrypt: per('decrypt', single.decrypt) };
    if (singleImages === 0) nullReasons['singleMs.prepare'] = noSingle;
    const latencyMsSingle = singleImages > 0 ? (single.encrypt + single.inference + single.decrypt) / singleImages : null;
    if (latencyMsSingle === null) nullReasons.latencyMsSingle = noSingle;
    else log(`single image: ${latencyMsSingle.toFixed(0)} ms (encrypt ${(single.encrypt / singleImages).toFixed(0)}, inference ${(single.inference / singleImages).toFixed(0)}, decrypt ${(single.decrypt / singleImages).toFixed(0)}) over ${singleImages} images`);

    // Batch plan: client encryption and server inference, each on `threads` worker threads; or,
    // with estimateBatch, its inference time from the plan's operation counts and measured
    // operation times (the same for 1 image and a full batch).
    let tEnc = 0;
    let tInf = 0;
    let tDec = 0;
    let encBytes = 0;
    let dec: { data: ArrayLike<number> } | undefined;
    let estimate: BatchEstimate | undefined;
    let poolStats: readonly PoolRunStats[] | null = null;
    if (o.estimateBatch === true) {
      estimate = await estimateBatch(keyParams, threads);
      tInf = estimate.ms;
      log(`batch plan ESTIMATED (not run): ${estimate.plainProducts} scalar products × ${estimate.msPerPlainProduct.toFixed(3)} ms + ${estimate.products} products × ${estimate.msPerProduct.toFixed(1)} ms over ${threads} threads = ${(estimate.ms / 1000).toFixed(0)} s`);
    } else {
      pool = await InferencePool.create(pub, { threads });
      encPool = await EncryptionPool.create(serializeSecretKey(client), { threads });
      log(`pools: ${threads} inference threads started in ${pool.startMs.toFixed(0)} ms, ${threads} encryption threads in ${encPool.startMs.toFixed(0)} ms`);
      let t = performance.now();
      const enc = await encPool.encryptBatch(samples, [1, 28, 28]);
      tEnc = performance.now() - t;
      encBytes = enc.length;
      log(`batch of ${batch}: encrypted in ${tEnc.toFixed(0)} ms (${enc.length} bytes)`);
      // The client's threads are done: their SEAL heaps are not the server's to carry.
      await encPool.close();
      t = performance.now();
      const outBytes = await pool.inferBytes(calibrated, enc, { onProgress: (d, n, what) => log(`  [${d}/${n}] ${what} (${((performance.now() - t) / 1000).toFixed(1)} s)`) });
      tInf = performance.now() - t;
      t = performance.now();
      dec = decryptOutput(client, outBytes);
      tDec = performance.now() - t;
      log(`batch of ${batch}: inference ${tInf.toFixed(0)} ms, decrypt ${tDec.toFixed(0)} ms`);
      poolStats = pool.lastRun;
      log(`inference threads: ${poolStats.map((p, i) => `#${i} peak ${(p.peakHeapBytes / 2 ** 20).toFixed(0)} MiB of ciphertexts in SEAL's heap (${(p.wasmBytes / 2 ** 20).toFixed(0)} MiB WebAssembly memory), ${p.spills} spilled, ${p.reloads} reloaded`).join('; ')}`);
    }
    let t: number;

    // Baseline: onnxruntime on the same images (float32), batched and one image.
    const session = await ort.InferenceSession.create(serializeOnnx(calibrated));
    const flat = new Float32Array(batch * 784);
    samples.forEach((s, i) => flat.set(s, i * 784));
    const name = session.inputNames[0]!;
    // One untimed run first: the baseline's first call pays its own warm-up.
    await session.run({ [name]: new ort.Tensor('float32', flat.subarray(0, 784), [1, 1, 28, 28]) });
    t = performance.now();
    const res = await session.run({ [name]: new ort.Tensor('float32', flat, [batch, 1, 28, 28]) });
    const tOrt = performance.now() - t;
    t = performance.now();
    await session.run({ [name]: new ort.Tensor('float32', flat.subarray(0, 784), [1, 1, 28, 28]) });
    const tOrtSingle = performance.now() - t;
    const ref = res[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    let refOriginal: Float32Array | undefined;
    if (o.original !== undefined) {
      const orig = await ort.InferenceSession.create(await readFile(o.original));
      const r = await orig.run({ [orig.inputNames[0]!]: new ort.Tensor('float32', flat, [batch, 1, 28, 28]) });
      refOriginal = r[orig.outputNames[0]!]!.data as Float32Array;
      await orig.release();
    }

    let maxAbsError = 0;
    let agree = 0;
    let correctPlain = 0;
    let correctEnc = 0;
    let agreeOriginal = 0;
    let correctOriginal = 0;
    const compared = dec === undefined ? 0 : batch;
    for (let i = 0; i < compared; i++) {
      for (let k = 0; k < 10; k++) maxAbsError = Math.max(maxAbsError, Math.abs(dec!.data[i * 10 + k]! - ref[i * 10 + k]!));
      const pe = argmax(dec!.data, i * 10);
      const pp = argmax(ref, i * 10);
      if (pe === pp) agree++;
      if (pp === labels.data[i]) correctPlain++;
      if (pe === labels.data[i]) correctEnc++;
      if (refOriginal !== undefined && pe === argmax(refOriginal, i * 10)) agreeOriginal++;
      if (refOriginal !== undefined && argmax(refOriginal, i * 10) === labels.data[i]) correctOriginal++;
    }
    const judged = compared + singleImages;
    const noneDecrypted = 'no encrypted output was decrypted: the batch plan was estimated, not run, and the single plan was not run';
    if (judged === 0) for (const k of ['argmaxAgreement', 'plaintextAccuracy', 'encryptedAccuracy']) nullReasons[k] = noneDecrypted;
    singleScores.forEach((s, i) => {
      for (let k = 0; k < 10; k++) maxAbsError = Math.max(maxAbsError, Math.abs(s[k]! - ref[i * 10 + k]!));
      if (argmax(s, 0) === argmax(ref, i * 10)) agree++;
      if (compared === 0 && argmax(ref, i * 10) === labels.data[i]) correctPlain++;
      if (compared === 0 && argmax(s, 0) === labels.data[i]) correctEnc++;
      if (refOriginal !== undefined && argmax(s, 0) === argmax(refOriginal, i * 10)) agreeOriginal++;
      if (refOriginal !== undefined && compared === 0 && argmax(refOriginal, i * 10) === labels.data[i]) correctOriginal++;
    });
    if (o.original === undefined) nullReasons.argmaxAgreementOriginal = nullReasons.originalAccuracy = 'no original model was given';
    else if (judged === 0) nullReasons.argmaxAgreementOriginal = nullReasons.originalAccuracy = noneDecrypted;
    const withOriginal = o.original !== undefined && judged > 0;
    return {
      model: modelPath,
      cores: availableParallelism(),
      threads,
      polyModulusDegree: keyParams.params.polyModulusDegree,
      coeffModulusBits: keyParams.params.coeffModulusBits,
      scaleBits: keyParams.params.scaleBits,
      depth: keyParams.depth,
      batch,
      latencyMsSingle,
      singleMs,
      singleImages,
      imagesPerSecondBatched: batch / ((tEnc + tInf + tDec) / 1000),
      serverImagesPerSecond: batch / (tInf / 1000),
      batchMs: { poolStart: pool?.startMs ?? 0, encryptPoolStart: encPool?.startMs ?? 0, encrypt: tEnc, inference: tInf, decrypt: tDec },
      onnxruntimeMs: tOrt,
      onnxruntimeMsSingle: tOrtSingle,
      onnxruntimeImagesPerSecond: batch / (tOrt / 1000),
      maxAbsError,
      argmaxAgreement: judged === 0 ? null : agree / judged,
      argmaxAgreementOriginal: withOriginal ? agreeOriginal / judged : null,
      originalAccuracy: withOriginal ? correctOriginal / (compared || singleImages) : null,
      // Over the batch (over the single images when the batch plan is estimated).
      plaintextAccuracy: judged === 0 ? null : correctPlain / (compared || singleImages),
      encryptedAccuracy: judged === 0 ? null : correctEnc / (compared || singleImages),
      nullReasons,
      publicKeyBytes: pub.length,
      publicKeyBytesBatchOnly,
      poolStats,
      ciphertextBytesPerImage: encBytes / batch,
      ciphertextBytesSingle,
      targets: { imagesPerSecondBatched: 100, latencyMsSingle: 1000, argmaxAgreement: 0.99 },
      keygen,
      ...(estimate === undefined ? {} : { batchEstimate: estimate }),
      rotationKeys: keyParams.keys.rotationKeys,
      ...(keyParams.keys.note === undefined ? {} : { keyNote: keyParams.keys.note }),
    };
  } finally {
    await pool?.close();
    await encPool?.close();
    server.delete();
    client.delete();
  }
}

/** A human-readable table. */
export function formatHeBench(r: HeBenchResult): string {
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const ms = (x: number | null): string => (x === null ? 'not run' : x.toFixed(0));
  const pct = (x: number | null): string => (x === null ? 'not measured' : `${(100 * x).toFixed(2)} %`);
  const rows: [string, string, string][] = [
    ['images per second (batch plan, end to end)', r.imagesPerSecondBatched.toFixed(1), `${r.onnxruntimeImagesPerSecond.toFixed(0)} (onnxruntime, plaintext); target ≥ ${r.targets.imagesPerSecondBatched}`],
    ['images per second (batch plan, server only)', r.serverImagesPerSecond.toFixed(1), `${r.threads} threads`],
    ['batch: encrypt / inference / decrypt (ms)', `${r.batchMs.encrypt.toFixed(0)} / ${r.batchMs.inference.toFixed(0)} / ${r.batchMs.decrypt.toFixed(0)}`, `${r.onnxruntimeMs.toFixed(1)} (onnxruntime); pools start ${r.batchMs.encryptPoolStart.toFixed(0)} / ${r.batchMs.poolStart.toFixed(0)}`],
    ['single-image latency (single plan, ms)', ms(r.latencyMsSingle), `${r.onnxruntimeMsSingle.toFixed(2)} (onnxruntime); target ≤ ${r.targets.latencyMsSingle}`],
    ['single: encrypt / inference / decrypt (ms)', `${ms(r.singleMs.encrypt)} / ${ms(r.singleMs.inference)} / ${ms(r.singleMs.decrypt)}`, `prepare ${ms(r.singleMs.prepare)} once`],
    ['max |decrypted − onnxruntime|', r.maxAbsError.toExponential(2), '0'],
    ['argmax agreement', pct(r.argmaxAgreement), `100 %; target ≥ ${100 * r.targets.argmaxAgreement} %`],
    ['accuracy (encrypted / plaintext)', pct(r.encryptedAccuracy), pct(r.plaintextAccuracy)],
    ['public key (both plans / batch only)', `${mb(r.publicKeyBytes)} / ${mb(r.publicKeyBytesBatchOnly)}`, `estimated ${mb(r.keygen.estimatedPublicKeyBytes)}; ${r.keygen.galoisKeys} Galois keys (${r.rotationKeys})`],
    ['keygen (he keygen, own process): time / peak RSS', `${(r.keygen.ms / 1000).toFixed(1)} s / ${mb(r.keygen.peakRssBytes)}`, `SEAL heap ${mb(r.keygen.sealHeapBytes)}; estimated ${mb(r.keygen.estimatedPeakBytes)} beyond the runtime`],
    ['ciphertext bytes per image (batch / single)', `${r.ciphertextBytesPerImage.toFixed(0)} / ${r.ciphertextBytesSingle}`, String(784 * 4)],
  ];
  const w = Math.max(...rows.map((x) => x[0].length));
  return [
    `cipherml he bench — ${r.model}: batch ${r.batch} + ${r.singleImages} single, N = ${r.polyModulusDegree}, moduli [${r.coeffModulusBits.join(', ')}], scale 2^${r.scaleBits}, depth ${r.depth}, ${r.cores} cores`,
    `${'metric'.padEnd(w)}  cipherml CKKS            baseline`,
    ...rows.map(([a, b, c]) => `${a.padEnd(w)}  ${b.padEnd(22)}  ${c}`),
  ].join('\n');
}
