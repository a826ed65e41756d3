import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOfAsync } from '../helpers.ts';
import { openSecret, sealSecret } from '../../src/gateway/secret-box.ts';

// Slow only because each open runs scrypt at N = 2^17 (≈ 1.7 s on the shared test machine).
describe('secret box at full KDF cost', () => {
  it('refuses a wrong passphrase and any flipped byte of salt, nonce, tag or ciphertext', { timeout: 120_000 }, async () => {
    const bind = { user: 'alice', model: 'lr/1', fingerprint: '0123456789abcdef0123456789abcdef' };
    const box = await sealSecret(randomBytes(64), 'correct horse', bind);
    const start = box.length - 64 - 16 - 12 - 16;
    const flips = [start, start + 16, start + 28, box.length - 1].map((i) => {
      const b = Uint8Array.from(box);
      b[i]! ^= 1;
      return b;
    });
    const codes = await Promise.all([codeOfAsync(() => openSecret(box, 'wrong horse!', bind)), ...flips.map((b) => codeOfAsync(() => openSecret(b, 'correct horse', bind)))]);
    expect(codes).toEqual(Array(5).fill('CIPHERML_E_FORMAT_CORRUPT'));
  });
});
