import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isCipherMLError } from '../core/errors.ts';
import fc from 'fast-check';
import { certificateSerial, enclaveTlsFromPem, generateEnclaveTls, spkiOf } from './tls.ts';

describe('enclave TLS identity', () => {
  it('a self-signed P-256 certificate for the given names whose SPKI is what the binding uses; a sealed key and certificate must match', () => {
    const t = generateEnclaveTls(['127.0.0.1', 'aggregator.example']);
    const c = new X509Certificate(t.certPem);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(c.subjectAltName).toBe('IP Address:127.0.0.1, DNS:aggregator.example');
    expect(c.ca).toBe(false);
    expect(Buffer.from(spkiOf(c)).equals(Buffer.from(t.spki))).toBe(true);
    expect(Buffer.from(enclaveTlsFromPem(t.keyPem, t.certPem).spki).equals(Buffer.from(t.spki))).toBe(true);
    const other = generateEnclaveTls(['127.0.0.1']);
    expect(Buffer.from(other.spki).equals(Buffer.from(t.spki))).toBe(false);
    const mixed = (() => {
      try {
        return enclaveTlsFromPem(other.keyPem, t.certPem);
      } catch (e) {
        return e;
      }
    })();
    expect(isCipherMLError(mixed, 'CIPHERML_E_SEALED_DATA')).toBe(true);
  });

  it('serials are positive, minimally encoded DER integers (a leading 0x00 before a byte < 0x80 made OpenSSL refuse one certificate in 256)', () => {
    expect(Array.from(certificateSerial(Uint8Array.from([0, 1, ...new Array<number>(14).fill(7)])).slice(0, 2))).toEqual([0x40, 1]);
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (r) => {
      const s = certificateSerial(r);
      expect(s[0]).toBeGreaterThanOrEqual(0x40);
      expect(s[0]).toBeLessThanOrEqual(0x7f);
      expect(Array.from(s.slice(1))).toEqual(Array.from(r.slice(1)));
    }));
  });
});
