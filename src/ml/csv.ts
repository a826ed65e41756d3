import { readFileBounded } from '../core/bounded-file.ts';
import { boundedLines, DEFAULT_LINE_LIMITS } from '../core/bounded-text.ts';
import type { LineLimits } from '../core/bounded-text.ts';
import { CipherMLError } from '../core/errors.ts';

/** A numeric table with a label column, as the federated examples use it. */
export interface CsvDataset {
  readonly featureNames: readonly string[];
  /** One Float64Array per row, in featureNames order. */
  readonly features: readonly Float64Array[];
  readonly labels: Float64Array;
}

/** Options of {@link parseCsvDataset}. */
export interface CsvOptions {
  /** Name of the label column. Default `y`. */
  readonly label?: string;
  /** Columns to ignore (e.g. row ids). Default `['id']` where present. */
  readonly drop?: readonly string[];
  /** Size, line-length, cell-count and row-count limits (default `DEFAULT_LINE_LIMITS`: 256 MiB, 1 MiB lines, 16,384 columns). */
  readonly limits?: Partial<LineLimits>;
  /** The flag or config key that named the file, for error messages (default `csv`). */
  readonly param?: string;
}

/**
 * Parses a header-first numeric CSV. Every non-dropped cell must be a finite number; the error
 * names the row (1-based line number, header = row 1) and column of the first bad cell. Size,
 * line length and cell count are checked against `options.limits` line by line before a line is
 * split (`CIPHERML_E_INPUT_TOO_LARGE`).
 *
 * @example
 * ```ts
 * const ds = parseCsvDataset('id,y,x0\n1,0,0.5\n2,1,-1\n', { label: 'y' });
 * ds.features[1]; // Float64Array [-1]
 * ```
 */
export function parseCsvDataset(text: string, options: CsvOptions = {}, source = 'csv'): CsvDataset {
  const labelName = options.label ?? 'y';
  const param = options.param ?? 'csv';
  const lines = boundedLines(text, source, param, options.limits);
  const header = lines[0]?.text.split(',').map((h) => h.trim());
  if (header === undefined || header.length === 0) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${source} is empty`, { param });
  }
  const labelIndex = header.indexOf(labelName);
  if (labelIndex < 0) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${source} has no column "${labelName}" (columns: ${header.slice(0, 20).join(', ')}${header.length > 20 ? ', …' : ''})`, { param: 'label' });
  }
  const drop = new Set(options.drop ?? ['id']);
  const featureIdx = header.map((_, i) => i).filter((i) => i !== labelIndex && !drop.has(header[i]!));
  const features: Float64Array[] = [];
  const labels = new Float64Array(lines.length - 1);
  for (let r = 1; r < lines.length; r++) {
    const row = lines[r]!.line;
    const cells = lines[r]!.text.split(',');
    if (cells.length !== header.length) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${source} row ${row} has ${cells.length} cells, the header has ${header.length}`, { param, details: { row } });
    }
    const cell = (i: number): number => {
      const v = Number(cells[i]);
      if (cells[i]!.trim() === '' || !Number.isFinite(v)) {
        throw new CipherMLError('CIPHERML_E_NOT_FINITE', `${source} row ${row}, column "${header[i]}" is ${JSON.stringify(cells[i]!.slice(0, 64))}, not a finite number`, {
          param,
          details: { row, column: header[i] },
        });
      }
      return v;
    };
    labels[r - 1] = cell(labelIndex);
    features.push(Float64Array.from(featureIdx, cell));
  }
  return { featureNames: featureIdx.map((i) => header[i]!), features, labels };
}

/**
 * Reads and parses a CSV dataset file; a file above `options.limits.maxChars` bytes is refused
 * from its size, before it is read.
 *
 * @example
 * ```ts
 * const train = await loadCsvDataset('examples/data/breast_homo_guest.csv', { label: 'y' });
 * ```
 */
export async function loadCsvDataset(path: string, options: CsvOptions = {}): Promise<CsvDataset> {
  const param = options.param ?? 'path';
  const bytes = await readFileBounded(path, param, options.limits?.maxChars ?? DEFAULT_LINE_LIMITS.maxChars);
  return parseCsvDataset(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), { ...options, param }, path);
}

/**
 * The `index`-th of `count` contiguous, near-equal shards of a dataset (1-based, as in
 * `--shard 2/3`), for splitting one party's file among several simulated workers.
 *
 * @example
 * ```ts
 * const second = shardDataset(train, 2, 3); // rows ⌊n/3⌋ … ⌊2n/3⌋ − 1
 * ```
 */
export function shardDataset(data: CsvDataset, index: number, count: number): CsvDataset {
  const n = data.features.length;
  if (!Number.isInteger(count) || count < 1 || count > n) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `shard count ${count} must be an integer in 1..${n} (the number of rows)`, { param: 'shard' });
  }
  if (!Number.isInteger(index) || index < 1 || index > count) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `shard index ${index} must be an integer in 1..${count}`, { param: 'shard' });
  }
  const lo = Math.floor(((index - 1) * n) / count);
  const hi = Math.floor((index * n) / count);
  return { featureNames: data.featureNames, features: data.features.slice(lo, hi), labels: data.labels.slice(lo, hi) };
}
