import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { accuracy, auc, logLoss } from './metrics.ts';

/** AUC by its definition: P(score of a positive > score of a negative), ties counting ½. */
function pairwiseAuc(scores: readonly number[], labels: readonly number[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return pairs === 0 ? Number.NaN : wins / pairs;
}

describe('accuracy', () => {
  it('counts predictions at or above the threshold as positive', () => {
    expect(accuracy([0.9, 0.2, 0.6], [1, 0, 0])).toBeCloseTo(2 / 3, 15);
    expect(accuracy([0.5, 0.49], [1, 0])).toBe(1);
    expect(accuracy([0.7, 0.7], [1, 0], 0.8)).toBe(0.5);
    expect(accuracy(Float64Array.of(0.1, 0.9), Float64Array.of(1, 0))).toBe(0);
  });
});

describe('logLoss', () => {
  it('matches known values', () => {
    expect(logLoss([0.5, 0.5], [0, 1])).toBeCloseTo(Math.LN2, 15);
    expect(logLoss([0.9, 0.2], [1, 0])).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8)) / 2, 15);
    expect(logLoss([1, 0], [1, 0])).toBeCloseTo(0, 12);
  });

  it('stays finite for a confident mistake thanks to clipping at 1e-15', () => {
    expect(logLoss([0], [1])).toBeCloseTo(-Math.log(1e-15), 10);
    expect(logLoss([1], [0])).toBeCloseTo(-Math.log1p(-(1 - 1e-15)), 6);
    expect(Number.isFinite(logLoss([1], [0]))).toBe(true);
  });
});

describe('auc', () => {
  it('matches known values, including ties', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    expect(auc([0.1, 0.2, 0.3], [0, 1, 1])).toBe(1);
    expect(auc([0.3, 0.2, 0.1], [0, 1, 1])).toBe(0);
    expect(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
  });

  it('is NaN when a class is missing', () => {
    expect(auc([0.3, 0.7], [1, 1])).toBeNaN();
    expect(auc([0.3], [0])).toBeNaN();
  });

  it('equals the pairwise definition on random scores with many ties', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -5, max: 5 }), fc.constantFrom(0, 1)), { minLength: 1, maxLength: 60 }),
        fc.boolean(),
        (rows, fractional) => {
          const scores = rows.map(([s]) => (fractional ? s / 7 : s));
          const labels = rows.map(([, y]) => y);
          const expected = pairwiseAuc(scores, labels);
          if (Number.isNaN(expected)) expect(auc(scores, labels)).toBeNaN();
          else expect(auc(scores, labels)).toBeCloseTo(expected, 12);
        },
      ),
    );
  });
});

describe('metric inputs', () => {
  it('rejects bad inputs with typed codes', () => {
    for (const metric of [accuracy, logLoss, auc]) {
      expect(codeOf(() => metric([0.5, 0.5], [1]))).toBe('CIPHERML_E_SHAPE_MISMATCH');
      expect(codeOf(() => metric([], []))).toBe('CIPHERML_E_INVALID_ARGUMENT');
      expect(codeOf(() => metric([Number.NaN], [1]))).toBe('CIPHERML_E_NOT_FINITE');
      expect(codeOf(() => metric([0.5], [2]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
      expect(codeOf(() => metric([0.5], [Number.NaN]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    }
    expect(codeOf(() => logLoss([1.5], [1]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => accuracy([0.5], [1], Number.NaN))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});
