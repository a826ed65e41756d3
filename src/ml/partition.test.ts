import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CipherMLError } from '../core/errors.ts';
import { parsePartition, partitionDataset, type PartitionScheme } from './partition.ts';

const schemes: fc.Arbitrary<PartitionScheme> = fc.oneof(
  fc.constant({ kind: 'iid' } as const),
  fc.integer({ min: 1, max: 3 }).map((k) => ({ kind: 'shards', shardsPerClient: k }) as const),
  fc.double({ min: 0.05, max: 10, noNaN: true }).map((alpha) => ({ kind: 'dirichlet', alpha }) as const),
);

describe('partitionDataset', () => {
  it('assigns every sample to exactly one client, histograms match, and the seed fixes the result', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 200, maxLength: 600 }), fc.integer({ min: 1, max: 8 }), schemes, fc.integer(), (labels, clients, scheme, seed) => {
        let p;
        try {
          p = partitionDataset(labels, scheme, { clients, seed, classes: 10, minPartitionSize: 1 });
        } catch (e) {
          // Only the documented refusal: a Dirichlet draw that leaves a client empty.
          expect((e as CipherMLError).code).toBe('CIPHERML_E_PARTITION_INVALID');
          expect(scheme.kind).toBe('dirichlet');
          return;
        }
        expect(p.clients).toHaveLength(clients);
        const seen = new Uint8Array(labels.length);
        for (const c of p.clients) {
          expect(c.indices.length).toBeGreaterThan(0);
          const h = new Array<number>(10).fill(0);
          for (const i of c.indices) {
            seen[i]!++;
            h[labels[i]!]!++;
          }
          expect(c.histogram).toEqual(h);
        }
        expect(seen.every((s) => s === 1)).toBe(true);
        const again = partitionDataset(labels, scheme, { clients, seed, classes: 10, minPartitionSize: 1 });
        expect(again.clients.map((c) => [...c.indices])).toEqual(p.clients.map((c) => [...c.indices]));
      }),
      { numRuns: 60 },
    );
  });

  it('label shards give each client at most K·(labels per shard) classes (McMahan et al.)', () => {
    const labels = Array.from({ length: 1000 }, (_, i) => Math.floor(i / 100));
    const p = partitionDataset(labels, { kind: 'shards', shardsPerClient: 2 }, { clients: 10, seed: 3 });
    for (const c of p.clients) expect(c.histogram.filter((h) => h > 0).length).toBeLessThanOrEqual(2);
  });

  it('smaller α gives more skewed clients', () => {
    const labels = Array.from({ length: 5000 }, (_, i) => i % 10);
    const skew = (alpha: number): number => {
      const p = partitionDataset(labels, { kind: 'dirichlet', alpha }, { clients: 10, seed: 7 });
      return p.clients.reduce((s, c) => s + Math.max(...c.histogram) / c.indices.length, 0) / 10;
    };
    expect(skew(0.1)).toBeGreaterThan(skew(100) + 0.2);
  });

  it('refuses α ≤ 0, bad syntax, too many clients and a client left without data, naming the flag', () => {
    for (const bad of ['dirichlet:0', 'dirichlet:-1', 'dirichlet:x', 'shards:0', 'shards:1.5', 'random']) {
      expect(() => parsePartition(bad)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_PARTITION_INVALID', param: '--partition' }));
    }
    expect(() => partitionDataset([0, 1, 2], { kind: 'dirichlet', alpha: -0.5 }, { clients: 2, seed: 1 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_PARTITION_INVALID' }));
    expect(() => partitionDataset([0, 1, 2], { kind: 'iid' }, { clients: 4, seed: 1 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_PARTITION_INVALID', param: '--clients' }));
    expect(() => partitionDataset([0, 1, 2, 3], { kind: 'shards', shardsPerClient: 3 }, { clients: 2, seed: 1 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_PARTITION_INVALID' }));
    // α tiny: one client takes each class, so with 2 classes and 5 clients some client is empty.
    const labels = Array.from({ length: 100 }, (_, i) => i % 2);
    expect(() => partitionDataset(labels, { kind: 'dirichlet', alpha: 1e-4 }, { clients: 5, seed: 1 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_PARTITION_INVALID', message: expect.stringContaining('left a client with') }));
  });
});
