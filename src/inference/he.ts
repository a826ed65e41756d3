import { unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { CiphertextFile, CkksContext, CkksVector } from '../ckks/index.ts';
import {
  CkksContext as Ctx,
  checkCiphertextFile,
  deserializeCiphertexts,
  deserializePublicContext,
  encryptToBytes,
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
import { batchLayout, checkBatchInput, checkInputShape, readMeta, singleLayout } from './meta.ts';
import { EncryptionPool, InferencePool } from './pool.ts';
import type { PreparedSingle } from './single.ts';
import { prepareSingle, runSingle } from './single.ts';

/**
 * The five HE-MAN steps on files. Who holds what: the model owner runs `keyparams` (plaintext
 * model + calibration data) and `inference` (calibrated model + `key.pub` + ciphertexts); the
 * client runs `keygen`, `encrypt` and `decrypt` and alone holds `key` (mode 0600).
 */

/** What `he keygen` records in the secret key file for `he encrypt`'s packing choice. */
interface PackingHints {
  readonly packing: Packing;
  readonly singleUpTo: number;
  /** The model's input shape (batch axis first, null for a free dimension). */
  readonly inputDims?: readonly (number | null)[];
  /** The model outputs' range on the calibration set (keyparams), for the decryption check. */
  readonly outputRange?: readonly [number, number];
}

/**
 * Decrypted values far outside the calibrated output range: outside [lo − w, hi + w] with
 * w = hi − lo. Such a value means the input left the range the activations were fitted on, or
 * the computation wrapped around the modulus; it is not a trustworthy result.
 */
export interface RangeWarning {
  readonly count: number;
  readonly calibrated: readonly [number, number];
  readonly allowed: readonly [number, number];
  /** The value furthest outside, and its flat index. */
  readonly worst: { readonly index: number; readonly value: number };
}

/**
 * Checks decrypted values against the calibrated output range (see {@link RangeWarning}).
 *
 * @example
 * ```ts
 * const w = checkOutputRange(decrypted.data, [-3, 9]); // undefined when every value is plausible
 * ```
 */
export function checkOutputRange(values: ArrayLike<number>, range: readonly [number, number] | undefined): RangeWarning | undefined {
  if (range === undefined || !Number.isFinite(range[0]) || !Number.isFinite(range[1])) return undefined;
  const w = Math.max(range[1] - range[0], 1e-6);
  const allowed: [number, number] = [range[0] - w, range[1] + w];
  let count = 0;
  let worst = { index: -1, value: 0, by: -1 };
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const by = Number.isNaN(v) ? Infinity : Math.max(allowed[0] - v, v - allowed[1]);
    if (by > 0) {
      count++;
      if (by > worst.by) worst = { index: i, value: v, by };
    }
  }
  return count === 0 ? undefined : { count, calibrated: range, allowed, worst: { index: worst.index, value: worst.value } };
}

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
 * Batch-encrypts samples: `samples[s]` is one flattened sample; element j of sample s goes into
 * ciphertext j of chunk ⌊s / slotCount⌋, slot s mod slotCount.
 *
 * @example
 * ```ts
 * const bytes = encryptBatch(client, [digitA, digitB], [1, 28, 28]);
 * ```
 */
export function encryptBatch(ctx: CkksContext, samples: readonly Float64Array[], dims: readonly number[]): Uint8Array {
  const { vectors, meta } = batchLayout(ctx.slotCount, samples, dims);
  return encryptToBytes(ctx, vectors, meta);
}

/**
 * Encrypts each sample into its own ciphertext for the single plan (replicated every
 * nextPow2(size) slots).
 *
 * @example
 * ```ts
 * const bytes = encryptSingle(client, [digit], [1, 28, 28]);
 * ```
 */
export function encryptSingle(ctx: CkksContext, samples: readonly Float64Array[], dims: readonly number[]): Uint8Array {
  const { vectors, meta } = singleLayout(ctx.slotCount, samples, dims);
  return encryptToBytes(ctx, vectors, meta);
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
 * The packing `he encrypt` uses for `samples` inputs: `auto` follows the key set's hints
 * (single up to `singleUpTo` samples when the key set supports both plans).
 *
 * @example
 * ```ts
 * choosePacking(client, 1, 'auto'); // 'single' for keys made with --packing auto
 * ```
 */
export function choosePacking(ctx: CkksContext, samples: number, requested: Packing = 'auto'): 'batch' | 'single' {
  const h = ctx.metadata as Partial<PackingHints> | undefined;
  const supported: Packing = h?.packing ?? 'batch';
  if (requested !== 'auto' && supported !== 'auto' && requested !== supported) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the key set was made for the ${supported} plan only; run he keyparams with --packing ${requested} or auto and make new keys`, { param: 'packing', details: { supported, requested } });
  }
  if (requested !== 'auto') return requested;
  if (supported !== 'auto') return supported;
  return samples <= (h?.singleUpTo ?? 0) ? 'single' : 'batch';
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
  onProgress?: (done: number, total: number, op: string) => void;
}): Promise<{ bytes: number; packing: 'batch' | 'single'; threads: number }> {
  if (o.threads !== undefined && o.threads !== 'auto') assertIntegerInRange(o.threads, 'threads', 1, 64);
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
  if (threads > 1) {
    const pool = await InferencePool.create(keyBytes, { threads });
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
 * Decrypts an output file (either packing) to a [batch, …dims] tensor.
 *
 * @example
 * ```ts
 * const scores = decryptOutput(client, await readFile('output.enc'));
 * ```
 */
export function decryptOutput(ctx: CkksContext, bytes: Uint8Array): Tensor {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'input');
  try {
    const m = readMeta(meta);
    const per = sizeOf(m.dims);
    const data = new Float64Array(m.batch * per);
    if (m.packing === 'single') {
      const slots = m.slots ?? Array.from({ length: per }, (_, j) => j);
      if (vectors.length !== m.batch || slots.length !== per || slots.some((j) => !Number.isInteger(j) || j < 0 || j >= ctx.slotCount)) {
        throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the single-packed output does not match its metadata', { param: 'input' });
      }
      vectors.forEach((v, s) => {
        const all = ctx.decryptVector(v, ctx.slotCount);
        slots.forEach((j, k) => (data[s * per + k] = all[j]!));
      });
    } else {
      const chunks = m.chunks ?? 1;
      if (vectors.length !== chunks * per) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${vectors.length} ciphertexts for ${chunks} chunk(s) of ${per}`, { param: 'input' });
      vectors.forEach((v, i) => {
        const c = Math.floor(i / per);
        const j = i % per;
        const n = Math.min(ctx.slotCount, m.batch - c * ctx.slotCount);
        const col = ctx.decryptVector(v, n);
        for (let s = 0; s < n; s++) data[(c * ctx.slotCount + s) * per + j] = col[s]!;
      });
    }
    return { dims: [m.batch, ...m.dims], data };
  } finally {
    for (const v of vectors) v.delete();
  }
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
