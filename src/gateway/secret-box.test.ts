import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openSecret, sealSecret } from './secret-box.ts';

describe('secret box', () => {
  it('round-trips, hides the plaintext, and refuses a wrong passphrase or a flipped bit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (plain) => {
        const box = sealSecret(plain, 'correct horse');
        expect([...openSecret(box, 'correct horse')]).toEqual([...plain]);
      }),
      { numRuns: 5 },
    );
    const secret = new Uint8Array(64).fill(0xab);
    const box = sealSecret(secret, 'correct horse');
    expect(Buffer.from(box).includes(Buffer.from(secret.subarray(0, 16)))).toBe(false);
    expect(() => openSecret(box, 'wrong horse!')).toThrow(/CIPHERML_E_FORMAT_CORRUPT/);
    const flipped = Uint8Array.from(box);
    flipped[flipped.length - 1]! ^= 1;
    expect(() => openSecret(flipped, 'correct horse')).toThrow(/CIPHERML_E_FORMAT_CORRUPT/);
    expect(() => sealSecret(secret, 'short')).toThrow(/passphrase/);
  });
});
