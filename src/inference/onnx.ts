import { create, toBinary } from '@bufbuild/protobuf';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { readFileBounded } from '../core/bounded-file.ts';
import { fromBinaryBounded } from '../core/bounded-proto.ts';
import type { ProtoLimits } from '../core/bounded-proto.ts';
import { CipherMLError } from '../core/errors.ts';
import { ModelProtoSchema } from './gen/onnx/onnx_pb.ts';
import type { AttributeProto, AttributeProtoSchema, TensorProto, TensorProtoSchema, ValueInfoProto, ValueInfoProtoSchema } from './gen/onnx/onnx_pb.ts';

/**
 * ONNX ModelProto ⇄ cipherml's graph IR (ONNX IR spec, onnx/onnx docs/IR.md). Only what the
 * supported operators use is kept: float tensors (FLOAT, DOUBLE, INT64 for shapes), the node
 * list in topological order, attributes, initializers, graph inputs and outputs. The ModelProto
 * types are generated from the vendored proto/onnx/onnx.proto (ONNX 1.12, IR 8) by protoc-gen-es.
 *
 * Bounded (issue 13): the file size is checked first, then the decoded size is estimated from the
 * wire format before any message object exists (core/bounded-proto.ts), and every tensor's
 * declared element count is checked against the bytes it carries before its array is allocated.
 */

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

/** Default ONNX limits: 256 MiB files, decoded objects at most 4 × the file + 16 MiB, 32 levels. */
export const DEFAULT_ONNX_LIMITS: ProtoLimits = { maxBytes: 256 << 20, maxDecodedBytes: 4 * (256 << 20) + (16 << 20), recursionLimit: 32 };

/** Limits for `bytes`: the decoded-size budget follows the file actually given, not the largest allowed. */
function limitsFor(bytes: Uint8Array, limits: Partial<ProtoLimits>): ProtoLimits {
  const maxBytes = limits.maxBytes ?? DEFAULT_ONNX_LIMITS.maxBytes;
  return { maxBytes, maxDecodedBytes: limits.maxDecodedBytes ?? 4 * Math.min(bytes.length, maxBytes) + (16 << 20), recursionLimit: limits.recursionLimit ?? DEFAULT_ONNX_LIMITS.recursionLimit };
}

/**
 * Parses ONNX bytes into the IR, refusing with `CIPHERML_E_INPUT_TOO_LARGE` (naming `param`) a
 * file above `limits.maxBytes` or one whose messages would decode into more than 4 × its size,
 * and with `CIPHERML_E_ONNX_INVALID` a tensor whose dims claim more elements than it holds.
 *
 * @example
 * ```ts
 * const graph = parseOnnx(await readFile('model.onnx'));
 * ```
 */
export function parseOnnx(bytes: Uint8Array, param = 'model', limits: Partial<ProtoLimits> = {}): Graph {
  const model = fromBinaryBounded(ModelProtoSchema, bytes, limitsFor(bytes, limits), param, 'CIPHERML_E_ONNX_INVALID');
  const g = model.graph;
  if (g === undefined || g.node.length === 0) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', 'the model has no graph nodes', { param });
  // A reduce, not Math.max(...): a file may list more opset imports than a call takes arguments.
  const opset = model.opsetImport.reduce((m, o) => (o.domain === '' || o.domain === 'ai.onnx' ? Math.max(m, num(o.version)) : m), 0);
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer) initializers.set(t.name, tensorFrom(t, param));
  const dimsOf = (i: ValueInfoProto): (number | null)[] =>
    (i.type?.value.case === 'tensorType' ? (i.type.value.value.shape?.dim ?? []) : []).map((d) => (d.value.case === 'dimValue' && num(d.value.value) > 0 ? num(d.value.value) : null));
  const inputs = g.input.filter((i) => !initializers.has(i.name)).map((i) => ({ name: i.name, dims: dimsOf(i) }));
  const declared = new Map<string, Declared>();
  for (const v of [...g.valueInfo, ...g.output]) {
    // A value without a shape field declares nothing (rank unknown).
    const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
    if (tt?.shape !== undefined) declared.set(v.name, { dims: dimsOf(v), elemType: tt.elemType ?? DT.FLOAT });
  }
  const nodes: GraphNode[] = g.node.map((n, i) => {
    const attrs: Record<string, AttributeValue> = {};
    for (const a of n.attribute) if (a.name !== '__proto__') attrs[a.name] = attrFrom(a, param);
    return { op: n.opType, name: n.name !== '' ? n.name : `${n.opType}_${i}`, inputs: n.input, outputs: n.output, attrs };
  });
  return { opset, inputs, outputs: g.output.map((o) => o.name), initializers, nodes, declared };
}

/**
 * Reads and parses an ONNX file, refusing a file above `limits.maxBytes` from its size before
 * reading it (then as {@link parseOnnx}). Errors name `param`, the flag the user gave.
 *
 * @example
 * ```ts
 * const graph = await readOnnxFile('model.onnx', '--onnx-path');
 * ```
 */
export async function readOnnxFile(path: string, param = 'model', limits: Partial<ProtoLimits> = {}): Promise<Graph> {
  return parseOnnx(await readFileBounded(path, param, limits.maxBytes ?? DEFAULT_ONNX_LIMITS.maxBytes), param, limits);
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
  const vi = (name: string, dims: readonly (number | null)[] | undefined, elemType: number = DT.FLOAT): MessageInitShape<typeof ValueInfoProtoSchema> => ({
    name,
    type: {
      value: {
        case: 'tensorType',
        value: { elemType, shape: { dim: (dims ?? []).map((d) => (d === null ? { value: { case: 'dimParam' as const, value: 'N' } } : { value: { case: 'dimValue' as const, value: BigInt(d) } })) } },
      },
    },
  });
  const declared = graph.declared ?? new Map<string, Declared>();
  const model: MessageInitShape<typeof ModelProtoSchema> = {
    irVersion: 8n,
    producerName: 'cipherml',
    opsetImport: [{ domain: '', version: BigInt(graph.opset) }],
    graph: {
      name: 'cipherml',
      input: graph.inputs.map((i) => vi(i.name, i.dims)),
      valueInfo: [...declared].filter(([name]) => !graph.outputs.includes(name) && graph.nodes.some((n) => n.outputs.includes(name))).map(([name, d]) => vi(name, d.dims, d.elemType)),
      output: graph.outputs.map((o) => {
        const d = declared.get(o);
        return d !== undefined ? vi(o, d.dims, d.elemType) : { name: o, type: { value: { case: 'tensorType', value: { elemType: DT.FLOAT } } } };
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
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, model));
}

function num(v: number | bigint | undefined): number {
  return v === undefined ? 0 : Number(v);
}

/** Element count of a tensor's declared dims, refused when a dim is negative or the product unsafe. */
function declaredCount(t: TensorProto, dims: readonly number[], param: string): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} declares dimension ${d}`, { param, details: { tensor: t.name } });
    n *= d;
    if (!Number.isSafeInteger(n)) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} declares dims [${dims.join(', ')}], more elements than any file holds`, { param, details: { tensor: t.name } });
  }
  return n;
}

function tensorFrom(t: TensorProto, param: string): Tensor {
  const dims = t.dims.map(num);
  const n = declaredCount(t, dims, param);
  const raw = t.rawData;
  let data: Float64Array;
  const type = t.dataType;
  if (raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const width = type === DT.FLOAT || type === DT.INT32 ? 4 : 8;
    // Checked before the array exists: the element count comes from the bytes present.
    if (raw.length !== n * width) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} holds ${raw.length} bytes for ${n} elements`, { param });
    data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (type === DT.FLOAT) data[i] = view.getFloat32(4 * i, true);
      else if (type === DT.DOUBLE) data[i] = view.getFloat64(8 * i, true);
      else if (type === DT.INT64) data[i] = Number(view.getBigInt64(8 * i, true));
      else if (type === DT.INT32) data[i] = view.getInt32(4 * i, true);
      else throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} has unsupported data type ${type}`, { param });
    }
  } else if (type === DT.FLOAT) data = Float64Array.from(t.floatData);
  else if (type === DT.DOUBLE) data = Float64Array.from(t.doubleData);
  else if (type === DT.INT64) data = Float64Array.from(t.int64Data, num);
  else if (type === DT.INT32) data = Float64Array.from(t.int32Data);
  else throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} has unsupported data type ${type}`, { param });
  if (data.length !== n) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `tensor ${t.name} holds ${data.length} values for dims [${dims.join(', ')}]`, { param });
  return type === DT.INT64 || type === DT.INT32 ? { dims, data, type: 'int64' } : { dims, data };
}

function tensorTo(name: string, t: Tensor): MessageInitShape<typeof TensorProtoSchema> {
  if (t.type === 'int64') {
    const raw = new Uint8Array(8 * t.data.length);
    const view = new DataView(raw.buffer);
    t.data.forEach((v, i) => view.setBigInt64(8 * i, BigInt(Math.round(v)), true));
    return { name, dims: t.dims.map(BigInt), dataType: DT.INT64, rawData: raw };
  }
  const raw = new Uint8Array(4 * t.data.length);
  const view = new DataView(raw.buffer);
  t.data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return { name, dims: t.dims.map(BigInt), dataType: DT.FLOAT, rawData: raw };
}

function attrFrom(a: AttributeProto, param: string): AttributeValue {
  switch (a.type) {
    case AT.FLOAT:
      return a.f;
    case AT.INT:
      return num(a.i);
    case AT.STRING:
      return Buffer.from(a.s).toString('utf8');
    case AT.TENSOR:
      if (a.t === undefined) throw new CipherMLError('CIPHERML_E_ONNX_INVALID', `attribute ${a.name} is typed TENSOR but holds none`, { param });
      return tensorFrom(a.t, param);
    case AT.FLOATS:
      return a.floats;
    case AT.INTS:
      return a.ints.map(num);
    default:
      return '';
  }
}

/** Attributes the ONNX operator specs type FLOAT / FLOATS whatever the value (an integer-valued float is still a float). */
const FLOAT_ATTRS = /^(alpha|beta|gamma|epsilon|momentum|value|ratio|value_float|bias|lambd|spatial_scale)$/;
const FLOATS_ATTRS = /^(value_floats|scales)$/;

function attrTo(name: string, v: AttributeValue): MessageInitShape<typeof AttributeProtoSchema> {
  if (typeof v === 'number') return Number.isInteger(v) && !FLOAT_ATTRS.test(name) ? { name, type: AT.INT, i: BigInt(v) } : { name, type: AT.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AT.STRING, s: Buffer.from(v, 'utf8') };
  if (Array.isArray(v)) return FLOATS_ATTRS.test(name) ? { name, type: AT.FLOATS, floats: [...(v as number[])] } : { name, type: AT.INTS, ints: (v as number[]).map((x) => BigInt(x)) };
  return { name, type: AT.TENSOR, t: tensorTo('', v as Tensor) };
}
