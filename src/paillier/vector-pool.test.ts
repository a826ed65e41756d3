import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { powmBigint } from '../core/bigmath/index.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import {
  createPaillierPool,
  decryptPacked,
  decryptVector,
  encryptPacked,
  encryptVector,
  generatePaillierKeyPair,
  keyHolderPool,
  PackedCiphertext,
  PackingLayout,
  PaillierPrivateKey,
  PaillierPublicKey,
  sharedPaillierPool,
  type PaillierKeyPair,
} from './index.ts';

// Two fixed 512-bit primes (openssl prime -generate -bits 512): a 1024-bit known-answer key.
const P = 0xc3fd0d8eddb8728923ddc94f4bbe9504938afc0ff45df528db2557b31f986bb305e6afcf74a5dd8c8df85db11b1f5c3a5663cf710ea78c64d0c14cfd4780435dn;
const Q = 0xdaa2d0e4348e3eba22aca81a4e6f760922994f74f0c2665b903e127378b18e582e115b69b908f74624d0f71077fdd1c7424e65f1665b01694af80d0a682a42f9n;

describe('aggregate decryption on the key holder’s worker threads', () => {
  let pair: PaillierKeyPair;
  let pool: WorkerPool;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
    pool = createPaillierPool(2);
  });
  afterAll(async () => pool.close());

  it('known answer: textbook ciphertexts (1 + M·n)·rⁿ mod n² of fixed-point values decrypt on the pool to those values', async () => {
    const n = P * Q;
    const n2 = n * n;
    const pk = new PaillierPublicKey(n, powmBigint(2n, n, n2));
    const sk = new PaillierPrivateKey(pk, P, Q);
    // Exactly representable with the default 16 fractional bits.
    const values = Array.from({ length: 700 }, (_, i) => ((i % 7) - 3) * 1024.5 + (i % 2 === 0 ? 0.25 : -0.0625));
    const layout = PackingLayout.forKey(pk);
    const plaintexts = layout.pack(values);
    // Encrypted here with the plain-BigInt reference exponentiation, independent of the key's backend.
    const rho = powmBigint(3n, n, n2);
    let r = 1n;
    const ciphertexts = plaintexts.map((m) => (((1n + m * n) % n2) * (r = (r * rho) % n2)) % n2); // rⱼ = 3^(j+1)
    expect(ciphertexts.length).toBeGreaterThanOrEqual(16);
    const packed = new PackedCiphertext(pk, layout, values.length, 1, ciphertexts, true);
    const pooled = await decryptVector(sk, packed, { parallelism: pool });
    expect(Array.from(pooled)).toEqual(values);
    expect(Array.from(decryptPacked(sk, packed))).toEqual(values);
    expect(ciphertexts.slice(0, 3).map((c) => sk.decryptRaw(c))).toEqual(plaintexts.slice(0, 3));
  });

  it('property: pooled decryption of a sum equals the single-threaded decryption, for any values, contributions and pool size', async () => {
    const pools = [pool, createPaillierPool(1), createPaillierPool(3)];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(fc.double({ min: -1000, max: 1000, noNaN: true }), { minLength: 250, maxLength: 500 }), { minLength: 1, maxLength: 3 }),
          fc.nat({ max: 2 }),
          async (updates, which) => {
            const length = Math.min(...updates.map((u) => u.length));
            const parts = updates.map((u) => encryptPacked(pair.publicKey, u.slice(0, length)));
            const sum = PackedCiphertext.sum(parts);
            const pooled = await decryptVector(pair.privateKey, sum, { parallelism: pools[which]! });
            expect(Array.from(pooled)).toEqual(Array.from(decryptPacked(pair.privateKey, sum)));
            const mean = await decryptVector(pair.privateKey, sum, { parallelism: pools[which]!, mean: true });
            expect(Array.from(mean)).toEqual(Array.from(decryptPacked(pair.privateKey, sum, { mean: true })));
          },
        ),
        { numRuns: 5 },
      );
    } finally {
      await Promise.all(pools.slice(1).map((p) => p.close()));
    }
  });

  it('a pool thread that dies mid-decryption fails the call with CIPHERML_E_WORKER_FAILED, and the pool recovers', async () => {
    // A 16 MB heap holds the worker and a normal task. The vector splits into 4 chunks on one
    // thread; the first carries 500 values of 62.5 kB (31 MB), so that thread runs out of heap.
    const small = createPaillierPool(1, { resourceLimits: { maxOldGenerationSizeMb: 16 } });
    try {
      const ok = encryptPacked(pair.publicKey, Array.from({ length: 600 }, (_, i) => i));
      expect(Array.from(await decryptVector(pair.privateKey, ok, { parallelism: small }))).toEqual(Array.from({ length: 600 }, (_, i) => i));
      const count = 2000;
      const heavy = (1n << 500_000n) + 1n;
      const values = Array.from({ length: count }, (_, i) => (i < count / 4 ? heavy + BigInt(i) : ok.values[i % ok.values.length]!));
      const huge = new PackedCiphertext(pair.publicKey, ok.layout, count * ok.layout.slotsPerCiphertext, 1, values, true);
      await expect(decryptVector(pair.privateKey, huge, { parallelism: small })).rejects.toMatchObject({ code: 'CIPHERML_E_WORKER_FAILED', param: 'pool' });
      expect(Array.from(await decryptVector(pair.privateKey, ok, { parallelism: small }))).toEqual(Array.from({ length: 600 }, (_, i) => i));
    } finally {
      await small.close();
    }
  });

  it('by default runs on the key’s own threads: never the shared pool the parties encrypt on, one pool per key', async () => {
    const other = await generatePaillierKeyPair({ bits: 1024 });
    expect(keyHolderPool(pair.privateKey)).toBe(keyHolderPool(pair.privateKey));
    expect(keyHolderPool(pair.privateKey)).not.toBe(keyHolderPool(other.privateKey));
    expect(keyHolderPool(pair.privateKey)).not.toBe(sharedPaillierPool());
    const values = Array.from({ length: 900 }, (_, i) => i - 450);
    const a = encryptPacked(pair.publicKey, values);
    const b = encryptPacked(other.publicKey, values);
    // With the shared pool closed, public-key work fails, but the key holders' decryptions do not touch it.
    await sharedPaillierPool().close();
    await expect(encryptVector(pair.publicKey, values, { parallelism: 2 })).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'pool' });
    expect(Array.from(await decryptVector(pair.privateKey, a))).toEqual(values);
    expect(Array.from(await decryptVector(other.privateKey, b, { parallelism: 2 }))).toEqual(values);
  });
});
