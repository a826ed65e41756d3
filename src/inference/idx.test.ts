import { constants, createGzip, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CipherMLError } from '../core/errors.ts';
import { parseIdxImages } from '../ml/idx.ts';
import { readIdx } from './idx.ts';

// Hostile IDX inputs (issue 13). Peak RSS (maxRSS, a high-water mark) may grow by at most 64 MiB
// where a naive gunzip would make 256 MiB.

const MiB = 1 << 20;
const peakMb = (): number => process.resourceUsage().maxRSS / 1024;

async function gzipZeros(n: number, prefix: Uint8Array): Promise<Buffer> {
  const z = createGzip({ level: constants.Z_BEST_COMPRESSION });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => z.on('end', r));
  z.write(prefix);
  const zero = Buffer.alloc(MiB);
  for (let left = n; left > 0; left -= MiB) if (!z.write(zero.subarray(0, Math.min(MiB, left)))) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(out);
}

function idx(dims: readonly number[], body: number): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length + body);
  b[2] = 0x08;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CipherMLError);
    return (e as CipherMLError).code;
  }
  return 'parsed';
}

describe('IDX against hostile files', () => {
  it('a gzip bomb whose trailer understates its size stops at the stated size', async () => {
    const header = idx([10], 0);
    const bomb = await gzipZeros(256 * MiB, header);
    const lying = Buffer.from(bomb);
    lying.writeUInt32LE(4 + 4 + 10, lying.length - 4); // ISIZE says 18 bytes
    const before = peakMb();
    expect(code(() => readIdx(lying, '--images'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(code(() => parseIdxImages(lying, '--images'))).toBe('CIPHERML_E_DATASET_INVALID');
    // Told the truth, it is refused before inflating: 256 MiB is above the caller's cap.
    expect(code(() => readIdx(bomb, '--images', 64 * MiB))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('dims that the bytes do not hold, a rank beyond the file and trailing bytes are typed errors', () => {
    expect(code(() => readIdx(idx([60000, 28, 28], 784)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(code(() => readIdx(idx([0xffffffff, 0xffffffff, 0xffffffff], 16)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    const rank = idx([], 0);
    rank[3] = 255;
    expect(code(() => readIdx(rank))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(code(() => readIdx(idx([2], 5)))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(code(() => readIdx(gzipSync(idx([2], 2)).subarray(0, 12)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(readIdx(gzipSync(idx([2, 3], 6))).dims).toEqual([2, 3]);
  });
});
