import { gunzipSync } from 'node:zlib';
import { CipherMLError } from '../core/errors.ts';

/**
 * IDX files (LeCun et al., the MNIST distribution format): big-endian magic 0x0000_08_RR (unsigned
 * bytes, rank RR), RR u32 dims, then the bytes. Gzip-compressed files are inflated first.
 *
 * @example
 * ```ts
 * const images = readIdx(await readFile('t10k-images-idx3-ubyte.gz')); // dims [10000, 28, 28]
 * ```
 */
export function readIdx(bytes: Uint8Array, param = 'idx'): { dims: number[]; data: Uint8Array } {
  let b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== 0x08) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not an unsigned-byte IDX file', { param });
  const rank = b[3]!;
  const dims = Array.from({ length: rank }, (_, i) => b.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * rank;
  const n = dims.reduce((a, c) => a * c, 1);
  if (b.length < start + n) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `IDX data holds ${b.length - start} of ${n} bytes`, { param });
  return { dims, data: b.subarray(start, start + n) };
}
