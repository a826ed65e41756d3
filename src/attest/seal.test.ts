import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCipherMLError } from '../core/errors.ts';
import { createSealingSecret, loadSealingSecret, seal, unseal } from './seal.ts';

const m1 = '11'.repeat(48);
const m2 = '11'.repeat(47) + '12';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

describe('sealing to a measurement', () => {
  const secret = new Uint8Array(randomBytes(32));
  it('round-trips under the same measurement and secret (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (p) => {
      expect(Buffer.from(unseal(seal(p, m1, secret), m1, secret))).toEqual(Buffer.from(p));
    }), { numRuns: 50 });
  });
  it('a build with another measurement cannot unseal; nor another secret; nor altered bytes', () => {
    const blob = seal(Buffer.from('paillier secret key checkpoint'), m1, secret);
    expect(Buffer.from(blob).includes(Buffer.from('paillier'))).toBe(false);
    expect(code(() => unseal(blob, m2, secret))).toBe('CIPHERML_E_SEALED_DATA');
    expect(code(() => unseal(blob, m1, new Uint8Array(randomBytes(32))))).toBe('CIPHERML_E_SEALED_DATA');
    for (const i of [0, 8, 40, 60, blob.length - 1]) {
      const b = Buffer.from(blob);
      b[i]! ^= 1;
      expect(code(() => unseal(b, m1, secret))).toBe('CIPHERML_E_SEALED_DATA');
    }
    expect(code(() => unseal(blob.subarray(0, 20), m1, secret))).toBe('CIPHERML_E_SEALED_DATA');
  });
  it('the simulation sealing secret is a 0600 file that is never overwritten', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-seal-'));
    try {
      const p = join(dir, 'sealing-secret');
      const s = await createSealingSecret(p);
      expect((await stat(p)).mode & 0o777).toBe(0o600);
      expect(Buffer.from(await loadSealingSecret(p))).toEqual(Buffer.from(s));
      await expect(createSealingSecret(p)).rejects.toMatchObject({ code: 'CIPHERML_E_FILE_EXISTS' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
