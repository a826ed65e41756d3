/**
 * The browser as the trusted side of encrypted inference (HE4Cloud flow, docs/console.md): the
 * key set for a model's published keyparams, encryption of the input, decryption of the output.
 * Loaded on first use (with SEAL's wasm), never at first load.
 *
 * The formats are not re-implemented: the key envelopes come from src/ckks/serialize.ts and the
 * packing, encryption and decryption from src/inference/codec.ts, the module `cipherml gateway
 * infer` runs. The secret key stays in this page's memory and, sealed under the passphrase, in
 * IndexedDB; nothing here sends it or a plaintext value anywhere.
 */
import { CkksContext } from '../../src/ckks/context.ts';
import { deserializeSecretKey, serializePublicContext, serializeSecretKey } from '../../src/ckks/serialize.ts';
import { checkOutputRange, choosePacking, decryptOutput, encryptBatch, encryptSingle } from '../../src/inference/codec.ts';
import type { KeyParams, RangeWarning, Tensor } from '../../src/inference/codec.ts';
import { readNpy } from '../../src/inference/npy.ts';

export type { KeyParams, RangeWarning, Tensor };

/** An inference key set made here: the context (holds the secret key), the evaluation keys to upload and the secret-key envelope to seal. */
export interface InferenceKeys {
  readonly ctx: CkksContext;
  readonly publicKeys: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly fingerprint: string;
  readonly keygenMs: number;
}

/** True when the key set was made for these keyparams' CKKS parameters. */
export function sameParams(ctx: CkksContext, kp: KeyParams): boolean {
  const a = ctx.params;
  const b = kp.params;
  return a.polyModulusDegree === b.polyModulusDegree && a.scaleBits === b.scaleBits && a.coeffModulusBits.length === b.coeffModulusBits.length && a.coeffModulusBits.every((x, i) => x === b.coeffModulusBits[i]);
}

/**
 * A key set for the keyparams, as `gateway infer` makes it: its Galois steps, the packing hints
 * in the key's metadata (so a key unsealed later encrypts with the same packing choice).
 */
export async function makeInferenceKeys(kp: KeyParams): Promise<InferenceKeys> {
  const t0 = performance.now();
  const ctx = await CkksContext.create(kp.params, { galoisSteps: kp.galoisSteps, deferEvaluationKeys: true });
  try {
    ctx.metadata = { packing: kp.packing, singleUpTo: kp.singleUpTo, inputDims: kp.inputDims, outputRange: kp.outputRange };
    const publicKeys = serializePublicContext(ctx);
    const secretKey = serializeSecretKey(ctx);
    return { ctx, publicKeys, secretKey, fingerprint: ctx.fingerprint, keygenMs: performance.now() - t0 };
  } catch (e) {
    ctx.delete();
    throw e;
  }
}

/** The context of an unsealed secret-key envelope; refuses another fingerprint or keys made for other keyparams. */
export async function openInferenceKeys(secretKey: Uint8Array, fingerprint: string, kp: KeyParams): Promise<CkksContext> {
  const ctx = await deserializeSecretKey(secretKey, 'secretKey');
  if (ctx.fingerprint !== fingerprint || !sameParams(ctx, kp)) {
    ctx.delete();
    throw new Error(ctx.fingerprint !== fingerprint ? `the unsealed key has fingerprint ${ctx.fingerprint}, the record says ${fingerprint}` : 'these keys were made for other keyparams (the model was redeployed): make new keys');
  }
  return ctx;
}

/** Reads a .npy input (the same bounded reader as `he encrypt`). */
export function parseNpy(bytes: Uint8Array, name: string): Tensor {
  return readNpy(bytes, name);
}

/** Splits an input into samples against the model's input shape (a batch axis, or one sample), as the CLI gateway does. */
export function samplesOf(t: Tensor, inputDims: readonly (number | null)[]): { samples: Float64Array[]; dims: number[] } {
  const want = inputDims.slice(1);
  const dims = t.dims.length === inputDims.length ? t.dims.slice(1) : t.dims.length === want.length ? [...t.dims] : undefined;
  if (dims === undefined || want.some((d, i) => d !== null && d !== dims[i])) {
    throw new Error(`the input has shape [${t.dims.join(', ')}]; the model takes [${inputDims.map((d) => d ?? 'N').join(', ')}] or one sample of [${want.map((d) => d ?? '?').join(', ')}]`);
  }
  const batch = t.dims.length === inputDims.length ? t.dims[0]! : 1;
  const per = dims.reduce((a, d) => a * d, 1);
  return { samples: Array.from({ length: batch }, (_, s) => t.data.subarray(s * per, (s + 1) * per)), dims };
}

/** Encrypts an input in the packing the key set's hints choose (`/encrypt` of `gateway infer`). */
export function encryptInput(ctx: CkksContext, t: Tensor, kp: KeyParams): { bytes: Uint8Array; packing: 'batch' | 'single'; samples: number; encryptMs: number } {
  const t0 = performance.now();
  const { samples, dims } = samplesOf(t, kp.inputDims);
  const packing = choosePacking(ctx, samples.length);
  const bytes = packing === 'single' ? encryptSingle(ctx, samples, dims) : encryptBatch(ctx, samples, dims);
  return { bytes, packing, samples: samples.length, encryptMs: performance.now() - t0 };
}

/** Decrypts an inference output; flags values far outside the calibrated output range. */
export function decryptResult(ctx: CkksContext, bytes: Uint8Array, kp: KeyParams): { output: Tensor; rangeWarning: RangeWarning | undefined; decryptMs: number } {
  const t0 = performance.now();
  const output = decryptOutput(ctx, bytes);
  return { output, rangeWarning: checkOutputRange(output.data, kp.outputRange), decryptMs: performance.now() - t0 };
}
