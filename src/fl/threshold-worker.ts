import { CipherMLError } from '../core/errors.ts';
import type { Identity } from '../core/identity.ts';
import type { PaillierPublicKey } from '../paillier/index.ts';
import type { ThresholdPublicKey } from '../paillier/threshold.ts';
import { sealContribution } from './contribution.ts';
import type { ContributionSigner } from './worker.ts';

/**
 * The worker's side of key-holder "threshold": it encrypts only under the pinned threshold key
 * (n and h_s must equal the pinned key's, whatever the server announces) and signs every update
 * for (run, round, worker id, key fingerprint, SHA-256 of the ciphertexts).
 *
 * @example
 * ```ts
 * const contributions = thresholdContributionSigner(await loadIdentity('worker-1.id'), await readThresholdPublicKeyFile('threshold.pub', { pin }));
 * await runWorker({ workerId: '1', token: '', client, transport, contributions });
 * ```
 */
export function thresholdContributionSigner(identity: Identity, pinned: ThresholdPublicKey): ContributionSigner {
  if (identity.role !== 'worker') {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the identity file is of ${identity.role} ${identity.id}; a worker signs with a worker identity`, { param: '--identity' });
  }
  return {
    checkKey(publicKey: PaillierPublicKey, keyHolder: string): void {
      if (publicKey.n !== pinned.paillier.n || publicKey.hs !== pinned.paillier.hs) {
        throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the server announced Paillier key ${publicKey.fingerprint}, but this worker is pinned to threshold key ${pinned.fingerprint} (Paillier key ${pinned.paillier.fingerprint}); refusing to encrypt under it`, {
          param: 'threshold-fingerprint',
          details: { announced: publicKey.fingerprint, pinned: pinned.fingerprint },
        });
      }
      if (keyHolder !== 'threshold') {
        throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the server runs key-holder "${keyHolder}" with the pinned threshold key; this worker sends signed updates only to a threshold run`, { param: 'key-holder' });
      }
    },
    seal(runId: string, round: number, weight: number, numExamples: number, packed: Uint8Array): Uint8Array {
      return sealContribution(identity, { runId, round, weight, numExamples, workerId: identity.id, keyFingerprint: pinned.fingerprint }, packed);
    },
  };
}
