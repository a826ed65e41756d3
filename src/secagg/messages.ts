import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { graphNeighbours } from './graph.ts';

/**
 * The messages of a secure-aggregation round (Bonawitz et al., CCS 2017, §4, and its actively
 * secure variant) and the roster helpers the client and the server share: the round checks, Δ,
 * the SecAgg+ neighbourhood of a roster entry.
 */

/** Protocol mode (MindSpore encrypt_type / Flower SecAgg+). */
export type SecAggMode = 'pw' | 'stable-pw' | 'secagg+';

/** Parameters shared by the server and every client of one round. */
export interface SecAggParams {
  readonly mode: SecAggMode;
  /** Identifies the round; bound into every encrypted share (replays across rounds fail). */
  readonly roundId: string;
  /** Length of the integer vector each client contributes. */
  readonly length: number;
  /** Inputs and masks live in Z_{2^modulusBits}, 1..32. */
  readonly modulusBits: number;
  /**
   * reconstruct-secrets-threshold t: secrets are shared with a degree-t polynomial, so t + 1
   * shares reconstruct and t reveal nothing.
   */
  readonly threshold: number;
  /**
   * Actively secure SecAgg+: size c of the graph-seed committee, fixed before any advertisement
   * (the committee is min(c, |U1|) members; params.ts seedCommitteeSize). Default
   * seedCommitteeSize under the default policy.
   */
  readonly seedCommittee?: number;
}

/** Stage 0, client → server. */
export interface AdvertiseMsg {
  readonly stage: 'advertise';
  readonly roundId: string;
  readonly from: string;
  /** Public key for encrypting shares (c_u^PK). */
  readonly cPk: Uint8Array;
  /** Public key for pairwise masks (s_u^PK). */
  readonly sPk: Uint8Array;
  /** Actively secure variant: Ed25519 signature over (round, id, cPk, sPk, commitment); empty otherwise. */
  readonly signature: Uint8Array;
  /** Actively secure variant: c = H(round, id, r), r its fresh graph-seed contribution (graph.ts seedCommitment); absent otherwise. */
  readonly commitment?: Uint8Array;
}

/** One participant as the server announces it. */
export interface RosterEntry {
  readonly id: string;
  /** Shamir x-coordinate (1-based, distinct). */
  readonly x: number;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  /** The signature the client advertised with (empty in the honest-but-curious variant). */
  readonly signature: Uint8Array;
  /** The seed commitment the client advertised and signed (actively secure variant). */
  readonly commitment?: Uint8Array;
}

/** Server → clients after stage 0: U1 and the SecAgg+ graph seed. */
export interface Roster {
  readonly roundId: string;
  readonly entries: readonly RosterEntry[];
  /** Neighbours per client for `secagg+` (even, < |U1|); ignored by other modes. */
  readonly degree: number;
  /** Seed of the neighbourhood permutation (hex); ignored by other modes. */
  readonly graphSeed: string;
  /**
   * |U1| when this is one client's neighbourhood view (SecAgg+, honest-but-curious variant:
   * itself and its neighbours only, O(k) entries); absent when `entries` is all of U1.
   */
  readonly clients?: number;
  /**
   * Actively secure neighbourhood view: the Merkle root of all of U1 (the graph seed derives from
   * it) and the batched inclusion proof of the view's entries at their x-coordinates.
   */
  readonly root?: Uint8Array;
  readonly proof?: readonly Uint8Array[];
  /**
   * Actively secure neighbourhood view: the commit–reveal committee's entries (at the positions
   * graph.ts seedCommittee derives from `root`, covered by `proof`) and their reveals, in the same
   * order; the graph seed is graph.ts revealedGraphSeed over them.
   */
  readonly committee?: readonly RosterEntry[];
  readonly reveals?: readonly Uint8Array[];
}

/**
 * Server → committee member after stage 0 (actively secure SecAgg+): the roster commitment that
 * fixes U1, and the member's own leaf position and inclusion proof, which it checks before it
 * reveals its graph-seed contribution.
 */
export interface RevealRequest {
  readonly roundId: string;
  /** |U1|. */
  readonly clients: number;
  /** Merkle root of U1 (graph.ts rosterTree). */
  readonly root: Uint8Array;
  /** The member's x-coordinate (leaf x − 1). */
  readonly x: number;
  readonly proof: readonly Uint8Array[];
  /** Committee size m (params.ts seedCommitteeSize). */
  readonly committee: number;
}

/** Commit–reveal stage, committee member → server: the r its advertised commitment binds. */
export interface RevealMsg {
  readonly stage: 'reveal';
  readonly roundId: string;
  readonly from: string;
  readonly reveal: Uint8Array;
}

/** Stage 1, client → server: encrypted shares, one box per recipient. */
export interface ShareKeysMsg {
  readonly stage: 'share-keys';
  readonly roundId: string;
  readonly from: string;
  readonly boxes: readonly { readonly to: string; readonly box: Uint8Array }[];
}

/** Server → client v after stage 1: boxes addressed to v, and U2. */
export interface ShareInbox {
  readonly roundId: string;
  /** U2: clients whose shares were forwarded. */
  readonly holders: readonly string[];
  readonly boxes: readonly { readonly from: string; readonly box: Uint8Array }[];
}

/** Stage 2, client → server. */
export interface MaskedInputMsg {
  readonly stage: 'masked-input';
  readonly roundId: string;
  readonly from: string;
  readonly masked: Uint32Array;
}

/** A client's signature over U3 (consistency check). */
export interface SurvivorSignature {
  readonly from: string;
  readonly signature: Uint8Array;
}

/** Server → survivors after stage 2 (the consistency-check request has no signatures). */
export interface UnmaskRequest {
  readonly roundId: string;
  /** U3: clients whose masked input arrived. */
  readonly survivors: readonly string[];
  /** U2 \ U3: clients that shared keys but sent no masked input. */
  readonly dropped: readonly string[];
  /** Actively secure variant: the U4 clients' signatures over U3 (or over `commitment`). */
  readonly signatures?: readonly SurvivorSignature[];
  /**
   * Actively secure SecAgg+ neighbourhood view: `survivors` and `dropped` are restricted to the
   * client's neighbourhood and proven against this commitment to every U1 member's status.
   */
  readonly commitment?: SurvivorCommitmentView;
}

/** The survivor commitment as one client receives it (graph.ts survivorCommitment). */
export interface SurvivorCommitmentView {
  /** |U1|, |U2|, |U3|. */
  readonly clients: number;
  readonly holders: number;
  readonly survivors: number;
  /** Merkle root over every U1 member's status, member x at leaf x − 1. */
  readonly root: Uint8Array;
  /** Inclusion proof of the client's neighbourhood's statuses. */
  readonly proof: readonly Uint8Array[];
}

/** Consistency check, client → server: its signature over the U3 it was shown. */
export interface ConsistencyMsg {
  readonly stage: 'consistency';
  readonly roundId: string;
  readonly from: string;
  readonly signature: Uint8Array;
}

/** Stage 3, client → server. */
export interface UnmaskMsg {
  readonly stage: 'unmask';
  readonly roundId: string;
  readonly from: string;
  /** Shares of dropped peers' mask private keys. */
  readonly keyShares: readonly { readonly of: string; readonly share: Uint8Array }[];
  /** Shares of surviving peers' self-mask seeds. */
  readonly seedShares: readonly { readonly of: string; readonly share: Uint8Array }[];
}

/** HKDF info of the share-box key. */
export const KEY_INFO_SHARE = 'share-box';
/** HKDF info prefix of the pairwise mask key (followed by `/` and the round id). */
export const KEY_INFO_MASK = 'pairwise-mask';

/** Checks the round parameters' ranges. */
export function validateParams(p: SecAggParams): void {
  assertIntegerInRange(p.length, 'length', 1, 1 << 28);
  assertIntegerInRange(p.modulusBits, 'modulusBits', 1, 32);
  assertIntegerInRange(p.threshold, 'threshold', 1, 1 << 20);
  if (p.seedCommittee !== undefined) assertIntegerInRange(p.seedCommittee, 'seedCommittee', 1, 1 << 20);
}

/** A typed CIPHERML_E_PROTOCOL error naming the message field. */
export function protocolError(problem: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PROTOCOL', problem, { param });
}

/** Checks a message's round id. */
export function checkRound(params: SecAggParams, roundId: string, param: string): void {
  if (roundId !== params.roundId) throw protocolError(`message of round "${roundId}" in round "${params.roundId}" (replayed or misrouted)`, param);
}

/** Δ(u,v): +1 when u sorts before v, −1 otherwise. */
export function sign(u: string, v: string): 1 | -1 {
  return u < v ? 1 : -1;
}

/**
 * Most clients a round may announce (2^20): a SecAgg+ neighbourhood view makes a client build the
 * ring of all n coordinates (12 bytes each), so a server cannot make it allocate more than this.
 */
export const MAX_ROUND_CLIENTS: number = 1 << 20;

/** Roster entries by id, one map per roster. */
const BY_ID = new WeakMap<Roster, ReadonlyMap<string, RosterEntry>>();

/** The roster entry of `id`, or undefined (O(1) after the first call on a roster). */
export function entryOf(roster: Roster, id: string): RosterEntry | undefined {
  let m = BY_ID.get(roster);
  if (m === undefined) BY_ID.set(roster, (m = new Map(roster.entries.map((e) => [e.id, e]))));
  return m.get(id);
}

/** Roster entries by x-coordinate, one map per roster. */
const BY_X = new WeakMap<Roster, ReadonlyMap<number, RosterEntry>>();

/** Number of clients in U1: the whole roster, or what a neighbourhood view announces. */
export function rosterSize(roster: Roster): number {
  return roster.clients ?? roster.entries.length;
}

/**
 * Neighbours of `id` in the round's graph: the SecAgg+ Harary graph for `secagg+` (Bell et al.
 * §3.1), every other participant in the other modes. The relation is symmetric. On a
 * neighbourhood view (SecAgg+ roster of one client) only that client's neighbours are known.
 *
 * @example
 * ```ts
 * neighboursOf('c3', roster, 'secagg+'); // ['c1', 'c7', …] — roster.degree ids
 * ```
 */
export function neighboursOf(id: string, roster: Roster, mode: SecAggMode): string[] {
  const me = entryOf(roster, id);
  if (me === undefined) return [];
  let byX = BY_X.get(roster);
  if (byX === undefined) BY_X.set(roster, (byX = new Map(roster.entries.map((e) => [e.x, e]))));
  const n = rosterSize(roster);
  const xs = graphNeighbours(me.x, n, mode === 'secagg+' ? roster.degree : n - 1, roster.graphSeed);
  const out: string[] = [];
  for (const x of xs) {
    const e = byX.get(x);
    if (e === undefined) throw protocolError(`the roster lacks neighbour x = ${x} of "${id}"`, 'roster');
    out.push(e.id);
  }
  return out.sort();
}
