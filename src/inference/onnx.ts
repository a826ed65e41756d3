import onnxPkg from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';
import { CipherMLError } from '../core/errors.ts';

/**
 * ONNX ModelProto ⇄ cipherml's graph IR (ONNX IR spec, onnx/onnx docs/IR.md). Only what the
 * supported operators use is kept: float tensors (FLOAT, DOUBLE, INT64 for shapes), the node
 * list in topological order, attributes, initializers, graph inputs and outputs.
 */

const { onnx } = onnxPkg as unknown as { onnx: typeof O };

/** A dense row-major tensor. */
export interface Tensor {
  readonly dims: readonly number[];
  readonly data: Float64Array;
  /** Element type on disk; default float (float32). Shapes and pads are int64. */
  readonly type?: 'float' | 'int64';
}

/** An attribute value. */
export type AttributeValue = number | readonly number[] | string | Tensor;

/** One operator application. */
export interface GraphNode {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttributeValue>>;
}

/** A model graph. Input dims are null where the model leaves them symbolic (the batch). */
export interface Graph {
  readonly opset: number;
  readonly inputs: readonly { readonly name: string; readonly dims: readonly (number | null)[] }[];
  readonly outputs: readonly string[];
  readonly initializers: ReadonlyMap<string, Tensor>;
  readonly nodes: readonly GraphNode[];
  /**
   * Shapes the file declares for intermediate values and graph outputs (ONNX value_info and
   * graph.output, as written by the exporter's shape inference); null for a symbolic dimension.
   * The executor checks every tensor it computes against these.
   */
  readonly declared?: ReadonlyMap<string, Declared>;
}

/** A declared value shape and its TensorProto.DataType (1 float, 7 int64, …). */
export interface Declared {
  readonly dims: readonly (number | null)[];
  readonly elemType: number;
}

const DT = { FLOAT: 1, INT64: 7, DOUBLE: 11, INT32: 6 } as const;
const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

/** Element count of dims. */
export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * Parses ONNX bytes into the IR.
 *
 * @example
 * ```ts
 * const graph = parseOnnx(await readFile('model.onnx'));
 * ```
 */
export function parseOnnx(bytes: Uint8Array, param = 'model'): Graph {
  let model: O.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `not an ONNX model: ${(e as Error).message}`, { param, cause: e });
  }
  const g = model.graph;
  if (g === null || g === undefined || (g.node ?? []).length === 0) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no graph nodes', { param });
  const opset = Math.max(0, ...(model.opsetImport ?? []).filter((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx').map((o) => num(o.version)));
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', tensorFrom(t, param));
  const dimsOf = (i: O.IValueInfoProto): (number | null)[] => (i.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== null && d.dimValue !== undefined && num(d.dimValue) > 0 ? num(d.dimValue) : null));
  const inputs = (g.input ?? []).filter((i) => !initializers.has(i.name ?? '')).map((i) => ({ name: i.name ?? '', dims: dimsOf(i) }));
  const declared = new Map<string, Declared>();
  for (const v of [...(g.valueInfo ?? []), ...(g.output ?? [])]) {
    // A value without a shape field declares nothing (rank unknown).
    if (v.type?.tensorType?.shape !== null && v.type?.tensorType?.shape !== undefined) declared.set(v.name ?? '', { dims: dimsOf(v), elemType: v.type.tensorType.elemType ?? DT.FLOAT });
  }
  const nodes: GraphNode[] = (g.node ?? []).map((n, i) => {
    const attrs: Record<string, AttributeValue> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ''] = attrFrom(a, param);
    return { op: n.opType ?? '', name: n.name !== null && n.name !== undefined && n.name !== '' ? n.name : `${n.opType}_${i}`, inputs: n.input ?? [], outputs: n.output ?? [], attrs };
  });
  return { opset, inputs, outputs: (g.output ?? []).map((o) => o.name ?? ''), initializers, nodes, declared };
}

/**
 * Serializes the IR as an ONNX ModelProto (float32 tensors, IR version 8).
 *
 * @example
 * ```ts
 * await writeFile('model_calibrated.onnx', serializeOnnx(graph));
 * ```
 */
export function serializeOnnx(graph: Graph): Uint8Array {
  const vi = (name: string, dims: readonly (number | null)[] | undefined, elemType: number = DT.FLOAT): O.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: { dim: (dims ?? []).map((d) => (d === null ? { dimParam: 'N' } : { dimValue: d })) } } },
  });
  const declared = graph.declared ?? new Map<string, Declared>();
  const model: O.IModelProto = {
    irVersion: 8,
    producerName: 'cipherml',
    opsetImport: [{ domain: '', version: graph.opset }],
    graph: {
      name: 'cipherml',
      input: graph.inputs.map((i) => vi(i.name, i.dims)),
      valueInfo: [...declared].filter(([name]) => !graph.outputs.includes(name) && graph.nodes.some((n) => n.outputs.includes(name))).map(([name, d]) => vi(name, d.dims, d.elemType)),
      output: graph.outputs.map((o) => {
        const d = declared.get(o);
        return d !== undefined ? vi(o, d.dims, d.elemType) : { name: o, type: { tensorType: { elemType: DT.FLOAT } } };
      }),
      initializer: [...graph.initializers].map(([name, t]) => tensorTo(name, t)),
      node: graph.nodes.map((n) => ({
        opType: n.op,
        name: n.name,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs).map(([name, v]) => attrTo(name, v)),
      })),
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

function num(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function tensorFrom(t: O.ITensorProto, param: string): Tensor {
  const dims = (t.dims ?? []).map(num);
  const n = sizeOf(dims);
  const raw = t.rawData;
  let data: Float64Array;
  const type = t.dataType ?? 0;
  if (raw !== null && raw !== undefined && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    data = new Float64Array(n);
    const width = type === DT.FLOAT || type === DT.INT32 ? 4 : 8;
    if (raw.length !== n * width) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} holds ${raw.length} bytes for ${n} elements`, { param });
    for (let i = 0; i < n; i++) {
      if (type === DT.FLOAT) data[i] = view.getFloat32(4 * i, true);
      else if (type === DT.DOUBLE) data[i] = view.getFloat64(8 * i, true);
      else if (type === DT.INT64) data[i] = Number(view.getBigInt64(8 * i, true));
      else if (type === DT.INT32) data[i] = view.getInt32(4 * i, true);
      else throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} has unsupported data type ${type}`, { param });
    }
  } else if (type === DT.FLOAT) data = Float64Array.from(t.floatData ?? []);
  else if (type === DT.DOUBLE) data = Float64Array.from(t.doubleData ?? []);
  else if (type === DT.INT64) data = Float64Array.from((t.int64Data ?? []).map(num));
  else if (type === DT.INT32) data = Float64Array.from(t.int32Data ?? []);
  else throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} has unsupported data type ${type}`, { param });
  if (data.length !== n) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} holds ${data.length} values for dims [${dims.join(', ')}]`, { param });
  return type === DT.INT64 || type === DT.INT32 ? { dims, data, type: 'int64' } : { dims, data };
}

function tensorTo(name: string, t: Tensor): O.ITensorProto {
  if (t.type === 'int64') {
    const raw = new Uint8Array(8 * t.data.length);
    const view = new DataView(raw.buffer);
    t.data.forEach((v, i) => view.setBigInt64(8 * i, BigInt(Math.round(v)), true));
    return { name, dims: [...t.dims], dataType: DT.INT64, rawData: raw };
  }
  const raw = new Uint8Array(4 * t.data.length);
  const view = new DataView(raw.buffer);
  t.data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return { name, dims: [...t.dims], dataType: DT.FLOAT, rawData: raw };
}

function attrFrom(a: O.IAttributeProto, param: string): AttributeValue {
  switch (a.type) {
    case AT.FLOAT:
      return a.f ?? 0;
    case AT.INT:
      return num(a.i);
    case AT.STRING:
      return Buffer.from(a.s ?? new Uint8Array(0)).toString('utf8');
    case AT.TENSOR:
      return tensorFrom(a.t ?? {}, param);
    case AT.FLOATS:
      return a.floats ?? [];
    case AT.INTS:
      return (a.ints ?? []).map(num);
    default:
      return '';
  }
}

/** Attributes the ONNX operator specs type FLOAT / FLOATS whatever the value (an integer-valued float is still a float). */
const FLOAT_ATTRS = /^(alpha|beta|gamma|epsilon|momentum|value|ratio|value_float|bias|lambd|spatial_scale)$/;
const FLOATS_ATTRS = /^(value_floats|scales)$/;

function attrTo(name: string, v: AttributeValue): O.IAttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) && !FLOAT_ATTRS.test(name) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AT.STRING, s: Buffer.from(v, 'utf8') };
  if (Array.isArray(v)) return FLOATS_ATTRS.test(name) ? { name, type: AT.FLOATS, floats: [...(v as number[])] } : { name, type: AT.INTS, ints: [...(v as number[])] };
  return { name, type: AT.TENSOR, t: tensorTo('', v as Tensor) };
}
