import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, codeOfAsync } from '../../test/helpers.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import { createPaillierPool, decryptPacked, encryptPacked, encryptVector, generatePaillierKeyPair, PackedCiphertext, PackingLayout, precomputeRandomizers, RandomizerStock, type PaillierKeyPair } from './index.ts';

describe('precomputed DJN randomizers', () => {
  let pair: PaillierKeyPair;
  let other: PaillierKeyPair;
  let pool: WorkerPool;
  beforeAll(async () => {
    [pair, other] = await Promise.all([generatePaillierKeyPair({ bits: 1024 }), generatePaillierKeyPair({ bits: 1024 })]);
    pool = createPaillierPool(2);
  });
  afterAll(async () => pool.close());

  it('are encryptions of zero, pairwise distinct, and each handed out once', async () => {
    const stock = await precomputeRandomizers(pair.publicKey, 40, { parallelism: pool });
    expect(stock.size).toBe(40);
    const a = stock.take(pair.publicKey, 25);
    const b = stock.take(pair.publicKey, 25);
    expect([a.length, b.length, stock.size]).toEqual([25, 15, 0]);
    const all = [...a, ...b];
    expect(new Set(all).size).toBe(40);
    for (const rho of all) expect(pair.privateKey.decryptUnchecked(rho)).toBe(0n);
    expect(stock.take(pair.publicKey, 5)).toEqual([]);
  });

  it('encrypt to the same sums as fresh randomizers, in-thread and on the pool, with a full or a short stock', async () => {
    const values = Array.from({ length: 1500 }, (_, i) => Math.cos(i) * 100);
    const layout = PackingLayout.forKey(pair.publicKey);
    const need = layout.ciphertextsFor(values.length);
    const full = await precomputeRandomizers(pair.publicKey, need, { parallelism: pool });
    const short = await precomputeRandomizers(pair.publicKey, 3, { parallelism: 0 });
    const x = await encryptVector(pair.publicKey, values, { parallelism: pool, randomizers: full });
    const y = await encryptVector(pair.publicKey, values, { parallelism: pool, randomizers: short });
    const z = encryptPacked(pair.publicKey, values, { randomizers: new RandomizerStock(pair.publicKey, []) });
    expect([full.size, short.size]).toEqual([0, 0]);
    expect(x.obfuscated && y.obfuscated).toBe(true);
    expect(new Set([...x.values, ...y.values]).size).toBe(2 * need); // no ciphertext repeats: no randomizer was reused
    const sum = decryptPacked(pair.privateKey, PackedCiphertext.sum([x, y, z]));
    sum.forEach((s, i) => expect(Math.abs(s - 3 * values[i]!)).toBeLessThanOrEqual(3 * 2 ** -16));
  });

  it('refuses another key’s randomizers and non-DJN obfuscation', async () => {
    const stock = await precomputeRandomizers(other.publicKey, 2, { parallelism: 0 });
    expect(codeOf(() => encryptPacked(pair.publicKey, [1, 2], { randomizers: stock }))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(stock.size).toBe(2);
    expect(await codeOfAsync(() => encryptVector(other.publicKey, [1, 2], { randomizers: stock, obfuscate: 'classic' }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => encryptPacked(other.publicKey, [1, 2], { randomizers: stock, obfuscate: false }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('packing headroom from the number of contributions', () => {
  let pair: PaillierKeyPair;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
  });

  it('16 contributions cost 4 bits per slot, extreme values sum exactly, and a 17th is refused', () => {
    const spec = { fractionalBits: 16, integerBits: 15, maxContributions: 16 };
    const layout = PackingLayout.forKey(pair.publicKey, spec);
    expect([layout.slotBits, layout.slotsPerCiphertext]).toEqual([36, 28]);
    expect(new PackingLayout(2048, spec).slotsPerCiphertext).toBe(56);
    expect(new PackingLayout(2048, { ...spec, maxContributions: 1000 }).slotsPerCiphertext).toBe(48);
    const top = 2 ** 15 - 2 ** -16;
    const values = Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? top : -top));
    const parts = Array.from({ length: 16 }, () => encryptPacked(pair.publicKey, values, { packing: spec, obfuscate: false }));
    const sum = decryptPacked(pair.privateKey, PackedCiphertext.sum(parts));
    sum.forEach((s, i) => expect(s).toBe(16 * values[i]!));
    expect(codeOf(() => PackedCiphertext.sum([...parts, parts[0]!]))).toBe('CIPHERML_E_SLOT_OVERFLOW');
  });
});
