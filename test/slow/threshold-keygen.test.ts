import { describe, expect, it } from 'vitest';
import { PackedCiphertext, PaillierPublicKey, encryptPacked } from '../../src/paillier/index.ts';
import { dealThresholdKey } from '../../src/paillier/threshold-dealer.ts';
import { combinePacked, decryptionSharesOf } from '../../src/paillier/threshold-vector.ts';

describe('threshold Paillier at full size', () => {
  it('deals a real 2048-bit 2-of-3 key from safe primes and decrypts a packed sum with any 2 holders', async () => {
    const { publicKey, shares } = await dealThresholdKey({ bits: 2048, holders: 3, threshold: 2 });
    expect(publicKey.paillier).toBeInstanceOf(PaillierPublicKey);
    expect(publicKey.paillier.bits).toBe(2048);
    const sum = PackedCiphertext.sum([encryptPacked(publicKey.paillier, [1.5, -2, 1e3]), encryptPacked(publicKey.paillier, [0.5, 2, -1e3])]);
    for (const pair of [
      [0, 1],
      [1, 2],
      [0, 2],
    ] as const) {
      const r = combinePacked(publicKey, sum, [decryptionSharesOf(shares[pair[0]]!, sum), decryptionSharesOf(shares[pair[1]]!, sum)]);
      expect([...r.values]).toEqual([2, 0, 0]);
    }
  });
});
