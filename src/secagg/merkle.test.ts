import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MerkleTree, leafHash, treeDepth, verifyMerkle } from './merkle.ts';

const leaf = (i: number) => leafHash(Buffer.from(`leaf ${i}`));

describe('Merkle commitments with batched proofs', () => {
  it('known answer: one leaf is its own root; two leaves hash as SHA-256(0x01 ‖ l ‖ r)', () => {
    expect(Buffer.from(new MerkleTree([leaf(0)]).root).equals(leaf(0))).toBe(true);
    expect(Buffer.from(leafHash(new Uint8Array(0))).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(treeDepth(1)).toBe(0);
    expect(treeDepth(1000)).toBe(10);
  });

  it('a proof verifies exactly the committed leaves at their positions, and nothing else (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), (n, picks) => {
        const tree = new MerkleTree(Array.from({ length: n }, (_, i) => leaf(i)));
        const idx = [...new Set(picks.map((p) => p % n))];
        const proof = tree.prove(idx);
        const leaves = new Map(idx.map((i) => [i, leaf(i)]));
        expect(verifyMerkle(tree.root, n, leaves, proof)).toBe(true);
        // A substituted leaf, a moved leaf, a wrong size, a truncated or padded proof all fail.
        const first = idx[0]!;
        expect(verifyMerkle(tree.root, n, new Map([...leaves, [first, leaf(first + n)]]), proof)).toBe(false);
        if (n > 1 && !leaves.has((first + 1) % n)) expect(verifyMerkle(tree.root, n, new Map([...[...leaves].filter(([i]) => i !== first), [(first + 1) % n, leaf(first)]]), proof)).toBe(false);
        if (treeDepth(n + 1) !== treeDepth(n) || proof.length > 0) expect(verifyMerkle(tree.root, 2 ** (treeDepth(n) + 1), leaves, proof)).toBe(false);
        if (proof.length > 0) expect(verifyMerkle(tree.root, n, leaves, proof.slice(1))).toBe(false);
        expect(verifyMerkle(tree.root, n, leaves, [...proof, new Uint8Array(32)])).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('a batched proof of k random leaves of n is about k·log₂(n/k) hashes, not k·log₂ n', () => {
    const n = 10_000;
    const tree = new MerkleTree(Array.from({ length: n }, (_, i) => leaf(i)));
    const idx = Array.from({ length: 125 }, (_, i) => (i * 7919) % n);
    const proof = tree.prove(idx);
    expect(proof.length).toBeLessThan(125 * 8);
    expect(verifyMerkle(tree.root, n, new Map(idx.map((i) => [i, leaf(i)])), proof)).toBe(true);
  });
});
