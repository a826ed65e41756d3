import { CipherMLError } from '../core/errors.ts';
import type { GraphNode, Tensor } from './onnx.ts';

/**
 * Polynomial replacements of the activations CKKS cannot evaluate (Relu, Sigmoid, Tanh, Gelu).
 *
 * Fit: the minimax (best uniform) polynomial of degree d on the layer's calibrated range [a, b],
 * by the Remez exchange algorithm (E. Ya. Remez, 1934; as stated in L. N. Trefethen,
 * "Approximation Theory and Approximation Practice", SIAM 2013, ch. 10): on a reference of d + 2
 * points solve p(x_i) + (−1)^i E = f(x_i), move the reference to the alternating extrema of
 * p − f on a dense grid, repeat until the levelled error |E| and the true maximum agree. The
 * degree is the smallest in 1 … maxDegree whose maximum error is within the target, else
 * maxDegree (reported as missing the target).
 *
 * Weighted fit (the default in calibration): least squares in the Chebyshev basis, weighted by the
 * layer's calibrated input distribution: minimise (1 − λ)·mean_i (p(x_i) − f(x_i))² over the
 * calibration values x_i plus λ·mean_k (p(y_k) − f(y_k))² over Chebyshev points y_k of the whole
 * fitting range (λ = {@link UNIFORM_WEIGHT}: keeps p bounded on the range where calibration saw
 * few values). A network's accuracy depends on the error where its activations actually fall,
 * mostly near 0, not on the worst case at the range's edges: on the bundled LeNet-5 with Relu at
 * degree 4 per layer the weighted fits agree with the original's argmax on 97.6 % of 1,000 test
 * digits, the minimax fits on 95.7 % (docs/inference.md).
 *
 * Degree and depth: the evaluation below reaches any degree 2^k at k levels and costs no level for
 * the coefficients (the affine sum merges into the next layer's products), so a degree between
 * 2^(k−1) + 1 and 2^k costs the same depth as 2^k; the per-layer choice takes only degrees 2^k
 * (and maxDegree). For the same reason a composite p_2(p_1(t)) (Lee et al., "Minimax composite
 * polynomial approximation", 2021) cannot beat the single minimax or weighted fit of degree
 * deg p_1 · deg p_2 at the same depth here: it is one polynomial of that degree, and its depth
 * ⌈log2 deg p_1⌉ + ⌈log2 deg p_2⌉ is no smaller. Composites pay off for sign-like targets at
 * high precision (bootstrapped CKKS), not at the depths a leveled LeNet-5 allows.
 *
 * Evaluation: in the Chebyshev basis of t = (2x − a − b) / (b − a) ∈ [−1, 1], with T_0 = 1,
 * T_1 = t, T_2k = 2·T_k² − 1, T_2k+1 = 2·T_k·T_k+1 − t (depth ⌈log2 d⌉ products; every value
 * stays in [−1, 1] on the range, so the CKKS range analysis holds and the coefficients stay
 * small), then p = Σ c_j T_j, an affine combination that costs no level of its own.
 */

/** Activations the calibration replaces. */
export const ACTIVATIONS = ['Relu', 'Sigmoid', 'Tanh', 'Gelu'] as const;
/** One of {@link ACTIVATIONS}. */
export type ActivationOp = (typeof ACTIVATIONS)[number];

/** True when `op` is an activation the calibration replaces. */
export function isActivation(op: string): op is ActivationOp {
  return (ACTIVATIONS as readonly string[]).includes(op);
}

/** erf by Abramowitz–Stegun 7.1.26 refined with two Newton-free terms: |error| < 1.5e-7. */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

/**
 * The exact activation (Gelu with approximate = "none": x·Φ(x); "tanh" uses the tanh form).
 *
 * @example
 * ```ts
 * activation('Relu')(-1); // 0
 * ```
 */
export function activation(op: ActivationOp, node?: GraphNode): (x: number) => number {
  switch (op) {
    case 'Relu':
      return (x) => Math.max(0, x);
    case 'Sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    case 'Tanh':
      return Math.tanh;
    case 'Gelu':
      return node?.attrs['approximate'] === 'tanh' ? (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))) : (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  }
}

/** A fitted polynomial: Chebyshev coefficients on `range`. */
export interface ChebyshevFit {
  readonly range: readonly [number, number];
  /** c_0 … c_d of Σ c_j T_j(t), t = (2x − a − b)/(b − a). */
  readonly chebyshev: readonly number[];
  /** max |p(x) − f(x)| over a 2,001-point grid of the range. */
  readonly maxError: number;
}

const GRID = 2000;

/** T_0(t) … T_d(t). */
function chebyshevRow(t: number, d: number): number[] {
  const row = [1, t];
  for (let j = 2; j <= d; j++) row.push(2 * t * row[j - 1]! - row[j - 2]!);
  return row.slice(0, d + 1);
}

/**
 * Evaluates a fit at x.
 *
 * @example
 * ```ts
 * evalFit(fitMinimax((x) => Math.max(0, x), [-1, 1], 8), 0.5); // ≈ 0.5
 * ```
 */
export function evalFit(fit: Pick<ChebyshevFit, 'range' | 'chebyshev'>, x: number): number {
  const [a, b] = fit.range;
  const t = (2 * x - a - b) / (b - a);
  const row = chebyshevRow(t, fit.chebyshev.length - 1);
  return fit.chebyshev.reduce((s, c, j) => s + c * row[j]!, 0);
}

function solve(m: number[][], rhs: number[]): number[] {
  const n = rhs.length;
  const a = m.map((row, i) => [...row, rhs[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[piv]![col]!)) piv = r;
    [a[col], a[piv]] = [a[piv]!, a[col]!];
    const p = a[col]![col]!;
    if (Math.abs(p) < 1e-300) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the Remez system is singular', { param: 'calibration' });
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / p;
      if (f !== 0) for (let k = col; k <= n; k++) a[r]![k]! -= f * a[col]![k]!;
    }
  }
  return a.map((row, i) => row[n]! / row[i]!);
}

/** Lawson iterations (linear convergence; 400 bring the levelled error within ~1e-3 relative on the grid). */
const LAWSON_ITERATIONS = 400;

/** Minimax fit on the grid by Lawson's algorithm (see fitMinimax). */
function lawson(rows: readonly number[][], fx: readonly number[], d: number): { c: number[]; err: number } {
  const n = fx.length;
  let w = new Array<number>(n).fill(1 / n);
  let best: { c: number[]; err: number } = { c: new Array<number>(d + 1).fill(0), err: Infinity };
  for (let iter = 0; iter < LAWSON_ITERATIONS; iter++) {
    const gram = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
    const rhs = new Array<number>(d + 1).fill(0);
    for (let g = 0; g < n; g++) {
      const r = rows[g]!;
      const wg = w[g]!;
      if (wg === 0) continue;
      for (let i = 0; i <= d; i++) {
        rhs[i]! += wg * r[i]! * fx[g]!;
        for (let j = 0; j <= i; j++) gram[i]![j]! += wg * r[i]! * r[j]!;
      }
    }
    for (let i = 0; i <= d; i++) for (let j = i + 1; j <= d; j++) gram[i]![j] = gram[j]![i]!;
    const c = solve(gram, rhs);
    const e = rows.map((r, g) => Math.abs(r.reduce((s, v, j) => s + v * c[j]!, 0) - fx[g]!));
    const err = Math.max(...e);
    if (err < best.err) best = { c, err };
    const next = w.map((wg, g) => wg * e[g]!);
    const total = next.reduce((a, b) => a + b, 0);
    if (!(total > 0)) break;
    w = next.map((v) => v / total);
  }
  return best;
}

/**
 * Minimax polynomial of degree `degree` for f on `range` (Remez exchange, see the module comment).
 *
 * @example
 * ```ts
 * const fit = fitMinimax((x) => Math.max(0, x), [-4, 4], 7);
 * fit.maxError; // ≈ 0.15 (|x| has minimax error ≈ 0.28·R/d)
 * ```
 */
export function fitMinimax(f: (x: number) => number, range: readonly [number, number], degree: number): ChebyshevFit {
  const [a, b] = range;
  if (!(b > a)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `empty fitting range [${a}, ${b}]`, { param: 'calibration' });
  const d = degree;
  const xs = Array.from({ length: GRID + 1 }, (_, i) => -Math.cos((Math.PI * i) / GRID));
  const fx = xs.map((t) => f(((b - a) * t + a + b) / 2));
  const rows = xs.map((t) => chebyshevRow(t, d));
  // Initial reference: the d + 2 Chebyshev extrema, as grid indices.
  let ref = Array.from({ length: d + 2 }, (_, i) => Math.round((GRID * i) / (d + 1)));
  let best: { c: number[]; err: number } | undefined;
  let lastLevel = 0;
  for (let iter = 0; iter < 60; iter++) {
    const m = ref.map((g, i) => [...rows[g]!, i % 2 === 0 ? 1 : -1]);
    const sol = solve(m, ref.map((g) => fx[g]!));
    const c = sol.slice(0, d + 1);
    const level = Math.abs(sol[d + 1]!);
    const e = rows.map((r, g) => r.reduce((s, v, j) => s + v * c[j]!, 0) - fx[g]!);
    const err = Math.max(...e.map(Math.abs));
    if (best === undefined || err < best.err) best = { c, err };
    lastLevel = Math.max(lastLevel, level);
    if (err - level <= 1e-9 + 1e-6 * err) break;
    // New reference: one extremum per run of equal sign, then the d + 2 adjacent ones holding the global maximum.
    const ext: number[] = [];
    let g = 0;
    while (g <= GRID) {
      const s = Math.sign(e[g]!) || 1;
      let at = g;
      while (g <= GRID && (Math.sign(e[g]!) || 1) === s) {
        if (Math.abs(e[g]!) > Math.abs(e[at]!)) at = g;
        g++;
      }
      ext.push(at);
    }
    if (ext.length < d + 2) break;
    let start = 0;
    let bestSum = -1;
    for (let s = 0; s + d + 2 <= ext.length; s++) {
      const window = ext.slice(s, s + d + 2);
      const sum = Math.min(...window.map((i) => Math.abs(e[i]!)));
      const holdsMax = window.some((i) => Math.abs(e[i]!) === err);
      const score = (holdsMax ? 1e9 : 0) + sum;
      if (score > bestSum) {
        bestSum = score;
        start = s;
      }
    }
    ref = ext.slice(start, start + d + 2);
  }
  // The exchange can stall on degenerate alternation sets (e.g. |x| or Relu on a range symmetric
  // about 0, where a best fit of degree d is also one of degree d − 1 and the reference collapses).
  // Then Lawson's algorithm (C. L. Lawson, 1961: iteratively reweighted least squares on the grid,
  // w ← w·|e|, which converges to the minimax fit) finishes from the exchange's best weights.
  const stalled = best!.err - lastLevel > 1e-3 * best!.err + 1e-9;
  if (stalled) {
    const law = lawson(rows, fx, d);
    if (law.err < best!.err) best = law;
  }
  // Where the exchange did not level the error, never return worse than degree d − 1.
  if (stalled && d > 1) {
    const lower = fitMinimax(f, range, d - 1);
    if (lower.maxError < best!.err) return { range: [a, b], chebyshev: [...lower.chebyshev, 0], maxError: lower.maxError };
  }
  return { range: [a, b], chebyshev: best!.c, maxError: best!.err };
}

/** Weight of the uniform (Chebyshev-point) term in {@link fitWeighted}. */
export const UNIFORM_WEIGHT = 0.01;

/** Chebyshev points of the fitting range used by the uniform term of {@link fitWeighted}. */
const UNIFORM_POINTS = 400;

/** Calibration values a weighted fit uses at most (an even stride through more; give a uniform sample: a stride can alias with a tensor layout). */
const MAX_FIT_SAMPLES = 40000;

/**
 * Least-squares fit of degree `degree` to f on `range`, weighted by the calibration values
 * `samples` (see the module comment): (1 − λ) on the samples (clamped into the range), λ =
 * `uniformWeight` on Chebyshev points of the range.
 *
 * @example
 * ```ts
 * const fit = fitWeighted((x) => Math.max(0, x), [-4, 4], 4, layerInputs);
 * fit.maxError; // over the whole range; meanAbsError(fit, f, layerInputs) where the values fall
 * ```
 */
export function fitWeighted(f: (x: number) => number, range: readonly [number, number], degree: number, samples: ArrayLike<number>, uniformWeight: number = UNIFORM_WEIGHT): ChebyshevFit {
  const [a, b] = range;
  if (!(b > a)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `empty fitting range [${a}, ${b}]`, { param: 'calibration' });
  if (!(uniformWeight > 0 && uniformWeight <= 1)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `uniform weight ${uniformWeight} is not in (0, 1]`, { param: 'uniformWeight' });
  const d = degree;
  const gram = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
  const rhs = new Array<number>(d + 1).fill(0);
  const add = (t: number, w: number): void => {
    const row = chebyshevRow(t, d);
    const y = f(((b - a) * t + a + b) / 2) * w;
    for (let i = 0; i <= d; i++) {
      rhs[i]! += row[i]! * y;
      for (let j = 0; j <= i; j++) gram[i]![j]! += w * row[i]! * row[j]!;
    }
  };
  const step = Math.max(1, Math.ceil(samples.length / MAX_FIT_SAMPLES));
  const used = Math.ceil(samples.length / step);
  const wSample = used === 0 ? 0 : (1 - uniformWeight) / used;
  for (let i = 0; i < samples.length; i += step) add(Math.max(-1, Math.min(1, (2 * samples[i]! - a - b) / (b - a))), wSample);
  const wUniform = used === 0 ? 1 / (UNIFORM_POINTS + 1) : uniformWeight / (UNIFORM_POINTS + 1);
  for (let k = 0; k <= UNIFORM_POINTS; k++) add(-Math.cos((Math.PI * k) / UNIFORM_POINTS), wUniform);
  for (let i = 0; i <= d; i++) for (let j = i + 1; j <= d; j++) gram[i]![j] = gram[j]![i]!;
  const c = solve(gram, rhs);
  return { range: [a, b], chebyshev: c, maxError: gridError(f, [a, b], c) };
}

/** max |p − f| on the {@link GRID}-point grid of the range. */
function gridError(f: (x: number) => number, range: readonly [number, number], c: readonly number[]): number {
  let err = 0;
  for (let i = 0; i <= GRID; i++) {
    const x = range[0] + ((range[1] - range[0]) * i) / GRID;
    err = Math.max(err, Math.abs(evalFit({ range, chebyshev: c }, x) - f(x)));
  }
  return err;
}

/**
 * Mean |p(x) − f(x)| over calibration values (an even stride of at most 40,000 of them).
 *
 * @example
 * ```ts
 * meanAbsError(fit, (x) => Math.max(0, x), layerInputs);
 * ```
 */
export function meanAbsError(fit: Pick<ChebyshevFit, 'range' | 'chebyshev'>, f: (x: number) => number, samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  const step = Math.max(1, Math.ceil(samples.length / MAX_FIT_SAMPLES));
  let s = 0;
  let n = 0;
  for (let i = 0; i < samples.length; i += step, n++) s += Math.abs(evalFit(fit, samples[i]!) - f(samples[i]!));
  return s / n;
}

/**
 * The same fit with the constant shifted so that p(0) = 0 (HE-MAN's `--relu-mode degN_no_offset`:
 * the constant monomial in x dropped). The max error is re-measured.
 *
 * @example
 * ```ts
 * evalFit(withoutOffset(fit, (x) => Math.max(0, x)), 0); // 0
 * ```
 */
export function withoutOffset(fit: ChebyshevFit, f: (x: number) => number): ChebyshevFit {
  const c = [...fit.chebyshev];
  c[0]! -= evalFit(fit, 0);
  return { range: fit.range, chebyshev: c, maxError: gridError(f, fit.range, c) };
}

/**
 * Per-layer degree from a target error: the smallest degree 2^k (k = 0, 1, …; and maxDegree
 * itself) whose `error` is at most `target`, else maxDegree. Only 2^k: every degree in
 * 2^(k−1) + 1 … 2^k costs the same depth (see {@link fitDepth}), and the highest of them fits best.
 *
 * @example
 * ```ts
 * chooseDegree((d) => fitMinimax((x) => Math.max(0, x), [-2, 6], d), (fit) => fit.maxError, 0.05, 16);
 * ```
 */
export function chooseDegree(fitAt: (degree: number) => ChebyshevFit, error: (fit: ChebyshevFit) => number, target: number, maxDegree: number): ChebyshevFit {
  let fit = fitAt(1);
  for (let d = 2; error(fit) > target && d / 2 < maxDegree; d *= 2) fit = fitAt(Math.min(d, maxDegree));
  return fit;
}

/** Monomial coefficients in t of Σ c_j T_j(t) (T_j+1 = 2t·T_j − T_j−1). */
export function chebyshevToMonomial(c: readonly number[]): number[] {
  const d = c.length - 1;
  const out = new Array<number>(d + 1).fill(0);
  let prev = [1];
  let cur = [0, 1];
  out[0]! += c[0]!;
  if (d >= 1) out[1]! += c[1]!;
  for (let j = 2; j <= d; j++) {
    const next = new Array<number>(j + 1).fill(0);
    cur.forEach((v, k) => (next[k + 1]! += 2 * v));
    prev.forEach((v, k) => (next[k]! -= v));
    next.forEach((v, k) => (out[k]! += c[j]! * v));
    [prev, cur] = [cur, next];
  }
  return out;
}

/**
 * Multiplicative depth of the evaluation in {@link polynomialNodes}: one level for t (an affine
 * map of x), ⌈log2 d⌉ for the powers of t; the final sum is affine and merges into the next layer.
 */
export function fitDepth(degree: number): number {
  return degree <= 1 ? 0 : 1 + Math.ceil(Math.log2(degree));
}

/**
 * Standard ONNX nodes computing the fit on node `n`'s input into its output (Mul/Add/Sub only, so
 * onnxruntime runs the calibrated model as well): t = (2x − a − b)/(b − a), powers t^k by
 * balanced products (|t^k| ≤ 1 on the range, so they add nothing to the CKKS range analysis),
 * then Σ m_k t^k with the fit's monomial coefficients in t.
 *
 * @example
 * ```ts
 * nodes.push(...polynomialNodes(reluNode, fit, initializers));
 * ```
 */
export function polynomialNodes(n: GraphNode, fit: ChebyshevFit, inits: Map<string, Tensor>): GraphNode[] {
  const x = n.inputs[0]!;
  const out = n.outputs[0]!;
  const [a, b] = fit.range;
  const name = (s: string): string => `${n.name}/poly_${s}`;
  const scalar = (v: number, tag: string): string => {
    const id = name(tag);
    inits.set(id, { dims: [], data: Float64Array.of(v) });
    return id;
  };
  const nodes: GraphNode[] = [];
  const op = (kind: 'Mul' | 'Add' | 'Sub', p: string, q: string, tag: string): string => {
    const o = name(tag);
    nodes.push({ op: kind, name: o, inputs: [p, q], outputs: [o], attrs: {} });
    return o;
  };
  const m = chebyshevToMonomial(fit.chebyshev);
  const t = op('Sub', op('Mul', x, scalar(2 / (b - a), 'k'), 'tx'), scalar((a + b) / (b - a), 'm'), 't');
  const powers = new Map<number, string>([[1, t]]);
  const power = (k: number): string => {
    const have = powers.get(k);
    if (have !== undefined) return have;
    const h = 2 ** Math.floor(Math.log2(k));
    const r = h === k ? op('Mul', power(k / 2), power(k / 2), `t${k}`) : op('Mul', power(h), power(k - h), `t${k}`);
    powers.set(k, r);
    return r;
  };
  // Every power first: t is then a ciphertext (t² needed it) before the degree-1 term uses it, so
  // the plans take that term from the ciphertext instead of expanding t's affine form (which
  // composed through the next layers grows with the product of their fan-ins).
  for (let k = 2; k < m.length; k++) if (m[k] !== 0) power(k);
  let acc: string | undefined;
  for (let k = 1; k < m.length; k++) {
    if (m[k] === 0) continue;
    const term = op('Mul', power(k), scalar(m[k]!, `c${k}`), `term${k}`);
    acc = acc === undefined ? term : op('Add', acc, term, `sum${k}`);
  }
  nodes.push({ op: 'Add', name: name('out'), inputs: [acc ?? op('Mul', t, scalar(0, 'zero'), 'z'), scalar(m[0] ?? 0, 'c0')], outputs: [out], attrs: {} });
  return nodes;
}
