import { CipherMLError } from './errors.ts';

/**
 * Line-oriented text (CSV) read against limits the caller states: total size, line length and
 * cell count are checked line by line, before a line is split into cells, so a file of one
 * 100 MB line or of a million commas is refused without building its cells.
 */

/** Limits of {@link boundedLines}. */
export interface LineLimits {
  /** Largest accepted text, in UTF-16 code units (≈ bytes for CSV of numbers). */
  readonly maxChars: number;
  /** Longest accepted line. */
  readonly maxLineChars: number;
  /** Most accepted cells in a line (commas + 1). */
  readonly maxCells: number;
  /** Most accepted non-empty lines, header included. */
  readonly maxLines: number;
}

/** Defaults for numeric CSV: 256 Mi characters, 1 Mi per line, 16,384 cells, 10 M lines. */
export const DEFAULT_LINE_LIMITS: LineLimits = { maxChars: 256 << 20, maxLineChars: 1 << 20, maxCells: 16_384, maxLines: 10_000_000 };

function tooLarge(problem: string, param: string, details: Record<string, unknown>, advice: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', problem, { param, details, advice });
}

/**
 * The non-empty lines of `text` (CR LF or LF) with their 1-based line numbers, each checked
 * against `limits` before it is returned; `source` names the file in messages, `param` the
 * flag or key that gave it.
 *
 * @example
 * ```ts
 * boundedLines('a,b\n1,2\n', 'x.csv', '--features'); // [{ line: 1, text: 'a,b' }, { line: 2, text: '1,2' }]
 * ```
 */
export function boundedLines(text: string, source: string, param: string, limits: Partial<LineLimits> = {}): { line: number; text: string }[] {
  const l: LineLimits = { ...DEFAULT_LINE_LIMITS, ...limits };
  if (text.length > l.maxChars) throw tooLarge(`${source} holds ${text.length} characters, more than ${l.maxChars}`, param, { limit: l.maxChars, actual: text.length }, `Split ${source} into smaller files or raise the limit.`);
  const out: { line: number; text: string }[] = [];
  let start = 0;
  for (let n = 1; start <= text.length; n++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const len = end - start;
    if (len > l.maxLineChars) throw tooLarge(`${source} line ${n} is ${len} characters long, more than ${l.maxLineChars}`, param, { line: n, limit: l.maxLineChars }, `Check that ${source} is a CSV with one row per line.`);
    let cells = 1;
    for (let i = start; i < end; i++) {
      if (text.charCodeAt(i) === 44 && ++cells > l.maxCells) throw tooLarge(`${source} line ${n} has more than ${l.maxCells} cells`, param, { line: n, limit: l.maxCells }, `Check that ${source} is the intended file; at most ${l.maxCells} columns are read.`);
    }
    const row = text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    if (row.trim() !== '') {
      if (out.length >= l.maxLines) throw tooLarge(`${source} has more than ${l.maxLines} rows`, param, { line: n, limit: l.maxLines }, `Split ${source} into smaller files.`);
      out.push({ line: n, text: row });
    }
    start = end + 1;
  }
  return out;
}
