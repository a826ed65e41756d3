import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { deserializeCiphertexts, encryptToBytes, serializeCiphertexts, sumSlotsSteps } from '../ckks/index.ts';
import type { CkksContext, CkksParameters, CkksVector } from '../ckks/index.ts';
import { SIGMOID_POLY3 } from './poly-logreg.ts';

/**
 * Logistic regression trained on CKKS ciphertexts (HE4Cloud's flow, Kim et al. 2018's packing idea).
 *
 * Packing is column-wise: for each block of up to P rows (P a power of two ≤ N/2), feature j is one
 * ciphertext whose slot s holds x_{(s mod P), j}; the P-slot pattern is tiled over all N/2 slots
 * and padding rows are 0. Every weight is one ciphertext holding w_j in every slot. Then
 * Σ_{k<P} rot(v, k), computed with log₂P rotations (steps 1, 2, 4, …), leaves the sum over the
 * block's rows in every slot, so a gradient is again a replicated weight and no masking is needed.
 * Column-wise packing needs only log₂P Galois keys and no per-sample rotations, where row-wise
 * packing would need a rotate-and-sum per sample for w·x; with 31 columns and ≤ 4096 rows per
 * block it is the cheaper layout.
 *
 * One epoch is one full-batch step w ← w − (η/n) Σᵢ (σ₃(zᵢ) − yᵢ) xᵢ with σ₃ = a0 + a1 z + a3 z³
 * (see src/ml/poly-logreg.ts), evaluated in depth 4 as
 *
 *   z = Σ_j w_j ⊙ X_j                      (level 1; X_0 is the all-ones column, w_0 the bias)
 *   t = a1 − (s·z)²,  s = √|a3|           (level 3; a3 < 0)
 *   g_j = Σ_blocks rotsum(t ⊙ k·(z ⊙ X_j)) (level 4; k = η/n) = k Σ (a1 z + a3 z³) x_j
 *
 * k is folded into the rescale that brings z ⊙ X_j to t's level (no extra level), not into t:
 * t ≈ a1 = 0.15 keeps its absolute CKKS noise small relative to its value, where k·a1 ≈ 3·10⁻⁵
 * at n = 455 would carry relative noise ~10⁻³ into every gradient.
 *   c_j = k·rotsum(Σ_blocks (a0 − y) ⊙ X_j)  (computed once, data only)
 *   w_j ← w_j − g_j − c_j.
 *
 * SEAL has no bootstrapping; with {@link TRAIN_CKKS_PARAMETERS} one epoch fits the chain, and
 * between epochs the job asks the gateway to decrypt and re-encrypt the weights (a refresh).
 */

/** Multiplicative levels one epoch consumes (see the module comment). */
export const EPOCH_DEPTH: number = 4;

/**
 * CKKS parameters of the trainer: N = 8192 (4096 slots), primes 40 + 4×33 + 46 = 218 bits (the
 * 128-bit-security maximum at N = 8192 is 218), scale 2^33: exactly one epoch per modulus chain,
 * 7 bits of integer headroom in the last data prime (|values| < 64 at level 0, see
 * {@link WEIGHT_BOUND}). The special prime (46 bits, SEAL's key-switching prime) exceeds the
 * largest data prime by 6 bits: the key-switching error of each decomposition digit i is about
 * N·σ·q_i/P, so with P = q_max = 2^43 one rotation added ~10⁻⁴ absolute error at scale 2^33 and
 * a 512-slot rotate-and-sum 4·10⁻⁴ (trained weights 4–8·10⁻⁴ off the plaintext trainer); at
 * 2^40/2^46 the sum is off by 4·10⁻⁶ and the weights by 2–3·10⁻⁵ (src/ml/encrypted-lr.test.ts).
 *
 * @example
 * ```ts
 * const ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(1024) });
 * ```
 */
export const TRAIN_CKKS_PARAMETERS: CkksParameters = { polyModulusDegree: 8192, coeffModulusBits: [40, 33, 33, 33, 33, 46], scaleBits: 33 };

/**
 * Largest |weight| that may enter an epoch: level-0 values must stay below q₀/(2·scale) = 64, and
 * half of that leaves one epoch's step room to grow without wrapping modulo q₀.
 */
export const WEIGHT_BOUND: number = 32;

/** Largest row count a training upload may hold. */
export const MAX_TRAIN_ROWS: number = 1 << 20;

/** How rows are laid out in slots. */
export interface PackingPlan {
  /** Rows per block (a power of two ≤ slots); the tiling period. */
  readonly period: number;
  readonly blocks: number;
  readonly rows: number;
}

/**
 * Chooses the block size: the smallest power of two ≥ min(rows, batchSize, slots).
 *
 * @example
 * ```ts
 * planPacking(984, 4096); // { period: 1024, blocks: 1, rows: 984 }
 * ```
 */
export function planPacking(rows: number, slots: number, batchSize: number = slots): PackingPlan {
  assertIntegerInRange(rows, 'rows', 1, MAX_TRAIN_ROWS);
  assertIntegerInRange(batchSize, 'batchSize', 1, slots);
  let period = 1;
  while (period < Math.min(rows, batchSize)) period *= 2;
  return { period, blocks: Math.ceil(rows / period), rows };
}

/**
 * Rotation steps the trainer needs for a period (log₂P keys).
 *
 * @example
 * ```ts
 * trainingGaloisSteps(1024); // [1, 2, 4, …, 512]
 * ```
 */
export function trainingGaloisSteps(period: number): number[] {
  return sumSlotsSteps(period);
}

/**
 * Re-expresses `v` at chain index `chain` with scale exactly `scale`, multiplying its value by
 * `factor`, at the cost of one rescale: the scalar is chosen so that after `setScale` the decoded
 * value is `factor·v`. SEAL's primes are only close to 2^scaleBits (here ≈ 4·10⁻⁵ apart per
 * prime), so products reached along different paths differ in scale by more than the CKKS
 * layer's alignment tolerance; this makes them agree exactly instead. Built on the CKKS layer's
 * `mulScalar`/`toLevel` and the vector's SEAL ciphertext (src/ckks exposes no scale setter).
 */
function atScale(ctx: CkksContext, v: CkksVector, chain: number, scale: number, factor = 1): CkksVector {
  const r = ctx.mulScalar(v, (factor * scale) / v.scale);
  const out = ctx.levelOf(r) > chain ? ctx.toLevel(r, chain) : r;
  if (out !== r) r.delete();
  out.ct.setScale(scale);
  return out;
}

function tiled(slots: number, period: number, get: (r: number) => number, count: number): Float64Array {
  const out = new Float64Array(slots);
  for (let s = 0; s < slots; s++) {
    const r = s % period;
    out[s] = r < count ? get(r) : 0;
  }
  return out;
}

/** Metadata carried in the ciphertext container of a data upload. */
export interface DataMeta {
  readonly kind: 'train_data' | 'predict_data';
  readonly rows: number;
  readonly features: number;
  readonly period: number;
  readonly blocks: number;
}

/** Metadata of an encrypted weight vector. */
export interface WeightsMeta {
  readonly kind: 'weights';
  readonly features: number;
}

function blockColumns(ctx: CkksContext, rows: readonly ArrayLike<number>[], plan: PackingPlan, labels: ArrayLike<number> | undefined): Float64Array[] {
  const features = rows[0]?.length ?? 0;
  const out: Float64Array[] = [];
  for (let b = 0; b < plan.blocks; b++) {
    const start = b * plan.period;
    const count = Math.min(plan.period, plan.rows - start);
    for (let j = 0; j < features; j++) out.push(tiled(ctx.slotCount, plan.period, (r) => rows[start + r]![j]!, count));
    if (labels !== undefined) out.push(tiled(ctx.slotCount, plan.period, (r) => labels[start + r]!, count));
  }
  return out;
}

/**
 * Gateway side: encrypts a training set (rows × features and 0/1 labels) in the trainer's layout.
 *
 * @example
 * ```ts
 * const bytes = encryptTrainingData(ctx, ds.features, ds.labels, 1024);
 * ```
 */
export function encryptTrainingData(ctx: CkksContext, rows: readonly ArrayLike<number>[], labels: ArrayLike<number>, batchSize: number = ctx.slotCount): Uint8Array {
  if (rows.length !== labels.length) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${rows.length} feature rows but ${labels.length} labels`, { param: 'labels' });
  const plan = planPacking(rows.length, ctx.slotCount, batchSize);
  const meta: DataMeta = { kind: 'train_data', rows: rows.length, features: rows[0]?.length ?? 0, period: plan.period, blocks: plan.blocks };
  return encryptToBytes(ctx, blockColumns(ctx, rows, plan, labels), meta);
}

/**
 * Gateway side: encrypts feature rows for prediction (same layout, no labels).
 *
 * @example
 * ```ts
 * const bytes = encryptPredictData(ctx, test.features);
 * ```
 */
export function encryptPredictData(ctx: CkksContext, rows: readonly ArrayLike<number>[], batchSize: number = ctx.slotCount): Uint8Array {
  const plan = planPacking(rows.length, ctx.slotCount, batchSize);
  const meta: DataMeta = { kind: 'predict_data', rows: rows.length, features: rows[0]?.length ?? 0, period: plan.period, blocks: plan.blocks };
  return encryptToBytes(ctx, blockColumns(ctx, rows, plan, undefined), meta);
}

/**
 * Gateway side: encrypts weights, bias first, each replicated over all slots.
 *
 * @example
 * ```ts
 * const bytes = encryptWeights(ctx, Float64Array.from(model.coef_[0]), model.intercept_[0]);
 * ```
 */
export function encryptWeights(ctx: CkksContext, coef: ArrayLike<number>, intercept: number): Uint8Array {
  const values = [intercept, ...Array.from(coef)];
  const bad = values.findIndex((v) => !(Math.abs(v) <= WEIGHT_BOUND));
  if (bad >= 0) {
    const name = bad === 0 ? 'intercept' : `coefficient ${bad - 1}`;
    throw new CipherMLError('CIPHERML_E_OUT_OF_RANGE', `model ${name} is ${values[bad]}, outside ±${WEIGHT_BOUND}, the range an epoch's level-0 ciphertexts can hold under TRAIN_CKKS_PARAMETERS; standardize the features or lower the learning rate (a diverging fit reaches this at a refresh)`, { param: 'model' });
  }
  const meta: WeightsMeta = { kind: 'weights', features: coef.length };
  return encryptToBytes(ctx, values.map((v) => new Float64Array(ctx.slotCount).fill(v)), meta);
}

/**
 * Gateway side: decrypts weights made by {@link encryptWeights} or by training (slot 0 of each).
 *
 * @example
 * ```ts
 * const { coef, intercept } = decryptWeights(ctx, trainedBytes);
 * ```
 */
export function decryptWeights(ctx: CkksContext, bytes: Uint8Array): { coef: Float64Array; intercept: number } {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'weights');
  try {
    const m = meta as Partial<WeightsMeta> | null;
    if (m?.kind !== 'weights' || m.features !== vectors.length - 1) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'the container does not hold encrypted weights', { param: 'weights' });
    const values = vectors.map((v) => ctx.decryptVector(v, 1)[0]!);
    return { intercept: values[0]!, coef: Float64Array.from(values.slice(1)) };
  } finally {
    for (const v of vectors) v.delete();
  }
}

/**
 * Gateway side: decrypts encrypted scores (one ciphertext per block) into one logit per row.
 *
 * @example
 * ```ts
 * const z = decryptScores(ctx, scoreBytes);
 * ```
 */
export function decryptScores(ctx: CkksContext, bytes: Uint8Array): Float64Array {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'scores');
  try {
    const m = meta as { kind?: string; rows?: number; period?: number } | null;
    if (m?.kind !== 'scores' || typeof m.rows !== 'number' || typeof m.period !== 'number') throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'the container does not hold encrypted scores', { param: 'scores' });
    const out = new Float64Array(m.rows);
    vectors.forEach((v, b) => {
      const slots = ctx.decryptVector(v, m.period!);
      for (let r = 0; r < m.period! && b * m.period! + r < m.rows!; r++) out[b * m.period! + r] = slots[r]!;
    });
    return out;
  } finally {
    for (const v of vectors) v.delete();
  }
}

/** Hyper-parameters of {@link trainEncrypted} (HE4Cloud's hyper_params.json). */
export interface TrainHyperParams {
  readonly numberOfEpochs: number;
  readonly learningRate: number;
  readonly numberOfFeatures: number;
  readonly logisticRegressionActivation: 'sigmoid_poly_3_approximation';
}

/**
 * Checks hyper-parameters from an untrusted body.
 *
 * @example
 * ```ts
 * const hp = validateHyperParams(JSON.parse(body));
 * ```
 */
export function validateHyperParams(value: unknown): TrainHyperParams {
  const v = (value ?? {}) as Record<string, unknown>;
  assertIntegerInRange(v['numberOfEpochs'], 'numberOfEpochs', 1, 100);
  assertIntegerInRange(v['numberOfFeatures'], 'numberOfFeatures', 1, 4096);
  const lr = v['learningRate'];
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0 || lr > 10) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `learningRate must be a number in (0, 10], got ${JSON.stringify(lr)}`, { param: 'learningRate' });
  }
  const act = v['logisticRegressionActivation'] ?? 'sigmoid_poly_3_approximation';
  if (act !== 'sigmoid_poly_3_approximation') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `logisticRegressionActivation ${JSON.stringify(act)} is not supported (only "sigmoid_poly_3_approximation")`, { param: 'logisticRegressionActivation' });
  }
  return { numberOfEpochs: v['numberOfEpochs'], learningRate: lr, numberOfFeatures: v['numberOfFeatures'], logisticRegressionActivation: act };
}

function dataOf(ctx: CkksContext, bytes: Uint8Array, kind: DataMeta['kind'], features: number): { meta: DataMeta; vectors: CkksVector[] } {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, kind);
  const m = meta as Partial<DataMeta> | null;
  if (m?.kind !== kind || typeof m.blocks !== 'number' || typeof m.period !== 'number' || typeof m.rows !== 'number' || vectors.length !== m.blocks * ((m.features ?? -1) + (kind === 'train_data' ? 1 : 0))) {
    for (const v of vectors) v.delete();
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `the upload is not ${kind} in the trainer's layout`, { param: kind });
  }
  if (m.features !== features) {
    for (const v of vectors) v.delete();
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `the data has ${m.features} features, the model ${features}`, { param: 'numberOfFeatures', details: { data: m.features, model: features } });
  }
  if (!ctx.galoisSteps.includes(m.period / 2) && m.period > 1) {
    for (const v of vectors) v.delete();
    throw new CipherMLError('CIPHERML_E_CKKS_PARAMS_MISMATCH', `the public context lacks the Galois keys for rows packed ${m.period} per block`, { param: 'publicContext' });
  }
  return { meta: m as DataMeta, vectors };
}

function weightsOf(ctx: CkksContext, bytes: Uint8Array, features: number): CkksVector[] {
  const { vectors, meta } = deserializeCiphertexts(ctx, bytes, 'model');
  const m = meta as Partial<WeightsMeta> | null;
  if (m?.kind !== 'weights' || m.features !== features || vectors.length !== features + 1) {
    for (const v of vectors) v.delete();
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `the encrypted model has ${String(m?.features)} features, expected ${features}`, { param: 'model' });
  }
  return vectors;
}

/** Progress and refresh hooks of {@link trainEncrypted}. */
export interface TrainHooks {
  /** Called after each epoch with the encrypted weights (for checkpoints). */
  readonly onEpoch?: (epoch: number, weights: Uint8Array) => Promise<void>;
  /** Gets the weights decrypted and re-encrypted by the gateway; resolves with fresh ciphertexts. */
  readonly refresh: (weights: Uint8Array, epoch: number) => Promise<Uint8Array>;
}

/** Result of {@link trainEncrypted}. */
export interface TrainResult {
  readonly weights: Uint8Array;
  readonly epochs: number;
  readonly refreshes: number;
  readonly trainMs: number;
}

/**
 * Service side: trains on encrypted data with the public context only.
 *
 * @example
 * ```ts
 * const r = await trainEncrypted(publicCtx, dataBytes, modelBytes, hyper, { refresh: askGateway });
 * ```
 */
export async function trainEncrypted(ctx: CkksContext, dataBytes: Uint8Array, weightsBytes: Uint8Array, hyper: TrainHyperParams, hooks: TrainHooks, startEpoch = 0): Promise<TrainResult> {
  const t0 = performance.now();
  if (ctx.maxLevel < EPOCH_DEPTH) throw new CipherMLError('CIPHERML_E_CKKS_PARAMS_MISMATCH', `the parameters have ${ctx.maxLevel} levels, one epoch needs ${EPOCH_DEPTH}`, { param: 'publicContext' });
  const F = hyper.numberOfFeatures;
  const { meta, vectors: data } = dataOf(ctx, dataBytes, 'train_data', F);
  const owned: CkksVector[] = [...data];
  let w = weightsOf(ctx, weightsBytes, F);
  let refreshes = 0;
  try {
    const k = hyper.learningRate / meta.rows;
    const s = Math.sqrt(Math.abs(SIGMOID_POLY3.a3));
    // Per block: X_0 (ones over the block's rows), X_1..X_F, y.
    const blocks: { x: CkksVector[]; y: CkksVector }[] = [];
    for (let b = 0; b < meta.blocks; b++) {
      const count = Math.min(meta.period, meta.rows - b * meta.period);
      const ones = ctx.encryptVector(tiled(ctx.slotCount, meta.period, () => 1, count));
      owned.push(ones);
      const cols = data.slice(b * (F + 1), (b + 1) * (F + 1));
      blocks.push({ x: [ones, ...cols.slice(0, F)], y: cols[F]! });
    }
    // c_j = rotsum(Σ_b (y − a0) ⊙ X_j): data only; scaled by −k into the gradient's scale below.
    const cPre: CkksVector[] = [];
    for (let j = 0; j <= F; j++) {
      let acc: CkksVector | undefined;
      for (const blk of blocks) {
        const ox = ctx.mul(blk.x[0]!, blk.x[j]!);
        const a0x = ctx.mulScalar(ox, SIGMOID_POLY3.a0);
        ox.delete();
        const yx = ctx.mul(blk.y, blk.x[j]!);
        const d = ctx.sub(yx, a0x);
        a0x.delete();
        yx.delete();
        if (acc === undefined) acc = d;
        else { ctx.addInPlace(acc, d); d.delete(); }
      }
      cPre.push(ctx.sumSlots(acc!, meta.period));
      acc!.delete();
    }
    const c = cPre;
    owned.push(...c);
    for (let epoch = startEpoch; epoch < hyper.numberOfEpochs; epoch++) {
      if (ctx.levelOf(w[0]!) < EPOCH_DEPTH) {
        const bytes = serializeCiphertexts(ctx, w, { kind: 'weights', features: F } satisfies WeightsMeta);
        for (const v of w) v.delete();
        w = weightsOf(ctx, await hooks.refresh(bytes, epoch), F);
        refreshes++;
        if (ctx.levelOf(w[0]!) < EPOCH_DEPTH) throw new CipherMLError('CIPHERML_E_CKKS_DEPTH_EXHAUSTED', 'the refreshed weights are not fresh ciphertexts', { param: 'refresh' });
      }
      const grads: (CkksVector | undefined)[] = new Array<CkksVector | undefined>(F + 1).fill(undefined);
      for (const blk of blocks) {
        let z: CkksVector | undefined;
        for (let j = 0; j <= F; j++) {
          const p = ctx.mul(w[j]!, blk.x[j]!);
          if (z === undefined) z = p;
          else { ctx.addInPlace(z, p); p.delete(); }
        }
        const sz = ctx.mulScalar(z!, s);
        const sq = ctx.square(sz);
        sz.delete();
        const neg = ctx.negate(sq);
        sq.delete();
        const t = ctx.addScalar(neg, SIGMOID_POLY3.a1);
        neg.delete();
        for (let j = 0; j <= F; j++) {
          const u0 = ctx.mul(z!, blk.x[j]!);
          const u = atScale(ctx, u0, ctx.levelOf(t), t.scale, k);
          u0.delete();
          const g = ctx.mul(t, u);
          u.delete();
          if (grads[j] === undefined) grads[j] = g;
          else { ctx.addInPlace(grads[j]!, g); g.delete(); }
        }
        t.delete();
        z!.delete();
      }
      const next: CkksVector[] = [];
      for (let j = 0; j <= F; j++) {
        const g = ctx.sumSlots(grads[j]!, meta.period);
        grads[j]!.delete();
        const chain = ctx.levelOf(g);
        // w − g − k·(a0 − y)·x = w − g + k·c_j, all brought to g's chain index and scale.
        const kc = atScale(ctx, c[j]!, chain, g.scale, k);
        const wj = atScale(ctx, w[j]!, chain, g.scale);
        const step = ctx.sub(kc, g);
        g.delete();
        kc.delete();
        next.push(ctx.add(wj, step));
        wj.delete();
        step.delete();
      }
      for (const v of w) v.delete();
      w = next;
      if (hooks.onEpoch !== undefined) await hooks.onEpoch(epoch + 1, serializeCiphertexts(ctx, w, { kind: 'weights', features: F } satisfies WeightsMeta));
    }
    return { weights: serializeCiphertexts(ctx, w, { kind: 'weights', features: F } satisfies WeightsMeta), epochs: hyper.numberOfEpochs - startEpoch, refreshes, trainMs: performance.now() - t0 };
  } finally {
    for (const v of owned) v.delete();
    for (const v of w) v.delete();
  }
}

/**
 * Service side: encrypted logits z = w·x + b for every uploaded row (one ciphertext per block).
 *
 * @example
 * ```ts
 * const scores = predictEncrypted(publicCtx, trainedBytes, predictBytes, 30);
 * ```
 */
export function predictEncrypted(ctx: CkksContext, weightsBytes: Uint8Array, dataBytes: Uint8Array, features: number): Uint8Array {
  const { meta, vectors } = dataOf(ctx, dataBytes, 'predict_data', features);
  const w = weightsOf(ctx, weightsBytes, features);
  const out: CkksVector[] = [];
  try {
    if (ctx.levelOf(w[0]!) < 1) throw new CipherMLError('CIPHERML_E_CKKS_DEPTH_EXHAUSTED', 'the trained model has no level left for a product; upload it freshly encrypted', { param: 'model' });
    for (let b = 0; b < meta.blocks; b++) {
      let z: CkksVector | undefined;
      for (let j = 1; j <= features; j++) {
        const p = ctx.mul(w[j]!, vectors[b * features + j - 1]!);
        if (z === undefined) z = p;
        else { ctx.addInPlace(z, p); p.delete(); }
      }
      const bias = atScale(ctx, w[0]!, ctx.levelOf(z!), z!.scale);
      ctx.addInPlace(z!, bias);
      bias.delete();
      out.push(z!);
    }
    return serializeCiphertexts(ctx, out, { kind: 'scores', rows: meta.rows, period: meta.period });
  } finally {
    for (const v of [...vectors, ...w, ...out]) v.delete();
  }
}
