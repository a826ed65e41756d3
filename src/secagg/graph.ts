import { createHash } from 'node:crypto';
import { expandMask } from './prg.ts';

/**
 * The SecAgg+ neighbourhood graph (Bell et al., CCS 2020, §3.1) and the byte strings clients sign
 * in the actively secure variant (Bonawitz et al., CCS 2017, §4 "malicious setting").
 *
 * Invariants:
 * - the graph seed is SHA-256 over the round id and every roster entry's id and advertised keys
 *   (fresh X25519 keys each client chose and signed this round), so the server cannot pick it:
 *   it can only choose which advertisements to include, and every client recomputes it;
 * - signed payloads are length-prefixed (no two field lists encode alike) and carry the round
 *   id, so a signature never verifies in another round or as another message.
 */

/** What the graph needs of a roster entry. */
export interface GraphEntry {
  readonly id: string;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
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
export function advertisePayload(roundId: string, id: string, cPk: Uint8Array, sPk: Uint8Array): Uint8Array {
  return encodeFields([roundId, id, cPk, sPk]);
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

/**
 * The SecAgg+ graph seed of a roster: hex SHA-256 over the round id and each entry's id and keys,
 * in id order.
 *
 * @example
 * ```ts
 * const seed = deriveGraphSeed('r1', roster.entries);
 * ```
 */
export function deriveGraphSeed(roundId: string, entries: readonly GraphEntry[]): string {
  const h = createHash('sha256').update('cipherml/secagg/graph-seed/v1\0').update(encodeFields([roundId]));
  for (const e of [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) h.update(encodeFields([e.id, e.cPk, e.sPk]));
  return h.digest('hex');
}

/** Deterministic permutation of ids from a hex seed (Fisher–Yates driven by an AES-CTR stream). */
function permute(ids: readonly string[], seedHex: string): string[] {
  const seed = Buffer.from(seedHex.padEnd(64, '0').slice(0, 64), 'hex');
  const words = expandMask(seed, Math.max(1, ids.length), 32);
  const out = [...ids].sort();
  for (let i = out.length - 1; i > 0; i--) {
    const j = words[i]! % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Ring {
  readonly ring: readonly string[];
  readonly position: ReadonlyMap<string, number>;
}

/** Rings per (ids array, seed): every client and the server ask for the same one. */
const RINGS = new WeakMap<readonly string[], Map<string, Ring>>();

function ringOf(ids: readonly string[], seed: string): Ring {
  let bySeed = RINGS.get(ids);
  if (bySeed === undefined) RINGS.set(ids, (bySeed = new Map()));
  let hit = bySeed.get(seed);
  if (hit === undefined) {
    const ring = permute(ids, seed);
    hit = { ring, position: new Map(ring.map((id, i) => [id, i])) };
    bySeed.set(seed, hit);
  }
  return hit;
}

/**
 * Neighbours of `id` among `ids`: placed on a ring by the seeded permutation, each linked to the
 * degree/2 nearest on either side (a Harary graph, Bell et al. §3.1); every other id when
 * `degree` ≥ |ids| − 1. The relation is symmetric. Pass the same `ids` array for every call of a
 * round: the ring is cached per array.
 *
 * @example
 * ```ts
 * graphNeighbours('c3', ids, 22, seed); // 22 ids
 * ```
 */
export function graphNeighbours(id: string, ids: readonly string[], degree: number, seed: string): string[] {
  if (degree >= ids.length - 1) return ids.filter((x) => x !== id).sort();
  const { ring, position } = ringOf(ids, seed);
  const i = position.get(id) ?? -1;
  const half = degree / 2;
  const out = new Set<string>();
  for (let k = 1; k <= half; k++) {
    out.add(ring[(i + k) % ring.length]!);
    out.add(ring[(i - k + ring.length) % ring.length]!);
  }
  return [...out].sort();
}
