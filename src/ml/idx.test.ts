import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { imageDataset, loadIdxDataset, parseIdxImages, parseIdxLabels, subset } from './idx.ts';

function images(count: number, rows = 28, cols = 28, extra = 0, magic = 2051): Buffer {
  const b = Buffer.alloc(16 + count * rows * cols + extra);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  for (let i = 16; i < b.length; i++) b[i] = i % 251;
  return b;
}
function labels(values: number[], magic = 2049): Buffer {
  const b = Buffer.alloc(8 + values.length);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(values.length, 4);
  values.forEach((v, i) => (b[8 + i] = v));
  return b;
}

describe('IDX reader', () => {
  it('reads raw and gzip files and pairs images with labels', () => {
    const img = parseIdxImages(gzipSync(images(3)));
    expect(img.count).toBe(3);
    const ds = imageDataset(img, parseIdxLabels(labels([1, 2, 3])));
    const s = subset(ds, [2, 0]);
    expect([...s.labels]).toEqual([3, 1]);
    expect(s.images.subarray(0, 784)).toEqual(ds.images.subarray(2 * 784, 3 * 784));
  });

  it('refuses a wrong magic, wrong size, truncated data and out-of-range labels with typed errors', () => {
    const e = (param: string) => expect.objectContaining({ code: 'CIPHERML_E_DATASET_INVALID', param });
    expect(() => parseIdxImages(labels([1]), 'x.gz')).toThrow(e('x.gz'));
    expect(() => parseIdxImages(images(2, 32, 32))).toThrow(/32×32/);
    expect(() => parseIdxImages(images(2).subarray(0, 800))).toThrow(/header declares/);
    expect(() => parseIdxImages(images(2, 28, 28, 5))).toThrow(/header declares/);
    expect(() => parseIdxLabels(images(1))).toThrow(/images file/);
    expect(() => parseIdxLabels(labels([1, 12]))).toThrow(/outside 0–9/);
    expect(() => imageDataset(parseIdxImages(images(2)), parseIdxLabels(labels([1])))).toThrow(/1 labels for 2 images/);
    // A header that declares a huge count is refused before anything is allocated for it.
    const huge = images(1);
    huge.writeUInt32BE(4_000_000_000, 4);
    expect(() => parseIdxImages(huge)).toThrow(/declares 4000000000 images/);
  });

  it('loadIdxDataset falls back from .gz to the raw file, and types a folder without them as IO', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-idx-'));
    try {
      const img = Buffer.alloc(16 + 2 * 784);
      img.writeUInt32BE(2051, 0);
      img.writeUInt32BE(2, 4);
      img.writeUInt32BE(28, 8);
      img.writeUInt32BE(28, 12);
      const lab = Buffer.alloc(8 + 2);
      lab.writeUInt32BE(2049, 0);
      lab.writeUInt32BE(2, 4);
      lab[9] = 7;
      await writeFile(join(dir, 't10k-images-idx3-ubyte'), img);
      await writeFile(join(dir, 't10k-labels-idx1-ubyte'), lab);
      const ds = await loadIdxDataset(dir, 't10k');
      expect([ds.count, Array.from(ds.labels)]).toEqual([2, [0, 7]]);
      await expect(loadIdxDataset(join(dir, 'none'), 't10k')).rejects.toMatchObject({ code: 'CIPHERML_E_IO' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
