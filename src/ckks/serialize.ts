import { stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
// A namespace import: zstd exists from Node.js 23.8, and a named import would fail at link time on
// older Node.js before the version check in core/node-version.ts could explain why.
import * as nodeZlib from 'node:zlib';
import { decompressBounded } from '../core/bounded.ts';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_KINDS, openEnvelope, sealEnvelope } from '../core/envelope.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped, refuseExisting, writeFileSafely, writeFileSafelyWith } from '../core/io.ts';
import type { GaloisGroup } from './context.ts';
import { CkksContext, CkksVector, fingerprintOf, makeSealContext, normalizeSteps } from './context.ts';
import { galoisGroupSize, groupSteps } from './keys.ts';
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
/**
 * Decompression cap. Every SEAL object in a body is a vector of residues modulo RNS primes of at
 * least {@link MIN_PRIME_BITS} bits (src/ckks/params.ts), written as 64-bit words: uniformly
 * random residues (keys in NTT form, ciphertexts, the non-seeded half of seeded objects) carry
 * ≥ bits/64 of entropy per byte, so zstd cannot shrink them below bits/64 of their size. A valid
 * body therefore decompresses to at most `compressed · 64 / minPrimeBits` bytes plus the JSON
 * sections and headers ({@link RAW_SLACK_BYTES}); a larger declared length is a bomb and is
 * refused before anything is allocated. With a key at hand the bound uses that key's smallest
 * prime; without one, the smallest prime the parameters allow.
 */
const MIN_PRIME_BITS = 20;
const RAW_SLACK_BYTES = 1 << 20;
/** SEAL's serialization header (magic, version, compression mode, sizes): 16 bytes. */
const SEAL_HEADER_BYTES = 16;

/** A key file's raw body is at most this long (its length field is read as a signed 31-bit size). */
const MAX_RAW_BYTES = 2 ** 31 - 1;
/** Galois key groups a public key body may hold, one section each (far above any plan's step count). */
const MAX_GALOIS_SECTIONS = 4096;

function rawCap(compressedBytes: number, minPrimeBits: number): number {
  return Math.ceil((compressedBytes * 64) / minPrimeBits) + RAW_SLACK_BYTES;
}

/** Largest SEAL ciphertext under `ctx`: two polynomials of N coefficients per prime, 8 bytes each. */
function maxCiphertextBytes(ctx: CkksContext): number {
  return 2 * ctx.params.polyModulusDegree * ctx.params.coeffModulusBits.length * 8 + 2 * SEAL_HEADER_BYTES + 64;
}

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
  return seal0(ctx, 'publicKey', [...publicContextSections(ctx)]);
}

/**
 * The public context's body sections, made lazily: header, key-set id, public key,
 * relinearization key, Galois marker, steps `{ steps, groups }`, then one SEAL blob per group of
 * Galois keys. With the secret key at hand the evaluation keys are (re)generated in seeded form
 * (same secret, fresh randomness: half the bytes of expanded keys), one group at a time, so a
 * consumer that writes each section out holds one group, never the key set.
 */
function* publicContextSections(ctx: CkksContext): Generator<Uint8Array> {
  const seal = ctx.seal;
  const keys = ctx.keys;
  yield header(ctx.params);
  yield ctx.keyId;
  const groups = keys.secret !== undefined ? groupSteps(ctx.galoisSteps, keys.groupSize ?? galoisGroupSize(ctx.params)) : keys.galois.map((g) => [...g.steps].sort((a, b) => a - b));
  if (keys.secret !== undefined) {
    const kg = new seal.KeyGenerator(ctx.sealContext, keys.secret);
    try {
      yield saveSerializable(seal, kg.createPublicKeySerializable());
      const relin = keys.relin !== undefined || keys.deferred?.relin === true;
      yield relin ? saveSerializable(seal, kg.createRelinKeysSerializable()) : new Uint8Array(0);
      yield groups.length === 0 ? new Uint8Array(0) : Uint8Array.of(GALOIS_TRAILING);
      yield json({ steps: ctx.galoisSteps, groups });
      for (const g of groups) yield saveSerializable(seal, sealCall('createGaloisKeys', () => kg.createGaloisKeysSerializableWithSteps(Int32Array.from(g)), 'CIPHERML_E_SEAL_FAILURE', 'galoisSteps'));
    } finally {
      kg.delete();
    }
  } else {
    yield keys.public.saveToArray(seal.ComprModeType.none) as Uint8Array;
    yield keys.relin === undefined ? new Uint8Array(0) : (keys.relin.saveToArray(seal.ComprModeType.none) as Uint8Array);
    yield groups.length === 0 ? new Uint8Array(0) : Uint8Array.of(GALOIS_TRAILING);
    yield json({ steps: ctx.galoisSteps, groups });
    for (const g of keys.galois) yield Uint8Array.from(g.keys.saveToArray(seal.ComprModeType.none) as Uint8Array);
  }
}

/**
 * Writes `path` (the public context) section by section through a zstd stream: the file is
 * made while the Galois keys are generated, so memory holds one group of keys, not key.pub
 * (the envelope's lengths are patched and its CRC computed from the written file).
 *
 * @example
 * ```ts
 * await writePublicContextFile('key.pub', ctx);
 * ```
 */
export async function writePublicContextFile(path: string, ctx: CkksContext, options: { overwrite?: boolean } = {}): Promise<void> {
  await writeFileSafelyWith(
    path,
    async (fh) => {
      const head = sealEnvelope({ kind: 'publicKey', scheme: 'ckks', fingerprint: ctx.fingerprint, body: new Uint8Array(5) }).subarray(0, ENVELOPE_HEADER_BYTES);
      await fh.write(head, 0, head.length, 0);
      let at = ENVELOPE_HEADER_BYTES + 5;
      let raw = 0;
      const z = nodeZlib.createZstdCompress({ params: { [nodeZlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
      const drained = (async () => {
        for await (const chunk of z as AsyncIterable<Buffer>) {
          await fh.write(chunk, 0, chunk.length, at);
          at += chunk.length;
        }
      })();
      const put = async (b: Uint8Array): Promise<void> => {
        raw += b.length;
        if (!z.write(b)) await once(z, 'drain');
      };
      try {
        await put(u32(1));
        await put(Uint8Array.of(BODY_VERSION));
        for (const section of publicContextSections(ctx)) {
          await put(u32(section.length));
          await put(section);
        }
      } finally {
        z.end();
        await drained;
      }
      if (raw > MAX_RAW_BYTES) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the key set serializes to ${raw} bytes, over the ${MAX_RAW_BYTES}-byte limit of a key file`, { param: 'galoisSteps' });
      const bodyLength = at - ENVELOPE_HEADER_BYTES;
      const fields = new Uint8Array(9);
      const view = new DataView(fields.buffer);
      view.setUint32(0, bodyLength);
      fields[4] = CODEC_ZSTD;
      view.setUint32(5, raw);
      await fh.write(fields, 0, 9, 24);
      // CRC-32 of header and body, read back in chunks.
      let crc = 0;
      const buf = Buffer.alloc(1 << 20);
      for (let o = 0; o < at; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, at - o), o);
        if (bytesRead === 0) throw new CipherMLError('CIPHERML_E_IO', `${path}: short read while checksumming`, { param: 'path' });
        crc = nodeZlib.crc32(buf.subarray(0, bytesRead), crc);
        o += bytesRead;
      }
      const tail = new Uint8Array(4);
      new DataView(tail.buffer).setUint32(0, crc);
      await fh.write(tail, 0, 4, at);
    },
    { mode: 0o644, overwrite: options.overwrite === true },
  );
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
  const { fingerprint, sections } = open0(bytes, 'publicKey', param, 'atLeast6');
  const params = parseHeader(seal, sections[0]!, param);
  const keyId = keyIdOf(sections[1]!, param);
  const { steps, groups } = parseSteps(parseJson(sections[5]!, param), params.polyModulusDegree / 2, param);
  const { sealParams, sealContext } = makeSealContext(seal, params);
  checkFingerprint(sealParams, keyId, fingerprint, sealContext, param);
  const made: S.ClassHandle[] = [];
  try {
    const pub = load(seal, sealContext, new seal.PublicKey(), sections[2]!, param, made);
    const relin = sections[3]!.length === 0 ? undefined : load(seal, sealContext, new seal.RelinKeys(), sections[3]!, param, made);
    const skip = options.galoisKeys === false;
    const galois: GaloisGroup[] = [];
    if (!skip && sections[4]!.length > 0) {
      const blobs = sections[4]![0] === GALOIS_TRAILING && sections[4]!.length === 1 ? sections.slice(6) : [sections[4]!];
      if (blobs.length !== groups.length) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${blobs.length} Galois key groups for ${groups.length} step groups`, { param });
      blobs.forEach((b, i) => galois.push({ steps: new Set(groups[i]), keys: load(seal, sealContext, new seal.GaloisKeys(), b, param, made) }));
    }
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
  return splitCiphertexts(bytes, param, MIN_PRIME_BITS);
}

function splitCiphertexts(bytes: Uint8Array, param: string, minPrimeBits: number): CiphertextFile {
  const env = openEnvelope(bytes, { kind: 'ciphertext', scheme: 'ckks' }, param);
  const raw = inflate(env.body, param, rawCap(env.body.length, minPrimeBits));
  const head = splitSections(raw, param, 3, true);
  if (head.length < 3 || version(head[0]!) !== BODY_VERSION) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'unknown ciphertext body version', { param });
  const count = readU32(head[2]!, param);
  // Each record is a 4-byte length, a 4-byte slot count and at least a SEAL header.
  if (count > raw.length / (8 + 4 + SEAL_HEADER_BYTES)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `body declares ${count} ciphertexts in ${raw.length} bytes`, { param });
  const sections = splitSections(raw, param, 3 + 2 * count);
  const meta = parseJson(sections[1]!, param);
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
  const maxBytes = maxCiphertextBytes(ctx);
  file.records.forEach((r, i) => {
    if (r.length > ctx.slotCount) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ciphertext ${i} declares ${r.length} slots of ${ctx.slotCount}`, { param });
    if (r.bytes.length > maxBytes) throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `ciphertext ${i} holds ${r.bytes.length} bytes; under this key a ciphertext has at most ${maxBytes}`, { param });
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
  const file = splitCiphertexts(bytes, param, Math.min(...ctx.params.coeffModulusBits));
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
    await writePublicContextFile(`${path}.pub`, ctx, { overwrite });
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

/** Galois section marker: the key groups follow as the sections after the steps section (SEAL's own blobs start with its magic 0x5E 0xA1). */
const GALOIS_TRAILING = 0x54;

/** The steps section: a sorted step list (one group), or { steps, groups } partitioning them. */
function parseSteps(v: unknown, slots: number, param: string): { steps: number[]; groups: number[][] } {
  if (Array.isArray(v)) {
    const steps = normalizeSteps(v as number[], slots);
    return { steps, groups: steps.length === 0 ? [] : [steps] };
  }
  const o = v as { steps?: unknown; groups?: unknown } | null;
  if (o === null || typeof o !== 'object' || !Array.isArray(o.steps) || !Array.isArray(o.groups) || !o.groups.every((g) => Array.isArray(g))) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the Galois steps section is not a list or { steps, groups }', { param });
  }
  const steps = normalizeSteps(o.steps as number[], slots);
  const groups = (o.groups as number[][]).map((g) => normalizeSteps(g, slots));
  const flat = groups.flat().sort((a, b) => a - b);
  if (flat.length !== steps.length || flat.some((x, i) => x !== steps[i])) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the Galois key groups do not partition the steps', { param });
  return { steps, groups };
}

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

function open0(bytes: Uint8Array, kind: 'publicKey' | 'privateKey', param: string, count: number | readonly number[] | 'atLeast6'): { fingerprint: string; sections: Uint8Array[] } {
  const env = openEnvelope(bytes, { kind, scheme: 'ckks' }, param);
  const max = count === 'atLeast6' ? 1 + 6 + MAX_GALOIS_SECTIONS : 1 + Math.max(...(typeof count === 'number' ? [count] : count));
  const all = splitSections(inflate(env.body, param, rawCap(env.body.length, MIN_PRIME_BITS)), param, max);
  if (all.length === 0 || version(all[0]!) !== BODY_VERSION) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'unknown CKKS key body version', { param });
  const sections = all.slice(1);
  if (count === 'atLeast6') {
    if (sections.length < 6) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `expected at least 6 sections, found ${sections.length}`, { param });
    return { fingerprint: env.fingerprint, sections };
  }
  const counts = typeof count === 'number' ? [count] : count;
  if (!counts.includes(sections.length)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `expected ${counts.join(' or ')} sections, found ${sections.length}`, { param });
  return { fingerprint: env.fingerprint, sections };
}

/**
 * Refuses, without decompressing or loading SEAL, a CKKS envelope whose body declares more
 * decompressed bytes than a valid body of its compressed size can hold (the cap above): lets a
 * caller turn a decompression bomb away before loading the key it would be parsed under.
 *
 * @example
 * ```ts
 * checkEnvelopeBounds(uploaded, 'ciphertext', 'predict'); // CIPHERML_E_INPUT_TOO_LARGE for a bomb
 * ```
 */
export function checkEnvelopeBounds(bytes: Uint8Array, kind: 'publicKey' | 'privateKey' | 'ciphertext', param: string): void {
  const env = openEnvelope(bytes, { kind, scheme: 'ckks' }, param);
  if (env.body.length < 5 || env.body[0] !== CODEC_ZSTD) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `unknown body codec ${env.body[0]}`, { param });
  const declared = new DataView(env.body.buffer, env.body.byteOffset, env.body.byteLength).getUint32(1);
  const cap = rawCap(env.body.length, MIN_PRIME_BITS);
  if (declared > cap) throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the body declares ${declared} decompressed bytes; at most ${cap} are possible here`, { param, details: { declared, cap } });
}

/**
 * O(1) header-only form of {@link checkEnvelopeBounds} for the HTTP thread: reads the envelope's
 * kind, body length and the body's declared decompressed length, and refuses (400
 * `CIPHERML_E_INPUT_TOO_LARGE`) a declaration above what the body length allows, without the CRC
 * pass over the body, a copy to a worker thread or loading the user's key set. Anything else it
 * leaves to the full parse on the worker, which still runs {@link checkEnvelopeBounds}.
 *
 * @example
 * ```ts
 * refuseDeclaredBomb(uploaded, 'ciphertext', 'predict'); // throws for a 16 KB body declaring 512 MiB
 * ```
 */
export function refuseDeclaredBomb(bytes: Uint8Array, kind: 'publicKey' | 'privateKey' | 'ciphertext', param: string): void {
  if (bytes.length < ENVELOPE_HEADER_BYTES + 5 + 4 || bytes[5] !== ENVELOPE_KINDS[kind] || bytes[ENVELOPE_HEADER_BYTES] !== CODEC_ZSTD) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyLength = view.getUint32(24);
  if (ENVELOPE_HEADER_BYTES + bodyLength + 4 !== bytes.length) return;
  const declared = view.getUint32(ENVELOPE_HEADER_BYTES + 1);
  const cap = rawCap(bodyLength, MIN_PRIME_BITS);
  if (declared > cap) throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the body declares ${declared} decompressed bytes; at most ${cap} are possible here`, { param, details: { declared, cap } });
}

/** The body's declared raw length is checked against `cap` before the codec allocates anything. */
function inflate(body: Uint8Array, param: string, cap: number): Uint8Array {
  if (body.length < 5 || body[0] !== CODEC_ZSTD) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `unknown body codec ${body[0]}`, { param });
  const rawLength = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  return decompressBounded(body.subarray(5), 'zstd', { expectedBytes: rawLength, cap }, param);
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

/** Splits `raw` into at most `max` sections (a longer body is corrupt); with `prefix`, just its first `max`. */
function splitSections(raw: Uint8Array, param: string, max: number, prefix = false): Uint8Array[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Uint8Array[] = [];
  for (let o = 0; o < raw.length; ) {
    if (out.length === max) {
      if (prefix) break;
      throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `more than ${max} sections in the body`, { param });
    }
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
    // A copy: the next key generation may reuse the WebAssembly memory the view points into.
    return Uint8Array.from(s.saveToArray(seal.ComprModeType.none) as Uint8Array);
  } finally {
    s.delete();
  }
}

function load<T extends S.ClassHandle & { loadFromArray(ctx: S.SEALContext, b: unknown): void }>(_seal: Seal, ctx: S.SEALContext, obj: T, bytes: Uint8Array, param: string, made: S.ClassHandle[]): T {
  made.push(obj);
  sealCall('load key', () => obj.loadFromArray(ctx, new Uint8Array(bytes)), 'CIPHERML_E_CKKS_CIPHERTEXT_INVALID', param);
  return obj;
}
