import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activation, chebyshevToMonomial, chooseDegree, evalFit, fitDepth, fitMinimax, fitWeighted, meanAbsError, polynomialNodes, withoutOffset } from './activations.ts';
import { runPlain } from './execute.ts';
import type { Tensor } from './onnx.ts';

const relu = activation('Relu');

/** Alternating extrema of p − f on a fine grid whose magnitude is within `tol` of the max. */
function alternations(fit: ReturnType<typeof fitMinimax>, f: (x: number) => number, tol: number): number {
  const [a, b] = fit.range;
  const n = 20000;
  const e = Array.from({ length: n + 1 }, (_, i) => {
    const x = a + ((b - a) * i) / n;
    return evalFit(fit, x) - f(x);
  });
  const max = Math.max(...e.map(Math.abs));
  let count = 0;
  let sign = 0;
  for (const v of e) {
    if (Math.abs(v) < (1 - tol) * max) continue;
    const s = Math.sign(v);
    if (s !== sign) {
      count++;
      sign = s;
    }
  }
  return count;
}

describe('minimax fits (Remez exchange, Lawson where the exchange stalls)', () => {
  it('known answers: |x| and Relu at degree 2 on [−1, 1], eˣ at degree 1 on [0, 1]', () => {
    // Best quadratic to |x| on [−1, 1]: x² + 1/8, error 1/8 (Trefethen, ATAP ch. 10).
    const abs = fitMinimax(Math.abs, [-1, 1], 2);
    expect(abs.maxError).toBeCloseTo(1 / 8, 4);
    expect(evalFit(abs, 0)).toBeCloseTo(1 / 8, 4);
    expect(evalFit(abs, 0.5)).toBeCloseTo(0.375, 4);
    expect(fitMinimax(relu, [-1, 1], 2).maxError).toBeCloseTo(1 / 16, 4);
    // Degree 1: the best line to |x| is the constant 1/2, so Relu = (x + |x|)/2 gets 1/4.
    expect(fitMinimax(relu, [-1, 1], 1).maxError).toBeCloseTo(1 / 4, 4);
    // Best line to eˣ on [0, 1]: slope e − 1, error ½(e − (e − 1)·ln(e − 1)) − ½ ≈ 0.105933.
    const exp = fitMinimax(Math.exp, [0, 1], 1);
    expect(exp.maxError).toBeCloseTo(0.105933, 4);
  });

  it('Relu on [−1, 1] at degrees 4, 8, 16: equioscillation (optimal), and Bernstein\'s constant', () => {
    // Chebyshev's alternation theorem: p is the best fit of degree d iff p − f takes its max
    // magnitude with alternating signs at d + 2 points (checked within 1 % on a fine grid).
    // Relu's best fits equal (x + best fit of |x|)/2, and d·E_d(|x|) → β = 0.2801694990… (S. N.
    // Bernstein, 1914; Varga & Carpenter, 1985), so d·E_d(Relu) → β/2 from below.
    const errors: number[] = [];
    for (const d of [4, 8, 16]) {
      const fit = fitMinimax(relu, [-1, 1], d);
      expect(alternations(fit, relu, 0.01)).toBeGreaterThanOrEqual(d + 2);
      errors.push(fit.maxError);
    }
    expect(errors[0]! / errors[1]!).toBeGreaterThan(1.8);
    expect(errors[1]! / errors[2]!).toBeGreaterThan(1.9);
    expect(16 * errors[2]!).toBeGreaterThan(0.98 * (0.2801694990 / 2));
    expect(16 * errors[2]!).toBeLessThan(0.2801694990 / 2);
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

  it('chooseDegree takes the smallest degree 2^k meeting the target', () => {
    const at = (d: number): ReturnType<typeof fitMinimax> => fitMinimax(relu, [-3, 5], d);
    const fit = chooseDegree(at, (f) => f.maxError, 0.1, 16);
    const d = fit.chebyshev.length - 1;
    expect(Number.isInteger(Math.log2(d))).toBe(true);
    expect(fit.maxError).toBeLessThanOrEqual(0.1);
    expect(at(d / 2).maxError).toBeGreaterThan(0.1);
    // Unreachable target: maxDegree, even when it is not a power of two.
    expect(chooseDegree(at, (f) => f.maxError, 1e-9, 3).chebyshev.length).toBe(4);
  });
});

describe('weighted fits (least squares on the calibrated inputs)', () => {
  // Inputs concentrated near 0 (as a layer's pre-activations are), range set by rare outliers.
  const inputs = Array.from({ length: 5000 }, (_, i) => 0.6 * Math.tan(Math.PI * ((i + 0.5) / 5000 - 0.5) * 0.9));
  const lo = Math.min(...inputs);
  const hi = Math.max(...inputs);

  it('beat the minimax fit of the same degree where the inputs fall, stay bounded on the range', () => {
    for (const d of [2, 4, 8]) {
      const w = fitWeighted(relu, [lo, hi], d, inputs);
      const m = fitMinimax(relu, [lo, hi], d);
      expect(meanAbsError(w, relu, inputs)).toBeLessThan(meanAbsError(m, relu, inputs));
      // The minimax fit is the best in max error; the weighted one pays for its mean error there.
      expect(w.maxError).toBeGreaterThanOrEqual(m.maxError * (1 - 1e-6));
      expect(w.maxError).toBeLessThan(relu(hi));
    }
  });

  it('is exact for a polynomial target of at most its degree (any weights), and the uniform-only fit is the Chebyshev least-squares fit', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }), fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 0, maxLength: 50 }), (c, xs) => {
        const f = (x: number): number => c[0]! + c[1]! * x + c[2]! * x * x;
        const fit = fitWeighted(f, [-5, 5], 2, xs);
        expect(fit.maxError).toBeLessThan(1e-9 * (1 + Math.abs(c[0]!) + 5 * Math.abs(c[1]!) + 25 * Math.abs(c[2]!)));
      }),
      { numRuns: 25 },
    );
    // With no samples, Chebyshev-point least squares ≈ Chebyshev interpolation: for Relu on [−1, 1]
    // the coefficient of T_1 is exactly 1/2 (Relu − x/2 = |x|/2 is even).
    expect(fitWeighted(relu, [-1, 1], 4, []).chebyshev[1]).toBeCloseTo(0.5, 9);
  });

  it('withoutOffset: p(0) = 0, the rest of the polynomial unchanged', () => {
    const fit = fitWeighted(relu, [-2, 3], 4, inputs);
    const z = withoutOffset(fit, relu);
    expect(evalFit(z, 0)).toBeCloseTo(0, 12);
    for (const x of [-2, -0.5, 1, 3]) expect(evalFit(z, x) - evalFit(fit, x)).toBeCloseTo(-evalFit(fit, 0), 12);
  });
});

describe('evaluation', () => {
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
