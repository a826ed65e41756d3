import { fromBinary, ScalarType } from '@bufbuild/protobuf';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { CipherMLError } from './errors.ts';

/**
 * Protobuf decoding bounded by the bytes present, not by what they expand to. A protobuf message
 * can expand far beyond its size when decoded into JS objects: a 2-byte empty sub-message becomes
 * an object with every field set (hundreds of bytes), a 1-byte varint in a packed int64 field a
 * BigInt. {@link protoDecodedCost} walks the wire format once against the message descriptor
 * (Protocol Buffers encoding spec: tags, wire types, packed repeated fields), allocating nothing
 * proportional to the input, and prices every message and element it would create;
 * {@link fromBinaryBounded} refuses before `fromBinary` runs when that price is above the limit.
 */

/** Limits of {@link fromBinaryBounded}. */
export interface ProtoLimits {
  /** Largest accepted message in bytes. */
  readonly maxBytes: number;
  /** Largest accepted decoded size as estimated by {@link protoDecodedCost}, in bytes. */
  readonly maxDecodedBytes: number;
  /** Deepest accepted nesting of messages (protobuf-es's default is 100). */
  readonly recursionLimit: number;
}

// Upper estimates of V8's heap cost (64-bit, no pointer compression): an object with one slot
// per field, an array per repeated field, a number slot, a BigInt, a Uint8Array view, a string.
const MESSAGE_BASE = 64;
const PER_FIELD = 16;
const PER_LIST = 32;
const NUMBER_SLOT = 8;
const BIGINT = 40;
const VIEW = 96;
const STRING = 32;

const LONG = new Set<ScalarType>([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

function scalarCost(t: ScalarType, len: number): number {
  if (t === ScalarType.STRING) return STRING + 2 * len;
  if (t === ScalarType.BYTES) return VIEW;
  return LONG.has(t) ? BIGINT : NUMBER_SLOT;
}

function messageCost(desc: DescMessage): number {
  let c = MESSAGE_BASE + PER_FIELD * desc.fields.length;
  for (const f of desc.fields) if (f.fieldKind === 'list' || f.fieldKind === 'map') c += PER_LIST;
  return c;
}

/** Varints in a packed field: one per byte with the high bit clear. */
function countVarints(b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) if ((b[i]! & 0x80) === 0) n++;
  return n;
}

/**
 * Estimated heap bytes `fromBinary(desc, bytes)` would allocate, from one pass over the wire
 * format; throws (a plain `Error`, as `fromBinary` would) on malformed input or nesting deeper
 * than `recursionLimit`. Stops early once the estimate passes `stopAbove`.
 *
 * @example
 * ```ts
 * protoDecodedCost(ModelProtoSchema, bytes, 32, 1 << 30); // ≈ bytes.length for a real model
 * ```
 */
export function protoDecodedCost(desc: DescMessage, bytes: Uint8Array, recursionLimit: number, stopAbove: number = Number.POSITIVE_INFINITY): number {
  let total = 0;
  const walk = (d: DescMessage, b: Uint8Array, depth: number): void => {
    if (depth > recursionLimit) throw new Error(`maximum recursion depth of ${recursionLimit} reached`);
    total += messageCost(d);
    const r = new BinaryReader(b);
    while (r.pos < r.len && total <= stopAbove) {
      const [no, wt] = r.tag();
      const f = d.fields.find((x) => x.number === no);
      if (f === undefined || wt !== WireType.LengthDelimited) {
        r.skip(wt, no, recursionLimit - depth);
        if (f !== undefined && f.fieldKind === 'list' && f.listKind !== 'message') total += f.listKind === 'scalar' ? scalarCost(f.scalar, 0) : NUMBER_SLOT;
        continue;
      }
      const sub = r.bytes();
      if (f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message')) walk(f.message, sub, depth + 1);
      else if (f.fieldKind === 'map') total += MESSAGE_BASE + sub.length * 2;
      else if (f.fieldKind === 'list' && f.listKind === 'scalar' && f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BYTES) {
        const width = f.scalar === ScalarType.DOUBLE || f.scalar === ScalarType.FIXED64 || f.scalar === ScalarType.SFIXED64 ? 8 : f.scalar === ScalarType.FLOAT || f.scalar === ScalarType.FIXED32 || f.scalar === ScalarType.SFIXED32 ? 4 : 0;
        total += (width === 0 ? countVarints(sub) : Math.floor(sub.length / width)) * scalarCost(f.scalar, 0);
      } else if (f.fieldKind === 'list' && f.listKind === 'enum') total += countVarints(sub) * NUMBER_SLOT;
      else total += scalarCost(f.fieldKind === 'scalar' || (f.fieldKind === 'list' && f.listKind === 'scalar') ? f.scalar : ScalarType.BYTES, sub.length);
    }
  };
  walk(desc, bytes, 1);
  return total;
}

/**
 * `fromBinary` after checking the size, the nesting depth and the estimated decoded size
 * ({@link protoDecodedCost}) against `limits`: a hostile message is refused with a typed error
 * (`CIPHERML_E_INPUT_TOO_LARGE` naming `param`, or `errorCode` for malformed bytes) before any
 * allocation beyond one pass over it. Unknown fields are dropped, not kept.
 *
 * @example
 * ```ts
 * const model = fromBinaryBounded(ModelProtoSchema, bytes, { maxBytes: 64 << 20, maxDecodedBytes: 256 << 20, recursionLimit: 32 }, '--onnx-path', 'CIPHERML_E_ONNX_INVALID');
 * ```
 */
export function fromBinaryBounded<D extends DescMessage>(
  desc: D,
  bytes: Uint8Array,
  limits: ProtoLimits,
  param: string,
  errorCode: 'CIPHERML_E_ONNX_INVALID' | 'CIPHERML_E_FORMAT_CORRUPT' = 'CIPHERML_E_FORMAT_CORRUPT',
): MessageShape<D> {
  if (bytes.length > limits.maxBytes) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `${bytes.length} bytes exceed the limit of ${limits.maxBytes} for a ${desc.name}`, {
      param,
      details: { limit: limits.maxBytes, actual: bytes.length },
      advice: `Give a smaller ${desc.name} as ${param}, or raise the limit (maxBytes) if the file is genuine.`,
    });
  }
  let cost: number;
  try {
    cost = protoDecodedCost(desc, bytes, limits.recursionLimit, limits.maxDecodedBytes);
  } catch (e) {
    throw new CipherMLError(errorCode, `not a ${desc.name}: ${(e as Error).message}`, { param, cause: e });
  }
  if (cost > limits.maxDecodedBytes) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `${bytes.length} bytes of ${desc.name} would decode into more than ${limits.maxDecodedBytes} bytes of objects (empty sub-messages or packed integers in bulk)`, {
      param,
      details: { limit: limits.maxDecodedBytes, bytes: bytes.length },
      advice: `${param} is not a ${desc.name} a real exporter writes (tensors travel as raw_data); re-export it.`,
    });
  }
  try {
    return fromBinary(desc, bytes, { readUnknownFields: false, recursionLimit: limits.recursionLimit } as Parameters<typeof fromBinary>[2]);
  } catch (e) {
    throw new CipherMLError(errorCode, `not a ${desc.name}: ${(e as Error).message}`, { param, cause: e });
  }
}
