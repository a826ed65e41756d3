import { gunzipBounded } from '../core/bounded.ts';
import { CipherMLError } from '../core/errors.ts';

/** Default largest IDX payload: 256 MiB (MNIST's training images are 47 MB). */
export const DEFAULT_IDX_MAX_BYTES: number = 256 << 20;

/**
 * IDX files (LeCun et al., the MNIST distribution format): big-endian magic 0x0000_08_RR (unsigned
 * bytes, rank RR), RR u32 dims, then the bytes. Gzip-compressed files are inflated first, capped
 * at the size their trailer declares and at `maxBytes` (checked before inflating); the dims must
 * then account for every byte present.
 *
 * @example
 * ```ts
 * const images = readIdx(await readFile('t10k-images-idx3-ubyte.gz')); // dims [10000, 28, 28]
 * ```
 */
export function readIdx(bytes: Uint8Array, param = 'idx', maxBytes: number = DEFAULT_IDX_MAX_BYTES): { dims: number[]; data: Uint8Array } {
  const raw = gunzipBounded(bytes, maxBytes, param);
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length > maxBytes) throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `IDX file of ${b.length} bytes exceeds ${maxBytes}`, { param, details: { limit: maxBytes, actual: b.length } });
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== 0x08) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not an unsigned-byte IDX file', { param });
  const rank = b[3]!;
  const start = 4 + 4 * rank;
  if (b.length < start) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `IDX header of rank ${rank} needs ${start} bytes, the file holds ${b.length}`, { param });
  const dims = Array.from({ length: rank }, (_, i) => b.readUInt32BE(4 + 4 * i));
  let n = 1;
  for (const d of dims) n = Math.min(n * d, Number.MAX_SAFE_INTEGER);
  if (b.length - start !== n) {
    throw new CipherMLError(b.length - start < n ? 'CIPHERML_E_FORMAT_TRUNCATED' : 'CIPHERML_E_FORMAT_CORRUPT', `IDX data holds ${b.length - start} bytes, its dims [${dims.join(', ')}] declare ${n}`, {
      param,
      details: { expected: n, actual: b.length - start },
    });
  }
  return { dims, data: b.subarray(start) };
}
