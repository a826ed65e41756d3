import type { CkksContext } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { batchDepth } from './batch.ts';
import type { Graph } from './onnx.ts';
import { sizeOf } from './onnx.ts';
import { packSingleInput } from './single.ts';

/**
 * Ciphertext file metadata. `batch`: element j of chunk c is ciphertext c·per + j, slot s of it
 * belongs to sample c·slotCount + s. `single`: ciphertext i is sample i, its elements replicated
 * every `period` slots (input) or at `slots` (output).
 */
export type TensorMeta =
  | { readonly format: 'cipherml-he-tensor'; readonly packing: 'batch'; readonly batch: number; readonly dims: readonly number[]; readonly chunks?: number }
  | { readonly format: 'cipherml-he-tensor'; readonly packing: 'single'; readonly batch: number; readonly dims: readonly number[]; readonly period?: number; readonly slots?: readonly number[] };

/** Validates a ciphertext file's metadata (from the file, so untrusted). */
export function readMeta(meta: unknown): TensorMeta {
  const m = meta as TensorMeta | null;
  if (m?.format !== 'cipherml-he-tensor' || (m.packing !== 'batch' && m.packing !== 'single') || !Array.isArray(m.dims) || !Number.isInteger(m.batch) || m.batch < 1) {
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml HE tensor file (batch or single packing)', { param: 'input' });
  }
  return m;
}

/** The file's per-sample shape must be the model's input shape (a free dimension takes any size). */
export function checkInputShape(graph: Graph, m: TensorMeta): void {
  const want = graph.inputs[0]?.dims.slice(1) ?? [];
  if (want.length !== m.dims.length || want.some((d, i) => d !== null && d !== m.dims[i])) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `encrypted input has per-sample shape [${m.dims.join(', ')}], the model expects [${want.map((d) => d ?? '?').join(', ')}]`, { param: 'input' });
  }
}

/** A batch-packed file holds chunks × per ciphertexts and the key set has the plan's depth. */
export function checkBatchInput(ctx: CkksContext, graph: Graph, m: TensorMeta, count: number): { per: number; chunks: number } {
  const per = sizeOf(m.dims);
  const chunks = m.packing === 'batch' ? (m.chunks ?? 1) : 0;
  if (!Number.isInteger(chunks) || chunks < 1 || count !== chunks * per) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${count} ciphertexts for ${chunks} chunk(s) of ${per}`, { param: 'input' });
  const depth = batchDepth(graph);
  if (depth > ctx.maxLevel) {
    throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `the model needs ${depth} levels, the key set has ${ctx.maxLevel}`, { param: 'key', details: { depth, levels: ctx.maxLevel } });
  }
  return { per, chunks };
}

/**
 * The plaintext vectors of a batch-packed file and its metadata: element j of sample s goes into
 * vector j of chunk ⌊s / slotCount⌋, slot s mod slotCount.
 */
export function batchLayout(slotCount: number, samples: readonly ArrayLike<number>[], dims: readonly number[]): { vectors: Float64Array[]; meta: TensorMeta } {
  const per = sizeOf(dims);
  if (samples.length === 0) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', 'an empty batch', { param: 'input' });
  samples.forEach((x, i) => {
    if (x.length !== per) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `sample ${i} has ${x.length} values, [${dims.join(', ')}] has ${per}`, { param: 'input' });
  });
  const chunks = Math.ceil(samples.length / slotCount);
  const vectors: Float64Array[] = [];
  for (let c = 0; c < chunks; c++) {
    const part = samples.slice(c * slotCount, (c + 1) * slotCount);
    for (let j = 0; j < per; j++) vectors.push(Float64Array.from(part, (x) => x[j]!));
  }
  return { vectors, meta: { format: 'cipherml-he-tensor', packing: 'batch', batch: samples.length, dims, chunks } };
}

/** The plaintext vectors of a single-packed file (one per sample, replicated every nextPow2(size) slots) and its metadata. */
export function singleLayout(slotCount: number, samples: readonly ArrayLike<number>[], dims: readonly number[]): { vectors: Float64Array[]; meta: TensorMeta } {
  const inputSize = sizeOf(dims);
  const inputPeriod = 2 ** Math.ceil(Math.log2(Math.max(1, inputSize)));
  if (samples.length === 0) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', 'an empty batch', { param: 'input' });
  if (inputPeriod > slotCount) {
    throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `a sample of ${inputSize} values needs ${inputPeriod} slots, the key set has ${slotCount}`, { param: 'key' });
  }
  const vectors = samples.map((x) => packSingleInput({ inputSize, inputPeriod }, x, slotCount));
  return { vectors, meta: { format: 'cipherml-he-tensor', packing: 'single', batch: samples.length, dims, period: inputPeriod } };
}
