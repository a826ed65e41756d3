import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertBigInt, assertIntegerInRange } from '../core/guards.ts';
import { bigintToBytes, bitLength, gcd, modInverse, randomBelow, type FixedBasePow, type ModArithBackend } from '../core/bigmath/index.ts';
import type { PaillierPublicKey } from './keys.ts';

/**
 * Threshold Paillier: Shoup's threshold RSA (EUROCRYPT 2000) applied to Paillier as in
 * Damgård–Jurik (PKC 2001, §4, s = 1) and Fouque–Poupard–Stern (FC 2000). L key holders each hold
 * one share; any k = t + 1 of them decrypt, t or fewer learn nothing about a plaintext.
 *
 * Invariants (DJ01 §4 with s = 1):
 * - n = pq with safe primes p = 2p' + 1, q = 2q' + 1; m = p'q'; g = n + 1, so ciphertexts are
 *   ordinary cipherml Paillier ciphertexts and the public key is an ordinary {@link PaillierPublicKey}.
 * - The secret d satisfies d ≡ 0 (mod m), d ≡ 1 (mod n); f(X) = d + a₁X + … + a_tX^t over Z_{nm};
 *   holder i (1 ≤ i ≤ L) holds s_i = f(i).
 * - Δ = L!; v is a random square in Z*_{n²} (a generator of the squares with overwhelming
 *   probability); the verification key of holder i is v_i = v^{Δ·s_i} mod n².
 * - Decryption share: c_i = c^{2Δ·s_i} mod n², with a proof that log_{c⁴}(c_i²) = log_v(v_i)
 *   (Chaum–Pedersen, Fiat–Shamir over SHA-256).
 * - Combining a set S of k shares: c' = Π c_i^{2μ_i}, μ_i = Δ·Π_{j∈S∖{i}} j/(j − i) ∈ ℤ, so
 *   c' = c^{4Δ²d} = 1 + 4Δ²·M·n mod n², and M = L(c')·(4Δ²)⁻¹ mod n.
 */

/** The most key holders a threshold key may have (Δ = L! grows with L). */
export const MAX_THRESHOLD_HOLDERS = 64;
/** Bits of the Fiat–Shamir challenge (SHA-256). */
const CHALLENGE_BITS = 256;
/** Extra bits of the prover's nonce over e·Δs_i: statistical zero knowledge to 2^−128. */
const STAT_BITS = 128;
const FINGERPRINT_DOMAIN = 'cipherml/paillier-threshold/v1';
const PROOF_DOMAIN = 'cipherml/paillier-threshold/decryption-share/v1';

/**
 * Δ = L! for L holders.
 *
 * @example
 * ```ts
 * thresholdDelta(3); // 6n
 * ```
 */
export function thresholdDelta(n: number): bigint {
  let f = 1n;
  for (let i = 2n; i <= BigInt(n); i++) f *= i;
  return f;
}

function hashInts(domain: string, fingerprint: string, id: number, values: readonly bigint[]): bigint {
  const h = createHash('sha256').update(domain).update(Buffer.from(fingerprint, 'hex')).update(Uint8Array.of(id >> 8, id & 0xff));
  for (const v of values) {
    const b = bigintToBytes(v);
    h.update(Uint8Array.of(b.length >>> 24, (b.length >>> 16) & 0xff, (b.length >>> 8) & 0xff, b.length & 0xff)).update(b);
  }
  return BigInt(`0x${h.digest('hex')}`);
}

/**
 * The threshold key fingerprint: hex SHA-256 over (domain, L, k, n, h_s, v, v_1 … v_L). Pinning it pins all public material.
 *
 * @example
 * ```ts
 * thresholdFingerprint(3, 2, n, hs, v, vks) === publicKey.fingerprint; // true
 * ```
 */
export function thresholdFingerprint(holders: number, threshold: number, n: bigint, hs: bigint, v: bigint, verificationKeys: readonly bigint[]): string {
  const h = createHash('sha256').update(FINGERPRINT_DOMAIN).update(Uint8Array.of(holders >> 8, holders & 0xff, threshold >> 8, threshold & 0xff));
  for (const x of [n, hs, v, ...verificationKeys]) {
    const b = bigintToBytes(x);
    h.update(Uint8Array.of(b.length >>> 24, (b.length >>> 16) & 0xff, (b.length >>> 8) & 0xff, b.length & 0xff)).update(b);
  }
  return h.digest('hex');
}

/**
 * The public side of a threshold key: the ordinary Paillier public key (encryption is unchanged),
 * the holder count L, the threshold k = t + 1, and the verification keys.
 *
 * @example
 * ```ts
 * const { publicKey } = await dealThresholdKey({ bits: 2048, holders: 3, threshold: 2 });
 * const c = encrypt(publicKey.paillier, 42n); // an ordinary Paillier ciphertext
 * ```
 */
export class ThresholdPublicKey {
  /** The ordinary Paillier public key workers encrypt under. */
  readonly paillier: PaillierPublicKey;
  /** Number of key holders L. */
  readonly holders: number;
  /** Shares needed to decrypt, k = t + 1. */
  readonly threshold: number;
  /** Δ = L!. */
  readonly delta: bigint;
  /** The verification base v (a square in Z*_{n²}). */
  readonly v: bigint;
  /** v_i = v^{Δ·s_i} mod n² of holder i at index i − 1. */
  readonly verificationKeys: readonly bigint[];
  /** Hex SHA-256 over all of the above (64 hex digits). */
  readonly fingerprint: string;
  /** Bits of the prover's nonce r. */
  readonly nonceBits: number;
  readonly #inv4Delta2: bigint;
  #vTable: FixedBasePow | undefined;

  constructor(paillier: PaillierPublicKey, holders: number, threshold: number, v: bigint, verificationKeys: readonly bigint[]) {
    assertIntegerInRange(holders, 'holders', 2, MAX_THRESHOLD_HOLDERS);
    assertIntegerInRange(threshold, 'threshold', 2, holders);
    const { n, nSquared } = paillier;
    const inGroup = (x: bigint) => x > 1n && x < nSquared && gcd(x, n) === 1n;
    assertBigInt(v, 'v');
    if (!inGroup(v)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the verification base v must be an element of Z*_{n^2} other than 1', { param: 'v' });
    if (verificationKeys.length !== holders) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${holders} holders need ${holders} verification keys, got ${verificationKeys.length}`, { param: 'verificationKeys' });
    }
    verificationKeys.forEach((vk, i) => {
      assertBigInt(vk, `verificationKeys[${i}]`);
      if (!inGroup(vk)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the verification key of holder ${i + 1} is not an element of Z*_{n^2} other than 1`, { param: `verificationKeys[${i}]` });
    });
    this.paillier = paillier;
    this.holders = holders;
    this.threshold = threshold;
    this.delta = thresholdDelta(holders);
    this.v = v;
    this.verificationKeys = [...verificationKeys];
    this.fingerprint = thresholdFingerprint(holders, threshold, n, paillier.hs, v, verificationKeys);
    // Δ·s_i < Δ·n·m < Δ·n²; z = r + e·Δ·s_i hides Δ·s_i when r has CHALLENGE_BITS + STAT_BITS more bits.
    this.nonceBits = bitLength(this.delta) + 2 * paillier.bits + CHALLENGE_BITS + STAT_BITS;
    this.#inv4Delta2 = modInverse((4n * this.delta * this.delta) % n, n);
  }

  get backend(): ModArithBackend {
    return this.paillier.backend;
  }

  /** The "k-of-L" label, e.g. "2-of-3". */
  get label(): string {
    return `${this.threshold}-of-${this.holders}`;
  }

  /** The verification key of holder `id` (1-based); throws naming the id when there is none. */
  verificationKey(id: number, param = 'id'): bigint {
    const vk = Number.isInteger(id) ? this.verificationKeys[id - 1] : undefined;
    if (vk === undefined) {
      throw new CipherMLError('CIPHERML_E_THRESHOLD_SHARE_INVALID', `holder id ${String(id)} is not one of the key's holders 1…${this.holders}`, { param, details: { holder: id } });
    }
    return vk;
  }

  /**
   * v^z for a public exponent z < 2^(nonceBits+1) from a fixed-base table (4-bit windows, built
   * on first use: ⌈(nonceBits+1)/4⌉·16 residues mod n²). Only for public exponents: the table
   * lookups are not constant time.
   */
  vPowPublic(z: bigint): bigint {
    this.#vTable ??= this.backend.fixedBase(this.v, this.paillier.nSquared, this.nonceBits + 1, 4);
    return this.#vTable.pow(z);
  }

  /** M from c' = c^{4Δ²d}: L(c')·(4Δ²)⁻¹ mod n (internal to combining). */
  plaintextOf(cPrime: bigint): bigint {
    const { n } = this.paillier;
    return (((cPrime - 1n) / n) * this.#inv4Delta2) % n;
  }

  /** True when `other` has the same fingerprint. */
  equals(other: ThresholdPublicKey): boolean {
    return other.fingerprint === this.fingerprint;
  }
}

/** A Fiat–Shamir proof that a decryption share is c^{2Δ·s_i} for the holder's s_i. */
export interface ShareProof {
  /** Challenge e = H(…) of CHALLENGE_BITS bits. */
  readonly e: bigint;
  /** Response z = r + e·Δ·s_i. */
  readonly z: bigint;
}

/** Holder `id`'s decryption share of one ciphertext, with its proof. */
export interface DecryptionShare {
  readonly id: number;
  /** c_i = c^{2Δ·s_i} mod n². */
  readonly value: bigint;
  readonly proof: ShareProof;
}

/**
 * One holder's secret share s_i of a threshold key.
 *
 * @example
 * ```ts
 * const share = shares[0]!;
 * const ds = share.decryptShare(c.value); // { id: 1, value, proof }
 * ```
 */
export class ThresholdKeyShare {
  readonly publicKey: ThresholdPublicKey;
  /** Holder id, 1 ≤ id ≤ L. */
  readonly id: number;
  readonly #secret: bigint;

  /** Checks v^{Δ·s_i} = v_i: a share that is not this key's is refused (KEY_MISMATCH). */
  constructor(publicKey: ThresholdPublicKey, id: number, secret: bigint) {
    assertIntegerInRange(id, 'id', 1, publicKey.holders);
    assertBigInt(secret, 'secret');
    const { nSquared } = publicKey.paillier;
    if (secret <= 0n || publicKey.backend.powmSec(publicKey.v, publicKey.delta * secret, nSquared) !== publicKey.verificationKey(id)) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the secret share does not match holder ${id}'s verification key in threshold key ${publicKey.fingerprint.slice(0, 16)}…`, {
        param: 'share',
        details: { holder: id, fingerprint: publicKey.fingerprint },
      });
    }
    this.publicKey = publicKey;
    this.id = id;
    this.#secret = secret;
  }

  /** The secret s_i (for serialization only). */
  exportSecret(): bigint {
    return this.#secret;
  }

  /**
   * The decryption share c^{2Δ·s_i} mod n² of a raw ciphertext c ∈ Z*_{n²}, with its proof
   * (DJ01 §4: prove log_{c⁴}(c_i²) = log_v(v_i) = Δ·s_i).
   */
  decryptShare(c: bigint, param = 'ciphertext'): DecryptionShare {
    const pk = this.publicKey;
    pk.paillier.assertCiphertext(c, param);
    const { nSquared } = pk.paillier;
    const be = pk.backend;
    const x = pk.delta * this.#secret;
    const value = be.powmSec(c, 2n * x, nSquared);
    const c4 = be.powm(c, 4n, nSquared);
    const r = randomBelow(1n << BigInt(pk.nonceBits));
    const a = be.powmSec(c4, r, nSquared);
    const b = be.powmSec(pk.v, r, nSquared);
    const e = challenge(pk, this.id, c, value, a, b);
    return { id: this.id, value, proof: { e, z: r + e * x } };
  }
}

function challenge(pk: ThresholdPublicKey, id: number, c: bigint, ci: bigint, a: bigint, b: bigint): bigint {
  return hashInts(PROOF_DOMAIN, pk.fingerprint, id, [c, ci, a, b]);
}

/**
 * True when `share` is holder share.id's correct decryption share of c: c_i ∈ Z*_{n²} and
 * (c⁴)^z·(c_i²)^{−e} and v^z·v_i^{−e} hash back to e. Never throws on a malformed share.
 *
 * @example
 * ```ts
 * verifyDecryptionShare(publicKey, c.value, ds); // true
 * ```
 */
export function verifyDecryptionShare(pk: ThresholdPublicKey, c: bigint, share: DecryptionShare): boolean {
  const { n, nSquared } = pk.paillier;
  const vk = Number.isInteger(share.id) ? pk.verificationKeys[share.id - 1] : undefined;
  const { value, proof } = share;
  if (vk === undefined || typeof value !== 'bigint' || typeof proof?.e !== 'bigint' || typeof proof.z !== 'bigint') return false;
  if (value <= 0n || value >= nSquared || proof.e < 0n || proof.e >= 1n << BigInt(CHALLENGE_BITS) || proof.z < 0n || proof.z >= 1n << BigInt(pk.nonceBits + 1)) return false;
  const be = pk.backend;
  if (be.gcd(value, n) !== 1n || be.gcd(c, n) !== 1n) return false;
  const c4 = be.powm(c, 4n, nSquared);
  const ci2 = (value * value) % nSquared;
  const a = (be.powm(c4, proof.z, nSquared) * modInverse(be.powm(ci2, proof.e, nSquared), nSquared)) % nSquared;
  const b = (pk.vPowPublic(proof.z) * modInverse(be.powm(vk, proof.e, nSquared), nSquared)) % nSquared;
  return challenge(pk, share.id, c, value, a, b) === proof.e;
}

/**
 * Integer Lagrange coefficients at 0 scaled by Δ: μ_i = Δ·Π_{j∈S∖{i}} j/(j − i) (Shoup 2000, §3).
 * Exact because Δ = L! is divisible by every denominator.
 *
 * @example
 * ```ts
 * lagrangeAtZero(6n, [1, 3]); // [9n, -3n]
 * ```
 */
export function lagrangeAtZero(delta: bigint, ids: readonly number[]): bigint[] {
  return ids.map((i) => {
    let num = delta;
    let den = 1n;
    for (const j of ids) {
      if (j === i) continue;
      num *= BigInt(j);
      den *= BigInt(j - i);
    }
    if (num % den !== 0n) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `Δ·λ is not an integer for ids ${ids.join(',')}`, { param: 'ids' });
    return num / den;
  });
}

/** Options of {@link combineShares}. */
export interface CombineOptions {
  /**
   * Verify each share's proof before combining (default true). Only for callers that verified
   * the very same shares already; a share that fails is named in a THRESHOLD_SHARE_INVALID error.
   */
  readonly verify?: boolean;
  /** What the ciphertext is, for error messages (e.g. "packed.values[3]"). */
  readonly param?: string;
}

/**
 * Combines at least k verified decryption shares of c into the plaintext M ∈ [0, n). Every share
 * is verified first; a wrong or cheating holder's share is refused with
 * CIPHERML_E_THRESHOLD_SHARE_INVALID naming its id (details.holders lists every bad id). Fewer
 * than k distinct valid shares is CIPHERML_E_THRESHOLD_TOO_FEW_SHARES. Uses the first k shares
 * by id.
 *
 * @example
 * ```ts
 * const m = combineShares(publicKey, c.value, [shares[0]!.decryptShare(c.value), shares[2]!.decryptShare(c.value)]);
 * ```
 */
export function combineShares(pk: ThresholdPublicKey, c: bigint, shares: readonly DecryptionShare[], options: CombineOptions = {}): bigint {
  const param = options.param ?? 'ciphertext';
  pk.paillier.assertCiphertext(c, param);
  const chosen = selectShares(pk, shares, param);
  if (options.verify !== false) {
    const bad = chosen.filter((s) => !verifyDecryptionShare(pk, c, s)).map((s) => s.id);
    if (bad.length > 0) throw badShares(pk, bad, param);
  }
  return combineUnchecked(pk, chosen);
}

/**
 * Throws unless `shares` name ≥ k distinct valid ids; returns the first k sorted by id.
 *
 * @example
 * ```ts
 * const chosen = selectShares(publicKey, shares, 'ciphertext'); // k shares, by id
 * ```
 */
export function selectShares(pk: ThresholdPublicKey, shares: readonly DecryptionShare[], param: string): DecryptionShare[] {
  const byId = new Map<number, DecryptionShare>();
  for (const s of shares) {
    pk.verificationKey(s.id, `${param}.shares`);
    if (byId.has(s.id)) throw new CipherMLError('CIPHERML_E_THRESHOLD_SHARE_INVALID', `holder ${s.id} sent two decryption shares for one ciphertext`, { param: `${param}.shares`, details: { holders: [s.id] } });
    byId.set(s.id, s);
  }
  if (byId.size < pk.threshold) {
    throw new CipherMLError('CIPHERML_E_THRESHOLD_TOO_FEW_SHARES', `${byId.size} decryption share(s) given, the ${pk.label} key needs ${pk.threshold}`, {
      param: `${param}.shares`,
      details: { have: byId.size, need: pk.threshold },
    });
  }
  return [...byId.values()].sort((a, b) => a.id - b.id).slice(0, pk.threshold);
}

/**
 * The THRESHOLD_SHARE_INVALID error naming the holders whose shares failed verification.
 *
 * @example
 * ```ts
 * throw badShares(publicKey, [2], 'packed'); // details.holders = [2]
 * ```
 */
export function badShares(pk: ThresholdPublicKey, ids: readonly number[], param: string): CipherMLError {
  const list = [...new Set(ids)].sort((a, b) => a - b);
  return new CipherMLError('CIPHERML_E_THRESHOLD_SHARE_INVALID', `the decryption share of holder ${list.join(', ')} failed its proof of correct decryption under threshold key ${pk.fingerprint.slice(0, 16)}…`, {
    param: `${param}.shares`,
    details: { holders: list },
  });
}

/**
 * c' = Π c_i^{2μ_i} and M = L(c')·(4Δ²)⁻¹ mod n over exactly the given (verified) shares.
 *
 * @example
 * ```ts
 * const m = combineUnchecked(publicKey, verifiedShares); // only after verifyDecryptionShare
 * ```
 */
export function combineUnchecked(pk: ThresholdPublicKey, shares: readonly DecryptionShare[]): bigint {
  const { nSquared } = pk.paillier;
  const be = pk.backend;
  const mus = lagrangeAtZero(
    pk.delta,
    shares.map((s) => s.id),
  );
  let acc = 1n;
  shares.forEach((s, k) => {
    const mu = mus[k]!;
    const term = be.powm(s.value, 2n * (mu < 0n ? -mu : mu), nSquared);
    acc = (acc * (mu < 0n ? modInverse(term, nSquared) : term)) % nSquared;
  });
  return pk.plaintextOf(acc);
}

/**
 * Parses a "k-of-L" threshold label (e.g. "2-of-3": any 2 of 3 holders decrypt), naming `param`
 * (the flag or config key the user gave) when it is malformed.
 *
 * @example
 * ```ts
 * parseThresholdLabel('2-of-3', '--threshold'); // { threshold: 2, holders: 3 }
 * ```
 */
export function parseThresholdLabel(label: string, param: string): { threshold: number; holders: number } {
  const m = /^(\d{1,3})-of-(\d{1,3})$/.exec(label.trim());
  const threshold = m === null ? NaN : Number(m[1]);
  const holders = m === null ? NaN : Number(m[2]);
  if (m === null || holders < 2 || holders > MAX_THRESHOLD_HOLDERS || threshold < 2 || threshold > holders) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${JSON.stringify(label)} is not "k-of-L" with 2 ≤ k ≤ L ≤ ${MAX_THRESHOLD_HOLDERS} (e.g. "2-of-3": any 2 of 3 key holders decrypt)`, { param });
  }
  return { threshold, holders };
}
