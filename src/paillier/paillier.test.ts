import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { availableBackends, powmBigint } from '../core/bigmath/index.ts';
import { codeOf } from '../../test/helpers.ts';
import {
  PackedCiphertext,
  PaillierCiphertext,
  PaillierPrivateKey,
  PaillierPublicKey,
  decrypt,
  decryptNumber,
  decryptPacked,
  encrypt,
  encryptNumber,
  encryptPacked,
  generatePaillierKeyPair,
  type PaillierKeyPair,
} from './index.ts';

// Known answer: computed by paillier-bigint 3.4.3 (g = n + 1) as Enc(m; r) = (1 + m·n)·r^n mod n².
const KAT = {
  p: 0xd57e9080c239a872dd827b8bc4e89d5721204df5fe1f65fe0a49e36858a8a1cdn,
  q: 0xda6954fe6414ffde6ba3b25ff84de4e245bbc4ad5ec72d4a86d6bdd47d0f713fn,
  r: 0xf6527c49be91080553b5e9f82076d149a7b727e1ce23809f68a71ec58aef542e08a6e83acfc10c83299913c0abb75733df9505243daf26eff89b5738n,
  m: 123456789012345678901234567890n,
  c: 0x46192d9062010ed98512e0ae32c437fcc64491e277f1db5ad8732af9781d1bef3b36e5d33131b5f936fefdc9a1ee767c6cd9e0b026b204fc740d50230797b5b85b08be7e292a6e30382852361cc35582c31020b3aced25c750c6fd826e6cd038dc4c5ac72319b15d33884378cfa8eea517753e27a89f086a308a785bf9d6f153n,
};

for (const backend of availableBackends()) {
  describe(`Paillier on the ${backend.name} backend`, () => {
    let pair: PaillierKeyPair;
    let other: PaillierKeyPair;
    beforeAll(async () => {
      pair = await generatePaillierKeyPair({ bits: 1024, backend: backend.name });
      other = await generatePaillierKeyPair({ bits: 1024, backend: backend.name });
    });

    it('decrypts a known-answer ciphertext made by paillier-bigint', () => {
      const n = KAT.p * KAT.q;
      const pk = new PaillierPublicKey(n, powmBigint(n - 4n, n, n * n), { backend: backend.name });
      const sk = new PaillierPrivateKey(pk, KAT.p, KAT.q);
      expect(sk.decryptRaw(KAT.c)).toBe(KAT.m);
      expect(((1n + KAT.m * n) * backend.powm(KAT.r, n, n * n)) % (n * n)).toBe(KAT.c);
    });

    it('generates keys of the requested size with matching factors', () => {
      expect(pair.publicKey.bits).toBe(1024);
      expect(pair.privateKey.p * pair.privateKey.q).toBe(pair.publicKey.n);
      expect(pair.publicKey.fingerprint).toMatch(/^[0-9a-f]{32}$/);
      expect(pair.publicKey.fingerprint).not.toBe(other.publicKey.fingerprint);
    });

    it('Dec(Enc(a)·Enc(b)) = a + b mod n (both obfuscation modes)', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: pk.n - 1n }), fc.bigInt({ min: 0n, max: pk.n - 1n }), fc.constantFrom('djn' as const, 'classic' as const), (a, b, mode) => {
          const sum = encrypt(pk, a, { obfuscate: mode }).add(encrypt(pk, b, { obfuscate: mode }));
          expect(decrypt(sk, sum)).toBe((a + b) % pk.n);
        }),
        { numRuns: 25 },
      );
    });

    it('Dec(Enc(a)^k) = k·a, Dec(Enc(a)·Enc(b)^-1) = a − b, Dec(Enc(a)·g^k) = a + k', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      const mod = (x: bigint) => ((x % pk.n) + pk.n) % pk.n;
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: pk.n - 1n }), fc.bigInt({ min: 0n, max: pk.n - 1n }), fc.bigInt({ min: -(1n << 200n), max: 1n << 200n }), (a, b, k) => {
          const ca = encrypt(pk, a);
          const cb = encrypt(pk, b);
          expect(decrypt(sk, ca.mulScalar(k))).toBe(mod(a * k));
          expect(decrypt(sk, ca.sub(cb))).toBe(mod(a - b));
          expect(decrypt(sk, ca.addPlain(k))).toBe(mod(a + k));
        }),
        { numRuns: 15 },
      );
    });

    it('randomizes: two encryptions of one value differ, and obfuscation state is tracked', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      const a = encrypt(pk, 9n);
      const b = encrypt(pk, 9n);
      expect(a.value).not.toBe(b.value);
      const lazy = encrypt(pk, 9n, { obfuscate: false });
      expect(lazy.obfuscated).toBe(false);
      expect(lazy.value).toBe(1n + 9n * pk.n);
      const exported = lazy.forExport();
      expect(exported.obfuscated).toBe(true);
      expect(exported.value).not.toBe(lazy.value);
      expect(decrypt(sk, exported)).toBe(9n);
      expect(a.add(b).obfuscated).toBe(true);
      expect(a.add(lazy).obfuscated).toBe(false);
      expect(a.mulScalar(3n).obfuscated).toBe(false);
    });

    it('sums many ciphertexts', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      const xs = Array.from({ length: 40 }, (_, i) => BigInt(i * 1000 + 7));
      expect(decrypt(sk, PaillierCiphertext.sum(xs.map((x) => encrypt(pk, x))))).toBe(xs.reduce((s, x) => s + x, 0n));
    });

    it('encodes signed reals as fixed point', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      fc.assert(
        fc.property(fc.double({ min: -1000, max: 1000, noNaN: true }), fc.double({ min: -1000, max: 1000, noNaN: true }), (x, y) => {
          const got = decryptNumber(sk, encryptNumber(pk, x).add(encryptNumber(pk, y)));
          expect(Math.abs(got - (x + y))).toBeLessThanOrEqual(2 ** -16);
        }),
        { numRuns: 15 },
      );
      expect(decryptNumber(sk, encryptNumber(pk, -2.25).add(encryptNumber(pk, 1)))).toBe(-1.25);
    });

    it('packed vectors: the decrypted sum of C contributions equals the plain sum', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 60 }).chain((len) => fc.array(fc.array(fc.double({ min: -30000, max: 30000, noNaN: true }), { minLength: len, maxLength: len }), { minLength: 1, maxLength: 6 })),
          (vectors) => {
            const enc = vectors.map((v) => encryptPacked(pk, v));
            const got = decryptPacked(sk, PackedCiphertext.sum(enc));
            vectors[0]!.forEach((_, i) => {
              const want = vectors.reduce((s, v) => s + v[i]!, 0);
              expect(Math.abs(got[i]! - want)).toBeLessThanOrEqual(vectors.length * 2 ** -17 + 1e-9);
            });
          },
        ),
        { numRuns: 20 },
      );
    });

    it('packed vectors: the extremes of the range sum without wrapping into neighbour slots', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      const packing = { fractionalBits: 8, integerBits: 8, maxContributions: 5 };
      const max = 256 - 2 ** -8;
      const v = [max, -max, max, -max, 0, max];
      const enc = Array.from({ length: 5 }, () => encryptPacked(pk, v, { packing }));
      const got = decryptPacked(sk, PackedCiphertext.sum(enc));
      expect(Array.from(got)).toEqual(v.map((x) => 5 * x));
      expect(Array.from(decryptPacked(sk, PackedCiphertext.sum(enc), { mean: true }))).toEqual(v);
    });

    it('packed vectors: refuses to add beyond the headroom (SLOT_OVERFLOW), never wraps', () => {
      const { publicKey: pk } = pair;
      const packing = { fractionalBits: 8, integerBits: 8, maxContributions: 3 };
      const vs = Array.from({ length: 4 }, () => encryptPacked(pk, [1, 2, 3], { packing }));
      const three = vs[0]!.add(vs[1]!).add(vs[2]!);
      expect(three.contributions).toBe(3);
      expect(codeOf(() => three.add(vs[3]!))).toBe('CIPHERML_E_SLOT_OVERFLOW');
      expect(codeOf(() => PackedCiphertext.sum(vs))).toBe('CIPHERML_E_SLOT_OVERFLOW');
      expect(codeOf(() => vs[0]!.mulScalar(4))).toBe('CIPHERML_E_SLOT_OVERFLOW');
    });

    it('packed vectors: weighted sums with mulScalar count as k contributions', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      const a = encryptPacked(pk, [0.5, -1]).mulScalar(3);
      const b = encryptPacked(pk, [2, 2]);
      const s = a.add(b);
      expect(s.contributions).toBe(4);
      expect(Array.from(decryptPacked(sk, s))).toEqual([3.5, -1]);
    });

    it('rejects bad operands with typed errors', () => {
      const { publicKey: pk, privateKey: sk } = pair;
      expect(codeOf(() => encryptPacked(pk, [1, Number.NaN]))).toBe('CIPHERML_E_NOT_FINITE');
      expect(codeOf(() => encryptPacked(pk, [Number.NEGATIVE_INFINITY]))).toBe('CIPHERML_E_NOT_FINITE');
      expect(codeOf(() => encryptPacked(pk, [1e9]))).toBe('CIPHERML_E_OUT_OF_RANGE');
      expect(codeOf(() => encryptPacked(pk, ['1' as unknown as number]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
      const a = encryptPacked(pk, [1, 2, 3]);
      expect(codeOf(() => a.add(encryptPacked(pk, [1, 2])))).toBe('CIPHERML_E_SHAPE_MISMATCH');
      expect(codeOf(() => a.add(encryptPacked(pk, [1, 2, 3], { packing: { fractionalBits: 20, integerBits: 10, maxContributions: 1000 } })))).toBe('CIPHERML_E_LAYOUT_MISMATCH');
      expect(codeOf(() => a.add(encryptPacked(other.publicKey, [1, 2, 3])))).toBe('CIPHERML_E_KEY_MISMATCH');
      expect(codeOf(() => decryptPacked(other.privateKey, a))).toBe('CIPHERML_E_KEY_MISMATCH');
      expect(codeOf(() => decrypt(other.privateKey, encrypt(pk, 1n)))).toBe('CIPHERML_E_KEY_MISMATCH');
      expect(codeOf(() => encrypt(pk, 1n).add(encrypt(other.publicKey, 1n)))).toBe('CIPHERML_E_KEY_MISMATCH');
      expect(codeOf(() => encrypt(pk, pk.n))).toBe('CIPHERML_E_OUT_OF_RANGE');
      expect(codeOf(() => encrypt(pk, -1n))).toBe('CIPHERML_E_OUT_OF_RANGE');
      expect(codeOf(() => sk.decryptRaw(0n))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
      expect(codeOf(() => sk.decryptRaw(pk.nSquared))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
      expect(codeOf(() => sk.decryptRaw(sk.p * 12345n))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
      expect(codeOf(() => new PaillierPrivateKey(pk, other.privateKey.p, other.privateKey.q))).toBe('CIPHERML_E_KEY_MISMATCH');
    });
  });
}

describe('key generation options', () => {
  it('defaults to 2048 bits and refuses unsupported sizes', async () => {
    const { publicKey, privateKey } = await generatePaillierKeyPair();
    expect(publicKey.bits).toBe(2048);
    expect(decrypt(privateKey, encrypt(publicKey, 2n ** 2000n))).toBe(2n ** 2000n);
    await expect(generatePaillierKeyPair({ bits: 1000 })).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'bits' });
  });
});
