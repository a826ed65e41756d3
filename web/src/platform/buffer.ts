/**
 * The part of Node's `Buffer` that the shared protocol code (src/core/envelope.ts,
 * src/ckks/serialize.ts, src/core/bounded.ts, src/inference/npy.ts) calls on the browser path:
 * `from` (bytes, views, ASCII/Latin-1, UTF-8 and hex strings), `byteLength`, `alloc`, `concat`,
 * `toString` with the same encodings, the little-endian readers .npy parsing uses and the writers
 * the ZIP writer of the owner's deploy bundle uses (`writeUInt16LE`, `writeUInt32LE`). Injected by the console's Vite build (web/vite.config.ts) into those modules
 * only; encodings it does not implement throw instead of guessing.
 */
type Encoding = 'utf8' | 'utf-8' | 'ascii' | 'latin1' | 'binary' | 'hex' | 'base64';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function unknown(enc: string): Error {
  return new Error(`Buffer shim: encoding ${enc} is not implemented in the browser build`);
}

/** The bytes type: a Uint8Array with Node's `toString(encoding)` and `equals`. */
export class Bytes extends Uint8Array {
  override toString(enc: Encoding = 'utf8'): string {
    if (enc === 'utf8' || enc === 'utf-8') return new TextDecoder().decode(this);
    if (enc === 'hex') {
      let s = '';
      for (const b of this) s += HEX[b];
      return s;
    }
    if (enc === 'latin1' || enc === 'binary' || enc === 'ascii') {
      let s = '';
      for (let i = 0; i < this.length; i += 0x8000) s += String.fromCharCode(...this.subarray(i, i + 0x8000));
      return s;
    }
    if (enc === 'base64') return btoa(this.toString('latin1'));
    throw unknown(enc);
  }

  equals(other: Uint8Array): boolean {
    return this.length === other.length && this.every((b, i) => b === other[i]);
  }

  #view(offset: number, width: number): DataView {
    // Node throws ERR_OUT_OF_RANGE; DataView would throw a RangeError too, but name no offset.
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.length) throw new RangeError(`Buffer shim: offset ${offset} + ${width} is outside 0..${this.length}`);
    return new DataView(this.buffer, this.byteOffset + offset, width);
  }
  readUInt16LE(offset = 0): number {
    return this.#view(offset, 2).getUint16(0, true);
  }
  readUInt32LE(offset = 0): number {
    return this.#view(offset, 4).getUint32(0, true);
  }
  readInt32LE(offset = 0): number {
    return this.#view(offset, 4).getInt32(0, true);
  }
  readBigInt64LE(offset = 0): bigint {
    return this.#view(offset, 8).getBigInt64(0, true);
  }
  readFloatLE(offset = 0): number {
    return this.#view(offset, 4).getFloat32(0, true);
  }
  readDoubleLE(offset = 0): number {
    return this.#view(offset, 8).getFloat64(0, true);
  }
  /** As Node: the value must fit the width (RangeError otherwise); returns offset + width. */
  writeUInt16LE(value: number, offset = 0): number {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`Buffer shim: ${value} is not a 16-bit unsigned integer`);
    this.#view(offset, 2).setUint16(0, value, true);
    return offset + 2;
  }
  writeUInt32LE(value: number, offset = 0): number {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`Buffer shim: ${value} is not a 32-bit unsigned integer`);
    this.#view(offset, 4).setUint32(0, value, true);
    return offset + 4;
  }
}

const wrap = (bytes: Uint8Array): Bytes => new Bytes(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);

function from(value: string | ArrayLike<number> | ArrayBufferLike, encOrOffset?: Encoding | number, length?: number): Bytes {
  if (typeof value === 'string') {
    const enc = (encOrOffset ?? 'utf8') as Encoding;
    if (enc === 'utf8' || enc === 'utf-8') return wrap(new TextEncoder().encode(value));
    if (enc === 'ascii' || enc === 'latin1' || enc === 'binary') return wrap(Uint8Array.from(value, (c) => c.charCodeAt(0) & 0xff));
    if (enc === 'hex') {
      const n = value.length >>> 1;
      const out = new Bytes(n);
      for (let i = 0; i < n; i++) {
        const b = Number.parseInt(value.slice(2 * i, 2 * i + 2), 16);
        // Node stops at the first pair that is not hex.
        if (Number.isNaN(b)) return wrap(out.subarray(0, i));
        out[i] = b;
      }
      return out;
    }
    if (enc === 'base64') return wrap(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
    throw unknown(enc);
  }
  if (value instanceof ArrayBuffer) {
    const offset = (encOrOffset as number | undefined) ?? 0;
    return new Bytes(value, offset, length ?? value.byteLength - offset);
  }
  // A copy, as Node's Buffer.from(array or view) makes.
  return wrap(Uint8Array.from(value as ArrayLike<number>));
}

function concat(parts: readonly Uint8Array[]): Bytes {
  const out = new Bytes(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function byteLength(value: string, enc: Encoding = 'utf8'): number {
  if (enc !== 'utf8' && enc !== 'utf-8') throw unknown(enc);
  return new TextEncoder().encode(value).length;
}

/** Node's `Buffer` (the subset above). */
export interface BufferStatic {
  readonly from: typeof from;
  readonly alloc: (size: number) => Bytes;
  readonly byteLength: typeof byteLength;
  readonly concat: typeof concat;
}

/** `Buffer.from` and friends; `Bytes` is the instance type. */
export const Buffer: BufferStatic = { from, alloc: (size: number): Bytes => new Bytes(size), byteLength, concat };
