/**
 * `node:zlib` as the shared protocol code uses it on the browser path: CRC-32 (the envelope's
 * checksum, ISO 3309 / ITU-T V.42 polynomial 0xEDB88320, as zlib's `crc32`), and zstd for CKKS
 * envelope bodies (src/ckks/serialize.ts, codec 1).
 *
 * Decompression is fzstd (a complete RFC 8878 decoder in JavaScript), stopped at
 * `maxOutputLength` like Node's: the frame's declared content size is read first and a larger
 * one is refused (`ERR_BUFFER_TOO_LARGE`) before the output is allocated.
 *
 * Compression writes a valid RFC 8878 frame of Raw blocks (§3.1.1.2, Block_Type 0): the bytes
 * are stored, not entropy-coded. Any zstd decoder, Node's included, reads it. The body is about
 * 1.5 times Node's level-1 output (SEAL's residues leave the high bytes of each 64-bit word zero,
 * which is all zstd finds to compress: 20.3 MB vs 13.7 MB for the 984 × 30 training upload).
 */
import { decompress } from 'fzstd';
import { Bytes } from './buffer.ts';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export const constants = { ZSTD_c_compressionLevel: 100 } as const;

const MAGIC = 0xfd2fb528;
/** Block_Maximum_Size (RFC 8878 §3.1.1.2.4): 128 KiB. */
const MAX_BLOCK = 128 * 1024;

/** A zstd frame of Raw blocks holding `data` (single segment, content size in the header, no checksum). */
export function zstdCompressSync(data: Uint8Array): Bytes {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  // Frame header: magic (4), descriptor (1): Single_Segment_flag, Frame_Content_Size_flag = 3 (8 bytes).
  const out = new Bytes(4 + 1 + 8 + blocks * 3 + data.length);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(0, MAGIC, true);
  out[4] = 0b1110_0000;
  v.setUint32(5, data.length >>> 0, true);
  v.setUint32(9, Math.floor(data.length / 2 ** 32), true);
  let o = 13;
  for (let b = 0; b < blocks; b++) {
    const start = b * MAX_BLOCK;
    const size = Math.min(MAX_BLOCK, data.length - start);
    const last = b === blocks - 1 ? 1 : 0;
    // Block header (3 bytes, little-endian): Last_Block (bit 0), Block_Type = Raw (bits 1–2 = 0), Block_Size (bits 3–23).
    const h = last | (size << 3);
    out[o] = h & 0xff;
    out[o + 1] = (h >>> 8) & 0xff;
    out[o + 2] = (h >>> 16) & 0xff;
    out.set(data.subarray(start, start + size), o + 3);
    o += 3 + size;
  }
  return out;
}

/** The Frame_Content_Size of a single zstd frame, or undefined when the header omits it (RFC 8878 §3.1.1.1). */
function declaredSize(data: Uint8Array): number | undefined {
  if (data.length < 6) return undefined;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (v.getUint32(0, true) !== MAGIC) return undefined;
  const fhd = data[4]!;
  const fcsFlag = fhd >>> 6;
  const single = (fhd >>> 5) & 1;
  const dictFlag = fhd & 3;
  let o = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  const width = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (width === 0 || o + width > data.length) return undefined;
  if (width === 1) return data[o]!;
  if (width === 2) return v.getUint16(o, true) + 256;
  if (width === 4) return v.getUint32(o, true);
  const lo = v.getUint32(o, true);
  o += 4;
  return v.getUint32(o, true) * 2 ** 32 + lo;
}

export function zstdDecompressSync(data: Uint8Array, options: { maxOutputLength?: number } = {}): Bytes {
  const max = options.maxOutputLength ?? 2 ** 31 - 1;
  const declared = declaredSize(data);
  if (declared !== undefined && declared > max) throw Object.assign(new RangeError(`zstd frame declares ${declared} bytes, more than ${max}`), { code: 'ERR_BUFFER_TOO_LARGE' });
  // Without a declared size fzstd grows its output as it goes; the result is checked after.
  const raw = declared === undefined ? decompress(data) : decompress(data, new Uint8Array(declared));
  if (raw.length > max) throw Object.assign(new RangeError(`zstd output of ${raw.length} bytes is more than ${max}`), { code: 'ERR_BUFFER_TOO_LARGE' });
  return new Bytes(raw.buffer as ArrayBuffer, raw.byteOffset, raw.byteLength);
}

function unavailable(name: string): never {
  throw new Error(`node:zlib ${name} is not available in the browser build`);
}
export const gunzipSync = (): never => unavailable('gunzipSync');
export const inflateRawSync = (): never => unavailable('inflateRawSync');
export const createZstdCompress = (): never => unavailable('createZstdCompress');
export const createZstdDecompress = (): never => unavailable('createZstdDecompress');
export const createGunzip = (): never => unavailable('createGunzip');
export const createInflateRaw = (): never => unavailable('createInflateRaw');
