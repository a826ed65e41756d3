import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { sealEnvelope, ByteWriter } from '../core/envelope.ts';
import {
  decrypt,
  decryptPacked,
  deserializeCiphertext,
  deserializePacked,
  deserializePrivateKey,
  deserializePublicKey,
  encrypt,
  encryptPacked,
  generatePaillierKeyPair,
  PackingLayout,
  privateKeyFromJson,
  privateKeyToJson,
  publicKeyFromJson,
  publicKeyToJson,
  serializeCiphertext,
  serializePacked,
  serializePrivateKey,
  serializePublicKey,
  type PaillierKeyPair,
} from './index.ts';

describe('Paillier serialization', () => {
  let pair: PaillierKeyPair;
  let other: PaillierKeyPair;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
    other = await generatePaillierKeyPair({ bits: 1024 });
  });

  it('round-trips keys in binary and JSON', () => {
    const { publicKey: pk, privateKey: sk } = pair;
    const pk2 = deserializePublicKey(serializePublicKey(pk));
    expect(pk2.n).toBe(pk.n);
    expect(pk2.hs).toBe(pk.hs);
    expect(pk2.fingerprint).toBe(pk.fingerprint);
    const sk2 = deserializePrivateKey(serializePrivateKey(sk));
    expect(decrypt(sk2, encrypt(pk2, 77n))).toBe(77n);
    const viaJson = privateKeyFromJson(JSON.parse(JSON.stringify(privateKeyToJson(sk))));
    expect(decrypt(viaJson, encrypt(publicKeyFromJson(JSON.parse(JSON.stringify(publicKeyToJson(pk)))), 5n))).toBe(5n);
  });

  it('round-trips ciphertexts and packed vectors, obfuscating lazy ones on the way out', () => {
    const { publicKey: pk, privateKey: sk } = pair;
    const lazy = encrypt(pk, 12n, { obfuscate: false });
    const back = deserializeCiphertext(pk, serializeCiphertext(lazy));
    expect(back.value).not.toBe(lazy.value);
    expect(decrypt(sk, back)).toBe(12n);
    const v = encryptPacked(pk, [1.5, -2, 3.25], { obfuscate: false });
    const vb = deserializePacked(pk, serializePacked(v), { length: 3, layout: v.layout });
    expect(vb.values[0]).not.toBe(v.values[0]);
    expect(Array.from(decryptPacked(sk, vb))).toEqual([1.5, -2, 3.25]);
    const summed = deserializePacked(pk, serializePacked(v.add(v)));
    expect(summed.contributions).toBe(2);
    expect(Array.from(decryptPacked(sk, summed))).toEqual([3, -4, 6.5]);
  });

  it('rejects data under another key (KEY_MISMATCH) before any arithmetic', () => {
    const bytes = serializePacked(encryptPacked(pair.publicKey, [1, 2]));
    expect(codeOf(() => deserializePacked(other.publicKey, bytes))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(codeOf(() => deserializeCiphertext(other.publicKey, serializeCiphertext(encrypt(pair.publicKey, 1n))))).toBe('CIPHERML_E_KEY_MISMATCH');
  });

  it('rejects a packed vector of the wrong length or precision', () => {
    const pk = pair.publicKey;
    const bytes = serializePacked(encryptPacked(pk, [1, 2, 3]));
    expect(codeOf(() => deserializePacked(pk, bytes, { length: 4 }))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    const layout = new PackingLayout(pk.bits, { fractionalBits: 20, integerBits: 11, maxContributions: 1000 });
    expect(codeOf(() => deserializePacked(pk, bytes, { layout }))).toBe('CIPHERML_E_LAYOUT_MISMATCH');
  });

  it('checks membership with the private key when the receiver has it, with the same verdicts', () => {
    const { publicKey: pk, privateKey: sk } = pair;
    const v = encryptPacked(pk, [1, 2, 3]);
    expect(Array.from(decryptPacked(sk, deserializePacked(pk, serializePacked(v), { privateKey: sk })))).toEqual([1, 2, 3]);
    const forged = new ByteWriter().u32(1).u8(16).u8(15).u32(1000).u32(1).u32(1).fixedBigint(sk.q * 7n, pk.ciphertextBytes).bytes();
    const bytes = sealEnvelope({ kind: 'packedVector', scheme: 'paillier', fingerprint: pk.fingerprint, body: forged });
    expect(codeOf(() => deserializePacked(pk, bytes, { privateKey: sk }))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
    expect(codeOf(() => deserializePacked(pk, bytes))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
    expect(codeOf(() => deserializePacked(pk, serializePacked(v), { privateKey: other.privateKey }))).toBe('CIPHERML_E_KEY_MISMATCH');
  });

  it('rejects ciphertexts outside Z*_{n^2}', () => {
    const pk = pair.publicKey;
    const forge = (c: bigint) =>
      sealEnvelope({ kind: 'ciphertext', scheme: 'paillier', fingerprint: pk.fingerprint, body: new ByteWriter().fixedBigint(c, pk.ciphertextBytes).bytes() });
    expect(codeOf(() => deserializeCiphertext(pk, forge(0n)))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
    expect(codeOf(() => deserializeCiphertext(pk, forge(pk.n * 3n)))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
    expect(codeOf(() => deserializeCiphertext(pk, forge(pk.nSquared + 1n)))).toBe('CIPHERML_E_CIPHERTEXT_INVALID');
  });

  it('reports every truncation of a key or vector as FORMAT_TRUNCATED', () => {
    const blobs = [serializePublicKey(pair.publicKey), serializePrivateKey(pair.privateKey), serializePacked(encryptPacked(pair.publicKey, [1, 2, 3]))];
    for (const blob of blobs) {
      for (const len of [0, 10, 31, 40, blob.length >> 1, blob.length - 1]) {
        const cut = blob.subarray(0, len);
        expect(codeOf(() => (blob === blobs[0] ? deserializePublicKey(cut) : blob === blobs[1] ? deserializePrivateKey(cut) : deserializePacked(pair.publicKey, cut)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
      }
    }
  });

  it('reports any corrupted byte of a secret key file as a typed format error', () => {
    const blob = serializePrivateKey(pair.privateKey);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: blob.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const bad = Uint8Array.from(blob);
        bad[i] = bad[i]! ^ x;
        expect(codeOf(() => deserializePrivateKey(bad))).toMatch(/^CIPHERML_E_FORMAT_(CORRUPT|UNSUPPORTED|TRUNCATED)$/);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects JSON keys whose modulus does not match the fingerprint, or of an unknown version', () => {
    const json = publicKeyToJson(pair.publicKey);
    expect(codeOf(() => publicKeyFromJson({ ...json, n: (pair.publicKey.n + 2n).toString(16) }))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => publicKeyFromJson({ ...json, version: 2 }))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
    expect(codeOf(() => publicKeyFromJson({ ...json, n: 'xyz' }))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => publicKeyFromJson('nope'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const sk = privateKeyToJson(pair.privateKey);
    expect(codeOf(() => privateKeyFromJson({ ...sk, p: other.privateKey.p.toString(16) }))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });
});
