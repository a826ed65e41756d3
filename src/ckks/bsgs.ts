import { binaryTerms, naf } from './keys.ts';

/**
 * Rotation schedules for the baby-step/giant-step matrix product (Halevi–Shoup, CRYPTO 2014,
 * §4.1): y = Σ_g rot(Σ_b diag'_{g,b} ⊙ rot(x, b), g), rotations r = g + b, g a multiple of B,
 * 0 ≤ b < B.
 *
 * Without hoisting every rotation is one key switch, so the count of key switches is fixed by the
 * number of distinct babies and giants; what the key set decides is how many key switches each
 * rotation takes. Two ways to reach each rotated ciphertext:
 *
 * - direct: rot(x, b) and rot(inner_g, g) with a key per baby and per giant (as many keys as
 *   rotations);
 * - chained: babies in increasing order, each rotated from the previous baby by the difference
 *   (1 for a dense band), and giants by Horner's rule, acc ← rot(acc, g_{i+1} − g_i) + inner_{g_i}
 *   from the largest giant down, then one rotation by the smallest giant (differences B for a
 *   dense band). The same count of key switches with a handful of keys: {@link chainSteps}.
 *
 * Each rotation takes the cheaper of the two given the keys present (a step without its own key
 * costs its non-adjacent-form or binary chain, as CkksContext.rotate does).
 */

let chainedEnabled = true;

/**
 * @internal Turns the chained schedule off (true: on again) for this thread, so that benchmarks
 * and tests can compare against the direct one. Returns the previous setting.
 */
export function setChainedSchedule(on: boolean): boolean {
  const was = chainedEnabled;
  chainedEnabled = on;
  return was;
}

/** A rotation amount reduced into (−slots, slots): 0 for a multiple of `slots`. */
export function wrapStep(step: number, slots: number): number {
  return step % slots;
}

/** The other amount in (−slots, slots) with the same Galois element (s and s ∓ slots rotate alike). */
export function equivalentStep(step: number, slots: number): number {
  return step > 0 ? step - slots : step + slots;
}

/**
 * Key switches a rotation by `step` takes with keys `has`: 0 for the identity, 1 with its own key,
 * else the length of its non-adjacent form or binary chain when those keys exist, else Infinity.
 *
 * @example
 * ```ts
 * rotationSwitches(3, 4096, (k) => k === 1 || k === 2 || k === 4 || k === -1); // 2 (4 − 1)
 * ```
 */
export function rotationSwitches(step: number, slots: number, has: (k: number) => boolean): number {
  const s = wrapStep(step, slots);
  if (s === 0) return 0;
  if (has(s) || has(equivalentStep(s, slots))) return 1;
  const signed = naf(s).map((t) => t % slots).filter((t) => t !== 0);
  if (signed.length > 0 && signed.every(has)) return signed.length;
  const bin = binaryTerms(s, slots);
  if (bin.length > 0 && bin.every(has)) return bin.length;
  return Infinity;
}

/** Babies and giants of rotations r under baby step B: r = g + b, 0 ≤ b < B, both sorted and distinct. */
export function splitRotations(rotations: readonly number[], babyStep: number): { babies: number[]; giants: number[] } {
  const babies = new Set<number>();
  const giants = new Set<number>();
  for (const r of rotations) {
    const b = ((r % babyStep) + babyStep) % babyStep;
    babies.add(b);
    giants.add(r - b);
  }
  const asc = (a: number, b: number): number => a - b;
  return { babies: [...babies].sort(asc), giants: [...giants].sort(asc) };
}

/** How one matrix product reaches its rotated ciphertexts (see the module comment). */
export interface RotationSchedule {
  /** For each non-zero baby, in increasing order: rotate `from` (0: the input) by `step`. */
  readonly babies: readonly { readonly baby: number; readonly from: number; readonly step: number }[];
  /** `horner`: giants by Horner's rule with the differences; `direct`: each inner sum by its giant. */
  readonly giants: 'horner' | 'direct';
  /** Key switches of the whole product. */
  readonly switches: number;
}

/**
 * The cheapest schedule for babies and giants (as {@link splitRotations} returns them) with keys
 * `has`; `switches` is Infinity when some rotation has no keys at all.
 *
 * @example
 * ```ts
 * rotationSchedule([0, 1, 2], [0, 3, 6], 4096, (k) => k === 1 || k === 3).switches; // 4
 * ```
 */
export function rotationSchedule(babies: readonly number[], giants: readonly number[], slots: number, has: (k: number) => boolean): RotationSchedule {
  const out: { baby: number; from: number; step: number }[] = [];
  let switches = 0;
  let prev = 0;
  for (const b of babies) {
    if (b === 0) continue;
    const direct = rotationSwitches(b, slots, has);
    const chained = chainedEnabled ? rotationSwitches(b - prev, slots, has) : Infinity;
    if (chained < direct) out.push({ baby: b, from: prev, step: wrapStep(b - prev, slots) });
    else out.push({ baby: b, from: 0, step: wrapStep(b, slots) });
    switches += Math.min(direct, chained);
    prev = b;
  }
  let direct = 0;
  for (const g of giants) direct += rotationSwitches(g, slots, has);
  let horner = !chainedEnabled ? Infinity : giants.length > 0 ? rotationSwitches(giants[0]!, slots, has) : 0;
  for (let i = 1; i < giants.length; i++) horner += rotationSwitches(giants[i]! - giants[i - 1]!, slots, has);
  return { babies: out, giants: horner < direct ? 'horner' : 'direct', switches: switches + Math.min(horner, direct) };
}

/**
 * Galois steps of the chained schedule for diagonals at these rotation amounts with baby step B:
 * the differences of consecutive babies and of consecutive giants, and the smallest giant. For a
 * dense band of rotations this is {1, B, g_min}: three keys where the direct schedule needs one per
 * baby and giant ({@link diagonalSteps}), for the same key switches.
 *
 * @example
 * ```ts
 * chainSteps([0, 1, 2, 3, 4, 5, 6, 7], 4, 4096); // [1, 4]
 * ```
 */
export function chainSteps(rotations: readonly number[], babyStep: number, slots: number): number[] {
  const { babies, giants } = splitRotations(rotations, babyStep);
  const out = new Set<number>();
  const add = (s: number): void => {
    const w = wrapStep(s, slots);
    if (w !== 0) out.add(w);
  };
  for (let i = 1; i < babies.length; i++) add(babies[i]! - babies[i - 1]!);
  if (babies.length > 0) add(babies[0]!);
  for (let i = 1; i < giants.length; i++) add(giants[i]! - giants[i - 1]!);
  if (giants.length > 0) add(giants[0]!);
  return [...out].sort((a, b) => a - b);
}
