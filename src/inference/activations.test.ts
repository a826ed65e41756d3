import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activation, chebyshevToMonomial, chooseDegree, evalFit, fitDepth, fitMinimax, polynomialNodes } from './activations.ts';
import { runPlain } from './execute.ts';
import type { Tensor } from './onnx.ts';

describe('minimax fits (Remez exchange)', () => {
  it('known answers: |x| and Relu at degree 2 on [−1, 1], eˣ at degree 1 on [0, 1]', () => {
    // Best quadratic to |x| on [−1, 1]: x² + 1/8, error 1/8 (Trefethen, ATAP ch. 10).
    const abs = fitMinimax(Math.abs, [-1, 1], 2);
    expect(abs.maxError).toBeCloseTo(1 / 8, 4);
    expect(evalFit(abs, 0)).toBeCloseTo(1 / 8, 4);
    expect(evalFit(abs, 0.5)).toBeCloseTo(0.375, 4);
    const relu = fitMinimax(activation('Relu'), [-1, 1], 2);
    expect(relu.maxError).toBeCloseTo(1 / 16, 4);
    // Best line to eˣ on [0, 1]: slope e − 1, error ½(e − (e − 1)·ln(e − 1)) − ½ ≈ 0.105933.
    const exp = fitMinimax(Math.exp, [0, 1], 1);
    expect(exp.maxError).toBeCloseTo(0.105933, 4);
  });

  it('the error never grows with the degree (any range, every activation)', () => {
    fc.assert(
      fc.property(fc.double({ min: -20, max: -0.5, noNaN: true }), fc.double({ min: 0.5, max: 20, noNaN: true }), fc.constantFrom('Relu', 'Sigmoid', 'Tanh', 'Gelu' as const), (a, b, op) => {
        const f = activation(op);
        let prev = Infinity;
        for (const d of [1, 2, 4, 8]) {
          const fit = fitMinimax(f, [a, b], d);
          expect(fit.maxError).toBeLessThanOrEqual(prev * (1 + 1e-6) + 1e-12);
          prev = fit.maxError;
        }
      }),
      { numRuns: 12 },
    );
  });

  it('chooseDegree takes the smallest degree meeting the target', () => {
    const f = activation('Relu');
    const fit = chooseDegree(f, [-3, 5], 0.1, 16);
    const d = fit.chebyshev.length - 1;
    expect(fit.maxError).toBeLessThanOrEqual(0.1);
    expect(fitMinimax(f, [-3, 5], d - 1).maxError).toBeGreaterThan(0.1);
    expect(chooseDegree(f, [-3, 5], 1e-9, 3).chebyshev.length).toBe(4);
  });

  it('the ONNX nodes compute the fit (monomials in t, depth 1 + ⌈log2 d⌉)', () => {
    const fit = fitMinimax(activation('Gelu'), [-4, 3], 7);
    const m = chebyshevToMonomial([0, 0, 0, 1]);
    expect(m).toEqual([0, -3, 0, 4]);
    const inits = new Map<string, Tensor>();
    const nodes = polynomialNodes({ op: 'Gelu', name: 'g', inputs: ['x'], outputs: ['y'], attrs: {} }, fit, inits);
    const xs = Float64Array.from({ length: 15 }, (_, i) => -4 + i / 2);
    const y = runPlain({ opset: 13, inputs: [{ name: 'x', dims: [null, 15] }], outputs: ['y'], initializers: inits, nodes }, { dims: [1, 15], data: xs });
    xs.forEach((x, i) => expect(y.data[i]!).toBeCloseTo(evalFit(fit, x), 9));
    expect(fitDepth(7)).toBe(4);
    expect(fitDepth(8)).toBe(4);
  });
});
