import type { CkksParameters, Seal } from '../ckks/index.ts';
import { binarySteps, binaryTerms, chooseCkksParameters, estimateKeySet, levelsOf, naf, powerOfTwoSteps } from '../ckks/index.ts';
import type { KeySetEstimate } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { batchCost, batchDepth } from './batch.ts';
import type { Algebra } from './execute.ts';
import { assertSupported, execute, PLAIN } from './execute.ts';
import type { ActivationOp } from './activations.ts';
import type { ChebyshevFit } from './activations.ts';
import { activation, chooseDegree, fitDepth, fitMinimax, fitWeighted, isActivation, meanAbsError, polynomialNodes, withoutOffset } from './activations.ts';
import type { Graph, GraphNode, Tensor } from './onnx.ts';
import { compileSingle, preparedSingleBytes } from './single.ts';
import { mulberry32 } from '../core/prng.ts';

/**
 * Calibration (HE-MAN's `keyparams` step): run the model in plaintext on calibration inputs, one
 * declared batch at a time (a model declaring a fixed batch of 1 runs sample by sample), record
 * the range of every layer, replace each Relu/Sigmoid/Tanh/Gelu with a polynomial fitted on the
 * layer's input range widened by `margin` (activations.ts: weighted by the calibrated inputs, or
 * minimax; degree per layer from a target error), compile the requested plans (depth, rotation steps, cost) and choose CKKS parameters
 * at 128-bit security whose last prime holds the largest magnitude with headroom, or refuse.
 */

/** Options of {@link calibrate}. */
export interface CalibrateOptions {
  /**
   * A fixed polynomial degree for every activation (HE-MAN's `--relu-mode degN`), or one per
   * activation in graph order; default: per layer, the smallest degree 2^k up to `maxDegree`
   * meeting `activationError`.
   */
  readonly degree?: number | readonly number[];
  /**
   * How each activation is fitted (activations.ts): `weighted` (default) least squares weighted
   * by the layer's calibrated inputs, the degree chosen on the mean error over them; `minimax`
   * the best uniform fit on the range, the degree chosen on the max error.
   */
  readonly fit?: ActivationFitKind;
  /** Shift each fit so that p(0) = 0 (HE-MAN's `--relu-mode degN_no_offset`); default false. */
  readonly zeroOffset?: boolean;
  /** Largest degree the per-layer choice may take; default 8 (depth 4 per activation). */
  readonly maxDegree?: number;
  /**
   * Target error per activation as a fraction of the activation's output span on the layer's
   * range (for Relu on [a, b], b): of the mean |p − f| over the calibration values with the
   * `weighted` fit, of the max |p − f| over the range with `minimax`; default 0.02.
   */
  readonly activationError?: number;
  /** Relative widening of each observed activation range on both sides; default 0.1. */
  readonly margin?: number;
  /**
   * How the fitting interval is formed from the observed inputs (HE-MAN's `--domain-mode`):
   * `min-max` (default) fits on their range [lo, hi] widened by `margin`; `symmetric` on [−R, R]
   * with R = max(|lo|, |hi|) widened by `margin`; `mean-std` (HE-MAN's) on [μ − 3σ, μ + 3σ] of the
   * calibration values widened by `margin` (values beyond it fall outside the fit).
   */
  readonly domain?: FitDomain;
  /** log2 of the CKKS scale; default: the largest of 30 … 26 that fits the smallest ring degree. */
  readonly scaleBits?: number;
  /**
   * Execution plans the key set must support: `batch` (one sample per slot, no Galois keys),
   * `single` (one input in the slots, rotations), or `auto` (both; `he encrypt` picks per
   * input by the cost model). Default `auto`.
   */
  readonly packing?: Packing;
  /**
   * Budget for key.pub in bytes (default 256 MiB). Over it, the single plan's rotations are served
   * by power-of-two Galois keys (each rotation then chains its non-adjacent form: more key
   * switches, at most 2·log2(slots) keys); still over it, `auto` keeps only the batch plan (no
   * Galois keys) and `single` is refused.
   */
  readonly maxKeyBytes?: number;
  /** Progress per calibration batch. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
}

/** How activations are fitted (see CalibrateOptions.fit). */
export type ActivationFitKind = 'weighted' | 'minimax';

/** Fitting interval rule (see CalibrateOptions.domain). */
export type FitDomain = 'min-max' | 'symmetric' | 'mean-std';

/** How the single plan's rotations are keyed (see KeyParams.keys). */
export type RotationKeys = 'exact' | 'power-of-two' | 'binary';

/** Plans a key set supports. */
export type Packing = 'auto' | 'batch' | 'single';

/** Cost-model figures of one plan (operations per run; see docs/inference.md). */
export interface PlanSummary {
  readonly depth: number;
  /** Plaintext products (batch: scalar multiply-adds; single: diagonals). */
  readonly plainProducts: number;
  readonly rotations: number;
  readonly products: number;
  /** Relative cost: plainProducts + 12 × (rotations + products). */
  readonly cost: number;
}

/** A replaced activation. */
export interface ActivationFit {
  readonly node: string;
  readonly op: ActivationOp;
  /** The fitting interval (observed input range widened by the margin). */
  readonly range: readonly [number, number];
  /** Observed input range on the calibration set. */
  readonly observed: readonly [number, number];
  /** Mean and standard deviation of the observed inputs. */
  readonly mean: number;
  readonly std: number;
  readonly fit: ActivationFitKind;
  readonly degree: number;
  /** Levels the activation adds (⌈log2 degree⌉; its affine map merges into the layer before). */
  readonly depth: number;
  /** c_0 … c_d of Σ c_j T_j(t), t = (2x − a − b)/(b − a) on range [a, b]. */
  readonly chebyshev: readonly number[];
  /** Max |p(x) − f(x)| on the fitting range. */
  readonly maxError: number;
  /** Mean |p(x) − f(x)| over a uniform sample of at most 40,000 calibration values. */
  readonly meanError: number;
  /** The error the degree was chosen for (absolute; mean error if `weighted`, max if `minimax`). */
  readonly targetError: number;
}

/** Observed output range of one node on the calibration set. */
export interface LayerRange {
  readonly node: string;
  readonly op: string;
  readonly min: number;
  readonly max: number;
}

/** The keyparams file contents. */
export interface KeyParams {
  readonly format: 'cipherml-he-keyparams';
  readonly version: 1;
  readonly packing: Packing;
  /** Depth of the deepest supported plan (the key set's levels). */
  readonly depth: number;
  readonly plans: { readonly batch?: PlanSummary; readonly single?: PlanSummary & { readonly inputPeriod: number; readonly slots: number; /** Bytes of its encoded diagonals on the server (preparedSingleBytes). */ readonly diagonalBytes?: number } };
  /** With `auto`, inputs of at most this many samples use the single plan (cost model). */
  readonly singleUpTo: number;
  readonly params: CkksParameters;
  readonly galoisSteps: readonly number[];
  readonly inputDims: readonly (number | null)[];
  /** Largest |value| seen in any tensor during calibration (original and calibrated model). */
  readonly maxAbs: number;
  /** Calibration samples measured. */
  readonly samples: number;
  readonly activations: readonly ActivationFit[];
  /** Per-node output ranges of the original model. */
  readonly layers: readonly LayerRange[];
  /** Range of the model outputs on the calibration set; decryption flags values far outside it. */
  readonly outputRange: readonly [number, number];
  /** Range safety: bits the last prime holds beyond the scale, and the headroom over maxAbs. */
  readonly range: { readonly integerBits: number; readonly headroomBits: number };
  /** What keygen will make, estimated before it starts (see ckks/keys.ts). */
  readonly keys: KeySetEstimate & {
    /** `exact`: one key per rotation step; `power-of-two`: keys for ±2^k (NAF chains); `binary`: keys for +2^k (binary chains). */
    readonly rotationKeys: RotationKeys;
    readonly maxKeyBytes: number;
    /** Why the plan differs from the one asked for, if it does. */
    readonly note?: string;
  };
}

/**
 * Calibrates a model on `samples` (batch-first) and returns the calibrated graph and keyparams.
 *
 * @example
 * ```ts
 * const { graph: calibrated, keyParams } = calibrate(seal, parseOnnx(bytes), readArrays(npz)[0]);
 * ```
 */
export function calibrate(seal: Seal, graph: Graph, samples: Tensor, options: CalibrateOptions = {}): { graph: Graph; keyParams: KeyParams } {
  assertSupported(graph);
  const fixed = options.degree;
  for (const d of typeof fixed === 'number' ? [fixed] : (fixed ?? [])) assertIntegerInRange(d, 'degree', 1, 16);
  const nActivations = graph.nodes.filter((n) => isActivation(n.op)).length;
  if (Array.isArray(fixed) && fixed.length !== nActivations) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${fixed.length} degrees given for ${nActivations} activation(s): give one per Relu/Sigmoid/Tanh/Gelu node in graph order, or one for all`, { param: 'degree', details: { given: fixed.length, activations: nActivations } });
  }
  const maxDegree = options.maxDegree ?? 8;
  assertIntegerInRange(maxDegree, 'maxDegree', 1, 16);
  const relError = options.activationError ?? 0.02;
  if (!(relError > 0 && relError < 1)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `activation error ${relError} is not in (0, 1)`, { param: 'activationError' });
  const margin = options.margin ?? 0.1;
  if (!(margin >= 0 && margin <= 10)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `margin ${margin} is not in [0, 10]`, { param: 'margin' });
  const domain = options.domain ?? 'min-max';
  if (!['min-max', 'symmetric', 'mean-std'].includes(domain)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `domain "${String(domain)}" is not min-max, symmetric or mean-std`, { param: 'domain' });
  const fitKind = options.fit ?? 'weighted';
  if (fitKind !== 'weighted' && fitKind !== 'minimax') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `activation fit "${String(fitKind)}" is not weighted or minimax`, { param: 'fit' });

  const m = measure(graph, samples, options.onProgress);
  const activations: ActivationFit[] = [];
  const nodes: GraphNode[] = [];
  const initializers = new Map(graph.initializers);
  for (const n of graph.nodes) {
    if (!isActivation(n.op)) {
      nodes.push(n);
      continue;
    }
    const r = m.activationInputs.get(n.name);
    if (r === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `activation ${n.name} saw no calibration values`, { param: 'calibration' });
    const f = activation(n.op, n);
    const values = m.activationValues.get(n.name)!;
    const stats = m.activationStats.get(n.name)!;
    const mean = stats.sum / stats.count;
    const std = Math.sqrt(Math.max(0, stats.sumSq / stats.count - mean * mean));
    let range: [number, number];
    if (domain === 'symmetric') {
      const R = Math.max(Math.abs(r[0]), Math.abs(r[1]), 1e-3) * (1 + margin);
      range = [-R, R];
    } else {
      const [lo, hi] = domain === 'mean-std' ? [mean - 3 * std, mean + 3 * std] : r;
      const half = Math.max(1e-3, (hi - lo) / 2);
      range = [lo - margin * half, hi + margin * half];
    }
    let span = 0;
    let lo = Infinity;
    for (let i = 0; i <= 200; i++) {
      const v = f(range[0] + ((range[1] - range[0]) * i) / 200);
      lo = Math.min(lo, v);
      span = Math.max(span, v - lo);
    }
    const targetError = relError * Math.max(span, 1e-6);
    const fitAt = (d: number): ChebyshevFit => {
      const raw = fitKind === 'minimax' ? fitMinimax(f, range, d) : fitWeighted(f, range, d, values);
      return options.zeroOffset === true ? withoutOffset(raw, f) : raw;
    };
    const error = (fit: ChebyshevFit): number => (fitKind === 'minimax' ? fit.maxError : meanAbsError(fit, f, values));
    const fixedHere = typeof fixed === 'number' ? fixed : fixed?.[activations.length];
    const fit = fixedHere !== undefined ? fitAt(fixedHere) : chooseDegree(fitAt, error, targetError, maxDegree);
    const degree = fit.chebyshev.length - 1;
    activations.push({ node: n.name, op: n.op, range: fit.range, observed: r, mean, std, fit: fitKind, degree, depth: Math.max(0, fitDepth(degree) - 1), chebyshev: fit.chebyshev, maxError: fit.maxError, meanError: meanAbsError(fit, f, values), targetError });
    nodes.push(...polynomialNodes(n, fit, initializers));
  }
  const calibrated: Graph = { ...graph, nodes, initializers };
  let packing = options.packing ?? 'auto';
  if (!['auto', 'batch', 'single'].includes(packing)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `packing "${String(packing)}" is not auto, batch or single`, { param: 'packing' });
  const maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
  if (!(maxKeyBytes > 0)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `key budget ${maxKeyBytes} is not a positive number of bytes`, { param: 'maxKeyBytes' });
  let batch: PlanSummary | undefined;
  if (packing !== 'single') {
    const c = batchCost(calibrated);
    batch = { depth: batchDepth(calibrated), plainProducts: c.scalarProducts, rotations: 0, products: c.products, cost: c.scalarProducts + ROTATION_WEIGHT * c.products };
  }
  let single: (PlanSummary & { inputPeriod: number; slots: number; diagonalBytes?: number }) | undefined;
  let singlePlan: ReturnType<typeof compileSingle> | undefined;
  let galoisSteps: readonly number[] = [];
  if (packing !== 'batch') {
    const plan = compileSingle(calibrated);
    singlePlan = plan;
    galoisSteps = plan.galoisSteps;
    const { diagonals, rotations, products } = plan.cost;
    single = { depth: plan.depth, plainProducts: diagonals, rotations, products, cost: diagonals + ROTATION_WEIGHT * (rotations + products), inputPeriod: plan.inputPeriod, slots: plan.slotCount };
  }
  const plannedRotations = single?.rotations ?? 0;
  // The calibrated model's own intermediates (polynomial terms) on a few samples join the range.
  const nCheck = Math.min(m.samples, CHECK_SAMPLES - (CHECK_SAMPLES % (graph.inputs[0]?.dims[0] ?? 1)));
  const perSample = samples.data.length / samples.dims[0]!;
  const check = measure(calibrated, { dims: [nCheck, ...samples.dims.slice(1)], data: samples.data.subarray(0, nCheck * perSample) }, undefined);
  const maxAbs = Math.max(m.maxAbs, check.maxAbs);
  const choose = (): { params: CkksParameters; integerBits: number; depth: number } => {
    const depth = Math.max(batch?.depth ?? 0, single?.depth ?? 0);
    return { ...chooseParams(seal, depth, maxAbs, options.scaleBits, single?.slots ?? 0, single !== undefined, m.layers), depth };
  };
  let { params, integerBits, depth } = choose();
  let rotationKeys: RotationKeys = 'exact';
  let note: string | undefined;
  let estimate = estimateKeySet(params, galoisSteps);
  if (estimate.publicKeyBytes > maxKeyBytes && single !== undefined) {
    const slots = params.polyModulusDegree / 2;
    const exact = galoisSteps;
    const exactBytes = estimate.publicKeyBytes;
    // Fewer keys, more key switches per rotation: ±2^k (NAF chains), then +2^k (binary chains).
    const tiers: [RotationKeys, number[], (st: number) => number][] = [
      ['power-of-two', powerOfTwoSteps(exact, slots), (st) => naf(st).filter((t) => t % slots !== 0).length],
      ['binary', binarySteps(exact, slots), (st) => binaryTerms(st, slots).length],
    ];
    for (const [kind, steps, terms] of tiers) {
      if (estimate.publicKeyBytes <= maxKeyBytes || steps.length >= galoisSteps.length) continue;
      // Each rotation becomes a chain: the plan's key switches grow by the mean chain length.
      const weight = exact.reduce((a, st) => a + terms(st), 0) / exact.length;
      const rotations = Math.round(plannedRotations * weight);
      single = { ...single, rotations, cost: single.plainProducts + ROTATION_WEIGHT * (rotations + single.products) };
      note = `${exact.length} exact Galois keys (${formatMiB(exactBytes)}) exceed the key budget of ${formatMiB(maxKeyBytes)}: ${steps.length} ${kind} keys serve the rotations, ${weight.toFixed(2)} key switches each on average`;
      galoisSteps = steps;
      rotationKeys = kind;
      estimate = estimateKeySet(params, galoisSteps);
    }
    if (estimate.publicKeyBytes > maxKeyBytes) {
      if (packing === 'single') {
        throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `the single plan needs ${galoisSteps.length} Galois keys, ${formatMiB(estimate.publicKeyBytes)} of key.pub, over the key budget of ${formatMiB(maxKeyBytes)}: raise the budget or use --packing batch (no Galois keys)`, {
          param: 'maxKeyBytes',
          details: { publicKeyBytes: estimate.publicKeyBytes, maxKeyBytes, galoisKeys: galoisSteps.length },
        });
      }
      note = `the single plan needs ${formatMiB(estimate.publicKeyBytes)} of keys, over the key budget of ${formatMiB(maxKeyBytes)}: only the batch plan (no Galois keys) is kept`;
      single = undefined;
      galoisSteps = [];
      rotationKeys = 'exact';
      packing = 'batch';
      ({ params, integerBits, depth } = choose());
      estimate = estimateKeySet(params, galoisSteps);
    }
  }
  if (single !== undefined && singlePlan !== undefined) single = { ...single, diagonalBytes: preparedSingleBytes(singlePlan, params.polyModulusDegree, levelsOf(params)) };
  const singleUpTo = single === undefined ? 0 : batch === undefined ? params.polyModulusDegree / 2 : Math.max(1, Math.floor(batch.cost / single.cost));
  const keyParams: KeyParams = {
    format: 'cipherml-he-keyparams',
    version: 1,
    packing,
    depth,
    plans: { ...(batch === undefined ? {} : { batch }), ...(single === undefined ? {} : { single }) },
    singleUpTo,
    params,
    galoisSteps,
    inputDims: graph.inputs[0]?.dims ?? [],
    maxAbs,
    samples: m.samples,
    activations,
    layers: m.layers,
    outputRange: m.outputRange,
    range: { integerBits, headroomBits: HEADROOM_BITS },
    keys: { ...estimate, rotationKeys, maxKeyBytes, ...(note === undefined ? {} : { note }) },
  };
  return { graph: calibrated, keyParams };
}

/** Relative cost of a key switch (rotation or relinearization) against a plaintext product. */
const ROTATION_WEIGHT = 12;

/** Default key.pub budget. */
const DEFAULT_MAX_KEY_BYTES = 256 * 2 ** 20;

function formatMiB(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Bits of headroom the last prime keeps above the largest calibrated magnitude (16×). */
const HEADROOM_BITS = 4;
/** Calibration samples the calibrated model is re-run on to bound its own intermediates. */
const CHECK_SAMPLES = 32;
/** SEAL's largest prime. */
const MAX_PRIME_BITS = 60;
/** Smallest scale the automatic choice goes down to before refusing (precision ≈ 2^−(scale − 10)). */
const MIN_SCALE_BITS = 20;

/**
 * The smallest ring degree that fits, and at it the largest scale in 30 … 26 (below 26, down to
 * 20, only when the range requires it) such
 * that the last prime q_0 holds the result: |x|·Δ < q_0/2 for |x| ≤ maxAbs·2^HEADROOM_BITS
 * (a value encoded at scale Δ wraps around modulo q_0 beyond that; at higher levels the modulus
 * only grows, so the last prime is the binding one). When no prime of at most 60 bits can, refuse
 * naming the layer with the largest range. Plans with rotations get the largest special prime the
 * bound leaves (key-switching noise falls with it).
 */
function chooseParams(seal: Seal, depth: number, maxAbs: number, scaleBits: number | undefined, minSlots: number, rotations: boolean, layers: readonly LayerRange[]): { params: CkksParameters; integerBits: number } {
  const integerBits = Math.max(1, Math.ceil(Math.log2(maxAbs + 1))) + HEADROOM_BITS + 1;
  const fits = (s: number): boolean => s + integerBits <= MAX_PRIME_BITS;
  // Precision first: scales below 26 only when the range leaves no larger one (they are never
  // traded for a smaller ring; the single plan's key switching needs the bits).
  const precise = [30, 29, 28, 27, 26].filter(fits);
  const tries = scaleBits !== undefined ? [scaleBits] : precise.length > 0 ? precise : [25, 24, 23, 22, 21, MIN_SCALE_BITS].filter(fits);
  if (tries.length === 0 || !fits(tries[0]!)) {
    const worst = layers.reduce<LayerRange | undefined>((w, l) => (w === undefined || Math.max(Math.abs(l.min), Math.abs(l.max)) > Math.max(Math.abs(w.min), Math.abs(w.max)) ? l : w), undefined);
    const where = worst === undefined ? 'the input' : `layer "${worst.node}" (${worst.op}) ranges over [${worst.min.toPrecision(4)}, ${worst.max.toPrecision(4)}]`;
    const s = scaleBits ?? MIN_SCALE_BITS;
    throw new CipherMLError('CIPHERML_E_HE_RANGE_UNSAFE', `${where}: |x| ≤ ${maxAbs.toPrecision(4)} with ${HEADROOM_BITS} bits of headroom at scale 2^${s} needs a ${s + integerBits}-bit last prime, SEAL's primes have at most ${MAX_PRIME_BITS} bits`, {
      param: scaleBits === undefined ? 'calibration' : 'scaleBits',
      details: { node: worst?.node, range: worst === undefined ? undefined : [worst.min, worst.max], maxAbs, scaleBits: s, neededBits: s + integerBits },
    });
  }
  let best: CkksParameters | undefined;
  let last: unknown;
  for (const s of tries) {
    try {
      const p = chooseCkksParameters(seal, { depth, scaleBits: s, outerBits: Math.min(MAX_PRIME_BITS, Math.max(s + integerBits, s + 10)), minPolyModulusDegree: 8192, minSlots, ...(rotations ? { specialBits: 'max' as const } : {}) });
      if (best === undefined || p.polyModulusDegree < best.polyModulusDegree) best = p;
    } catch (e) {
      last = e;
    }
  }
  if (best === undefined) throw last;
  return { params: best, integerBits };
}

/** Activation inputs kept per layer (a uniform sample) for the weighted fits and the mean errors. */
const KEEP = 40000;

/** What a calibration run measures. */
interface Measured {
  readonly maxAbs: number;
  readonly samples: number;
  readonly activationInputs: Map<string, [number, number]>;
  /** A uniform sample of KEEP of each activation's inputs (all of them if fewer). */
  readonly activationValues: Map<string, number[]>;
  readonly activationStats: Map<string, { count: number; sum: number; sumSq: number }>;
  readonly layers: LayerRange[];
  readonly outputRange: [number, number];
}

/**
 * Runs the model on the samples one declared batch at a time: a fixed batch dimension b (e.g.
 * HE-MAN's [1, 1, 28, 28]) takes b samples per run, a symbolic one up to 64; the model's
 * declared shapes are never changed.
 */
function measure(graph: Graph, samples: Tensor, onProgress: CalibrateOptions['onProgress']): Measured {
  const spec = graph.inputs[0];
  if (spec === undefined || graph.inputs.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', 'calibration supports models with exactly one input', { param: 'model' });
  const total = samples.dims[0] ?? 0;
  if (total < 1) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', 'the calibration set is empty', { param: 'calibration' });
  const per = samples.data.length / samples.dims[0]!;
  const fixed = spec.dims[0];
  const chunk = fixed === null || fixed === undefined ? 64 : fixed;
  if (chunk === fixed && total % chunk !== 0) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `${total} calibration samples for a model with a fixed batch of ${chunk}: give a multiple of ${chunk} samples`, { param: 'calibration', details: { samples: total, batch: chunk } });
  }
  let maxAbs = 0;
  const activationInputs = new Map<string, [number, number]>();
  const activationValues = new Map<string, number[]>();
  const activationStats = new Map<string, { count: number; sum: number; sumSq: number }>();
  const random = mulberry32(0x5eed);
  const layerMap = new Map<string, LayerRange & { min: number; max: number }>();
  const outputRange: [number, number] = [Infinity, -Infinity];
  const outputs = new Set(graph.outputs);
  const recording: Algebra<number> = {
    ...PLAIN,
    nonlinear: (op, a, node) => {
      const r = activationInputs.get(node.name) ?? [Infinity, -Infinity];
      if (a < r[0]) r[0] = a;
      if (a > r[1]) r[1] = a;
      activationInputs.set(node.name, r);
      let st = activationStats.get(node.name);
      if (st === undefined) activationStats.set(node.name, (st = { count: 0, sum: 0, sumSq: 0 }));
      // Uniform sample of KEEP values (reservoir sampling, Vitter's algorithm R, seeded so that
      // calibration is reproducible). A fixed stride would alias with the tensor layout: stride
      // 20 through 16 × 10 × 10 feature maps keeps one image column only.
      let kept = activationValues.get(node.name);
      if (kept === undefined) activationValues.set(node.name, (kept = []));
      if (kept.length < KEEP) kept.push(a);
      else {
        const j = Math.floor(random() * (st.count + 1));
        if (j < KEEP) kept[j] = a;
      }
      st.count++;
      st.sum += a;
      st.sumSq += a * a;
      return PLAIN.nonlinear(op, a, node);
    },
  };
  for (let s = 0; s < total; s += chunk) {
    const n = Math.min(chunk, total - s);
    const data = Array.from(samples.data.subarray(s * per, (s + n) * per));
    for (const v of data) maxAbs = Math.max(maxAbs, Math.abs(v));
    execute(graph, recording, [{ dims: [n, ...samples.dims.slice(1)], data }], {
      onNode: (node, outs) => {
        let l = layerMap.get(node.name);
        if (l === undefined && outs.length > 0) layerMap.set(node.name, (l = { node: node.name, op: node.op, min: Infinity, max: -Infinity }));
        const isOut = node.outputs.some((o) => outputs.has(o));
        for (const t of outs) {
          for (const v of t.data) {
            if (v < l!.min) l!.min = v;
            if (v > l!.max) l!.max = v;
            if (isOut) {
              if (v < outputRange[0]) outputRange[0] = v;
              if (v > outputRange[1]) outputRange[1] = v;
            }
          }
        }
      },
    });
    onProgress?.(s + n, total, 'calibration');
  }
  const layers = [...layerMap.values()];
  for (const l of layers) maxAbs = Math.max(maxAbs, Math.abs(l.min), Math.abs(l.max));
  if (!Number.isFinite(maxAbs)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', 'a layer produced a non-finite value on the calibration set', { param: 'calibration' });
  return { maxAbs, samples: total, activationInputs, activationValues, activationStats, layers, outputRange };
}
