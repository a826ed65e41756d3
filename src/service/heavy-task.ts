import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { openEnvelope } from '../core/envelope.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import { checkEnvelopeBounds } from '../ckks/serialize.ts';
import { predictEncrypted } from '../ml/encrypted-lr.ts';
import type { HeavyTask } from './heavy.ts';

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
  }
}
