import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { openEnvelope } from '../core/envelope.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import { checkEnvelopeBounds } from '../ckks/serialize.ts';
import { predictEncrypted } from '../ml/encrypted-lr.ts';
import type { HeavyTask } from './heavy.ts';
import { calibrateBytes, unpackDeployBundle } from '../inference/service-wire.ts';
import type { KeyParams } from '../inference/calibrate.ts';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * One heavy step of the service (runs on a worker thread of {@link HeavyPool}): checks a public
 * context by loading it, checks that ciphertexts were made under the stored public context, or
 * predicts; returns the SHA-256 of uploads so the HTTP thread never hashes large bodies.
 *
 * @example
 * ```ts
 * const { sha256 } = (await runHeavyTask({ kind: 'sha256', bytes })) as { sha256: string };
 * ```
 */
export async function runHeavyTask(task: HeavyTask): Promise<unknown> {
  switch (task.kind) {
    case 'publicContext': {
      checkEnvelopeBounds(task.bytes, 'publicKey', task.param);
      (await deserializePublicContext(task.bytes, task.param)).delete();
      return { sha256: sha256(task.bytes) };
    }
    case 'ciphertexts': {
      const env = openEnvelope(task.bytes, { kind: 'ciphertext', scheme: 'ckks' }, task.param);
      const expected = openEnvelope(task.publicContext, { kind: 'publicKey', scheme: 'ckks' }, 'context/public').fingerprint;
      if (env.fingerprint !== expected) {
        throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the ciphertexts were made under key set ${env.fingerprint}, the uploaded public context is ${expected}`, { param: task.param, details: { expected, actual: env.fingerprint } });
      }
      return { sha256: sha256(task.bytes) };
    }
    case 'predict': {
      // A bomb is refused before the user's key set is loaded.
      checkEnvelopeBounds(task.bytes, 'ciphertext', 'predict');
      const ctx = await deserializePublicContext(task.publicContext, 'publicContext');
      try {
        const t0 = performance.now();
        const scores = predictEncrypted(ctx, task.trained, task.bytes, task.features);
        return { scores, ms: performance.now() - t0 };
      } finally {
        ctx.delete();
      }
    }
    case 'sha256':
      return { sha256: sha256(task.bytes) };
    case 'calibrate': {
      const { onnx, calibration } = unpackDeployBundle(task.bytes, task.maxBytes);
      const { calibrated, keyParams } = await calibrateBytes(onnx, calibration);
      return { calibrated, keyParams: JSON.stringify(keyParams), sha256: sha256(calibrated) };
    }
    case 'inferenceKeys': {
      checkEnvelopeBounds(task.bytes, 'publicKey', 'inference/keys');
      const kp = JSON.parse(task.keyParams) as KeyParams;
      // The single plan rotates: its Galois keys must be present and loadable.
      const ctx = await deserializePublicContext(task.bytes, 'inference/keys', { galoisKeys: kp.galoisSteps.length > 0 });
      try {
        const got = ctx.params;
        const same = got.polyModulusDegree === kp.params.polyModulusDegree && got.scaleBits === kp.params.scaleBits && got.coeffModulusBits.length === kp.params.coeffModulusBits.length && got.coeffModulusBits.every((b, i) => b === kp.params.coeffModulusBits[i]);
        if (!same) {
          throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the keys are for N = ${got.polyModulusDegree}, moduli [${got.coeffModulusBits.join(', ')}]; the model's keyparams need N = ${kp.params.polyModulusDegree}, moduli [${kp.params.coeffModulusBits.join(', ')}]: make keys from GET …/inference/keyparams`, { param: 'inference/keys' });
        }
        return { sha256: sha256(task.bytes), fingerprint: ctx.fingerprint };
      } finally {
        ctx.delete();
      }
    }
  }
}
