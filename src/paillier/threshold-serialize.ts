import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { ByteReader, ByteWriter, openEnvelope, sealEnvelope } from '../core/envelope.ts';
import { readFileTyped, refuseExisting, writeFileSafely } from '../core/io.ts';
import { PaillierPublicKey, type PaillierKeyOptions } from './keys.ts';
import { ThresholdKeyShare, ThresholdPublicKey, type DecryptionShare } from './threshold.ts';
import type { DealtThresholdKey } from './threshold-dealer.ts';

/**
 * Threshold Paillier objects in cipherml's envelope (src/core/envelope.ts). The envelope's
 * fingerprint field holds the first 16 bytes of the threshold fingerprint
 * ({@link ThresholdPublicKey.fingerprint}), which covers every public value.
 *
 * Bodies (integers big-endian, `int` = u32 length ‖ magnitude):
 * - threshold public key: u16 L ‖ u16 k ‖ int n ‖ int h_s ‖ int v ‖ L × int v_i
 * - key share:            u16 id ‖ u32 len ‖ threshold public key envelope ‖ int s_i
 * - decryption shares:    u16 id ‖ u32 count ‖ count × (c_i in ciphertextBytes ‖ e in 32 bytes ‖ int z)
 */

const MAX_N_BYTES = 1024; // n up to 8192 bits
const E_BYTES = 32;

function envelopeFingerprint(pk: ThresholdPublicKey): string {
  return pk.fingerprint.slice(0, 32);
}

/**
 * Threshold public key → bytes.
 *
 * @example
 * ```ts
 * await writeFile('threshold.pub', serializeThresholdPublicKey(publicKey));
 * ```
 */
export function serializeThresholdPublicKey(pk: ThresholdPublicKey): Uint8Array {
  const w = new ByteWriter().u16(pk.holders).u16(pk.threshold).bigint(pk.paillier.n).bigint(pk.paillier.hs).bigint(pk.v);
  for (const vk of pk.verificationKeys) w.bigint(vk);
  return sealEnvelope({ kind: 'thresholdPublicKey', scheme: 'paillier', fingerprint: envelopeFingerprint(pk), body: w.bytes() });
}

/**
 * Bytes → threshold public key; checks the envelope, every value, and the fingerprint.
 *
 * @example
 * ```ts
 * const pk = deserializeThresholdPublicKey(await readFile('threshold.pub'), {}, '--threshold-public-key');
 * ```
 */
export function deserializeThresholdPublicKey(bytes: Uint8Array, options: PaillierKeyOptions = {}, param = 'thresholdPublicKey'): ThresholdPublicKey {
  const env = openEnvelope(bytes, { kind: 'thresholdPublicKey', scheme: 'paillier' }, param);
  const r = new ByteReader(env.body, param);
  const holders = r.u16();
  const threshold = r.u16();
  const n = r.bigint(MAX_N_BYTES);
  const hs = r.bigint(2 * MAX_N_BYTES);
  const v = r.bigint(2 * MAX_N_BYTES);
  if (holders > 64) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the key declares ${holders} holders, at most 64 are allowed`, { param });
  const vks = Array.from({ length: holders }, () => r.bigint(2 * MAX_N_BYTES));
  r.end();
  let pk: ThresholdPublicKey;
  try {
    pk = new ThresholdPublicKey(new PaillierPublicKey(n, hs, options), holders, threshold, v, vks);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the stored threshold key is not valid (${(e as Error).message})`, { param, cause: e });
  }
  if (envelopeFingerprint(pk) !== env.fingerprint) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the key material does not match the fingerprint in the header', { param });
  }
  return pk;
}

/**
 * Key share → bytes (self-contained: carries its threshold public key). Secret: write it 0600.
 *
 * @example
 * ```ts
 * const bytes = serializeThresholdKeyShare(shares[0]!);
 * ```
 */
export function serializeThresholdKeyShare(share: ThresholdKeyShare): Uint8Array {
  const pub = serializeThresholdPublicKey(share.publicKey);
  const head = new ByteWriter().u16(share.id).u32(pub.length).bytes();
  const secret = new ByteWriter().bigint(share.exportSecret()).bytes();
  const all = new Uint8Array(head.length + pub.length + secret.length);
  all.set(head);
  all.set(pub, head.length);
  all.set(secret, head.length + pub.length);
  return sealEnvelope({ kind: 'thresholdKeyShare', scheme: 'paillier', fingerprint: envelopeFingerprint(share.publicKey), body: all });
}

/**
 * Bytes → key share; refuses a share that does not match its holder's verification key, and,
 * when `expected` is given, a share of another threshold key (KEY_MISMATCH naming both fingerprints).
 *
 * @example
 * ```ts
 * const share = deserializeThresholdKeyShare(bytes, {}, '--share');
 * ```
 */
export function deserializeThresholdKeyShare(bytes: Uint8Array, options: PaillierKeyOptions & { readonly expected?: ThresholdPublicKey } = {}, param = 'share'): ThresholdKeyShare {
  const env = openEnvelope(bytes, { kind: 'thresholdKeyShare', scheme: 'paillier' }, param);
  const head = new ByteReader(env.body.subarray(0, 6), param);
  const id = head.u16();
  const pubLength = head.u32();
  if (6 + pubLength > env.body.length) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `the share declares a ${pubLength}-byte public key, the body has ${env.body.length} bytes`, { param });
  const pk = deserializeThresholdPublicKey(env.body.subarray(6, 6 + pubLength), options, param);
  const r = new ByteReader(env.body.subarray(6 + pubLength), param);
  const secret = r.bigint(3 * MAX_N_BYTES);
  r.end();
  if (envelopeFingerprint(pk) !== env.fingerprint) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the share header names another key than the one it carries', { param });
  if (options.expected !== undefined && !options.expected.equals(pk)) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the share is of threshold key ${pk.fingerprint.slice(0, 16)}…, expected ${options.expected.fingerprint.slice(0, 16)}…`, {
      param,
      details: { expected: options.expected.fingerprint, actual: pk.fingerprint },
    });
  }
  if (id < 1 || id > pk.holders) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `holder id ${id} is outside 1…${pk.holders}`, { param });
  try {
    return new ThresholdKeyShare(pk, id, secret);
  } catch (e) {
    if (e instanceof CipherMLError) throw new CipherMLError(e.code, e.problem, { param, ...(e.details === undefined ? {} : { details: e.details }) });
    throw e;
  }
}

/**
 * One holder's decryption shares of a vector of ciphertexts → bytes.
 *
 * @example
 * ```ts
 * const bytes = serializeDecryptionShares(publicKey, packed.values.map((c) => share.decryptShare(c)));
 * ```
 */
export function serializeDecryptionShares(pk: ThresholdPublicKey, shares: readonly DecryptionShare[]): Uint8Array {
  const first = shares[0];
  if (first === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'no decryption shares to serialize', { param: 'shares' });
  const w = new ByteWriter().u16(first.id).u32(shares.length);
  for (const s of shares) {
    if (s.id !== first.id) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'all shares of one message must come from one holder', { param: 'shares' });
    w.fixedBigint(s.value, pk.paillier.ciphertextBytes).fixedBigint(s.proof.e, E_BYTES).bigint(s.proof.z);
  }
  return sealEnvelope({ kind: 'decryptionShares', scheme: 'paillier', fingerprint: envelopeFingerprint(pk), body: w.bytes() });
}

/**
 * Bytes → one holder's decryption shares. Checks the key, the count (`expectedCount`, before any
 * allocation) and each field's size; the proofs are checked when combining.
 *
 * @example
 * ```ts
 * const { id, shares } = deserializeDecryptionShares(publicKey, bytes, packed.values.length, 'holder 2');
 * ```
 */
export function deserializeDecryptionShares(pk: ThresholdPublicKey, bytes: Uint8Array, expectedCount: number, param = 'decryptionShares'): { id: number; shares: DecryptionShare[] } {
  const env = openEnvelope(bytes, { kind: 'decryptionShares', scheme: 'paillier' }, param);
  if (env.fingerprint !== envelopeFingerprint(pk)) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `decryption shares are under threshold key ${env.fingerprint.slice(0, 16)}…, expected ${pk.fingerprint.slice(0, 16)}…`, {
      param,
      details: { expected: pk.fingerprint.slice(0, 32), actual: env.fingerprint },
    });
  }
  const r = new ByteReader(env.body, param);
  const id = r.u16();
  const count = r.u32();
  if (count !== expectedCount) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `holder ${id} sent ${count} decryption share(s) for ${expectedCount} ciphertext(s)`, { param, details: { holder: id, expected: expectedCount, actual: count } });
  }
  const zBytes = Math.ceil((pk.nonceBits + 1) / 8);
  const shares: DecryptionShare[] = [];
  for (let i = 0; i < count; i++) {
    const value = r.fixedBigint(pk.paillier.ciphertextBytes);
    const e = r.fixedBigint(E_BYTES);
    const z = r.bigint(zBytes);
    shares.push({ id, value, proof: { e, z } });
  }
  r.end();
  return { id, shares };
}

/**
 * Paths the dealer writes under `dir`: `threshold.pub` and `holder-<i>.share`.
 *
 * @example
 * ```ts
 * thresholdKeyPaths('keys', 3).sharePaths; // ['keys/holder-1.share', 'keys/holder-2.share', 'keys/holder-3.share']
 * ```
 */
export function thresholdKeyPaths(dir: string, holders: number): { publicKeyPath: string; sharePaths: string[] } {
  return { publicKeyPath: join(dir, 'threshold.pub'), sharePaths: Array.from({ length: holders }, (_, k) => join(dir, `holder-${k + 1}.share`)) };
}

/**
 * Writes the dealer's output: `threshold.pub` (0644) and one `holder-<i>.share` per holder
 * (0600). Refuses to overwrite any existing file (checked before anything is written).
 *
 * @example
 * ```ts
 * await writeThresholdKeyFiles('keys', await dealThresholdKey({ holders: 3, threshold: 2 }));
 * ```
 */
export async function writeThresholdKeyFiles(dir: string, dealt: DealtThresholdKey): Promise<{ publicKeyPath: string; sharePaths: string[] }> {
  const paths = thresholdKeyPaths(dir, dealt.publicKey.holders);
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw new CipherMLError('CIPHERML_E_IO', `cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { param: 'outDir', cause: e });
  });
  await refuseExisting([paths.publicKeyPath, ...paths.sharePaths]);
  for (const [k, share] of dealt.shares.entries()) await writeFileSafely(paths.sharePaths[k]!, serializeThresholdKeyShare(share), { mode: 0o600 });
  await writeFileSafely(paths.publicKeyPath, serializeThresholdPublicKey(dealt.publicKey), { mode: 0o644 });
  return paths;
}

/**
 * Reads a threshold public key file; with `pin`, refuses a key whose fingerprint differs
 * (KEY_MISMATCH naming both).
 *
 * @example
 * ```ts
 * const pk = await readThresholdPublicKeyFile('keys/threshold.pub', { pin: 'a3f1…' }, 'threshold-public-key');
 * ```
 */
export async function readThresholdPublicKeyFile(path: string, options: PaillierKeyOptions & { readonly pin?: string } = {}, param = 'thresholdPublicKey'): Promise<ThresholdPublicKey> {
  const pk = deserializeThresholdPublicKey(await readFileTyped(path, param), options, param);
  if (options.pin !== undefined && options.pin !== '' && options.pin.toLowerCase() !== pk.fingerprint) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `${path} holds threshold key ${pk.fingerprint}, but ${options.pin} is pinned`, { param, details: { expected: options.pin, actual: pk.fingerprint } });
  }
  return pk;
}

/**
 * Reads a holder's share file; refuses one readable by group or others.
 *
 * @example
 * ```ts
 * const share = await readThresholdKeyShareFile('keys/holder-1.share', {}, '--share');
 * ```
 */
export async function readThresholdKeyShareFile(path: string, options: PaillierKeyOptions & { readonly expected?: ThresholdPublicKey } = {}, param = 'share'): Promise<ThresholdKeyShare> {
  const bytes = await readFileTyped(path, param);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new CipherMLError('CIPHERML_E_KEY_FILE_INSECURE', `${path} has mode ${(st.mode & 0o777).toString(8)}; a key share file must be 600 (chmod 600 ${path})`, { param });
  }
  return deserializeThresholdKeyShare(bytes, options, param);
}
