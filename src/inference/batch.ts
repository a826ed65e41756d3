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
 */

class Form {
  readonly terms: Map<CkksVector, number>;
  readonly bias: number;
  cached: CkksVector | undefined;
  constructor(terms: Map<CkksVector, number>, bias: number) {
    this.terms = terms;
    this.bias = bias;
  }
}

/** A batch-plan element: a constant, a ciphertext, or an affine form over ciphertexts. */
type Elem = number | CkksVector | Form;

/** Options of {@link runBatch}. */
export interface RunBatchOptions {
  /** Free the input ciphertexts as soon as no later operator needs them (halves peak memory). */
  readonly consumeInputs?: boolean;
  /** Progress callback per finished node. */
  readonly onProgress?: (done: number, total: number, op: string) => void;
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
  const spec = graph.inputs[0];
  if (spec === undefined || graph.inputs.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', 'the batch plan supports models with exactly one input', { param: 'model' });
  const dims = [1, ...spec.dims.slice(1).map((d) => d ?? 1)];
  if (sizeOf(dims) !== input.length) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `${input.length} ciphertexts for an input of [${dims.join(', ')}] (${sizeOf(dims)} elements per sample)`, { param: 'input', details: { expected: sizeOf(dims), actual: input.length } });
  }
  const created = new Set<CkksVector>();
  const live = new Set<DynTensor<Elem>>();
  const own = (v: CkksVector): CkksVector => {
    created.add(v);
    return v;
  };

  const materialize = (e: Elem): CkksVector => {
    if (typeof e === 'number') throw new CipherMLError('CIPHERML_E_KEYPARAMS_TOO_SMALL', 'a constant reached a ciphertext product', { param: 'model' });
    if (!(e instanceof Form)) return e;
    if (e.cached !== undefined) return e.cached;
    const entries = [...e.terms];
    if (entries.length === 1 && entries[0]![1] === 1 && e.bias === 0) return (e.cached = entries[0]![0]);
    const level = Math.min(...entries.map(([v]) => v.level));
    const temps: CkksVector[] = [];
    const vs = entries.map(([v]) => {
      if (v.level === level) return v;
      const t = ctx.toLevel(v, level);
      temps.push(t);
      return t;
    });
    try {
      e.cached = own(ctx.linearCombination(vs, entries.map(([, k]) => k), e.bias));
    } finally {
      for (const t of temps) t.delete();
    }
    return e.cached;
  };

  const algebra: Algebra<Elem> = {
    lin: (terms, bias) => {
      const acc = new Map<CkksVector, number>();
      let b = bias;
      const add = (v: CkksVector, k: number): void => {
        acc.set(v, (acc.get(v) ?? 0) + k);
      };
      for (const [e, k] of terms) {
        if (k === 0) continue;
        if (typeof e === 'number') b += k * e;
        else if (e instanceof Form) {
          for (const [v, kv] of e.terms) add(v, k * kv);
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
      return own(ctx.mul(x, y));
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" cannot run on ciphertexts: calibrate the model first (cipherml he keyparams replaces it with a polynomial)`, {
        param: 'model',
        details: { op, node: node.name },
      });
    },
  };

  const inputTensor: DynTensor<Elem> = { dims, data: [...input] };
  const inputs = new Set<CkksVector>(input);
  let done = 0;
  const collect = (): void => {
    const reachable = new Set<CkksVector>();
    for (const t of live) {
      for (const e of t.data) {
        if (typeof e === 'number') continue;
        if (e instanceof Form) {
          for (const v of e.terms.keys()) reachable.add(v);
          if (e.cached !== undefined) reachable.add(e.cached);
        } else reachable.add(e);
      }
    }
    for (const v of created) {
      if (!reachable.has(v)) {
        v.delete();
        created.delete(v);
      }
    }
    if (options.consumeInputs === true) {
      for (const v of inputs) {
        if (!reachable.has(v)) {
          v.delete();
          inputs.delete(v);
        }
      }
    }
  };
  live.add(inputTensor);
  let outputs: DynTensor<Elem>[];
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
    const result = outputs.flatMap((t) => t.data.map((e) => (typeof e === 'number' ? own(ctx.encryptVector(new Float64Array(ctx.slotCount).fill(e))) : materialize(e))));
    // Outputs that are the same ciphertext twice (or an input) are copied so each is owned once.
    const seen = new Set<CkksVector>();
    const owned = result.map((v) => {
      if (seen.has(v) || !created.has(v)) return ctx.copy(v);
      seen.add(v);
      return v;
    });
    for (const v of owned) created.delete(v);
    return owned;
  } finally {
    for (const v of created) v.delete();
  }
}

/** Depth bookkeeping element: `d` levels used by its ciphertexts, `form` when still symbolic. */
type DepthElem = number | { readonly d: number; readonly form: boolean };

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
        d = Math.max(d, e.d);
        only = terms.length === 1 && k === 1 && bias === 0 ? e : undefined;
      }
      if (d < 0) return bias;
      return only ?? { d, form: true };
    },
    mul: (a, b) => {
      if (typeof a === 'number') return algebra.lin([[b, a]], 0);
      if (typeof b === 'number') return algebra.lin([[a, b]], 0);
      return { d: Math.max(materialized(a), materialized(b)) + 1, form: false };
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" must be calibrated into a polynomial first`, { param: 'model', details: { op, node: node.name } });
    },
  };
  const outs = execute(graph, algebra, [{ dims, data: Array.from({ length: sizeOf(dims) }, () => ({ d: 0, form: false })) }]);
  return Math.max(0, ...outs.flatMap((t) => t.data.map(materialized)));
}

/** Cost element: the ciphertext ids a form combines, or one ciphertext id. */
type CostElem = number | { readonly ids: ReadonlySet<number>; readonly form: boolean };

/**
 * Work of one batch-plan run: plaintext-scalar products (terms of every materialized affine
 * form) and ciphertext products. Independent of how many slots are filled.
 *
 * @example
 * ```ts
 * batchCost(graph); // { scalarProducts: 29_568, products: 320 } for the bundled MNIST model
 * ```
 */
export function batchCost(graph: Graph): { scalarProducts: number; products: number } {
  const spec = graph.inputs[0];
  if (spec === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no input', { param: 'model' });
  const dims = [1, ...spec.dims.slice(1).map((d) => d ?? 1)];
  let next = 0;
  let scalarProducts = 0;
  let products = 0;
  const done = new WeakSet<object>();
  const materialize = (e: Exclude<CostElem, number>): void => {
    if (e.form && !done.has(e)) {
      done.add(e);
      scalarProducts += e.ids.size;
    }
  };
  const algebra: Algebra<CostElem> = {
    lin: (terms, bias) => {
      const ids = new Set<number>();
      for (const [e, k] of terms) if (k !== 0 && typeof e !== 'number') for (const id of e.ids) ids.add(id);
      if (ids.size === 0) return bias;
      const only = terms.length === 1 && terms[0]![1] === 1 && bias === 0 ? terms[0]![0] : undefined;
      return typeof only === 'object' ? only : { ids, form: true };
    },
    mul: (a, b) => {
      if (typeof a === 'number') return algebra.lin([[b, a]], 0);
      if (typeof b === 'number') return algebra.lin([[a, b]], 0);
      materialize(a);
      materialize(b);
      products++;
      return { ids: new Set([next++]), form: false };
    },
    nonlinear: (op, _a, node) => {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${op} node "${node.name}" must be calibrated into a polynomial first`, { param: 'model', details: { op, node: node.name } });
    },
  };
  const outs = execute(graph, algebra, [{ dims, data: Array.from({ length: sizeOf(dims) }, () => ({ ids: new Set([next++]), form: false })) }]);
  for (const t of outs) for (const e of t.data) if (typeof e !== 'number') materialize(e);
  return { scalarProducts, products };
}
