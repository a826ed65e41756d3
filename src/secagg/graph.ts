import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { MerkleTree, leafHash } from './merkle.ts';
import { expandMask } from './prg.ts';

/**
 * The SecAgg+ neighbourhood graph (Bell et al., CCS 2020, §3.1) and the byte strings clients sign
 * in the actively secure variant (Bonawitz et al., CCS 2017, §4 "malicious setting").
 *
 * Invariants:
 * - honest-but-curious variant: the graph seed is SHA-256 over the round id, |U1| and the Merkle
 *   root of every roster entry (x, id, advertised keys);
 * - actively secure neighbourhood views (commit–reveal): each advertisement signs a commitment
 *   c = H(round, id, r) to a fresh 32-byte r; the roster root (over x, id, keys and c) fixes U1
 *   and selects a committee of m members (seedCommittee); only then do the members reveal r; the
 *   seed is H(round, |U1|, root, Merkle root of the committee's reveals), and every client checks
 *   every committee reveal against the signed c, so the server can neither choose U1 after seeing
 *   the seed nor alter or omit a reveal unseen (docs/secagg.md "Commit–reveal of the graph seed");
 * - signed payloads are length-prefixed (no two field lists encode alike) and carry the round
 *   id, so a signature never verifies in another round or as another message.
 */

/** What the graph needs of a roster entry. */
export interface GraphEntry {
  readonly id: string;
  /** Shamir x-coordinate, 1..n: the entry's position in the committed roster. */
  readonly x: number;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  /** Actively secure variant: c = H(round, id, r) for the client's fresh seed share r (empty otherwise). */
  readonly commitment?: Uint8Array;
}

/** Signing context of advertised keys (identity.ts domain-separates contexts). */
export const ADVERTISE_CONTEXT = 'secagg/advertise-keys/v1';
/** Signing context of the consistency check over U3. */
export const CONSISTENCY_CONTEXT = 'secagg/consistency-check/v1';

/** Length-prefixed concatenation (4-byte big-endian lengths). */
export function encodeFields(fields: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const b = typeof f === 'string' ? Buffer.from(f, 'utf8') : Buffer.from(f);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * The bytes a client signs to advertise its keys.
 *
 * @example
 * ```ts
 * signMessage(me, ADVERTISE_CONTEXT, advertisePayload('r1', 'alice', cPk, sPk));
 * ```
 */
export function advertisePayload(roundId: string, id: string, cPk: Uint8Array, sPk: Uint8Array, commitment: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeFields([roundId, id, cPk, sPk, commitment]);
}

/**
 * The commitment c = SHA-256(round, id, r) to a client's 32-byte graph-seed contribution r
 * (commit–reveal of the SecAgg+ graph seed; hiding because r is fresh and uniform, binding by
 * collision resistance).
 *
 * @example
 * ```ts
 * const c = seedCommitment('r1', 'alice', r); // advertised and signed with the keys
 * ```
 */
export function seedCommitment(roundId: string, id: string, reveal: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('cipherml/secagg/seed-commitment/v1\0').update(encodeFields([roundId, id, reveal])).digest());
}

/**
 * The bytes a client signs in the consistency check: the round, U3 and U2 \ U3, sorted.
 *
 * @example
 * ```ts
 * signMessage(me, CONSISTENCY_CONTEXT, consistencyPayload('r1', ['a', 'b', 'c'], ['d']));
 * ```
 */
export function consistencyPayload(roundId: string, survivors: readonly string[], dropped: readonly string[]): Uint8Array {
  return encodeFields([roundId, String(survivors.length), ...[...survivors].sort(), String(dropped.length), ...[...dropped].sort()]);
}

/** The Merkle leaf of a roster entry at its x-coordinate (position x − 1 of the committed roster). */
export function rosterLeaf(e: GraphEntry): Buffer {
  return leafHash(encodeFields(['roster-entry', String(e.x), e.id, e.cPk, e.sPk, e.commitment ?? new Uint8Array(0)]));
}

/**
 * The Merkle tree of a whole roster, entry x at leaf x − 1 (x = 1..n, each once).
 *
 * @example
 * ```ts
 * const root = rosterTree(roster.entries).root;
 * ```
 */
export function rosterTree(entries: readonly GraphEntry[]): MerkleTree {
  const byX: Buffer[] = [];
  for (const e of entries) byX[e.x - 1] = rosterLeaf(e);
  if (byX.length !== entries.length || byX.some((h) => h === undefined)) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'roster x-coordinates must be 1..n, each once', { param: 'roster' });
  return new MerkleTree(byX);
}

/**
 * The SecAgg+ graph seed from the roster commitment: hex SHA-256 over the round id, |U1| and the
 * Merkle root of the roster (every entry's x, id and advertised keys).
 *
 * @example
 * ```ts
 * const seed = graphSeedOf('r1', 1000, rosterTree(entries).root);
 * ```
 */
export function graphSeedOf(roundId: string, clients: number, root: Uint8Array): string {
  return createHash('sha256').update('cipherml/secagg/graph-seed/v2\0').update(encodeFields([roundId, String(clients), root])).digest('hex');
}

/**
 * The SecAgg+ graph seed of a whole roster: {@link graphSeedOf} over its Merkle root. A client
 * holding only its neighbourhood checks the same seed from the root and a batched inclusion
 * proof of its neighbours' entries (merkle.ts).
 *
 * @example
 * ```ts
 * const seed = deriveGraphSeed('r1', roster.entries);
 * ```
 */
export function deriveGraphSeed(roundId: string, entries: readonly GraphEntry[]): string {
  return graphSeedOf(roundId, entries.length, rosterTree(entries).root);
}

/**
 * The committee of the commit–reveal graph seed: the x-coordinates of the first `size` entries of
 * a permutation of 1..n seeded by the roster root, so the server fixes it when it fixes U1 and
 * cannot place a member after seeing a reveal.
 *
 * @example
 * ```ts
 * const committee = seedCommittee('r1', 1000, root, 26); // 26 distinct x-coordinates
 * ```
 */
export function seedCommittee(roundId: string, clients: number, root: Uint8Array, size: number): number[] {
  const seed = createHash('sha256').update('cipherml/secagg/seed-committee/v1\0').update(encodeFields([roundId, String(clients), root])).digest('hex');
  return Array.from(ringOf(clients, seed).ring.subarray(0, Math.min(size, clients)));
}

/** The Merkle leaf of a committee member's reveal (x, id, r). */
export function revealLeaf(x: number, id: string, reveal: Uint8Array): Buffer {
  return leafHash(encodeFields(['seed-reveal', String(x), id, reveal]));
}

/**
 * The SecAgg+ graph seed by commit–reveal: hex SHA-256 over the round id, |U1|, the roster root
 * (which fixes U1, every commitment and the committee) and the Merkle root of the committee's
 * reveals in committee order. Every client receives all the committee's reveals, checks each
 * opens its committed c, and recomputes this seed.
 *
 * @example
 * ```ts
 * const seed = revealedGraphSeed('r1', 1000, rosterRoot, committee.map((e, i) => ({ ...e, reveal: reveals[i] })));
 * ```
 */
export function revealedGraphSeed(roundId: string, clients: number, root: Uint8Array, revealed: readonly { readonly x: number; readonly id: string; readonly reveal: Uint8Array }[]): string {
  const revealRoot = new MerkleTree(revealed.map((r) => revealLeaf(r.x, r.id, r.reveal))).root;
  return createHash('sha256').update('cipherml/secagg/graph-seed/v3\0').update(encodeFields([roundId, String(clients), root, revealRoot])).digest('hex');
}

/** Status of a U1 member in the survivor commitment. */
export type SurvivorStatus = 'absent' | 'dropped' | 'survived';

/** The Merkle leaf of a U1 member's status (not in U2, in U2 \ U3, in U3) at leaf x − 1. */
export function statusLeaf(x: number, id: string, status: SurvivorStatus): Buffer {
  return leafHash(encodeFields(['survivor-status', String(x), id, status]));
}

/**
 * The survivor commitment of a SecAgg+ round (neighbourhood consistency check): hex SHA-256
 * over the round id, |U1|, |U2|, |U3| and the Merkle root of every U1 member's status.
 *
 * @example
 * ```ts
 * survivorCommitment('r1', { clients: 1000, holders: 990, survivors: 900, root });
 * ```
 */
export function survivorCommitment(roundId: string, c: { readonly clients: number; readonly holders: number; readonly survivors: number; readonly root: Uint8Array }): string {
  return createHash('sha256').update('cipherml/secagg/survivors/v1\0').update(encodeFields([roundId, String(c.clients), String(c.holders), String(c.survivors), c.root])).digest('hex');
}

/**
 * The bytes a SecAgg+ client signs in the neighbourhood consistency check: the round and the
 * survivor commitment it checked its neighbours' statuses against.
 *
 * @example
 * ```ts
 * signMessage(me, CONSISTENCY_CONTEXT, commitmentPayload('r1', commitment));
 * ```
 */
export function commitmentPayload(roundId: string, commitment: string): Uint8Array {
  return encodeFields([roundId, 'survivor-commitment', commitment]);
}

/** Deterministic permutation of 1..n from a hex seed (Fisher–Yates driven by an AES-CTR stream). */
function permute(n: number, seedHex: string): Uint32Array {
  const seed = Buffer.from(seedHex.padEnd(64, '0').slice(0, 64), 'hex');
  const words = expandMask(seed, Math.max(1, n), 32);
  const out = Uint32Array.from({ length: n }, (_, i) => i + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = words[i]! % (i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

interface Ring {
  readonly ring: Uint32Array;
  /** position[x] = index of x on the ring. */
  readonly position: Uint32Array;
}

/** A few recent rings by (n, seed): every client and the server of a round ask for the same one. */
const RINGS = new Map<string, Ring>();

function ringOf(n: number, seed: string): Ring {
  const key = `${n}/${seed}`;
  let hit = RINGS.get(key);
  if (hit === undefined) {
    const ring = permute(n, seed);
    const position = new Uint32Array(n + 1);
    ring.forEach((x, i) => (position[x] = i));
    hit = { ring, position };
    if (RINGS.size >= 8) RINGS.delete(RINGS.keys().next().value!);
    RINGS.set(key, hit);
  }
  return hit;
}

/**
 * Neighbours of the participant with Shamir x-coordinate `x` among x = 1..n: the coordinates
 * placed on a ring by the seeded permutation, each linked to the degree/2 nearest on either side
 * (a Harary graph, Bell et al. §3.1); every other coordinate when `degree` ≥ n − 1. The relation
 * is symmetric, and a client computes its own neighbours from (n, its x, degree, seed) alone.
 *
 * @example
 * ```ts
 * graphNeighbours(3, 1000, 116, seed); // 116 x-coordinates
 * ```
 */
export function graphNeighbours(x: number, n: number, degree: number, seed: string): number[] {
  if (degree >= n - 1) return Array.from({ length: n }, (_, i) => i + 1).filter((v) => v !== x);
  const { ring, position } = ringOf(n, seed);
  const i = position[x] ?? 0;
  const half = degree / 2;
  const out = new Set<number>();
  for (let k = 1; k <= half; k++) {
    out.add(ring[(i + k) % n]!);
    out.add(ring[(i - k + n) % n]!);
  }
  return [...out].sort((a, b) => a - b);
}
