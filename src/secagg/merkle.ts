import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';

/**
 * Merkle commitments with batched inclusion proofs, so a SecAgg+ client can check its O(k) slice
 * of an O(n) list (the roster U1, the survivor statuses of U2) against one 32-byte root, with
 * O(k·log(n/k)) proof bytes (Bell et al., CCS 2020, §3: each client handles only its
 * neighbourhood).
 *
 * Invariants:
 * - domain-separated hashes (as RFC 6962 §2.1): leaf = SHA-256(0x00 ‖ data), node =
 *   SHA-256(0x01 ‖ left ‖ right), padding leaf = SHA-256(0x02); the tree has 2^depth leaves,
 *   depth = ⌈log₂ n⌉, the leaves past n are padding, so a leaf never verifies as a node or as
 *   padding, and the leaf count is fixed by the depth the verifier computes from n;
 * - a proof verifies only at the leaf positions it was made for: positions are part of the
 *   recomputation, so an entry cannot be moved to another index;
 * - the verifier consumes every proof node exactly once: a proof with extra nodes is refused.
 */

const LEAF = Buffer.of(0);
const NODE = Buffer.of(1);
const PAD: Buffer = createHash('sha256').update(Buffer.of(2)).digest();

/** Largest committed list (2^20 leaves, as MAX_ROUND_CLIENTS). */
const MAX_LEAVES = 1 << 20;

/** SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF).update(data).digest();
}

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE).update(left).update(right).digest();
}

/** ⌈log₂ n⌉ (0 for n = 1). */
export function treeDepth(n: number): number {
  let d = 0;
  while (2 ** d < n) d++;
  return d;
}

/**
 * A Merkle tree over leaf hashes, kept whole by its builder (the server).
 *
 * @example
 * ```ts
 * const tree = new MerkleTree([leafHash(a), leafHash(b), leafHash(c)]);
 * const proof = tree.prove([0, 2]);
 * verifyMerkle(tree.root, 3, new Map([[0, leafHash(a)], [2, leafHash(c)]]), proof); // true
 * ```
 */
export class MerkleTree {
  readonly #levels: Buffer[][];
  readonly size: number;

  constructor(leaves: readonly Buffer[]) {
    if (leaves.length < 1 || leaves.length > MAX_LEAVES) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a Merkle tree holds 1..${MAX_LEAVES} leaves, got ${leaves.length}`, { param: 'leaves' });
    this.size = leaves.length;
    const width = 2 ** treeDepth(leaves.length);
    let level: Buffer[] = Array.from({ length: width }, (_, i) => leaves[i] ?? PAD);
    this.#levels = [level];
    while (level.length > 1) {
      const up: Buffer[] = [];
      for (let i = 0; i < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
      this.#levels.push((level = up));
    }
  }

  /** The 32-byte root. */
  get root(): Uint8Array {
    return new Uint8Array(this.#levels[this.#levels.length - 1]![0]!);
  }

  /**
   * The sibling hashes a verifier lacks to recompute the root from the leaves at `indices`
   * (level by level, in increasing index order).
   */
  prove(indices: readonly number[]): Uint8Array[] {
    let known = [...new Set(indices)].sort((a, b) => a - b);
    for (const i of known) if (!(Number.isInteger(i) && i >= 0 && i < this.size)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `leaf ${i} is outside 0..${this.size - 1}`, { param: 'indices' });
    const out: Uint8Array[] = [];
    for (let l = 0; l < this.#levels.length - 1; l++) {
      const have = new Set(known);
      for (const i of known) if (!have.has(i ^ 1)) out.push(new Uint8Array(this.#levels[l]![i ^ 1]!));
      known = [...new Set(known.map((i) => i >> 1))];
    }
    return out;
  }
}

/**
 * True when `leaves` (leaf index → leaf hash) sit at those indices of a list of `size` leaves
 * whose root is `root`, given the proof {@link MerkleTree.prove} made for the same indices.
 *
 * @example
 * ```ts
 * verifyMerkle(root, 1000, new Map([[41, leafHash(entry)]]), proof);
 * ```
 */
export function verifyMerkle(root: Uint8Array, size: number, leaves: ReadonlyMap<number, Uint8Array>, proof: readonly Uint8Array[]): boolean {
  if (!(Number.isInteger(size) && size >= 1 && size <= MAX_LEAVES) || root.length !== 32 || leaves.size === 0) return false;
  const depth = treeDepth(size);
  let known = new Map<number, Uint8Array>();
  for (const [i, h] of leaves) {
    if (!(Number.isInteger(i) && i >= 0 && i < size) || h.length !== 32) return false;
    known.set(i, h);
  }
  let next = 0;
  for (let l = 0; l < depth; l++) {
    const up = new Map<number, Uint8Array>();
    for (const i of [...known.keys()].sort((a, b) => a - b)) {
      if (up.has(i >> 1)) continue;
      let sibling = known.get(i ^ 1);
      if (sibling === undefined) {
        sibling = proof[next++];
        if (sibling === undefined || sibling.length !== 32) return false;
      }
      up.set(i >> 1, (i & 1) === 0 ? nodeHash(known.get(i)!, sibling) : nodeHash(sibling, known.get(i)!));
    }
    known = up;
  }
  return next === proof.length && Buffer.from(known.get(0)!).equals(Buffer.from(root));
}
