import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { defences, resetDefences } from '../core/defences.ts';
import { codeOf } from '../../test/helpers.ts';
import { PackingLayout } from './packing.ts';

// The slot-range invariant of PackingLayout.unpack (issue 12), on plaintext sums (no encryption
// needed: the check runs on decrypted plaintexts): honest sums always unpack; a slot pushed past
// C·(2^valueBits − 1), below C, or a carry past the last slot is AGGREGATE_OUT_OF_RANGE.

const layout = new PackingLayout(1024, { fractionalBits: 16, integerBits: 15, maxContributions: 1000 });
const valueMax = 2 ** 31 - 1; // |v| ≤ 2^(valueBits−1) − 1 in fixed-point units

function sumOf(contributions: readonly number[][]): bigint[] {
  const total: bigint[] = [];
  for (const values of contributions) {
    layout.pack(values.map((v) => v / 2 ** 16)).forEach((p, i) => (total[i] = (total[i] ?? 0n) + p));
  }
  return total;
}

describe('packed slot range check', () => {
  afterEach(() => resetDefences());

  it('honest sums of up to 50 contributions always unpack to the sum (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 60 }), fc.integer(), (c, len, seed) => {
        let s = seed >>> 0;
        const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s);
        const contributions = Array.from({ length: c }, () => Array.from({ length: len }, () => (rnd() % (2 * valueMax + 1)) - valueMax));
        const out = layout.unpack(sumOf(contributions), len, c);
        for (let i = 0; i < len; i++) expect(Math.round(out[i]! * 2 ** 16)).toBe(contributions.reduce((a, v) => a + v[i]!, 0));
      }),
      { numRuns: 60 },
    );
  });

  it('a slot outside [C, C·(2^valueBits − 1)] or bits above the last slot are refused; without the check they decode silently', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.integer({ min: 0, max: 23 }), fc.bigInt({ min: 1n, max: 1n << 40n }), (c, slot, excess) => {
        const honest = Array.from({ length: c }, () => Array.from({ length: 24 }, () => 0));
        const sums = sumOf(honest);
        const hi = BigInt(c) * ((1n << BigInt(layout.valueBits)) - 1n);
        const shift = BigInt(slot * layout.slotBits);
        const current = (sums[0]! >> shift) & ((1n << BigInt(layout.slotBits)) - 1n);
        const over = sums[0]! + (((hi - current + excess) & ((1n << BigInt(layout.slotBits)) - 1n)) << shift);
        const target = (over >> shift) & ((1n << BigInt(layout.slotBits)) - 1n);
        if (target <= hi && (over >> BigInt(24 * layout.slotBits)) === 0n) return; // wrapped back into range: not an overflow case
        expect(codeOf(() => layout.unpack([over], 24, c))).toBe('CIPHERML_E_AGGREGATE_OUT_OF_RANGE');
        defences.slotRangeCheck = false;
        expect(codeOf(() => layout.unpack([over], 24, c))).toBeUndefined();
        resetDefences();
      }),
      { numRuns: 80 },
    );
    const low = layout.pack([0, 0]);
    expect(codeOf(() => layout.unpack([low[0]! - (1n << 31n)], 2, 1))).toBe('CIPHERML_E_AGGREGATE_OUT_OF_RANGE');
    expect(codeOf(() => layout.unpack([low[0]! + (1n << BigInt(24 * layout.slotBits))], 2, 1))).toBe('CIPHERML_E_AGGREGATE_OUT_OF_RANGE');
  });
});
