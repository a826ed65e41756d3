import type { CkksContext, CkksDiagonalMatrix, CkksVector } from '../ckks/index.ts';
import { bestBabyStep, binaryTerms, chainSteps, diagonalSteps, naf, sumSlotsSteps } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import type { Algebra } from './execute.ts';
import { execute } from './execute.ts';
import type { Graph } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * The single execution plan: one input packed into the slots of one ciphertext, for the lowest
 * latency on one sample.
 *
 * Compilation traces the graph symbolically: every element is an affine form over leaves (input
 * elements, products, and forms that a product forced into a ciphertext). Leaves are grouped into
 * packed vectors: the input, then per product stage the operand vectors A, B and the product
 * vector P = A ⊙ B. Every packed vector of r rows is stored with period p = 2^⌈log2 r⌉ (slot j
 * holds row j mod p; rows ≥ r are zero), so a cyclic rotation of the whole ciphertext rotates
 * each period block alike.
 *
 * A linear map W (m × n) from a source of period n' to a target of period m' is evaluated by the
 * generalized-diagonal method (Halevi–Shoup, CRYPTO 2014) in its "hybrid" form (Juvekar et al.,
 * GAZELLE, USENIX Security 2018, §5.2): D = min(m', n') diagonals diag_d[j] =
 * W[j mod m', (j + d) mod n'], y = Σ_d diag_d ⊙ rot(x, d) by baby-step/giant-step, then, when
 * n' > m', log2(n'/m') rotate-and-adds with stride m'. The result has period m', ready for the
 * next layer. Each map costs one level; products cost one level.
 */

type Leaf = number;

class Form {
  readonly terms: Map<Leaf, number>;
  readonly bias: number;
  /** Leaf standing for this whole form once a product forced it into a packed vector. */
  matLeaf: Leaf | undefined;
  constructor(terms: Map<Leaf, number>, bias: number) {
    this.terms = terms;
    this.bias = bias;
  }
  /** The single leaf this form equals (coefficient 1, no bias), if any. */
  get trivial(): Leaf | undefined {
    if (this.bias !== 0 || this.terms.size !== 1) return undefined;
    const [[leaf, k]] = [...this.terms] as [[Leaf, number]];
    return k === 1 ? leaf : undefined;
  }
}

type Sym = number | Form;

interface Product {
  readonly a: Form;
  readonly b: Form;
  readonly leaf: Leaf;
}

type LeafInfo = { readonly kind: 'input'; readonly index: number } | { readonly kind: 'prod'; readonly prod: Product } | { readonly kind: 'mat'; readonly form: Form };

/** A linear map into a packed vector: one diagonal matrix per source vector, plus a bias. */
export interface SingleMap {
  readonly sources: readonly {
    readonly vector: number;
    readonly period: number;
    readonly diagonals: readonly { readonly rotation: number; readonly values: Float64Array }[];
    readonly babyStep: number;
  }[];
  readonly bias: Float64Array | undefined;
}

/** One step of the compiled plan, producing packed vector `out`. */
export type SingleStep =
  | { readonly kind: 'map'; readonly out: number; readonly map: SingleMap; readonly level: number; readonly period: number }
  | { readonly kind: 'mul'; readonly out: number; readonly a: number; readonly b: number; readonly level: number };

/** A compiled single plan. */
export interface SinglePlan {
  readonly inputSize: number;
  /** Input period: the client replicates the input every `inputPeriod` slots. */
  readonly inputPeriod: number;
  readonly slotCount: number;
  readonly steps: readonly SingleStep[];
  /** Packed vector holding the outputs. */
  readonly output: number;
  /** Slot of each output element (row-major over the graph outputs). */
  readonly outputSlots: readonly number[];
  readonly outputDims: readonly (readonly number[])[];
  readonly depth: number;
  /**
   * Galois steps of the chained baby-step/giant-step schedule (ckks/bsgs.ts): consecutive baby and
   * giant differences per map plus the rotate-and-add strides, a few keys per map for as many key
   * switches as one key per rotation would give.
   */
  readonly galoisSteps: readonly number[];
  /** One key per baby and giant rotation (the direct schedule); key sets made for it still serve the plan. */
  readonly directSteps: readonly number[];
  /** Plaintext diagonals, rotations and ciphertext products per inference (cost model). */
  readonly cost: { readonly diagonals: number; readonly rotations: number; readonly products: number };
}

/** Relative cost of one rotation (key switch) against one plaintext product, measured on SEAL-wasm at N = 8192. */
const ROTATION_COST = 12;
/** Layout search budget (non-zeros × period) per map. */
const GREEDY_BUDGET = 3e7;

interface Vec {
  readonly rows: number;
  /** Slot of each row within [0, period). */
  readonly slots: Int32Array;
  readonly period: number;
  readonly depth: number;
}

/** (target slot, source slot, coefficient) triples of one source vector. */
type Entries = { t: number; s: number; k: number }[];

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Rotation amount carrying source slot s to target slot t (see the hybrid method above). */
function rotationOf(s: number, t: number, m: number, n: number): number {
  const span = Math.min(m, n);
  const d = (((s - t) % span) + span) % span;
  // With m ≥ n the source has period n, so r and r − n rotate it alike: take the shorter one.
  return m >= n && d > n / 2 ? d - n : d;
}

function mapCost(sources: ReadonlyMap<number, Entries>, m: number, periodOf: (v: number) => number): number {
  let cost = 0;
  for (const [v, entries] of sources) {
    const n = periodOf(v);
    const rots = [...new Set(entries.map((e) => rotationOf(e.s, e.t, m, n)))];
    cost += rots.length + ROTATION_COST * (diagonalSteps(rots, bestBabyStep(rots, 64)).length + (n > m ? Math.log2(n / m) : 0));
  }
  return cost;
}

/** Symbolic run of the graph: affine forms over input, product and materialized-form leaves. */
function trace(graph: Graph): { leaves: LeafInfo[]; products: Product[]; outputs: Sym[]; outputDims: number[][]; inputSize: number } {
  const spec = graph.inputs[0];
  if (spec === undefined || graph.inputs.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', 'the single plan supports models with exactly one input', { param: 'model' });
  const dims = [1, ...spec.dims.slice(1).map((d) => d ?? 1)];
  const inputSize = sizeOf(dims);
  const leaves: LeafInfo[] = [];
  const products: Product[] = [];
  const leafForm = (leaf: Leaf): Form => new Form(new Map([[leaf, 1]]), 0);
  const inputs: Sym[] = Array.from({ length: inputSize }, (_, index) => {
    leaves.push({ kind: 'input', index });
    return leafForm(index);
  });
  const algebra: Algebra<Sym> = {
    lin: (terms, bias) => {
      const acc = new Map<Leaf, number>();
      let b = bias;
      const add = (l: Leaf, k: number): void => {
        acc.set(l, (acc.get(l) ?? 0) + k);
      };
      for (const [e, k] of terms) {
        if (k === 0) continue;
        if (typeof e === 'number') b += k * e;
        else if (e.matLeaf !== undefined) add(e.matLeaf, k);
        else {
          for (const [l, kl] of e.terms) add(l, k * kl);
          b += k * e.bias;
        }
      }
      for (const [l, k] of acc) if (k === 0) acc.delete(l);
      return acc.size === 0 ? b : new Form(acc, b);
    },
    mul: (a, b) => {
      if (typeof a === 'number') return algebra.lin([[b, a]], 0);
      if (typeof b === 'number') return algebra.lin([[a, b]], 0);
      for (const f of a === b ? [a] : [a, b]) {
        if (f.matLeaf === undefined && f.trivial === undefined) {
          f.matLeaf = leaves.length;
          leaves.push({ kind: 'mat', form: f });
        }
      }
      const prod: Product = { a, b, leaf: leaves.length };
      leaves.push({ kind: 'prod', prod });
      products.push(prod);
      return leafForm(prod.leaf);
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" cannot run on ciphertexts: calibrate the model first (cipherml he keyparams replaces it with a polynomial)`, {
        param: 'model',
        details: { op, node: node.name },
      });
    },
  };
  const outs = execute(graph, algebra, [{ dims, data: inputs }]);
  return { leaves, products, outputs: outs.flatMap((t) => [...t.data]), outputDims: outs.map((t) => t.dims.slice(1)), inputSize };
}

/**
 * Compiles the graph into a single plan for ciphertexts of `slotCount` slots (omit it to learn
 * the widest period, the depth and the rotation steps: `slotCount` then defaults to the widest
 * period).
 *
 * Layouts: a packed vector's rows may sit at any slots. For each map the compiler compares the
 * dense layout (row k at slot k) with a greedy one that places each row where its non-zeros fall
 * on diagonals already in use, in the dense period and, for a single source, spread over the
 * source's period; it keeps the cheapest by rotations and plaintext products. For a convolution
 * the greedy layout keeps the spatial structure, so its map needs about kernel-size diagonals
 * instead of one per output row.
 *
 * @example
 * ```ts
 * const plan = compileSingle(graph, ctx.slotCount);
 * plan.depth; // 5 for Conv → x² → Gemm → x² → Gemm
 * ```
 */
export function compileSingle(graph: Graph, slotCount?: number): SinglePlan {
  const { products, outputs, outputDims, inputSize } = trace(graph);
  const inputPeriod = nextPow2(inputSize);
  const vectors: Vec[] = [{ rows: inputSize, slots: Int32Array.from({ length: inputSize }, (_, i) => i), period: inputPeriod, depth: 0 }];
  const where = new Map<Leaf, { vec: number; row: number }>();
  for (let i = 0; i < inputSize; i++) where.set(i, { vec: 0, row: i });
  const slotOf = (l: Leaf): { vec: number; slot: number } => {
    const w = where.get(l);
    if (w === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'internal: a leaf is used before its stage', { param: 'model' });
    return { vec: w.vec, slot: vectors[w.vec]!.slots[w.row]! };
  };
  const leafDepth = (l: Leaf): number => vectors[slotOf(l).vec]!.depth;
  const formDepth = (f: Form): number => {
    const t = f.trivial;
    if (t !== undefined) return leafDepth(t);
    return Math.max(0, ...[...f.terms.keys()].map(leafDepth)) + 1;
  };
  const plan: ({ kind: 'map'; out: number; rows: readonly Sym[] } | { kind: 'mul'; out: number; a: number; b: number })[] = [];

  /** Non-zeros of `rows` per source vector, the target slot being the row's layout slot. */
  const entriesFor = (rows: readonly Sym[], slots: Int32Array): Map<number, Entries> => {
    const by = new Map<number, Entries>();
    rows.forEach((r, i) => {
      if (typeof r === 'number') return;
      for (const [leaf, k] of r.terms) {
        const { vec, slot } = slotOf(leaf);
        let list = by.get(vec);
        if (list === undefined) by.set(vec, (list = []));
        list.push({ t: slots[i]!, s: slot, k });
      }
    });
    return by;
  };

  /** Greedy layout in [0, period): each row goes where most of its non-zeros reuse diagonals. */
  const greedy = (rows: readonly Sym[], period: number, source: number): Int32Array | undefined => {
    if (period > vectors[source]!.period || rows.length > period) return undefined;
    const nnz = rows.reduce<number>((c, r) => c + (typeof r === 'number' ? 0 : r.terms.size), 0);
    if (nnz * period > GREEDY_BUDGET) return undefined;
    const used = new Uint8Array(period);
    const inSet = new Uint8Array(period);
    const diags: number[] = [];
    const votes = new Int32Array(period);
    const slots = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      const srcSlots = typeof r === 'number' ? [] : [...r.terms.keys()].map((l) => slotOf(l).slot);
      votes.fill(0);
      for (const s of srcSlots) for (const d of diags) votes[(((s - d) % period) + period) % period]!++;
      let best = -1;
      for (let t = 0; t < period; t++) if (used[t] === 0 && (best < 0 || votes[t]! > votes[best]!)) best = t;
      used[best] = 1;
      slots[i] = best;
      for (const s of srcSlots) {
        const d = (((s - best) % period) + period) % period;
        if (inSet[d] === 0) {
          inSet[d] = 1;
          diags.push(d);
        }
      }
    });
    return slots;
  };

  /** A packed vector whose row k is `rows[k]`, laid out as `forced` or as the cheapest layout found. */
  const materialize = (rows: readonly Sym[], forced?: Vec): number => {
    const first = rows[0];
    if (first instanceof Form && first.trivial !== undefined) {
      const w = where.get(first.trivial)!;
      const v = vectors[w.vec]!;
      const same = v.rows === rows.length && rows.every((r, k) => r instanceof Form && r.trivial !== undefined && where.get(r.trivial)?.vec === w.vec && where.get(r.trivial)?.row === k);
      if (same && (forced === undefined || (forced.period === v.period && forced.slots.every((x, k) => x === v.slots[k])))) return w.vec;
    }
    const depth = Math.max(1, ...rows.map((r) => (typeof r === 'number' ? 1 : r.trivial !== undefined ? leafDepth(r.trivial) + 1 : formDepth(r))));
    let layout: { slots: Int32Array; period: number };
    if (forced !== undefined) layout = { slots: forced.slots, period: forced.period };
    else {
      const dense = nextPow2(rows.length);
      const candidates: { slots: Int32Array; period: number }[] = [{ slots: Int32Array.from({ length: rows.length }, (_, i) => i), period: dense }];
      const sources = new Set(rows.flatMap((r) => (typeof r === 'number' ? [] : [...r.terms.keys()].map((l) => slotOf(l).vec))));
      if (sources.size === 1) {
        const src = [...sources][0]!;
        for (const period of new Set([dense, Math.max(dense, vectors[src]!.period)])) {
          const g = greedy(rows, period, src);
          if (g !== undefined) candidates.push({ slots: g, period });
        }
      }
      const periodOf = (v: number): number => vectors[v]!.period;
      const scored = candidates.map((c) => ({ c, cost: mapCost(entriesFor(rows, c.slots), c.period, periodOf) }));
      layout = scored.reduce((best, x) => (x.cost < best.cost ? x : best)).c;
    }
    vectors.push({ rows: rows.length, slots: layout.slots, period: layout.period, depth });
    const out = vectors.length - 1;
    plan.push({ kind: 'map', out, rows });
    return out;
  };

  // Products grouped by the depth of their operands, in increasing order: a product's operands
  // only use leaves of earlier stages, so each group's vectors exist when it is materialized.
  let rest = products;
  while (rest.length > 0) {
    const ready = rest.filter((p) => [p.a, p.b].every((f) => [...f.terms.keys()].every((l) => where.has(l))));
    if (ready.length === 0) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'internal: product stages do not resolve', { param: 'model' });
    const stage = Math.min(...ready.map((p) => Math.max(formDepth(p.a), formDepth(p.b))));
    const group = ready.filter((p) => Math.max(formDepth(p.a), formDepth(p.b)) === stage);
    rest = rest.filter((p) => !group.includes(p));
    const va = materialize(group.map((p) => p.a));
    const vb = group.every((p) => p.a === p.b) ? va : materialize(group.map((p) => p.b), vectors[va]);
    group.forEach((p, k) => {
      for (const [f, v] of [[p.a, va], [p.b, vb]] as const) if (f.matLeaf !== undefined && !where.has(f.matLeaf)) where.set(f.matLeaf, { vec: v, row: k });
    });
    const A = vectors[va]!;
    vectors.push({ rows: group.length, slots: A.slots, period: A.period, depth: Math.max(A.depth, vectors[vb]!.depth) + 1 });
    const out = vectors.length - 1;
    group.forEach((p, k) => where.set(p.leaf, { vec: out, row: k }));
    plan.push({ kind: 'mul', out, a: va, b: vb });
  }
  const outVec = materialize(outputs);
  const widest = Math.max(...vectors.map((v) => v.period));
  const slots = slotCount ?? widest;
  if (widest > slots) {
    throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `the single plan needs ${widest} slots per ciphertext, the parameters have ${slots}`, { param: 'params', details: { slots: widest, slotCount: slots } });
  }
  const depth = vectors[outVec]!.depth;
  const steps: SingleStep[] = [];
  const galois = new Set<number>();
  const direct = new Set<number>();
  let diagonals = 0;
  let rotations = 0;
  let productCount = 0;
  for (const p of plan) {
    const v = vectors[p.out]!;
    if (p.kind === 'mul') {
      productCount++;
      steps.push({ kind: 'mul', out: p.out, a: p.a, b: p.b, level: depth - v.depth });
      continue;
    }
    const map = buildMap(p.rows, v, entriesFor(p.rows, v.slots), (k) => vectors[k]!.period, slots);
    for (const s of map.sources) {
      const rots = s.diagonals.map((d) => d.rotation);
      const st = diagonalSteps(rots, s.babyStep);
      const fold = s.period > v.period ? sumSlotsSteps(s.period / v.period, v.period) : [];
      for (const k of [...st, ...fold]) direct.add(k);
      for (const k of [...chainSteps(rots, s.babyStep, slots), ...fold]) galois.add(k);
      diagonals += rots.length;
      rotations += st.length + fold.length;
    }
    steps.push({ kind: 'map', out: p.out, map, level: depth - v.depth, period: v.period });
  }
  return {
    inputSize,
    inputPeriod,
    slotCount: slots,
    steps,
    output: outVec,
    outputSlots: Array.from(vectors[outVec]!.slots),
    outputDims,
    depth,
    galoisSteps: [...galois].sort((a, b) => a - b),
    directSteps: [...direct].sort((a, b) => a - b),
    cost: { diagonals, rotations, products: productCount },
  };
}

function buildMap(rows: readonly Sym[], target: Vec, entries: ReadonlyMap<number, Entries>, periodOf: (v: number) => number, slots: number): SingleMap {
  const m = target.period;
  let bias: Float64Array | undefined;
  rows.forEach((r, i) => {
    const b = typeof r === 'number' ? r : r.bias;
    if (b === 0) return;
    bias ??= new Float64Array(slots);
    for (let j = target.slots[i]!; j < slots; j += m) bias[j] = b;
  });
  const sources = [...entries].map(([vec, list]) => {
    const n = periodOf(vec);
    const span = Math.max(m, n);
    const diags = new Map<number, Float64Array>();
    for (const { t, s, k } of list) {
      if (k === 0) continue;
      const r = rotationOf(s, t, m, n);
      // The entry sits at slot j with j ≡ t (mod m) and j + r ≡ s (mod n), once per span.
      const j0 = m >= n ? t : (((s - r) % n) + n) % n;
      let diag = diags.get(r);
      if (diag === undefined) diags.set(r, (diag = new Float64Array(slots)));
      for (let j = j0; j < slots; j += span) diag[j]! += k;
    }
    const diagonals = [...diags].map(([rotation, values]) => ({ rotation, values }));
    return { vector: vec, period: n, diagonals, babyStep: bestBabyStep(diagonals.map((d) => d.rotation), 64) };
  });
  return { sources, bias };
}

/**
 * Bytes the encoded diagonals of a single plan hold once prepared (an upper bound: all-zero
 * diagonals are not stored): each diagonal is one plaintext of N words per prime of the level it
 * multiplies at, N = 2·slots, 8 bytes a word. This, not the Galois keys, is the single plan's
 * memory: 2,214 diagonals ≈ 1.2 GiB for LeNet-5 at N = 16384.
 *
 * @example
 * ```ts
 * preparedSingleBytes(compileSingle(graph), 16384, 5); // bytes held by prepareSingle
 * ```
 */
export function preparedSingleBytes(plan: Pick<SinglePlan, 'steps' | 'depth'>, polyModulusDegree: number, maxLevel: number): number {
  const offset = maxLevel - plan.depth;
  let bytes = 0;
  for (const step of plan.steps) {
    if (step.kind !== 'map') continue;
    // Input level step.level + 1 + offset holds that many primes plus one.
    for (const s of step.map.sources) bytes += s.diagonals.length * (step.level + offset + 2) * polyModulusDegree * 8;
  }
  return bytes;
}

/**
 * The single plan's matrices encoded for one key set (the model owner prepares once and serves
 * many inputs). Free with `delete()`.
 */
export class PreparedSingle {
  readonly plan: SinglePlan;
  /** @internal matrices[stepIndex][sourceIndex] */
  readonly matrices: readonly (readonly CkksDiagonalMatrix[])[];
  /** Milliseconds spent encoding the diagonals. */
  readonly prepareMs: number;
  /** The model and key set it was prepared for. */
  readonly graph: Graph;
  readonly fingerprint: string;
  /** @internal */
  constructor(plan: SinglePlan, matrices: CkksDiagonalMatrix[][], prepareMs: number, graph: Graph, fingerprint: string) {
    this.plan = plan;
    this.matrices = matrices;
    this.prepareMs = prepareMs;
    this.graph = graph;
    this.fingerprint = fingerprint;
  }
  delete(): void {
    for (const ms of this.matrices) for (const m of ms) m.delete();
  }
  [Symbol.dispose](): void {
    this.delete();
  }
}

/**
 * Compiles the graph for `ctx` and encodes every diagonal at the level it is used.
 *
 * @example
 * ```ts
 * using prepared = prepareSingle(server, calibratedGraph);
 * using out = runSingle(server, prepared, encryptedImage);
 * ```
 */
export function prepareSingle(ctx: CkksContext, graph: Graph): PreparedSingle {
  const t0 = performance.now();
  const plan = compileSingle(graph, ctx.slotCount);
  if (plan.depth > ctx.maxLevel) {
    throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', `the model needs ${plan.depth} levels in the single plan, the key set has ${ctx.maxLevel}`, { param: 'key', details: { depth: plan.depth, levels: ctx.maxLevel } });
  }
  // A step is served by its own key or, as CkksContext.rotate chains them, by keys for every term
  // of its non-adjacent form or of its binary digits (keyparams' power-of-two and binary tiers).
  const keyed = new Set(ctx.galoisSteps);
  const all = (ts: readonly number[]): boolean => ts.length > 0 && ts.every((t) => keyed.has(t));
  const served = (st: number): boolean => keyed.has(st) || all(naf(st).map((t) => t % ctx.slotCount).filter((t) => t !== 0)) || all(binaryTerms(st, ctx.slotCount));
  const missing = plan.galoisSteps.filter((st) => !served(st));
  if (missing.length > 0 && !plan.directSteps.every(served)) {
    throw new CipherMLError('CIPHERML_E_CKKS_GALOIS_KEY_MISSING', `the single plan rotates by [${missing.join(', ')}], which the key set has no Galois keys for: generate keys from keyparams made with --packing single or auto`, {
      param: 'key',
      details: { missing },
    });
  }
  const offset = ctx.maxLevel - plan.depth;
  const matrices: CkksDiagonalMatrix[][] = [];
  // Scale and level of every vector as the run will leave them: a product's scale is
  // s_a·s_b/q_ℓ, so sources of one map can differ; each source's diagonals are encoded with the
  // factor Δ/s_source, which pins every map's output at the fresh scale Δ and makes the sum exact.
  const scale = new Map<number, number>([[0, ctx.freshScale]]);
  const level = new Map<number, number>([[0, ctx.maxLevel]]);
  try {
    for (const step of plan.steps) {
      if (step.kind !== 'map') {
        const l = Math.min(level.get(step.a)!, level.get(step.b)!);
        scale.set(step.out, (scale.get(step.a)! * scale.get(step.b)!) / ctx.primeAt(l));
        level.set(step.out, l - 1);
        matrices.push([]);
        continue;
      }
      const ms: CkksDiagonalMatrix[] = [];
      matrices.push(ms);
      // Every source is mod-switched to the step's input level (one above its output level).
      for (const s of step.map.sources) ms.push(ctx.prepareDiagonals(s.diagonals, step.level + 1 + offset, s.babyStep, ctx.freshScale / scale.get(s.vector)!));
      scale.set(step.out, ctx.freshScale);
      level.set(step.out, step.level + offset);
    }
  } catch (e) {
    for (const ms of matrices) for (const m of ms) m.delete();
    throw e;
  }
  return new PreparedSingle(plan, matrices, performance.now() - t0, graph, ctx.fingerprint);
}

/**
 * Packs one flattened input for the single plan: replicated every `plan.inputPeriod` slots.
 *
 * @example
 * ```ts
 * using x = ctx.encryptVector(packSingleInput(plan, pixels));
 * ```
 */
export function packSingleInput(plan: Pick<SinglePlan, 'inputSize' | 'inputPeriod'>, values: ArrayLike<number>, slotCount: number): Float64Array {
  if (values.length !== plan.inputSize) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `${values.length} input values, the model takes ${plan.inputSize}`, { param: 'input', details: { expected: plan.inputSize, actual: values.length } });
  }
  const out = new Float64Array(slotCount);
  for (let j = 0; j < slotCount; j++) out[j] = j % plan.inputPeriod < plan.inputSize ? values[j % plan.inputPeriod]! : 0;
  return out;
}

/**
 * Runs a prepared single plan on one packed input ciphertext; returns the output ciphertext
 * (output element i at slot `plan.outputSlots[i]`; the caller owns it).
 *
 * @example
 * ```ts
 * using y = runSingle(server, prepared, x);
 * const slots = client.decryptVector(y, client.slotCount);
 * prepared.plan.outputSlots.map((j) => slots[j]); // the 10 scores
 * ```
 */
export function runSingle(ctx: CkksContext, prepared: PreparedSingle, input: CkksVector, onProgress?: (done: number, total: number, what: string) => void): CkksVector {
  const { plan } = prepared;
  const vecs = new Map<number, CkksVector>([[0, input]]);
  const lastUse = new Map<number, number>();
  plan.steps.forEach((s, i) => {
    const used = s.kind === 'mul' ? [s.a, s.b] : s.map.sources.map((x) => x.vector);
    for (const v of used) lastUse.set(v, i);
  });
  try {
    plan.steps.forEach((step, i) => {
      let out: CkksVector;
      if (step.kind === 'mul') out = ctx.mul(vecs.get(step.a)!, vecs.get(step.b)!);
      else {
        let acc: CkksVector | undefined;
        step.map.sources.forEach((s, k) => {
          let y = ctx.mulDiagonals(vecs.get(s.vector)!, prepared.matrices[i]![k]!);
          if (s.period > step.period) {
            const folded = ctx.sumSlots(y, s.period / step.period, step.period);
            y.delete();
            y = folded;
          }
          if (acc === undefined) acc = y;
          else {
            const sum = ctx.add(acc, y);
            acc.delete();
            y.delete();
            acc = sum;
          }
        });
        if (acc === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'a constant output reached the single plan', { param: 'model' });
        if (step.map.bias !== undefined) {
          const b = ctx.addPlain(acc, step.map.bias);
          acc.delete();
          acc = b;
        }
        out = acc;
      }
      vecs.set(step.out, out);
      for (const [v, last] of lastUse) {
        if (last === i && v !== 0) {
          vecs.get(v)?.delete();
          vecs.delete(v);
          lastUse.delete(v);
        }
      }
      onProgress?.(i + 1, plan.steps.length, step.kind === 'mul' ? 'product' : 'linear map');
    });
    const out = vecs.get(plan.output);
    if (out === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the plan has no output vector', { param: 'model' });
    vecs.delete(plan.output);
    return plan.output === 0 ? ctx.copy(out) : out;
  } finally {
    for (const [v, c] of vecs) if (v !== 0) c.delete();
  }
}
