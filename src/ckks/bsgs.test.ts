import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCipherMLError } from '../core/errors.ts';
import { chainSteps, rotationSchedule, rotationSwitches, setChainedSchedule, splitRotations } from './bsgs.ts';
import { CkksContext, diagonalSteps } from './context.ts';
import { setKernelEnabled } from './kernel.ts';
import { powerOfTwoSteps } from './keys.ts';

const SLOTS = 4096;
const keyed = (steps: readonly number[]) => (k: number): boolean => steps.includes(k);

describe('rotation schedules (pure)', () => {
  it('a dense band needs keys {1, B} chained, one per baby and giant direct, for the same key switches', () => {
    const rotations = Array.from({ length: 64 }, (_, i) => i);
    expect(chainSteps(rotations, 8, SLOTS)).toEqual([1, 8]);
    const { babies, giants } = splitRotations(rotations, 8);
    const chained = rotationSchedule(babies, giants, SLOTS, keyed([1, 8]));
    const direct = rotationSchedule(babies, giants, SLOTS, keyed(diagonalSteps(rotations, 8)));
    expect(chained.switches).toBe(14); // 7 babies + 7 giants
    expect(chained.giants).toBe('horner');
    expect(chained.babies.every((b) => b.step === 1 && b.from === b.baby - 1)).toBe(true);
    expect(direct.switches).toBe(14);
    // ±2^k keys, direct: each rotation chains its non-adjacent form (7 = 8 − 1, 24 = 32 − 8, …).
    const pow2 = keyed(powerOfTwoSteps(diagonalSteps(rotations, 8), SLOTS));
    setChainedSchedule(false);
    try {
      expect(rotationSchedule(babies, giants, SLOTS, pow2).switches).toBe(22);
    } finally {
      setChainedSchedule(true);
    }
    expect(rotationSchedule(babies, giants, SLOTS, pow2).switches).toBe(14);
  });

  it('counts a step and its equivalent modulo the slots alike, and Infinity without keys', () => {
    expect(rotationSwitches(SLOTS - 3, SLOTS, keyed([-3]))).toBe(1);
    expect(rotationSwitches(7, SLOTS, keyed([8, -1]))).toBe(2);
    expect(rotationSwitches(7, SLOTS, keyed([2]))).toBe(Infinity);
    expect(rotationSwitches(SLOTS, SLOTS, keyed([]))).toBe(0);
  });
});

describe('mulDiagonals with the chained schedule and the RNS kernel', () => {
  // Primes below 2^50 so the kernel applies; diagonals at rotations −3 … 12 on period 16. The
  // special prime is 9 bits above q0: an equal-size one leaves key-switching noise of about
  // N·σ·q0/P per rotation, 2.6e-3 (median of 12 random full-range W, x) against 1.2e-5 here.
  const P = 16;
  const rotations = Array.from({ length: P }, (_, i) => i - 3);
  let ctx: CkksContext;
  beforeAll(async () => {
    const steps = [...new Set([...chainSteps(rotations, 4, SLOTS), ...chainSteps(rotations, 5, SLOTS)])];
    ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [40, 30, 30, 49], scaleBits: 30 }, { galoisSteps: steps });
  });
  afterAll(() => ctx?.delete());
  const periodic = (f: (j: number) => number): Float64Array => Float64Array.from({ length: ctx.slotCount }, (_, j) => f(j % P));

  it('equals W·x with only the chain keys, and the kernel gives SEAL multiply_plain\'s ciphertext bit for bit (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: P * P, maxLength: P * P }), fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: P, maxLength: P }), fc.constantFrom(4, 5), (w, x, baby) => {
        const diagonals = rotations.map((r) => ({ rotation: r, values: periodic((i) => w[i * P + (((i + r) % P) + P) % P]!) }));
        using m = ctx.prepareDiagonals(diagonals, ctx.maxLevel, baby);
        using xv = ctx.encryptVector(periodic((i) => x[i]!));
        using y = ctx.mulDiagonals(xv, m);
        setKernelEnabled(false);
        let slow;
        try {
          slow = ctx.mulDiagonals(xv, m);
        } finally {
          setKernelEnabled(true);
        }
        using s = slow;
        const bytes = (v: typeof y): Buffer => Buffer.from(v.ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array);
        expect(bytes(y).equals(bytes(s))).toBe(true);
        const want = Array.from({ length: P }, (_, i) => x.reduce((acc, xj, j) => acc + w[i * P + j]! * xj, 0));
        const got = ctx.decryptVector(y, P);
        want.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThan(2e-4));
      }),
      // Each run costs up to 1.4 s of CKKS on a loaded machine: a failure reports its first counterexample instead of
      // shrinking for up to 1,000 more runs.
      { numRuns: 4, endOnFailure: true },
    );
  });

  it('the direct schedule cannot run on the chain keys (what the chained schedule saves)', () => {
    const diagonals = rotations.map((r) => ({ rotation: r, values: periodic((i) => i + r) }));
    using m = ctx.prepareDiagonals(diagonals, ctx.maxLevel, 4);
    using xv = ctx.encryptVector(periodic((i) => i / P));
    setChainedSchedule(false);
    try {
      ctx.mulDiagonals(xv, m).delete();
      expect.unreachable('the direct schedule found keys for every baby and giant');
    } catch (e) {
      expect(isCipherMLError(e) && e.code).toBe('CIPHERML_E_CKKS_GALOIS_KEY_MISSING');
    } finally {
      setChainedSchedule(true);
    }
  });
});
