import { loadSeal } from '../ckks/index.ts';
import type { CalibrateOptions, KeyParams } from './calibrate.ts';
import { calibrate } from './calibrate.ts';
import { concatBatch } from './he.ts';
import { DEPLOY_BUNDLE } from './deploy-bundle.ts';
import { readArrays } from './npy.ts';
import { parseOnnx, serializeOnnx, sizeOf } from './onnx.ts';

/**
 * What the encrypted-inference routes of the service and the trusted gateway share: the deploy
 * bundle, the route paths, the published model description and the upload bounds derived from
 * the keyparams. Both sides import this file; neither imports the other (docs/ARCHITECTURE.md).
 */

export { DEPLOY_BUNDLE, packDeployBundle, unpackDeployBundle } from './deploy-bundle.ts';

/**
 * `he keyparams` on bytes: calibrates the ONNX model on the calibration inputs and returns the
 * calibrated model's bytes and its keyparams (the service runs this on a worker thread at deploy).
 *
 * @example
 * ```ts
 * const { calibrated, keyParams } = await calibrateBytes(onnx, npz);
 * ```
 */
export async function calibrateBytes(onnx: Uint8Array, calibration: Uint8Array, options: CalibrateOptions = {}): Promise<{ calibrated: Uint8Array; keyParams: KeyParams }> {
  const graph = parseOnnx(onnx, DEPLOY_BUNDLE.model);
  const samples = concatBatch(readArrays(calibration, DEPLOY_BUNDLE.calibration), graph);
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, samples, options);
  return { calibrated: serializeOnnx(calibrated), keyParams };
}

/** Upload bounds of one deployed model, from its keyparams (checked before any parsing). */
export interface InferenceLimits {
  /** Largest `PUT …/inference/keys` body: the keyparams' key.pub estimate plus 10 % and 64 KiB. */
  readonly keysBytes: number;
  /** Largest `POST …/inference` body: {@link InferenceLimits.maxCiphertexts} fresh ciphertexts plus 64 KiB. */
  readonly inputBytes: number;
  /** Most ciphertexts one input may hold: one batch chunk, or {@link MAX_SINGLE_SAMPLES} single-packed samples. */
  readonly maxCiphertexts: number;
}

/** Most single-packed samples one inference request may carry. */
export const MAX_SINGLE_SAMPLES = 64;

/**
 * The upload bounds for a model's keyparams. A fresh ciphertext is 2 polynomials of N
 * coefficients under every data prime (8 bytes each); the envelope compresses, so this bounds it.
 *
 * @example
 * ```ts
 * inferenceLimits(keyParams).keysBytes; // refuse larger key uploads from Content-Length
 * ```
 */
export function inferenceLimits(kp: KeyParams): InferenceLimits {
  const n = kp.params.polyModulusDegree;
  const primes = kp.params.coeffModulusBits.length;
  const ciphertextBytes = 2 * n * primes * 8;
  const perSample = sizeOf(kp.inputDims.slice(1).map((d) => d ?? 1));
  const batch = kp.plans.batch === undefined ? 0 : perSample;
  const single = kp.plans.single === undefined ? 0 : MAX_SINGLE_SAMPLES;
  const maxCiphertexts = Math.max(batch, single, 1);
  return { keysBytes: Math.ceil(kp.keys.publicKeyBytes * 1.1) + (64 << 10), inputBytes: maxCiphertexts * ciphertextBytes + (64 << 10), maxCiphertexts };
}

/** A deployed model as its URL (`GET /api/v1/{model}/{version}`) describes it. */
export interface PublishedModel {
  readonly name: string;
  readonly version: string;
  readonly modelUrl: string;
  /** Null until the owner deployed an ONNX model for inference. */
  readonly inference: {
    readonly keyParamsUrl: string;
    readonly calibratedModelUrl: string;
    readonly calibratedModelSha256: string;
    readonly limits: InferenceLimits;
  } | null;
}

/**
 * Paths of the inference routes of one model, as the service serves them and the gateway calls them.
 *
 * @example
 * ```ts
 * inferencePaths('mnist', '1').keys; // '/api/v1/mnist/1/inference/keys'
 * ```
 */
export function inferencePaths(name: string, version: string): {
  readonly model: string;
  readonly deploy: string;
  readonly keyParams: string;
  readonly calibratedModel: string;
  readonly keys: string;
  readonly infer: string;
  readonly register: string;
  readonly deployModel: string;
  job(jobId: string): string;
  output(jobId: string): string;
} {
  const model = `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
  return {
    model,
    deployModel: `${model}/deploy_model`,
    deploy: `${model}/inference/deploy`,
    keyParams: `${model}/inference/keyparams`,
    calibratedModel: `${model}/inference/model`,
    keys: `${model}/inference/keys`,
    infer: `${model}/inference`,
    register: `${model}/application/register_user`,
    job: (jobId) => `${model}/jobs/${encodeURIComponent(jobId)}`,
    output: (jobId) => `${model}/jobs/${encodeURIComponent(jobId)}/output`,
  };
}
