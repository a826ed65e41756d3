import { createHmac, timingSafeEqual } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { CipherMLError, ERROR_CATALOG, type ErrorCode } from '../core/errors.ts';
import { TensorSchema, TensorSpecSchema, type Tensor, type TensorSpec } from './gen/cipherml/fl/v1/fl_pb.ts';

/**
 * Protocol helpers shared by server, workers and the key authority: version, tokens, tensors on
 * the wire, and typed errors across the RPC boundary.
 */

/**
 * Wire protocol version (proto/cipherml/fl/v1). A peer with another version is refused.
 * 2: one signed-contribution format (SignedContribution; FitResult field 30 reserved) and the
 * SecAgg+ neighbourhood views (SecAggRoster root/proof, survivor commitment).
 */
export const PROTOCOL_VERSION = 2;

/** A model as the runtime sees it: named float64 tensors. */
export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float64Array;
}

/** Number of values of a shape (1 for a scalar shape []). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Total number of values of a model described by its specs. */
export function parameterCount(specs: readonly Pick<TensorSpec, 'shape'>[]): number {
  return specs.reduce((s, t) => s + shapeSize(t.shape), 0);
}

/** Specs of a model, for the join handshake and encrypted payloads. */
export function specsOf(tensors: readonly NamedTensor[]): TensorSpec[] {
  return tensors.map((t) => create(TensorSpecSchema, { name: t.name, shape: [...t.shape] }));
}

/** Largest number of tensors and dimensions per tensor a declared model may have. */
export const MAX_TENSORS = 4096;
export const MAX_RANK = 8;

/**
 * Checks a model shape declared by a peer before anything is allocated for it: at most
 * {@link MAX_TENSORS} tensors of rank ≤ {@link MAX_RANK}, names of 1–256 characters, every
 * dimension a positive integer, and the whole model no larger than one message may carry as
 * float64 (`maxMessageBytes`), since every round moves it in one message. The product is checked
 * as it grows, so [4294967295] or [300000000] is refused without overflow or allocation.
 *
 * @example
 * ```ts
 * checkDeclaredSpecs([{ name: 'w', shape: [300000000] }], 64 << 20, 'model'); // throws INPUT_TOO_LARGE
 * ```
 */
export function checkDeclaredSpecs(specs: readonly Pick<TensorSpec, 'name' | 'shape'>[], maxMessageBytes: number, param: string): void {
  if (specs.length === 0 || specs.length > MAX_TENSORS) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a model has 1–${MAX_TENSORS} tensors, got ${specs.length}`, { param });
  }
  const maxValues = Math.floor(maxMessageBytes / 8);
  let total = 0;
  specs.forEach((s, k) => {
    if (s.name.length === 0 || s.name.length > 256) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `tensor ${k} needs a name of 1–256 characters`, { param });
    if (s.shape.length > MAX_RANK) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `tensor ${s.name} has rank ${s.shape.length}; at most ${MAX_RANK}`, { param });
    let n = 1;
    for (const d of s.shape) {
      if (!Number.isInteger(d) || d < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `tensor ${s.name} has dimension ${d}; dimensions are positive integers`, { param });
      n *= d;
      if (total + n > maxValues) {
        throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the declared model [${s.shape.join('×')}] needs more than ${maxValues} float64 values, more than max-message-bytes (${maxMessageBytes}) can carry`, {
          param,
          details: { maxValues, maxMessageBytes },
        });
      }
    }
    total += n;
  });
}

/** Throws MODEL_MISMATCH unless two spec lists describe the same model. */
export function assertSameSpecs(expected: readonly TensorSpec[], actual: readonly TensorSpec[], param: string): void {
  const fmt = (s: readonly TensorSpec[]) => s.map((t) => `${t.name}[${t.shape.join('×')}]`).join(', ');
  const same = expected.length === actual.length && expected.every((e, i) => e.name === actual[i]!.name && e.shape.length === actual[i]!.shape.length && e.shape.every((d, j) => d === actual[i]!.shape[j]));
  if (!same) {
    throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `expected model ${fmt(expected)}, got ${fmt(actual)}`, { param, details: { expected: fmt(expected), actual: fmt(actual) } });
  }
}

/** Tensors → wire (float64 little-endian). */
export function tensorsToWire(tensors: readonly NamedTensor[]): Tensor[] {
  return tensors.map((t) => create(TensorSchema, { spec: { name: t.name, shape: [...t.shape] }, data: f64ToLe(t.values) }));
}

/** Wire → tensors; checks each byte length against its shape and rejects non-finite values. */
export function tensorsFromWire(tensors: readonly Tensor[], param: string): NamedTensor[] {
  return tensors.map((t, k) => {
    const shape = t.spec?.shape ?? [];
    const n = shapeSize(shape);
    if (t.data.length !== n * 8) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `tensor ${k} (${t.spec?.name ?? '?'}) has ${t.data.length} bytes, shape [${shape.join(', ')}] needs ${n * 8}`, { param });
    }
    const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = view.getFloat64(i * 8, true);
      if (!Number.isFinite(v)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', `tensor ${k} value ${i} is ${v}`, { param });
      values[i] = v;
    }
    return { name: t.spec?.name ?? `t${k}`, shape: [...shape], values };
  });
}

/** float64 values → little-endian bytes. */
export function f64ToLe(values: Float64Array): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, true));
  return out;
}

/** Little-endian bytes → float64 values (length must be a multiple of 8). */
export function leToF64(bytes: Uint8Array, param: string): Float64Array {
  if (bytes.length % 8 !== 0) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${bytes.length} bytes is not a whole number of float64 values`, { param });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float64Array.from({ length: bytes.length / 8 }, (_, i) => view.getFloat64(i * 8, true));
}

/** All tensors flattened into one vector (the order of the spec list). */
export function flatten(tensors: readonly NamedTensor[]): Float64Array {
  const out = new Float64Array(tensors.reduce((s, t) => s + t.values.length, 0));
  let o = 0;
  for (const t of tensors) {
    out.set(t.values, o);
    o += t.values.length;
  }
  return out;
}

/** A flat vector split back into tensors of the given specs. */
export function unflatten(flat: Float64Array, specs: readonly TensorSpec[], param: string): NamedTensor[] {
  const total = parameterCount(specs);
  if (total !== flat.length) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${flat.length} values do not fill the model's ${total}`, { param });
  }
  let o = 0;
  return specs.map((s) => {
    const n = shapeSize(s.shape);
    const values = flat.slice(o, o + n);
    o += n;
    return { name: s.name, shape: [...s.shape], values };
  });
}

/**
 * A party's token derived from the run secret: base64url(HMAC-SHA256(secret, "cipherml/fl/v1/" ‖
 * partyId)). Each worker gets its own token; a leaked token neither reveals the secret nor lets
 * its holder join under another id. The server and the authority recompute and compare.
 *
 * @example
 * ```ts
 * const token = deriveToken(secret, 'worker-1'); // give to worker 1 only
 * ```
 */
export function deriveToken(secret: string, partyId: string): string {
  return createHmac('sha256', secret).update(`cipherml/fl/v1/${partyId}`).digest('base64url');
}

/** Throws UNAUTHENTICATED unless `token` is the one derived for `partyId` (no check when `secret` is empty). */
export function checkToken(secret: string, partyId: string, token: string): void {
  if (secret === '') return;
  const want = Buffer.from(deriveToken(secret, partyId));
  const got = Buffer.from(token);
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    const raw = Buffer.from(secret);
    if (got.length === raw.length && timingSafeEqual(got, raw)) {
      throw new CipherMLError('CIPHERML_E_UNAUTHENTICATED', `"${partyId}" sent the run secret itself instead of its own token`, {
        param: '--token',
        advice: `Give "${partyId}" the token printed by \`cipherml token --secret <secret> --id ${partyId}\` (a party holding the secret could impersonate every other party).`,
      });
    }
    throw new CipherMLError('CIPHERML_E_UNAUTHENTICATED', `the token sent for "${partyId}" was not derived from this server's run secret for that id`, {
      param: '--token',
      advice: `Give "${partyId}" the token \`cipherml token --secret <the server's secret> --id ${partyId}\` prints, for exactly this id; a token for another id or another secret is refused.`,
    });
  }
}

/** Throws PROTOCOL unless the peer speaks this version. */
export function checkProtocolVersion(version: number): void {
  if (version !== PROTOCOL_VERSION) {
    throw new CipherMLError('CIPHERML_E_PROTOCOL', `peer speaks protocol version ${version}, this side ${PROTOCOL_VERSION}`, { param: 'protocolVersion' });
  }
}

const RPC_CODE: Partial<Record<ErrorCode, Code>> = {
  CIPHERML_E_UNAUTHENTICATED: Code.Unauthenticated,
  CIPHERML_E_FORBIDDEN: Code.PermissionDenied,
  CIPHERML_E_DUPLICATE_WORKER: Code.AlreadyExists,
  CIPHERML_E_ROUND_CLOSED: Code.FailedPrecondition,
  CIPHERML_E_PROTOCOL: Code.FailedPrecondition,
  CIPHERML_E_MESSAGE_TOO_LARGE: Code.ResourceExhausted,
  CIPHERML_E_PEER_UNAVAILABLE: Code.Unavailable,
};

/** A cipherml error as an RPC error (the code leads the message so the peer can revive it). */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof CipherMLError) return new ConnectError(e.message, RPC_CODE[e.code] ?? Code.InvalidArgument);
  return new ConnectError(e instanceof Error ? e.message : String(e), Code.Internal);
}

/** An RPC failure as a typed cipherml error (unreachable peers become PEER_UNAVAILABLE). */
export function fromRpcError(e: unknown, peer: string): CipherMLError {
  if (e instanceof CipherMLError) return e;
  const err = ConnectError.from(e);
  const m = /^(CIPHERML_E_[A-Z_]+): /.exec(err.rawMessage);
  if (m !== null && m[1]! in ERROR_CATALOG) return CipherMLError.revive({ code: m[1]!, message: err.rawMessage });
  if (err.code === Code.ResourceExhausted) {
    return new CipherMLError('CIPHERML_E_MESSAGE_TOO_LARGE', `${peer}: ${err.rawMessage}`, { param: 'maxMessageBytes', cause: e });
  }
  return new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `${peer}: ${err.rawMessage} (${Code[err.code]})`, { param: 'address', cause: e });
}
