import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hkdfSync, randomBytes } from 'node:crypto';
import { BOX_OVERHEAD_BYTES, agreeKey, generateX25519KeyPair, openBox, sealBox, x25519PublicFromPrivate } from './keys.ts';
import { codeOf, paramOf } from '../../test/helpers.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

// RFC 7748 §6.1 (Curve25519 Diffie–Hellman test vector).
const ALICE_SK = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PK = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const BOB_SK = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const BOB_PK = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const K = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');

describe('X25519 key agreement', () => {
  it('matches RFC 7748 §6.1: public keys and (through HKDF) the shared secret K', () => {
    expect(x25519PublicFromPrivate(ALICE_SK)).toEqual(ALICE_PK);
    expect(x25519PublicFromPrivate(BOB_SK)).toEqual(BOB_PK);
    // agreeKey = HKDF-SHA256(K, salt = 0^32, "cipherml/secagg/v1/" + info, 32): recompute from K.
    const expected = new Uint8Array(hkdfSync('sha256', K, new Uint8Array(32), 'cipherml/secagg/v1/kat', 32));
    expect(agreeKey(ALICE_SK, BOB_PK, 'kat')).toEqual(expected);
    expect(agreeKey(BOB_SK, ALICE_PK, 'kat')).toEqual(expected);
  });

  it('is deterministic and separates domains by info', () => {
    const a = agreeKey(ALICE_SK, BOB_PK, 'mask/1');
    expect(agreeKey(ALICE_SK, BOB_PK, 'mask/1')).toEqual(a);
    expect(a.length).toBe(32);
    expect(agreeKey(ALICE_SK, BOB_PK, 'mask/2')).not.toEqual(a);
    expect(agreeKey(ALICE_SK, BOB_PK, '')).not.toEqual(a);
  });

  it('generates consistent raw key pairs', () => {
    const kp = generateX25519KeyPair();
    expect(kp.privateKey.length).toBe(32);
    expect(kp.publicKey.length).toBe(32);
    expect(x25519PublicFromPrivate(kp.privateKey)).toEqual(kp.publicKey);
    expect(generateX25519KeyPair().privateKey).not.toEqual(kp.privateKey);
  });

  it('is symmetric: agreeKey(a.sk, b.pk, i) = agreeKey(b.sk, a.pk, i)', () => {
    fc.assert(
      fc.property(fc.string(), (info) => {
        const a = generateX25519KeyPair();
        const b = generateX25519KeyPair();
        expect(agreeKey(a.privateKey, b.publicKey, info)).toEqual(agreeKey(b.privateKey, a.publicKey, info));
      }),
      { numRuns: 30 },
    );
  });

  it('refuses low-order peer points (all-zero shared secret) with CIPHERML_E_PROTOCOL', () => {
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000', // u = 0
      '0100000000000000000000000000000000000000000000000000000000000000', // u = 1
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p − 1
    ];
    for (const u of lowOrder) {
      expect(codeOf(() => agreeKey(ALICE_SK, hex(u), 'x'))).toBe('CIPHERML_E_PROTOCOL');
    }
  });

  it('rejects wrong key lengths naming the parameter', () => {
    expect(paramOf(() => agreeKey(new Uint8Array(31), BOB_PK, 'x'))).toBe('privateKey');
    expect(paramOf(() => agreeKey(ALICE_SK, new Uint8Array(33), 'x'))).toBe('peerPublicKey');
    expect(paramOf(() => agreeKey(ALICE_SK, BOB_PK, 7 as unknown as string))).toBe('info');
    expect(paramOf(() => x25519PublicFromPrivate(new Uint8Array(0)))).toBe('privateKey');
    expect(paramOf(() => sealBox(new Uint8Array(16), new Uint8Array(1), new Uint8Array(0)))).toBe('key');
    expect(paramOf(() => openBox(new Uint8Array(33), new Uint8Array(40), new Uint8Array(0)))).toBe('key');
  });
});

describe('sealBox / openBox (AES-256-GCM)', () => {
  const key = new Uint8Array(randomBytes(32));
  const aad = new TextEncoder().encode('round 7: 3 -> 5');

  it('round-trips any plaintext and aad; box = nonce ‖ ciphertext ‖ tag', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), (pt, ad) => {
        const box = sealBox(key, pt, ad);
        expect(box.length).toBe(pt.length + BOX_OVERHEAD_BYTES);
        expect(openBox(key, box, ad)).toEqual(pt);
      }),
    );
  });

  it('uses a fresh nonce per seal', () => {
    const pt = new Uint8Array(16);
    const a = sealBox(key, pt, aad);
    const b = sealBox(key, pt, aad);
    expect(a.subarray(0, 12)).not.toEqual(b.subarray(0, 12));
    expect(a).not.toEqual(b);
  });

  it('rejects any flipped bit anywhere as FORMAT_CORRUPT', () => {
    const pt = new Uint8Array(randomBytes(50));
    const box = sealBox(key, pt, aad);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: box.length - 1 }), fc.integer({ min: 0, max: 7 }), (pos, bit) => {
        const bad = box.slice();
        bad[pos] = bad[pos]! ^ (1 << bit);
        expect(codeOf(() => openBox(key, bad, aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
      }),
    );
  });

  it('rejects wrong aad, wrong key and truncation as FORMAT_CORRUPT', () => {
    const box = sealBox(key, Uint8Array.of(1, 2, 3), aad);
    expect(codeOf(() => openBox(key, box, new TextEncoder().encode('round 7: 3 -> 6')))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(key, box, new Uint8Array(0)))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(new Uint8Array(randomBytes(32)), box, aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(key, box.subarray(0, box.length - 1), aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(key, box.subarray(1), aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(key, box.subarray(0, 27), aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => openBox(key, new Uint8Array(0), aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const extended = new Uint8Array(box.length + 1);
    extended.set(box);
    expect(codeOf(() => openBox(key, extended, aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });

  it('works end to end with agreed keys', () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const box = sealBox(agreeKey(a.privateKey, b.publicKey, 'share'), Uint8Array.of(9, 9), aad);
    expect(openBox(agreeKey(b.privateKey, a.publicKey, 'share'), box, aad)).toEqual(Uint8Array.of(9, 9));
    expect(codeOf(() => openBox(agreeKey(b.privateKey, a.publicKey, 'mask'), box, aad))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });
});
