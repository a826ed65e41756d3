import { crc32 } from 'node:zlib';
import { CipherMLError } from './errors.ts';
import { bigintToBytes, bytesToBigint } from './bigmath/bigint.ts';

/**
 * cipherml's versioned binary envelope, shared by every scheme's keys and ciphertexts:
 *
 * ```
 * offset size field
 * 0      4    magic "CPML"
 * 4      1    format version (1)
 * 5      1    kind   (see ENVELOPE_KINDS)
 * 6      1    scheme (see ENVELOPE_SCHEMES)
 * 7      1    reserved, 0
 * 8      16   key fingerprint (all zero when not bound to a key)
 * 24     4    body length L (u32 big-endian)
 * 28     L    body (kind-specific)
 * 28+L   4    CRC-32 of bytes [0, 28+L)
 * ```
 * Readers reject a short buffer (truncated), a CRC mismatch (corrupt), an unknown version,
 * kind or scheme (unsupported) before parsing the body.
 */

export const ENVELOPE_MAGIC = 'CPML';
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 28;

/** Kinds of object an envelope carries. */
export const ENVELOPE_KINDS = {
  publicKey: 1,
  privateKey: 2,
  ciphertext: 3,
  packedVector: 4,
  // Threshold Paillier (src/paillier/threshold-serialize.ts)
  thresholdPublicKey: 16,
  thresholdKeyShare: 17,
  decryptionShares: 18,
} as const;
export type EnvelopeKind = keyof typeof ENVELOPE_KINDS;

/** Schemes an envelope may belong to. */
export const ENVELOPE_SCHEMES = {
  paillier: 1,
  ckks: 2,
} as const;
export type EnvelopeScheme = keyof typeof ENVELOPE_SCHEMES;

/** A parsed envelope: header fields and the body bytes. */
export interface Envelope {
  readonly kind: EnvelopeKind;
  readonly scheme: EnvelopeScheme;
  /** 32 lowercase hex characters. */
  readonly fingerprint: string;
  readonly body: Uint8Array;
}

/**
 * Wraps a body in the envelope.
 *
 * @example
 * ```ts
 * const bytes = sealEnvelope({ kind: 'ciphertext', scheme: 'paillier', fingerprint: pk.fingerprint, body });
 * ```
 */
export function sealEnvelope(env: Envelope): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + env.body.length + 4);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(ENVELOPE_MAGIC, 'ascii'), 0);
  out[4] = ENVELOPE_VERSION;
  out[5] = ENVELOPE_KINDS[env.kind];
  out[6] = ENVELOPE_SCHEMES[env.scheme];
  out[7] = 0;
  out.set(fingerprintBytes(env.fingerprint), 8);
  view.setUint32(24, env.body.length);
  out.set(env.body, ENVELOPE_HEADER_BYTES);
  view.setUint32(ENVELOPE_HEADER_BYTES + env.body.length, crc32(out.subarray(0, ENVELOPE_HEADER_BYTES + env.body.length)));
  return out;
}

/**
 * Parses and checks an envelope; `expect` pins the kind and scheme the caller can handle.
 *
 * @example
 * ```ts
 * const env = openEnvelope(bytes, { kind: 'publicKey', scheme: 'paillier' }, 'publicKey');
 * ```
 */
export function openEnvelope(bytes: Uint8Array, expect: { kind: EnvelopeKind; scheme: EnvelopeScheme }, param: string): Envelope {
  if (!(bytes instanceof Uint8Array)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a Uint8Array or Buffer', { param });
  }
  if (bytes.length < ENVELOPE_HEADER_BYTES + 4) {
    throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `${bytes.length} bytes is shorter than the ${ENVELOPE_HEADER_BYTES + 4}-byte envelope`, { param });
  }
  if (Buffer.from(bytes.subarray(0, 4)).toString('latin1') !== ENVELOPE_MAGIC) {
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml envelope (magic bytes are not "CPML")', { param });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyLength = view.getUint32(24);
  const total = ENVELOPE_HEADER_BYTES + bodyLength + 4;
  if (bytes.length < total) {
    throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `envelope declares ${total} bytes, only ${bytes.length} present`, { param, details: { expected: total, actual: bytes.length } });
  }
  if (bytes.length > total) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${bytes.length - total} trailing bytes after the envelope`, { param });
  }
  const crc = view.getUint32(ENVELOPE_HEADER_BYTES + bodyLength);
  if (crc32(bytes.subarray(0, ENVELOPE_HEADER_BYTES + bodyLength)) !== crc) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'CRC-32 mismatch', { param });
  }
  if (bytes[4] !== ENVELOPE_VERSION) {
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `format version ${bytes[4]} (this build reads ${ENVELOPE_VERSION})`, { param });
  }
  const kind = keyOf(ENVELOPE_KINDS, bytes[5]!);
  const scheme = keyOf(ENVELOPE_SCHEMES, bytes[6]!);
  if (kind !== expect.kind || scheme !== expect.scheme) {
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `expected a ${expect.scheme} ${expect.kind}, found a ${scheme ?? `scheme #${bytes[6]}`} ${kind ?? `kind #${bytes[5]}`}`, { param });
  }
  return {
    kind,
    scheme,
    fingerprint: Buffer.from(bytes.subarray(8, 24)).toString('hex'),
    body: bytes.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + bodyLength),
  };
}

function keyOf<T extends Record<string, number>>(table: T, code: number): keyof T | undefined {
  return (Object.keys(table) as (keyof T)[]).find((k) => table[k] === code);
}

function fingerprintBytes(fp: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(fp)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'fingerprint must be 32 lowercase hex characters', { param: 'fingerprint' });
  return Buffer.from(fp, 'hex');
}

/** Appends fixed-width integers and length-prefixed bigints to a growing buffer. */
export class ByteWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  u8(v: number): this {
    return this.#push(Uint8Array.of(v));
  }
  u16(v: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v);
    return this.#push(b);
  }
  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    return this.#push(b);
  }
  /** A bigint as u32 length + big-endian magnitude. */
  bigint(v: bigint): this {
    const b = bigintToBytes(v);
    return this.u32(b.length).#push(b);
  }
  /** A bigint in exactly `width` bytes (no length prefix). */
  fixedBigint(v: bigint, width: number): this {
    return this.#push(bigintToBytes(v, width));
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
  #push(b: Uint8Array): this {
    this.#chunks.push(b);
    this.#length += b.length;
    return this;
  }
}

/** Reads what ByteWriter wrote; running past the end is a FORMAT_TRUNCATED error. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #param: string;
  #offset = 0;

  constructor(bytes: Uint8Array, param: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#param = param;
  }
  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.#offset++);
  }
  u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return v;
  }
  bigint(maxBytes: number): bigint {
    const len = this.u32();
    if (len > maxBytes) {
      throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a field declares ${len} bytes, at most ${maxBytes} allowed`, { param: this.#param });
    }
    return this.fixedBigint(len);
  }
  fixedBigint(width: number): bigint {
    this.#need(width);
    const v = bytesToBigint(this.#bytes.subarray(this.#offset, this.#offset + width));
    this.#offset += width;
    return v;
  }
  /** Throws FORMAT_CORRUPT when bytes remain (the body is longer than its fields). */
  end(): void {
    if (this.#offset !== this.#bytes.length) {
      throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${this.#bytes.length - this.#offset} unexpected bytes after the last field`, { param: this.#param });
    }
  }
  #need(n: number): void {
    if (this.#offset + n > this.#bytes.length) {
      throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `body ends at byte ${this.#bytes.length}, field needs ${this.#offset + n}`, { param: this.#param });
    }
  }
}
