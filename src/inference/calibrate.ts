import type { CkksParameters, Seal } from '../ckks/index.ts';
import { chooseCkksParameters } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import { batchCost, batchDepth } from './batch.ts';
import type { Algebra } from './execute.ts';
import { assertSupported, execute, PLAIN } from './execute.ts';
import type { Graph, GraphNode, Tensor } from './onnx.ts';
import { compileSingle } from './single.ts';

/**
 * Calibration (HE-MAN's `keyparams` step): run the model in plaintext on calibration inputs,
 * record the range of every tensor, replace each Relu/Sigmoid with the least-squares polynomial
 * of the chosen degree on its observed input range (widened by `margin`), compile the requested
 * plans (depth, rotation steps, cost) and choose CKKS parameters at 128-bit security whose first
 * prime leaves room for the largest observed magnitude.
 */

/** Options of {@link calibrate}. */
export interface CalibrateOptions {
  /** Polynomial degree replacing Relu/Sigmoid; default 2 (one level). */
  readonly degree?: number;
  /** Relative widening of each observed activation range; default 0.1. */
  readonly margin?: number;
  /** log2 of the CKKS scale; default: the largest of 30 … 26 that fits the smallest ring degree. */
  readonly scaleBits?: number;
  /**
   * Execution plans the key set must support: `batch` (one sample per slot, no Galois keys),
   * `single` (one input in the slots, rotations), or `auto` (both; `he encrypt` picks per
   * input by the cost model). Default `auto`.
   */
  readonly packing?: Packing;
}

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
  readonly op: 'Relu' | 'Sigmoid';
  readonly range: readonly [number, number];
  /** c_0 … c_d of Σ c_k x^k. */
  readonly coefficients: readonly number[];
  /** Max |p(x) − f(x)| on the range. */
  readonly maxError: number;
}

/** The keyparams file contents. */
export interface KeyParams {
  readonly format: 'cipherml-he-keyparams';
  readonly version: 1;
  readonly packing: Packing;
  /** Depth of the deepest supported plan (the key set's levels). */
  readonly depth: number;
  readonly plans: { readonly batch?: PlanSummary; readonly single?: PlanSummary & { readonly inputPeriod: number; readonly slots: number } };
  /** With `auto`, inputs of at most this many samples use the single plan (cost model). */
  readonly singleUpTo: number;
  readonly params: CkksParameters;
  readonly galoisSteps: readonly number[];
  readonly inputDims: readonly (number | null)[];
  /** Largest |value| seen in any tensor during calibration. */
  readonly maxAbs: number;
  readonly activations: readonly ActivationFit[];
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
  const degree = options.degree ?? 2;
  assertIntegerInRange(degree, 'degree', 1, 8);
  const margin = options.margin ?? 0.1;
  const ranges = new Map<string, [number, number]>();
  let maxAbs = 0;
  const track = (v: number): void => {
    maxAbs = Math.max(maxAbs, Math.abs(v));
  };
  const recording: Algebra<number> = {
    ...PLAIN,
    nonlinear: (op, a, node) => {
      const r = ranges.get(node.name) ?? [Infinity, -Infinity];
      ranges.set(node.name, [Math.min(r[0], a), Math.max(r[1], a)]);
      return PLAIN.nonlinear(op, a, node);
    },
  };
  samples.data.forEach(track);
  execute(graph, recording, [{ dims: samples.dims, data: Array.from(samples.data) }], { onNode: (_n, outs) => outs.forEach((t) => t.data.forEach(track)) });

  const activations: ActivationFit[] = [];
  const nodes: GraphNode[] = [];
  const initializers = new Map(graph.initializers);
  for (const n of graph.nodes) {
    if (n.op !== 'Relu' && n.op !== 'Sigmoid') {
      nodes.push(n);
      continue;
    }
    const r = ranges.get(n.name);
    if (r === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `activation ${n.name} saw no calibration values`, { param: 'calibration' });
    const half = Math.max(1e-3, (r[1] - r[0]) / 2);
    const range: [number, number] = [r[0] - margin * half, r[1] + margin * half];
    const f = n.op === 'Relu' ? (x: number) => Math.max(0, x) : (x: number) => 1 / (1 + Math.exp(-x));
    const coefficients = fitPolynomial(f, range, degree);
    let maxError = 0;
    for (let i = 0; i <= 200; i++) {
      const x = range[0] + ((range[1] - range[0]) * i) / 200;
      maxError = Math.max(maxError, Math.abs(evalPoly(coefficients, x) - f(x)));
    }
    activations.push({ node: n.name, op: n.op, range, coefficients, maxError });
    nodes.push(...polynomialNodes(n, coefficients, initializers));
  }
  const calibrated: Graph = { ...graph, nodes, initializers };
  const packing = options.packing ?? 'auto';
  if (!['auto', 'batch', 'single'].includes(packing)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `packing "${String(packing)}" is not auto, batch or single`, { param: 'packing' });
  let batch: PlanSummary | undefined;
  if (packing !== 'single') {
    const c = batchCost(calibrated);
    batch = { depth: batchDepth(calibrated), plainProducts: c.scalarProducts, rotations: 0, products: c.products, cost: c.scalarProducts + ROTATION_WEIGHT * c.products };
  }
  let single: (PlanSummary & { inputPeriod: number; slots: number }) | undefined;
  let galoisSteps: readonly number[] = [];
  if (packing !== 'batch') {
    const plan = compileSingle(calibrated);
    galoisSteps = plan.galoisSteps;
    const { diagonals, rotations, products } = plan.cost;
    single = { depth: plan.depth, plainProducts: diagonals, rotations, products, cost: diagonals + ROTATION_WEIGHT * (rotations + products), inputPeriod: plan.inputPeriod, slots: plan.slotCount };
  }
  const depth = Math.max(batch?.depth ?? 0, single?.depth ?? 0);
  const params = chooseParams(seal, depth, maxAbs, options.scaleBits, single?.slots ?? 0, single !== undefined);
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
    activations,
  };
  return { graph: calibrated, keyParams };
}

/** Relative cost of a key switch (rotation or relinearization) against a plaintext product. */
const ROTATION_WEIGHT = 12;

/**
 * The smallest ring degree that fits, and at it the largest scale in 30 … 26 (precision). The
 * first prime holds the result: scale bits + integer bits for |x| ≤ maxAbs, with 4 bits of
 * headroom for inputs beyond the calibration set. Plans with rotations get the largest special
 * prime the bound leaves (key-switching noise falls with it).
 */
function chooseParams(seal: Seal, depth: number, maxAbs: number, scaleBits: number | undefined, minSlots: number, rotations: boolean): CkksParameters {
  const intBits = Math.max(1, Math.ceil(Math.log2(maxAbs + 1))) + 4;
  const tries = scaleBits === undefined ? [30, 29, 28, 27, 26] : [scaleBits];
  let best: CkksParameters | undefined;
  let last: unknown;
  for (const s of tries) {
    try {
      const p = chooseCkksParameters(seal, { depth, scaleBits: s, outerBits: Math.min(60, s + intBits), minPolyModulusDegree: 8192, minSlots, ...(rotations ? { specialBits: 'max' as const } : {}) });
      if (best === undefined || p.polyModulusDegree < best.polyModulusDegree) best = p;
    } catch (e) {
      last = e;
    }
  }
  if (best === undefined) throw last;
  return best;
}

/** Least-squares fit of f on `range` (uniform grid), computed in t = x/R for conditioning. */
function fitPolynomial(f: (x: number) => number, range: readonly [number, number], degree: number): number[] {
  const R = Math.max(Math.abs(range[0]), Math.abs(range[1]), 1e-9);
  const m = degree + 1;
  const ata = Array.from({ length: m }, () => new Float64Array(m));
  const atb = new Float64Array(m);
  const points = 400;
  for (let i = 0; i <= points; i++) {
    const x = range[0] + ((range[1] - range[0]) * i) / points;
    const t = x / R;
    const pw = Array.from({ length: m }, (_, k) => t ** k);
    for (let a = 0; a < m; a++) {
      atb[a]! += pw[a]! * f(x);
      for (let b = 0; b < m; b++) ata[a]![b]! += pw[a]! * pw[b]!;
    }
  }
  const c = solve(ata, atb);
  return c.map((v, k) => v / R ** k);
}

function solve(a: Float64Array[], b: Float64Array): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[piv]![col]!)) piv = r;
    [m[col], m[piv]] = [m[piv]!, m[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let k = col; k <= n; k++) m[r]![k]! -= f * m[col]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

function evalPoly(c: readonly number[], x: number): number {
  return c.reduceRight((acc, v) => acc * x + v, 0);
}

/** Standard ONNX nodes computing Σ c_k x^k (powers by squaring), so onnxruntime runs them too. */
function polynomialNodes(n: GraphNode, c: readonly number[], inits: Map<string, Tensor>): GraphNode[] {
  const x = n.inputs[0]!;
  const out = n.outputs[0]!;
  const name = (s: string): string => `${n.name}/poly_${s}`;
  const nodes: GraphNode[] = [];
  const powers = new Map<number, string>([[1, x]]);
  const power = (k: number): string => {
    const have = powers.get(k);
    if (have !== undefined) return have;
    const h = Math.floor(k / 2);
    const a = power(h);
    const b = power(k - h);
    const o = name(`x${k}`);
    nodes.push({ op: 'Mul', name: o, inputs: [a, b], outputs: [o], attrs: {} });
    powers.set(k, o);
    return o;
  };
  const scalar = (v: number, tag: string): string => {
    const id = name(tag);
    inits.set(id, { dims: [], data: Float64Array.of(v) });
    return id;
  };
  let acc: string | undefined;
  for (let k = c.length - 1; k >= 1; k--) {
    const term = name(`t${k}`);
    nodes.push({ op: 'Mul', name: term, inputs: [power(k), scalar(c[k]!, `c${k}`)], outputs: [term], attrs: {} });
    if (acc === undefined) acc = term;
    else {
      const s = name(`s${k}`);
      nodes.push({ op: 'Add', name: s, inputs: [acc, term], outputs: [s], attrs: {} });
      acc = s;
    }
  }
  nodes.push({ op: 'Add', name: name('out'), inputs: [acc ?? x, scalar(c[0] ?? 0, 'c0')], outputs: [out], attrs: {} });
  return nodes;
}
