import { CipherMLError } from '../core/errors.ts';
import type { Algebra, DynTensor } from './execute.ts';
import type { GraphNode, Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * The spatial operators in 1-D, 2-D and 3-D (any rank ≥ 3 input [N, C, D1 … Dk]): Conv with
 * groups and dilations, AveragePool / GlobalAveragePool, Pad. Semantics follow the ONNX operator
 * specification (onnx/onnx docs/Operators.md): Conv-1/11, AveragePool-7/10/11/19,
 * GlobalAveragePool-1, Pad-2/11/13/18/19; output sizes and the divisor of a padded average follow
 * onnxruntime's pool_attributes.h, which the operator tests compare against.
 */

const unsupported = (node: GraphNode, what: string): CipherMLError =>
  new CipherMLError('CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR', `${node.op} node "${node.name}": ${what}`, { param: 'model', details: { op: node.op, node: node.name } });

const invalid = (node: GraphNode, what: string): CipherMLError => new CipherMLError('CIPHERML_E_ONNX_INVALID', `${node.op} node "${node.name}": ${what}`, { param: 'model', details: { op: node.op, node: node.name } });

function ints(node: GraphNode, key: string, k: number, fallback: number): number[] {
  const v = node.attrs[key] as readonly number[] | undefined;
  if (v === undefined) return new Array<number>(k).fill(fallback);
  if (!Array.isArray(v) || v.length !== k) throw invalid(node, `attribute ${key} has ${Array.isArray(v) ? v.length : 0} values for ${k} spatial axes`);
  return [...v];
}

/**
 * Begin and end pads per spatial axis (ONNX auto_pad: NOTSET uses `pads`; VALID none; SAME_UPPER
 * and SAME_LOWER pad to ⌈in / stride⌉ outputs, the odd cell at the end (UPPER) or begin (LOWER)).
 */
function padsOf(node: GraphNode, size: readonly number[], kernel: readonly number[], strides: readonly number[], dilations: readonly number[]): { begin: number[]; end: number[] } {
  const k = size.length;
  const auto = (node.attrs['auto_pad'] as string | undefined) ?? 'NOTSET';
  if (auto === 'NOTSET') {
    const p = ints(node, 'pads', 2 * k, 0);
    if (p.some((v) => v < 0)) throw invalid(node, `negative pads [${p.join(', ')}]`);
    return { begin: p.slice(0, k), end: p.slice(k) };
  }
  if (auto === 'VALID') return { begin: new Array<number>(k).fill(0), end: new Array<number>(k).fill(0) };
  if (auto !== 'SAME_UPPER' && auto !== 'SAME_LOWER') throw invalid(node, `auto_pad ${auto}`);
  // onnxruntime refuses SAME padding with dilations (no reference to check against): refuse too.
  if (dilations.some((d) => d !== 1)) throw unsupported(node, `auto_pad ${auto} with dilations [${dilations.join(', ')}]`);
  const total = size.map((s, i) => Math.max(0, (Math.ceil(s / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - s));
  const begin = total.map((t) => (auto === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
  return { begin, end: total.map((t, i) => t - begin[i]!) };
}

function spatialInput<E>(node: GraphNode, x: DynTensor<E>): { n: number; c: number; size: number[] } {
  if (x.dims.length < 3 || x.dims.length > 5) throw unsupported(node, `a rank-${x.dims.length} input [${x.dims.join(', ')}] (1-D, 2-D and 3-D are supported: [N, C, D1 … Dk], k ≤ 3)`);
  return { n: x.dims[0]!, c: x.dims[1]!, size: x.dims.slice(2) };
}

/** Row-major offsets of every index of `dims` (the spatial positions of one plane). */
function positions(dims: readonly number[]): number[][] {
  const out: number[][] = [];
  const n = sizeOf(dims);
  for (let o = 0; o < n; o++) {
    const idx = new Array<number>(dims.length);
    let rem = o;
    for (let i = dims.length - 1; i >= 0; i--) {
      idx[i] = rem % dims[i]!;
      rem = Math.floor(rem / dims[i]!);
    }
    out.push(idx);
  }
  return out;
}

/** Flat offset of `idx` within a plane of `dims`, or −1 outside it. */
function offsetIn(idx: readonly number[], dims: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < dims.length; i++) {
    const v = idx[i]!;
    if (v < 0 || v >= dims[i]!) return -1;
    o = o * dims[i]! + v;
  }
  return o;
}

/**
 * ONNX Conv (opset 1/11): X [N, C, D…], W [M, C/group, K…], B [M]; output channel m reads input
 * channels g·C/group … (g+1)·C/group − 1 of its group g = ⌊m / (M/group)⌋ (grouped and depthwise
 * convolutions).
 *
 * @example
 * ```ts
 * const y = conv(node, x, weight, bias, PLAIN);
 * ```
 */
export function conv<E>(node: GraphNode, x: DynTensor<E>, w: Tensor, b: Tensor | undefined, A: Algebra<E>): DynTensor<E> {
  const { n, c, size } = spatialInput(node, x);
  const k = size.length;
  if (w.dims.length !== k + 2) throw invalid(node, `weight of rank ${w.dims.length} for a rank-${k + 2} input`);
  const group = (node.attrs['group'] as number | undefined) ?? 1;
  const m = w.dims[0]!;
  const cg = w.dims[1]!;
  if (!Number.isInteger(group) || group < 1 || c % group !== 0 || m % group !== 0 || cg !== c / group) {
    throw invalid(node, `group=${group} with ${c} input channels, weight [${w.dims.join(', ')}] (needs C/group = W[1] and M divisible by group)`);
  }
  const kernel = w.dims.slice(2);
  const declaredKernel = node.attrs['kernel_shape'] as readonly number[] | undefined;
  if (declaredKernel !== undefined && (declaredKernel.length !== k || declaredKernel.some((v, i) => v !== kernel[i]))) throw invalid(node, `kernel_shape [${declaredKernel.join(', ')}] differs from the weight's [${kernel.join(', ')}]`);
  if (b !== undefined && b.data.length !== m) throw invalid(node, `bias of ${b.data.length} values for ${m} output channels`);
  const strides = ints(node, 'strides', k, 1);
  const dil = ints(node, 'dilations', k, 1);
  const { begin, end } = padsOf(node, size, kernel, strides, dil);
  const out = size.map((s, i) => Math.floor((s + begin[i]! + end[i]! - dil[i]! * (kernel[i]! - 1) - 1) / strides[i]!) + 1);
  if (out.some((v) => v < 1)) throw invalid(node, `output size [${out.join(', ')}] is empty`);
  const outPos = positions(out);
  const kerPos = positions(kernel);
  const plane = sizeOf(size);
  const kplane = sizeOf(kernel);
  const res: E[] = new Array(n * m * outPos.length);
  const idx = new Array<number>(k);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < m; o++) {
      const g = Math.floor(o / (m / group));
      outPos.forEach((p, q) => {
        const terms: [E, number][] = [];
        for (let ch = 0; ch < cg; ch++) {
          const base = (i * c + g * cg + ch) * plane;
          kerPos.forEach((u, r) => {
            for (let a = 0; a < k; a++) idx[a] = p[a]! * strides[a]! - begin[a]! + u[a]! * dil[a]!;
            const off = offsetIn(idx, size);
            if (off >= 0) terms.push([x.data[base + off]!, w.data[(o * cg + ch) * kplane + r]!]);
          });
        }
        res[(i * m + o) * outPos.length + q] = A.lin(terms, b === undefined ? 0 : b.data[o]!);
      });
    }
  }
  return { dims: [n, m, ...out], data: res };
}

/**
 * ONNX AveragePool (opset 7/10/11/19) and GlobalAveragePool. Output size per axis:
 * ⌊(in + pads − K) / s⌋ + 1, or with ceil_mode the ceiling, less one when the last window would
 * start in the end padding. The divisor counts the window's cells inside the input, or with
 * count_include_pad also its cells in the padding (not those beyond it).
 *
 * @example
 * ```ts
 * const y = averagePool(node, x, PLAIN);
 * ```
 */
export function averagePool<E>(node: GraphNode, x: DynTensor<E>, A: Algebra<E>): DynTensor<E> {
  const { n, c, size } = spatialInput(node, x);
  const k = size.length;
  const global = node.op === 'GlobalAveragePool';
  const kernelAttr = node.attrs['kernel_shape'] as readonly number[] | undefined;
  if (!global && (kernelAttr === undefined || kernelAttr.length !== k)) throw invalid(node, `kernel_shape ${kernelAttr === undefined ? 'is missing' : `[${kernelAttr.join(', ')}] does not have ${k} axes`}`);
  const kernel = global ? size : [...kernelAttr!];
  const strides = global ? new Array<number>(k).fill(1) : ints(node, 'strides', k, 1);
  const dil = global ? new Array<number>(k).fill(1) : ints(node, 'dilations', k, 1);
  if (dil.some((d) => d !== 1)) throw unsupported(node, `dilations [${dil.join(', ')}] (only 1 is supported)`);
  const { begin, end } = global ? { begin: new Array<number>(k).fill(0), end: new Array<number>(k).fill(0) } : padsOf(node, size, kernel, strides, dil);
  const includePad = (node.attrs['count_include_pad'] as number | undefined) === 1;
  const ceil = (node.attrs['ceil_mode'] as number | undefined) === 1;
  const out = size.map((s, i) => {
    const span = s + begin[i]! + end[i]! - kernel[i]!;
    let o = (ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
    if (ceil && (o - 1) * strides[i]! >= s + begin[i]!) o--;
    return o;
  });
  if (out.some((v) => v < 1)) throw invalid(node, `output size [${out.join(', ')}] is empty`);
  const outPos = positions(out);
  const plane = sizeOf(size);
  const res: E[] = new Array(n * c * outPos.length);
  for (let ch = 0; ch < n * c; ch++) {
    outPos.forEach((p, q) => {
      // Per axis: the window [lo, hi) clipped to the padded extent, then to the input.
      let padded = 1;
      const lo: number[] = [];
      const hi: number[] = [];
      for (let a = 0; a < k; a++) {
        const start = p[a]! * strides[a]! - begin[a]!;
        const stop = Math.min(start + kernel[a]!, size[a]! + end[a]!);
        padded *= stop - start;
        lo.push(Math.max(0, start));
        hi.push(Math.min(stop, size[a]!));
      }
      const window = hi.map((h, a) => Math.max(0, h - lo[a]!));
      const cells: E[] = [];
      for (const r of positions(window)) cells.push(x.data[ch * plane + offsetIn(r.map((v, a) => v + lo[a]!), size)]!);
      const count = includePad ? padded : cells.length;
      if (count === 0) throw invalid(node, 'a pooling window holds no input cell');
      res[ch * outPos.length + q] = A.lin(cells.map((e) => [e, 1 / count] as const), 0);
    });
  }
  return { dims: [n, c, ...out], data: res };
}

function reflect(p: number, d: number): number {
  if (d === 1) return 0;
  const period = 2 * (d - 1);
  const m = ((p % period) + period) % period;
  return m < d ? m : period - m;
}

/**
 * ONNX Pad: pads as attribute (opset 2) or input (11+), `axes` input (18+), modes constant,
 * edge, reflect and wrap (19+). Negative pads crop.
 *
 * @example
 * ```ts
 * const y = pad(node, x, [0, 0, 1, 1, 0, 0, 1, 1], 0, undefined, PLAIN);
 * ```
 */
export function pad<E>(node: GraphNode, x: DynTensor<E>, padsIn: readonly number[], value: number, axesIn: readonly number[] | undefined, A: Algebra<E>): DynTensor<E> {
  const r = x.dims.length;
  const mode = (node.attrs['mode'] as string | undefined) ?? 'constant';
  if (mode !== 'constant' && mode !== 'edge' && mode !== 'reflect' && mode !== 'wrap') throw unsupported(node, `mode ${mode}`);
  const axes = (axesIn ?? Array.from({ length: r }, (_, i) => i)).map((a) => (a < 0 ? a + r : a));
  if (axes.some((a) => a < 0 || a >= r) || new Set(axes).size !== axes.length) throw invalid(node, `axes [${(axesIn ?? []).join(', ')}] for a rank-${r} input`);
  if (padsIn.length !== 2 * axes.length) throw invalid(node, `${padsIn.length} pads for ${axes.length} axes (needs 2 per axis)`);
  const begin = new Array<number>(r).fill(0);
  const end = new Array<number>(r).fill(0);
  axes.forEach((a, i) => {
    begin[a] = padsIn[i]!;
    end[a] = padsIn[i + axes.length]!;
  });
  const dims = x.dims.map((d, i) => d + begin[i]! + end[i]!);
  if (dims.some((d) => d < 0)) throw invalid(node, `pads [${padsIn.join(', ')}] crop below zero`);
  if (mode !== 'constant' && x.dims.some((d, i) => d === 0 && dims[i]! > 0)) throw invalid(node, `mode ${mode} on an empty axis`);
  // A reflect pad as wide as its axis has no single reflection (onnxruntime refuses it too).
  if (mode === 'reflect' && x.dims.some((d, i) => d > 1 && (begin[i]! >= d || end[i]! >= d))) throw unsupported(node, `reflect pads [${padsIn.join(', ')}] as wide as the axis`);
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
      let p = idx[i]! - begin[i]!;
      const d = x.dims[i]!;
      if (p < 0 || p >= d) {
        if (mode === 'constant') inside = false;
        else if (mode === 'edge') p = Math.min(d - 1, Math.max(0, p));
        else if (mode === 'wrap') p = ((p % d) + d) % d;
        else p = reflect(p, d);
      }
      src = src * d + p;
    }
    out[o] = inside ? x.data[src]! : constant;
  }
  return { dims, data: out };
}
