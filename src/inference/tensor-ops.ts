import { CipherMLError } from '../core/errors.ts';
import type { Algebra, DynTensor } from './execute.ts';
import type { GraphNode, Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * Tensor helpers of the executor: constant/dynamic values, re-indexing (Slice, Transpose,
 * Gather are pure index maps), numpy broadcasting of the elementwise operators
 * (onnx/onnx docs/Broadcasting.md), Constant's value forms.
 */

/** An executor value: a constant tensor, or one whose elements depend on the input. */
export type Value<E> = { readonly kind: 'static'; readonly t: Tensor } | { readonly kind: 'dyn'; readonly t: DynTensor<E> };

/** A negative axis counts from the end. */
export function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * Slice-1 (attributes) and Slice-10/11/13 (inputs): per axis, start and end are clamped
 * (negative counts from the end) to [0, dim] for a positive step, [−1, dim − 1] for a negative
 * one; the axis keeps ⌈(end − start) / step⌉ elements (at least 0).
 */
export function slice<E>(node: GraphNode, x: Value<E>, starts: readonly number[], ends: readonly number[], axesIn: readonly number[] | undefined, stepsIn: readonly number[] | undefined): Value<E> {
  const r = x.t.dims.length;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => norm(a, r));
  const steps = stepsIn ?? starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length || axes.some((a) => a < 0 || a >= r) || steps.some((v) => v === 0)) {
    throw invalidNode(node, `starts [${starts.join(', ')}], ends [${ends.join(', ')}], axes [${axes.join(', ')}], steps [${steps.join(', ')}] for a rank-${r} input`);
  }
  const first = x.t.dims.map(() => 0);
  const step = x.t.dims.map(() => 1);
  const dims = [...x.t.dims];
  axes.forEach((a, i) => {
    const d = x.t.dims[a]!;
    const st = steps[i]!;
    const clampTo = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v < 0 ? v + d : v));
    const s0 = st > 0 ? clampTo(starts[i]!, 0, d) : clampTo(starts[i]!, 0, d - 1);
    const e0 = st > 0 ? clampTo(ends[i]!, 0, d) : clampTo(ends[i]!, -1, d - 1);
    first[a] = s0;
    step[a] = st;
    dims[a] = Math.max(0, Math.ceil((e0 - s0) / st));
  });
  const strides = x.t.dims.map((_, i) => sizeOf(x.t.dims.slice(i + 1)));
  return mapped(x, dims, (o) => {
    let rem = o;
    let src = 0;
    for (let i = r - 1; i >= 0; i--) {
      const c = rem % dims[i]!;
      rem = Math.floor(rem / dims[i]!);
      src += (first[i]! + c * step[i]!) * strides[i]!;
    }
    return src;
  });
}

export const convOut = <E>(t: DynTensor<E>): [E[], readonly number[]] => [t.data as E[], t.dims];

export function invalidNode(node: GraphNode, what: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_ONNX_INVALID', `${node.op} node "${node.name}": ${what}`, { param: 'model', details: { op: node.op, node: node.name } });
}

/** Constant-1/9/11/12/13/19/21: exactly one of value, value_float(s), value_int(s). */
export function constantValue(node: GraphNode): Tensor {
  const a = node.attrs;
  const keys = Object.keys(a);
  if (keys.length !== 1) throw invalidNode(node, `${keys.length} value attributes (exactly one of value, value_float, value_floats, value_int, value_ints is allowed)`);
  const v = a[keys[0]!]!;
  switch (keys[0]) {
    case 'value':
      if (typeof v === 'object' && !Array.isArray(v)) return v as Tensor;
      break;
    case 'value_float':
      if (typeof v === 'number') return { dims: [], data: Float64Array.of(v) };
      break;
    case 'value_floats':
      if (Array.isArray(v)) return { dims: [v.length], data: Float64Array.from(v as number[]) };
      break;
    case 'value_int':
      if (typeof v === 'number') return { dims: [], data: Float64Array.of(v), type: 'int64' };
      break;
    case 'value_ints':
      if (Array.isArray(v)) return { dims: [v.length], data: Float64Array.from(v as number[]), type: 'int64' };
      break;
    default:
      throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `Constant node "${node.name}" with ${keys[0]} (strings and sparse tensors are not supported)`, { param: 'model', details: { op: node.op, node: node.name } });
  }
  throw invalidNode(node, `attribute ${keys[0]} has the wrong type`);
}

export function dynOf<E>(node: GraphNode, v: Value<E>): DynTensor<E> {
  if (v.kind === 'dyn') return v.t;
  throw new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${node.op} node "${node.name}" on a constant input (fold it before export)`, { param: 'model', details: { op: node.op, node: node.name } });
}

/** The value with element o of the result taken from element src(o) of x (a pure re-indexing). */
export function mapped<E>(x: Value<E>, dims: readonly number[], src: (o: number) => number): Value<E> {
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

export function reshaped<E>(x: Value<E>, dims: readonly number[]): Value<E> {
  return x.kind === 'static' ? { kind: 'static', t: { dims, data: x.t.data } } : { kind: 'dyn', t: { dims, data: x.t.data } };
}

/** Index into a static tensor broadcast (numpy rules) to `dims`, at flat output index `o`. */
export function bcast(t: Tensor, dims: readonly number[], o: number): number {
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

export function binary<E>(node: GraphNode, x: Value<E>, y: Value<E>, A: Algebra<E>): Value<E> {
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

