import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCsvDataset } from './csv.ts';
import { sigmoid } from './logistic-regression.ts';
import { SIGMOID_POLY3, sigmoidPoly3, trainPoly3LogReg } from './poly-logreg.ts';

describe('sigmoidPoly3', () => {
  it('has the published coefficients and stays within 0.12 of σ on its fitting interval', () => {
    expect(SIGMOID_POLY3.a1).toBeCloseTo(0.15012, 5);
    expect(SIGMOID_POLY3.a3).toBeCloseTo(-0.001593, 6);
    fc.assert(fc.property(fc.double({ min: -8, max: 8, noNaN: true }), (z) => Math.abs(sigmoidPoly3(z) - sigmoid(z)) < 0.12));
    expect(sigmoidPoly3(4)).toBeCloseTo(0.5 + 0.15012 * 4 - 0.001593 * 64, 5);
  });

  it('is odd around 1/2', () => {
    fc.assert(fc.property(fc.double({ min: -8, max: 8, noNaN: true }), (z) => Math.abs(sigmoidPoly3(z) + sigmoidPoly3(-z) - 1) < 1e-12));
  });
});

describe('trainPoly3LogReg', () => {
  it('one step from zero is the mean of (1/2 − y)·x scaled by the learning rate', () => {
    const xs = [Float64Array.of(1, 2), Float64Array.of(-1, 0.5), Float64Array.of(3, -1)];
    const ys = [1, 0, 1];
    const w = trainPoly3LogReg(xs, ys, { coef: new Float64Array(2), intercept: 0 }, { epochs: 1, learningRate: 0.3 });
    const expected = [0, 1].map((j) => -(0.3 / 3) * xs.reduce((s, x, i) => s + (0.5 - ys[i]!) * x[j]!, 0));
    expect(w.coef[0]).toBeCloseTo(expected[0]!, 12);
    expect(w.coef[1]).toBeCloseTo(expected[1]!, 12);
    expect(w.intercept).toBeCloseTo(-(0.3 / 3) * (1.5 - 2), 12);
  });

  it('learns the breast cancer data well above chance in a few epochs', async () => {
    const ds = await loadCsvDataset('examples/data/breast_homo_guest.csv');
    const test = await loadCsvDataset('examples/data/breast_homo_test.csv');
    const w = trainPoly3LogReg(ds.features, ds.labels, { coef: new Float64Array(ds.featureNames.length), intercept: 0 }, { epochs: 3, learningRate: 0.1 });
    let correct = 0;
    test.features.forEach((x, i) => {
      const z = x.reduce((s, v, j) => s + v * w.coef[j]!, w.intercept);
      if ((z > 0 ? 1 : 0) === test.labels[i]) correct++;
    });
    expect(correct / test.features.length).toBeGreaterThan(0.85);
  });

  it('rejects rows of the wrong width and out-of-range hyper-parameters', () => {
    const init = { coef: new Float64Array(2), intercept: 0 };
    expect(() => trainPoly3LogReg([Float64Array.of(1)], [1], init, { epochs: 1, learningRate: 0.1 })).toThrow(/CIPHERML_E_SHAPE_MISMATCH/);
    expect(() => trainPoly3LogReg([Float64Array.of(1, 2)], [1], init, { epochs: 0, learningRate: 0.1 })).toThrow(/epochs/);
    expect(() => trainPoly3LogReg([Float64Array.of(1, 2)], [1], init, { epochs: 1, learningRate: -1 })).toThrow(/learningRate/);
  });
});
