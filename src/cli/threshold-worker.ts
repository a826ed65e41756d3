import { CipherMLError } from '../core/errors.ts';
import { loadIdentity } from '../core/identity.ts';
import { readThresholdPublicKeyFile } from '../paillier/threshold-serialize.ts';
import { thresholdContributionSigner } from '../fl/threshold-worker.ts';
import type { ContributionSigner } from '../fl/worker.ts';

/**
 * The worker's key-holder "threshold" flags: --threshold-public-key and --threshold-fingerprint
 * (with --identity) or neither. The key file must carry the
 * pinned fingerprint and the identity must be this worker's.
 *
 * @example
 * ```ts
 * const extra = await thresholdWorkerOptions('1', 'keys/threshold.pub', 'ab12…', 'worker-1.id');
 * ```
 */
export async function thresholdWorkerOptions(id: string, publicKeyPath: string | undefined, fingerprint: string | undefined, identityPath: string | undefined): Promise<{ contributions?: ContributionSigner }> {
  // --identity alone is identity mode (src/fl/identity-auth.ts); the threshold flags select key-holder "threshold".
  if (publicKeyPath === undefined && fingerprint === undefined) return {};
  if (publicKeyPath === undefined || fingerprint === undefined || identityPath === undefined) {
    const missing = publicKeyPath === undefined ? '--threshold-public-key' : fingerprint === undefined ? '--threshold-fingerprint' : '--identity';
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'key-holder "threshold" needs --threshold-public-key, --threshold-fingerprint and --identity together', { param: missing });
  }
  const pinned = await readThresholdPublicKeyFile(publicKeyPath, { pin: fingerprint }, '--threshold-public-key');
  const identity = await loadIdentity(identityPath, '--identity');
  if (identity.id !== id) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${identityPath} is the identity of ${identity.role} ${identity.id}, this worker is --id ${id}`, { param: '--identity' });
  return { contributions: thresholdContributionSigner(identity, pinned) };
}
