import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KDF_CONCURRENCY, KDF_QUEUE, SCRYPT_COST, hashPassword, verifyPassword } from './password.ts';

const FAST = { N: 2 ** 14, r: 8, p: 1 };

describe('console password hashing (scrypt, RFC 7914)', () => {
  it('new hashes use the OWASP cost N = 2^17, r = 8, p = 1 and verify', async () => {
    expect(SCRYPT_COST).toEqual({ N: 131072, r: 8, p: 1 });
    const h = await hashPassword('correct horse battery');
    expect(h).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('correct horse batterx', h)).toBe(false);
  });

  it('known answer: RFC 7914 §12 vector 2 (password, NaCl, N=1024 is below our floor, so checked through node:crypto directly)', async () => {
    const { scryptSync } = await import('node:crypto');
    expect(scryptSync('password', 'NaCl', 64, { N: 1024, r: 8, p: 16 }).toString('hex')).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
  });

  it('salts: the same password hashes differently; any other password fails (property)', async () => {
    const a = await hashPassword('same password!!', FAST);
    const b = await hashPassword('same password!!', FAST);
    expect(a).not.toBe(b);
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }), async (other) => {
        fc.pre(other !== 'same password!!');
        expect(await verifyPassword(other, a)).toBe(false);
      }),
      { numRuns: 8 },
    );
  });

  it('refuses tampered stored costs instead of allocating for them', async () => {
    const h = await hashPassword('x'.repeat(12), FAST);
    await expect(verifyPassword('x'.repeat(12), h.replace('$16384$', '$1073741824$'))).rejects.toMatchObject({ code: 'CIPHERML_E_STORAGE' });
    await expect(verifyPassword('x'.repeat(12), 'plain')).rejects.toMatchObject({ code: 'CIPHERML_E_STORAGE' });
  });

  it('bounds concurrent hashing: beyond the queue, CIPHERML_E_SERVICE_BUSY', async () => {
    const all = Array.from({ length: KDF_CONCURRENCY + KDF_QUEUE + 3 }, () => hashPassword('y'.repeat(12), { N: 2 ** 10, r: 1, p: 1 }).then(() => 'ok', (e: { code?: string }) => e.code));
    const out = await Promise.all(all);
    expect(out.filter((x) => x === 'CIPHERML_E_SERVICE_BUSY').length).toBe(3);
    expect(out.filter((x) => x === 'ok').length).toBe(KDF_CONCURRENCY + KDF_QUEUE);
  });
});
