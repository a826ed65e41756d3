import { unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { CiphertextFile, CkksContext, CkksVector } from '../ckks/index.ts';
import {
  CkksContext as Ctx,
  checkCiphertextFile,
  deserializePublicContext,
  loadCiphertext,
  loadSeal,
  readSecretKeyFile,
  serializeSecretKey,
  serializeCiphertexts,
  splitCiphertextFile,
  validateCkksParameters,
  writeKeyFiles,
} from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { readFileTyped, refuseExisting, writeFileSafely } from '../core/io.ts';
import { batchCost, runBatch } from './batch.ts';
import type { CalibrateOptions, KeyParams, Packing } from './calibrate.ts';
import { calibrate } from './calibrate.ts';
import { readArrays, readNpy, writeNpy } from './npy.ts';
import type { Graph, Tensor } from './onnx.ts';
import { readOnnxFile, serializeOnnx, sizeOf } from './onnx.ts';
import type { TensorMeta } from './meta.ts';
import { checkBatchInput, checkInputShape, readMeta } from './meta.ts';
import { EncryptionPool, InferencePool, THREAD_HEAP_MIB } from './pool.ts';
import type { PreparedSingle } from './single.ts';
import { prepareSingle, runSingle } from './single.ts';
import { checkOutputRange, choosePacking, decryptOutput, encryptBatch, encryptSingle } from './codec.ts';
import type { PackingHints, RangeWarning } from './codec.ts';

export { checkOutputRange, choosePacking, decryptOutput, encryptBatch, encryptSingle };
export type { RangeWarning };

/**
 * The five HE-MAN steps on files. Who holds what: the model owner runs `keyparams` (plaintext
 * model + calibration data) and `inference` (calibrated model + `key.pub` + ciphertexts); the
 * client runs `keygen`, `encrypt` and `decrypt` and alone holds `key` (mode 0600).
 */



/** Loads and parses an ONNX file. */
export async function readModel(path: string): Promise<Graph> {
  return readOnnxFile(path, 'model');
}

/**
 * `he keyparams`: calibrates the model, writes `out` (keyparams JSON) and `model_calibrated.onnx`
 * beside the model.
 *
 * @example
 * ```ts
 * await heKeyParams({ model: 'model.onnx', calibration: 'calib.npz', out: 'keyparams.json' });
 * ```
 */
export async function heKeyParams(o: { model: string; calibration: string; out: string; overwrite?: boolean } & CalibrateOptions): Promise<{ keyParams: KeyParams; calibratedModel: string }> {
  const calibratedPath = join(dirname(o.model), `${basename(o.model, extname(o.model))}_calibrated.onnx`);
  await refuseExisting([calibratedPath, o.out], o.overwrite === true);
  const graph = await readModel(o.model);
  const arrays = readArrays(await readFileTyped(o.calibration, 'calibration'), 'calibration');
  const samples = concatBatch(arrays, graph);
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, samples, o);
  const overwrite = o.overwrite === true;
  await writeFileSafely(calibratedPath, serializeOnnx(calibrated), { overwrite });
  try {
    await writeFileSafely(o.out, `${JSON.stringify(keyParams, null, 2)}\n`, { overwrite });
  } catch (e) {
    // The calibrated model belongs with these keyparams: take it back.
    if (!overwrite) await unlink(calibratedPath).catch(() => undefined);
    throw e;
  }
  return { keyParams, calibratedModel: calibratedPath };
}

/** Reads and checks a keyparams file. */
export async function readKeyParams(path: string): Promise<KeyParams> {
  let kp: KeyParams;
  try {
    kp = JSON.parse(Buffer.from(await readFileTyped(path, 'keyparams')).toString('utf8')) as KeyParams;
  } catch (e) {
    if (e instanceof CipherMLError) throw e;
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path} is not JSON`, { param: 'keyparams', cause: e });
  }
  if (kp?.format !== 'cipherml-he-keyparams' || kp.version !== 1) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `${path} is not a cipherml keyparams file (version 1)`, { param: 'keyparams' });
  validateCkksParameters(await loadSeal(), kp.params);
  if (kp.packing !== undefined && !['auto', 'batch', 'single'].includes(kp.packing)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path}: packing "${String(kp.packing)}" is not auto, batch or single`, { param: 'keyparams' });
  return { ...kp, packing: kp.packing ?? 'batch', singleUpTo: kp.singleUpTo ?? 0, plans: kp.plans ?? {}, galoisSteps: kp.galoisSteps ?? [] };
}

/**
 * `he keygen`: makes the key set for keyparams; writes `out` (secret, 0600) and `out.pub`.
 *
 * @example
 * ```ts
 * await heKeygen({ keyParams: 'keyparams.json', out: 'key' });
 * ```
 */
export async function heKeygen(o: { keyParams: string; out: string; overwrite?: boolean }): Promise<{ secretKeyPath: string; publicKeyPath: string; fingerprint: string }> {
  const kp = await readKeyParams(o.keyParams);
  // Evaluation keys are generated once, seeded, a group at a time, while key.pub is written.
  const ctx = await Ctx.create(kp.params, { galoisSteps: kp.galoisSteps, deferEvaluationKeys: true });
  try {
    const hints: PackingHints = { packing: kp.packing, singleUpTo: kp.singleUpTo, inputDims: kp.inputDims, ...(kp.outputRange === undefined ? {} : { outputRange: kp.outputRange }) };
    ctx.metadata = hints;
    const paths = await writeKeyFiles(o.out, ctx, { overwrite: o.overwrite === true });
    return { ...paths, fingerprint: ctx.fingerprint };
  } finally {
    ctx.delete();
  }
}


/**
 * Splits an input's shape into batch size and per-sample shape. With the model's input shape
 * (recorded in the key file by keygen) an input of the same rank has a batch axis, one of rank
 * one less is a single sample, and the per-sample shape must match; without it, the first axis
 * of a rank ≥ 2 input is the batch.
 */
function splitBatch(shape: readonly number[], model: readonly (number | null)[] | undefined): { dims: readonly number[]; batch: number } {
  if (model === undefined || !Array.isArray(model) || model.length === 0) return shape.length > 1 ? { dims: shape.slice(1), batch: shape[0]! } : { dims: shape, batch: 1 };
  const want = model.slice(1);
  const dims = shape.length === model.length ? shape.slice(1) : shape.length === want.length ? shape : undefined;
  if (dims === undefined || want.some((d, i) => d !== null && d !== dims[i])) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `input of shape [${shape.join(', ')}]; the model takes [${model.map((d) => d ?? 'N').join(', ')}] (or one sample of [${want.map((d) => d ?? '?').join(', ')}])`, {
      param: 'input',
      details: { expected: model, actual: shape },
    });
  }
  return { dims, batch: shape.length === model.length ? shape[0]! : 1 };
}


/**
 * `he encrypt`: reads `input` (.npy; a leading batch axis is a batch) and writes ciphertexts in
 * the chosen packing.
 *
 * @example
 * ```ts
 * await heEncrypt({ key: 'key', input: 'input.npy', out: 'input.enc' });
 * ```
 */
export async function heEncrypt(o: { key: string; input: string; out: string; overwrite?: boolean; packing?: Packing; threads?: number | 'auto' }): Promise<{ batch: number; dims: readonly number[]; bytes: number; packing: 'batch' | 'single'; threads: number }> {
  if (o.threads !== undefined && o.threads !== 'auto') assertIntegerInRange(o.threads, 'threads', 1, 64);
  await refuseExisting([o.out], o.overwrite === true);
  const ctx = await readSecretKeyFile(o.key);
  try {
    const t = readNpy(await readFileTyped(o.input, 'input'), 'input');
    const { dims, batch } = splitBatch(t.dims, (ctx.metadata as Partial<PackingHints> | undefined)?.inputDims);
    const per = sizeOf(dims);
    const samples = Array.from({ length: batch }, (_, s) => t.data.subarray(s * per, (s + 1) * per));
    const packing = choosePacking(ctx, batch, o.packing ?? 'auto');
    const count = packing === 'single' ? batch : Math.ceil(batch / ctx.slotCount) * per;
    const wanted = o.threads ?? 1;
    const threads = wanted === 'auto' ? (count >= POOL_MIN_CIPHERTEXTS ? availableParallelism() : 1) : wanted;
    let bytes: Uint8Array;
    if (threads > 1) {
      const pool = await EncryptionPool.create(serializeSecretKey(ctx), { threads });
      try {
        bytes = await (packing === 'single' ? pool.encryptSingle(samples, dims) : pool.encryptBatch(samples, dims));
      } finally {
        await pool.close();
      }
    } else bytes = packing === 'single' ? encryptSingle(ctx, samples, dims) : encryptBatch(ctx, samples, dims);
    await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true });
    return { batch, dims, bytes: bytes.length, packing, threads };
  } finally {
    ctx.delete();
  }
}

/** Options of {@link inferBytes}. */
export interface InferOptions {
  /** Progress per finished node (batch) or step (single), with the sample or chunk index. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
  /**
   * The single plan prepared once for this model and key set ({@link prepareSingle}), reused
   * across requests; without it a single-packed input prepares (and frees) its own.
   */
  readonly prepared?: PreparedSingle;
}

/**
 * Runs the model on an encrypted file's bytes (batch or single packing, as the file says) and
 * returns the encrypted output's bytes. Shapes, depth and Galois keys are checked before any
 * ciphertext arithmetic.
 *
 * @example
 * ```ts
 * const out = inferBytes(server, graph, await readFile('input.enc'));
 * ```
 */
export function inferBytes(ctx: CkksContext, graph: Graph, bytes: Uint8Array, options: InferOptions = {}): Uint8Array {
  return inferFile(ctx, graph, splitCiphertextFile(bytes, 'input'), options);
}

/**
 * {@link inferBytes} on a file already split (e.g. to read its packing before choosing keys).
 *
 * @example
 * ```ts
 * const out = inferFile(server, graph, splitCiphertextFile(await readFile('input.enc')));
 * ```
 */
export function inferFile(ctx: CkksContext, graph: Graph, file: CiphertextFile, options: InferOptions = {}): Uint8Array {
  checkCiphertextFile(ctx, file, 'input');
  const m = readMeta(file.meta);
  checkInputShape(graph, m);
  const { per, chunks } = m.packing === 'batch' ? checkBatchInput(ctx, graph, m, file.records.length) : { per: 0, chunks: 0 };
  const vectors: CkksVector[] = [];
  try {
    file.records.forEach((r, i) => vectors.push(loadCiphertext(ctx, r, `input[${i}]`)));
    if (m.packing === 'single') return inferSingle(ctx, graph, vectors, m, options);
    const outs: CkksVector[] = [];
    try {
      for (let c = 0; c < chunks; c++) {
        const chunk = vectors.slice(c * per, (c + 1) * per);
        const onProgress = options.onProgress;
        outs.push(...runBatch(ctx, graph, chunk, { consumeInputs: true, ...(onProgress === undefined ? {} : { onProgress: (d: number, n: number, op: string) => onProgress(d, n, chunks > 1 ? `chunk ${c + 1}/${chunks} ${op}` : op) }) }));
      }
      const outMeta: TensorMeta = { format: 'cipherml-he-tensor', packing: 'batch', batch: m.batch, dims: [outs.length / chunks], chunks };
      return serializeCiphertexts(ctx, outs, outMeta);
    } finally {
      for (const v of outs) v.delete();
    }
  } finally {
    for (const v of vectors) v.delete();
  }
}

function inferSingle(ctx: CkksContext, graph: Graph, vectors: readonly CkksVector[], m: TensorMeta & { packing: 'single' }, options: InferOptions): Uint8Array {
  if (vectors.length !== m.batch) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${vectors.length} ciphertexts for ${m.batch} single-packed samples`, { param: 'input' });
  const given = options.prepared;
  if (given !== undefined && (given.graph !== graph || given.fingerprint !== ctx.fingerprint)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the prepared single plan was made for another model or key set', { param: 'prepared' });
  }
  const prepared = given ?? prepareSingle(ctx, graph);
  if (m.period !== prepared.plan.inputPeriod) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `the input is replicated every ${String(m.period)} slots, the plan needs ${prepared.plan.inputPeriod}`, { param: 'input' });
  const outs: CkksVector[] = [];
  try {
    vectors.forEach((x, i) => {
      const onProgress = options.onProgress;
      outs.push(runSingle(ctx, prepared, x, onProgress === undefined ? undefined : (d, n, what) => onProgress(d, n, m.batch > 1 ? `sample ${i + 1}/${m.batch} ${what}` : what)));
    });
    const outMeta: TensorMeta = { format: 'cipherml-he-tensor', packing: 'single', batch: m.batch, dims: [prepared.plan.outputSlots.length], slots: prepared.plan.outputSlots };
    return serializeCiphertexts(ctx, outs, outMeta);
  } finally {
    for (const v of outs) v.delete();
    if (given === undefined) prepared.delete();
  }
}

/** Fewer ciphertexts than this are encrypted on the calling thread: starting threads costs more. */
const POOL_MIN_CIPHERTEXTS = 64;

/** Batch programs cheaper than this (cost units ≈ scalar products) run on the calling thread: starting a pool costs more. */
const POOL_MIN_COST = 3000;
/** A ciphertext product (relinearize + rescale) in scalar-product units (SEAL-wasm, N = 8192). */
const PRODUCT_COST = 6;

/**
 * `he inference`: needs only the public evaluation keys. A batch-packed input runs on
 * `threads` worker threads ({@link InferencePool}; `auto`: one per core when the model is big
 * enough to repay starting them); a single-packed one on the calling thread.
 *
 * @example
 * ```ts
 * await heInference({ model: 'model_calibrated.onnx', key: 'key.pub', input: 'input.enc', out: 'output.enc', threads: 'auto' });
 * ```
 */
export async function heInference(o: {
  model: string;
  key: string;
  input: string;
  out: string;
  overwrite?: boolean;
  threads?: number | 'auto';
  /** MiB of ciphertexts each worker thread keeps in SEAL's heap (64–3584; see InferencePoolOptions.threadHeapMiB); set, a batch input always runs on the pool. */
  heapMiB?: number;
  onProgress?: (done: number, total: number, op: string) => void;
}): Promise<{ bytes: number; packing: 'batch' | 'single'; threads: number }> {
  if (o.threads !== undefined && o.threads !== 'auto') assertIntegerInRange(o.threads, 'threads', 1, 64);
  if (o.heapMiB !== undefined) assertIntegerInRange(o.heapMiB, 'heapMiB', THREAD_HEAP_MIB.min, THREAD_HEAP_MIB.max);
  await refuseExisting([o.out], o.overwrite === true);
  const graph = await readModel(o.model);
  const keyBytes = await readFileTyped(o.key, 'publicKeyPath');
  // The packing is in the file's metadata: read it first, then load only the keys the plan needs
  // (the single plan's Galois keys, or none for the batch plan) once.
  const file = splitCiphertextFile(await readFileTyped(o.input, 'input'), 'input');
  const packing = readMeta(file.meta).packing;
  const progress = o.onProgress === undefined ? {} : { onProgress: o.onProgress };
  let threads = 1;
  if (packing === 'batch') {
    const wanted = o.threads ?? 1;
    const cost = batchCost(graph);
    threads = wanted === 'auto' ? (cost.scalarProducts + PRODUCT_COST * cost.products >= POOL_MIN_COST ? availableParallelism() : 1) : wanted;
  }
  let bytes: Uint8Array;
  if (threads > 1 || (packing === 'batch' && o.heapMiB !== undefined)) {
    const pool = await InferencePool.create(keyBytes, { threads, ...(o.heapMiB === undefined ? {} : { threadHeapMiB: o.heapMiB }) });
    try {
      bytes = await pool.inferFile(graph, file, progress);
    } finally {
      await pool.close();
    }
  } else {
    const ctx = await deserializePublicContext(keyBytes, 'publicKeyPath', { galoisKeys: packing === 'single' });
    try {
      bytes = inferFile(ctx, graph, file, progress);
    } finally {
      ctx.delete();
    }
  }
  await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true });
  return { bytes: bytes.length, packing, threads };
}


/**
 * `he decrypt`: writes the decrypted output as float32 .npy; `rangeWarning` flags values far
 * outside the output range measured at calibration (see {@link RangeWarning}).
 *
 * @example
 * ```ts
 * await heDecrypt({ key: 'key', input: 'output.enc', out: 'output.npy' });
 * ```
 */
export async function heDecrypt(o: { key: string; input: string; out: string; overwrite?: boolean }): Promise<Tensor & { readonly rangeWarning?: RangeWarning }> {
  await refuseExisting([o.out], o.overwrite === true);
  const ctx = await readSecretKeyFile(o.key);
  try {
    const t = decryptOutput(ctx, await readFileTyped(o.input, 'input'));
    await writeFileSafely(o.out, writeNpy(t), { overwrite: o.overwrite === true });
    const rangeWarning = checkOutputRange(t.data, (ctx.metadata as Partial<PackingHints> | undefined)?.outputRange);
    return rangeWarning === undefined ? t : { ...t, rangeWarning };
  } finally {
    ctx.delete();
  }
}

/** Concatenates calibration arrays into one batch of the model's first input (free dimensions as 1). */
export function concatBatch(arrays: readonly Tensor[], graph: Graph): Tensor {
  const spec = graph.inputs[0];
  if (spec === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no input', { param: 'model' });
  const per = sizeOf(spec.dims.slice(1).map((d) => d ?? 1));
  const parts: Float64Array[] = [];
  for (const a of arrays) {
    if (a.data.length % per !== 0) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `calibration array of shape [${a.dims.join(', ')}] is not a batch of [${spec.dims.slice(1).join(', ')}]`, { param: 'calibration' });
    parts.push(a.data);
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const data = new Float64Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { dims: [total / per, ...spec.dims.slice(1).map((d) => d ?? 1)], data };
}
