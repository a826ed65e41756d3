import type { CkksContext } from '../ckks/index.ts';
import { deserializeCiphertexts, encryptToBytes } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import type { Packing } from './calibrate.ts';
import { batchLayout, readMeta, singleLayout } from './meta.ts';
import type { Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * The trusted side's half of encrypted inference on bytes: packing choice, encryption of inputs
 * and decryption of outputs in the ciphertext container's format (src/ckks/serialize.ts with the
 * tensor metadata of ./meta.ts). No file system, no threads: the CLI (`he encrypt`/`he decrypt`,
 * ./he.ts), the gateway (src/gateway/inference.ts) and the browser console (web/src/infer-he.ts)
 * all run this one module, so their uploads are the service's format by construction.
 */

/** What `he keygen` records in the secret key file for `he encrypt`'s packing choice. */
export interface PackingHints {
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

export type { KeyParams } from './calibrate.ts';
export type { PublishedModel } from './service-wire.ts';
export type { Tensor } from './onnx.ts';
