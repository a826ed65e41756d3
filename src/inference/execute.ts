import { CipherMLError } from '../core/errors.ts';
import type { Graph, GraphNode, Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';
import type { ActivationOp } from './activations.ts';
import { activation, isActivation } from './activations.ts';
import { averagePool, conv, pad } from './spatial.ts';
import type { Value } from './tensor-ops.ts';
import { bcast, binary, constantValue, convOut, dynOf, invalidNode, mapped, norm, reshaped, slice } from './tensor-ops.ts';

/**
 * One graph executor for every element type. Operator semantics follow the ONNX operator
 * specification (onnx/onnx docs/Operators.md, opsets 9–23); every supported operator is, per
 * output element, an affine combination of input elements with constant coefficients, a product
 * of two elements, or an elementwise non-linearity. An {@link Algebra} supplies those three, so
 * the plaintext reference (numbers) and the CKKS batch plan (one sample per slot) share the
 * indexing code.
 */

/** Element arithmetic an executor needs. */
export interface Algebra<E> {
  /** Σ k_i·e_i + bias. */
  lin(terms: readonly (readonly [E, number])[], bias: number): E;
  /** a·b. */
  mul(a: E, b: E): E;
  /** Relu, Sigmoid, Tanh or Gelu; the CKKS algebras refuse (calibration replaces them with polynomials). */
  nonlinear(op: ActivationOp, a: E, node: GraphNode): E;
}

/** A tensor whose values depend on the input (elements of the algebra). */
export interface DynTensor<E> {
  readonly dims: readonly number[];
  readonly data: readonly E[];
}


/** Operators every executor supports. */
export const SUPPORTED_OPERATORS: readonly string[] = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'AveragePool', 'GlobalAveragePool', 'BatchNormalization',
  'Pad', 'Flatten', 'Reshape', 'Constant', 'ConstantOfShape', 'Relu', 'Sigmoid', 'Tanh', 'Gelu', 'Identity',
  // What PyTorch's exporter emits around those (shape arithmetic, eval-mode Dropout, x**k).
  'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Cast', 'Dropout', 'Transpose', 'Pow', 'Neg', 'Slice',
];

/**
 * Throws CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR naming the first node whose operator (or operator
 * variant, e.g. grouped Conv) is not supported.
 *
 * @example
 * ```ts
 * assertSupported(parseOnnx(bytes));
 * ```
 */
export function assertSupported(graph: Graph): void {
  for (const n of graph.nodes) {
    if (!SUPPORTED_OPERATORS.includes(n.op)) {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `operator ${n.op} (node "${n.name}") is not supported`, { param: 'model', details: { op: n.op, node: n.name } });
    }
  }
}

/** Options of {@link execute}. */
export interface ExecuteOptions<E> {
  /** Called after each node with the node and its dynamic outputs (calibration records ranges). */
  readonly onNode?: (node: GraphNode, outputs: readonly DynTensor<E>[]) => void;
  /** Called with a dynamic tensor once no later node reads it (the CKKS plan frees it). */
  readonly release?: (t: DynTensor<E>) => void;
}

/**
 * Runs the graph on dynamic inputs and returns the graph outputs.
 *
 * @example
 * ```ts
 * const [y] = execute(graph, PLAIN, [{ dims: [1, 1, 28, 28], data: pixels }]);
 * ```
 */
export function execute<E>(graph: Graph, algebra: Algebra<E>, inputs: readonly DynTensor<E>[], options: ExecuteOptions<E> = {}): DynTensor<E>[] {
  assertSupported(graph);
  const env = new Map<string, Value<E>>();
  for (const [name, t] of graph.initializers) env.set(name, { kind: 'static', t });
  graph.inputs.forEach((inp, i) => {
    const t = inputs[i];
    if (t === undefined) throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `missing input ${inp.name}`, { param: 'input' });
    if (t.dims.length !== inp.dims.length || inp.dims.some((d, j) => d !== null && d !== t.dims[j])) {
      throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `input ${inp.name} has shape [${t.dims.join(', ')}], the model expects [${inp.dims.map((d) => d ?? 'N').join(', ')}]`, {
        param: 'input',
        details: { expected: inp.dims, actual: t.dims },
      });
    }
    env.set(inp.name, { kind: 'dyn', t });
  });
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((x) => lastUse.set(x, i)));
  for (const o of graph.outputs) lastUse.set(o, Infinity);
  graph.nodes.forEach((node, idx) => {
    const args = node.inputs.map((x) => (x === '' ? undefined : env.get(x)));
    const outs = run(node, args, algebra);
    outs.forEach((v, i) => {
      const name = node.outputs[i]!;
      if (name !== '') checkDeclared(graph, node, name, v.t.dims);
      env.set(name, v);
    });
    options.onNode?.(node, outs.filter((v): v is { kind: 'dyn'; t: DynTensor<E> } => v.kind === 'dyn').map((v) => v.t));
    if (options.release !== undefined) {
      for (const x of new Set(node.inputs)) {
        const v = env.get(x);
        if (lastUse.get(x) === idx && v?.kind === 'dyn') {
          env.delete(x);
          // Identity-like operators (Identity, Dropout, Cast) bind the same tensor to a new name.
          let shared = false;
          for (const w of env.values()) if (w.t === v.t) shared = true;
          if (!shared) options.release(v.t);
        }
      }
    }
  });
  return graph.outputs.map((o) => {
    const v = env.get(o);
    if (v === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `graph output ${o} is never computed`, { param: 'model' });
    if (v.kind === 'static') return { dims: v.t.dims, data: Array.from(v.t.data, (c) => algebra.lin([], c)) };
    return v.t;
  });
}

/**
 * A computed shape must equal the one the file declares (value_info or graph output, written by
 * the exporter's ONNX shape inference); a symbolic dimension matches any size. A difference means
 * this executor and the exporter disagree on the operator's semantics: refuse, naming the node.
 */
function checkDeclared(graph: Graph, node: GraphNode, name: string, dims: readonly number[]): void {
  const want = graph.declared?.get(name);
  if (want === undefined) return;
  // A declared scalar with no dims and an inferred rank-0 tensor agree; rank must match otherwise.
  if (want.dims.length !== dims.length || want.dims.some((d, i) => d !== null && d !== dims[i])) {
    throw new CipherMLError('CIPHERML_E_ONNX_SHAPE_MISMATCH', `node "${node.name}" (${node.op}) computes ${name} with shape [${dims.join(', ')}], the model declares [${want.dims.map((d) => d ?? '?').join(', ')}]`, {
      param: 'model',
      details: { node: node.name, op: node.op, value: name, computed: dims, declared: want.dims },
    });
  }
}

// ---- operators ---------------------------------------------------------------------------------

function run<E>(node: GraphNode, args: (Value<E> | undefined)[], A: Algebra<E>): Value<E>[] {
  const a = node.attrs;
  const ints = (k: string, d: readonly number[]): readonly number[] => (a[k] as readonly number[] | undefined) ?? d;
  const int = (k: string, d: number): number => (a[k] as number | undefined) ?? d;
  const flt = (k: string, d: number): number => (a[k] as number | undefined) ?? d;
  const arg = (i: number): Value<E> => {
    const v = args[i];
    if (v === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `node "${node.name}" (${node.op}) lacks input ${i}`, { param: 'model' });
    return v;
  };
  const stat = (i: number, what: string): Tensor => {
    const v = arg(i);
    if (v.kind !== 'static') {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${node.op} node "${node.name}": the ${what} must be a constant (initializer) for encrypted inference`, { param: 'model', details: { op: node.op, node: node.name } });
    }
    return v.t;
  };
  const dyn = (data: E[], dims: readonly number[]): Value<E>[] => [{ kind: 'dyn', t: { dims, data } }];
  switch (node.op) {
    case 'Identity':
      return [arg(0)];
    case 'Constant':
      return [{ kind: 'static', t: constantValue(node) }];
    case 'ConstantOfShape': {
      // ConstantOfShape-9/20: the input is a 1-D int64 shape; `value` a one-element tensor (default float 0).
      const shape = stat(0, 'shape');
      const spec = Array.from(shape.data);
      if (shape.dims.length !== 1 || spec.some((d) => !Number.isInteger(d) || d < 0)) throw invalidNode(node, `shape [${spec.join(', ')}] is not a list of sizes ≥ 0`);
      const v = a['value'];
      let fill = 0;
      let type: Tensor['type'];
      if (v !== undefined) {
        if (typeof v !== 'object' || Array.isArray(v) || (v as Tensor).data.length !== 1) throw invalidNode(node, 'value is not a one-element tensor');
        fill = (v as Tensor).data[0]!;
        type = (v as Tensor).type;
      }
      return [{ kind: 'static', t: { dims: spec, data: new Float64Array(sizeOf(spec)).fill(fill), ...(type === undefined ? {} : { type }) } }];
    }
    case 'Relu':
    case 'Sigmoid':
    case 'Tanh':
    case 'Gelu': {
      const x = arg(0);
      if (!isActivation(node.op)) throw invalidNode(node, 'not an activation');
      const op = node.op;
      if (x.kind === 'static') return [{ kind: 'static', t: { dims: x.t.dims, data: x.t.data.map(activation(op, node)) } }];
      return dyn(x.t.data.map((e) => A.nonlinear(op, e, node)), x.t.dims);
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return [binary(node, arg(0), arg(1), A)];
    case 'Flatten': {
      const x = arg(0);
      const axis = norm(int('axis', 1), x.t.dims.length);
      const dims = [sizeOf(x.t.dims.slice(0, axis)), sizeOf(x.t.dims.slice(axis))];
      return [reshaped(x, dims)];
    }
    case 'Reshape': {
      // Reshape-5/13/14/19/21: 0 copies the input's dimension (unless allowzero = 1, opset 14+),
      // at most one −1 is inferred; the element count must be unchanged.
      const x = arg(0);
      const spec = Array.from(stat(1, 'shape').data);
      const allowzero = int('allowzero', 0) === 1;
      if (spec.filter((d) => d === -1).length > 1 || spec.some((d) => !Number.isInteger(d) || d < -1)) throw invalidNode(node, `shape [${spec.join(', ')}] has more than one −1 or a size below −1`);
      if (allowzero && spec.includes(0) && spec.includes(-1)) throw invalidNode(node, `shape [${spec.join(', ')}] has both 0 and −1 with allowzero = 1`);
      const dims = spec.map((d, i) => {
        if (d !== 0 || allowzero) return d;
        if (i >= x.t.dims.length) throw invalidNode(node, `shape [${spec.join(', ')}] copies axis ${i} of a rank-${x.t.dims.length} input`);
        return x.t.dims[i]!;
      });
      const total = sizeOf(x.t.dims);
      const known = dims.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
      const inferred = dims.includes(-1) ? (known === 0 ? Number.NaN : total / known) : undefined;
      const out = dims.map((d) => (d === -1 ? inferred! : d));
      if ((inferred !== undefined && !Number.isInteger(inferred)) || sizeOf(out) !== total) {
        throw invalidNode(node, `shape [${spec.join(', ')}] does not hold the ${total} elements of [${x.t.dims.join(', ')}]`);
      }
      return [reshaped(x, out)];
    }
    case 'BatchNormalization': {
      const x = dynOf(node, arg(0));
      const [s, b, m, v] = [stat(1, 'scale'), stat(2, 'bias'), stat(3, 'mean'), stat(4, 'variance')];
      const eps = flt('epsilon', 1e-5);
      const [n, c] = [x.dims[0]!, x.dims[1]!];
      const inner = sizeOf(x.dims.slice(2));
      const out: E[] = new Array(x.data.length);
      for (let ch = 0; ch < c; ch++) {
        const k = s.data[ch]! / Math.sqrt(v.data[ch]! + eps);
        const bias = b.data[ch]! - k * m.data[ch]!;
        for (let i = 0; i < n; i++) for (let j = 0; j < inner; j++) out[(i * c + ch) * inner + j] = A.lin([[x.data[(i * c + ch) * inner + j]!, k]], bias);
      }
      return dyn(out, x.dims);
    }
    case 'Gemm': {
      const x = dynOf(node, arg(0));
      const w = stat(1, 'weight B');
      const c = args[2]?.kind === 'static' ? args[2].t : undefined;
      const [alpha, beta, tA, tB] = [flt('alpha', 1), flt('beta', 1), int('transA', 0), int('transB', 0)];
      const [m, k] = tA ? [x.dims[1]!, x.dims[0]!] : [x.dims[0]!, x.dims[1]!];
      const nOut = tB ? w.dims[0]! : w.dims[1]!;
      const out: E[] = new Array(m * nOut);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < nOut; j++) {
          const terms: [E, number][] = [];
          for (let l = 0; l < k; l++) terms.push([x.data[tA ? l * m + i : i * k + l]!, alpha * w.data[tB ? j * k + l : l * nOut + j]!]);
          out[i * nOut + j] = A.lin(terms, c === undefined ? 0 : beta * bcast(c, [m, nOut], i * nOut + j));
        }
      }
      return dyn(out, [m, nOut]);
    }
    case 'MatMul': {
      const x = dynOf(node, arg(0));
      const w = stat(1, 'right operand');
      if (w.dims.length !== 2) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `MatMul node "${node.name}" with a ${w.dims.length}-D right operand`, { param: 'model', details: { op: node.op, node: node.name } });
      const [k, nOut] = [w.dims[0]!, w.dims[1]!];
      const rows = x.data.length / k;
      const out: E[] = new Array(rows * nOut);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < nOut; j++) {
          const terms: [E, number][] = [];
          for (let l = 0; l < k; l++) terms.push([x.data[i * k + l]!, w.data[l * nOut + j]!]);
          out[i * nOut + j] = A.lin(terms, 0);
        }
      }
      return dyn(out, [...x.dims.slice(0, -1), nOut]);
    }
    case 'Conv': {
      const b = args[2] === undefined ? undefined : stat(2, 'bias');
      return dyn(...convOut(conv(node, dynOf(node, arg(0)), stat(1, 'weight'), b, A)));
    }
    case 'AveragePool':
    case 'GlobalAveragePool':
      return dyn(...convOut(averagePool(node, dynOf(node, arg(0)), A)));
    case 'Pad': {
      // Pad-2 (pads, value attributes); Pad-11+ (pads, constant_value inputs); Pad-18+ (axes input).
      const x = dynOf(node, arg(0));
      const old = node.inputs.length < 2;
      const pads = old ? [...ints('pads', [])] : Array.from(stat(1, 'pads').data);
      const value = old ? flt('value', 0) : args[2] !== undefined ? (stat(2, 'constant value').data[0] ?? 0) : 0;
      const axes = args[3] !== undefined ? Array.from(stat(3, 'axes').data) : undefined;
      return dyn(...convOut(pad(node, x, pads, value, axes, A)));
    }
    case 'Shape': {
      // Shape-15: start/end select dims[start:end] (negative counts from the end, clamped).
      const d = arg(0).t.dims;
      const clamp = (v: number): number => Math.min(d.length, Math.max(0, v < 0 ? v + d.length : v));
      const picked = d.slice(clamp(int('start', 0)), clamp(int('end', d.length)));
      return [{ kind: 'static', t: { dims: [picked.length], data: Float64Array.from(picked), type: 'int64' } }];
    }
    case 'Gather': {
      const x = arg(0);
      const idx = stat(1, 'indices');
      const r = x.t.dims.length;
      const axis = norm(int('axis', 0), r);
      const size = x.t.dims[axis]!;
      const picks = Array.from(idx.data, (i) => {
        const j = i < 0 ? i + size : i;
        if (!Number.isInteger(j) || j < 0 || j >= size) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `Gather node "${node.name}": index ${i} outside [0, ${size})`, { param: 'model', details: { op: node.op, node: node.name } });
        return j;
      });
      const inner = sizeOf(x.t.dims.slice(axis + 1));
      const dims = [...x.t.dims.slice(0, axis), ...idx.dims, ...x.t.dims.slice(axis + 1)];
      return [mapped(x, dims, (o) => {
        const b = o % inner;
        const j = Math.floor(o / inner) % picks.length;
        const a0 = Math.floor(o / (inner * picks.length));
        return (a0 * size + picks[j]!) * inner + b;
      })];
    }
    case 'Unsqueeze': {
      const x = arg(0);
      const axesIn = args[1] !== undefined ? Array.from(stat(1, 'axes').data) : [...ints('axes', [])];
      const rank = x.t.dims.length + axesIn.length;
      const axes = new Set(axesIn.map((ax) => norm(ax, rank)));
      const dims: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) dims.push(axes.has(i) ? 1 : x.t.dims[k++]!);
      return [reshaped(x, dims)];
    }
    case 'Squeeze': {
      const x = arg(0);
      const r = x.t.dims.length;
      const given = args[1] !== undefined ? Array.from(stat(1, 'axes').data) : (a['axes'] as readonly number[] | undefined);
      const axes = new Set(given === undefined ? x.t.dims.flatMap((d, i) => (d === 1 ? [i] : [])) : given.map((ax) => norm(ax, r)));
      for (const ax of axes) {
        if (x.t.dims[ax] !== 1) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `Squeeze node "${node.name}": axis ${ax} has size ${x.t.dims[ax]}`, { param: 'model', details: { op: node.op, node: node.name } });
      }
      return [reshaped(x, x.t.dims.filter((_, i) => !axes.has(i)))];
    }
    case 'Concat': {
      const parts = node.inputs.map((_, i) => arg(i));
      const r = parts[0]!.t.dims.length;
      const axis = norm(int('axis', 0), r);
      for (const p of parts) {
        if (p.t.dims.length !== r || p.t.dims.some((d, i) => i !== axis && d !== parts[0]!.t.dims[i])) {
          throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `Concat node "${node.name}": shapes [${parts.map((q) => q.t.dims.join('×')).join('], [')}] differ off axis ${axis}`, { param: 'model', details: { op: node.op, node: node.name } });
        }
      }
      const dims = parts[0]!.t.dims.map((d, i) => (i === axis ? parts.reduce((acc, p) => acc + p.t.dims[axis]!, 0) : d));
      const inner = sizeOf(dims.slice(axis + 1));
      const along = dims[axis]!;
      // Output element o lies in part k at offset j along the axis.
      const at = (o: number): [number, number] => {
        const outer = Math.floor(o / (inner * along));
        let j = Math.floor(o / inner) % along;
        let k = 0;
        while (j >= parts[k]!.t.dims[axis]!) j -= parts[k++]!.t.dims[axis]!;
        return [k, (outer * parts[k]!.t.dims[axis]! + j) * inner + (o % inner)];
      };
      const n = sizeOf(dims);
      if (parts.every((p) => p.kind === 'static')) {
        const data = new Float64Array(n);
        for (let o = 0; o < n; o++) {
          const [k, src] = at(o);
          data[o] = (parts[k]!.t as Tensor).data[src]!;
        }
        const type = (parts[0]!.t as Tensor).type;
        return [{ kind: 'static', t: { dims, data, ...(type === undefined ? {} : { type }) } }];
      }
      const out = new Array<E>(n);
      for (let o = 0; o < n; o++) {
        const [k, src] = at(o);
        const p = parts[k]!;
        out[o] = p.kind === 'static' ? A.lin([], p.t.data[src]!) : p.t.data[src]!;
      }
      return dyn(out, dims);
    }
    case 'Cast': {
      const x = arg(0);
      // TensorProto.DataType: 1 float, 10 float16, 11 double; 6 int32, 7 int64.
      const to = int('to', 1);
      const float = to === 1 || to === 10 || to === 11;
      if (x.kind === 'static') return [{ kind: 'static', t: float ? { dims: x.t.dims, data: x.t.data } : { dims: x.t.dims, data: x.t.data.map(Math.trunc), type: 'int64' } }];
      if (!float) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Cast node "${node.name}" of encrypted values to data type ${to}: only float types are supported`, { param: 'model', details: { op: node.op, node: node.name } });
      return [x];
    }
    case 'Dropout': {
      // Inference: the identity (ONNX Dropout with training_mode unset), mask all ones.
      const x = arg(0);
      const mask: Value<E> = { kind: 'static', t: { dims: x.t.dims, data: new Float64Array(sizeOf(x.t.dims)).fill(1) } };
      return node.outputs.length > 1 ? [x, mask] : [x];
    }
    case 'Transpose': {
      const x = arg(0);
      const r = x.t.dims.length;
      const perm = ints('perm', Array.from({ length: r }, (_, i) => r - 1 - i));
      const dims = perm.map((p) => x.t.dims[p]!);
      const strides = x.t.dims.map((_, i) => sizeOf(x.t.dims.slice(i + 1)));
      return [mapped(x, dims, (o) => {
        let rem = o;
        let src = 0;
        for (let i = r - 1; i >= 0; i--) {
          src += (rem % dims[i]!) * strides[perm[i]!]!;
          rem = Math.floor(rem / dims[i]!);
        }
        return src;
      })];
    }
    case 'Slice': {
      const x = arg(0);
      if (node.inputs.length < 3) return [slice(node, x, ints('starts', []), ints('ends', []), a['axes'] as readonly number[] | undefined, undefined)];
      const opt = (i: number, what: string): number[] | undefined => (args[i] === undefined ? undefined : Array.from(stat(i, what).data));
      return [slice(node, x, opt(1, 'starts') ?? [], opt(2, 'ends') ?? [], opt(3, 'axes'), opt(4, 'steps'))];
    }
    case 'Neg': {
      const x = arg(0);
      if (x.kind === 'static') return [{ kind: 'static', t: { dims: x.t.dims, data: x.t.data.map((v) => -v) } }];
      return dyn(x.t.data.map((e) => A.lin([[e, -1]], 0)), x.t.dims);
    }
    case 'Pow': {
      const x = arg(0);
      const ex = stat(1, 'exponent');
      if (ex.data.length !== 1) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Pow node "${node.name}": the exponent must be one number`, { param: 'model', details: { op: node.op, node: node.name } });
      const k = ex.data[0]!;
      if (x.kind === 'static') return [{ kind: 'static', t: { dims: x.t.dims, data: x.t.data.map((v) => v ** k) } }];
      if (!Number.isInteger(k) || k < 0 || k > 8) {
        throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Pow node "${node.name}" with exponent ${k}: encrypted powers must be integers 0…8`, { param: 'model', details: { op: node.op, node: node.name } });
      }
      // Square-and-multiply: ⌈log2 k⌉ + popcount(k) − 1 products, depth ⌈log2 k⌉ (+1 for odd k > 1).
      const power = (e: E): E => {
        if (k === 0) return A.lin([], 1);
        let result: E | undefined;
        let base = e;
        for (let m = k; m > 0; m >>= 1) {
          if (m & 1) result = result === undefined ? base : A.mul(result, base);
          if (m > 1) base = A.mul(base, base);
        }
        return result!;
      };
      return dyn(x.t.data.map(power), x.t.dims);
    }
    default:
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `operator ${node.op} (node "${node.name}") is not supported`, { param: 'model', details: { op: node.op, node: node.name } });
  }
}

/** The plaintext reference algebra (float64 numbers). */
export const PLAIN: Algebra<number> = {
  lin: (terms, bias) => {
    let s = bias;
    for (const [e, k] of terms) s += e * k;
    return s;
  },
  mul: (a, b) => a * b,
  nonlinear: (op, a, node) => activation(op, node)(a),
};

/**
 * Plaintext reference inference.
 *
 * @example
 * ```ts
 * const y = runPlain(graph, { dims: [1, 1, 28, 28], data: Float64Array.from(pixels) });
 * ```
 */
export function runPlain(graph: Graph, input: Tensor, options: ExecuteOptions<number> = {}): Tensor {
  const [y] = execute(graph, PLAIN, [{ dims: input.dims, data: Array.from(input.data) }], options);
  return { dims: y!.dims, data: Float64Array.from(y!.data) };
}
