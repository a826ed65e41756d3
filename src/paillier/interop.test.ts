import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PrivateKey as PbPrivateKey, PublicKey as PbPublicKey } from 'paillier-bigint';
import { modInverse } from '../core/bigmath/index.ts';
import { decrypt, encrypt, generatePaillierKeyPair, PaillierCiphertext, type PaillierKeyPair } from './index.ts';

// Interoperability with the textbook scheme as implemented by paillier-bigint (g = n + 1,
// λ = (p−1)(q−1), μ = λ^{−1} mod n): ciphertexts cross in both directions.
describe('interoperability with paillier-bigint', () => {
  let pair: PaillierKeyPair;
  let pbPublic: PbPublicKey;
  let pbPrivate: PbPrivateKey;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 2048 });
    const { n } = pair.publicKey;
    const { p, q } = pair.privateKey;
    pbPublic = new PbPublicKey(n, n + 1n);
    const lambda = (p - 1n) * (q - 1n);
    pbPrivate = new PbPrivateKey(lambda, modInverse(lambda, n), pbPublic, p, q);
  });

  it('a cipherml ciphertext (DJN obfuscation) decrypts with paillier-bigint', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 2040n) - 1n }), (m) => {
        expect(pbPrivate.decrypt(encrypt(pair.publicKey, m).value)).toBe(m);
      }),
      { numRuns: 10 },
    );
  });

  it('a paillier-bigint ciphertext decrypts with cipherml, and sums across both', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 1000n }), fc.bigInt({ min: 0n, max: 1n << 1000n }), (a, b) => {
        const theirs = PaillierCiphertext.fromValue(pair.publicKey, pbPublic.encrypt(a));
        expect(decrypt(pair.privateKey, theirs)).toBe(a);
        expect(decrypt(pair.privateKey, theirs.add(encrypt(pair.publicKey, b)))).toBe(a + b);
        expect(pbPrivate.decrypt(pbPublic.addition(theirs.value, encrypt(pair.publicKey, b).value))).toBe(a + b);
      }),
      { numRuns: 5 },
    );
  });
});
