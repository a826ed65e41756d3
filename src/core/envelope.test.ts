import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteReader, ByteWriter, openEnvelope, sealEnvelope } from './envelope.ts';
import { codeOf } from '../../test/helpers.ts';

const fp = '0123456789abcdef0123456789abcdef';
const expectKind = { kind: 'ciphertext', scheme: 'paillier' } as const;


describe('binary envelope', () => {
  const body = new ByteWriter().u8(7).u16(513).u32(70000).bigint(12345678901234567890n).fixedBigint(5n, 8).bytes();
  const sealed = sealEnvelope({ kind: 'ciphertext', scheme: 'paillier', fingerprint: fp, body });

  it('round-trips header and body', () => {
    const env = openEnvelope(sealed, expectKind, 'x');
    expect(env.fingerprint).toBe(fp);
    const r = new ByteReader(env.body, 'x');
    expect([r.u8(), r.u16(), r.u32(), r.bigint(64), r.fixedBigint(8)]).toEqual([7, 513, 70000, 12345678901234567890n, 5n]);
    r.end();
  });

  it('reports every truncation as FORMAT_TRUNCATED, before looking at the magic', () => {
    for (let len = 0; len < sealed.length; len++) {
      expect(codeOf(() => openEnvelope(sealed.subarray(0, len), expectKind, 'x'))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    }
  });

  it('detects any single flipped byte', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const bad = Uint8Array.from(sealed);
        bad[i] = bad[i]! ^ x;
        expect(codeOf(() => openEnvelope(bad, expectKind, 'x'))).toMatch(/^CIPHERML_E_FORMAT_(CORRUPT|UNSUPPORTED|TRUNCATED)$/);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects another kind, trailing bytes and bodies longer than their fields', () => {
    expect(codeOf(() => openEnvelope(sealed, { kind: 'publicKey', scheme: 'paillier' }, 'x'))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
    expect(codeOf(() => openEnvelope(Uint8Array.of(...sealed, 0), expectKind, 'x'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const r = new ByteReader(body, 'x');
    r.u8();
    expect(codeOf(() => r.end())).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => new ByteReader(Uint8Array.of(0, 0, 1, 0), 'x').bigint(16))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });
});
