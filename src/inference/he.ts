import { basename, dirname, extname, join } from 'node:path';
import type { CkksContext } from '../ckks/index.ts';
import {
  CkksContext as Ctx,
  deserializeCiphertexts,
  encryptToBytes,
  loadSeal,
  readPublicContextFile,
  readSecretKeyFile,
  serializeCiphertexts,
  validateCkksParameters,
  writeKeyFiles,
} from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped, writeFileSafely } from '../core/io.ts';
import { batchDepth, runBatch } from './batch.ts';
import type { CalibrateOptions, KeyParams } from './calibrate.ts';
import { calibrate } from './calibrate.ts';
import { readArrays, readNpy, writeNpy } from './npy.ts';
import type { Graph, Tensor } from './onnx.ts';
import { parseOnnx, serializeOnnx, sizeOf } from './onnx.ts';

/**
 * The five HE-MAN steps on files. Who holds what: the model owner runs `keyparams` (plaintext
 * model + calibration data) and `inference` (calibrated model + `key.pub` + ciphertexts); the
 * client runs `keygen`, `encrypt` and `decrypt` and alone holds `key` (mode 0600).
 */

/** Ciphertext file metadata for batch-packed tensors. */
interface TensorMeta {
  readonly format: 'cipherml-he-tensor';
  readonly packing: 'batch';
  /** Samples in the batch (slots used). */
  readonly batch: number;
  /** Per-sample dims (without the batch axis). */
  readonly dims: readonly number[];
}

/** Loads and parses an ONNX file. */
export async function readModel(path: string): Promise<Graph> {
  return parseOnnx(await readFileTyped(path, 'model'), 'model');
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
  const graph = await readModel(o.model);
  const arrays = readArrays(await readFileTyped(o.calibration, 'calibration'), 'calibration');
  const samples = concatBatch(arrays, graph);
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, samples, o);
  const calibratedModel = join(dirname(o.model), `${basename(o.model, extname(o.model))}_calibrated.onnx`);
  const overwrite = o.overwrite === true;
  await writeFileSafely(calibratedModel, serializeOnnx(calibrated), { overwrite });
  await writeFileSafely(o.out, `${JSON.stringify(keyParams, null, 2)}\n`, { overwrite });
  return { keyParams, calibratedModel };
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
  return kp;
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
  const ctx = await Ctx.create(kp.params, { galoisSteps: kp.galoisSteps });
  try {
    const paths = await writeKeyFiles(o.out, ctx, { overwrite: o.overwrite === true });
    return { ...paths, fingerprint: ctx.fingerprint };
  } finally {
    ctx.delete();
  }
}

/**
 * Batch-encrypts samples: `samples[s]` is one flattened sample; element j of every sample goes
 * into ciphertext j, slot s.
 *
 * @example
 * ```ts
 * const bytes = encryptBatch(client, [digitA, digitB], [1, 28, 28]);
 * ```
 */
export function encryptBatch(ctx: CkksContext, samples: readonly Float64Array[], dims: readonly number[]): Uint8Array {
  const per = sizeOf(dims);
  if (samples.length === 0 || samples.length > ctx.slotCount) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `a batch of ${samples.length} samples (1 to ${ctx.slotCount} fit these parameters)`, { param: 'input' });
  }
  const columns = Array.from({ length: per }, (_, j) => Float64Array.from(samples, (s) => s[j]!));
  const meta: TensorMeta = { format: 'cipherml-he-tensor', packing: 'batch', batch: samples.length, dims };
  return encryptToBytes(ctx, columns, meta);
}

/**
 * `he encrypt`: reads `input` (.npy; a leading batch axis is a batch) and writes ciphertexts.
 *
 * @example
 * ```ts
 * await heEncrypt({ key: 'key', input: 'input.npy', out: 'input.enc' });
 * ```
 */
export async function heEncrypt(o: { key: string; input: string; out: string; overwrite?: boolean }): Promise<{ batch: number; dims: readonly number[]; bytes: number }> {
  const ctx = await readSecretKeyFile(o.key);
  try {
    const t = readNpy(await readFileTyped(o.input, 'input'), 'input');
    const dims = t.dims.length > 1 ? t.dims.slice(1) : t.dims;
    const batch = t.dims.length > 1 ? t.dims[0]! : 1;
    const per = sizeOf(dims);
    const samples = Array.from({ length: batch }, (_, s) => t.data.subarray(s * per, (s + 1) * per));
    const bytes = encryptBatch(ctx, samples, dims);
    await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true });
    return { batch, dims, bytes: bytes.length };
  } finally {
    ctx.delete();
  }
}

/**
 * Runs the batch plan on an encrypted file's bytes and returns the encrypted output's bytes.
 *
 * @example
 * ```ts
 * const out = inferBatchBytes(server, graph, await readFile('input.enc'));
 * ```
 */
export function inferBatchBytes(ctx: CkksContext, graph: Graph, bytes: Uint8Array, onProgress?: (done: number, total: number, op: string) => void): Uint8Array {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'input');
  try {
    const m = meta as TensorMeta;
    if (m?.format !== 'cipherml-he-tensor' || m.packing !== 'batch') throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'the ciphertext file is not a batch-packed tensor', { param: 'input' });
    const spec = graph.inputs[0];
    const want = spec?.dims.slice(1) ?? [];
    if (want.length !== m.dims.length || want.some((d, i) => d !== null && d !== m.dims[i])) {
      throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `encrypted input has per-sample shape [${m.dims.join(', ')}], the model expects [${want.map((d) => d ?? '?').join(', ')}]`, { param: 'input' });
    }
    const depth = batchDepth(graph);
    if (depth > ctx.maxLevel) {
      throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `the model needs ${depth} levels, the key set has ${ctx.maxLevel}`, { param: 'key', details: { depth, levels: ctx.maxLevel } });
    }
    const outs = runBatch(ctx, graph, vectors, { consumeInputs: true, ...(onProgress === undefined ? {} : { onProgress }) });
    try {
      const outMeta: TensorMeta = { format: 'cipherml-he-tensor', packing: 'batch', batch: m.batch, dims: [outs.length] };
      return serializeCiphertexts(ctx, outs, outMeta);
    } finally {
      for (const v of outs) v.delete();
    }
  } finally {
    for (const v of vectors) v.delete();
  }
}

/**
 * `he inference`: needs only the public evaluation keys.
 *
 * @example
 * ```ts
 * await heInference({ model: 'model_calibrated.onnx', key: 'key.pub', input: 'input.enc', out: 'output.enc' });
 * ```
 */
export async function heInference(o: { model: string; key: string; input: string; out: string; overwrite?: boolean; onProgress?: (done: number, total: number, op: string) => void }): Promise<{ bytes: number }> {
  const graph = await readModel(o.model);
  const ctx = await readPublicContextFile(o.key);
  try {
    const bytes = inferBatchBytes(ctx, graph, await readFileTyped(o.input, 'input'), o.onProgress);
    await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true });
    return { bytes: bytes.length };
  } finally {
    ctx.delete();
  }
}

/**
 * Decrypts a batch-packed output to a [batch, …dims] tensor.
 *
 * @example
 * ```ts
 * const scores = decryptBatch(client, await readFile('output.enc'));
 * ```
 */
export function decryptBatch(ctx: CkksContext, bytes: Uint8Array): Tensor {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'input');
  try {
    const m = meta as TensorMeta;
    if (m?.format !== 'cipherml-he-tensor') throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml HE tensor file', { param: 'input' });
    const per = vectors.length;
    const data = new Float64Array(m.batch * per);
    vectors.forEach((v, j) => {
      const col = ctx.decryptVector(v, m.batch);
      for (let s = 0; s < m.batch; s++) data[s * per + j] = col[s]!;
    });
    return { dims: [m.batch, ...m.dims], data };
  } finally {
    for (const v of vectors) v.delete();
  }
}

/**
 * `he decrypt`: writes the decrypted output as float32 .npy.
 *
 * @example
 * ```ts
 * await heDecrypt({ key: 'key', input: 'output.enc', out: 'output.npy' });
 * ```
 */
export async function heDecrypt(o: { key: string; input: string; out: string; overwrite?: boolean }): Promise<Tensor> {
  const ctx = await readSecretKeyFile(o.key);
  try {
    const t = decryptBatch(ctx, await readFileTyped(o.input, 'input'));
    await writeFileSafely(o.out, writeNpy(t), { overwrite: o.overwrite === true });
    return t;
  } finally {
    ctx.delete();
  }
}

function concatBatch(arrays: readonly Tensor[], graph: Graph): Tensor {
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
