import { createCipheriv, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOfAsync } from '../../test/helpers.ts';
import { openSecret, sealSecret } from './secret-box.ts';

const bind = { user: 'alice', model: 'lr/1', fingerprint: '0123456789abcdef0123456789abcdef' };
const expected = { user: 'alice', model: 'lr/1' };

describe('secret box (format 2: scrypt N = 2^17, user, model and key fingerprint as AES-GCM associated data)', () => {
  it('round-trips and hides the plaintext; a rewritten binding fails the tag', { timeout: 60_000 }, async () => {
    const secret = randomBytes(64);
    const box = await sealSecret(secret, 'correct horse', bind);
    expect(Buffer.from(box).includes(secret.subarray(0, 16))).toBe(false);
    expect(Buffer.from(box).subarray(0, 9).toString('latin1')).toBe('CMLSBOX2\u0011'); // log2 N = 17 recorded
    // The service (adversary) rewrites the binding in the clear to another key's fingerprint of the same length.
    const rebound = Uint8Array.from(Buffer.from(Buffer.from(box).toString('latin1').replace(bind.fingerprint, 'f'.repeat(32)), 'latin1'));
    // Each open runs the full KDF (≈ 1.7 s here); a wrong passphrase and flipped ciphertext bits are in test/slow/secret-box.test.ts.
    const [opened, moved] = await Promise.all([openSecret(box, 'correct horse', expected), codeOfAsync(() => openSecret(rebound, 'correct horse', expected))]);
    expect(Buffer.from(opened.plain).equals(secret)).toBe(true);
    expect(opened.fingerprint).toBe(bind.fingerprint);
    expect(moved).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });

  it('refuses, before the KDF runs, a box of another user or model, a format-1 box, a cost outside 2^17…2^18 (at most 256 MiB for the opener), and a short passphrase', async () => {
    const box = await sealSecret(new Uint8Array(8), 'correct horse', bind);
    expect(await codeOfAsync(() => openSecret(box, 'correct horse', { user: 'bob', model: 'lr/1' }))).toBe('CIPHERML_E_SECRET_BOX_BINDING');
    expect(await codeOfAsync(() => openSecret(box, 'correct horse', { user: 'alice', model: 'lr/2' }))).toBe('CIPHERML_E_SECRET_BOX_BINDING');
    // A box of format 1 as the previous gateway wrote it (scrypt N = 2^15, AAD = magic only).
    const salt = randomBytes(16);
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', scryptSync('correct horse', salt, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 }), nonce);
    c.setAAD(Buffer.from('CMLSBOX1'));
    const body = Buffer.concat([c.update(Buffer.alloc(8)), c.final()]);
    const v1 = new Uint8Array(Buffer.concat([Buffer.from('CMLSBOX1'), salt, nonce, c.getAuthTag(), body]));
    expect(await codeOfAsync(() => openSecret(v1, 'correct horse', expected))).toBe('CIPHERML_E_SECRET_BOX_OUTDATED');
    for (const log2N of [14, 19, 20, 30]) {
      const cheap = Uint8Array.from(box);
      cheap[8] = log2N;
      expect(await codeOfAsync(() => openSecret(cheap, 'correct horse', expected))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
    }
    expect(await codeOfAsync(() => sealSecret(new Uint8Array(8), 'short', bind))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});
