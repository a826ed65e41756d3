import { randomBytes } from 'node:crypto';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { signMessage, verifyMessage, type Identity, type Roster as IdentityRoster } from '../core/identity.ts';
import { ADVERTISE_CONTEXT, CONSISTENCY_CONTEXT, advertisePayload, commitmentPayload, consistencyPayload, deriveGraphSeed, graphNeighbours, revealedGraphSeed, rosterLeaf, seedCommitment, seedCommittee, statusLeaf, survivorCommitment } from './graph.ts';
import { verifyMerkle } from './merkle.ts';
import { agreeKey, generateX25519KeyPair, openBox, sealBox, type X25519KeyPair } from './keys.ts';
import { checkAnnouncedParameters, checkSecurityPolicy, seedCommitteeSize, type SecurityPolicy } from './params.ts';
import { accumulateMasks, reduceModInPlace } from './prg.ts';
import { shareToBytes, splitSecret } from './shamir.ts';
import { SECAGG_TEST_HOOKS } from './testing.ts';
import {
  KEY_INFO_MASK,
  KEY_INFO_SHARE,
  MAX_ROUND_CLIENTS,
  checkRound,
  entryOf,
  neighboursOf,
  protocolError,
  rosterSize,
  sign,
  validateParams,
  type AdvertiseMsg,
  type ConsistencyMsg,
  type MaskedInputMsg,
  type RevealMsg,
  type RevealRequest,
  type Roster,
  type SecAggParams,
  type ShareInbox,
  type ShareKeysMsg,
  type UnmaskMsg,
  type UnmaskRequest,
} from './messages.ts';

export { KEY_INFO_MASK, KEY_INFO_SHARE, MAX_ROUND_CLIENTS, checkRound, entryOf, neighboursOf, protocolError, rosterSize, sign, validateParams } from './messages.ts';
export type { AdvertiseMsg, ConsistencyMsg, MaskedInputMsg, RevealMsg, RevealRequest, Roster, RosterEntry, SecAggMode, SecAggParams, ShareInbox, ShareKeysMsg, SurvivorCommitmentView, SurvivorSignature, UnmaskMsg, UnmaskRequest } from './messages.ts';

/**
 * Secure aggregation by pairwise masks (Bonawitz et al., "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning", CCS 2017, §4, in its honest-but-curious and its actively
 * secure variant) with the SecAgg+ neighbourhood graph (Bell et al., CCS 2020, §3) and MindSpore
 * Federated's modes:
 *
 * - `pw` (PW_ENCRYPT): four stages — advertise keys, share keys, masked input, unmasking — and
 *   recovery from clients dropping out at any stage, as long as ≥ threshold + 1 share holders
 *   of every client remain;
 * - `stable-pw` (STABLE_PW_ENCRYPT): pairwise masks only, no self mask, no shares: two stages,
 *   for cross-silo parties that do not drop; a dropout fails the round;
 * - `secagg+`: like `pw`, but each client agrees masks and shares secrets only with its k
 *   neighbours in a random k-regular (Harary) graph, k = O(log n).
 *
 * Invariants:
 * - all arithmetic is on integer vectors mod 2^modulusBits (never on floats);
 * - y_u = x_u + PRG(b_u) + Σ_{v ∈ N(u) ∩ U2} Δ(u,v)·PRG(s_uv), Δ(u,v) = +1 if u < v else −1,
 *   so pairwise masks of survivors cancel in Σ y_u (Bonawitz §4, round 2);
 * - a client reveals, for each peer, either the share of its mask key (peer dropped) or the share
 *   of its self-mask seed (peer survived), never both, and answers one unmasking request per
 *   round (Bonawitz §4, round 4: revealing both would unmask that peer's input);
 * - the server either returns the exact sum of the survivors' inputs or fails with a typed error.
 *
 * Actively secure variant (a client constructed with its identity and the pinned roster of its
 * peers; Bonawitz §4 "malicious setting"): advertised keys are signed under each client's
 * long-term Ed25519 identity and every roster entry is verified against the pinned key; the
 * server's threshold, SecAgg+ degree and graph seed (by commit–reveal on neighbourhood views:
 * {@link SecAggClient.reveal}) are checked before any share leaves the client; a client aborts when fewer than t + 1 clients shared keys (|U2| < t + 1); and a
 * ConsistencyCheck round precedes unmasking: each survivor signs U3, and a client reveals shares
 * only when at least t + 1 valid signatures over its own U3 come back.
 */

/** A client's refusal to continue a round (Bonawitz §4 "abort"), naming the round and stage. */
function aborted(roundId: string, stage: string, problem: string, param: string, details: Record<string, unknown>): CipherMLError {
  return new CipherMLError('CIPHERML_E_SECAGG_ABORTED', `round "${roundId}", stage ${stage}: ${problem}`, { param, details: { round: roundId, stage, ...details } });
}

type ClientStage = 'new' | 'advertised' | 'revealed' | 'shared' | 'masked' | 'checked' | 'unmasked';

/** How a client authenticates peers and what it accepts from the server. */
export interface SecAggClientOptions {
  /**
   * This client's long-term identity: enables the actively secure variant (signed keys, the
   * consistency check). Requires `peers`.
   */
  readonly identity?: Identity;
  /** The pinned public identities (role "worker", id = client id) whose signed keys it accepts. */
  readonly peers?: IdentityRoster;
  /** Checks the server's threshold and SecAgg+ degree against this policy (none when absent). */
  readonly policy?: SecurityPolicy;
}

/**
 * One client's side of a secure-aggregation round.
 *
 * @example
 * ```ts
 * const c = new SecAggClient('alice', params);
 * const adv = c.advertise();                  // → server
 * const share = c.shareKeys(roster);          // → server
 * const masked = c.maskedInput(x, inbox);     // → server
 * const unmask = c.unmask(request);           // → server
 * ```
 */
export class SecAggClient {
  readonly id: string;
  readonly #p: SecAggParams;
  readonly #c: X25519KeyPair;
  readonly #s: X25519KeyPair;
  #seed: Uint8Array | null = null;
  #stage: ClientStage = 'new';
  #roster: Roster | null = null;
  #neighbours: string[] = [];
  #holders: string[] = [];
  readonly #received = new Map<string, { keyShare: Uint8Array; seedShare: Uint8Array }>();
  /** Share-box keys agreed in shareKeys, by holder; erased once the inbox is opened. */
  readonly #boxKeys = new Map<string, Uint8Array>();
  readonly #identity: Identity | undefined;
  readonly #peers: IdentityRoster | undefined;
  readonly #policy: SecurityPolicy | undefined;
  /** Actively secure variant: this round's graph-seed contribution r and its commitment c = H(round, id, r). */
  #reveal: Uint8Array | null = null;
  #commitment: Uint8Array | null = null;
  /** The roster commitment (root, |U1|) this client revealed r for, as a committee member. */
  #revealedFor: { root: Uint8Array; clients: number } | null = null;
  /** The U3 / dropped lists this client signed in the consistency check. */
  #checked: { survivors: string[]; dropped: string[]; payload: Uint8Array; commitment: string | null } | null = null;

  constructor(id: string, params: SecAggParams, options: SecAggClientOptions = {}) {
    validateParams(params);
    if (options.identity !== undefined && options.peers === undefined) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', 'the actively secure variant needs the pinned identities of the peers as well as this client\'s identity', { param: 'roster' });
    }
    if (options.identity !== undefined && options.identity.id !== id) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the identity names "${options.identity.id}", this client is "${id}"`, { param: 'identity' });
    }
    if (options.policy !== undefined) checkSecurityPolicy(options.policy);
    this.id = id;
    this.#p = params;
    this.#c = generateX25519KeyPair();
    this.#s = generateX25519KeyPair();
    this.#identity = options.identity;
    this.#peers = options.peers;
    this.#policy = options.policy;
  }

  /** True when this client runs the actively secure variant. */
  get active(): boolean {
    return this.#identity !== undefined;
  }

  #expect(stage: ClientStage | readonly ClientStage[], next: string): void {
    if (typeof stage === 'string' ? this.#stage !== stage : !stage.includes(this.#stage)) throw protocolError(`cannot ${next} at stage "${this.#stage}" (out of order or replayed request)`, 'stage');
  }

  /** Stage 0: two fresh X25519 public keys, signed under the identity in the active variant. */
  advertise(): AdvertiseMsg {
    this.#expect('new', 'advertise keys');
    this.#stage = 'advertised';
    const { roundId } = this.#p;
    if (this.#identity === undefined) return { stage: 'advertise', roundId, from: this.id, cPk: this.#c.publicKey, sPk: this.#s.publicKey, signature: new Uint8Array(0) };
    if (this.#p.mode !== 'secagg+') return { stage: 'advertise', roundId, from: this.id, cPk: this.#c.publicKey, sPk: this.#s.publicKey, signature: signMessage(this.#identity, ADVERTISE_CONTEXT, advertisePayload(roundId, this.id, this.#c.publicKey, this.#s.publicKey)) };
    // Commit–reveal of the SecAgg+ graph seed: c binds r now; r is revealed only after the server
    // has fixed U1 (reveal). Complete-graph modes have no seed to commit to.
    this.#reveal = randomBytes(32);
    this.#commitment = seedCommitment(roundId, this.id, this.#reveal);
    const signature = signMessage(this.#identity, ADVERTISE_CONTEXT, advertisePayload(roundId, this.id, this.#c.publicKey, this.#s.publicKey, this.#commitment));
    return { stage: 'advertise', roundId, from: this.id, cPk: this.#c.publicKey, sPk: this.#s.publicKey, signature, commitment: this.#commitment };
  }

  /** Committee size for a roster of n: min(c, n), c fixed with the round's parameters before any advertisement. */
  #committeeSize(n: number): number {
    return Math.min(n, this.#p.seedCommittee ?? seedCommitteeSize(n));
  }

  /**
   * Commit–reveal stage (actively secure SecAgg+, committee members only): reveals r once the
   * server has fixed U1, after checking that the roster commitment holds this client's signed
   * advertisement at its position and that the commitment selects it for the committee. One
   * reveal per round: the client will accept only views under this same commitment.
   */
  reveal(request: RevealRequest): RevealMsg {
    this.#expect('advertised', 'reveal its graph-seed contribution');
    checkRound(this.#p, request.roundId, 'reveal');
    const roundId = this.#p.roundId;
    if (this.#identity === undefined || this.#reveal === null || this.#commitment === null) throw protocolError('a graph-seed reveal was requested of a client without an identity (honest-but-curious variant)', 'reveal');
    const refused = (problem: string, param: string) => new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": ${problem}`, { param, details: { round: roundId, clients: request.clients } });
    const n = request.clients;
    const workers = this.#peers!.parties.filter((p) => p.role === 'worker').length;
    if (!(Number.isInteger(n) && n >= 1 && n <= Math.min(workers, MAX_ROUND_CLIENTS))) throw refused(`the reveal request announces ${n} clients, ${workers} worker identities are pinned`, 'roster');
    if (!(Number.isInteger(request.x) && request.x >= 1 && request.x <= n) || request.root.length !== 32) throw refused('the reveal request carries no valid roster commitment or position', 'roster');
    const leaf = rosterLeaf({ id: this.id, x: request.x, cPk: this.#c.publicKey, sPk: this.#s.publicKey, commitment: this.#commitment });
    if (!verifyMerkle(request.root, n, new Map([[request.x - 1, leaf]]), request.proof)) throw refused(`the roster commitment does not hold this client's advertisement at x = ${request.x}`, 'roster');
    const m = this.#committeeSize(n);
    if (request.committee !== m) throw refused(`the reveal request names a committee of ${request.committee}; this round's is ${m}`, 'secagg-graph-seed');
    if (!seedCommittee(roundId, n, request.root, m).includes(request.x)) throw refused(`x = ${request.x} is not on the graph-seed committee the roster commitment selects`, 'secagg-graph-seed');
    this.#revealedFor = { root: new Uint8Array(request.root), clients: n };
    this.#stage = 'revealed';
    return { stage: 'reveal', roundId, from: this.id, reveal: this.#reveal };
  }

  /**
   * Checks what the server announced with the roster, before any secret leaves: every entry's
   * signature against the pinned identity (active variant), the graph seed (secagg+: derived from
   * the signed keys, not chosen by the server), the threshold and the degree (when a policy is set).
   */
  #checkRoster(roster: Roster): void {
    if (SECAGG_TEST_HOOKS.disableChecks) return;
    const { roundId, mode, threshold } = this.#p;
    if (this.#peers !== undefined) {
      for (const e of [...roster.entries, ...(roster.committee ?? [])]) {
        const pinned = this.#peers.get('worker', e.id);
        if (pinned === undefined) {
          throw new CipherMLError('CIPHERML_E_IDENTITY_UNKNOWN', `round "${roundId}": the roster lists "${e.id}", who is not among the pinned worker identities`, { param: 'roster', details: { round: roundId, id: e.id } });
        }
        if (!verifyMessage(pinned, ADVERTISE_CONTEXT, advertisePayload(roundId, e.id, e.cPk, e.sPk, e.commitment), e.signature)) {
          throw new CipherMLError('CIPHERML_E_SIGNATURE_INVALID', `round "${roundId}": the keys the roster gives for "${e.id}" are not signed by its pinned identity (${pinned.fingerprint.slice(0, 16)}…): substituted keys`, {
            param: 'roster',
            details: { round: roundId, id: e.id, fingerprint: pinned.fingerprint },
          });
        }
      }
    }
    const n = rosterSize(roster);
    const view = roster.entries.length < n;
    if (view && !(mode === 'secagg+' && roster.degree < n - 1)) {
      throw new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": the server sent ${roster.entries.length} of ${n} roster entries; only a SecAgg+ round with degree < n − 1 sends neighbourhood views`, {
        param: 'roster',
        details: { round: roundId, entries: roster.entries.length, clients: n },
      });
    }
    if (mode === 'secagg+' && roster.degree < n - 1) {
      if (!(Number.isInteger(roster.degree) && roster.degree >= 2 && roster.degree % 2 === 0)) {
        throw new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `SecAgg+ degree ${roster.degree} must be an even number ≥ 2`, { param: 'num-shares', details: { round: roundId, degree: roster.degree } });
      }
      // A neighbourhood view of the honest-but-curious variant trusts the server's seed, as that
      // variant trusts the server; the actively secure variant checks the view against the roster
      // commitment and the committee's reveals the seed derives from, which only a view carries.
      if (view && this.#identity !== undefined) this.#checkView(roster, n);
      else if (!view) this.#checkSeed(roster.graphSeed, deriveGraphSeed(roundId, roster.entries));
    }
    if (this.#policy !== undefined) checkAnnouncedParameters({ mode, clients: n, degree: mode === 'secagg+' ? Math.min(roster.degree, n - 1) : n - 1, threshold }, this.#policy);
    if (mode === 'secagg+' && roster.degree < n - 1 && !view && this.#identity !== undefined) {
      throw new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": a whole SecAgg+ roster carries no graph-seed committee reveals, so its seed cannot be checked; an actively secure client accepts only neighbourhood views`, { param: 'secagg-graph-seed', details: { round: roundId } });
    }
  }

  #checkSeed(announced: string, derived: string): void {
    const roundId = this.#p.roundId;
    if (announced !== derived) {
      throw new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": the server's SecAgg+ graph seed ${announced.slice(0, 16)}… is not the one derived from the advertised keys and reveals (${derived.slice(0, 16)}…)`, {
        param: 'secagg-graph-seed',
        details: { round: roundId, announced, derived },
      });
    }
  }

  /**
   * An actively secure neighbourhood view (Bell et al. §3 cost, Bonawitz §4 checks): its entries
   * sit at their x-coordinates in the committed roster, the seed derives from that commitment,
   * and the entries are exactly this client and its neighbours in the seeded graph.
   */
  #checkView(roster: Roster, n: number): void {
    const roundId = this.#p.roundId;
    const refused = (problem: string, param: string) => new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": ${problem}`, { param, details: { round: roundId, clients: n } });
    if (roster.root === undefined || roster.proof === undefined || roster.root.length !== 32) throw refused('the neighbourhood view carries no roster commitment, so the graph seed cannot be checked', 'roster');
    const workers = this.#peers!.parties.filter((p) => p.role === 'worker').length;
    if (n > workers) throw refused(`the roster announces ${n} clients, only ${workers} worker identities are pinned`, 'roster');
    const leaves = new Map<number, Buffer>();
    for (const e of [...roster.entries, ...(roster.committee ?? [])]) {
      const leaf = rosterLeaf(e);
      const seen = leaves.get(e.x - 1);
      if (seen !== undefined && !seen.equals(leaf)) throw refused(`two different entries at x = ${e.x}`, 'roster');
      leaves.set(e.x - 1, leaf);
    }
    if (!verifyMerkle(roster.root, n, leaves, roster.proof)) {
      throw refused('the neighbourhood and committee entries do not match the roster commitment (substituted entry, position or proof)', 'roster');
    }
    if (this.#revealedFor !== null && (n !== this.#revealedFor.clients || !Buffer.from(roster.root).equals(Buffer.from(this.#revealedFor.root)))) {
      throw refused('the roster commitment is not the one this client revealed its graph-seed contribution under (U1 changed after the reveals)', 'secagg-graph-seed');
    }
    // Off only in the adversarial suite's broken build: the client then takes the server's seed.
    const seed = defences.secaggSeedReveal ? this.#revealedSeed(roster, n) : roster.graphSeed;
    this.#checkSeed(roster.graphSeed, seed);
    const me = entryOf(roster, this.id)!;
    const want = new Set([me.x, ...graphNeighbours(me.x, n, roster.degree, seed)]);
    if (roster.entries.length !== want.size || roster.entries.some((e) => !want.has(e.x))) {
      throw refused(`the view's ${roster.entries.length} entries are not exactly this client and its ${roster.degree} neighbours in the seeded graph`, 'roster');
    }
  }

  /**
   * The graph seed of an actively secure view by commit–reveal: the committee the roster root
   * selects, each member's reveal opening the commitment it signed, every reveal present.
   */
  #revealedSeed(roster: Roster, n: number): string {
    const roundId = this.#p.roundId;
    const refused = (problem: string, details: Record<string, unknown> = {}) => new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', `round "${roundId}": ${problem}`, { param: 'secagg-graph-seed', details: { round: roundId, clients: n, ...details } });
    const committee = roster.committee ?? [];
    const reveals = roster.reveals ?? [];
    const m = this.#committeeSize(n);
    if (this.#policy !== undefined && m < seedCommitteeSize(n, this.#policy)) {
      throw refused(`the round's graph-seed committee of ${m} is below the ${seedCommitteeSize(n, this.#policy)} members this client's γ and σ require (γ^m ≤ 2^-σ)`, { committee: m });
    }
    const xs = seedCommittee(roundId, n, roster.root!, m);
    if (committee.length !== m || committee.some((e, i) => e.x !== xs[i])) throw refused(`the view's ${committee.length} committee entries are not the ${m} members the roster commitment selects`, { committee: committee.length, expected: m });
    for (let i = 0; i < m; i++) {
      const e = committee[i]!;
      const r = reveals[i];
      if (r === undefined || r.length === 0) throw refused(`the reveal of committee member "${e.id}" is missing`, { member: e.id });
      if (r.length !== 32 || e.commitment === undefined || !Buffer.from(seedCommitment(roundId, e.id, r)).equals(Buffer.from(e.commitment))) throw refused(`the reveal of committee member "${e.id}" does not open the commitment it signed`, { member: e.id });
    }
    if (reveals.length !== m) throw refused(`${reveals.length} reveals for ${m} committee members`, { reveals: reveals.length });
    return revealedGraphSeed(roundId, n, roster.root!, committee.map((e, i) => ({ x: e.x, id: e.id, reveal: reveals[i]! })));
  }

  /** Stage 1: Shamir shares of s_u^SK and b_u for every neighbour (itself included), each sealed for its recipient. */
  shareKeys(roster: Roster): ShareKeysMsg {
    this.#expect(['advertised', 'revealed'], 'share keys');
    checkRound(this.#p, roster.roundId, 'roster');
    const me = entryOf(roster, this.id);
    const sameCommitment = this.#commitment === null || (me?.commitment !== undefined && Buffer.from(me.commitment).equals(Buffer.from(this.#commitment)));
    if (me === undefined || !sameCommitment || Buffer.compare(Buffer.from(me.sPk), Buffer.from(this.#s.publicKey)) !== 0 || Buffer.compare(Buffer.from(me.cPk), Buffer.from(this.#c.publicKey)) !== 0) {
      throw protocolError('the roster does not list this client with the keys it advertised', 'roster');
    }
    const ids = new Set<string>();
    const xs = new Set<number>();
    const n = rosterSize(roster);
    if (!(Number.isInteger(n) && n >= roster.entries.length && n <= MAX_ROUND_CLIENTS)) throw protocolError(`the roster announces ${n} clients for ${roster.entries.length} entries (at most ${MAX_ROUND_CLIENTS})`, 'roster');
    for (const e of roster.entries) {
      if (ids.has(e.id) || xs.has(e.x)) throw protocolError(`the roster repeats ${ids.has(e.id) ? `id "${e.id}"` : `x = ${e.x}`}`, 'roster');
      if (!(Number.isInteger(e.x) && e.x >= 1 && e.x <= n)) throw protocolError(`x = ${e.x} of "${e.id}" is outside 1..${n}`, 'roster');
      ids.add(e.id);
      xs.add(e.x);
    }
    this.#checkRoster(roster);
    this.#roster = roster;
    this.#neighbours = neighboursOf(this.id, roster, this.#p.mode);
    this.#stage = 'shared';
    if (this.#p.mode === 'stable-pw') return { stage: 'share-keys', roundId: this.#p.roundId, from: this.id, boxes: [] };
    const holders = [me, ...this.#neighbours.map((n) => entryOf(roster, n)!)];
    if (holders.length < this.#p.threshold + 1) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${holders.length} share holders cannot reconstruct with threshold ${this.#p.threshold}`, { param: 'reconstruct-secrets-threshold' });
    }
    this.#seed = randomBytes(32);
    const xsOf = holders.map((h) => h.x);
    const keyShares = splitSecret(this.#s.privateKey, xsOf, this.#p.threshold);
    const seedShares = splitSecret(this.#seed, xsOf, this.#p.threshold);
    const boxes = holders.map((h, i) => {
      const plain = Buffer.concat([shareToBytes(keyShares[i]!), shareToBytes(seedShares[i]!)]);
      const key = agreeKey(this.#c.privateKey, h.cPk, KEY_INFO_SHARE);
      // The same key opens the box h sends back (agreement is symmetric): kept for maskedInput.
      this.#boxKeys.set(h.id, key);
      return { to: h.id, box: sealBox(key, plain, aad(this.#p.roundId, this.id, h.id)) };
    });
    return { stage: 'share-keys', roundId: this.#p.roundId, from: this.id, boxes };
  }

  /** Stage 2: the masked input y_u; stores (encrypted) the shares received for unmasking. */
  maskedInput(input: Uint32Array, inbox: ShareInbox): MaskedInputMsg {
    this.#expect('shared', 'send a masked input');
    checkRound(this.#p, inbox.roundId, 'inbox');
    if (!(input instanceof Uint32Array) || input.length !== this.#p.length) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `input must be a Uint32Array of ${this.#p.length} values`, { param: 'input' });
    }
    const bits = this.#p.modulusBits;
    const limit = bits === 32 ? 2 ** 32 : 2 ** bits;
    for (let i = 0; i < input.length; i++) if (input[i]! >= limit) throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `input[${i}] = ${input[i]} is not below 2^${bits}`, { param: 'input' });
    const roster = this.#roster!;
    const stable = this.#p.mode === 'stable-pw';
    const holders = stable ? roster.entries.map((e) => e.id) : [...inbox.holders];
    if (!holders.includes(this.id)) throw protocolError('this client is not among the holders the server names', 'inbox');
    const listed = new Set(roster.entries.map((e) => e.id));
    for (const h of holders) if (!listed.has(h)) throw protocolError(`holder "${h}" is not in the roster`, 'inbox');
    if (new Set(holders).size !== holders.length) throw protocolError('the holders list repeats a client', 'inbox');
    if (!stable && !SECAGG_TEST_HOOKS.disableChecks) {
      const t = this.#p.threshold;
      if (holders.length < t + 1) {
        throw aborted(this.#p.roundId, 'masked-input', `only |U2| = ${holders.length} clients shared keys; t + 1 = ${t + 1} are needed, refusing to send a masked input`, 'reconstruct-secrets-threshold', { count: holders.length, needed: t + 1 });
      }
      const mine = new Set([this.id, ...this.#neighbours]);
      const local = holders.filter((h) => mine.has(h)).length;
      if (local < t + 1) {
        throw aborted(this.#p.roundId, 'masked-input', `only ${local} of this client's share holders shared keys; t + 1 = ${t + 1} are needed, refusing to send a masked input`, 'reconstruct-secrets-threshold', { count: local, needed: t + 1 });
      }
    }
    this.#holders = holders;
    const holderSet = new Set(holders);
    const neighbourSet = new Set(this.#neighbours);
    if (!stable) {
      for (const { from, box } of inbox.boxes) {
        const sender = entryOf(roster, from);
        if (sender === undefined || (from !== this.id && !neighbourSet.has(from))) throw protocolError(`a share from "${from}", who is not a neighbour`, 'inbox');
        if (this.#received.has(from)) throw protocolError(`two shares from "${from}"`, 'inbox');
        const plain = openBox(this.#boxKeys.get(from) ?? agreeKey(this.#c.privateKey, sender.cPk, KEY_INFO_SHARE), box, aad(this.#p.roundId, from, this.id));
        if (plain.length !== 140) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a share box from "${from}" holds ${plain.length} bytes`, { param: 'inbox' });
        this.#received.set(from, { keyShare: plain.subarray(0, 70), seedShare: plain.subarray(70) });
      }
    }
    for (const key of this.#boxKeys.values()) key.fill(0);
    this.#boxKeys.clear();
    const y = input.slice();
    if (SECAGG_TEST_HOOKS.disableMasks) {
      this.#stage = 'masked';
      return { stage: 'masked-input', roundId: this.#p.roundId, from: this.id, masked: y };
    }
    const masks: { seed: Uint8Array; sign: 1 | -1 }[] = stable ? [] : [{ seed: this.#seed!, sign: 1 }];
    for (const v of this.#neighbours) {
      if (!holderSet.has(v)) continue;
      const peer = entryOf(roster, v)!;
      masks.push({ seed: agreeKey(this.#s.privateKey, peer.sPk, `${KEY_INFO_MASK}/${this.#p.roundId}`), sign: sign(this.id, v) });
    }
    accumulateMasks(y, masks);
    for (const m of masks) if (m.seed !== this.#seed) m.seed.fill(0);
    reduceModInPlace(y, bits);
    this.#stage = 'masked';
    return { stage: 'masked-input', roundId: this.#p.roundId, from: this.id, masked: y };
  }

  /** The checks a survivor list must pass before this client signs or answers it. */
  #checkSurvivors(request: UnmaskRequest, stage: string): { survivors: Set<string>; dropped: Set<string> } {
    checkRound(this.#p, request.roundId, 'request');
    if (this.#p.mode === 'stable-pw') throw protocolError('stable-pw rounds have no unmasking stage', 'request');
    const survivors = new Set(request.survivors);
    const dropped = new Set(request.dropped);
    if (survivors.size !== request.survivors.length || dropped.size !== request.dropped.length) throw protocolError('the request repeats a client', 'request');
    for (const v of dropped) if (survivors.has(v)) throw protocolError(`"${v}" is named both survivor and dropped: revealing both shares would unmask its input`, 'request');
    if (!survivors.has(this.id)) throw protocolError('the request does not count this client as a survivor', 'request');
    const holders = new Set(this.#holders);
    const named = new Set([...survivors, ...dropped]);
    if (named.size !== holders.size || [...named].some((v) => !holders.has(v))) throw protocolError('survivors and dropped must partition the clients that shared keys', 'request');
    const t = this.#p.threshold;
    if (survivors.size < t + 1) throw aborted(this.#p.roundId, stage, `only |U3| = ${survivors.size} survivors; t + 1 = ${t + 1} are needed`, 'reconstruct-secrets-threshold', { count: survivors.size, needed: t + 1 });
    return { survivors, dropped };
  }

  /**
   * Consistency check (active variant, Bonawitz §4 round 3): signs the survivor set U3 it is
   * shown, after the same checks as {@link unmask}. The signature binds the round, U3 and U2 \ U3;
   * on a SecAgg+ neighbourhood view it binds the survivor commitment (graph.ts), after checking
   * the statuses of this client and its neighbours against it, so every honest client that
   * answers the same commitment sees the same status for each client they share.
   */
  consistencyCheck(request: UnmaskRequest): ConsistencyMsg {
    this.#expect('masked', 'sign the survivor set');
    if (this.#identity === undefined) throw protocolError('a consistency check was requested of a client without an identity (honest-but-curious variant)', 'request');
    const { survivors: alive, dropped } = this.#checkSurvivors(request, 'consistency-check');
    const roundId = this.#p.roundId;
    const sorted = { survivors: [...request.survivors].sort(), dropped: [...request.dropped].sort() };
    let commitment: string | null = null;
    const roster = this.#roster!;
    if (roster.clients !== undefined) {
      // Neighbourhood view: sign the commitment to every member's status after checking this
      // client's neighbourhood against it (the lists it was shown are the proven leaves).
      const c = request.commitment;
      const n = rosterSize(roster);
      if (c === undefined) throw aborted(roundId, 'consistency-check', 'the neighbourhood request carries no survivor commitment', 'survivors', {});
      const t = this.#p.threshold;
      if (c.clients !== n || !(c.survivors >= alive.size && c.holders >= c.survivors && c.holders <= n)) {
        throw aborted(roundId, 'consistency-check', `the survivor commitment's counts (|U1| = ${c.clients}, |U2| = ${c.holders}, |U3| = ${c.survivors}) do not fit this round of ${n} clients`, 'survivors', { clients: c.clients, holders: c.holders, survivors: c.survivors });
      }
      if (c.survivors < t + 1) throw aborted(roundId, 'consistency-check', `only |U3| = ${c.survivors} survivors; t + 1 = ${t + 1} are needed`, 'reconstruct-secrets-threshold', { count: c.survivors, needed: t + 1 });
      const leaves = new Map(roster.entries.map((e) => [e.x - 1, statusLeaf(e.x, e.id, alive.has(e.id) ? 'survived' : dropped.has(e.id) ? 'dropped' : 'absent')]));
      if (!verifyMerkle(c.root, n, leaves, c.proof)) {
        throw aborted(roundId, 'consistency-check', 'the survivor statuses shown for this client\'s neighbourhood do not match the survivor commitment', 'survivors', {});
      }
      commitment = survivorCommitment(roundId, c);
    }
    const payload = commitment === null ? consistencyPayload(roundId, sorted.survivors, sorted.dropped) : commitmentPayload(roundId, commitment);
    this.#checked = { ...sorted, payload, commitment };
    this.#stage = 'checked';
    const signature = signMessage(this.#identity, CONSISTENCY_CONTEXT, payload);
    return { stage: 'consistency', roundId: this.#p.roundId, from: this.id, signature };
  }

  /**
   * Stage 3: key shares of dropped neighbours, seed shares of surviving ones. Refuses a request
   * naming a peer as both survivor and dropped, one that does not partition the holders, one
   * that does not count this client as a survivor, and any second request. In the active variant
   * it also refuses (CIPHERML_E_SECAGG_ABORTED) a survivor set that differs from the one it
   * signed, and answers only when at least t + 1 distinct survivors' valid signatures over that
   * same set come with the request (a missing or wrong signature aborts).
   */
  unmask(request: UnmaskRequest): UnmaskMsg {
    const roundId = this.#p.roundId;
    if (this.#identity !== undefined && SECAGG_TEST_HOOKS.disableChecks) {
      this.#expect('checked', 'unmask');
    } else if (this.#identity !== undefined) {
      this.#expect('checked', 'unmask');
      const signed = this.#checked!;
      const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((v, i) => v === b[i]);
      checkRound(this.#p, request.roundId, 'request');
      if (!same(request.survivors, signed.survivors) || !same(request.dropped, signed.dropped)) {
        this.#stage = 'unmasked';
        throw aborted(roundId, 'unmask', `the survivor set of the unmasking request (${request.survivors.length} survivors) is not the one this client signed (${signed.survivors.length}): inconsistent survivor sets`, 'survivors', {
          signed: signed.survivors.length,
          requested: request.survivors.length,
        });
      }
      if (signed.commitment !== null && (request.commitment === undefined || survivorCommitment(roundId, request.commitment) !== signed.commitment)) {
        this.#stage = 'unmasked';
        throw aborted(roundId, 'unmask', 'the survivor commitment of the unmasking request is not the one this client signed: inconsistent survivor sets', 'survivors', {});
      }
      const payload = signed.payload;
      const survivors = new Set(signed.survivors);
      const signers = new Set<string>();
      for (const { from, signature } of request.signatures ?? []) {
        const pinned = this.#peers!.get('worker', from);
        if (!survivors.has(from) || signers.has(from) || pinned === undefined || !verifyMessage(pinned, CONSISTENCY_CONTEXT, payload, signature)) {
          this.#stage = 'unmasked';
          throw aborted(roundId, 'unmask', `the consistency signature of "${from}" is ${!survivors.has(from) ? 'from a client outside U3' : signers.has(from) ? 'repeated' : 'not a valid signature over the survivor set this client signed'}`, 'survivors', { signer: from });
        }
        signers.add(from);
      }
      const t = this.#p.threshold;
      if (signers.size < t + 1) {
        this.#stage = 'unmasked';
        throw aborted(roundId, 'unmask', `only ${signers.size} survivors signed U3; t + 1 = ${t + 1} signatures are needed`, 'reconstruct-secrets-threshold', { count: signers.size, needed: t + 1 });
      }
    } else {
      this.#expect('masked', 'unmask');
    }
    const { survivors, dropped } = this.#checkSurvivors(request, 'unmask');
    this.#stage = 'unmasked';
    const keyShares: { of: string; share: Uint8Array }[] = [];
    const seedShares: { of: string; share: Uint8Array }[] = [];
    for (const [from, shares] of this.#received) {
      if (dropped.has(from)) keyShares.push({ of: from, share: shares.keyShare });
      else if (survivors.has(from)) seedShares.push({ of: from, share: shares.seedShare });
    }
    return { stage: 'unmask', roundId, from: this.id, keyShares, seedShares };
  }
}

/** Authenticated data of a share box: round, sender, recipient. */
export function aad(roundId: string, from: string, to: string): Uint8Array {
  return Buffer.from(`cipherml/secagg/v1\0${roundId}\0${from}\0${to}`);
}

