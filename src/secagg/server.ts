import { randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { graphSeedOf, revealedGraphSeed, rosterTree, seedCommitment, seedCommittee, statusLeaf } from './graph.ts';
import { MerkleTree } from './merkle.ts';
import { secAggPlusDegree, seedCommitteeSize } from './params.ts';
import { accumulateMasks, addModInPlace, reduceModInPlace } from './prg.ts';
import { KEY_INFO_MASK, checkRound, entryOf, neighboursOf, protocolError, sign, validateParams } from './messages.ts';
import type * as M from './messages.ts';
import { reconstructSecret, shareFromBytes, type Share } from './shamir.ts';
import { applyMasks, seedOf, sharedMaskPool, type MaskJob } from './unmask.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import { SECAGG_TEST_HOOKS } from './testing.ts';

/**
 * The server's side of a secure-aggregation round (Bonawitz et al., CCS 2017, §4): collects each
 * stage's messages, routes the share boxes, and removes the masks.
 *
 * Invariants:
 * - masked vectors are summed on arrival (memory O(length), not O(n·length));
 * - the round is actively secure exactly when every advertisement is signed: then a
 *   consistency-check stage collects signatures over U3 before unmasking (the clients verify
 *   them; the server only relays);
 * - the unmasked sum of |U3| inputs each in [0, inputBound] lies in [0, |U3|·inputBound]; any
 *   entry outside is CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE naming the round, never a wrong sum.
 */

type ServerStage = 'advertise' | 'reveal' | 'share-keys' | 'masked-input' | 'consistency' | 'unmask' | 'done';

/** Options of {@link SecAggServer}. */
export interface SecAggServerOptions {
  /** Fewest clients that must complete every stage (at least t + 1). */
  readonly minClients: number;
  /** SecAgg+ degree (default: derived for the number of advertisers). */
  readonly degree?: number;
  /** Largest value of one input element (Q − 1); enables the range check of the sum. */
  readonly inputBound?: number;
}

/** The server's result of a round. */
export interface SecAggResult {
  /** Σ_{u ∈ survivors} x_u mod 2^modulusBits. */
  readonly sum: Uint32Array;
  readonly survivors: readonly string[];
  readonly dropped: readonly string[];
  /** PRG masks the server expanded to unmask (|U3| self masks + the dropped clients' pairwise masks). */
  readonly masks: number;
}

/**
 * The server's side: collects each stage's messages, checks them (stage, round, sender, replay,
 * length), routes shares, and removes the masks.
 *
 * @example
 * ```ts
 * const s = new SecAggServer(params, { minClients: 3 });
 * for (const m of adverts) s.receive(m);
 * const roster = s.closeAdvertise();
 * ```
 */
export class SecAggServer {
  readonly #p: M.SecAggParams;
  readonly #minClients: number;
  #stage: ServerStage = 'advertise';
  readonly #adverts = new Map<string, M.AdvertiseMsg>();
  #roster: M.Roster | null = null;
  readonly #shares = new Map<string, M.ShareKeysMsg>();
  #holders: string[] = [];
  /** U3 so far, and Σ of their masked vectors mod 2^k. */
  readonly #masked = new Set<string>();
  readonly #acc: Uint32Array;
  #request: M.UnmaskRequest | null = null;
  readonly #signatures = new Map<string, Uint8Array>();
  readonly #unmasks = new Map<string, M.UnmaskMsg>();
  #active = false;
  #holderSet = new Set<string>();
  #survivorSet = new Set<string>();
  readonly #degree: number | undefined;
  #rosterTree: MerkleTree | null = null;
  /** Neighbourhood consistency check: the survivor commitment and its status tree. */
  #statusTree: MerkleTree | null = null;
  #commitment: Omit<M.SurvivorCommitmentView, 'proof'> | null = null;
  /** Lookup sets of the requests views are cut from (the full request, per stage). */
  readonly #requestSets = new WeakMap<M.UnmaskRequest, { survivors: Set<string>; dropped: Set<string>; signatures: Map<string, M.SurvivorSignature> | null }>();
  readonly #inputBound: number | undefined;
  /** Commit–reveal of the graph seed: the committee's entries (in committee order) and reveals so far. */
  #committee: M.RosterEntry[] = [];
  readonly #reveals = new Map<string, Uint8Array>();

  constructor(params: M.SecAggParams, options: SecAggServerOptions) {
    validateParams(params);
    this.#p = params;
    this.#minClients = Math.max(options.minClients, params.mode === 'stable-pw' ? 2 : params.threshold + 1);
    this.#degree = options.degree;
    this.#inputBound = options.inputBound;
    this.#acc = new Uint32Array(params.length);
  }

  /** True when every advertisement was signed: the round runs the consistency check. */
  get active(): boolean {
    return this.#active;
  }

  /** The stage the server is collecting. */
  get stage(): ServerStage {
    return this.#stage;
  }

  /** Accepts one client message for the current stage; anything else is a typed refusal. */
  receive(msg: M.AdvertiseMsg | M.RevealMsg | M.ShareKeysMsg | M.MaskedInputMsg | M.ConsistencyMsg | M.UnmaskMsg): void {
    checkRound(this.#p, msg.roundId, 'message');
    if (msg.stage !== this.#stage) throw protocolError(`a ${msg.stage} message while collecting ${this.#stage} (out of stage or replayed)`, 'stage');
    switch (msg.stage) {
      case 'advertise':
        if (this.#adverts.has(msg.from)) throw protocolError(`second advertisement from "${msg.from}" (replayed)`, 'from');
        if (msg.cPk.length !== 32 || msg.sPk.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'public keys must be 32 bytes', { param: 'publicKey' });
        if (msg.signature.length !== 0 && msg.signature.length !== 64) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `an Ed25519 signature is 64 bytes, got ${msg.signature.length}`, { param: 'signature' });
        if (msg.signature.length !== 0 && this.#p.mode === 'secagg+' && msg.commitment?.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a signed SecAgg+ advertisement carries a 32-byte graph-seed commitment, got ${msg.commitment?.length ?? 0} bytes`, { param: 'commitment' });
        if (msg.commitment !== undefined && msg.commitment.length !== 0 && msg.commitment.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a graph-seed commitment is 32 bytes, got ${msg.commitment.length}`, { param: 'commitment' });
        this.#adverts.set(msg.from, msg);
        return;
      case 'reveal': {
        const member = this.#committee.find((e) => e.id === msg.from);
        if (member === undefined) throw protocolError(`"${msg.from}" is not on the graph-seed committee`, 'from');
        if (this.#reveals.has(msg.from)) throw protocolError(`second reveal from "${msg.from}" (replayed)`, 'from');
        if (msg.reveal.length !== 32 || !Buffer.from(seedCommitment(this.#p.roundId, msg.from, msg.reveal)).equals(Buffer.from(member.commitment!))) {
          throw protocolError(`the reveal of "${msg.from}" does not open the commitment it advertised`, 'reveal');
        }
        this.#reveals.set(msg.from, msg.reveal);
        return;
      }
      case 'share-keys': {
        if (entryOf(this.#roster!, msg.from) === undefined) throw protocolError(`"${msg.from}" is not in the roster`, 'from');
        if (this.#shares.has(msg.from)) throw protocolError(`second share message from "${msg.from}" (replayed)`, 'from');
        const expected = this.#p.mode === 'stable-pw' ? [] : [msg.from, ...neighboursOf(msg.from, this.#roster!, this.#p.mode)].sort();
        const got = msg.boxes.map((b) => b.to).sort();
        if (got.length !== expected.length || got.some((g, i) => g !== expected[i])) throw protocolError(`"${msg.from}" must send one box to each of its ${expected.length} share holders`, 'boxes');
        this.#shares.set(msg.from, msg);
        return;
      }
      case 'masked-input':
        if (!this.#holderSet.has(msg.from)) throw protocolError(`"${msg.from}" did not share keys this round`, 'from');
        if (this.#masked.has(msg.from)) throw protocolError(`second masked input from "${msg.from}" (replayed)`, 'from');
        if (!(msg.masked instanceof Uint32Array) || msg.masked.length !== this.#p.length) {
          throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `masked input of "${msg.from}" has ${msg.masked.length} values, expected ${this.#p.length}`, { param: 'masked' });
        }
        this.#masked.add(msg.from);
        addModInPlace(this.#acc, msg.masked, this.#p.modulusBits);
        return;
      case 'consistency':
        if (!this.#survivorSet.has(msg.from)) throw protocolError(`"${msg.from}" is not a survivor`, 'from');
        if (this.#signatures.has(msg.from)) throw protocolError(`second consistency signature from "${msg.from}" (replayed)`, 'from');
        if (msg.signature.length !== 64) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `an Ed25519 signature is 64 bytes, got ${msg.signature.length}`, { param: 'signature' });
        this.#signatures.set(msg.from, msg.signature);
        return;
      case 'unmask':
        if (!this.#survivorSet.has(msg.from)) throw protocolError(`"${msg.from}" is not a survivor`, 'from');
        if (this.#active && !this.#signatures.has(msg.from)) throw protocolError(`"${msg.from}" did not sign the survivor set`, 'from');
        if (this.#unmasks.has(msg.from)) throw protocolError(`second unmask message from "${msg.from}" (replayed)`, 'from');
        this.#unmasks.set(msg.from, msg);
        return;
    }
  }

  #need(count: number, stage: string): void {
    if (count < this.#minClients) {
      throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `${count} clients completed ${stage}; at least ${this.#minClients} are needed`, { param: 'min-clients', details: { stage, count } });
    }
  }

  /** Ends stage 0: the roster (U1) with Shamir x-coordinates and the SecAgg+ graph. */
  closeAdvertise(): M.Roster {
    this.#expectStage('advertise');
    this.#need(this.#adverts.size, 'advertise keys');
    const ids = [...this.#adverts.keys()].sort();
    const entries = ids.map((id, i) => {
      const a = this.#adverts.get(id)!;
      return { id, x: i + 1, cPk: a.cPk, sPk: a.sPk, signature: a.signature, ...(a.commitment === undefined || a.commitment.length === 0 ? {} : { commitment: a.commitment }) };
    });
    this.#active = entries.every((e) => e.signature.length > 0);
    const degree = this.#p.mode === 'secagg+' ? Math.min(ids.length - 1, this.#degree ?? secAggPlusDegree(ids.length)) : ids.length - 1;
    if (this.#p.mode === 'secagg+' && degree % 2 !== 0 && degree < ids.length - 1) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the SecAgg+ degree must be even, got ${degree}`, { param: 'degree' });
    }
    // SecAgg+: the seed is derived from the roster commitment, so every client can check it.
    this.#rosterTree = this.#p.mode === 'secagg+' ? rosterTree(entries) : null;
    if (this.#rosterTree !== null && this.#active && degree < entries.length - 1) {
      // Actively secure neighbourhood views: the root fixes U1 and the committee; the seed waits
      // for the committee's reveals (closeReveal).
      const root = this.#rosterTree.root;
      const xs = seedCommittee(this.#p.roundId, entries.length, root, this.#p.seedCommittee ?? seedCommitteeSize(entries.length));
      this.#committee = xs.map((x) => entries[x - 1]!);
      this.#roster = { roundId: this.#p.roundId, entries, degree, graphSeed: '', root };
      this.#stage = 'reveal';
      return this.#roster;
    }
    const graphSeed = this.#rosterTree !== null ? graphSeedOf(this.#p.roundId, entries.length, this.#rosterTree.root) : randomBytes(32).toString('hex');
    this.#roster = { roundId: this.#p.roundId, entries, degree, graphSeed };
    this.#stage = this.#p.mode === 'stable-pw' ? 'masked-input' : 'share-keys';
    if (this.#p.mode === 'stable-pw') {
      this.#holders = ids;
      this.#holderSet = new Set(ids);
    }
    return this.#roster;
  }

  /** The graph-seed committee (ids, committee order); empty unless the round runs commit–reveal. */
  get committee(): readonly string[] {
    return this.#committee.map((e) => e.id);
  }

  /**
   * The commit–reveal request for committee member `id`: |U1|, the roster root, and the member's
   * own leaf position with its inclusion proof.
   */
  revealFor(id: string): M.RevealRequest {
    this.#expectStage('reveal');
    const me = this.#committee.find((e) => e.id === id);
    if (me === undefined) throw protocolError(`"${id}" is not on the graph-seed committee`, 'id');
    const r = this.#roster!;
    return { roundId: r.roundId, clients: r.entries.length, root: r.root!, x: me.x, proof: this.#rosterTree!.prove([me.x - 1]), committee: this.#committee.length };
  }

  /**
   * Ends the commit–reveal stage: the roster with the graph seed derived from the committee's
   * reveals. A missing reveal fails the attempt (CIPHERML_E_ROUND_FAILED): choosing a seed from
   * the reveals that did arrive would let the server grind.
   */
  closeReveal(): M.Roster {
    this.#expectStage('reveal');
    const missing = this.#committee.filter((e) => !this.#reveals.has(e.id)).map((e) => e.id);
    if (missing.length > 0) {
      throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `round "${this.#p.roundId}": ${missing.length} of ${this.#committee.length} graph-seed committee members (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}) did not reveal; the seed needs every committee reveal, so this attempt is aborted and the round is retried`, {
        param: 'min-clients',
        details: { stage: 'reveal', round: this.#p.roundId, missing },
      });
    }
    const r = this.#roster!;
    const reveals = this.#committee.map((e) => this.#reveals.get(e.id)!);
    const graphSeed = revealedGraphSeed(r.roundId, r.entries.length, r.root!, this.#committee.map((e, i) => ({ x: e.x, id: e.id, reveal: reveals[i]! })));
    this.#roster = { ...r, graphSeed, committee: this.#committee, reveals };
    this.#stage = 'share-keys';
    return this.#roster;
  }

  /** Ends stage 1: U2 and each holder's inbox. */
  closeShareKeys(): Map<string, M.ShareInbox> {
    this.#expectStage('share-keys');
    this.#need(this.#shares.size, 'share keys');
    this.#holders = [...this.#shares.keys()].sort();
    this.#holderSet = new Set(this.#holders);
    const boxesTo = new Map<string, { from: string; box: Uint8Array }[]>(this.#holders.map((v) => [v, []]));
    for (const u of this.#holders) for (const b of this.#shares.get(u)!.boxes) boxesTo.get(b.to)?.push({ from: u, box: b.box });
    const inboxes = new Map<string, M.ShareInbox>();
    for (const v of this.#holders) {
      const holders = this.#sparse() ? this.#local(v).filter((h) => this.#holderSet.has(h)) : this.#holders;
      inboxes.set(v, { roundId: this.#p.roundId, holders, boxes: boxesTo.get(v)! });
    }
    this.#stage = 'masked-input';
    return inboxes;
  }

  /**
   * True when clients get neighbourhood views (SecAgg+, k < n − 1): each receives O(k) roster
   * entries, holders and survivors instead of O(n) (Bell et al. §3); in the actively secure
   * variant with the Merkle proofs that let it check them (O(k·log(n/k)) hashes).
   */
  #sparse(): boolean {
    const r = this.#roster;
    return r !== null && this.#p.mode === 'secagg+' && r.degree < r.entries.length - 1;
  }

  /** A client and its neighbours, sorted. */
  #local(id: string): string[] {
    return [id, ...neighboursOf(id, this.#roster!, this.#p.mode)].sort();
  }

  /** Leaf indices (x − 1) of a client's neighbourhood. */
  #leaves(local: Iterable<string>): number[] {
    return [...local].map((id) => entryOf(this.#roster!, id)!.x - 1);
  }

  /**
   * The roster as `id` receives it: all of U1, or its neighbourhood view (itself and its k
   * neighbours, with |U1|, and in the actively secure variant the roster's Merkle root and the
   * inclusion proof of those entries).
   */
  rosterFor(id: string): M.Roster {
    const r = this.#roster;
    if (r === null) throw protocolError('no roster before the advertise stage is closed', 'stage');
    if (this.#stage === 'reveal') throw protocolError('no roster before the graph-seed committee has revealed (closeReveal)', 'stage');
    if (!this.#sparse()) return r;
    const local = new Set(this.#local(id));
    const view = { roundId: r.roundId, entries: [...local].map((v) => entryOf(r, v)!).sort((a, b) => a.x - b.x), degree: r.degree, graphSeed: r.graphSeed, clients: r.entries.length };
    if (!this.#active) return view;
    // One batched proof of the neighbourhood and the committee (commit–reveal of the seed).
    const leaves = [...this.#leaves(local), ...this.#committee.map((e) => e.x - 1)];
    return { ...view, root: this.#rosterTree!.root, proof: this.#rosterTree!.prove(leaves), committee: this.#committee, reveals: r.reveals ?? [] };
  }

  /**
   * The survivor request as `id` receives it: whole, or restricted to its neighbourhood (sparse
   * SecAgg+; actively secure: with the survivor commitment, its proof, and the signatures of the
   * neighbourhood only).
   */
  requestFor(id: string, request: M.UnmaskRequest): M.UnmaskRequest {
    if (!this.#sparse()) return request;
    const local = this.#local(id);
    let sets = this.#requestSets.get(request);
    if (sets === undefined) {
      sets = { survivors: new Set(request.survivors), dropped: new Set(request.dropped), signatures: request.signatures === undefined ? null : new Map(request.signatures.map((s) => [s.from, s])) };
      this.#requestSets.set(request, sets);
    }
    const { survivors, dropped, signatures: signed } = sets;
    // O(k) per view: the neighbourhood is sorted, so the filtered lists are too.
    const view: M.UnmaskRequest = { roundId: request.roundId, survivors: local.filter((v) => survivors.has(v)), dropped: local.filter((v) => dropped.has(v)) };
    if (!this.#active) return view;
    const signatures = signed === null ? undefined : local.flatMap((v) => signed.get(v) ?? []);
    return { ...view, ...(signatures === undefined ? {} : { signatures }), commitment: { ...this.#commitment!, proof: this.#statusTree!.prove(this.#leaves(local)) } };
  }

  /**
   * Ends stage 2: the survivor set U3 — the consistency-check request in the active variant, else
   * the unmasking request (stable-pw: finishes the round directly).
   */
  closeMaskedInput(): M.UnmaskRequest | SecAggResult {
    this.#expectStage('masked-input');
    const survivors = [...this.#masked].sort();
    if (this.#p.mode === 'stable-pw') {
      if (survivors.length !== this.#holders.length) {
        throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `stable-pw cannot recover from dropouts: ${this.#holders.length - survivors.length} of ${this.#holders.length} clients sent no masked input`, { param: 'mode' });
      }
      this.#stage = 'done';
      const sum = this.#acc;
      this.#checkRange(sum, survivors.length);
      return { sum, survivors, dropped: [], masks: 0 };
    }
    this.#need(survivors.length, 'masked input');
    this.#request = { roundId: this.#p.roundId, survivors, dropped: this.#holders.filter((h) => !this.#masked.has(h)) };
    this.#survivorSet = new Set(survivors);
    if (this.#active && this.#sparse()) {
      const status = (id: string) => (this.#survivorSet.has(id) ? 'survived' : this.#holderSet.has(id) ? 'dropped' : 'absent');
      const leaves: Buffer[] = [];
      for (const e of this.#roster!.entries) leaves[e.x - 1] = statusLeaf(e.x, e.id, status(e.id));
      this.#statusTree = new MerkleTree(leaves);
      this.#commitment = { clients: leaves.length, holders: this.#holders.length, survivors: survivors.length, root: this.#statusTree.root };
    }
    this.#stage = this.#active ? 'consistency' : 'unmask';
    return this.#request;
  }

  /**
   * Ends the consistency check (active variant): the unmasking request with the signatures of
   * U4 ⊆ U3. Fails when fewer than t + 1 survivors signed.
   */
  closeConsistency(): M.UnmaskRequest {
    this.#expectStage('consistency');
    const t = this.#p.threshold;
    if (this.#signatures.size < Math.max(t + 1, this.#minClients)) {
      throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `${this.#signatures.size} survivors signed the survivor set; at least ${Math.max(t + 1, this.#minClients)} are needed`, { param: 'min-clients', details: { stage: 'consistency-check', count: this.#signatures.size } });
    }
    const signatures: M.SurvivorSignature[] = [...this.#signatures].sort(([a], [b]) => (a < b ? -1 : 1)).map(([from, signature]) => ({ from, signature }));
    this.#request = { ...this.#request!, signatures };
    this.#stage = 'unmask';
    return this.#request;
  }

  /** Ends stage 3: reconstructs the secrets it needs and returns the exact sum, or fails. */
  finish(): SecAggResult {
    const { sum, jobs, req } = this.#prepareFinish();
    accumulateMasks(sum, jobs.map((j) => ({ seed: seedOf(j), sign: j.sign })));
    return this.#complete(sum, req, jobs.length);
  }

  /**
   * {@link finish} with the mask expansion spread over `pool`'s worker threads (the server's
   * dominant cost; see unmask.ts). Same result.
   */
  async finishParallel(pool: WorkerPool | null = sharedMaskPool()): Promise<SecAggResult> {
    const { sum, jobs, req } = this.#prepareFinish();
    await applyMasks(sum, jobs, pool);
    return this.#complete(sum, req, jobs.length);
  }

  #complete(sum: Uint32Array, req: M.UnmaskRequest, masks: number): SecAggResult {
    if (!SECAGG_TEST_HOOKS.disableMasks) reduceModInPlace(sum, this.#p.modulusBits);
    this.#stage = 'done';
    this.#checkRange(sum, req.survivors.length);
    return { sum, survivors: req.survivors, dropped: req.dropped, masks };
  }

  /** Reconstructs the secrets and lists the masks to remove (seed, sign). */
  #prepareFinish(): { sum: Uint32Array; jobs: MaskJob[]; req: M.UnmaskRequest } {
    this.#expectStage('unmask');
    const req = this.#request!;
    this.#need(this.#unmasks.size, 'unmasking');
    const roster = this.#roster!;
    const xOf = new Map(roster.entries.map((e) => [e.id, e.x]));
    // Index every returned share by whose secret it is: one pass over the unmask messages.
    const index = { keyShares: new Map<string, Share[]>(), seedShares: new Map<string, Share[]>() };
    for (const m of this.#unmasks.values()) {
      for (const kind of ['keyShares', 'seedShares'] as const) {
        for (const hit of m[kind]) {
          const share = shareFromBytes(hit.share);
          if (share.x !== xOf.get(m.from)) throw protocolError(`"${m.from}" returned a share with x = ${share.x}, its coordinate is ${xOf.get(m.from)}`, 'share');
          const list = index[kind].get(hit.of);
          if (list === undefined) index[kind].set(hit.of, [share]);
          else if (list.some((s) => s.x === share.x)) throw protocolError(`"${m.from}" returned two shares of "${hit.of}"`, 'share');
          else list.push(share);
        }
      }
    }
    const collect = (of: string, kind: 'keyShares' | 'seedShares'): Share[] => {
      const shares = index[kind].get(of) ?? [];
      if (shares.length < this.#p.threshold + 1) {
        throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `only ${shares.length} shares of "${of}" arrived; ${this.#p.threshold + 1} are needed to remove its masks (too many dropouts)`, { param: 'threshold', details: { client: of } });
      }
      return shares;
    };
    const sum = this.#acc;
    const jobs: MaskJob[] = [];
    if (SECAGG_TEST_HOOKS.disableMasks) return { sum, jobs, req };
    for (const u of req.survivors) jobs.push({ seed: reconstructSecret(collect(u, 'seedShares'), this.#p.threshold), sign: -1 });
    for (const v of req.dropped) {
      const sk = reconstructSecret(collect(v, 'keyShares'), this.#p.threshold);
      for (const u of neighboursOf(v, roster, this.#p.mode)) {
        if (!this.#survivorSet.has(u)) continue;
        const peer = entryOf(roster, u)!;
        // y_u holds Δ(u,v)·PRG(s_uv); remove it.
        jobs.push({ privateKey: sk, peerPublicKey: peer.sPk, info: `${KEY_INFO_MASK}/${this.#p.roundId}`, sign: sign(u, v) > 0 ? -1 : 1 });
      }
    }
    return { sum, jobs, req };
  }

  /** Slot integrity: each entry of a sum of `count` inputs in [0, inputBound] is at most count·inputBound. */
  #checkRange(sum: Uint32Array, count: number): void {
    if (this.#inputBound === undefined || SECAGG_TEST_HOOKS.disableRangeCheck) return;
    const bound = count * this.#inputBound;
    for (let i = 0; i < sum.length; i++) {
      if (sum[i]! > bound) {
        throw new CipherMLError('CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE', `round "${this.#p.roundId}": entry ${i} of the unmasked sum is ${sum[i]}, above ${count} survivors × ${this.#inputBound} = ${bound}: a client sent a value outside the quantized range, or a wrong share or mask corrupted the sum`, {
          param: 'round',
          details: { round: this.#p.roundId, index: i, value: sum[i], bound },
        });
      }
    }
  }

  #expectStage(stage: ServerStage): void {
    if (this.#stage !== stage) throw protocolError(`cannot close ${stage} while at ${this.#stage}`, 'stage');
  }
}
