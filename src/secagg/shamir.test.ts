import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { MAX_SHARE_X, SHARE_BYTES, reconstructSecret, shareFromBytes, shareToBytes, splitSecret } from './shamir.ts';
import type { Share } from './shamir.ts';
import { FIELD_PRIME, fieldAdd, fieldMul } from './field.ts';
import { bigintToBytes, bytesToBigint } from '../core/bigmath/bigint.ts';
import { isCipherMLError } from '../core/errors.ts';
import { codeOf, paramOf } from '../../test/helpers.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('splitSecret / reconstructSecret', () => {
  it('interpolates a hand-made degree-2 polynomial (fixed shares, no randomness)', () => {
    // f(x) = s + 3x + 5x² with s the encoding of [0x00, 0xab] = bytes [2, 0, 0xab].
    const s = bytesToBigint(Uint8Array.of(2, 0x00, 0xab));
    const f = (x: number): bigint => fieldAdd(fieldAdd(s, fieldMul(3n, BigInt(x))), fieldMul(5n, BigInt(x * x)));
    const shares: Share[] = [7, 1, 1000].map((x) => ({ x, y: f(x) }));
    expect(reconstructSecret(shares, 2)).toEqual(Uint8Array.of(0x00, 0xab));
  });

  it('round-trips any 1..64-byte secret from any degree+1 of n ≤ 30 shares (degrees 1..10)', () => {
    const arb = fc
      .record({
        secret: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        degree: fc.integer({ min: 1, max: 10 }),
        extra: fc.integer({ min: 0, max: 19 }),
        pool: fc.uniqueArray(fc.integer({ min: 1, max: MAX_SHARE_X }), { minLength: 30, maxLength: 30 }),
      })
      .chain(({ secret, degree, extra, pool }) => {
        const xs = pool.slice(0, degree + 1 + extra);
        return fc.record({
          secret: fc.constant(secret),
          degree: fc.constant(degree),
          xs: fc.constant(xs),
          pick: fc.shuffledSubarray(range(xs.length).map((i) => i - 1), { minLength: degree + 1, maxLength: degree + 1 }),
        });
      });
    fc.assert(
      fc.property(arb, ({ secret, degree, xs, pick }) => {
        const shares = splitSecret(secret, xs, degree);
        expect(shares.map((s) => s.x)).toEqual(xs);
        for (const s of shares) expect(s.y >= 0n && s.y < FIELD_PRIME).toBe(true);
        expect(reconstructSecret(pick.map((i) => shares[i]!), degree)).toEqual(secret);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps leading zero bytes and handles 1 and 64 bytes', () => {
    for (const secret of [new Uint8Array(1), new Uint8Array(32), new Uint8Array(64).fill(0xff), Uint8Array.of(0, 0, 1)]) {
      const shares = splitSecret(secret, [1, 2, 3], 2);
      expect(reconstructSecret(shares, 2)).toEqual(secret);
    }
  });

  it('uses only the first degree+1 shares', () => {
    const secret = randomBytes(32);
    const shares = splitSecret(secret, range(6), 2);
    const junk = { x: 6, y: 12345n }; // not on the polynomial, but beyond degree+1: ignored
    expect(reconstructSecret([...shares.slice(0, 3), junk], 2)).toEqual(new Uint8Array(secret));
  });

  it('draws a fresh polynomial every time', () => {
    const secret = randomBytes(32);
    const a = splitSecret(secret, [1, 2], 1);
    const b = splitSecret(secret, [1, 2], 1);
    expect(a[0]!.y).not.toBe(b[0]!.y);
  });

  // "degree shares reveal nothing" is information-theoretic (for any candidate secret there is
  // exactly one consistent polynomial), so sampling cannot check it; not tested here.

  it('refuses fewer than degree+1 shares', () => {
    const shares = splitSecret(randomBytes(16), range(5), 3);
    expect(codeOf(() => reconstructSecret(shares.slice(0, 3), 3))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    try {
      reconstructSecret(shares.slice(0, 3), 3);
    } catch (e) {
      expect(isCipherMLError(e) && e.param).toBe('shares');
      expect(String(e)).toContain('need ≥ degree+1');
    }
  });

  it('never returns the original secret from a tampered share (documented: FORMAT_CORRUPT or a wrong secret)', () => {
    // Changing y_i by δ moves f(0) by δ·λ_i with Lagrange coefficient λ_i ≠ 0, and the encoding is
    // injective, so the original secret cannot come back. Almost always the result fails the
    // length-prefix check (FORMAT_CORRUPT); in rare cases it decodes to some other byte string.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 1n, max: FIELD_PRIME - 1n }), (secret, which, delta) => {
        const shares = splitSecret(secret, [11, 22, 33, 44], 3);
        const tampered = shares.map((s, i) => (i === which ? { x: s.x, y: fieldAdd(s.y, delta) } : s));
        let out: Uint8Array | undefined;
        const code = codeOf(() => (out = reconstructSecret(tampered, 3)));
        if (code === undefined) expect(out).not.toEqual(secret);
        else expect(code).toBe('CIPHERML_E_FORMAT_CORRUPT');
      }),
      { numRuns: 200 },
    );
    // A wrong (too small) degree gives a wrong constant term as well.
    const shares = splitSecret(randomBytes(32), range(4), 3);
    expect(codeOf(() => reconstructSecret(shares, 2))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });

  it('rejects bad arguments with typed errors naming the parameter', () => {
    const s = randomBytes(8);
    expect(paramOf(() => splitSecret(new Uint8Array(0), [1, 2], 1))).toBe('secret');
    expect(paramOf(() => splitSecret(new Uint8Array(65), [1, 2], 1))).toBe('secret');
    expect(paramOf(() => splitSecret(s, [1, 2], 0))).toBe('degree');
    expect(paramOf(() => splitSecret(s, [1, 2], 1.5))).toBe('degree');
    expect(paramOf(() => splitSecret(s, [1, 2], 2))).toBe('xs');
    expect(paramOf(() => splitSecret(s, [1, 0], 1))).toBe('xs[1]');
    expect(paramOf(() => splitSecret(s, [1, MAX_SHARE_X + 1], 1))).toBe('xs[1]');
    expect(paramOf(() => splitSecret(s, [1, 2.5], 1))).toBe('xs[1]');
    expect(paramOf(() => splitSecret(s, [3, 4, 3], 1))).toBe('xs[2]');
    const shares = splitSecret(s, [1, 2, 3], 1);
    expect(paramOf(() => reconstructSecret([shares[0]!, shares[0]!], 1))).toBe('shares[1].x');
    expect(paramOf(() => reconstructSecret([shares[0]!, { x: 2, y: FIELD_PRIME }], 1))).toBe('shares[1].y');
    expect(paramOf(() => reconstructSecret([shares[0]!, { x: 0, y: 1n }], 1))).toBe('shares[1].x');
    expect(paramOf(() => reconstructSecret(shares, 0))).toBe('degree');
  });
});

describe('shareToBytes / shareFromBytes', () => {
  it('round-trips 70-byte shares', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_SHARE_X }), fc.bigInt({ min: 0n, max: FIELD_PRIME - 1n }), (x, y) => {
        const b = shareToBytes({ x, y });
        expect(b.length).toBe(SHARE_BYTES);
        expect(shareFromBytes(b)).toEqual({ x, y });
      }),
    );
    expect(Array.from(shareToBytes({ x: 0x01020304, y: 5n }).subarray(0, 4))).toEqual([1, 2, 3, 4]);
  });

  it('parses from an unaligned view', () => {
    const inner = shareToBytes({ x: 9, y: 77n });
    const buf = new Uint8Array(inner.length + 3);
    buf.set(inner, 3);
    expect(shareFromBytes(buf.subarray(3))).toEqual({ x: 9, y: 77n });
  });

  it('rejects wrong lengths, x outside [1, 2^31 − 1] and y ≥ P as FORMAT_CORRUPT', () => {
    const good = shareToBytes({ x: 3, y: 4n });
    expect(codeOf(() => shareFromBytes(good.subarray(0, 69)))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => shareFromBytes(new Uint8Array(71)))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const zeroX = good.slice();
    zeroX.set([0, 0, 0, 0], 0);
    expect(codeOf(() => shareFromBytes(zeroX))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const bigX = good.slice();
    bigX.set([0x80, 0, 0, 0], 0);
    expect(codeOf(() => shareFromBytes(bigX))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const bigY = good.slice();
    bigY.set(bigintToBytes(FIELD_PRIME, 66), 4);
    expect(codeOf(() => shareFromBytes(bigY))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => shareToBytes({ x: 0, y: 1n }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => shareToBytes({ x: 1, y: -1n }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});
