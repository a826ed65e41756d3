import { CipherMLError } from '../core/errors.ts';
import type { Graph, GraphNode, Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * One graph executor for every element type. Operator semantics follow the ONNX operator
 * specification (onnx/onnx docs/Operators.md, opsets 9–14); every supported operator is, per
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
  /** Relu or Sigmoid; the CKKS algebra refuses (calibration replaces them with polynomials). */
  nonlinear(op: 'Relu' | 'Sigmoid', a: E, node: GraphNode): E;
}

/** A tensor whose values depend on the input (elements of the algebra). */
export interface DynTensor<E> {
  readonly dims: readonly number[];
  readonly data: readonly E[];
}

type Value<E> = { readonly kind: 'static'; readonly t: Tensor } | { readonly kind: 'dyn'; readonly t: DynTensor<E> };

/** Operators every executor supports. */
export const SUPPORTED_OPERATORS: readonly string[] = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'AveragePool', 'GlobalAveragePool', 'BatchNormalization',
  'Pad', 'Flatten', 'Reshape', 'Constant', 'Relu', 'Sigmoid', 'Identity',
  // What PyTorch's exporter emits around those (shape arithmetic, eval-mode Dropout, x**k).
  'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Cast', 'Dropout', 'Transpose', 'Pow', 'Neg',
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
    if (n.op === 'Conv' && (n.attrs['group'] ?? 1) !== 1) {
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Conv with group=${String(n.attrs['group'])} (node "${n.name}"): only group=1 is supported`, { param: 'model', details: { op: n.op, node: n.name } });
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
    outs.forEach((v, i) => env.set(node.outputs[i]!, v));
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
    case 'Constant': {
      const t = a['value'];
      if (typeof t === 'object' && !Array.isArray(t)) return [{ kind: 'static', t: t as Tensor }];
      if (typeof a['value_float'] === 'number') return [{ kind: 'static', t: { dims: [], data: Float64Array.of(a['value_float']) } }];
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Constant node "${node.name}" without a tensor value`, { param: 'model', details: { op: node.op, node: node.name } });
    }
    case 'Relu':
    case 'Sigmoid': {
      const x = arg(0);
      if (x.kind === 'static') {
        const f = node.op === 'Relu' ? (v: number) => Math.max(0, v) : (v: number) => 1 / (1 + Math.exp(-v));
        return [{ kind: 'static', t: { dims: x.t.dims, data: x.t.data.map(f) } }];
      }
      return dyn(x.t.data.map((e) => A.nonlinear(node.op as 'Relu' | 'Sigmoid', e, node)), x.t.dims);
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
      const x = arg(0);
      const spec = Array.from(stat(1, 'shape').data);
      const dims = spec.map((d, i) => (d === 0 ? x.t.dims[i]! : d));
      const known = dims.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
      return [reshaped(x, dims.map((d) => (d === -1 ? sizeOf(x.t.dims) / known : d)))];
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
      const x = dynOf(node, arg(0));
      const w = stat(1, 'weight');
      const b = args[2]?.kind === 'static' ? args[2].t : undefined;
      const [n, c, h, wd] = x.dims as [number, number, number, number];
      const [m, , kh, kw] = w.dims as [number, number, number, number];
      const [sh, sw] = ints('strides', [1, 1]) as [number, number];
      const [dh, dw] = ints('dilations', [1, 1]) as [number, number];
      const [pt, pl, pb, pr] = convPads(node, ints('pads', [0, 0, 0, 0]), [h, wd], [kh, kw], [sh, sw]);
      const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
      const ow = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
      const out: E[] = new Array(n * m * oh * ow);
      for (let i = 0; i < n; i++) {
        for (let o = 0; o < m; o++) {
          for (let y = 0; y < oh; y++) {
            for (let xx = 0; xx < ow; xx++) {
              const terms: [E, number][] = [];
              for (let ch = 0; ch < c; ch++) {
                for (let u = 0; u < kh; u++) {
                  const iy = y * sh - pt + u * dh;
                  if (iy < 0 || iy >= h) continue;
                  for (let v = 0; v < kw; v++) {
                    const ix = xx * sw - pl + v * dw;
                    if (ix < 0 || ix >= wd) continue;
                    terms.push([x.data[((i * c + ch) * h + iy) * wd + ix]!, w.data[((o * c + ch) * kh + u) * kw + v]!]);
                  }
                }
              }
              out[((i * m + o) * oh + y) * ow + xx] = A.lin(terms, b === undefined ? 0 : b.data[o]!);
            }
          }
        }
      }
      return dyn(out, [n, m, oh, ow]);
    }
    case 'AveragePool':
    case 'GlobalAveragePool': {
      const x = dynOf(node, arg(0));
      const [n, c, h, wd] = x.dims as [number, number, number, number];
      const global = node.op === 'GlobalAveragePool';
      const [kh, kw] = global ? [h, wd] : (ints('kernel_shape', [1, 1]) as [number, number]);
      const [sh, sw] = global ? [1, 1] : (ints('strides', [1, 1]) as [number, number]);
      const [pt, pl, pb, pr] = global ? [0, 0, 0, 0] : convPads(node, ints('pads', [0, 0, 0, 0]), [h, wd], [kh, kw], [sh, sw]);
      const includePad = int('count_include_pad', 0) === 1;
      const ceil = int('ceil_mode', 0) === 1;
      const rnd = ceil ? Math.ceil : Math.floor;
      const oh = rnd((h + pt + pb - kh) / sh) + 1;
      const ow = rnd((wd + pl + pr - kw) / sw) + 1;
      const out: E[] = new Array(n * c * oh * ow);
      for (let i = 0; i < n * c; i++) {
        for (let y = 0; y < oh; y++) {
          for (let xx = 0; xx < ow; xx++) {
            const cells: E[] = [];
            let padded = 0;
            for (let u = 0; u < kh; u++) {
              for (let v = 0; v < kw; v++) {
                const iy = y * sh - pt + u;
                const ix = xx * sw - pl + v;
                if (iy >= h + pb || ix >= wd + pr) continue;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) padded++;
                else cells.push(x.data[(i * h + iy) * wd + ix]!);
              }
            }
            const count = includePad ? cells.length + padded : cells.length;
            out[(i * oh + y) * ow + xx] = A.lin(cells.map((e) => [e, 1 / count] as const), 0);
          }
        }
      }
      return dyn(out, [n, c, oh, ow]);
    }
    case 'Pad': {
      const x = dynOf(node, arg(0));
      const mode = (a['mode'] as string | undefined) ?? 'constant';
      const pads = args[1] !== undefined ? Array.from(stat(1, 'pads').data) : [...ints('pads', [])];
      const value = args[2] !== undefined ? stat(2, 'constant value').data[0] ?? 0 : flt('value', 0);
      const r = x.dims.length;
      if (pads.length !== 2 * r || pads.some((p) => p < 0)) throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Pad node "${node.name}": pads [${pads.join(', ')}] (negative pads are not supported)`, { param: 'model', details: { op: node.op, node: node.name } });
      if (mode !== 'constant' && mode !== 'edge' && mode !== 'reflect') throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Pad node "${node.name}" mode ${mode}`, { param: 'model', details: { op: node.op, node: node.name } });
      const dims = x.dims.map((d, i) => d + pads[i]! + pads[i + r]!);
      const out: E[] = new Array(sizeOf(dims));
      const constant = A.lin([], value);
      const idx = new Array<number>(r).fill(0);
      for (let o = 0; o < out.length; o++) {
        let rem = o;
        for (let i = r - 1; i >= 0; i--) {
          idx[i] = rem % dims[i]!;
          rem = Math.floor(rem / dims[i]!);
        }
        let src = 0;
        let inside = true;
        for (let i = 0; i < r; i++) {
          let p = idx[i]! - pads[i]!;
          const d = x.dims[i]!;
          if (p < 0 || p >= d) {
            if (mode === 'constant') inside = false;
            else if (mode === 'edge') p = Math.min(d - 1, Math.max(0, p));
            else p = reflect(p, d);
          }
          src = src * d + p;
        }
        out[o] = inside ? x.data[src]! : constant;
      }
      return dyn(out, dims);
    }
    case 'Shape':
      return [{ kind: 'static', t: { dims: [arg(0).t.dims.length], data: Float64Array.from(arg(0).t.dims), type: 'int64' } }];
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

function reflect(p: number, d: number): number {
  if (d === 1) return 0;
  const period = 2 * (d - 1);
  const m = ((p % period) + period) % period;
  return m < d ? m : period - m;
}

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function convPads(node: GraphNode, pads: readonly number[], size: readonly number[], kernel: readonly number[], strides: readonly number[]): [number, number, number, number] {
  const auto = (node.attrs['auto_pad'] as string | undefined) ?? 'NOTSET';
  if (auto === 'NOTSET' || auto === 'VALID') return auto === 'VALID' ? [0, 0, 0, 0] : (pads as [number, number, number, number]);
  const total = size.map((s, i) => Math.max(0, (Math.ceil(s / strides[i]!) - 1) * strides[i]! + kernel[i]! - s));
  const lo = total.map((t) => (auto === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
  return [lo[0]!, lo[1]!, total[0]! - lo[0]!, total[1]! - lo[1]!];
}

function dynOf<E>(node: GraphNode, v: Value<E>): DynTensor<E> {
  if (v.kind === 'dyn') return v.t;
  throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${node.op} node "${node.name}" on a constant input (fold it before export)`, { param: 'model', details: { op: node.op, node: node.name } });
}

/** The value with element o of the result taken from element src(o) of x (a pure re-indexing). */
function mapped<E>(x: Value<E>, dims: readonly number[], src: (o: number) => number): Value<E> {
  const n = sizeOf(dims);
  if (x.kind === 'static') {
    const data = new Float64Array(n);
    for (let o = 0; o < n; o++) data[o] = x.t.data[src(o)]!;
    return { kind: 'static', t: { dims, data, ...(x.t.type === undefined ? {} : { type: x.t.type }) } };
  }
  const data = new Array<E>(n);
  for (let o = 0; o < n; o++) data[o] = x.t.data[src(o)]!;
  return { kind: 'dyn', t: { dims, data } };
}

function reshaped<E>(x: Value<E>, dims: readonly number[]): Value<E> {
  return x.kind === 'static' ? { kind: 'static', t: { dims, data: x.t.data } } : { kind: 'dyn', t: { dims, data: x.t.data } };
}

/** Index into a static tensor broadcast (numpy rules) to `dims`, at flat output index `o`. */
function bcast(t: Tensor, dims: readonly number[], o: number): number {
  let src = 0;
  let stride = 1;
  let rem = o;
  const r = dims.length;
  const offset = r - t.dims.length;
  for (let i = r - 1; i >= 0; i--) {
    const coord = rem % dims[i]!;
    rem = Math.floor(rem / dims[i]!);
    const td = i - offset >= 0 ? t.dims[i - offset]! : 1;
    if (td !== 1) src += coord * stride;
    stride *= td;
  }
  return t.data[src]!;
}

function broadcastDims(a: readonly number[], b: readonly number[], node: GraphNode): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${node.op} node "${node.name}": shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`, { param: 'model' });
    out.push(Math.max(x, y));
  }
  return out;
}

function binary<E>(node: GraphNode, x: Value<E>, y: Value<E>, A: Algebra<E>): Value<E> {
  const op = node.op as 'Add' | 'Sub' | 'Mul' | 'Div';
  const dims = broadcastDims(x.t.dims, y.t.dims, node);
  const n = sizeOf(dims);
  const f = { Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Mul: (p: number, q: number) => p * q, Div: (p: number, q: number) => p / q }[op];
  if (x.kind === 'static' && y.kind === 'static') {
    const data = new Float64Array(n);
    for (let o = 0; o < n; o++) data[o] = f(bcast(x.t, dims, o), bcast(y.t, dims, o));
    return { kind: 'static', t: { dims, data } };
  }
  if (op === 'Div' && y.kind !== 'static') {
    throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Div node "${node.name}": only division by a constant is supported`, { param: 'model', details: { op: node.op, node: node.name } });
  }
  const pick = (v: Value<E>, o: number): E | number => (v.kind === 'static' ? bcast(v.t, dims, o) : v.t.data[dynIndex(v.t.dims, dims, o)]!);
  const data: E[] = new Array(n);
  for (let o = 0; o < n; o++) {
    const p = pick(x, o);
    const q = pick(y, o);
    if (x.kind === 'static') {
      const c = p as number;
      data[o] = op === 'Add' ? A.lin([[q as E, 1]], c) : op === 'Sub' ? A.lin([[q as E, -1]], c) : A.lin([[q as E, c]], 0);
    } else if (y.kind === 'static') {
      const c = q as number;
      data[o] = op === 'Add' ? A.lin([[p as E, 1]], c) : op === 'Sub' ? A.lin([[p as E, 1]], -c) : op === 'Mul' ? A.lin([[p as E, c]], 0) : A.lin([[p as E, 1 / c]], 0);
    } else {
      data[o] = op === 'Add' ? A.lin([[p as E, 1], [q as E, 1]], 0) : op === 'Sub' ? A.lin([[p as E, 1], [q as E, -1]], 0) : A.mul(p as E, q as E);
    }
  }
  return { kind: 'dyn', t: { dims, data } };
}

function dynIndex(src: readonly number[], dims: readonly number[], o: number): number {
  let idx = 0;
  let stride = 1;
  let rem = o;
  const offset = dims.length - src.length;
  for (let i = dims.length - 1; i >= 0; i--) {
    const coord = rem % dims[i]!;
    rem = Math.floor(rem / dims[i]!);
    const sd = i - offset >= 0 ? src[i - offset]! : 1;
    if (sd !== 1) idx += coord * stride;
    stride *= sd;
  }
  return idx;
}

/** The plaintext reference algebra (float64 numbers). */
export const PLAIN: Algebra<number> = {
  lin: (terms, bias) => {
    let s = bias;
    for (const [e, k] of terms) s += e * k;
    return s;
  },
  mul: (a, b) => a * b,
  nonlinear: (op, a) => (op === 'Relu' ? Math.max(0, a) : 1 / (1 + Math.exp(-a))),
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
