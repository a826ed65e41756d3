import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { DEFAULT_SECURITY_POLICY as P, checkAnnouncedParameters, log2BinomialTail, privacyThreshold, secAggPlusParameters } from './params.ts';

describe('secure aggregation parameters (Bell et al. 2020 bounds)', () => {
  it('binomial tails: known answers', () => {
    // Pr[Bin(10, 1/2) ≥ 10] = 2^-10; Pr[Bin(4, 1/2) ≥ 2] = 11/16.
    expect(log2BinomialTail(10, 0.5, 10)).toBeCloseTo(-10, 9);
    expect(2 ** log2BinomialTail(4, 0.5, 2)).toBeCloseTo(11 / 16, 12);
    expect(log2BinomialTail(5, 0.3, 0)).toBe(0);
    expect(log2BinomialTail(5, 0.3, 6)).toBe(-Infinity);
  });

  it('known answers for the defaults γ = 1/3, δ = 0.1, σ = 40 (docs/secagg.md states these)', () => {
    expect(secAggPlusParameters(100, P)).toEqual({ degree: 99, threshold: 51, complete: true });
    expect(secAggPlusParameters(1000, P)).toEqual({ degree: 116, threshold: 81, complete: false });
    expect(secAggPlusParameters(10_000, P)).toEqual({ degree: 124, threshold: 86, complete: false });
    expect(secAggPlusParameters(1000, { ...P, corruptFraction: 0.1 })).toEqual({ degree: 46, threshold: 26, complete: false });
  });

  it('the derived (k, t) meet all three conditions, and t − 1 would not (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 50_000 }), fc.double({ min: 0.01, max: 0.34, noNaN: true }), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.integer({ min: 20, max: 60 }), (n, g, d, s) => {
        const policy = { corruptFraction: g, dropoutRate: d, statisticalSecurity: s, collusion: false };
        const { degree: k, threshold: t, complete } = secAggPlusParameters(n, policy);
        if (complete) return;
        const lg = Math.log2(n);
        expect(lg + (k / 2) * Math.log2(g + d)).toBeLessThanOrEqual(-s + 1e-9);
        expect(lg + log2BinomialTail(k, g, t + 1)).toBeLessThanOrEqual(-s + 1e-9);
        expect(lg + log2BinomialTail(k, g, t)).toBeGreaterThan(-s);
        expect(lg + log2BinomialTail(k + 1, d, k + 1 - t)).toBeLessThanOrEqual(-20 + 1e-9);
        expect(privacyThreshold(n, k, policy)).toBe(t);
      }),
      { numRuns: 30 },
    );
  });

  it('clients refuse a threshold or degree below the minimum, naming the config key', () => {
    const refused = (a: Parameters<typeof checkAnnouncedParameters>[0]) => {
      try {
        checkAnnouncedParameters(a, P);
        return null;
      } catch (e) {
        return (e as { code: string; param: string }).code + ' ' + (e as { param: string }).param;
      }
    };
    expect(refused({ mode: 'pw', clients: 5, degree: 4, threshold: 3 })).toBeNull();
    expect(refused({ mode: 'pw', clients: 5, degree: 4, threshold: 2 })).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED reconstruct-secrets-threshold');
    expect(refused({ mode: 'secagg+', clients: 1000, degree: 116, threshold: 81 })).toBeNull();
    expect(refused({ mode: 'secagg+', clients: 1000, degree: 22, threshold: 12 })).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED num-shares');
    expect(refused({ mode: 'secagg+', clients: 1000, degree: 116, threshold: 60 })).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED reconstruct-secrets-threshold');
    expect(refused({ mode: 'secagg+', clients: 1000, degree: 116, threshold: 117 })).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED reconstruct-secrets-threshold');
    expect(refused({ mode: 'stable-pw', clients: 2, degree: 1, threshold: 1 })).toBeNull();
    expect(codeOf(() => secAggPlusParameters(100, { ...P, corruptFraction: 0.6, dropoutRate: 0.5 }))).toBe('CIPHERML_E_CONFIG_INVALID');
  });
});
