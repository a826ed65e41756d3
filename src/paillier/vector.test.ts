import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOfAsync } from '../../test/helpers.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import { createPaillierPool, decryptPacked, decryptVector, encryptPacked, encryptVector, generatePaillierKeyPair, PackedCiphertext, type PaillierKeyPair } from './index.ts';

describe('vector encryption on worker threads', () => {
  let pair: PaillierKeyPair;
  let pool: WorkerPool;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
    pool = createPaillierPool(2);
  });
  afterAll(async () => pool.close());

  it('gives the same sums as the in-thread path for a multi-ciphertext vector', async () => {
    const { publicKey: pk, privateKey: sk } = pair;
    const values = Array.from({ length: 3000 }, (_, i) => Math.sin(i) * 1000);
    const a = await encryptVector(pk, values, { parallelism: pool });
    const b = encryptPacked(pk, values.map((x) => -x / 2));
    expect(a.values.length).toBe(a.layout.ciphertextsFor(3000));
    const sum = PackedCiphertext.sum([a, b]);
    const pooled = await decryptVector(sk, sum, { parallelism: pool });
    const inThread = decryptPacked(sk, sum);
    expect(Array.from(pooled)).toEqual(Array.from(inThread));
    pooled.forEach((x, i) => expect(Math.abs(x - values[i]! / 2)).toBeLessThanOrEqual(2 ** -15));
  });

  it('propagates a typed error from a worker (invalid ciphertext at its index)', async () => {
    const { publicKey: pk, privateKey: sk } = pair;
    const good = encryptPacked(pk, Array.from({ length: 500 }, () => 1));
    const values = [...good.values];
    values[9] = pk.n * 5n;
    const bad = new PackedCiphertext(pk, good.layout, good.length, 1, values, true);
    await expect(decryptVector(sk, bad, { parallelism: pool })).rejects.toMatchObject({ code: 'CIPHERML_E_CIPHERTEXT_INVALID', param: 'packed.values[9]' });
    expect(await codeOfAsync(() => encryptVector(pk, [1, Number.NaN], { parallelism: pool }))).toBe('CIPHERML_E_NOT_FINITE');
  });

  it('runs in-thread when parallelism is 0', async () => {
    const v = await encryptVector(pair.publicKey, [1, 2, 3], { parallelism: 0 });
    expect(Array.from(await decryptVector(pair.privateKey, v, { parallelism: 0 }))).toEqual([1, 2, 3]);
  });
});
