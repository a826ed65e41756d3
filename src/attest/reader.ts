import { attestError } from './fail.ts';

/**
 * A bounds-checked little-endian reader over an attestation document. Every read names the field
 * it reads, so a short or inconsistent document is refused with the field that ran past the end;
 * nothing is allocated from a length the document declares (slices are views of the input).
 */
export class FieldReader {
  private pos: number;
  readonly bytes: Uint8Array;
  private readonly what: string;
  private readonly end: number;
  constructor(bytes: Uint8Array, what: string, start: number = 0, end: number = bytes.length) {
    this.bytes = bytes;
    this.what = what;
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  take(n: number, field: string): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || n > this.end - this.pos) {
      throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${this.what} field ${field} at offset ${this.pos} declares ${n} bytes but only ${this.end - this.pos} remain`, field);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return b[0]! | (b[1]! << 8);
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  u64(field: string): bigint {
    const b = this.take(8, field);
    return Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0);
  }
}

/** Little-endian unsigned integer of a fixed slice. */
export function leU16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export function leU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function leU64(b: Uint8Array, off: number): bigint {
  return Buffer.from(b.buffer, b.byteOffset + off, 8).readBigUInt64LE(0);
}
