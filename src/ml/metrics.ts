import { CipherMLError } from '../core/errors.ts';
import { describe as describeValue } from '../core/guards.ts';

/**
 * Binary-classification metrics. Labels are 0 or 1; every metric rejects empty input, inputs of
 * different lengths (CIPHERML_E_SHAPE_MISMATCH), non-finite scores (CIPHERML_E_NOT_FINITE) and
 * labels outside {0, 1} (CIPHERML_E_INVALID_ARGUMENT).
 */

/**
 * Probabilities are clipped to [LOG_LOSS_EPS, 1 − LOG_LOSS_EPS] before taking logs (formerly
 * the fixed `eps` of scikit-learn's `log_loss`), bounding one row's loss by −ln(1e-15) ≈ 34.5.
 *
 * @example
 * ```ts
 * logLoss([0], [1]) === -Math.log(LOG_LOSS_EPS); // true
 * ```
 */
export const LOG_LOSS_EPS = 1e-15;

/**
 * Fraction of rows whose prediction (1 when `probs[i] ≥ threshold`, else 0) equals the label.
 *
 * @example
 * ```ts
 * accuracy([0.9, 0.2, 0.6], [1, 0, 0]); // 2/3
 * ```
 */
export function accuracy(probs: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  checkPair(probs, labels, 'probs');
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a finite number, got ${describeValue(threshold)}`, { param: 'threshold' });
  }
  let correct = 0;
  for (let i = 0; i < probs.length; i++) {
    if ((probs[i]! >= threshold ? 1 : 0) === labels[i]) correct++;
  }
  return correct / probs.length;
}

/**
 * Mean binary cross-entropy −(1/n) Σ [y·ln p + (1 − y)·ln(1 − p)], with p clipped to
 * [1e-15, 1 − 1e-15] so a confident mistake costs about 34.5 rather than Infinity.
 * Probabilities must lie in [0, 1].
 *
 * @example
 * ```ts
 * logLoss([0.5, 0.5], [0, 1]); // ln 2 ≈ 0.6931
 * ```
 */
export function logLoss(probs: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPair(probs, labels, 'probs');
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (p < 0 || p > 1) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `element ${i} is ${p}, not a probability in [0, 1]`, { param: 'probs', details: { index: i } });
    }
    const q = Math.min(Math.max(p, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    sum -= labels[i] === 1 ? Math.log(q) : Math.log1p(-q);
  }
  return sum / probs.length;
}

/**
 * Area under the ROC curve: the probability that a random positive scores above a random
 * negative, ties counting one half. Computed from average ranks as the Mann–Whitney statistic
 * U / (n_pos · n_neg) (H. B. Mann, D. R. Whitney, Ann. Math. Statist. 18(1), 1947; J. A. Hanley,
 * B. J. McNeil, Radiology 143(1), 1982), in O(n log n).
 *
 * Returns NaN when the labels hold only one class, since the AUC is then undefined; callers that
 * evaluate small or skewed shards should expect and display it as such.
 *
 * @example
 * ```ts
 * auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]); // 0.75
 * auc([0.3, 0.7], [1, 1]);                  // NaN: no negatives
 * ```
 */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPair(scores, labels, 'scores');
  const n = scores.length;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    // Rows start..end−1 tie and share the mean of 1-based ranks start+1..end.
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (labels[order[k]!] === 1) {
        positives++;
        positiveRankSum += rank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  const u = positiveRankSum - (positives * (positives + 1)) / 2;
  return u / (positives * negatives);
}

function checkPair(values: ArrayLike<number>, labels: ArrayLike<number>, param: string): void {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array or Float64Array of numbers, got ${describeValue(values)}`, { param });
  }
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array or Float64Array of 0/1 labels, got ${describeValue(labels)}`, { param: 'labels' });
  }
  if (values.length !== labels.length) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${values.length} ${param} but ${labels.length} labels`, {
      param,
      details: { expected: labels.length, actual: values.length },
    });
  }
  if (values.length === 0) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'no rows to score', { param });
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `element ${i} is ${describeValue(v)}, not a number`, { param, details: { index: i } });
    }
    if (!Number.isFinite(v)) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `element ${i} is ${String(v)}`, { param, details: { index: i, value: String(v) } });
    }
    const y = labels[i];
    if (y !== 0 && y !== 1) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `label ${i} is ${describeValue(y)}, expected 0 or 1`, { param: 'labels', details: { index: i } });
    }
  }
}
