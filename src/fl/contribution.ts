import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertSigned, signMessage, type Identity, type Roster } from '../core/identity.ts';
import { bigintToBytes } from '../core/bigmath/index.ts';
import { PackedCiphertext, deserializePacked, type PackingLayout, type PaillierPublicKey } from '../paillier/index.ts';
import type { ThresholdPublicKey } from '../paillier/threshold.ts';

/**
 * The one signed-contribution format (proto SignedContribution), for every Paillier key holder:
 * a worker's packed ciphertext vector Enc(w·θ) plus its Ed25519 signature (src/core/identity.ts)
 * over (run id, round, FedAvg weight w, example count, worker id, key id, SHA-256 of the packed
 * bytes). The key id is the threshold key's fingerprint under key-holder "threshold" and
 * {@link contributionKeyId} of the Paillier key otherwise. Signing w and the worker's own example count lets the key holders check
 * that the server weighted every contribution in proportion to its example count (w_k/n_k equal
 * for all), so it cannot weight one update ≈ 1 and the others ≈ 0.
 *
 * Invariant: a decryptor (the key authority or a threshold key holder) decrypts only the product
 * of contributions that pass {@link verifyContributionSet} under its pinned roster, so the server
 * cannot add a contribution of its own (Enc(0) padding), replay one from another round, run or
 * key, or alter one without the decryptor refusing.
 *
 * Layout (integers big-endian):
 * ```
 * "CPTC" ‖ u8 version (1) ‖ u16 len ‖ run id ‖ u32 round ‖ f64 weight ‖ u64 examples ‖ u16 len ‖ worker id ‖
 * 32 bytes key id ‖ 32 bytes SHA-256(packed) ‖ u32 len ‖ packed ‖ 64 bytes signature
 * ```
 * The signed payload is every byte before `u32 len ‖ packed` (the digest stands for the packed bytes).
 */

/** Signature context of contributions (domain separation, see src/core/identity.ts). */
export const CONTRIBUTION_CONTEXT = 'cipherml/fl/v1/signed-contribution';
const MAGIC = 'CPTC';
const MAX_ID_BYTES = 256;

/** What a worker signs. */
export interface ContributionFields {
  readonly runId: string;
  readonly round: number;
  /** The FedAvg weight the server told the worker (the update is Enc(weight·θ)). */
  readonly weight: number;
  /** The worker's own example count. */
  readonly numExamples: number;
  readonly workerId: string;
  /** Key id, 64 hex digits: the threshold key's fingerprint, or {@link contributionKeyId} of a Paillier key. */
  readonly keyFingerprint: string;
}

/** A parsed (not yet verified) contribution. */
export interface OpenedContribution extends ContributionFields {
  /** The packed ciphertext vector (cipherml envelope). */
  readonly packed: Uint8Array;
  /** SHA-256 of `packed`, hex. */
  readonly digest: string;
  readonly signature: Uint8Array;
  /** The bytes the signature covers. */
  readonly signedPayload: Uint8Array;
}

function header(f: ContributionFields, digest: Uint8Array): Uint8Array {
  const run = Buffer.from(f.runId, 'utf8');
  const worker = Buffer.from(f.workerId, 'utf8');
  if (run.length > MAX_ID_BYTES || worker.length > MAX_ID_BYTES) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `run and worker ids are at most ${MAX_ID_BYTES} bytes`, { param: 'contribution' });
  if (!/^[0-9a-f]{64}$/.test(f.keyFingerprint)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the key fingerprint must be 64 lowercase hex digits', { param: 'keyFingerprint' });
  if (!Number.isFinite(f.weight) || f.weight <= 0 || !Number.isSafeInteger(f.numExamples) || f.numExamples < 1) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `weight ${f.weight} and example count ${f.numExamples} must be positive`, { param: 'contribution' });
  }
  const b = Buffer.alloc(4 + 1 + 2 + run.length + 4 + 16 + 2 + worker.length + 32 + 32);
  let o = b.write(MAGIC, 0, 'latin1');
  o = b.writeUInt8(1, o);
  o = b.writeUInt16BE(run.length, o);
  o += run.copy(b, o);
  o = b.writeUInt32BE(f.round, o);
  o = b.writeDoubleBE(f.weight, o);
  o = b.writeBigUInt64BE(BigInt(f.numExamples), o);
  o = b.writeUInt16BE(worker.length, o);
  o += worker.copy(b, o);
  o += Buffer.from(f.keyFingerprint, 'hex').copy(b, o);
  Buffer.from(digest).copy(b, o);
  return new Uint8Array(b);
}

/**
 * Signs a packed vector as `identity`'s contribution to one round.
 *
 * @example
 * ```ts
 * const bytes = sealContribution(me, { runId, round: 3, workerId: me.id, keyFingerprint: tpk.fingerprint }, serializePacked(enc));
 * ```
 */
export function sealContribution(identity: Identity, fields: ContributionFields, packed: Uint8Array): Uint8Array {
  if (fields.workerId !== identity.id || identity.role !== 'worker') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `contribution of worker ${fields.workerId} cannot be signed with the identity of ${identity.role} ${identity.id}`, { param: 'identity' });
  }
  const signed = header(fields, createHash('sha256').update(packed).digest());
  const sig = signMessage(identity, CONTRIBUTION_CONTEXT, signed);
  const out = Buffer.alloc(signed.length + 4 + packed.length + sig.length);
  Buffer.from(signed).copy(out, 0);
  out.writeUInt32BE(packed.length, signed.length);
  Buffer.from(packed).copy(out, signed.length + 4);
  Buffer.from(sig).copy(out, signed.length + 4 + packed.length);
  return new Uint8Array(out);
}

/**
 * Parses a contribution; every malformed input is a typed FORMAT error naming `param`. The
 * signature is not checked here (see {@link verifyContribution}).
 *
 * @example
 * ```ts
 * const c = openContribution(bytes, 'contribution of worker 2');
 * ```
 */
export function openContribution(bytes: Uint8Array, param: string): OpenedContribution {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (o: number, n: number) => {
    if (o + n > b.length) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `a signed contribution of ${b.length} bytes ends before byte ${o + n}`, { param });
  };
  need(0, 7);
  if (b.toString('latin1', 0, 4) !== MAGIC || b[4] !== 1) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml signed contribution (magic "CPTC", version 1)', { param });
  let o = 5;
  const runLen = b.readUInt16BE(o);
  o += 2;
  need(o, runLen + 22);
  const runId = b.toString('utf8', o, o + runLen);
  o += runLen;
  const round = b.readUInt32BE(o);
  o += 4;
  const weight = b.readDoubleBE(o);
  o += 8;
  const examples = b.readBigUInt64BE(o);
  o += 8;
  if (!Number.isFinite(weight) || weight <= 0 || examples < 1n || examples > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a signed contribution carries weight ${weight} and example count ${examples}; both must be positive`, { param });
  }
  const numExamples = Number(examples);
  const workerLen = b.readUInt16BE(o);
  o += 2;
  need(o, workerLen + 64 + 4);
  const workerId = b.toString('utf8', o, o + workerLen);
  o += workerLen;
  const keyFingerprint = b.toString('hex', o, o + 32);
  o += 32;
  const digest = b.toString('hex', o, o + 32);
  o += 32;
  const signedPayload = new Uint8Array(bytes.subarray(0, o));
  const packedLen = b.readUInt32BE(o);
  o += 4;
  if (o + packedLen + 64 !== b.length) {
    throw new CipherMLError(o + packedLen + 64 > b.length ? 'CIPHERML_E_FORMAT_TRUNCATED' : 'CIPHERML_E_FORMAT_CORRUPT', `a signed contribution declares ${packedLen} packed bytes; ${b.length - o - 64} are present`, { param });
  }
  const packed = bytes.subarray(o, o + packedLen);
  const signature = bytes.subarray(o + packedLen);
  if (createHash('sha256').update(packed).digest('hex') !== digest) {
    throw new CipherMLError('CIPHERML_E_SIGNATURE_INVALID', `${param}: the packed ciphertexts do not match the digest the worker signed`, { param, details: { worker: workerId } });
  }
  return { runId, round, weight, numExamples, workerId, keyFingerprint, packed, digest, signature, signedPayload };
}

/**
 * Throws unless `c` is signed by the roster's worker of its id (IDENTITY_UNKNOWN for a worker
 * not in the roster, SIGNATURE_INVALID for a forged, altered or re-signed contribution).
 *
 * @example
 * ```ts
 * verifyContribution(roster, openContribution(bytes, 'c[0]'), 'contribution of worker 2 in round 3');
 * ```
 */
export function verifyContribution(roster: Roster, c: OpenedContribution, what: string): void {
  const signer = roster.require('worker', c.workerId, what);
  assertSigned(signer, CONTRIBUTION_CONTEXT, c.signedPayload, c.signature, what);
}

/**
 * SHA-256 over the fixed-width ciphertexts of a packed vector: holders and the server compare it
 * to see that they decrypt and combine the same product.
 *
 * @example
 * ```ts
 * productDigest(PackedCiphertext.sum(vectors)); // 32 bytes
 * ```
 */
export function productDigest(product: PackedCiphertext): Uint8Array {
  const h = createHash('sha256');
  for (const c of product.values) h.update(bigintToBytes(c, product.publicKey.ciphertextBytes));
  return new Uint8Array(h.digest());
}

/**
 * The key id a contribution under an ordinary Paillier key signs: SHA-256 over the serialized
 * public key (n and h_s), 64 hex digits. A threshold key's id is its own fingerprint.
 *
 * @example
 * ```ts
 * contributionKeyId(pair.publicKey); // '3f…' (64 hex digits)
 * ```
 */
export function contributionKeyId(pk: PaillierPublicKey | ThresholdPublicKey): string {
  if ('paillier' in pk) return pk.fingerprint;
  return createHash('sha256').update('cipherml/fl/v1/paillier-key\0').update(pk.n.toString(16)).update('\0').update(pk.hs.toString(16)).digest('hex');
}

/**
 * True when `bytes` start like a signed contribution (magic "CPTC"); a cipherml envelope never does.
 *
 * @example
 * ```ts
 * isSignedContribution(enc.packed); // true for a worker's update in identity mode
 * ```
 */
export function isSignedContribution(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.buffer, bytes.byteOffset, 4).toString('latin1') === MAGIC;
}

/** Checks {@link verifyContributionSet} can skip, one each (adversarial tests only). */
export interface ContributionSetHooks {
  readonly skipSignatures?: boolean;
  readonly skipMinContributions?: boolean;
  readonly skipDistinctWorkers?: boolean;
  /** Accepts contributions signed for another run, round or key. */
  readonly skipBinding?: boolean;
  /** Accepts weights not proportional to the workers' example counts. */
  readonly skipWeightCheck?: boolean;
}

/** What {@link verifyContributionSet} checks a request against. */
export interface ContributionSetRules {
  readonly roster: Roster;
  /** The run the decryptor serves, or null before its first decryption (all contributions must then agree). */
  readonly runId: string | null;
  readonly round: number;
  readonly publicKey: PaillierPublicKey;
  /** {@link contributionKeyId} of the decryptor's key. */
  readonly keyId: string;
  readonly minContributions: number;
  /** The error code of a refusal (the caller's catalog entry). */
  readonly code: 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED' | 'CIPHERML_E_CONTRIBUTION_FLOOR';
  readonly hooks?: ContributionSetHooks;
}

/** A verified set: the run it belongs to, the opened contributions and their product. */
export interface VerifiedContributionSet {
  readonly runId: string;
  readonly contributions: readonly OpenedContribution[];
  readonly product: PackedCiphertext;
}

/**
 * The one verification of a decryption request, shared by the key authority and the threshold
 * key holders. Refuses (typed error `rules.code`, or the signature/identity error) unless:
 * 1. at least `minContributions` contributions, no more than the roster has parties;
 * 2. each names the decryptor's run (or, before its first decryption, the run of the first),
 *    the requested round and the decryptor's key, and carries a valid signature of a roster
 *    worker;
 * 3. all from distinct workers;
 * 4. the signed FedAvg weights are proportional to the workers' signed example counts (w_k/n_k
 *    equal up to 1e-9 relative) and sum to at most 1, so the server cannot weight one update ≈ 1
 *    and the others ≈ 0;
 * 5. each packed vector holds exactly one contribution, all with one length and layout.
 * Returns the product the decryptor itself computed (never one the server sent).
 *
 * @example
 * ```ts
 * const { product } = verifyContributionSet(req.contributions.map((c) => c.contribution), { roster, runId: null, round: 3, publicKey, keyId, minContributions: 2, code: 'CIPHERML_E_CONTRIBUTION_FLOOR' });
 * ```
 */
export function verifyContributionSet(contributions: readonly Uint8Array[], rules: ContributionSetRules): VerifiedContributionSet {
  const hooks = rules.hooks ?? {};
  const { round } = rules;
  const refused = (problem: string, details: Record<string, unknown> = {}) => new CipherMLError(rules.code, problem, { param: 'contributions', details: { round, ...details } });
  const n = contributions.length;
  if (hooks.skipMinContributions !== true && n < rules.minContributions) {
    throw refused(`${n} contribution(s) presented for round ${round}; at least ${rules.minContributions} distinct signed contributions are required`, { have: n, need: rules.minContributions });
  }
  if (n > rules.roster.parties.length && hooks.skipDistinctWorkers !== true) throw refused(`${n} contributions presented, the roster has ${rules.roster.parties.length} parties`);
  if (n === 0) throw refused('no contributions presented');
  const opened: OpenedContribution[] = [];
  const seen = new Set<string>();
  let runId = rules.runId;
  contributions.forEach((bytes, i) => {
    const what = `contribution ${i} of round ${round}`;
    const c = openContribution(bytes, what);
    runId ??= c.runId;
    if (hooks.skipBinding !== true && (c.runId !== runId || c.round !== round)) throw refused(`${what} is signed for run ${c.runId} round ${c.round}, not run ${runId} round ${round}`, { worker: c.workerId });
    if (hooks.skipBinding !== true && c.keyFingerprint !== rules.keyId) throw refused(`${what} is under key ${c.keyFingerprint.slice(0, 16)}…, this decryptor's is ${rules.keyId.slice(0, 16)}…`, { worker: c.workerId });
    if (hooks.skipSignatures !== true) verifyContribution(rules.roster, c, `${what} (worker ${c.workerId})`);
    if (hooks.skipDistinctWorkers !== true && seen.has(c.workerId)) throw refused(`worker ${c.workerId} appears twice among the contributions of round ${round}`, { worker: c.workerId });
    seen.add(c.workerId);
    opened.push(c);
  });
  if (hooks.skipWeightCheck !== true) {
    const ratio = opened[0]!.weight / opened[0]!.numExamples;
    const off = opened.find((c) => Math.abs(c.weight / c.numExamples - ratio) > 1e-9 * ratio);
    if (off !== undefined) {
      throw refused(`the FedAvg weights are not proportional to the workers' example counts: worker ${off.workerId} has weight ${off.weight} for ${off.numExamples} examples, worker ${opened[0]!.workerId} ${opened[0]!.weight} for ${opened[0]!.numExamples}`, { worker: off.workerId });
    }
    const total = opened.reduce((s, c) => s + c.weight, 0);
    if (total > 1 + 1e-9) throw refused(`the FedAvg weights of round ${round} sum to ${total} > 1`);
  }
  let layout: PackingLayout | undefined;
  let length: number | undefined;
  const vectors = opened.map((c) => {
    const v = deserializePacked(rules.publicKey, c.packed, { ...(length === undefined ? {} : { length }), ...(layout === undefined ? {} : { layout }) });
    if (v.contributions !== 1) throw refused(`the contribution of worker ${c.workerId} claims ${v.contributions} contributions; a worker update holds 1`, { worker: c.workerId });
    layout ??= v.layout;
    length ??= v.length;
    return v;
  });
  return { runId: runId ?? '', contributions: opened, product: PackedCiphertext.sum(vectors) };
}
