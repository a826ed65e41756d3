import { generatePrime } from 'node:crypto';
import { bitLength, randomBits, type BackendPreference } from '../src/core/bigmath/index.ts';
import { PaillierPrivateKey } from '../src/paillier/index.ts';
import { combineUnchecked, verifyDecryptionShare } from '../src/paillier/threshold.ts';
import { dealFromSafePrimes } from '../src/paillier/threshold-dealer.ts';

/**
 * Threshold Paillier figures for `bench paillier`: what each party pays per ciphertext, against
 * ordinary CRT decryption (the single key holder) on the same modulus in the same run.
 *
 * - key holder: one decryption share c^{2Δs_i} plus its Chaum–Pedersen proof;
 * - combiner: verifying one share, and combining k verified shares;
 * - baseline: PaillierPrivateKey.decryptRaw (CRT, Paillier 1999 §7) on the same n.
 * The modulus is made of safe primes (generated here, timed as keygen) so that both schemes
 * decrypt the very same ciphertexts.
 */

export interface ThresholdBenchOptions {
  readonly keyBits: number;
  readonly holders: number;
  readonly threshold: number;
  readonly samples: number;
  readonly backend: BackendPreference;
  readonly log: (line: string) => void;
}

export interface ThresholdBenchResult {
  /** "k-of-L". */
  readonly label: string;
  readonly holders: number;
  readonly threshold: number;
  /** Safe-prime generation and dealing (trusted dealer), once. */
  readonly dealerKeygenMs: number;
  /** One holder: decryption share + proof, per ciphertext. */
  readonly partialDecryptMsPerCiphertext: number;
  /** Combiner: verify one holder's share, per ciphertext. */
  readonly verifyMsPerShare: number;
  /** Combiner: combine k verified shares, per ciphertext. */
  readonly combineMsPerCiphertext: number;
  /** Combiner: k verifications + combine, per ciphertext. */
  readonly combinerMsPerCiphertext: number;
  /** Baseline: ordinary CRT decryption on the same modulus, per ciphertext. */
  readonly crtDecryptMsPerCiphertext: number;
  readonly ratios: {
    /** partialDecrypt / CRT decrypt. */
    readonly holderVsCrt: number;
    /** combiner / CRT decrypt. */
    readonly combinerVsCrt: number;
  };
}

function safePrime(bits: number): Promise<bigint> {
  return new Promise((resolve, reject) => generatePrime(bits, { bigint: true, safe: true }, (err, p) => (err ? reject(err) : resolve(p))));
}

/** Median over 3 batches of the mean milliseconds per call. */
function timeEach(count: number, f: (i: number) => unknown): number {
  f(0);
  const means: number[] = [];
  for (let b = 0; b < 3; b++) {
    const t = performance.now();
    for (let i = 0; i < count; i++) f(i);
    means.push((performance.now() - t) / count);
  }
  return means.sort((x, y) => x - y)[1]!;
}

/**
 * Runs the threshold part of the Paillier benchmark.
 *
 * @example
 * ```ts
 * const t = await runThresholdBench({ keyBits: 2048, holders: 3, threshold: 2, samples: 4, backend: 'auto', log: console.error });
 * ```
 */
export async function runThresholdBench(o: ThresholdBenchOptions): Promise<ThresholdBenchResult> {
  o.log(`threshold: generating ${o.keyBits}-bit safe primes and dealing a ${o.threshold}-of-${o.holders} key`);
  const t = performance.now();
  let p: bigint;
  let q: bigint;
  do [p, q] = await Promise.all([safePrime(o.keyBits / 2), safePrime(o.keyBits / 2)]);
  while (p === q || bitLength(p * q) !== o.keyBits);
  const { publicKey: pk, shares } = dealFromSafePrimes(p, q, { holders: o.holders, threshold: o.threshold, backend: o.backend });
  const dealerKeygenMs = performance.now() - t;
  const sk = new PaillierPrivateKey(pk.paillier, p, q);
  const cts = Array.from({ length: o.samples }, () => pk.paillier.encryptRaw(randomBits(o.keyBits - 1)));
  o.log(`threshold: timing ${o.samples} partial decryptions, verifications and combinations (dealer ${(dealerKeygenMs / 1000).toFixed(1)} s)`);
  const holder = shares[0]!;
  const partialDecryptMsPerCiphertext = timeEach(o.samples, (i) => holder.decryptShare(cts[i]!));
  const dshares = cts.map((c) => shares.slice(0, o.threshold).map((s) => s.decryptShare(c)));
  const verifyMsPerShare = timeEach(o.samples, (i) => {
    if (!verifyDecryptionShare(pk, cts[i]!, dshares[i]![0]!)) throw new Error('an honest share failed verification');
  });
  cts.forEach((c, i) => {
    if (combineUnchecked(pk, dshares[i]!) !== sk.decryptRaw(c)) throw new Error('threshold decryption differs from CRT decryption');
  });
  const combineMsPerCiphertext = timeEach(o.samples, (i) => combineUnchecked(pk, dshares[i]!));
  const crtDecryptMsPerCiphertext = timeEach(o.samples, (i) => sk.decryptRaw(cts[i]!));
  const combinerMsPerCiphertext = o.threshold * verifyMsPerShare + combineMsPerCiphertext;
  return {
    label: `${o.threshold}-of-${o.holders}`,
    holders: o.holders,
    threshold: o.threshold,
    dealerKeygenMs,
    partialDecryptMsPerCiphertext,
    verifyMsPerShare,
    combineMsPerCiphertext,
    combinerMsPerCiphertext,
    crtDecryptMsPerCiphertext,
    ratios: { holderVsCrt: partialDecryptMsPerCiphertext / crtDecryptMsPerCiphertext, combinerVsCrt: combinerMsPerCiphertext / crtDecryptMsPerCiphertext },
  };
}

/** Table rows (metric, threshold, CRT baseline, ratio) for the Paillier bench table. */
export function thresholdRows(r: ThresholdBenchResult): [string, string, string, string][] {
  const f = (x: number) => x.toFixed(3);
  return [
    [`threshold ${r.label}: holder share + proof, ms / ct`, f(r.partialDecryptMsPerCiphertext), f(r.crtDecryptMsPerCiphertext), `${r.ratios.holderVsCrt.toFixed(1)}× CRT`],
    [`threshold ${r.label}: verify one share, ms / ct`, f(r.verifyMsPerShare), '', ''],
    [`threshold ${r.label}: combine ${r.threshold} shares, ms / ct`, f(r.combineMsPerCiphertext), '', ''],
    [`threshold ${r.label}: combiner total, ms / ct`, f(r.combinerMsPerCiphertext), f(r.crtDecryptMsPerCiphertext), `${r.ratios.combinerVsCrt.toFixed(1)}× CRT`],
  ];
}
