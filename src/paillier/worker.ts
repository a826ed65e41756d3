import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { errorToReply } from '../core/worker-pool.ts';
import type { BackendPreference } from '../core/bigmath/index.ts';
import { PaillierPrivateKey, PaillierPublicKey, type ObfuscationMode } from './keys.ts';
import type { DecryptionShare, ThresholdKeyShare } from './threshold.ts';
import { deserializeThresholdKeyShare } from './threshold-serialize.ts';

/**
 * Worker-thread entry for vector encryption/decryption (see vector.ts). Keys arrive as bigints
 * and are cached by (n, h_s) — the whole public key, as its fingerprint covers — so the DJN
 * fixed-base table is built once per worker and key, and two keys sharing n never share a table.
 */

export type PaillierTask =
  | { kind: 'encrypt'; n: bigint; hs: bigint; backend: BackendPreference; plaintexts: bigint[]; obfuscate: false | ObfuscationMode }
  | { kind: 'randomizers'; n: bigint; hs: bigint; backend: BackendPreference; count: number }
  | { kind: 'decrypt'; n: bigint; hs: bigint; p: bigint; q: bigint; backend: BackendPreference; ciphertexts: bigint[]; firstIndex: number }
  /** Threshold decryption shares (with proofs) of one holder; `share` is its serialized key share, cached by its bytes' digest. */
  | { kind: 'threshold-share'; share: Uint8Array; backend: BackendPreference; ciphertexts: bigint[]; firstIndex: number };

const publicKeys = new Map<string, PaillierPublicKey>();
const privateKeys = new Map<string, PaillierPrivateKey>();
const CACHE_LIMIT = 4;

function cached<V>(map: Map<string, V>, key: string, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= CACHE_LIMIT) map.delete(map.keys().next().value!);
    v = make();
    map.set(key, v);
  }
  return v;
}

const thresholdShares = new Map<string, ThresholdKeyShare>();

function runThresholdShare(task: Extract<PaillierTask, { kind: 'threshold-share' }>): DecryptionShare[] {
  const key = createHash('sha256').update(task.share).digest('hex');
  const share = cached(thresholdShares, key, () => deserializeThresholdKeyShare(task.share, { backend: task.backend }, 'share'));
  return task.ciphertexts.map((c, i) => share.decryptShare(c, `packed.values[${task.firstIndex + i}]`));
}

function run(task: PaillierTask): bigint[] | DecryptionShare[] {
  if (task.kind === 'threshold-share') return runThresholdShare(task);
  const keyId = `${task.n.toString(16)}:${task.hs.toString(16)}`;
  const pk = cached(publicKeys, keyId, () => new PaillierPublicKey(task.n, task.hs, { backend: task.backend }));
  if (task.kind === 'randomizers') return pk.randomizers(task.count);
  if (task.kind === 'encrypt') {
    const n2 = pk.nSquared;
    const rho = task.obfuscate === false ? null : task.obfuscate === 'classic' ? task.plaintexts.map(() => pk.randomizer('classic')) : pk.randomizers(task.plaintexts.length);
    return task.plaintexts.map((m, i) => {
      const base = (1n + m * pk.n) % n2;
      return rho === null ? base : (base * rho[i]!) % n2;
    });
  }
  const sk = cached(privateKeys, keyId, () => new PaillierPrivateKey(pk, task.p, task.q));
  return task.ciphertexts.map((c, i) => {
    sk.assertCiphertext(c, `packed.values[${task.firstIndex + i}]`);
    return sk.decryptUnchecked(c);
  });
}

parentPort?.on('message', ({ id, task }: { id: number; task: PaillierTask }) => {
  try {
    parentPort!.postMessage({ id, ok: true, result: run(task) });
  } catch (e) {
    parentPort!.postMessage({ id, ok: false, error: errorToReply(e) });
  }
});
