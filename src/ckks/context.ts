import { createHash, randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import type { CkksParameters } from './params.ts';
import { levelsOf, validateCkksParameters } from './params.ts';
import type { Seal } from './seal.ts';
import { binaryTerms, galoisGroupSize, groupSteps, naf } from './keys.ts';
import { loadSeal, sealCall, sealMessage } from './seal.ts';
import { ciphertextData, KERNEL_PRIME_LIMIT, MAX_LAZY_TERMS, plaintextData, probeDataPointer, probePlainPointer, rnsKernel } from './kernel.ts';
import { equivalentStep, rotationSchedule } from './bsgs.ts';
import type * as S from 'node-seal';
import type { RotationSchedule } from './bsgs.ts';

/**
 * Scales whose ratio differs from 1 by less than this are treated as equal when two ciphertexts
 * are combined. After a ciphertext×ciphertext product and rescale the scale is Δ²/q_i, and SEAL's
 * 40-bit primes satisfy |q_i/2^40 − 1| < 2^-20, so aligning such scales perturbs values by a
 * relative error below 1e-5; anything further apart is a planning error and is refused.
 */
export const SCALE_TOLERANCE = 1e-5;

/** Options of {@link CkksContext.create}. */
export interface CreateContextOptions {
  /**
   * Rotation steps to generate Galois keys for (positive = rotate left). Only these are made:
   * each key costs about as much as a relinearization key. Default: none.
   */
  readonly galoisSteps?: readonly number[];
  /** Generate the relinearization key (needed for ciphertext×ciphertext). Default true. */
  readonly relinearization?: boolean;
  /**
   * Make no relinearization or Galois key now: they are generated, seeded, one group at a time,
   * when the public context is serialized ({@link serializePublicContext}). For `he keygen`,
   * which only writes the keys: each key is generated once, and never all expanded at once.
   */
  readonly deferEvaluationKeys?: boolean;
  /** Galois keys generated (and held expanded) at once; default: as many as fit in 64 MiB. */
  readonly galoisGroupSize?: number;
}

/** Galois keys generated together (one SEAL object), for the steps listed. */
export interface GaloisGroup {
  readonly steps: ReadonlySet<number>;
  readonly keys: S.GaloisKeys;
}

/**
 * An encrypted vector of up to `slotCount` real numbers. It owns one SEAL ciphertext and must be
 * freed with {@link CkksVector.delete} (or `using`); operations never free their inputs.
 */
export class CkksVector {
  /** @internal */ readonly ct: S.Ciphertext;
  /** Number of meaningful leading slots (the rest are zero or padding). */
  readonly length: number;
  readonly #owner: CkksContext;

  /** @internal */
  constructor(owner: CkksContext, ct: S.Ciphertext, length: number) {
    this.#owner = owner;
    this.ct = ct;
    this.length = length;
    owner.liveVectors++;
  }
  /** Remaining multiplicative levels (0: no more multiplications possible). */
  get level(): number {
    return this.#owner.levelOf(this);
  }
  /** The current encoding scale Δ (≈ 2^scaleBits). */
  get scale(): number {
    return this.ct.scale();
  }
  /** @internal */
  get owner(): CkksContext {
    return this.#owner;
  }
  /** Frees the SEAL ciphertext; safe to call twice. */
  delete(): void {
    if (this.ct.isDeleted()) return;
    this.ct.delete();
    this.#owner.liveVectors--;
  }
  [Symbol.dispose](): void {
    this.delete();
  }
}

interface Keys {
  readonly secret: S.SecretKey | undefined;
  readonly public: S.PublicKey;
  readonly relin: S.RelinKeys | undefined;
  /** Groups of Galois keys (empty: none). */
  readonly galois: readonly GaloisGroup[];
  /** Relinearization and Galois keys deferred to serialization (see CreateContextOptions). */
  readonly deferred?: { readonly relin: boolean };
  /** Galois keys per group when (re)generated. */
  readonly groupSize?: number;
}

/**
 * A CKKS context: parameters, keys and the SEAL encoder/encryptor/evaluator, with level and
 * scale bookkeeping so that callers never meet SEAL's "scale mismatch" or "parameter mismatch":
 *
 * - every multiplication is followed by relinearization (ct×ct) and one rescale;
 * - a plaintext or scalar multiplicand is encoded at scale q_ℓ (the prime the rescale drops), so
 *   the product keeps the ciphertext's scale exactly;
 * - operands at different levels are mod-switched down to the lower one, and scales that agree
 *   within {@link SCALE_TOLERANCE} are aligned.
 *
 * A context made by {@link CkksContext.create} holds the secret key; one loaded from public bytes
 * evaluates only (encrypts with the public key, cannot decrypt).
 */
export class CkksContext {
  readonly params: CkksParameters;
  /** Slots per ciphertext (N/2). */
  readonly slotCount: number;
  /** 32 hex characters identifying parameters and key set; carried by every serialized object. */
  readonly fingerprint: string;
  /** Sorted rotation steps with Galois keys. */
  readonly galoisSteps: readonly number[];
  /** Count of {@link CkksVector}s made by this context and not yet deleted (leak checks). */
  liveVectors = 0;
  /**
   * Application JSON carried by the secret key file (e.g. which inference packing the key set
   * was made for); undefined when none. Never holds secrets of its own.
   */
  metadata: unknown = undefined;

  /** @internal */ readonly seal: Seal;
  /** @internal */ readonly sealContext: S.SEALContext;
  /** @internal */ readonly keyId: Uint8Array;
  readonly #params: S.EncryptionParameters;
  readonly #keys: Keys;
  readonly #encoder: S.CKKSEncoder;
  readonly #encryptor: S.Encryptor;
  readonly #decryptor: S.Decryptor | undefined;
  readonly #evaluator: S.Evaluator;
  /** Prime q_ℓ dropped by a rescale at chain index ℓ (index ℓ ↦ value). */
  readonly #lastPrime: number[] = [];
  /** RNS primes of each level (chain index ↦ primes). */
  readonly #primesAt: bigint[][] = [];
  /** Serialized constant plaintext per level, the template for fast scalar encoding. */
  readonly #scalarTemplates: Uint8Array[] = [];
  readonly #scale: number;
  #deleted = false;

  /** @internal Use {@link CkksContext.create} or the deserializers. */
  constructor(seal: Seal, params: CkksParameters, sealParams: S.EncryptionParameters, sealContext: S.SEALContext, keys: Keys, keyId: Uint8Array, galoisSteps: readonly number[]) {
    this.seal = seal;
    this.params = params;
    this.#params = sealParams;
    this.sealContext = sealContext;
    this.#keys = keys;
    this.keyId = keyId;
    this.galoisSteps = galoisSteps;
    this.#scale = 2 ** params.scaleBits;
    this.#encoder = new seal.CKKSEncoder(sealContext);
    this.slotCount = this.#encoder.slotCount();
    this.#encryptor = new seal.Encryptor(sealContext, keys.public);
    if (keys.secret !== undefined) this.#encryptor.setSecretKey(keys.secret);
    this.#decryptor = keys.secret === undefined ? undefined : new seal.Decryptor(sealContext, keys.secret);
    this.#evaluator = new seal.Evaluator(sealContext);
    // The binding never returns null past the last level, so walk exactly firstChainIndex + 1 steps.
    let cd = sealContext.firstContextData();
    for (let remaining = cd.chainIndex(); remaining >= 0; remaining--) {
      const parms = cd.parms();
      const moduli = parms.coeffModulus();
      const primes = seal.jsArrayFromVecModulus(moduli) as bigint[];
      this.#lastPrime[cd.chainIndex()] = Number(primes[primes.length - 1]!);
      this.#primesAt[cd.chainIndex()] = primes;
      moduli.delete();
      parms.delete();
      const next = cd.nextContextData();
      cd.delete();
      cd = next;
    }
    cd.delete();
    this.fingerprint = fingerprintOf(sealParams, keyId);
  }

  /**
   * Makes a fresh key set for `params`: secret key, public key, relinearization key and Galois
   * keys for exactly `options.galoisSteps`.
   *
   * @example
   * ```ts
   * const ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 }, { galoisSteps: [1, 2, 4] });
   * using x = ctx.encryptVector([1, 2, 3]);
   * using y = ctx.mul(x, x);
   * ctx.decryptVector(y); // ≈ [1, 4, 9]
   * ctx.delete();
   * ```
   */
  static async create(params: CkksParameters, options: CreateContextOptions = {}): Promise<CkksContext> {
    const seal = await loadSeal();
    validateCkksParameters(seal, params);
    const steps = normalizeSteps(options.galoisSteps ?? [], params.polyModulusDegree / 2);
    const { sealParams, sealContext } = makeSealContext(seal, params);
    const kg = new seal.KeyGenerator(sealContext);
    const defer = options.deferEvaluationKeys === true;
    const relin = options.relinearization !== false;
    const groupSize = options.galoisGroupSize ?? galoisGroupSize(params);
    assertIntegerInRange(groupSize, 'galoisGroupSize', 1, 2 ** 16);
    try {
      const galois: GaloisGroup[] = [];
      if (!defer) {
        for (const group of groupSteps(steps, groupSize)) {
          galois.push({ steps: new Set(group), keys: sealCall('createGaloisKeys', () => kg.createGaloisKeysWithSteps(Int32Array.from(group)), 'CIPHERML_E_SEAL_FAILURE', 'galoisSteps') });
        }
      }
      const keys: Keys = {
        secret: kg.secretKey(),
        public: kg.createPublicKey(),
        relin: !relin || defer ? undefined : kg.createRelinKeys(),
        galois,
        ...(defer ? { deferred: { relin } } : {}),
        groupSize,
      };
      return new CkksContext(seal, params, sealParams, sealContext, keys, randomBytes(16), steps);
    } finally {
      kg.delete();
    }
  }

  /** @internal Builds a context around loaded keys. */
  static fromParts(seal: Seal, params: CkksParameters, sealParams: S.EncryptionParameters, sealContext: S.SEALContext, keys: Partial<Omit<Keys, 'deferred'>> & { secret?: S.SecretKey | undefined }, keyId: Uint8Array, steps: readonly number[]): CkksContext {
    let pub = keys.public;
    if (pub === undefined) {
      // A secret-key-only context (the client) still needs a public key object for SEAL's
      // Encryptor; it encrypts symmetrically, so this fresh key never leaves the process.
      const kg = new seal.KeyGenerator(sealContext, keys.secret!);
      pub = kg.createPublicKey();
      kg.delete();
    }
    return new CkksContext(seal, params, sealParams, sealContext, { secret: keys.secret, public: pub, relin: keys.relin, galois: keys.galois ?? [] }, keyId, steps);
  }

  /** True when this context can decrypt. */
  get hasSecretKey(): boolean {
    return this.#keys.secret !== undefined;
  }
  /** Levels of a fresh ciphertext (number of rescales available). */
  get maxLevel(): number {
    return levelsOf(this.params);
  }

  /** Scale Δ of a fresh encryption. */
  get freshScale(): number {
    return this.#scale;
  }

  /**
   * The prime q_ℓ a rescale at `level` divides by: a ct×ct product of scales s_a, s_b at that
   * level leaves scale s_a·s_b/q_ℓ.
   *
   * @example
   * ```ts
   * const next = (a.scale * b.scale) / ctx.primeAt(ctx.levelOf(a)); // scale of ctx.mul(a, b)
   * ```
   */
  primeAt(level: number): number {
    assertIntegerInRange(level, 'level', 1, this.maxLevel);
    return this.#lastPrime[level]!;
  }

  /** @internal */
  get keys(): Keys {
    return this.#keys;
  }
  /** @internal */
  get sealParams(): S.EncryptionParameters {
    return this.#params;
  }

  /** Remaining levels of a ciphertext (SEAL chain index). */
  levelOf(v: CkksVector): number {
    this.#own(v, 'vector');
    const pid = v.ct.parmsId();
    const cd = this.sealContext.getContextData(pid);
    const level = cd.chainIndex();
    cd.delete();
    pid.delete();
    return level;
  }

  /**
   * Encrypts up to `slotCount` numbers (the rest of the slots are zero). With the secret key the
   * encryption is symmetric (same security, smaller seeded serialization); otherwise it uses the
   * public key.
   *
   * @example
   * ```ts
   * using v = ctx.encryptVector(Float64Array.of(0.5, -1.25));
   * ```
   */
  encryptVector(values: ArrayLike<number>): CkksVector {
    const pt = this.#encode(values, 'values', this.#scale, undefined);
    const ct = new this.seal.Ciphertext();
    try {
      sealCall('encrypt', () => (this.hasSecretKey ? this.#encryptor.encryptSymmetric(pt, ct) : this.#encryptor.encrypt(pt, ct)));
    } catch (e) {
      ct.delete();
      throw e;
    } finally {
      pt.delete();
    }
    return new CkksVector(this, ct, values.length);
  }

  /**
   * Encrypts vectors directly to their seeded SEAL serializations (the second polynomial of a
   * symmetric ciphertext is replaced by the PRNG seed, halving the size). Needs the secret key.
   * @internal Used by {@link serializeFreshCiphertexts}.
   */
  encryptSeeded(values: ArrayLike<number>): Uint8Array {
    this.#needSecret('encrypt (seeded)');
    const pt = this.#encode(values, 'values', this.#scale, undefined);
    try {
      const ser = sealCall('encrypt', () => this.#encryptor.encryptSymmetricSerializable(pt));
      try {
        return ser.saveToArray(this.seal.ComprModeType.none) as Uint8Array;
      } finally {
        ser.delete();
      }
    } finally {
      pt.delete();
    }
  }

  /**
   * Decrypts and decodes; returns the first `length` slots (default: the vector's length).
   *
   * @example
   * ```ts
   * ctx.decryptVector(v); // Float64Array [≈0.5, ≈-1.25]
   * ```
   */
  decryptVector(v: CkksVector, length: number = v.length): Float64Array {
    this.#own(v, 'vector');
    this.#needSecret('decryptVector');
    assertIntegerInRange(length, 'length', 0, this.slotCount);
    const pt = new this.seal.Plaintext();
    try {
      sealCall('decrypt', () => this.#decryptor!.decrypt(v.ct, pt));
      const all = this.#encoder.decodeFloat64(pt) as Float64Array;
      return all.slice(0, length);
    } finally {
      pt.delete();
    }
  }

  /** a + b (levels and scales aligned first). */
  add(a: CkksVector, b: CkksVector): CkksVector {
    return this.#additive('add', a, b);
  }

  /** a − b (levels and scales aligned first). */
  sub(a: CkksVector, b: CkksVector): CkksVector {
    return this.#additive('sub', a, b);
  }

  #additive(op: 'add' | 'sub', a: CkksVector, b: CkksVector): CkksVector {
    const [x, y] = this.#aligned(a, b);
    const out = this.#fresh();
    try {
      sealCall(op, () => this.#evaluator[op](x.ct, y.ct, out));
    } catch (e) {
      out.delete();
      throw e;
    } finally {
      this.#dropTemps(a, b, x, y);
    }
    return new CkksVector(this, out, Math.max(a.length, b.length));
  }

  /** acc += b in place (acc keeps its identity; b may be at a higher level). */
  addInPlace(acc: CkksVector, b: CkksVector): void {
    this.#own(acc, 'acc');
    const y = this.#matchTo(b, acc);
    sealCall('add', () => this.#evaluator.addInplace(acc.ct, y.ct));
    if (y !== b) y.delete();
  }

  /** −a. */
  negate(a: CkksVector): CkksVector {
    this.#own(a, 'a');
    const out = this.#fresh();
    sealCall('negate', () => this.#evaluator.negate(a.ct, out));
    return new CkksVector(this, out, a.length);
  }

  /**
   * a ⊙ b, relinearized and rescaled: one level. With `{ finish: false }` the product is left
   * as SEAL's three-part ciphertext at scale Δ_a·Δ_b, neither relinearized nor rescaled, for
   * {@link sumProducts} to finish once for a whole sum (relinearization and rescaling are
   * linear, so finishing Σ p_i equals Σ finish(p_i) up to their rounding).
   *
   * @example
   * ```ts
   * using a2 = ctx.mul(a, a, { finish: false });
   * using b2 = ctx.mul(b, b, { finish: false });
   * using s = ctx.sumProducts([a2, b2]); // a² + b², one relinearization and one rescale
   * ```
   */
  mul(a: CkksVector, b: CkksVector, options: { readonly finish?: boolean } = {}): CkksVector {
    // Products need equal levels only; the result's scale is the product of the scales.
    const [x, y] = this.#aligned(a, b, false);
    this.#needLevel(x, 'mul');
    const relin = this.#needRelin();
    const out = this.#fresh();
    try {
      sealCall('multiply', () => {
        if (x === y) this.#evaluator.square(x.ct, out);
        else this.#evaluator.multiply(x.ct, y.ct, out);
        if (options.finish === false) return;
        this.#evaluator.relinearizeInplace(out, relin);
        this.#evaluator.rescaleToNextInplace(out);
      });
    } catch (e) {
      out.delete();
      throw e;
    } finally {
      this.#dropTemps(a, b, x, y);
    }
    return new CkksVector(this, out, Math.max(a.length, b.length));
  }

  /**
   * Σ ps for products made with `mul(…, { finish: false })` (all at one level and scale):
   * added as three-part ciphertexts, then relinearized and rescaled once, in that order (the key
   * switch's error is divided by q_ℓ too). The result is what adding the finished products gives.
   *
   * @example
   * ```ts
   * using s = ctx.sumProducts([ctx.mul(a, a, { finish: false }), ctx.mul(b, b, { finish: false })]);
   * ```
   */
  sumProducts(ps: readonly CkksVector[]): CkksVector {
    if (ps.length === 0) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', 'no products to sum', { param: 'ps' });
    const first = ps[0]!;
    this.#own(first, 'ps[0]');
    const level = this.levelOf(first);
    const acc = this.#copy(first);
    try {
      ps.forEach((p, i) => {
        this.#own(p, `ps[${i}]`);
        if (this.levelOf(p) !== level) throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `ps[${i}] is at level ${this.levelOf(p)}, ps[0] at ${level}`, { param: `ps[${i}]` });
        if (i === 0) return;
        this.#alignScale(p, acc);
        sealCall('add', () => this.#evaluator.addInplace(acc.ct, p.ct));
      });
      sealCall('relinearize', () => {
        if (acc.ct.size() > 2) this.#evaluator.relinearizeInplace(acc.ct, this.#needRelin());
        this.#evaluator.rescaleToNextInplace(acc.ct);
      });
    } catch (e) {
      acc.delete();
      throw e;
    }
    return acc;
  }

  /** a², relinearized and rescaled: one level. */
  square(a: CkksVector): CkksVector {
    return this.mul(a, a);
  }

  /** a ⊙ p for a plaintext vector p (zero beyond its length), rescaled: one level. */
  mulPlain(a: CkksVector, values: ArrayLike<number>): CkksVector {
    this.#own(a, 'a');
    this.#needLevel(a, 'mulPlain');
    const level = this.levelOf(a);
    if (Array.prototype.every.call(values, (v: number) => v === 0)) return this.#zeroAt(level - 1, a.ct.scale(), Math.max(a.length, values.length));
    const pt = this.#encodeAt(a, values, 'values', this.#lastPrime[level]!);
    return this.#mulPlainRescale(a, pt, Math.max(a.length, values.length));
  }

  /** a · k for a real scalar k, rescaled: one level. */
  mulScalar(a: CkksVector, k: number): CkksVector {
    this.#own(a, 'a');
    this.#needLevel(a, 'mulScalar');
    // |k|·q_ℓ < 1/2 encodes to the zero polynomial (a transparent product).
    if (Math.abs(k) * this.#lastPrime[this.levelOf(a)]! < 0.5) return this.#zeroAt(this.levelOf(a) - 1, a.ct.scale(), a.length);
    const pt = this.#encodeScalarAt(a, k, 'k', this.#lastPrime[this.levelOf(a)]!);
    return this.#mulPlainRescale(a, pt, a.length);
  }

  /** a + p for a plaintext vector p. No level used. */
  addPlain(a: CkksVector, values: ArrayLike<number>): CkksVector {
    this.#own(a, 'a');
    const pt = this.#encodeAt(a, values, 'values', a.ct.scale());
    return this.#addPlain(a, pt, Math.max(a.length, values.length));
  }

  /** a + k in every slot for a real scalar k. No level used. */
  addScalar(a: CkksVector, k: number): CkksVector {
    this.#own(a, 'a');
    const pt = this.#encodeScalarAt(a, k, 'k', a.ct.scale());
    return this.#addPlain(a, pt, a.length);
  }

  /**
   * Σ_i k_i·x_i (+ bias) with one rescale for the whole sum: every x_i is multiplied by its
   * scalar encoded at q_ℓ (compensated for any scale difference between the x_i, so the sum is
   * exact) and accumulated before rescaling. Terms with k_i ≈ 0 are skipped. All x_i must be at
   * the same level. This is the inner loop of batch-packed linear layers. The result's scale is
   * xs[0]'s, or `options.scale` (the scale of another ciphertext at this level), so that partial
   * sums of one combination computed apart add exactly.
   *
   * @example
   * ```ts
   * using y = ctx.linearCombination([x0, x1], [0.5, -2], 0.1); // 0.5·x0 − 2·x1 + 0.1
   * using z = ctx.linearCombination([x2], [3], 0, { scale: x0.scale }); // addable to y's partner
   * ```
   */
  linearCombination(xs: readonly CkksVector[], ks: readonly number[], bias = 0, options: { readonly scale?: number } = {}): CkksVector {
    if (xs.length === 0 || xs.length !== ks.length) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${xs.length} vectors and ${ks.length} coefficients`, { param: 'ks' });
    }
    const first = xs[0]!;
    this.#own(first, 'xs');
    const level = this.levelOf(first);
    this.#needLevel(first, 'linearCombination');
    const q = this.#lastPrime[level]!;
    const target = options.scale ?? first.ct.scale();
    if (!(Number.isFinite(target) && target > 0) || Math.abs(Math.log2(target / first.ct.scale())) > 1) {
      throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `target scale ${target} is not within a factor 2 of xs[0]'s 2^${Math.log2(first.scale).toFixed(3)}`, { param: 'options.scale' });
    }
    const fast = this.#kernelCombination(xs, ks, bias, level, target);
    if (fast !== undefined) return fast;
    const acc = this.#fresh();
    const tmp = this.#fresh();
    let started = false;
    try {
      for (let i = 0; i < xs.length; i++) {
        const x = this.#term(xs, ks, i, level, q);
        if (x === undefined) continue;
        const k = ks[i]!;
        // Encoding k at q·(Δ/Δᵢ), Δ the target scale, makes every product's scale Δ·q, so terms
        // whose scales drifted apart (different product paths) still add exactly.
        const pt = this.#encodeScalarAt(x, k, `ks[${i}]`, q * (target / x.ct.scale()));
        try {
          if (!started) {
            sealCall('multiplyPlain', () => this.#evaluator.multiplyPlain(x.ct, pt, acc));
            started = true;
          } else {
            sealCall('multiplyPlain', () => this.#evaluator.multiplyPlain(x.ct, pt, tmp));
            const [st, sa] = [tmp.scale(), acc.scale()];
            if (st !== sa) {
              if (Math.abs(st / sa - 1) > 1e-9) throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `xs[${i}] has scale 2^${Math.log2(x.scale).toFixed(3)}, xs[0] 2^${Math.log2(first.scale).toFixed(3)}`, { param: `xs[${i}]` });
              tmp.setScale(sa); // floating-point residue of the compensated encoding only
            }
            sealCall('add', () => this.#evaluator.addInplace(acc, tmp));
          }
        } finally {
          pt.delete();
        }
      }
      if (!started) {
        // All coefficients zero: SEAL refuses a transparent product, so start from Enc(0).
        acc.delete();
        const zero = this.#zeroAt(level - 1, target, first.length);
        if (bias === 0) return zero;
        const out = this.addScalar(zero, bias);
        zero.delete();
        return out;
      }
      return this.#finishCombination(acc, first.length, bias);
    } catch (e) {
      if (!acc.isDeleted()) acc.delete();
      throw e;
    } finally {
      tmp.delete();
    }
  }

  /** xs[i] when term i counts, undefined when k_i·q_ℓ rounds to 0; refuses a non-finite k_i, another context's vector or another level than xs[0]'s. */
  #term(xs: readonly CkksVector[], ks: readonly number[], i: number, level: number, q: number): CkksVector | undefined {
    const k = ks[i]!;
    if (!Number.isFinite(k)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', `coefficient ${i} is ${k}`, { param: `ks[${i}]` });
    if (Math.abs(k) * q < 0.5) return undefined;
    const x = xs[i]!;
    this.#own(x, `xs[${i}]`);
    if (this.levelOf(x) !== level) throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `xs[${i}] is at level ${this.levelOf(x)}, xs[0] at ${level}`, { param: `xs[${i}]` });
    return x;
  }

  /** Rescales an accumulated Σ k_i·x_i (scale Δ₀·q_ℓ) to Δ₀ and adds the bias at that scale. */
  #finishCombination(acc: S.Ciphertext, length: number, bias: number): CkksVector {
    sealCall('rescale', () => this.#evaluator.rescaleToNextInplace(acc));
    const out = new CkksVector(this, acc, length);
    if (bias !== 0) {
      const pt = this.#encodeScalarAt(out, bias, 'bias', acc.scale());
      sealCall('addPlain', () => this.#evaluator.addPlainInplace(acc, pt));
      pt.delete();
    }
    return out;
  }

  /**
   * {@link linearCombination} on SEAL's buffers with the RNS kernel (kernel.ts): each term is one
   * pass of x_i·m_i mod q_j over its words, m_i = round(k_i·q_ℓ·Δ₀/Δᵢ) being exactly the integer
   * the scalar plaintext of the SEAL path holds, so the result is the same ciphertext. Undefined
   * when the kernel does not apply (SEAL's memory unreachable, a prime ≥ 2^50, a scalar whose
   * encoding exceeds 2^53, or no non-zero term), and the SEAL path runs instead.
   */
  #kernelCombination(xs: readonly CkksVector[], ks: readonly number[], bias: number, level: number, target: number): CkksVector | undefined {
    const kernel = rnsKernel();
    if (kernel === undefined) return undefined;
    const primes = this.#primesAt[level]!;
    if (primes.some((p) => p >= BigInt(KERNEL_PRIME_LIMIT))) return undefined;
    const first = xs[0]!;
    if (probeDataPointer(this.seal, first.ct, kernel.memory) === undefined) return undefined;
    const q = this.#lastPrime[level]!;
    const qs = primes.map(Number);
    const n = this.params.polyModulusDegree;
    const terms: { x: CkksVector; w: bigint[]; wq: number[] }[] = [];
    let size = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = this.#term(xs, ks, i, level, q);
      if (x === undefined) continue;
      const k = ks[i]!;
      if (!x.ct.isNttForm()) return undefined;
      // The integer the SEAL path's scalar plaintext holds (#encodeScalarAt at q·Δ₀/Δᵢ).
      const m = Math.round(k * q * (target / x.ct.scale()));
      if (Math.abs(m) >= 2 ** 53) return undefined;
      const w = qs.map((p) => ((m % p) + p) % p);
      terms.push({ x, w: w.map(BigInt), wq: w.map((v, j) => v / qs[j]!) });
      size = Math.max(size, x.ct.size());
    }
    if (terms.length === 0) return undefined;
    const widest = terms.find((t) => t.x.ct.size() === size)!.x;
    const acc = this.#fresh();
    try {
      acc.assign(widest.ct);
      const block = n;
      const dst = ciphertextData(acc, kernel.memory);
      new BigUint64Array(kernel.memory.buffer, dst, size * primes.length * n).fill(0n);
      const reduceAll = (): void => {
        for (let p = 0; p < size; p++) for (let j = 0; j < primes.length; j++) kernel.reduce(dst + 8 * (p * primes.length + j) * block, block, primes[j]!, 1 / qs[j]!);
      };
      let pending = 0;
      for (const t of terms) {
        const src = ciphertextData(t.x.ct, kernel.memory);
        const polys = t.x.ct.size();
        for (let p = 0; p < polys; p++) {
          for (let j = 0; j < primes.length; j++) {
            const off = 8 * (p * primes.length + j) * block;
            kernel.mac(dst + off, src + off, block, primes[j]!, t.w[j]!, t.wq[j]!);
          }
        }
        if (++pending === MAX_LAZY_TERMS) {
          reduceAll();
          pending = 0;
        }
      }
      reduceAll();
      acc.setScale(target * q);
      return this.#finishCombination(acc, first.length, bias);
    } catch (e) {
      if (!acc.isDeleted()) acc.delete();
      throw e;
    }
  }

  /**
   * Cyclic rotation to the left by `steps` slots (negative: right). Needs a Galois key for
   * `steps`, or keys for every term of its non-adjacent-form decomposition into signed powers of
   * two (SEAL then chains those rotations).
   *
   * @example
   * ```ts
   * using r = ctx.rotate(v, 1); // slot i holds v[i+1]
   * ```
   */
  rotate(a: CkksVector, steps: number): CkksVector {
    this.#own(a, 'a');
    assertIntegerInRange(steps, 'steps', -(this.slotCount - 1), this.slotCount - 1);
    const out = this.#fresh();
    if (steps === 0) {
      out.assign(a.ct);
      return new CkksVector(this, out, a.length);
    }
    try {
      this.#rotateRaw(a.ct, steps, out, 'steps');
    } catch (e) {
      out.delete();
      throw e;
    }
    return new CkksVector(this, out, a.length);
  }

  /**
   * Rotate-and-add: slot i of the result holds Σ_{k<n} a[i + k·stride] (cyclic), n a power of
   * two with n·stride ≤ slotCount. With stride 1, slot 0 holds the sum of slots [0, n). Needs
   * Galois keys for {@link sumSlotsSteps}(n, stride).
   *
   * @example
   * ```ts
   * const ctx = await CkksContext.create(params, { galoisSteps: sumSlotsSteps(8) });
   * using s = ctx.sumSlots(ctx.encryptVector([1, 2, 3, 4, 5, 6, 7, 8]), 8); // slot 0 ≈ 36
   * ```
   */
  sumSlots(a: CkksVector, n: number, stride = 1): CkksVector {
    this.#own(a, 'a');
    assertIntegerInRange(n, 'n', 1, this.slotCount);
    assertIntegerInRange(stride, 'stride', 1, this.slotCount);
    if ((n & (n - 1)) !== 0) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `n = ${n} is not a power of two`, { param: 'n' });
    if (n * stride > this.slotCount) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `n·stride = ${n * stride} exceeds ${this.slotCount} slots`, { param: 'stride' });
    const acc = this.#copy(a);
    for (let step = 1; step < n; step *= 2) {
      const r = this.rotate(acc, step * stride);
      this.addInPlace(acc, r);
      r.delete();
    }
    return acc;
  }

  /**
   * Encodes a matrix in generalized-diagonal form for {@link mulDiagonals}: each entry's
   * `values` (slotCount numbers) multiply rot(x, rotation). The baby-step/giant-step split
   * (Halevi–Shoup, CRYPTO 2014, §4.1) writes rotation r = g·B + b with 0 ≤ b < B and stores the
   * values pre-rotated by −g·B, encoded at the prime a rescale at `level` drops so the product
   * keeps the ciphertext's scale, times `scaleFactor` when given (so that products of inputs whose
   * scales drifted apart can be summed: pass Δ_target/Δ_input). Rotations may be negative. Galois
   * steps needed: {@link diagonalSteps}.
   *
   * @example
   * ```ts
   * using m = ctx.prepareDiagonals([{ rotation: 0, values: new Float64Array(ctx.slotCount).fill(2) }], ctx.maxLevel); // y = 2·x
   * using y = ctx.mulDiagonals(x, m);
   * ```
   */
  prepareDiagonals(diagonals: readonly { readonly rotation: number; readonly values: Float64Array }[], level: number, babyStep?: number, scaleFactor = 1): CkksDiagonalMatrix {
    if (this.#deleted) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the context was deleted', { param: 'context' });
    if (!Array.isArray(diagonals) || diagonals.length > this.slotCount) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected at most ${this.slotCount} diagonals`, { param: 'diagonals' });
    }
    assertIntegerInRange(level, 'level', 1, this.maxLevel);
    if (typeof scaleFactor !== 'number' || !(scaleFactor >= 2 ** -20 && scaleFactor <= 2 ** 20)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `scaleFactor must be a number in [2^-20, 2^20], got ${String(scaleFactor)}`, { param: 'scaleFactor' });
    }
    const slots = this.slotCount;
    const rotations = diagonals.map((d, i) => {
      assertIntegerInRange(d?.rotation, `diagonals[${i}].rotation`, -(slots - 1), slots - 1);
      if (!(d.values instanceof Float64Array) || d.values.length !== slots) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `diagonal ${i} must be a Float64Array of ${slots} values`, { param: `diagonals[${i}].values` });
      return d.rotation;
    });
    if (new Set(rotations).size !== rotations.length) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'two diagonals have the same rotation', { param: 'diagonals' });
    const baby = babyStep ?? bestBabyStep(rotations);
    assertIntegerInRange(baby, 'babyStep', 1, slots);
    const pid = this.#parmsIdAt(level);
    const groups = new Map<number, Map<number, S.Plaintext>>();
    try {
      diagonals.forEach((d, i) => {
        if (d.values.every((v: number) => v === 0)) return;
        const b = ((d.rotation % baby) + baby) % baby;
        const shift = d.rotation - b;
        const rotated = shift === 0 ? d.values : new Float64Array(slots);
        if (shift !== 0) for (let j = 0; j < slots; j++) rotated[j] = d.values[(((j - shift) % slots) + slots) % slots]!;
        const pt = this.#encode(rotated, `diagonals[${i}]`, this.#lastPrime[level]! * scaleFactor, pid);
        // Values below half a unit of the scale encode to the zero polynomial; SEAL refuses the
        // (transparent) product, and the diagonal contributes nothing anyway.
        if (pt.isZero()) {
          pt.delete();
          return;
        }
        let row = groups.get(shift);
        if (row === undefined) groups.set(shift, (row = new Map()));
        row.set(b, pt);
      });
    } catch (e) {
      for (const row of groups.values()) for (const p of row.values()) p.delete();
      throw e;
    } finally {
      pid.delete();
    }
    return new CkksDiagonalMatrix(this.fingerprint, level, baby, groups);
  }

  /**
   * y = Σ_r diag_r ⊙ rot(x, r) for a matrix from {@link prepareDiagonals}, by baby-step/
   * giant-step: one rotation per distinct non-zero baby step, one per non-zero giant shift, one
   * rescale for the whole sum (one level). Each rotation is reached directly or chained from the
   * previous baby / by Horner's rule over the giants, whichever takes fewer key switches with
   * this key set (bsgs.ts; chainSteps gives the keys of the chained form). The inner sums
   * Σ_b diag ⊙ rot(x, b) run on the RNS kernel when it applies (the same ciphertext as SEAL's
   * multiply_plain and add). `x` above the matrix's level is mod-switched down first.
   *
   * @example
   * ```ts
   * using y = ctx.mulDiagonals(x, matrix);
   * ```
   */
  mulDiagonals(x: CkksVector, m: CkksDiagonalMatrix): CkksVector {
    this.#own(x, 'x');
    if (!(m instanceof CkksDiagonalMatrix) || m.isDeleted()) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a live CkksDiagonalMatrix', { param: 'matrix' });
    if (m.fingerprint !== this.fingerprint) throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the matrix was prepared for key set ${m.fingerprint}, this context is ${this.fingerprint}`, { param: 'matrix' });
    const lx = this.levelOf(x);
    if (lx < m.level) throw new CipherMLError('CIPHERML_E_CKKS_DEPTH_EXHAUSTED', `the input is at level ${lx}, the matrix was prepared for level ${m.level}`, { param: 'x', details: { level: lx, matrixLevel: m.level } });
    const xs = lx === m.level ? x : this.toLevel(x, m.level);
    const rot = (src: S.Ciphertext, steps: number, dst: S.Ciphertext): void => this.#rotateRaw(src, steps, dst, 'matrix');
    const babySet = new Set<number>();
    for (const row of m.plain.values()) for (const b of row.keys()) babySet.add(b);
    const asc = (a: number, b: number): number => a - b;
    const giantList = [...m.plain.keys()].filter((g) => m.plain.get(g)!.size > 0).sort(asc);
    const schedule = this.rotationScheduleFor([...babySet].sort(asc), giantList);
    const babies = new Map<number, S.Ciphertext>([[0, xs.ct]]);
    const temps: S.Ciphertext[] = [];
    let acc: S.Ciphertext | undefined;
    try {
      for (const { baby, from, step } of schedule.babies) {
        const r = this.#fresh();
        temps.push(r);
        rot(babies.get(from)!, step, r);
        babies.set(baby, r);
      }
      const inners = new Map<number, S.Ciphertext>();
      for (const g of giantList) {
        const inner = this.#innerSum(m.plain.get(g)!, babies, m.level);
        temps.push(inner);
        inners.set(g, inner);
      }
      if (giantList.length === 0) return this.#zeroAt(m.level - 1, xs.ct.scale(), this.slotCount);
      acc = this.#fresh();
      if (schedule.giants === 'horner') {
        // acc ← rot(acc, g_{i+1} − g_i) + inner_{g_i}, largest giant first; then rot(acc, g_0).
        acc.assign(inners.get(giantList[giantList.length - 1]!)!);
        for (let i = giantList.length - 2; i >= 0; i--) {
          rot(acc, giantList[i + 1]! - giantList[i]!, acc);
          sealCall('add', () => this.#evaluator.addInplace(acc!, inners.get(giantList[i]!)!));
        }
        if (giantList[0] !== 0) rot(acc, giantList[0]!, acc);
      } else {
        let started = false;
        for (const g of giantList) {
          let inner = inners.get(g)!;
          if (g !== 0) {
            const r = this.#fresh();
            temps.push(r);
            rot(inner, g, r);
            inner = r;
          }
          if (!started) acc.assign(inner);
          else sealCall('add', () => this.#evaluator.addInplace(acc!, inner));
          started = true;
        }
      }
      sealCall('rescale', () => this.#evaluator.rescaleToNextInplace(acc!));
      const out = new CkksVector(this, acc, this.slotCount);
      acc = undefined;
      return out;
    } finally {
      acc?.delete();
      for (const t of temps) t.delete();
      if (xs !== x) xs.delete();
    }
  }

  /**
   * How {@link mulDiagonals} reaches the rotated ciphertexts of sorted babies and giants with this
   * key set (direct or chained, see bsgs.ts) and its key switches.
   *
   * @example
   * ```ts
   * ctx.rotationScheduleFor([0, 1, 2, 3], [0, 4, 8]).switches; // 5 with keys for 1 and 4
   * ```
   */
  rotationScheduleFor(babies: readonly number[], giants: readonly number[]): RotationSchedule {
    const has = (k: number): boolean => this.#keys.galois.some((g) => g.steps.has(k));
    return rotationSchedule(babies, giants, this.slotCount, has);
  }

  /**
   * Σ_b diag_b ⊙ baby_b, unrescaled: with the RNS kernel, one pass of word-wise products per term
   * accumulated lazily (kernel.ts `macv`), else SEAL's multiply_plain and add per term.
   */
  #innerSum(row: ReadonlyMap<number, S.Plaintext>, babies: ReadonlyMap<number, S.Ciphertext>, level: number): S.Ciphertext {
    const out = this.#fresh();
    try {
      if (this.#kernelInnerSum(row, babies, level, out)) return out;
      const prod = this.#fresh();
      try {
        let started = false;
        for (const [b, p] of row) {
          if (!started) sealCall('multiplyPlain', () => this.#evaluator.multiplyPlain(babies.get(b)!, p, out));
          else {
            sealCall('multiplyPlain', () => this.#evaluator.multiplyPlain(babies.get(b)!, p, prod));
            sealCall('add', () => this.#evaluator.addInplace(out, prod));
          }
          started = true;
        }
      } finally {
        prod.delete();
      }
      return out;
    } catch (e) {
      out.delete();
      throw e;
    }
  }

  /**
   * The kernel path of {@link #innerSum}: `out` gets, word for word, the integers SEAL's
   * multiply_plain + add would give (both reduce mod q_j into [0, q_j)). False when the kernel
   * does not apply (no kernel, a prime ≥ 2^50, a plaintext not at the ciphertexts' primes).
   */
  #kernelInnerSum(row: ReadonlyMap<number, S.Plaintext>, babies: ReadonlyMap<number, S.Ciphertext>, level: number, out: S.Ciphertext): boolean {
    const kernel = rnsKernel();
    if (kernel === undefined || row.size === 0) return false;
    const primes = this.#primesAt[level]!;
    if (primes.some((p) => p >= BigInt(KERNEL_PRIME_LIMIT))) return false;
    const [[b0, p0]] = [...row] as [[number, S.Plaintext]];
    const first = babies.get(b0)!;
    const n = this.params.polyModulusDegree;
    if (probeDataPointer(this.seal, first, kernel.memory) === undefined || probePlainPointer(this.seal, p0, kernel.memory) === undefined) return false;
    const size = first.size();
    for (const [b, p] of row) {
      const c = babies.get(b)!;
      if (!c.isNttForm() || !p.isNttForm() || c.size() !== size || c.coeffModulusSize() !== primes.length || p.coeffCount() !== n * primes.length || p.scale() !== p0.scale()) return false;
    }
    out.assign(first);
    const dst = ciphertextData(out, kernel.memory);
    new BigUint64Array(kernel.memory.buffer, dst, size * primes.length * n).fill(0n);
    const qinv = primes.map((q) => 1 / Number(q));
    const reduceAll = (): void => {
      for (let k = 0; k < size; k++) for (let j = 0; j < primes.length; j++) kernel.reduce(dst + 8 * (k * primes.length + j) * n, n, primes[j]!, qinv[j]!);
    };
    let pending = 0;
    for (const [b, p] of row) {
      const src = ciphertextData(babies.get(b)!, kernel.memory);
      const w = plaintextData(p, kernel.memory);
      for (let k = 0; k < size; k++) {
        for (let j = 0; j < primes.length; j++) {
          const off = 8 * (k * primes.length + j) * n;
          kernel.macv(dst + off, src + off, w + 8 * j * n, n, primes[j]!, qinv[j]!);
        }
      }
      if (++pending === MAX_LAZY_TERMS) {
        reduceAll();
        pending = 0;
      }
    }
    reduceAll();
    out.setScale(first.scale() * p0.scale());
    return true;
  }

  /** Mod-switches a copy of `a` down to `level` (no rescale: the scale is unchanged). */
  toLevel(a: CkksVector, level: number): CkksVector {
    this.#own(a, 'a');
    const current = this.levelOf(a);
    assertIntegerInRange(level, 'level', 0, current);
    const out = this.#copy(a);
    for (let l = current; l > level; l--) sealCall('modSwitch', () => this.#evaluator.cipherModSwitchToNextInplace(out.ct));
    return out;
  }

  /** A copy sharing nothing with `a`. */
  copy(a: CkksVector): CkksVector {
    this.#own(a, 'a');
    return this.#copy(a);
  }

  /** Frees every SEAL object of the context (vectors are freed by their owners). */
  delete(): void {
    if (this.#deleted) return;
    this.#deleted = true;
    for (const o of [this.#encoder, this.#encryptor, this.#decryptor, this.#evaluator, this.#keys.secret, this.#keys.public, this.#keys.relin, ...this.#keys.galois.map((g) => g.keys), this.sealContext, this.#params]) {
      if (o !== undefined && !o.isDeleted()) o.delete();
    }
  }
  [Symbol.dispose](): void {
    this.delete();
  }

  // ---- internals -------------------------------------------------------------------------

  /** SEAL parms_id of chain index `level` (caller deletes it). */
  #parmsIdAt(level: number): S.ParmsIdType {
    let cd = this.sealContext.firstContextData();
    while (cd.chainIndex() > level) {
      const next = cd.nextContextData();
      cd.delete();
      cd = next;
    }
    const pid = cd.parmsId();
    cd.delete();
    return pid;
  }

  /**
   * A fresh encryption of zero at `level` with `scale`: the product by a zero plaintext would be
   * a transparent ciphertext, which SEAL (rightly) refuses to produce.
   */
  #zeroAt(level: number, scale: number, length: number): CkksVector {
    const ct = this.#fresh();
    sealCall('encryptZero', () => {
      this.#encryptor.encryptZero(ct);
      for (let l = this.maxLevel; l > level; l--) this.#evaluator.cipherModSwitchToNextInplace(ct);
      ct.setScale(scale);
    });
    return new CkksVector(this, ct, length);
  }

  #fresh(): S.Ciphertext {
    return new this.seal.Ciphertext();
  }

  #copy(a: CkksVector): CkksVector {
    const out = this.#fresh();
    out.assign(a.ct);
    return new CkksVector(this, out, a.length);
  }

  #own(v: unknown, param: string): asserts v is CkksVector {
    if (this.#deleted) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the context was deleted', { param: 'context' });
    if (!(v instanceof CkksVector)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a CkksVector', { param });
    if (v.owner.fingerprint !== this.fingerprint) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the vector belongs to key set ${v.owner.fingerprint}, this context is ${this.fingerprint}`, { param });
    }
    if (v.ct.isDeleted()) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the vector was deleted', { param });
  }

  #needSecret(what: string): void {
    if (this.#decryptor === undefined) throw new CipherMLError('CIPHERML_E_CKKS_SECRET_KEY_MISSING', `${what} needs the secret key; this context holds evaluation keys only`, { param: 'context' });
  }

  #needRelin(): S.RelinKeys {
    if (this.#keys.relin === undefined) {
      throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', 'ciphertext×ciphertext multiplication needs the relinearization key, which this key set lacks', { param: 'relinKeys' });
    }
    return this.#keys.relin;
  }

  #needLevel(v: CkksVector, what: string): void {
    if (this.levelOf(v) === 0) {
      throw new CipherMLError('CIPHERML_E_CKKS_DEPTH_EXHAUSTED', `${what} needs a level but the ciphertext is at level 0 of ${this.maxLevel}`, { param: 'depth', details: { maxLevel: this.maxLevel } });
    }
  }

  /**
   * dst = src rotated by `steps`: with the group holding that step's key, else as the chain of
   * its non-adjacent form (keys for ±2^k serve every rotation), else of its binary digits taken
   * modulo the slots (keys for +2^k serve every rotation); one key switch per term.
   */
  #rotateRaw(src: S.Ciphertext, steps: number, dst: S.Ciphertext, param: string): void {
    const apply = (from: S.Ciphertext, k: number, to: S.Ciphertext): void => {
      const g = this.#keys.galois.find((x) => x.steps.has(k));
      if (g === undefined) throw this.#noGalois(steps);
      try {
        this.#evaluator.rotateVector(from, k, g.keys, to);
      } catch (e) {
        throw new CipherMLError('CIPHERML_E_SEAL_FAILURE', `rotate failed: ${sealMessage(e)}`, { param, cause: e });
      }
    };
    if (this.#keys.galois.some((g) => g.steps.has(steps))) return apply(src, steps, dst);
    const alt = equivalentStep(steps % this.slotCount, this.slotCount);
    if (this.#keys.galois.some((g) => g.steps.has(alt))) return apply(src, alt, dst);
    const have = (ts: readonly number[]): boolean => ts.length > 0 && ts.every((t) => this.#keys.galois.some((g) => g.steps.has(t)));
    const signed = naf(steps).map((t) => t % this.slotCount).filter((t) => t !== 0);
    const terms = have(signed) ? signed : binaryTerms(steps, this.slotCount);
    if (!have(terms)) throw this.#noGalois(steps);
    apply(src, terms[0]!, dst);
    for (const t of terms.slice(1)) apply(dst, t, dst);
  }

  #noGalois(steps: number): CipherMLError {
    return new CipherMLError('CIPHERML_E_CKKS_GALOIS_KEY_MISSING', `no Galois key for rotation by ${steps} (keys exist for [${this.galoisSteps.join(', ')}])`, { param: 'steps', details: { steps, available: this.galoisSteps } });
  }

  /** Returns versions of a, b at a common level and scale (copies only when needed). */
  #aligned(a: CkksVector, b: CkksVector, scales = true): [CkksVector, CkksVector] {
    this.#own(a, 'a');
    this.#own(b, 'b');
    if (a === b) return [a, b];
    const la = this.levelOf(a);
    const lb = this.levelOf(b);
    if (la > lb) return [this.#matchTo(a, b, scales), b];
    if (lb > la) return [a, this.#matchTo(b, a, scales)];
    if (scales) this.#alignScale(b, a);
    return [a, b];
  }

  /** `v` at `target`'s level (scale aligned unless `scales` is false); `v` itself when nothing changes. */
  #matchTo(v: CkksVector, target: CkksVector, scales = true): CkksVector {
    this.#own(v, 'b');
    const lt = this.levelOf(target);
    const lv = this.levelOf(v);
    if (lv < lt) {
      throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `operand is at level ${lv}, below the accumulator's ${lt}`, { param: 'b' });
    }
    const out = lv === lt ? v : this.toLevel(v, lt);
    if (scales) this.#alignScale(out, target);
    return out;
  }

  #alignScale(v: CkksVector, target: CkksVector): void {
    const sv = v.ct.scale();
    const st = target.ct.scale();
    if (sv === st) return;
    if (Math.abs(sv / st - 1) > SCALE_TOLERANCE) {
      throw new CipherMLError('CIPHERML_E_CKKS_SCALE_MISMATCH', `scales 2^${Math.log2(sv).toFixed(3)} and 2^${Math.log2(st).toFixed(3)} differ`, { param: 'b', details: { scale: sv, target: st } });
    }
    v.ct.setScale(st);
  }

  #dropTemps(a: CkksVector, b: CkksVector, x: CkksVector, y: CkksVector): void {
    if (x !== a && x !== b) x.delete();
    if (y !== a && y !== b) y.delete();
  }

  #mulPlainRescale(a: CkksVector, pt: S.Plaintext, length: number): CkksVector {
    if (pt.isZero()) {
      pt.delete();
      return this.#zeroAt(this.levelOf(a) - 1, a.ct.scale(), length);
    }
    const out = this.#fresh();
    try {
      sealCall('multiplyPlain', () => {
        this.#evaluator.multiplyPlain(a.ct, pt, out);
        this.#evaluator.rescaleToNextInplace(out);
      });
    } catch (e) {
      out.delete();
      throw e;
    } finally {
      pt.delete();
    }
    return new CkksVector(this, out, length);
  }

  #addPlain(a: CkksVector, pt: S.Plaintext, length: number): CkksVector {
    const out = this.#fresh();
    try {
      sealCall('addPlain', () => this.#evaluator.addPlain(a.ct, pt, out));
    } catch (e) {
      out.delete();
      throw e;
    } finally {
      pt.delete();
    }
    return new CkksVector(this, out, length);
  }

  #encodeAt(at: CkksVector, values: ArrayLike<number>, param: string, scale: number): S.Plaintext {
    const pid = at.ct.parmsId();
    try {
      return this.#encode(values, param, scale, pid);
    } finally {
      pid.delete();
    }
  }

  /**
   * A constant plaintext k at `scale`, at `at`'s level. The CKKS encoding of a constant vector is
   * the constant polynomial round(k·scale), whose NTT form is that residue in every coefficient
   * of every RNS block; we write SEAL's uncompressed Plaintext serialization directly (header,
   * parms_id, coeff_count, scale, then N words per prime, as Plaintext::save_members lays it out)
   * instead of running the O(N log N) encoder, and let Plaintext.load validate it.
   */
  #encodeScalarAt(at: CkksVector, k: number, param: string, scale: number): S.Plaintext {
    if (!Number.isFinite(k)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', `scalar is ${k}`, { param });
    const m = Math.round(k * scale);
    if (Math.abs(m) >= 2 ** 53) return this.#encodeAt(at, new Float64Array(this.slotCount).fill(k), param, scale);
    const level = this.levelOf(at);
    let template = this.#scalarTemplates[level];
    if (template === undefined) {
      const pt = this.#encodeAt(at, new Float64Array(this.slotCount).fill(1), param, 2 ** 20);
      const bytes = Uint8Array.from(pt.saveToArray(this.seal.ComprModeType.none) as Uint8Array);
      pt.delete();
      template = this.#scalarTemplates[level] = bytes;
    }
    const primes = this.#primesAt[level]!;
    const n = this.params.polyModulusDegree;
    const bytes = template.slice();
    const dataOffset = bytes.length - 8 * n * primes.length;
    new DataView(bytes.buffer).setFloat64(56, scale, true);
    const words = new BigUint64Array(bytes.buffer, dataOffset, n * primes.length);
    const big = BigInt(m);
    primes.forEach((q, i) => words.fill(((big % q) + q) % q, i * n, (i + 1) * n));
    const pt = new this.seal.Plaintext();
    try {
      sealCall('encode', () => pt.loadFromArray(this.sealContext, bytes));
    } catch (e) {
      pt.delete();
      throw e;
    }
    return pt;
  }

  #encode(values: ArrayLike<number>, param: string, scale: number, parmsId: S.ParmsIdType | undefined): S.Plaintext {
    if (this.#deleted) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the context was deleted', { param: 'context' });
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected an array of numbers', { param });
    }
    if (values.length > this.slotCount) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${values.length} values do not fit in ${this.slotCount} slots`, { param, details: { length: values.length, slotCount: this.slotCount } });
    }
    const bound = 2 ** (this.params.coeffModulusBits[0]! - this.params.scaleBits - 1);
    const arr = values instanceof Float64Array ? values : Float64Array.from(values as ArrayLike<number>);
    const fresh = parmsId === undefined;
    for (let i = 0; i < arr.length; i++) {
      const x = arr[i]!;
      if (!Number.isFinite(x)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', `element ${i} is ${x}`, { param: `${param}[${i}]` });
      if (fresh && Math.abs(x) >= bound) {
        throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `element ${i} = ${x} exceeds ±${bound}, the range the first ${this.params.coeffModulusBits[0]}-bit prime leaves above the scale`, { param: `${param}[${i}]` });
      }
    }
    const pt = new this.seal.Plaintext();
    try {
      sealCall('encode', () => {
        this.#encoder.encode(arr, scale, pt);
        if (parmsId !== undefined) this.#evaluator.plainModSwitchToInplace(pt, parmsId);
      });
    } catch (e) {
      pt.delete();
      throw e;
    }
    return pt;
  }
}

/** @internal SEAL EncryptionParameters + SEALContext for `params` (validated). */
export function makeSealContext(seal: Seal, params: CkksParameters): { sealParams: S.EncryptionParameters; sealContext: S.SEALContext } {
  const sealParams = new seal.EncryptionParameters(seal.SchemeType.ckks);
  sealParams.setPolyModulusDegree(params.polyModulusDegree);
  const moduli = sealCall('CoeffModulus.Create', () => seal.CoeffModulus.Create(params.polyModulusDegree, Int32Array.from(params.coeffModulusBits)), 'CIPHERML_E_SEAL_FAILURE', 'coeffModulusBits');
  sealParams.setCoeffModulus(moduli);
  moduli.delete();
  const sealContext = new seal.SEALContext(sealParams, true, seal.SecLevelType.tc128);
  if (!sealContext.parametersSet()) {
    sealContext.delete();
    sealParams.delete();
    throw new CipherMLError('CIPHERML_E_CKKS_PARAMETERS_INSECURE', 'SEAL rejected the parameters at 128-bit security', { param: 'params' });
  }
  return { sealParams, sealContext };
}

/** @internal Rotation steps deduplicated, in range and sorted. */
export function normalizeSteps(steps: readonly number[], slots: number): number[] {
  if (!Array.isArray(steps)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected an array of integers', { param: 'galoisSteps' });
  const out = new Set<number>();
  steps.forEach((s, i) => {
    assertIntegerInRange(s, `galoisSteps[${i}]`, -(slots - 1), slots - 1);
    if (s !== 0) out.add(s);
  });
  return [...out].sort((a, b) => a - b);
}

/** @internal First 16 bytes of SHA-256(SEAL parameter bytes ‖ key-set id), as hex. */
export function fingerprintOf(sealParams: S.EncryptionParameters, keyId: Uint8Array): string {
  const p = sealParams.saveToArray({ value: 0 } as S.ComprModeType) as Uint8Array;
  return createHash('sha256').update('cipherml-ckks-v1').update(p).update(keyId).digest().subarray(0, 16).toString('hex');
}

/**
 * Galois steps {@link CkksContext.sumSlots} needs for a window of n slots at `stride`:
 * stride·1, stride·2, …, stride·n/2.
 *
 * @example
 * ```ts
 * sumSlotsSteps(8); // [1, 2, 4]
 * sumSlotsSteps(4, 64); // [64, 128]
 * ```
 */
export function sumSlotsSteps(n: number, stride = 1): number[] {
  const out: number[] = [];
  for (let s = 1; s < n; s *= 2) out.push(s * stride);
  return out;
}

/**
 * The baby-step size B minimizing the rotations of {@link CkksContext.mulDiagonals} for these
 * rotation amounts: distinct non-zero r mod B plus distinct non-zero r − (r mod B).
 *
 * @example
 * ```ts
 * bestBabyStep([0, 1, 2, 3, 28, 29, 30, 31]); // 2: rotations by 1, 2, 28 and 30
 * ```
 */
export function bestBabyStep(rotations: readonly number[], maxBabyStep = 256): number {
  let best = 1;
  let bestCost = Infinity;
  for (let b = 1; b <= maxBabyStep; b++) {
    const cost = diagonalSteps(rotations, b).length;
    if (cost < bestCost) {
      bestCost = cost;
      best = b;
    }
  }
  return best;
}

/**
 * Galois steps {@link CkksContext.mulDiagonals} needs for diagonals at these rotation amounts
 * with baby-step size B: every non-zero r mod B and every non-zero r − (r mod B).
 *
 * @example
 * ```ts
 * diagonalSteps([0, 1, 2, 3], 2); // [1, 2]
 * ```
 */
export function diagonalSteps(rotations: readonly number[], babyStep: number = bestBabyStep(rotations)): number[] {
  const out = new Set<number>();
  for (const r of rotations) {
    const b = ((r % babyStep) + babyStep) % babyStep;
    if (b > 0) out.add(b);
    if (r - b !== 0) out.add(r - b);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Plaintext diagonals encoded for {@link CkksContext.mulDiagonals} at one level. Owns SEAL
 * plaintexts: free with `delete()` (or `using`).
 */
export class CkksDiagonalMatrix {
  readonly fingerprint: string;
  /** Level of the ciphertexts it multiplies. */
  readonly level: number;
  readonly babyStep: number;
  /** @internal giant shift g·B ↦ (baby step b ↦ diagonal g·B + b rotated by −g·B). */
  readonly plain: ReadonlyMap<number, ReadonlyMap<number, S.Plaintext>>;
  #deleted = false;
  /** @internal */
  constructor(fingerprint: string, level: number, babyStep: number, plain: Map<number, Map<number, S.Plaintext>>) {
    this.fingerprint = fingerprint;
    this.level = level;
    this.babyStep = babyStep;
    this.plain = plain;
  }
  /** Non-empty diagonals. */
  get size(): number {
    let n = 0;
    for (const row of this.plain.values()) n += row.size;
    return n;
  }
  isDeleted(): boolean {
    return this.#deleted;
  }
  delete(): void {
    if (this.#deleted) return;
    this.#deleted = true;
    for (const row of this.plain.values()) for (const p of row.values()) p.delete();
  }
  [Symbol.dispose](): void {
    this.delete();
  }
}
