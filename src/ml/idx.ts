import { join } from 'node:path';
import { gunzipBounded } from '../core/bounded.ts';
import { readFileBounded } from '../core/bounded-file.ts';
import { CipherMLError } from '../core/errors.ts';

/**
 * Image datasets in the IDX format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST
 * DATABASE", file-format section): a big-endian header — magic 0x00000803 (2051) for unsigned-byte
 * images of rank 3, 0x00000801 (2049) for labels of rank 1 — its dimensions as u32, then the bytes.
 * Gzip-compressed files are inflated first: the size their trailer declares is checked against the
 * largest file the header could describe before inflating, and the output is capped at it.
 */

/** Largest item count accepted (MNIST's training set has 60,000). */
export const MAX_IDX_ITEMS = 1_000_000;

/** A labelled image set, pixels row-major as bytes. */
export interface ImageDataset {
  /** n × rows × cols bytes (0–255). */
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** Distinct classes (10 for MNIST and Fashion-MNIST). */
  readonly classes: number;
}

function bad(message: string, param: string, details?: Record<string, unknown>): CipherMLError {
  return new CipherMLError('CIPHERML_E_DATASET_INVALID', message, { param, ...(details === undefined ? {} : { details }) });
}

function inflate(bytes: Uint8Array, param: string, maxBytes: number): Buffer {
  let raw: Uint8Array;
  try {
    raw = gunzipBounded(bytes, maxBytes, param);
  } catch (e) {
    throw bad(`is not a readable gzip file of at most ${maxBytes} bytes (${(e as CipherMLError).problem ?? (e as Error).message})`, param);
  }
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/**
 * Parses an IDX images file (magic 2051, n × rows × cols unsigned bytes).
 *
 * @example
 * ```ts
 * const { images, count } = parseIdxImages(await readFile('t10k-images-idx3-ubyte.gz'), 't10k-images');
 * ```
 */
export function parseIdxImages(bytes: Uint8Array, param = 'images'): { images: Uint8Array; count: number; rows: number; cols: number } {
  const b = inflate(bytes, param, 16 + MAX_IDX_ITEMS * 28 * 28);
  if (b.length < 16) throw bad(`holds ${b.length} bytes, fewer than an IDX images header (16)`, param);
  const magic = b.readUInt32BE(0);
  if (magic !== 2051) throw bad(`has IDX magic ${magic}, not 2051 (unsigned-byte images of rank 3)${magic === 2049 ? '; this is a labels file' : ''}`, param, { magic });
  const [count, rows, cols] = [b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)];
  if (count < 1 || count > MAX_IDX_ITEMS) throw bad(`declares ${count} images; expected 1–${MAX_IDX_ITEMS}`, param, { count });
  if (rows !== 28 || cols !== 28) throw bad(`holds ${rows}×${cols} images; expected 28×28 (MNIST, Fashion-MNIST)`, param, { rows, cols });
  const need = 16 + count * rows * cols;
  if (b.length !== need) throw bad(`holds ${b.length - 16} pixel bytes, but its header declares ${count}×${rows}×${cols} = ${need - 16}`, param, { expected: need, actual: b.length });
  return { images: new Uint8Array(b.subarray(16)), count, rows, cols };
}

/**
 * Parses an IDX labels file (magic 2049, n unsigned bytes, each < `classes`).
 *
 * @example
 * ```ts
 * const labels = parseIdxLabels(await readFile('t10k-labels-idx1-ubyte.gz'), 't10k-labels');
 * ```
 */
export function parseIdxLabels(bytes: Uint8Array, param = 'labels', classes = 10): Uint8Array {
  const b = inflate(bytes, param, 8 + MAX_IDX_ITEMS);
  if (b.length < 8) throw bad(`holds ${b.length} bytes, fewer than an IDX labels header (8)`, param);
  const magic = b.readUInt32BE(0);
  if (magic !== 2049) throw bad(`has IDX magic ${magic}, not 2049 (unsigned-byte labels of rank 1)${magic === 2051 ? '; this is an images file' : ''}`, param, { magic });
  const count = b.readUInt32BE(4);
  if (count < 1 || count > MAX_IDX_ITEMS) throw bad(`declares ${count} labels; expected 1–${MAX_IDX_ITEMS}`, param, { count });
  if (b.length !== 8 + count) throw bad(`holds ${b.length - 8} label bytes, but its header declares ${count}`, param, { expected: 8 + count, actual: b.length });
  const labels = new Uint8Array(b.subarray(8));
  const i = labels.findIndex((l) => l >= classes);
  if (i >= 0) throw bad(`label ${i} is ${labels[i]}, outside 0–${classes - 1}`, param, { index: i });
  return labels;
}

/**
 * Pairs an images file with its labels file.
 *
 * @example
 * ```ts
 * const test = imageDataset(parseIdxImages(img), parseIdxLabels(lab));
 * ```
 */
export function imageDataset(images: { images: Uint8Array; count: number; rows: number; cols: number }, labels: Uint8Array, param = 'labels'): ImageDataset {
  if (labels.length !== images.count) throw bad(`holds ${labels.length} labels for ${images.count} images`, param, { images: images.count, labels: labels.length });
  return { images: images.images, labels, count: images.count, rows: images.rows, cols: images.cols, classes: 10 };
}

/** Which split of a dataset folder. */
export type Split = 'train' | 't10k';

/**
 * Reads `<dir>/<split>-images-idx3-ubyte[.gz]` and the matching labels file, as MNIST and
 * Fashion-MNIST are distributed.
 *
 * @example
 * ```ts
 * const test = await loadIdxDataset('examples/fl-mnist/mnist', 't10k');
 * ```
 */
export async function loadIdxDataset(dir: string, split: Split, limit?: number): Promise<ImageDataset> {
  const read = async (stem: string): Promise<{ bytes: Uint8Array; path: string }> => {
    for (const path of [join(dir, `${stem}.gz`), join(dir, stem)]) {
      try {
        // Read after a size check: no IDX file this reader accepts is larger, compressed or not.
        return { bytes: await readFileBounded(path, path, 16 + MAX_IDX_ITEMS * 28 * 28), path };
      } catch (e) {
        if (((e as Error).cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw e;
      }
    }
    throw new CipherMLError('CIPHERML_E_IO', `neither ${stem}.gz nor ${stem} exists in ${dir}`, { param: dir });
  };
  const img = await read(`${split}-images-idx3-ubyte`);
  const lab = await read(`${split}-labels-idx1-ubyte`);
  const ds = imageDataset(parseIdxImages(img.bytes, img.path), parseIdxLabels(lab.bytes, lab.path), lab.path);
  return limit === undefined || limit >= ds.count ? ds : subset(ds, Array.from({ length: limit }, (_, i) => i));
}

/**
 * The samples at `indices`, in that order.
 *
 * @example
 * ```ts
 * const mine = subset(train, partition.clients[0]!.indices);
 * ```
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const px = ds.rows * ds.cols;
  const images = new Uint8Array(indices.length * px);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    images.set(ds.images.subarray(i * px, (i + 1) * px), k * px);
    labels[k] = ds.labels[i]!;
  }
  return { ...ds, images, labels, count: indices.length };
}
