import { constants, createZstdCompress } from 'node:zlib';
import { sealEnvelope } from '../src/core/envelope.ts';

/**
 * Hostile inputs shared by the robustness tests, the fuzz suites and `bench robustness`: CKKS
 * envelopes whose zstd body declares far more bytes than it carries (decompression bombs).
 */

/** zstd frame of `n` zero bytes, compressed as a stream (never holds `n` bytes in memory). */
export async function zstdZeros(n: number): Promise<Uint8Array> {
  const z = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_contentSizeFlag]: 0 } });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    z.on('end', resolve);
    z.on('error', reject);
  });
  const zero = Buffer.alloc(Math.min(n, 1 << 20));
  for (let left = n; left > 0; left -= zero.length) {
    if (!z.write(left >= zero.length ? zero : zero.subarray(0, left))) await new Promise((r) => z.once('drain', r));
  }
  z.end();
  await done;
  return Buffer.concat(chunks);
}

/**
 * A CKKS envelope (valid magic, CRC and kind) whose body is `codec ‖ u32 declared ‖ zstd(zeros)`:
 * what a parser that trusts the declared length decompresses in full.
 *
 * @example
 * ```ts
 * const bomb = await ckksBomb('publicKey', 512 << 20); // ≈ 16 KB on the wire
 * ```
 */
export async function ckksBomb(kind: 'publicKey' | 'privateKey' | 'ciphertext', declaredBytes: number, fingerprint: string = '0'.repeat(32)): Promise<Uint8Array> {
  const packed = await zstdZeros(declaredBytes);
  const body = new Uint8Array(5 + packed.length);
  body[0] = 1;
  new DataView(body.buffer).setUint32(1, Math.min(declaredBytes, 2 ** 32 - 1));
  body.set(packed, 5);
  return sealEnvelope({ kind, scheme: 'ckks', fingerprint, body });
}

/** `depth`-deep nested JSON arrays. */
export function deepJson(depth: number): string {
  return `{"batchSize":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}
