import { CipherMLError } from '../core/errors.ts';
import { defences } from '../core/defences.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import type { PaillierTask } from './worker.ts';
import { serializeThresholdKeyShare } from './threshold-serialize.ts';
import type { PackedCiphertext } from './packing.ts';
import { finishUnpack, type DecryptPackedOptions } from './packing.ts';
import { badShares, combineUnchecked, verifyDecryptionShare, type DecryptionShare, type ThresholdKeyShare, type ThresholdPublicKey } from './threshold.ts';

/**
 * Threshold decryption of packed vectors (src/paillier/packing.ts): each holder makes one
 * decryption share per ciphertext of the vector; a combiner verifies the holders' shares and
 * unpacks the combined plaintexts exactly as ordinary decryption does.
 */

/** Throws KEY_MISMATCH unless the vector is under the threshold key's Paillier key. */
function assertUnderKey(pk: ThresholdPublicKey, packed: PackedCiphertext, param: string): void {
  if (packed.publicKey.n !== pk.paillier.n) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the vector is under key ${packed.fingerprint}, the threshold key's Paillier key is ${pk.paillier.fingerprint}`, {
      param,
      details: { expected: pk.paillier.fingerprint, actual: packed.fingerprint },
    });
  }
}

/**
 * Holder `share.id`'s decryption shares (with proofs) of every ciphertext of a packed vector.
 *
 * @example
 * ```ts
 * const mine = decryptionSharesOf(share, PackedCiphertext.sum(updates));
 * ```
 */
export function decryptionSharesOf(share: ThresholdKeyShare, packed: PackedCiphertext, param = 'packed'): DecryptionShare[] {
  assertUnderKey(share.publicKey, packed, param);
  return packed.values.map((c, i) => share.decryptShare(c, `${param}.values[${i}]`));
}

/**
 * {@link decryptionSharesOf} on worker threads: the ciphertexts are split into contiguous chunks,
 * one pool task each (at least one task even for a single ciphertext), so the calling thread only
 * waits. The result is the same list, in the same order, as the in-thread function's.
 *
 * @example
 * ```ts
 * const mine = await decryptionSharesInPool(share, PackedCiphertext.sum(updates), keyHolderPool(share));
 * ```
 */
export async function decryptionSharesInPool(share: ThresholdKeyShare, packed: PackedCiphertext, pool: WorkerPool, param = 'packed'): Promise<DecryptionShare[]> {
  assertUnderKey(share.publicKey, packed, param);
  for (const [i, c] of packed.values.entries()) share.publicKey.paillier.assertCiphertext(c, `${param}.values[${i}]`);
  const bytes = serializeThresholdKeyShare(share);
  const size = Math.max(1, Math.ceil(packed.values.length / (pool.size * 2)));
  const tasks: Promise<DecryptionShare[]>[] = [];
  for (let start = 0; start < packed.values.length; start += size) {
    const task: PaillierTask = { kind: 'threshold-share', share: bytes, backend: share.publicKey.backend.name, ciphertexts: packed.values.slice(start, start + size), firstIndex: start };
    tasks.push(pool.run<DecryptionShare[]>(task));
  }
  return (await Promise.all(tasks)).flat();
}

/** What {@link combinePacked} returns. */
export interface CombinedVector {
  /** Slot sums (or means), as ordinary decryption would return. */
  readonly values: Float64Array;
  /** Holders whose shares were combined. */
  readonly used: readonly number[];
  /** Holders whose shares failed verification (not combined). */
  readonly rejected: readonly number[];
}

/**
 * Combines holders' decryption shares of a packed vector. Holders are tried in id order; each
 * holder's shares for all ciphertexts are verified before use, and a holder with any failing
 * share is rejected and named. Succeeds once k holders verified; otherwise throws
 * THRESHOLD_SHARE_INVALID naming the rejected holders, or THRESHOLD_TOO_FEW_SHARES when too
 * few holders answered.
 *
 * @example
 * ```ts
 * const { values, rejected } = combinePacked(publicKey, sum, [holder1Shares, holder3Shares]);
 * ```
 */
export function combinePacked(pk: ThresholdPublicKey, packed: PackedCiphertext, holders: readonly (readonly DecryptionShare[])[], options: DecryptPackedOptions & { readonly param?: string } = {}): CombinedVector {
  const param = options.param ?? 'packed';
  assertUnderKey(pk, packed, param);
  const byId = new Map<number, readonly DecryptionShare[]>();
  for (const shares of holders) {
    const id = shares[0]?.id;
    if (id === undefined) continue;
    pk.verificationKey(id, `${param}.shares`);
    if (byId.has(id)) throw new CipherMLError('CIPHERML_E_THRESHOLD_SHARE_INVALID', `holder ${id} answered twice`, { param: `${param}.shares`, details: { holders: [id] } });
    byId.set(id, shares);
  }
  if (byId.size < pk.threshold) {
    throw new CipherMLError('CIPHERML_E_THRESHOLD_TOO_FEW_SHARES', `${byId.size} key holder(s) sent decryption shares, the ${pk.label} key needs ${pk.threshold}`, {
      param: `${param}.shares`,
      details: { have: byId.size, need: pk.threshold },
    });
  }
  // The broken build of the adversarial suite (defences.thresholdShareProofs off) combines unverified shares.
  const skip = !defences.thresholdShareProofs;
  const used: number[] = [];
  const rejected: number[] = [];
  for (const id of [...byId.keys()].sort((a, b) => a - b)) {
    if (used.length === pk.threshold) break;
    const shares = byId.get(id)!;
    const ok = shares.length === packed.values.length && shares.every((s, i) => s.id === id && (skip || verifyDecryptionShare(pk, packed.values[i]!, s)));
    (ok ? used : rejected).push(id);
  }
  if (used.length < pk.threshold) {
    if (rejected.length > 0) throw badShares(pk, rejected, param);
    throw new CipherMLError('CIPHERML_E_THRESHOLD_TOO_FEW_SHARES', `${used.length} valid holder(s), need ${pk.threshold}`, { param: `${param}.shares` });
  }
  const plaintexts = packed.values.map((_, i) => combineUnchecked(
    pk,
    used.map((id) => byId.get(id)![i]!),
  ));
  return { values: finishUnpack(packed, plaintexts, options), used, rejected };
}
