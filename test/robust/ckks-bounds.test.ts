import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, deserializeCiphertexts, deserializePublicContext, deserializeSecretKey, encryptToBytes, serializePublicContext, splitCiphertextFile } from '../../src/ckks/index.ts';
import { checkEnvelopeBounds, refuseDeclaredBomb } from '../../src/ckks/serialize.ts';
import { ckksBomb } from '../../bench/bombs.ts';
import { codeOf, codeOfAsync } from '../helpers.ts';

// Adversary: whoever supplies a CKKS envelope (key file, upload, predict input). The body's
// declared length is checked against a cap from the key's parameters before decompression.
describe('CKKS envelope bodies are decompressed under a cap', () => {
  let ctx: CkksContext;
  beforeAll(async () => {
    ctx = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 20, 40], scaleBits: 20 });
  });
  afterAll(() => ctx.delete());

  it('refuses 16 KB bombs declaring 512 MiB before allocating, for every reader', async () => {
    const pub = await ckksBomb('publicKey', 512 << 20);
    const sk = await ckksBomb('privateKey', 512 << 20);
    const ct = await ckksBomb('ciphertext', 512 << 20, ctx.fingerprint);
    const rss0 = process.memoryUsage().rss;
    expect(await codeOfAsync(() => deserializePublicContext(pub))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(codeOf(() => deserializeCiphertexts(ctx, ct))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(codeOf(() => splitCiphertextFile(ct))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(codeOf(() => checkEnvelopeBounds(ct, 'ciphertext', 'predict'))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(await codeOfAsync(() => deserializeSecretKey(sk))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(process.memoryUsage().rss - rss0).toBeLessThan(16 << 20);
  });

  it('still reads valid envelopes, including ciphertexts with large metadata', async () => {
    const meta = { note: 'x'.repeat(200_000) };
    const bytes = encryptToBytes(ctx, [[1, 2, 3]], meta);
    expect(() => checkEnvelopeBounds(bytes, 'ciphertext', 'c')).not.toThrow();
    const { vectors, meta: m } = deserializeCiphertexts(ctx, bytes);
    expect(m).toEqual(meta);
    expect(Array.from(ctx.decryptVector(vectors[0]!).slice(0, 3), Math.round)).toEqual([1, 2, 3]);
    for (const v of vectors) v.delete();
    (await deserializePublicContext(serializePublicContext(ctx))).delete();
  });

  it('the header-only check (HTTP thread) refuses the same bombs and defers everything else to the full parse', async () => {
    const pub = await ckksBomb('publicKey', 512 << 20);
    const ct = await ckksBomb('ciphertext', 512 << 20, ctx.fingerprint);
    expect(codeOf(() => refuseDeclaredBomb(pub, 'publicKey', 'context/public'))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(codeOf(() => refuseDeclaredBomb(ct, 'ciphertext', 'predict'))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    // Valid envelopes, another kind, truncated or damaged bytes: not its business (no throw); the
    // worker's checkEnvelopeBounds and parser type those.
    const valid = encryptToBytes(ctx, [[1, 2, 3]]);
    for (const bytes of [valid, serializePublicContext(ctx), valid.subarray(0, 40), new Uint8Array(3), pub.subarray(0, pub.length - 1)]) {
      expect(() => refuseDeclaredBomb(bytes, 'ciphertext', 'predict')).not.toThrow();
    }
    expect(() => refuseDeclaredBomb(ct, 'publicKey', 'context/public')).not.toThrow();
    expect(codeOf(() => checkEnvelopeBounds(ct, 'publicKey', 'context/public'))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
  });
});
