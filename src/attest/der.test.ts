import { verify } from 'node:crypto';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCipherMLError } from '../core/errors.ts';
import { defaultTrustAnchors } from './anchors.ts';
import { derCertificateExtensions, ecdsaSignedParts } from './der.ts';

describe('strict DER walker', () => {
  const a = defaultTrustAnchors();
  it('cuts the same tbsCertificate bytes as asn1js, and the signature verifies over them', () => {
    for (const c of [a.intel[0]!, a.nitro[0]!]) {
      const p = ecdsaSignedParts(c.raw, 'root')!;
      const ref = asn1js.fromBER(c.raw).result as asn1js.Sequence;
      expect(Buffer.from(p.tbs)).toEqual(Buffer.from(ref.valueBlock.value[0]!.valueBeforeDecodeView));
      expect(verify(p.hash, p.tbs, c.publicKey, p.signature)).toBe(true);
      expect(verify(p.hash, p.tbs, a.amd['Milan']!.ark.publicKey, p.signature)).toBe(false);
    }
    // RSA-PSS certificates are left to OpenSSL.
    expect(ecdsaSignedParts(a.amd['Genoa']!.ark.raw, 'ark')).toBeUndefined();
  });
  it('reads extensions like asn1js does (AMD ARK: key usage, basic constraints)', () => {
    const ext = derCertificateExtensions(a.amd['Milan']!.ask.raw, 'ask');
    expect([...ext.keys()]).toEqual(expect.arrayContaining(['2.5.29.15', '2.5.29.19']));
  });
  it('any truncation or byte change is refused with a typed error or read consistently, never an untyped throw (property)', () => {
    const der = Buffer.from(a.intel[0]!.raw);
    fc.assert(fc.property(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (i, x, cut) => {
      const m = Buffer.from(der);
      m[i]! ^= x;
      const input = cut ? der.subarray(0, i) : m;
      try {
        ecdsaSignedParts(input, 'cert');
        derCertificateExtensions(input, 'cert');
      } catch (e) {
        expect(isCipherMLError(e, 'CIPHERML_E_ATTESTATION_MALFORMED')).toBe(true);
      }
    }), { numRuns: 300 });
  });
});
