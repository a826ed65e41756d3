import type { CkksContext, CkksVector } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import type { Algebra, DynTensor } from './execute.ts';
import { execute } from './execute.ts';
import type { Graph } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * The batch execution plan: one sample per slot. Tensor element j of every sample lives in one
 * ciphertext whose slot s belongs to sample s, so every linear operator is a plaintext-scalar
 * multiply-add over ciphertexts (no rotations, no Galois keys) and x·x is one ciphertext square.
 *
 * Linear layers are kept symbolic (an affine form Σ k_i·c_i + b over materialized ciphertexts)
 * and composed exactly, so consecutive linear layers (Conv → BatchNorm → Flatten → Gemm, Div,
 * AveragePool, constant Add/Sub/Mul) cost one level together; a form becomes a ciphertext (one
 * `linearCombination`, one rescale) only where a product needs it or at the output. Depth is
 * therefore the number of products along the longest path plus one per materialization.
 * A form that a product already materialized enters later forms as that one ciphertext (common
 * subexpression), never re-expanded: a polynomial activation's degree-1 term would otherwise
 * carry the previous layer's whole form into the next layer, and across layers the term count
 * grows with the product of the fan-ins (LeNet-5: millions of terms per output).
 */

class Form<V> {
  readonly terms: Map<V, number>;
  readonly bias: number;
  cached: V | undefined;
  /**
   * The terms with each set of two or more sharing a coefficient replaced by their sum (additions
   * only, no level): Σ grouped = Σ terms. Set where a later linear layer first expands the form,
   * and only when some coefficient is shared (see {@link coefficientGroups}).
   */
  grouped: readonly (readonly [V, number])[] | undefined;
  constructor(terms: Map<V, number>, bias: number) {
    this.terms = terms;
    this.bias = bias;
  }
}

/**
 * The form's terms grouped by coefficient (each coefficient with the ciphertexts that carry it),
 * when at least two terms share one; else undefined. Such a form is summed group by group once,
 * by additions, where a later linear layer expands it, and that layer takes one term per group:
 * average pooling puts ¼ on each of four ciphertexts (one group: LeNet-5's AveragePool → Conv
 * 16@5×5 combines 150 terms per output instead of 600), and a pooled polynomial activation
 * Σ_k c_k·t^k puts c_k/4 on the four t^k of its window (one group per power: 4 terms per pooled
 * value instead of 16 at degree 4). Coefficients compare exactly: the pooled forms' coefficients
 * are the same products of the same numbers.
 */
function coefficientGroups<V>(terms: ReadonlyMap<V, number>): Map<number, V[]> | undefined {
  const groups = new Map<number, V[]>();
  for (const [v, k] of terms) {
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [v]);
    else g.push(v);
  }
  return groups.size < terms.size ? groups : undefined;
}

/**
 * Most ciphertexts one linear combination reads. A larger form is materialized as partial
 * combinations over chunks of its terms ordered by position in the image ({@link BatchOps.key}),
 * summed by additions: the same value up to one rescale's rounding per partial, no extra level
 * (every partial is rescaled from the same level to the same scale). A combination's operands
 * must all be in one thread's SEAL heap at once, and chunks that follow the image let the pool
 * free a dense layer's inputs region by region (LeNet-5 Relu: Gemm 400→120 reads 1,600
 * ciphertexts of ≈ 2 MiB per output).
 */
const LC_CHUNK = 512;

/** A batch-plan element: a constant, a ciphertext, or an affine form over ciphertexts. */
type Elem<V> = number | V | Form<V>;

/** Options of {@link runBatch}. */
export interface RunBatchOptions {
  /** Free the input ciphertexts as soon as no later operator needs them (halves peak memory). */
  readonly consumeInputs?: boolean;
  /** Progress callback per finished node. */
  readonly onProgress?: (done: number, total: number, op: string) => void;
}

/**
 * The ciphertext operations the batch plan is made of. {@link runBatch} performs them on a
 * CkksContext; {@link recordBatch} writes them down as a straight-line program that a worker
 * pool can split.
 */
interface BatchOps<V extends object> {
  level(v: V): number;
  /** Where the value sits in the image: the smallest input index it depends on (0 when unknown). */
  key(v: V): number;
  toLevel(v: V, level: number): V;
  /** With `ref`: the result takes ref's scale (a partial sum of a split combination). */
  linearCombination(vs: readonly V[], ks: readonly number[], bias: number, ref?: V): V;
  /** Σ vs by additions (mod-switched to the lowest level first); no level used. */
  sum(vs: readonly V[]): V;
  mul(a: V, b: V): V;
  constant(value: number): V;
  copy(v: V): V;
  delete(v: V): void;
}

/**
 * Runs the graph on batch-packed ciphertexts: `input[j]` holds element j (row-major, without the
 * batch dimension) of every sample, one sample per slot. Returns one ciphertext per output
 * element; the caller owns and deletes them.
 *
 * @example
 * ```ts
 * const outputs = runBatch(ctx, graph, pixelsAsCiphertexts); // 10 ciphertexts for MNIST scores
 * ```
 */
export function runBatch(ctx: CkksContext, graph: Graph, input: readonly CkksVector[], options: RunBatchOptions = {}): CkksVector[] {
  const ops: BatchOps<CkksVector> = {
    level: (v) => v.level,
    key: () => 0,
    toLevel: (v, level) => ctx.toLevel(v, level),
    linearCombination: (vs, ks, bias, ref) => ctx.linearCombination(vs, ks, bias, ref === undefined ? {} : { scale: ref.scale }),
    sum: (vs) => sumVectors(ctx, vs),
    mul: (a, b) => ctx.mul(a, b),
    constant: (value) => ctx.encryptVector(new Float64Array(ctx.slotCount).fill(value)),
    copy: (v) => ctx.copy(v),
    delete: (v) => v.delete(),
  };
  return runWith(ops, graph, input, options);
}

/** One instruction of a recorded batch program; operands are value ids (inputs are 0 … n−1). */
export type BatchInstr =
  /** `ref`: a value whose scale the result takes (every partial of a split combination has xs[0] of the first partial as ref). */
  | { readonly op: 'lc'; readonly out: number; readonly ins: readonly number[]; readonly ks: readonly number[]; readonly bias: number; readonly ref?: number }
  /** `finish: true`: every operand is an unfinished product; relinearize and rescale the sum once. */
  | { readonly op: 'sum'; readonly out: number; readonly ins: readonly number[]; readonly finish?: true }
  /** `finish: false`: left unrelinearized and unrescaled for the sums that consume it. */
  | { readonly op: 'mul'; readonly out: number; readonly a: number; readonly b: number; readonly finish?: false }
  | { readonly op: 'toLevel'; readonly out: number; readonly a: number; readonly level: number }
  | { readonly op: 'const'; readonly out: number; readonly value: number }
  | { readonly op: 'copy'; readonly out: number; readonly a: number };

/**
 * The distinct value ids an instruction reads (a split combination's partial reads its `ref`
 * too, for the scale).
 *
 * @example
 * ```ts
 * instrOperands({ op: 'mul', out: 9, a: 4, b: 4 }); // [4]
 * ```
 */
export function instrOperands(ins: BatchInstr): readonly number[] {
  switch (ins.op) {
    case 'lc':
      return ins.ref === undefined || ins.ins.includes(ins.ref) ? [...new Set(ins.ins)] : [...new Set(ins.ins), ins.ref];
    case 'sum':
      return [...new Set(ins.ins)];
    case 'mul':
      return ins.a === ins.b ? [ins.a] : [ins.a, ins.b];
    case 'toLevel':
    case 'copy':
      return [ins.a];
    case 'const':
      return [];
  }
}

/** The batch plan as a straight-line program over value ids. */
export interface BatchProgram {
  /** Input ciphertexts, ids 0 … inputs−1, all at `inputLevel`. */
  readonly inputs: number;
  readonly inputLevel: number;
  readonly instrs: readonly BatchInstr[];
  /** Value id of every output element, in order (an id may repeat, or be an input). */
  readonly outputs: readonly number[];
}

class Sym {
  readonly id: number;
  readonly level: number;
  /** Smallest program input it depends on (Infinity for a constant). */
  readonly key: number;
  constructor(id: number, level: number, key: number) {
    this.id = id;
    this.level = level;
    this.key = key;
  }
}

const minKey = (vs: readonly Sym[]): number => Math.min(...vs.map((v) => v.key));

/**
 * Records the batch plan for `graph` as a program, with the same operations {@link runBatch}
 * performs on inputs at `inputLevel` (a fresh encryption's level) with `maxLevel` levels in all.
 *
 * @example
 * ```ts
 * const program = recordBatch(graph, ctx.maxLevel);
 * program.instrs.length; // 586 for the bundled MNIST model
 * ```
 */
export function recordBatch(graph: Graph, inputLevel: number): BatchProgram {
  const spec = graph.inputs[0];
  if (spec === undefined || graph.inputs.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', 'the batch plan supports models with exactly one input', { param: 'model' });
  const n = sizeOf(spec.dims.slice(1).map((d) => d ?? 1));
  const instrs: BatchInstr[] = [];
  let next = n;
  const ops: BatchOps<Sym> = {
    level: (v) => v.level,
    key: (v) => v.key,
    toLevel: (v, level) => {
      const out = new Sym(next++, level, v.key);
      instrs.push({ op: 'toLevel', out: out.id, a: v.id, level });
      return out;
    },
    linearCombination: (vs, ks, bias, ref) => {
      const out = new Sym(next++, vs[0]!.level - 1, minKey(vs));
      instrs.push({ op: 'lc', out: out.id, ins: vs.map((v) => v.id), ks: [...ks], bias, ...(ref === undefined ? {} : { ref: ref.id }) });
      return out;
    },
    sum: (vs) => {
      const out = new Sym(next++, Math.min(...vs.map((v) => v.level)), minKey(vs));
      instrs.push({ op: 'sum', out: out.id, ins: vs.map((v) => v.id) });
      return out;
    },
    mul: (a, b) => {
      const out = new Sym(next++, Math.min(a.level, b.level) - 1, Math.min(a.key, b.key));
      instrs.push({ op: 'mul', out: out.id, a: a.id, b: b.id });
      return out;
    },
    constant: (value) => {
      const out = new Sym(next++, inputLevel, Infinity);
      instrs.push({ op: 'const', out: out.id, value });
      return out;
    },
    copy: (v) => {
      const out = new Sym(next++, v.level, v.key);
      instrs.push({ op: 'copy', out: out.id, a: v.id });
      return out;
    },
    delete: () => undefined,
  };
  const input = Array.from({ length: n }, (_, i) => new Sym(i, inputLevel, i));
  const outputs = runWith(ops, graph, input, {}).map((v) => v.id);
  return { inputs: n, inputLevel, instrs: deferFinishing(instrs, outputs), outputs };
}

/**
 * Products whose only consumers are sums of products (average pooling of x²) are left
 * unfinished, and each such sum relinearizes and rescales once: LeNet-5 x² pays 1,576
 * relinearizations and rescales instead of 6,304, with the same levels (the product's level is
 * spent by the sum's rescale) and no more error (relinearization before the rescale, as in a
 * finished product). A product qualifies when it is no output and every consumer is a sum whose
 * every operand qualifies (iterated to a fixed point).
 */
function deferFinishing(instrs: BatchInstr[], outputs: readonly number[]): BatchInstr[] {
  const byOut = new Map(instrs.map((i) => [i.out, i]));
  const consumers = new Map<number, BatchInstr[]>();
  for (const ins of instrs) {
    for (const id of instrOperands(ins)) consumers.set(id, [...(consumers.get(id) ?? []), ins]);
  }
  const isOutput = new Set(outputs);
  const deferred = new Set<number>();
  for (const ins of instrs) {
    const users = consumers.get(ins.out) ?? [];
    if (ins.op === 'mul' && !isOutput.has(ins.out) && users.length > 0 && users.every((u) => u.op === 'sum')) deferred.add(ins.out);
  }
  const finishing = (sum: BatchInstr): boolean => sum.op === 'sum' && sum.ins.every((id) => deferred.has(id) && byOut.get(id)?.op === 'mul');
  for (let changed = true; changed; ) {
    changed = false;
    for (const id of deferred) {
      if (!consumers.get(id)!.every(finishing)) {
        deferred.delete(id);
        changed = true;
      }
    }
  }
  return instrs.map((ins) => (ins.op === 'mul' && deferred.has(ins.out) ? { ...ins, finish: false } : ins.op === 'sum' && finishing(ins) ? { ...ins, finish: true } : ins));
}

/**
 * Performs one recorded instruction on `values` (id ↦ ciphertext); the result is stored under
 * the instruction's `out`.
 *
 * @example
 * ```ts
 * for (const ins of program.instrs) runBatchInstr(ctx, values, ins);
 * ```
 */
export function runBatchInstr(ctx: CkksContext, values: Map<number, CkksVector>, ins: BatchInstr): void {
  const get = (id: number): CkksVector => {
    const v = values.get(id);
    if (v === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `value ${id} is not present`, { param: 'program' });
    return v;
  };
  let out: CkksVector;
  switch (ins.op) {
    case 'lc':
      out = ctx.linearCombination(ins.ins.map(get), ins.ks, ins.bias, ins.ref === undefined ? {} : { scale: get(ins.ref).scale });
      break;
    case 'sum':
      out = ins.finish === true ? ctx.sumProducts(ins.ins.map(get)) : sumVectors(ctx, ins.ins.map(get));
      break;
    case 'mul':
      out = ins.finish === false ? ctx.mul(get(ins.a), get(ins.b), { finish: false }) : ctx.mul(get(ins.a), get(ins.b));
      break;
    case 'toLevel':
      out = ctx.toLevel(get(ins.a), ins.level);
      break;
    case 'const':
      out = ctx.encryptVector(new Float64Array(ctx.slotCount).fill(ins.value));
      break;
    case 'copy':
      out = ctx.copy(get(ins.a));
      break;
  }
  values.set(ins.out, out);
}

/** Σ vs by additions at the lowest operand level (CkksContext.add aligns levels and scales). */
function sumVectors(ctx: CkksContext, vs: readonly CkksVector[]): CkksVector {
  let level = Infinity;
  let low = vs[0]!;
  for (const v of vs) {
    const l = v.level;
    if (l < level) [level, low] = [l, v];
  }
  const acc = ctx.copy(low);
  try {
    for (const v of vs) if (v !== low) ctx.addInPlace(acc, v);
  } catch (e) {
    acc.delete();
    throw e;
  }
  return acc;
}

function runWith<V extends object>(ops: BatchOps<V>, graph: Graph, input: readonly V[], options: RunBatchOptions): V[] {
  const spec = graph.inputs[0];
  if (spec === undefined || graph.inputs.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', 'the batch plan supports models with exactly one input', { param: 'model' });
  const dims = [1, ...spec.dims.slice(1).map((d) => d ?? 1)];
  if (sizeOf(dims) !== input.length) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `${input.length} ciphertexts for an input of [${dims.join(', ')}] (${sizeOf(dims)} elements per sample)`, { param: 'input', details: { expected: sizeOf(dims), actual: input.length } });
  }
  const created = new Set<V>();
  const live = new Set<DynTensor<Elem<V>>>();
  const own = (v: V): V => {
    created.add(v);
    return v;
  };
  // Mod-switched copies (value ↦ level ↦ copy), made once and shared by every form materialized at
  // that level until the next collection frees them: a layer whose inputs sit at two levels (a
  // pooled polynomial's t and t² sums above its t³ and t⁴ sums) switches each input once, not once
  // per output (LeNet-5 with Relu: 297,118 switched copies per run, each sent to the thread that
  // needed it, before).
  const lowered = new Map<V, Map<number, V>>();

  const materialize = (e: Elem<V>): V => {
    if (typeof e === 'number') throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', 'a constant reached a ciphertext product', { param: 'model' });
    if (!(e instanceof Form)) return e;
    if (e.cached !== undefined) return e.cached;
    const entries: readonly (readonly [V, number])[] = e.grouped ?? [...e.terms];
    if (entries.length === 1 && entries[0]![1] === 1 && e.bias === 0) return (e.cached = entries[0]![0]);
    const level = Math.min(...entries.map(([v]) => ops.level(v)));
    const vs = entries.map(([v]) => {
      if (ops.level(v) === level) return v;
      let copies = lowered.get(v);
      if (copies === undefined) lowered.set(v, (copies = new Map()));
      let t = copies.get(level);
      if (t === undefined) copies.set(level, (t = own(ops.toLevel(v, level))));
      return t;
    });
    const ks = entries.map(([, k]) => k);
    if (vs.length <= LC_CHUNK) return (e.cached = own(ops.linearCombination(vs, ks, e.bias)));
    // Split by position in the image (see LC_CHUNK); every partial takes the first's scale.
    const order = vs.map((_, i) => i).sort((a, b) => ops.key(vs[a]!) - ops.key(vs[b]!) || a - b);
    const parts = Math.ceil(vs.length / LC_CHUNK);
    const size = Math.ceil(vs.length / parts);
    const ref = vs[order[0]!]!;
    const partials: V[] = [];
    for (let p = 0; p < parts; p++) {
      const idx = order.slice(p * size, (p + 1) * size);
      partials.push(own(ops.linearCombination(idx.map((i) => vs[i]!), idx.map((i) => ks[i]!), p === 0 ? e.bias : 0, p === 0 ? undefined : ref)));
    }
    return (e.cached = own(ops.sum(partials)));
  };

  const algebra: Algebra<Elem<V>> = {
    lin: (terms, bias) => {
      const acc = new Map<V, number>();
      let b = bias;
      const add = (v: V, k: number): void => {
        acc.set(v, (acc.get(v) ?? 0) + k);
      };
      for (const [e, k] of terms) {
        if (k === 0) continue;
        if (typeof e === 'number') b += k * e;
        else if (e instanceof Form && e.cached !== undefined) add(e.cached, k);
        else if (e instanceof Form) {
          if (e.grouped === undefined) {
            const groups = coefficientGroups(e.terms);
            if (groups !== undefined) e.grouped = [...groups].map(([kv, vs]) => [vs.length === 1 ? vs[0]! : own(ops.sum(vs)), kv] as const);
          }
          for (const [v, kv] of e.grouped ?? e.terms) add(v, k * kv);
          b += k * e.bias;
        } else add(e, k);
      }
      for (const [v, k] of acc) if (k === 0) acc.delete(v);
      return acc.size === 0 ? b : new Form(acc, b);
    },
    mul: (a, b) => {
      if (typeof a === 'number') return algebra.lin([[b, a]], 0);
      if (typeof b === 'number') return algebra.lin([[a, b]], 0);
      const x = materialize(a);
      const y = a === b ? x : materialize(b);
      return own(ops.mul(x, y));
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" cannot run on ciphertexts: calibrate the model first (cipherml he keyparams replaces it with a polynomial)`, {
        param: 'model',
        details: { op, node: node.name },
      });
    },
  };

  const inputTensor: DynTensor<Elem<V>> = { dims, data: [...input] };
  const inputs = new Set<V>(input);
  let done = 0;
  const collect = (): void => {
    // Mod-switched copies are referenced by no live tensor: freed here with the other unreachable values.
    lowered.clear();
    const reachable = new Set<V>();
    for (const t of live) {
      for (const e of t.data) {
        if (typeof e === 'number') continue;
        if (e instanceof Form) {
          // A grouped form needs only its groups (the summed terms may be freed).
          if (e.grouped !== undefined) for (const [v] of e.grouped) reachable.add(v);
          else for (const v of e.terms.keys()) reachable.add(v);
          if (e.cached !== undefined) reachable.add(e.cached);
        } else reachable.add(e);
      }
    }
    for (const v of created) {
      if (!reachable.has(v)) {
        ops.delete(v);
        created.delete(v);
      }
    }
    if (options.consumeInputs === true) {
      for (const v of inputs) {
        if (!reachable.has(v)) {
          ops.delete(v);
          inputs.delete(v);
        }
      }
    }
  };
  live.add(inputTensor);
  let outputs: DynTensor<Elem<V>>[];
  try {
    outputs = execute(graph, algebra, [inputTensor], {
      onNode: (node, outs) => {
        for (const t of outs) live.add(t);
        options.onProgress?.(++done, graph.nodes.length, node.op);
      },
      release: (t) => {
        live.delete(t);
        collect();
      },
    });
    live.delete(inputTensor);
    // A constant output element (e.g. from constant padding) is encrypted with the public key.
    const result = outputs.flatMap((t) => t.data.map((e) => (typeof e === 'number' ? own(ops.constant(e)) : materialize(e))));
    // Outputs that are the same ciphertext twice (or an input) are copied so each is owned once.
    const seen = new Set<V>();
    const owned = result.map((v) => {
      if (seen.has(v) || !created.has(v)) return ops.copy(v);
      seen.add(v);
      return v;
    });
    for (const v of owned) created.delete(v);
    return owned;
  } finally {
    for (const v of created) ops.delete(v);
  }
}

/**
 * Depth bookkeeping element: `d` levels used by its ciphertexts, `form` when still symbolic,
 * `cached` once a product materialized the form (later forms then use that ciphertext, depth d + 1).
 */
type DepthElem = number | { readonly d: number; readonly form: boolean; cached?: boolean };

const materialized = (e: DepthElem): number => (typeof e === 'number' ? 0 : e.d + (e.form ? 1 : 0));

/**
 * Multiplicative depth the batch plan needs for the graph: the levels its deepest output
 * consumes (products and form materializations along the longest path).
 *
 * @example
 * ```ts
 * batchDepth(graph); // 5 for Conv → x² → Gemm → x² → Gemm
 * ```
 */
export function batchDepth(graph: Graph): number {
  const spec = graph.inputs[0];
  if (spec === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no input', { param: 'model' });
  const dims = [1, ...spec.dims.slice(1).map((d) => d ?? 1)];
  const algebra: Algebra<DepthElem> = {
    lin: (terms, bias) => {
      let d = -1;
      let only: DepthElem | undefined;
      for (const [e, k] of terms) {
        if (k === 0 || typeof e === 'number') continue;
        d = Math.max(d, e.cached === true ? materialized(e) : e.d);
        only = terms.length === 1 && k === 1 && bias === 0 ? e : undefined;
      }
      if (d < 0) return bias;
      return only ?? { d, form: true };
    },
    mul: (a, b) => {
      if (typeof a === 'number') return algebra.lin([[b, a]], 0);
      if (typeof b === 'number') return algebra.lin([[a, b]], 0);
      if (a.form) a.cached = true;
      if (b.form) b.cached = true;
      return { d: Math.max(materialized(a), materialized(b)) + 1, form: false };
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" must be calibrated into a polynomial first`, { param: 'model', details: { op, node: node.name } });
    },
  };
  const outs = execute(graph, algebra, [{ dims, data: Array.from({ length: sizeOf(dims) }, () => ({ d: 0, form: false })) }]);
  return Math.max(0, ...outs.flatMap((t) => t.data.map(materialized)));
}

/**
 * Work of one batch-plan run: plaintext-scalar products (terms of every materialized affine
 * form), ciphertext products and ciphertext additions (the sums of equal-coefficient terms), read
 * off the recorded program ({@link recordBatch}), so it counts exactly what runs. Independent of
 * how many slots are filled.
 *
 * @example
 * ```ts
 * batchCost(graph); // { scalarProducts: 29_568, products: 320, additions: 0 } for the bundled MNIST model
 * ```
 */
export function batchCost(graph: Graph): { scalarProducts: number; products: number; additions: number } {
  const spec = graph.inputs[0];
  if (spec === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no input', { param: 'model' });
  // Levels only decide where mod-switches go, which the cost does not count.
  const program = recordBatch(graph, 1 << 20);
  let scalarProducts = 0;
  let products = 0;
  let additions = 0;
  for (const ins of program.instrs) {
    if (ins.op === 'lc') scalarProducts += ins.ins.length;
    else if (ins.op === 'mul') products++;
    else if (ins.op === 'sum') additions += ins.ins.length - 1;
  }
  return { scalarProducts, products, additions };
}
