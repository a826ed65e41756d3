import { CipherMLError } from '../core/errors.ts';
import { readZip, writeZip } from './npy.ts';

// Imports npy.ts only, never the calibration code: the web console's owner page (web/) packs its
// uploads with this file, byte for byte what `cipherml gateway deploy` sends.

/** Members of the deploy bundle (a ZIP, bounded by readZip): the plaintext ONNX model and its calibration inputs. */
export const DEPLOY_BUNDLE = { model: 'model.onnx', calibration: 'calibration.npz' } as const;

/**
 * The body of `POST …/inference/deploy`: the owner's ONNX model and calibration inputs
 * (.npz/.zip of .npy, or one .npy) in one ZIP.
 *
 * @example
 * ```ts
 * const body = packDeployBundle(await readFile('model.onnx'), await readFile('calibration.npz'));
 * ```
 */
export function packDeployBundle(onnx: Uint8Array, calibration: Uint8Array): Uint8Array {
  return writeZip(new Map([[DEPLOY_BUNDLE.model, onnx], [DEPLOY_BUNDLE.calibration, calibration]]));
}

/**
 * Opens a deploy bundle; CIPHERML_E_FORMAT_* or CIPHERML_E_INVALID_ARGUMENT naming the missing member.
 *
 * @example
 * ```ts
 * const { onnx, calibration } = unpackDeployBundle(body);
 * ```
 */
export function unpackDeployBundle(bytes: Uint8Array, maxBytes: number): { onnx: Uint8Array; calibration: Uint8Array } {
  const zip = readZip(bytes, 'body', { maxMembers: 2, maxBytes });
  const onnx = zip.get(DEPLOY_BUNDLE.model);
  const calibration = zip.get(DEPLOY_BUNDLE.calibration);
  if (onnx === undefined || calibration === undefined) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the deploy bundle must hold ${DEPLOY_BUNDLE.model} and ${DEPLOY_BUNDLE.calibration}, it holds ${[...zip.keys()].join(', ') || 'nothing'}`, { param: 'body' });
  }
  return { onnx, calibration };
}
