import { CipherMLError } from '../core/errors.ts';
import { ByteReader, ByteWriter, openEnvelope, sealEnvelope } from '../core/envelope.ts';
import { PaillierCiphertext } from './ciphertext.ts';
import { PaillierPrivateKey, PaillierPublicKey, legacyPaillierFingerprint, paillierFingerprint, type PaillierKeyOptions } from './keys.ts';
import { PackedCiphertext, PackingLayout } from './packing.ts';

/**
 * Paillier objects in cipherml's binary envelope (src/core/envelope.ts) and in JSON.
 *
 * Bodies (all integers big-endian):
 * - public key:  u32 len ‖ n ‖ u32 len ‖ h_s
 * - private key: public-key body ‖ u32 len ‖ p ‖ u32 len ‖ q
 * - ciphertext:  c in exactly ciphertextBytes bytes
 * - packed:      u32 length ‖ u8 fractionalBits ‖ u8 integerBits ‖ u32 maxContributions ‖
 *                u32 contributions ‖ u32 count ‖ count × c (ciphertextBytes each)
 * The envelope's fingerprint binds ciphertexts to their key: reading under another key is a
 * KEY_MISMATCH; every ciphertext is checked to lie in Z*_{n²} before use. Unobfuscated
 * ciphertexts are re-randomized before they are written.
 */

const MAX_KEY_BYTES = 1024; // n up to 8192 bits

function writePublicBody(w: ByteWriter, pk: PaillierPublicKey): ByteWriter {
  return w.bigint(pk.n).bigint(pk.hs);
}

function readPublic(r: ByteReader, fingerprint: string, param: string, options: PaillierKeyOptions): PaillierPublicKey {
  const n = r.bigint(MAX_KEY_BYTES);
  const hs = r.bigint(2 * MAX_KEY_BYTES);
  // Files of cipherml ≤ 0.1 carry the n-only fingerprint; the key is re-fingerprinted over n and h_s.
  if (paillierFingerprint(n, hs) !== fingerprint && legacyPaillierFingerprint(n) !== fingerprint) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the key does not match the fingerprint in the header', { param });
  }
  try {
    return new PaillierPublicKey(n, hs, options);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the stored key is not a valid Paillier key (${(e as Error).message})`, { param, cause: e });
  }
}

/**
 * Public key → bytes.
 *
 * @example
 * ```ts
 * await writeFile('key.pub', serializePublicKey(publicKey));
 * ```
 */
export function serializePublicKey(pk: PaillierPublicKey): Uint8Array {
  return sealEnvelope({ kind: 'publicKey', scheme: 'paillier', fingerprint: pk.fingerprint, body: writePublicBody(new ByteWriter(), pk).bytes() });
}

/**
 * Bytes → public key (checks envelope, CRC, fingerprint, and key validity).
 *
 * @example
 * ```ts
 * const pk = deserializePublicKey(await readFile('key.pub'));
 * ```
 */
export function deserializePublicKey(bytes: Uint8Array, options: PaillierKeyOptions = {}): PaillierPublicKey {
  const env = openEnvelope(bytes, { kind: 'publicKey', scheme: 'paillier' }, 'publicKey');
  const r = new ByteReader(env.body, 'publicKey');
  const pk = readPublic(r, env.fingerprint, 'publicKey', options);
  r.end();
  return pk;
}

/**
 * Private key → bytes (contains the factorization: keep it on the trusted side, mode 0600).
 *
 * @example
 * ```ts
 * const bytes = serializePrivateKey(privateKey);
 * ```
 */
export function serializePrivateKey(sk: PaillierPrivateKey): Uint8Array {
  const body = writePublicBody(new ByteWriter(), sk.publicKey).bigint(sk.p).bigint(sk.q).bytes();
  return sealEnvelope({ kind: 'privateKey', scheme: 'paillier', fingerprint: sk.fingerprint, body });
}

/**
 * Bytes → private key.
 *
 * @example
 * ```ts
 * const sk = deserializePrivateKey(await readFile('key'));
 * ```
 */
export function deserializePrivateKey(bytes: Uint8Array, options: PaillierKeyOptions = {}): PaillierPrivateKey {
  const env = openEnvelope(bytes, { kind: 'privateKey', scheme: 'paillier' }, 'privateKey');
  const r = new ByteReader(env.body, 'privateKey');
  const pk = readPublic(r, env.fingerprint, 'privateKey', options);
  const p = r.bigint(MAX_KEY_BYTES);
  const q = r.bigint(MAX_KEY_BYTES);
  r.end();
  try {
    return new PaillierPrivateKey(pk, p, q);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the stored factors do not match the stored modulus', { param: 'privateKey', cause: e });
  }
}

function assertFingerprint(expected: PaillierPublicKey, actual: string, param: string): void {
  // Ciphertext files of cipherml ≤ 0.1 name their key by the n-only fingerprint.
  if (actual !== expected.fingerprint && actual !== expected.legacyFingerprint) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `data was made under key ${actual}, the key given is ${expected.fingerprint}`, {
      param,
      details: { expected: expected.fingerprint, actual },
    });
  }
}

/**
 * One ciphertext → bytes (re-randomized first if it is not obfuscated).
 *
 * @example
 * ```ts
 * const bytes = serializeCiphertext(encrypt(publicKey, 5n));
 * ```
 */
export function serializeCiphertext(c: PaillierCiphertext): Uint8Array {
  const out = c.forExport();
  const body = new ByteWriter().fixedBigint(out.value, out.publicKey.ciphertextBytes).bytes();
  return sealEnvelope({ kind: 'ciphertext', scheme: 'paillier', fingerprint: out.fingerprint, body });
}

/**
 * Bytes → ciphertext under `publicKey`; refuses another key's data and values outside Z*_{n²}.
 *
 * @example
 * ```ts
 * const c = deserializeCiphertext(publicKey, bytes);
 * ```
 */
export function deserializeCiphertext(publicKey: PaillierPublicKey, bytes: Uint8Array): PaillierCiphertext {
  const env = openEnvelope(bytes, { kind: 'ciphertext', scheme: 'paillier' }, 'ciphertext');
  assertFingerprint(publicKey, env.fingerprint, 'ciphertext');
  const r = new ByteReader(env.body, 'ciphertext');
  const v = r.fixedBigint(publicKey.ciphertextBytes);
  r.end();
  return PaillierCiphertext.fromValue(publicKey, v, 'ciphertext');
}

/**
 * Packed vector → bytes (re-randomized first if it is not obfuscated).
 *
 * @example
 * ```ts
 * socket.write(serializePacked(encryptPacked(publicKey, weights)));
 * ```
 */
export function serializePacked(v: PackedCiphertext): Uint8Array {
  const out = v.forExport();
  const width = out.publicKey.ciphertextBytes;
  const w = new ByteWriter()
    .u32(out.length)
    .u8(out.layout.fractionalBits)
    .u8(out.layout.integerBits)
    .u32(out.layout.maxContributions)
    .u32(out.contributions)
    .u32(out.values.length);
  for (const c of out.values) w.fixedBigint(c, width);
  return sealEnvelope({ kind: 'packedVector', scheme: 'paillier', fingerprint: out.fingerprint, body: w.bytes() });
}

/** Expectations a receiver may pin on an incoming packed vector. */
export interface PackedExpectations {
  /** Required number of values. */
  readonly length?: number;
  /** Required layout (precision, integer bits, headroom). */
  readonly layout?: PackingLayout;
  /**
   * The receiver's private key, when it has one: Z*_{n²} membership is then checked as p ∤ c and
   * q ∤ c (two reductions) instead of gcd(c, n) — the same check, ~10× cheaper.
   */
  readonly privateKey?: PaillierPrivateKey;
}

/**
 * Bytes → packed vector under `publicKey`. Rejects another key's data, a wrong length or layout
 * when `expect` pins them, and any ciphertext outside Z*_{n²}, before any arithmetic.
 *
 * @example
 * ```ts
 * const update = deserializePacked(publicKey, bytes, { length: model.size, layout });
 * ```
 */
export function deserializePacked(publicKey: PaillierPublicKey, bytes: Uint8Array, expect: PackedExpectations = {}): PackedCiphertext {
  const env = openEnvelope(bytes, { kind: 'packedVector', scheme: 'paillier' }, 'packed');
  assertFingerprint(publicKey, env.fingerprint, 'packed');
  const r = new ByteReader(env.body, 'packed');
  const length = r.u32();
  const fractionalBits = r.u8();
  const integerBits = r.u8();
  const maxContributions = r.u32();
  const contributions = r.u32();
  const count = r.u32();
  let layout: PackingLayout;
  try {
    layout = new PackingLayout(publicKey.bits, { fractionalBits, integerBits, maxContributions });
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the stored packing layout is invalid (${(e as Error).message})`, { param: 'packed', cause: e });
  }
  if (expect.length !== undefined && expect.length !== length) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `expected ${expect.length} values, got ${length}`, { param: 'packed', details: { expected: expect.length, actual: length } });
  }
  if (expect.privateKey !== undefined && expect.privateKey.publicKey.n !== publicKey.n) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', 'the private key given does not belong to this public key', { param: 'privateKey' });
  }
  if (expect.layout !== undefined && !expect.layout.equals(layout)) {
    throw new CipherMLError('CIPHERML_E_LAYOUT_MISMATCH', `expected layout ${JSON.stringify(expect.layout.toJSON())}, got ${JSON.stringify(layout.toJSON())}`, { param: 'packed' });
  }
  if (count !== layout.ciphertextsFor(length)) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${length} values need ${layout.ciphertextsFor(length)} ciphertexts, header says ${count}`, { param: 'packed' });
  }
  if (contributions < 1 || contributions > maxContributions) {
    throw new CipherMLError('CIPHERML_E_SLOT_OVERFLOW', `header claims ${contributions} contributions, layout allows 1..${maxContributions}`, { param: 'packed' });
  }
  const values: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const c = r.fixedBigint(publicKey.ciphertextBytes);
    if (expect.privateKey !== undefined) expect.privateKey.assertCiphertext(c, `packed.values[${i}]`);
    else publicKey.assertCiphertext(c, `packed.values[${i}]`);
    values.push(c);
  }
  r.end();
  return new PackedCiphertext(publicKey, layout, length, contributions, values, true);
}

/** JSON form of a public key. */
export interface PublicKeyJson {
  readonly format: 'cipherml.paillier.public-key';
  readonly version: 1;
  readonly fingerprint: string;
  readonly bits: number;
  /** Hex. */
  readonly n: string;
  /** Hex. */
  readonly hs: string;
}

/** JSON form of a private key (secret: keep on the trusted side). */
export interface PrivateKeyJson extends Omit<PublicKeyJson, 'format'> {
  readonly format: 'cipherml.paillier.private-key';
  readonly p: string;
  readonly q: string;
}

/**
 * Public key → JSON object.
 *
 * @example
 * ```ts
 * JSON.stringify(publicKeyToJson(publicKey));
 * ```
 */
export function publicKeyToJson(pk: PaillierPublicKey): PublicKeyJson {
  return { format: 'cipherml.paillier.public-key', version: 1, fingerprint: pk.fingerprint, bits: pk.bits, n: pk.n.toString(16), hs: pk.hs.toString(16) };
}

/**
 * Private key → JSON object.
 *
 * @example
 * ```ts
 * const json = privateKeyToJson(privateKey);
 * ```
 */
export function privateKeyToJson(sk: PaillierPrivateKey): PrivateKeyJson {
  return { ...publicKeyToJson(sk.publicKey), format: 'cipherml.paillier.private-key', p: sk.p.toString(16), q: sk.q.toString(16) };
}

function hexField(obj: Record<string, unknown>, field: string, param: string): bigint {
  const v = obj[field];
  if (typeof v !== 'string' || !/^[0-9a-f]+$/i.test(v)) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `field "${field}" must be a hex string`, { param });
  }
  return BigInt(`0x${v}`);
}

function checkJsonHeader(json: unknown, format: string, param: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'expected a JSON object', { param });
  const o = json as Record<string, unknown>;
  if (o['format'] !== format) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `expected format "${format}", got ${JSON.stringify(o['format'])}`, { param });
  if (o['version'] !== 1) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `version ${JSON.stringify(o['version'])} (this build reads 1)`, { param });
  return o;
}

/**
 * JSON object → public key (checks format, version and fingerprint).
 *
 * @example
 * ```ts
 * const pk = publicKeyFromJson(JSON.parse(text));
 * ```
 */
export function publicKeyFromJson(json: unknown, options: PaillierKeyOptions = {}): PaillierPublicKey {
  const o = checkJsonHeader(json, 'cipherml.paillier.public-key', 'publicKey');
  return publicFromFields(o, 'publicKey', options);
}

function publicFromFields(o: Record<string, unknown>, param: string, options: PaillierKeyOptions): PaillierPublicKey {
  const n = hexField(o, 'n', param);
  const hs = hexField(o, 'hs', param);
  if (paillierFingerprint(n, hs) !== o['fingerprint'] && legacyPaillierFingerprint(n) !== o['fingerprint']) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the key does not match the fingerprint', { param });
  try {
    return new PaillierPublicKey(n, hs, options);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the stored key is not a valid Paillier key (${(e as Error).message})`, { param, cause: e });
  }
}

/**
 * JSON object → private key.
 *
 * @example
 * ```ts
 * const sk = privateKeyFromJson(JSON.parse(text));
 * ```
 */
export function privateKeyFromJson(json: unknown, options: PaillierKeyOptions = {}): PaillierPrivateKey {
  const o = checkJsonHeader(json, 'cipherml.paillier.private-key', 'privateKey');
  const pk = publicFromFields(o, 'privateKey', options);
  try {
    return new PaillierPrivateKey(pk, hexField(o, 'p', 'privateKey'), hexField(o, 'q', 'privateKey'));
  } catch (e) {
    if (e instanceof CipherMLError && e.code === 'CIPHERML_E_FORMAT_CORRUPT') throw e;
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the stored factors do not match the stored modulus', { param: 'privateKey', cause: e });
  }
}
