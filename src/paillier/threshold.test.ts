import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { availableBackends } from '../core/bigmath/index.ts';
import { isCipherMLError } from '../core/errors.ts';
import { codeOf } from '../../test/helpers.ts';
import { THRESHOLD_KAT as KAT } from '../../test/fixtures/threshold.ts';
import { PaillierPrivateKey, PackedCiphertext, decrypt, decryptPacked, encrypt, encryptPacked } from './index.ts';
import {combineShares, combineUnchecked, lagrangeAtZero, verifyDecryptionShare, type DecryptionShare} from './threshold.ts';
import { dealFromSafePrimes, type DealtThresholdKey } from './threshold-dealer.ts';
import { combinePacked, decryptionSharesOf } from './threshold-vector.ts';

function detailsOf(f: () => unknown): { code: string; holders?: unknown } | undefined {
  try {
    f();
  } catch (e) {
    if (isCipherMLError(e)) return { code: e.code, holders: e.details?.['holders'] };
    return { code: `untyped: ${String(e)}` };
  }
  return undefined;
}

/** All subsets of {1…L} of size ≥ k. */
function subsets(L: number, k: number): number[][] {
  const out: number[][] = [];
  for (let mask = 1; mask < 1 << L; mask++) {
    const s = Array.from({ length: L }, (_, i) => i + 1).filter((i) => (mask >> (i - 1)) & 1);
    if (s.length >= k) out.push(s);
  }
  return out;
}

for (const backend of availableBackends()) {
  describe(`threshold Paillier on the ${backend.name} backend`, () => {
    const kat: DealtThresholdKey = dealFromSafePrimes(KAT.p, KAT.q, { holders: KAT.holders, threshold: KAT.threshold, coefficients: [KAT.a1], v: KAT.v, backend: backend.name });
    const big: DealtThresholdKey = dealFromSafePrimes(KAT.p, KAT.q, { holders: 5, threshold: 3, backend: backend.name });
    const sk = new PaillierPrivateKey(big.publicKey.paillier, KAT.p, KAT.q);
    // The BigInt backend is ~10× slower: fewer property runs there, the full count on GMP.
    const runs = (n: number) => (backend.name === 'gmp' ? n : Math.max(2, Math.round(n / 5)));

    it('deals the known-answer shares and verification keys', () => {
      expect(kat.shares.map((s) => s.exportSecret())).toEqual([...KAT.s]);
      expect(kat.publicKey.verificationKeys).toEqual([...KAT.verificationKeys]);
      expect(kat.publicKey.delta).toBe(6n);
      expect(kat.publicKey.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    });

    it('makes the known-answer decryption shares and combines every pair to M', () => {
      const ds = kat.shares.map((s) => s.decryptShare(KAT.c));
      expect(ds.map((d) => d.value)).toEqual([...KAT.ci]);
      for (const pair of [
        [0, 1],
        [0, 2],
        [1, 2],
      ] as const) {
        expect(combineShares(kat.publicKey, KAT.c, [ds[pair[0]]!, ds[pair[1]]!])).toBe(KAT.m);
      }
      expect(combineShares(kat.publicKey, KAT.c, ds)).toBe(KAT.m);
    });

    it('integer Lagrange coefficients scaled by Δ interpolate f(0)·Δ', () => {
      expect(lagrangeAtZero(6n, [1, 3])).toEqual([9n, -3n]);
      expect(lagrangeAtZero(6n, [1, 2, 3])).toEqual([18n, -18n, 6n]);
    });

    it('threshold decryption equals ordinary decryption for any k-subset (property)', () => {
      const pk = big.publicKey;
      const all = subsets(5, 3);
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: pk.paillier.n - 1n }), fc.constantFrom(...all), (m, ids) => {
          const c = encrypt(pk.paillier, m);
          const shares = ids.map((id) => big.shares[id - 1]!.decryptShare(c.value));
          return combineShares(pk, c.value, shares) === m && decrypt(sk, c) === m;
        }),
        { numRuns: runs(15) },
      );
    });

    it('decrypts homomorphic sums like the private key does (property)', () => {
      const pk = big.publicKey;
      fc.assert(
        fc.property(fc.array(fc.bigInt({ min: 0n, max: 1n << 200n }), { minLength: 1, maxLength: 6 }), fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: 3, maxLength: 3 }), (ms, ids) => {
          const sum = ms.map((m) => encrypt(pk.paillier, m)).reduce((a, b) => a.add(b));
          const got = combineShares(
            pk,
            sum.value,
            ids.map((id) => big.shares[id - 1]!.decryptShare(sum.value)),
          );
          return got === decrypt(sk, sum) && got === ms.reduce((a, b) => a + b, 0n) % pk.paillier.n;
        }),
        { numRuns: runs(10) },
      );
    });

    it('decrypts packed vector sums like decryptPacked (property)', () => {
      const pk = big.publicKey;
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 30 }).chain((len) => fc.array(fc.array(fc.double({ min: -1000, max: 1000, noNaN: true }), { minLength: len, maxLength: len }), { minLength: 1, maxLength: 4 })),
          fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: 3, maxLength: 5 }),
          (vectors, ids) => {
            const sum = PackedCiphertext.sum(vectors.map((v) => encryptPacked(pk.paillier, v)));
            const { values, used, rejected } = combinePacked(
              pk,
              sum,
              ids.map((id) => decryptionSharesOf(big.shares[id - 1]!, sum)),
            );
            expect(rejected).toEqual([]);
            expect(used).toHaveLength(3);
            expect([...values]).toEqual([...decryptPacked(sk, sum)]);
          },
        ),
        { numRuns: runs(6) },
      );
    });

    it('refuses fewer than k shares, and t shares interpolate to something other than M', () => {
      const pk = big.publicKey;
      fc.assert(
        fc.property(fc.bigInt({ min: 1n, max: pk.paillier.n - 1n }), fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: 1, maxLength: 2 }), (m, ids) => {
          const c = encrypt(pk.paillier, m).value;
          const shares = ids.map((id) => big.shares[id - 1]!.decryptShare(c));
          expect(detailsOf(() => combineShares(pk, c, shares))?.code).toBe('CIPHERML_E_THRESHOLD_TOO_FEW_SHARES');
          // Forcing the combination over t shares (a degree t − 1 interpolation) does not yield M.
          expect(combineUnchecked(pk, shares)).not.toBe(m);
        }),
        { numRuns: runs(10) },
      );
    });

    it('detects a forged or mutated share or proof and names the cheating holder (property)', () => {
      const pk = big.publicKey;
      const { nSquared } = pk.paillier;
      type Forge = (s: DecryptionShare, c: bigint) => DecryptionShare;
      const forgeries: Record<string, Forge> = {
        'value times 1+n': (s) => ({ ...s, value: (s.value * (1n + pk.paillier.n)) % nSquared }),
        'value squared': (s) => ({ ...s, value: (s.value * s.value) % nSquared }),
        'e + 1': (s) => ({ ...s, proof: { ...s.proof, e: s.proof.e + 1n } }),
        'z + 1': (s) => ({ ...s, proof: { ...s.proof, z: s.proof.z + 1n } }),
        'share of another ciphertext': (s, c) => ({ ...big.shares[s.id - 1]!.decryptShare((c * c) % nSquared) }),
        'other holder’s share relabelled': (s, c) => ({ ...big.shares[s.id % 5]!.decryptShare(c), id: s.id }),
        'value without proof of knowledge': (s, c) => ({ ...s, value: pk.backend.powm(c, 2n * pk.delta * 12345n, nSquared) }),
      };
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: pk.paillier.n - 1n }), fc.constantFrom(1, 2, 3), fc.constantFrom(...Object.keys(forgeries)), (m, cheater, how) => {
          const c = encrypt(pk.paillier, m).value;
          const shares = [1, 2, 3].map((id) => big.shares[id - 1]!.decryptShare(c));
          shares[cheater - 1] = forgeries[how]!(shares[cheater - 1]!, c);
          expect(verifyDecryptionShare(pk, c, shares[cheater - 1]!)).toBe(false);
          expect(detailsOf(() => combineShares(pk, c, shares))).toEqual({ code: 'CIPHERML_E_THRESHOLD_SHARE_INVALID', holders: [cheater] });
        }),
        { numRuns: runs(20) },
      );
    });

    it('combinePacked skips a cheating holder when k honest ones remain, and names it', () => {
      const pk = kat.publicKey;
      const sum = PackedCiphertext.sum([encryptPacked(pk.paillier, [1.5, -2, 3]), encryptPacked(pk.paillier, [0.25, 4, -1])]);
      const honest = kat.shares.map((s) => decryptionSharesOf(s, sum));
      const forged = honest[0]!.map((s) => ({ ...s, value: (s.value * s.value) % pk.paillier.nSquared }));
      const r = combinePacked(pk, sum, [forged, honest[1]!, honest[2]!]);
      expect(r.rejected).toEqual([1]);
      expect(r.used).toEqual([2, 3]);
      expect([...r.values]).toEqual([1.75, 2, 2]);
      expect(detailsOf(() => combinePacked(pk, sum, [forged, honest[2]!]))).toEqual({ code: 'CIPHERML_E_THRESHOLD_SHARE_INVALID', holders: [1] });
      expect(detailsOf(() => combinePacked(pk, sum, [honest[2]!]))?.code).toBe('CIPHERML_E_THRESHOLD_TOO_FEW_SHARES');
      expect(detailsOf(() => combinePacked(pk, sum, [honest[1]!, honest[1]!]))).toEqual({ code: 'CIPHERML_E_THRESHOLD_SHARE_INVALID', holders: [2] });
    });

    it('refuses shares naming no holder of the key, and a value outside Z*_{n²}', () => {
      const pk = kat.publicKey;
      const c = encrypt(pk.paillier, 5n).value;
      const ds = kat.shares.map((s) => s.decryptShare(c));
      expect(codeOf(() => combineShares(pk, c, [ds[0]!, { ...ds[1]!, id: 4 }]))).toBe('CIPHERML_E_THRESHOLD_SHARE_INVALID');
      expect(codeOf(() => combineShares(pk, c, [ds[0]!, ds[0]!]))).toBe('CIPHERML_E_THRESHOLD_SHARE_INVALID');
      expect(codeOf(() => kat.shares[0]!.decryptShare(pk.paillier.n))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
    });
  });
}
