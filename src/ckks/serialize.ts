import { stat, unlink } from 'node:fs/promises';
// A namespace import: zstd exists from Node.js 23.8, and a named import would fail at link time on
// older Node.js before the version check in core/node-version.ts could explain why.
import * as nodeZlib from 'node:zlib';
import { openEnvelope, sealEnvelope } from '../core/envelope.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped, refuseExisting, writeFileSafely } from '../core/io.ts';
import { CkksContext, CkksVector, fingerprintOf, makeSealContext, normalizeSteps } from './context.ts';
import type { CkksParameters } from './params.ts';
import { validateCkksParameters } from './params.ts';
import { loadSeal, sealCall } from './seal.ts';
import type { Seal } from './seal.ts';
import type * as S from 'node-seal';

/**
 * Serialization of CKKS key sets and ciphertexts in the cipherml envelope (src/core/envelope.ts,
 * scheme `ckks`). The envelope body is `u8 codec (1 = zstd) ‖ u32 raw length ‖ zstd(raw)`;
 * raw bodies are sequences of `u32 length ‖ bytes` sections:
 *
 * - public context (kind publicKey): version, parameters JSON, key-set id, SEAL public key,
 *   relinearization key, Galois keys (each seeded: SEAL stores the PRNG seed instead of the
 *   uniformly random half), Galois steps JSON;
 * - secret key (kind privateKey): version, parameters JSON, key-set id, SEAL secret key, and
 *   optionally the context's `metadata` JSON (application hints such as an inference packing);
 * - ciphertexts (kind ciphertext): version, metadata JSON, count, then per ciphertext its logical
 *   length and SEAL bytes (seeded when freshly encrypted with the secret key).
 *
 * The envelope fingerprint is SHA-256(SEAL parameters ‖ key-set id) and is recomputed on load:
 * ciphertexts made under another key set or parameter set are refused before SEAL parses them.
 */

const BODY_VERSION = 1;
const CODEC_ZSTD = 1;
/** Largest decompressed body accepted (bounds a decompression bomb). */
const MAX_RAW_BYTES = 2 ** 31 - 1;

/**
 * The evaluation side of a key set: parameters, public, relinearization and Galois keys. A model
 * owner loads it to compute on ciphertexts; it cannot decrypt.
 *
 * @example
 * ```ts
 * const pub = serializePublicContext(ctx);
 * const server = await deserializePublicContext(pub);
 * ```
 */
export function serializePublicContext(ctx: CkksContext): Uint8Array {
  const seal = ctx.seal;
  const sections: Uint8Array[] = [header(ctx.params), ctx.keyId];
  const keys = ctx.keys;
  if (keys.secret !== undefined) {
    // With the secret key at hand, regenerate the evaluation keys in seeded form (same secret,
    // fresh randomness): half the bytes of the expanded keys.
    const kg = new seal.KeyGenerator(ctx.sealContext, keys.secret);
    try {
      sections.push(saveSerializable(seal, kg.createPublicKeySerializable()));
      sections.push(keys.relin === undefined ? new Uint8Array(0) : saveSerializable(seal, kg.createRelinKeysSerializable()));
      sections.push(ctx.galoisSteps.length === 0 ? new Uint8Array(0) : saveSerializable(seal, kg.createGaloisKeysSerializableWithSteps(Int32Array.from(ctx.galoisSteps))));
    } finally {
      kg.delete();
    }
  } else {
    sections.push(keys.public.saveToArray(seal.ComprModeType.none) as Uint8Array);
    sections.push(keys.relin === undefined ? new Uint8Array(0) : (keys.relin.saveToArray(seal.ComprModeType.none) as Uint8Array));
    sections.push(keys.galois === undefined ? new Uint8Array(0) : (keys.galois.saveToArray(seal.ComprModeType.none) as Uint8Array));
  }
  sections.push(json(ctx.galoisSteps));
  return seal0(ctx, 'publicKey', sections);
}

/**
 * Loads a public context; the result evaluates and encrypts but cannot decrypt. With
 * `{ galoisKeys: false }` the Galois keys are skipped (no rotations; a fraction of the load time
 * and memory, for work such as the batch plan that never rotates).
 *
 * @example
 * ```ts
 * const server = await deserializePublicContext(await readFile('key.pub'));
 * ```
 */
export async function deserializePublicContext(bytes: Uint8Array, param = 'publicContext', options: { readonly galoisKeys?: boolean } = {}): Promise<CkksContext> {
  const seal = await loadSeal();
  const { fingerprint, sections } = open0(bytes, 'publicKey', param, 6);
  const params = parseHeader(seal, sections[0]!, param);
  const keyId = keyIdOf(sections[1]!, param);
  const steps = normalizeSteps(parseJson(sections[5]!, param) as number[], params.polyModulusDegree / 2);
  const { sealParams, sealContext } = makeSealContext(seal, params);
  checkFingerprint(sealParams, keyId, fingerprint, sealContext, param);
  const made: S.ClassHandle[] = [];
  try {
    const pub = load(seal, sealContext, new seal.PublicKey(), sections[2]!, param, made);
    const relin = sections[3]!.length === 0 ? undefined : load(seal, sealContext, new seal.RelinKeys(), sections[3]!, param, made);
    const skip = options.galoisKeys === false;
    const galois = skip || sections[4]!.length === 0 ? undefined : load(seal, sealContext, new seal.GaloisKeys(), sections[4]!, param, made);
    return CkksContext.fromParts(seal, params, sealParams, sealContext, { public: pub, relin, galois }, keyId, skip ? [] : steps);
  } catch (e) {
    for (const o of made) o.delete();
    sealContext.delete();
    sealParams.delete();
    throw e;
  }
}

/**
 * The secret key with its parameters. Keep it on the trusted side; write it with
 * {@link writeSecretKeyFile} (mode 0600).
 *
 * @example
 * ```ts
 * const sk = serializeSecretKey(ctx);
 * ```
 */
export function serializeSecretKey(ctx: CkksContext): Uint8Array {
  const sk = ctx.keys.secret;
  if (sk === undefined) throw new CipherMLError('CIPHERML_E_CKKS_SECRET_KEY_MISSING', 'this context holds no secret key', { param: 'context' });
  const sections = [header(ctx.params), ctx.keyId, sk.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array];
  if (ctx.metadata !== undefined) sections.push(json(ctx.metadata));
  return seal0(ctx, 'privateKey', sections);
}

/**
 * Loads a secret key: the context encrypts (symmetrically, seeded) and decrypts, but holds no
 * relinearization or Galois keys, so it does not evaluate products or rotations.
 *
 * @example
 * ```ts
 * const client = await deserializeSecretKey(await readFile('key'));
 * ```
 */
export async function deserializeSecretKey(bytes: Uint8Array, param = 'secretKey'): Promise<CkksContext> {
  const seal = await loadSeal();
  const { fingerprint, sections } = open0(bytes, 'privateKey', param, [3, 4]);
  const params = parseHeader(seal, sections[0]!, param);
  const keyId = keyIdOf(sections[1]!, param);
  const { sealParams, sealContext } = makeSealContext(seal, params);
  checkFingerprint(sealParams, keyId, fingerprint, sealContext, param);
  const made: S.ClassHandle[] = [];
  try {
    const secret = load(seal, sealContext, new seal.SecretKey(), sections[2]!, param, made);
    const ctx = CkksContext.fromParts(seal, params, sealParams, sealContext, { secret }, keyId, []);
    if (sections[3] !== undefined) ctx.metadata = parseJson(sections[3], param);
    return ctx;
  } catch (e) {
    for (const o of made) o.delete();
    sealContext.delete();
    sealParams.delete();
    throw e;
  }
}

/**
 * Serializes ciphertexts with caller metadata (any JSON value, e.g. shape and packing).
 *
 * @example
 * ```ts
 * const bytes = serializeCiphertexts(ctx, [v], { shape: [3] });
 * ```
 */
export function serializeCiphertexts(ctx: CkksContext, vectors: readonly CkksVector[], meta: unknown = null): Uint8Array {
  const sections: Uint8Array[] = [json(meta), u32(vectors.length)];
  vectors.forEach((v, i) => {
    if (!(v instanceof CkksVector) || v.owner.fingerprint !== ctx.fingerprint) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `vector ${i} does not belong to this key set`, { param: `vectors[${i}]` });
    }
    sections.push(u32(v.length), v.ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array);
  });
  return seal0(ctx, 'ciphertext', sections);
}

/**
 * Encrypts vectors straight to their serialized form. With the secret key each ciphertext is
 * seeded (about half the bytes of {@link serializeCiphertexts} on fresh ciphertexts).
 *
 * @example
 * ```ts
 * const bytes = encryptToBytes(client, [[0.1, 0.2], [0.3, 0.4]], { shape: [2, 2] });
 * ```
 */
export function encryptToBytes(ctx: CkksContext, vectors: readonly ArrayLike<number>[], meta: unknown = null): Uint8Array {
  return assembleCiphertexts(ctx, vectors.map((v) => encryptRecord(ctx, v)), meta);
}

/**
 * Encrypts one vector to a record: seeded (half size) when `ctx` holds the secret key.
 *
 * @example
 * ```ts
 * const record = encryptRecord(client, pixels); // on a worker thread; assembleCiphertexts on the main one
 * ```
 */
export function encryptRecord(ctx: CkksContext, values: ArrayLike<number>): CiphertextRecord {
  if (ctx.hasSecretKey) return { length: values.length, bytes: ctx.encryptSeeded(values) };
  const v = ctx.encryptVector(values);
  try {
    return { length: values.length, bytes: Uint8Array.from(v.ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array) };
  } finally {
    v.delete();
  }
}

/**
 * A ciphertext file from records made under `ctx`'s key set (e.g. by {@link encryptRecord} on
 * worker threads). The records are framed, not loaded: SEAL validates them when the file is read.
 *
 * @example
 * ```ts
 * const bytes = assembleCiphertexts(client, records, { shape: [2] });
 * ```
 */
export function assembleCiphertexts(ctx: CkksContext, records: readonly CiphertextRecord[], meta: unknown = null): Uint8Array {
  const sections: Uint8Array[] = [json(meta), u32(records.length)];
  records.forEach((r, i) => {
    if (!(r?.bytes instanceof Uint8Array) || !Number.isInteger(r.length) || r.length < 0 || r.length > ctx.slotCount) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `record ${i}: expected { length ≤ ${ctx.slotCount}, bytes: Uint8Array }`, { param: `records[${i}]` });
    }
    sections.push(u32(r.length), r.bytes);
  });
  return seal0(ctx, 'ciphertext', sections);
}

/**
 * Loads ciphertexts made under `ctx`'s key set; the caller owns (and deletes) the vectors.
 *
 * @example
 * ```ts
 * const { vectors, meta } = deserializeCiphertexts(ctx, bytes);
 * ```
 */
export function deserializeCiphertexts(ctx: CkksContext, bytes: Uint8Array, param = 'ciphertexts'): { vectors: CkksVector[]; meta: unknown } {
  const { records, meta } = readCiphertextRecords(ctx, bytes, param);
  const vectors: CkksVector[] = [];
  try {
    records.forEach((r, i) => vectors.push(loadCiphertext(ctx, r, `${param}[${i}]`)));
  } catch (e) {
    for (const v of vectors) v.delete();
    throw e;
  }
  return { vectors, meta };
}

/** One ciphertext of a file as SEAL bytes, not yet loaded: what worker threads are handed. */
export interface CiphertextRecord {
  /** Meaningful slots. */
  readonly length: number;
  /** SEAL's own serialization (seeded or not, uncompressed). */
  readonly bytes: Uint8Array;
}

/** A ciphertext file split into its parts; nothing is loaded into SEAL. */
export interface CiphertextFile {
  /** Key set the file was made under (from its envelope). */
  readonly fingerprint: string;
  readonly meta: unknown;
  readonly records: CiphertextRecord[];
}

/**
 * Checks a ciphertext file's envelope and CRC and splits it into records, without a key set:
 * enough to read its metadata before choosing which keys to load. Check it against the key set
 * that will use it with {@link checkCiphertextFile}.
 *
 * @example
 * ```ts
 * const file = splitCiphertextFile(await readFile('input.enc'));
 * (file.meta as { packing: string }).packing;
 * ```
 */
export function splitCiphertextFile(bytes: Uint8Array, param = 'ciphertexts'): CiphertextFile {
  const env = openEnvelope(bytes, { kind: 'ciphertext', scheme: 'ckks' }, param);
  const sections = splitSections(inflate(env.body, param), param);
  if (sections.length < 3 || version(sections[0]!) !== BODY_VERSION) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'unknown ciphertext body version', { param });
  const meta = parseJson(sections[1]!, param);
  const count = readU32(sections[2]!, param);
  if (sections.length !== 3 + 2 * count) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `body declares ${count} ciphertexts, holds ${(sections.length - 3) / 2}`, { param });
  const records: CiphertextRecord[] = [];
  for (let i = 0; i < count; i++) records.push({ length: readU32(sections[3 + 2 * i]!, param), bytes: sections[4 + 2 * i]! });
  return { fingerprint: env.fingerprint, meta, records };
}

/**
 * Refuses a split file made under another key set than `ctx`'s, or declaring more slots than it has.
 *
 * @example
 * ```ts
 * checkCiphertextFile(server, file); // CIPHERML_E_KEY_MISMATCH for another key set
 * ```
 */
export function checkCiphertextFile(ctx: CkksContext, file: CiphertextFile, param = 'ciphertexts'): void {
  if (file.fingerprint !== ctx.fingerprint) {
    throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `ciphertexts were made under key set ${file.fingerprint}, the key is ${ctx.fingerprint}`, {
      param,
      details: { expected: ctx.fingerprint, actual: file.fingerprint },
    });
  }
  file.records.forEach((r, i) => {
    if (r.length > ctx.slotCount) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ciphertext ${i} declares ${r.length} slots of ${ctx.slotCount}`, { param });
  });
}

/**
 * {@link splitCiphertextFile} then {@link checkCiphertextFile} against `ctx`.
 *
 * @example
 * ```ts
 * const { records, meta } = readCiphertextRecords(ctx, await readFile('input.enc'));
 * using first = loadCiphertext(ctx, records[0]);
 * ```
 */
export function readCiphertextRecords(ctx: CkksContext, bytes: Uint8Array, param = 'ciphertexts'): CiphertextFile {
  const file = splitCiphertextFile(bytes, param);
  checkCiphertextFile(ctx, file, param);
  return file;
}

/**
 * Loads one record into SEAL under `ctx` (validated by SEAL); the caller owns the vector.
 *
 * @example
 * ```ts
 * using v = loadCiphertext(ctx, { length: 4096, bytes: saveCiphertext(other) });
 * ```
 */
export function loadCiphertext(ctx: CkksContext, record: CiphertextRecord, param = 'ciphertext'): CkksVector {
  if (!(record?.bytes instanceof Uint8Array) || !Number.isInteger(record.length) || record.length < 0 || record.length > ctx.slotCount) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected { length ≤ ${ctx.slotCount}, bytes: Uint8Array }`, { param });
  }
  const ct = new ctx.seal.Ciphertext();
  try {
    sealCall('Ciphertext.load', () => ct.loadFromArray(ctx.sealContext, new Uint8Array(record.bytes)), 'CIPHERML_E_CKKS_CIPHERTEXT_INVALID', param);
  } catch (e) {
    ct.delete();
    throw e;
  }
  return new CkksVector(ctx, ct, record.length);
}

/**
 * A ciphertext's record (SEAL bytes, uncompressed): the inverse of {@link loadCiphertext}.
 *
 * @example
 * ```ts
 * const record = saveCiphertext(v); // post it to a worker, loadCiphertext there
 * ```
 */
export function saveCiphertext(v: CkksVector): CiphertextRecord {
  return { length: v.length, bytes: Uint8Array.from(v.ct.saveToArray(v.owner.seal.ComprModeType.none) as Uint8Array) };
}

/**
 * Writes `path` (secret key, mode 0600) and `path.pub` (public context, 0644); never
 * overwrites unless `overwrite` is set.
 *
 * @example
 * ```ts
 * await writeKeyFiles('key', ctx); // key, key.pub
 * ```
 */
export async function writeKeyFiles(path: string, ctx: CkksContext, options: { overwrite?: boolean } = {}): Promise<{ secretKeyPath: string; publicKeyPath: string }> {
  const overwrite = options.overwrite ?? false;
  await refuseExisting([path, `${path}.pub`], overwrite);
  await writeFileSafely(path, serializeSecretKey(ctx), { mode: 0o600, overwrite });
  try {
    await writeFileSafely(`${path}.pub`, serializePublicContext(ctx), { mode: 0o644, overwrite });
  } catch (e) {
    // A secret key whose public half was not written is useless: take it back.
    if (!overwrite) await unlink(path).catch(() => undefined);
    throw e;
  }
  return { secretKeyPath: path, publicKeyPath: `${path}.pub` };
}

/**
 * Reads a secret key file; refuses one readable by group or others.
 *
 * @example
 * ```ts
 * const client = await readSecretKeyFile('key');
 * ```
 */
export async function readSecretKeyFile(path: string): Promise<CkksContext> {
  const bytes = await readFileTyped(path, 'secretKeyPath');
  if (isEnvelopeOf(bytes, 'publicKey')) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} holds public evaluation keys; pass the secret key file (the one keygen wrote without .pub)`, { param: 'secretKeyPath' });
  }
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new CipherMLError('CIPHERML_E_KEY_FILE_INSECURE', `${path} has mode ${(st.mode & 0o777).toString(8)}; a secret key file must be 600 (chmod 600 ${path})`, { param: 'secretKeyPath' });
  }
  return deserializeSecretKey(bytes, 'secretKeyPath');
}

/**
 * Reads a public context file (`key.pub`).
 *
 * @example
 * ```ts
 * const server = await readPublicContextFile('key.pub');
 * ```
 */
export async function readPublicContextFile(path: string): Promise<CkksContext> {
  return deserializePublicContext(await readFileTyped(path, 'publicKeyPath'), 'publicKeyPath');
}

// ---- framing ---------------------------------------------------------------------------------

/**
 * zstd level 1: SEAL writes residues below 2^k in 64-bit words, whose zero high bytes are all
 * there is to compress; level 1 takes half the time of the default 3 and packs them 7 % smaller
 * (measured on seeded ciphertexts at N = 8192).
 */
const ZSTD_LEVEL = 1;

/** True when `bytes` is a well-formed CKKS envelope of `kind` (no parsing of the body). */
function isEnvelopeOf(bytes: Uint8Array, kind: 'publicKey' | 'privateKey' | 'ciphertext'): boolean {
  try {
    openEnvelope(bytes, { kind, scheme: 'ckks' }, 'bytes');
    return true;
  } catch {
    return false;
  }
}

function seal0(ctx: CkksContext, kind: 'publicKey' | 'privateKey' | 'ciphertext', sections: readonly Uint8Array[]): Uint8Array {
  const raw = joinSections([Uint8Array.of(BODY_VERSION), ...sections]);
  const packed = nodeZlib.zstdCompressSync(raw, { params: { [nodeZlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
  const body = new Uint8Array(5 + packed.length);
  body[0] = CODEC_ZSTD;
  new DataView(body.buffer).setUint32(1, raw.length);
  body.set(packed, 5);
  return sealEnvelope({ kind, scheme: 'ckks', fingerprint: ctx.fingerprint, body });
}

function open0(bytes: Uint8Array, kind: 'publicKey' | 'privateKey', param: string, count: number | readonly number[]): { fingerprint: string; sections: Uint8Array[] } {
  const env = openEnvelope(bytes, { kind, scheme: 'ckks' }, param);
  const all = splitSections(inflate(env.body, param), param);
  if (all.length === 0 || version(all[0]!) !== BODY_VERSION) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'unknown CKKS key body version', { param });
  const sections = all.slice(1);
  const counts = typeof count === 'number' ? [count] : count;
  if (!counts.includes(sections.length)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `expected ${counts.join(' or ')} sections, found ${sections.length}`, { param });
  return { fingerprint: env.fingerprint, sections };
}

function inflate(body: Uint8Array, param: string): Uint8Array {
  if (body.length < 5 || body[0] !== CODEC_ZSTD) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `unknown body codec ${body[0]}`, { param });
  const rawLength = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  if (rawLength > MAX_RAW_BYTES) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `declared body of ${rawLength} bytes is too large`, { param });
  let raw: Uint8Array;
  try {
    raw = nodeZlib.zstdDecompressSync(body.subarray(5), { maxOutputLength: Math.max(1, rawLength) });
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `zstd body does not decompress: ${(e as Error).message}`, { param, cause: e });
  }
  if (raw.length !== rawLength) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `body decompresses to ${raw.length} bytes, header says ${rawLength}`, { param });
  return raw;
}

function joinSections(sections: readonly Uint8Array[]): Uint8Array {
  const total = sections.reduce((a, s) => a + 4 + s.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let o = 0;
  for (const s of sections) {
    view.setUint32(o, s.length);
    out.set(s, o + 4);
    o += 4 + s.length;
  }
  return out;
}

function splitSections(raw: Uint8Array, param: string): Uint8Array[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Uint8Array[] = [];
  for (let o = 0; o < raw.length; ) {
    if (o + 4 > raw.length) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', 'section header cut off', { param });
    const n = view.getUint32(o);
    if (o + 4 + n > raw.length) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `section of ${n} bytes runs past the body`, { param });
    out.push(raw.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  return out;
}

function version(b: Uint8Array): number {
  return b.length === 1 ? b[0]! : -1;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}

function readU32(b: Uint8Array, param: string): number {
  if (b.length !== 4) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'expected a 4-byte count', { param });
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
}

function json(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v ?? null), 'utf8');
}

function parseJson(b: Uint8Array, param: string): unknown {
  try {
    return JSON.parse(Buffer.from(b).toString('utf8')) as unknown;
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'a JSON section does not parse', { param, cause: e });
  }
}

function header(params: CkksParameters): Uint8Array {
  return json({ polyModulusDegree: params.polyModulusDegree, coeffModulusBits: params.coeffModulusBits, scaleBits: params.scaleBits });
}

function parseHeader(seal: Seal, b: Uint8Array, param: string): CkksParameters {
  const p = parseJson(b, param) as CkksParameters;
  try {
    return validateCkksParameters(seal, p);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `stored parameters are invalid: ${(e as Error).message}`, { param, cause: e });
  }
}

function keyIdOf(b: Uint8Array, param: string): Uint8Array {
  if (b.length !== 16) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'key-set id must be 16 bytes', { param });
  return Uint8Array.from(b);
}

function checkFingerprint(sealParams: S.EncryptionParameters, keyId: Uint8Array, fingerprint: string, sealContext: S.SEALContext, param: string): void {
  if (fingerprintOf(sealParams, keyId) !== fingerprint) {
    sealContext.delete();
    sealParams.delete();
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the envelope fingerprint does not match the stored parameters and key-set id', { param });
  }
}

function saveSerializable(seal: Seal, s: { saveToArray(m: S.ComprModeType): unknown; delete(): void }): Uint8Array {
  try {
    return s.saveToArray(seal.ComprModeType.none) as Uint8Array;
  } finally {
    s.delete();
  }
}

function load<T extends S.ClassHandle & { loadFromArray(ctx: S.SEALContext, b: unknown): void }>(_seal: Seal, ctx: S.SEALContext, obj: T, bytes: Uint8Array, param: string, made: S.ClassHandle[]): T {
  made.push(obj);
  sealCall('load key', () => obj.loadFromArray(ctx, new Uint8Array(bytes)), 'CIPHERML_E_CKKS_CIPHERTEXT_INVALID', param);
  return obj;
}
