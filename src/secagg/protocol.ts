import { randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { agreeKey, generateX25519KeyPair, openBox, sealBox, type X25519KeyPair } from './keys.ts';
import { accumulateMask, addModInPlace, expandMask, reduceModInPlace } from './prg.ts';
import { reconstructSecret, shareFromBytes, shareToBytes, splitSecret, type Share } from './shamir.ts';

/**
 * Secure aggregation by pairwise masks (Bonawitz et al., "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning", CCS 2017, §4, honest-but-curious variant) with the
 * SecAgg+ neighbourhood graph (Bell et al., CCS 2020, §3) and MindSpore Federated's modes:
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
}

/** One participant as the server announces it. */
export interface RosterEntry {
  readonly id: string;
  /** Shamir x-coordinate (1-based, distinct). */
  readonly x: number;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
}

/** Server → clients after stage 0: U1 and the SecAgg+ graph seed. */
export interface Roster {
  readonly roundId: string;
  readonly entries: readonly RosterEntry[];
  /** Neighbours per client for `secagg+` (even, < |U1|); ignored by other modes. */
  readonly degree: number;
  /** Seed of the neighbourhood permutation (hex); ignored by other modes. */
  readonly graphSeed: string;
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

/** Server → survivors after stage 2. */
export interface UnmaskRequest {
  readonly roundId: string;
  /** U3: clients whose masked input arrived. */
  readonly survivors: readonly string[];
  /** U2 \ U3: clients that shared keys but sent no masked input. */
  readonly dropped: readonly string[];
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

/** Checks on the threshold (MindSpore's rules for reconstruct-secrets-threshold). */
export interface ThresholdPolicy {
  /** Whether the server may collude with clients: then t must exceed 2n/3, else n/2. */
  readonly collusion: boolean;
  /** Refuse (default) or only warn when the rule is broken. */
  readonly onViolation?: 'refuse' | 'warn';
}

const KEY_INFO_SHARE = 'share-box';
const KEY_INFO_MASK = 'pairwise-mask';

/**
 * Checks t against the number of share holders n: t + 1 ≤ n always; t > n/2 (no collusion) or
 * t > 2n/3 (server and clients may collude), refused or returned as a warning.
 *
 * @example
 * ```ts
 * checkThreshold(4, 5, { collusion: false }); // ok: 4 > 2.5 and 5 ≤ 5
 * ```
 */
export function checkThreshold(threshold: number, holders: number, policy: ThresholdPolicy): string | null {
  if (threshold + 1 > holders) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `reconstruction needs threshold + 1 = ${threshold + 1} share holders, only ${holders} take part`, { param: 'reconstruct-secrets-threshold' });
  }
  const bound = policy.collusion ? (2 * holders) / 3 : holders / 2;
  if (threshold > bound) return null;
  const msg = `threshold ${threshold} must exceed ${policy.collusion ? '2n/3' : 'n/2'} = ${bound.toFixed(2)} for n = ${holders} share holders${policy.collusion ? ' when the server may collude with clients' : ''}`;
  if ((policy.onViolation ?? 'refuse') === 'refuse') throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', msg, { param: 'reconstruct-secrets-threshold' });
  return msg;
}

function validateParams(p: SecAggParams): void {
  assertIntegerInRange(p.length, 'length', 1, 1 << 28);
  assertIntegerInRange(p.modulusBits, 'modulusBits', 1, 32);
  assertIntegerInRange(p.threshold, 'threshold', 1, 1 << 20);
}

function protocolError(problem: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PROTOCOL', problem, { param });
}

function checkRound(params: SecAggParams, roundId: string, param: string): void {
  if (roundId !== params.roundId) throw protocolError(`message of round "${roundId}" in round "${params.roundId}" (replayed or misrouted)`, param);
}

/** Δ(u,v): +1 when u sorts before v, −1 otherwise. */
function sign(u: string, v: string): 1 | -1 {
  return u < v ? 1 : -1;
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

/**
 * Neighbours of `id` in the SecAgg+ graph: the ids placed on a ring by the seeded permutation,
 * each linked to the degree/2 nearest on either side (a Harary graph, Bell et al. §3.1). In the
 * other modes every other participant is a neighbour. The relation is symmetric.
 *
 * @example
 * ```ts
 * neighboursOf('c3', roster, 'secagg+'); // ['c1', 'c7', …] — roster.degree ids
 * ```
 */
export function neighboursOf(id: string, roster: Roster, mode: SecAggMode): string[] {
  const ids = roster.entries.map((e) => e.id);
  if (mode !== 'secagg+' || roster.degree >= ids.length - 1) return ids.filter((x) => x !== id).sort();
  const { ring, position } = ringOf(roster);
  const i = position.get(id) ?? -1;
  const half = roster.degree / 2;
  const out = new Set<string>();
  for (let k = 1; k <= half; k++) {
    out.add(ring[(i + k) % ring.length]!);
    out.add(ring[(i - k + ring.length) % ring.length]!);
  }
  return [...out].sort();
}

/** The SecAgg+ ring of a roster, computed once per roster object (every client and the server ask for it). */
const RINGS = new WeakMap<Roster, { readonly ring: readonly string[]; readonly position: ReadonlyMap<string, number> }>();

function ringOf(roster: Roster): { readonly ring: readonly string[]; readonly position: ReadonlyMap<string, number> } {
  let hit = RINGS.get(roster);
  if (hit === undefined) {
    const ring = permute(roster.entries.map((e) => e.id), roster.graphSeed);
    hit = { ring, position: new Map(ring.map((id, i) => [id, i])) };
    RINGS.set(roster, hit);
  }
  return hit;
}

/**
 * The SecAgg+ degree for n clients: the smallest even k ≥ 2⌈log2 n⌉ + 2, capped at n − 1.
 *
 * @example
 * ```ts
 * secAggPlusDegree(1000); // 22
 * ```
 */
export function secAggPlusDegree(n: number): number {
  const k = 2 * Math.ceil(Math.log2(Math.max(2, n))) + 2;
  return Math.min(n - 1, k % 2 === 0 ? k : k + 1);
}

type ClientStage = 'new' | 'advertised' | 'shared' | 'masked' | 'unmasked';

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

  constructor(id: string, params: SecAggParams) {
    validateParams(params);
    this.id = id;
    this.#p = params;
    this.#c = generateX25519KeyPair();
    this.#s = generateX25519KeyPair();
  }

  #expect(stage: ClientStage, next: string): void {
    if (this.#stage !== stage) throw protocolError(`cannot ${next} at stage "${this.#stage}" (out of order or replayed request)`, 'stage');
  }

  /** Stage 0: two fresh X25519 public keys. */
  advertise(): AdvertiseMsg {
    this.#expect('new', 'advertise keys');
    this.#stage = 'advertised';
    return { stage: 'advertise', roundId: this.#p.roundId, from: this.id, cPk: this.#c.publicKey, sPk: this.#s.publicKey };
  }

  /** Stage 1: Shamir shares of s_u^SK and b_u for every neighbour (itself included), each sealed for its recipient. */
  shareKeys(roster: Roster): ShareKeysMsg {
    this.#expect('advertised', 'share keys');
    checkRound(this.#p, roster.roundId, 'roster');
    const me = roster.entries.find((e) => e.id === this.id);
    if (me === undefined || Buffer.compare(Buffer.from(me.sPk), Buffer.from(this.#s.publicKey)) !== 0 || Buffer.compare(Buffer.from(me.cPk), Buffer.from(this.#c.publicKey)) !== 0) {
      throw protocolError('the roster does not list this client with the keys it advertised', 'roster');
    }
    const ids = new Set<string>();
    const xs = new Set<number>();
    for (const e of roster.entries) {
      if (ids.has(e.id) || xs.has(e.x)) throw protocolError(`the roster repeats ${ids.has(e.id) ? `id "${e.id}"` : `x = ${e.x}`}`, 'roster');
      ids.add(e.id);
      xs.add(e.x);
    }
    this.#roster = roster;
    this.#neighbours = neighboursOf(this.id, roster, this.#p.mode);
    this.#stage = 'shared';
    if (this.#p.mode === 'stable-pw') return { stage: 'share-keys', roundId: this.#p.roundId, from: this.id, boxes: [] };
    const holders = [me, ...this.#neighbours.map((n) => roster.entries.find((e) => e.id === n)!)];
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
    this.#holders = holders;
    if (!stable) {
      for (const { from, box } of inbox.boxes) {
        const sender = roster.entries.find((e) => e.id === from);
        if (sender === undefined || (from !== this.id && !this.#neighbours.includes(from))) throw protocolError(`a share from "${from}", who is not a neighbour`, 'inbox');
        if (this.#received.has(from)) throw protocolError(`two shares from "${from}"`, 'inbox');
        const plain = openBox(agreeKey(this.#c.privateKey, sender.cPk, KEY_INFO_SHARE), box, aad(this.#p.roundId, from, this.id));
        if (plain.length !== 140) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a share box from "${from}" holds ${plain.length} bytes`, { param: 'inbox' });
        this.#received.set(from, { keyShare: plain.subarray(0, 70), seedShare: plain.subarray(70) });
      }
    }
    const y = input.slice();
    if (!stable) accumulateMask(y, this.#seed!, 1);
    for (const v of this.#neighbours) {
      if (!holders.includes(v)) continue;
      const peer = roster.entries.find((e) => e.id === v)!;
      accumulateMask(y, agreeKey(this.#s.privateKey, peer.sPk, `${KEY_INFO_MASK}/${this.#p.roundId}`), sign(this.id, v));
    }
    reduceModInPlace(y, bits);
    this.#stage = 'masked';
    return { stage: 'masked-input', roundId: this.#p.roundId, from: this.id, masked: y };
  }

  /**
   * Stage 3: key shares of dropped neighbours, seed shares of surviving ones. Refuses a request
   * naming a peer as both survivor and dropped, one that does not partition the holders, one
   * that does not count this client as a survivor, and any second request.
   */
  unmask(request: UnmaskRequest): UnmaskMsg {
    this.#expect('masked', 'unmask');
    checkRound(this.#p, request.roundId, 'request');
    if (this.#p.mode === 'stable-pw') throw protocolError('stable-pw rounds have no unmasking stage', 'request');
    const survivors = new Set(request.survivors);
    const dropped = new Set(request.dropped);
    for (const v of dropped) if (survivors.has(v)) throw protocolError(`"${v}" is named both survivor and dropped: revealing both shares would unmask its input`, 'request');
    if (!survivors.has(this.id)) throw protocolError('the request does not count this client as a survivor', 'request');
    const holders = new Set(this.#holders);
    const named = new Set([...survivors, ...dropped]);
    if (named.size !== holders.size || [...named].some((v) => !holders.has(v))) throw protocolError('survivors and dropped must partition the clients that shared keys', 'request');
    if (survivors.size < this.#p.threshold + 1) throw protocolError(`${survivors.size} survivors cannot reconstruct with threshold ${this.#p.threshold}`, 'request');
    this.#stage = 'unmasked';
    const keyShares: { of: string; share: Uint8Array }[] = [];
    const seedShares: { of: string; share: Uint8Array }[] = [];
    for (const [from, shares] of this.#received) {
      if (dropped.has(from)) keyShares.push({ of: from, share: shares.keyShare });
      else if (survivors.has(from)) seedShares.push({ of: from, share: shares.seedShare });
    }
    return { stage: 'unmask', roundId: this.#p.roundId, from: this.id, keyShares, seedShares };
  }
}

function aad(roundId: string, from: string, to: string): Uint8Array {
  return Buffer.from(`cipherml/secagg/v1\0${roundId}\0${from}\0${to}`);
}

type ServerStage = 'advertise' | 'share-keys' | 'masked-input' | 'unmask' | 'done';

/** The server's result of a round. */
export interface SecAggResult {
  /** Σ_{u ∈ survivors} x_u mod 2^modulusBits. */
  readonly sum: Uint32Array;
  readonly survivors: readonly string[];
  readonly dropped: readonly string[];
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
  readonly #p: SecAggParams;
  readonly #minClients: number;
  #stage: ServerStage = 'advertise';
  readonly #adverts = new Map<string, AdvertiseMsg>();
  #roster: Roster | null = null;
  readonly #shares = new Map<string, ShareKeysMsg>();
  #holders: string[] = [];
  readonly #masked = new Map<string, Uint32Array>();
  #request: UnmaskRequest | null = null;
  readonly #unmasks = new Map<string, UnmaskMsg>();

  constructor(params: SecAggParams, options: { minClients: number; degree?: number }) {
    validateParams(params);
    this.#p = params;
    this.#minClients = Math.max(options.minClients, params.mode === 'stable-pw' ? 2 : params.threshold + 1);
    this.#degree = options.degree;
  }

  readonly #degree: number | undefined;

  /** The stage the server is collecting. */
  get stage(): ServerStage {
    return this.#stage;
  }

  /** Accepts one client message for the current stage; anything else is a typed refusal. */
  receive(msg: AdvertiseMsg | ShareKeysMsg | MaskedInputMsg | UnmaskMsg): void {
    checkRound(this.#p, msg.roundId, 'message');
    if (msg.stage !== this.#stage) throw protocolError(`a ${msg.stage} message while collecting ${this.#stage} (out of stage or replayed)`, 'stage');
    switch (msg.stage) {
      case 'advertise':
        if (this.#adverts.has(msg.from)) throw protocolError(`second advertisement from "${msg.from}" (replayed)`, 'from');
        if (msg.cPk.length !== 32 || msg.sPk.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'public keys must be 32 bytes', { param: 'publicKey' });
        this.#adverts.set(msg.from, msg);
        return;
      case 'share-keys': {
        if (!this.#roster!.entries.some((e) => e.id === msg.from)) throw protocolError(`"${msg.from}" is not in the roster`, 'from');
        if (this.#shares.has(msg.from)) throw protocolError(`second share message from "${msg.from}" (replayed)`, 'from');
        const expected = this.#p.mode === 'stable-pw' ? [] : [msg.from, ...neighboursOf(msg.from, this.#roster!, this.#p.mode)].sort();
        const got = msg.boxes.map((b) => b.to).sort();
        if (got.length !== expected.length || got.some((g, i) => g !== expected[i])) throw protocolError(`"${msg.from}" must send one box to each of its ${expected.length} share holders`, 'boxes');
        this.#shares.set(msg.from, msg);
        return;
      }
      case 'masked-input':
        if (!this.#holders.includes(msg.from)) throw protocolError(`"${msg.from}" did not share keys this round`, 'from');
        if (this.#masked.has(msg.from)) throw protocolError(`second masked input from "${msg.from}" (replayed)`, 'from');
        if (!(msg.masked instanceof Uint32Array) || msg.masked.length !== this.#p.length) {
          throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `masked input of "${msg.from}" has ${msg.masked.length} values, expected ${this.#p.length}`, { param: 'masked' });
        }
        this.#masked.set(msg.from, msg.masked);
        return;
      case 'unmask':
        if (!this.#request!.survivors.includes(msg.from)) throw protocolError(`"${msg.from}" is not a survivor`, 'from');
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
  closeAdvertise(): Roster {
    this.#expectStage('advertise');
    this.#need(this.#adverts.size, 'advertise keys');
    const ids = [...this.#adverts.keys()].sort();
    const entries = ids.map((id, i) => ({ id, x: i + 1, cPk: this.#adverts.get(id)!.cPk, sPk: this.#adverts.get(id)!.sPk }));
    const degree = this.#p.mode === 'secagg+' ? Math.min(ids.length - 1, this.#degree ?? secAggPlusDegree(ids.length)) : ids.length - 1;
    if (this.#p.mode === 'secagg+' && degree % 2 !== 0 && degree < ids.length - 1) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the SecAgg+ degree must be even, got ${degree}`, { param: 'degree' });
    }
    this.#roster = { roundId: this.#p.roundId, entries, degree, graphSeed: randomBytes(32).toString('hex') };
    this.#stage = this.#p.mode === 'stable-pw' ? 'masked-input' : 'share-keys';
    if (this.#p.mode === 'stable-pw') this.#holders = ids;
    return this.#roster;
  }

  /** Ends stage 1: U2 and each holder's inbox. */
  closeShareKeys(): Map<string, ShareInbox> {
    this.#expectStage('share-keys');
    this.#need(this.#shares.size, 'share keys');
    this.#holders = [...this.#shares.keys()].sort();
    const boxesTo = new Map<string, { from: string; box: Uint8Array }[]>(this.#holders.map((v) => [v, []]));
    for (const u of this.#holders) for (const b of this.#shares.get(u)!.boxes) boxesTo.get(b.to)?.push({ from: u, box: b.box });
    const inboxes = new Map<string, ShareInbox>();
    for (const v of this.#holders) inboxes.set(v, { roundId: this.#p.roundId, holders: this.#holders, boxes: boxesTo.get(v)! });
    this.#stage = 'masked-input';
    return inboxes;
  }

  /** Ends stage 2: the unmasking request (stable-pw: finishes the round directly). */
  closeMaskedInput(): UnmaskRequest | SecAggResult {
    this.#expectStage('masked-input');
    const survivors = [...this.#masked.keys()].sort();
    if (this.#p.mode === 'stable-pw') {
      if (survivors.length !== this.#holders.length) {
        throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `stable-pw cannot recover from dropouts: ${this.#holders.length - survivors.length} of ${this.#holders.length} clients sent no masked input`, { param: 'mode' });
      }
      this.#stage = 'done';
      return { sum: this.#sumMasked(survivors), survivors, dropped: [] };
    }
    this.#need(survivors.length, 'masked input');
    this.#request = { roundId: this.#p.roundId, survivors, dropped: this.#holders.filter((h) => !this.#masked.has(h)) };
    this.#stage = 'unmask';
    return this.#request;
  }

  /** Ends stage 3: reconstructs the secrets it needs and returns the exact sum, or fails. */
  finish(): SecAggResult {
    this.#expectStage('unmask');
    const req = this.#request!;
    this.#need(this.#unmasks.size, 'unmasking');
    const roster = this.#roster!;
    const bits = this.#p.modulusBits;
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
    const sum = this.#sumMasked(req.survivors);
    for (const u of req.survivors) accumulateMask(sum, reconstructSecret(collect(u, 'seedShares'), this.#p.threshold), -1);
    for (const v of req.dropped) {
      const sk = reconstructSecret(collect(v, 'keyShares'), this.#p.threshold);
      for (const u of neighboursOf(v, roster, this.#p.mode)) {
        if (!req.survivors.includes(u)) continue;
        const peer = roster.entries.find((e) => e.id === u)!;
        // y_u holds Δ(u,v)·PRG(s_uv); remove it.
        accumulateMask(sum, agreeKey(sk, peer.sPk, `${KEY_INFO_MASK}/${this.#p.roundId}`), sign(u, v) > 0 ? -1 : 1);
      }
    }
    reduceModInPlace(sum, bits);
    this.#stage = 'done';
    return { sum, survivors: req.survivors, dropped: req.dropped };
  }

  #sumMasked(ids: readonly string[]): Uint32Array {
    const acc = new Uint32Array(this.#p.length);
    for (const id of ids) addModInPlace(acc, this.#masked.get(id)!, this.#p.modulusBits);
    return acc;
  }

  #expectStage(stage: ServerStage): void {
    if (this.#stage !== stage) throw protocolError(`cannot close ${stage} while at ${this.#stage}`, 'stage');
  }
}
