import { generatePrime } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { bitLength, gcd, getBackend, modInverse, randomBelow } from '../core/bigmath/index.ts';
import { PaillierPublicKey, djnBase, type PaillierKeyOptions } from './keys.ts';
import { MAX_THRESHOLD_HOLDERS, ThresholdKeyShare, ThresholdPublicKey, thresholdDelta } from './threshold.ts';

/**
 * The trusted dealer of threshold Paillier (Damgård–Jurik, PKC 2001, §4 key generation with
 * s = 1): safe primes, d ≡ 0 (mod m), d ≡ 1 (mod n), shares s_i = f(i) of a random degree-t
 * polynomial over Z_{nm}, verification keys v_i = v^{Δs_i}. See src/paillier/threshold.ts.
 */

/** Options of {@link dealThresholdKey}. */
export interface DealOptions extends PaillierKeyOptions {
  /** Modulus size in bits: 2048 (default), 3072 or 4096; 1024 and 512 for tests only. */
  readonly bits?: number;
  /** Number of key holders L (2 … 64). */
  readonly holders: number;
  /** Shares needed to decrypt, k = t + 1 (2 … L). */
  readonly threshold: number;
}

/** What the dealer hands out: the public key and one share per holder. It keeps nothing. */
export interface DealtThresholdKey {
  readonly publicKey: ThresholdPublicKey;
  readonly shares: readonly ThresholdKeyShare[];
}

function generateSafePrime(bits: number): Promise<bigint> {
  return new Promise((resolve, reject) => generatePrime(bits, { bigint: true, safe: true }, (err, prime) => (err ? reject(err) : resolve(prime))));
}

/** Key sizes the dealer accepts (512 and 1024 are insecure and for tests only). */
export const THRESHOLD_KEY_BITS = [512, 1024, 2048, 3072, 4096] as const;

/**
 * The trusted dealer (DJ01 §4 key generation): makes safe primes p, q with OpenSSL
 * (`generatePrime({ safe: true })`), deals d over Z_{nm} to L holders, and forgets p, q, m, d.
 * The dealer is trusted at setup: whoever runs it could keep the factors; run it once, offline,
 * and hand each holder only its own share.
 *
 * @example
 * ```ts
 * const { publicKey, shares } = await dealThresholdKey({ bits: 2048, holders: 3, threshold: 2 });
 * ```
 */
export async function dealThresholdKey(options: DealOptions): Promise<DealtThresholdKey> {
  const bits = options.bits ?? 2048;
  if (!(THRESHOLD_KEY_BITS as readonly number[]).includes(bits)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `key size ${String(bits)} is not one of ${THRESHOLD_KEY_BITS.join(', ')}`, { param: 'bits' });
  }
  assertIntegerInRange(options.holders, 'holders', 2, MAX_THRESHOLD_HOLDERS);
  assertIntegerInRange(options.threshold, 'threshold', 2, options.holders);
  for (;;) {
    const [p, q] = await Promise.all([generateSafePrime(bits / 2), generateSafePrime(bits / 2)]);
    if (p === q || bitLength(p * q) !== bits) continue;
    return dealFromSafePrimes(p, q, options);
  }
}

/**
 * Deals a threshold key from given safe primes (the dealer's core; tests use it with fixed
 * primes so they need not generate safe primes). `coefficients` (a₁ … a_t) and `v` are drawn at
 * random unless given (known-answer tests fix them).
 */
export function dealFromSafePrimes(p: bigint, q: bigint, options: DealOptions & { readonly coefficients?: readonly bigint[]; readonly v?: bigint }): DealtThresholdKey {
  const { holders, threshold } = options;
  assertIntegerInRange(holders, 'holders', 2, MAX_THRESHOLD_HOLDERS);
  assertIntegerInRange(threshold, 'threshold', 2, holders);
  const be = getBackend(options.backend ?? 'auto');
  const pp = (p - 1n) / 2n;
  const qq = (q - 1n) / 2n;
  if (p === q || (p & 1n) === 0n || (q & 1n) === 0n) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'p and q must be distinct odd safe primes', { param: 'p' });
  const n = p * q;
  const m = pp * qq;
  if (gcd(n, m) !== 1n) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'gcd(n, m) must be 1 (p, q must be safe primes of equal size)', { param: 'p' });
  const nm = n * m;
  // d ≡ 0 mod m, d ≡ 1 mod n (DJ01 §4): d = m·(m⁻¹ mod n).
  const d = m * modInverse(m % n, n);
  const t = threshold - 1;
  const coeffs = options.coefficients ?? Array.from({ length: t }, () => randomBelow(nm));
  if (coeffs.length !== t) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `a threshold of ${threshold} needs ${t} coefficients, got ${coeffs.length}`, { param: 'coefficients' });
  const secrets = Array.from({ length: holders }, (_, k) => {
    const x = BigInt(k + 1);
    let acc = 0n;
    for (let j = t - 1; j >= 0; j--) acc = ((acc + coeffs[j]!) * x) % nm;
    return (acc + d) % nm;
  });
  const nSquared = n * n;
  let v = options.v;
  if (v === undefined) {
    let r: bigint;
    do r = randomBelow(nSquared);
    while (r < 2n || gcd(r, n) !== 1n);
    v = (r * r) % nSquared;
  }
  const delta = thresholdDelta(holders);
  const verificationKeys = secrets.map((s) => be.powmSec(v, delta * s, nSquared));
  const paillier = new PaillierPublicKey(n, djnBase(n, options), options);
  const publicKey = new ThresholdPublicKey(paillier, holders, threshold, v, verificationKeys);
  return { publicKey, shares: secrets.map((s, k) => new ThresholdKeyShare(publicKey, k + 1, s)) };
}
