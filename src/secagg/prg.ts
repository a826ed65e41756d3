import { createCipheriv } from 'node:crypto';
import { endianness } from 'node:os';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange, describe } from '../core/guards.ts';
import { simdArena, type SimdArena } from './simd.ts';

/**
 * Mask expansion and arithmetic in Z_{2^k}^m for secure aggregation (Bonawitz et al., CCS 2017,
 * §3 "Pseudorandom generator" and §4: masks PRG(s_{u,v}) and PRG(b_u) are added to / subtracted
 * from the quantized input vector modulo R = 2^k).
 *
 * PRG: AES-256-CTR (NIST SP 800-38A §6.5) keyed with the 32-byte seed, initial counter block =
 * 16 zero bytes, run over zeros; the keystream is cut into little-endian uint32 words and each is
 * reduced mod 2^k by keeping its low k bits. Because 2^k divides 2^32 the reduction maps the
 * uniform word distribution to the uniform distribution on Z_{2^k} exactly (no modulo bias).
 *
 * SEED REUSE: with a fixed IV, one seed always yields the same keystream, so a seed must never be
 * used for two different masks (two vectors masked with the same seed leak their difference).
 * The protocol derives fresh seeds every round (fresh X25519 keys and a fresh self-mask seed).
 * The 128-bit counter cannot wrap: expandMask is limited to 2^28 words = 2^26 blocks.
 */

/**
 * Largest mask length expandMask accepts (2^28 words = 1 GiB of keystream).
 *
 * @example
 * ```ts
 * if (modelSize > MAX_MASK_LENGTH) throw new Error('split the model into chunks');
 * ```
 */
export const MAX_MASK_LENGTH: number = 2 ** 28;

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * `bytes` bytes of AES-256-CTR keystream under `key` (32 bytes) starting at counter block `iv`
 * (16 bytes; incremented as a 128-bit big-endian integer, SP 800-38A §B.1). Exposed for the
 * SP 800-38A F.5.5 known-answer test and for callers that need raw keystream.
 *
 * @example
 * ```ts
 * aesCtrKeystream(new Uint8Array(32), new Uint8Array(16), 16); // AES_0(0^128)
 * ```
 */
export function aesCtrKeystream(key: Uint8Array, iv: Uint8Array, bytes: number): Uint8Array {
  assertBytes(key, 'key', 32);
  assertBytes(iv, 'iv', 16);
  assertIntegerInRange(bytes, 'bytes', 0, 4 * MAX_MASK_LENGTH);
  const out = new Uint8Array(bytes);
  fillKeystream(key, iv, out);
  return out;
}

/**
 * Expands a 32-byte seed into `length` pseudorandom values uniform in [0, 2^modulusBits):
 * AES-256-CTR(seed, IV = 0^128) keystream of 4·length bytes, read as little-endian uint32, each
 * masked to its low `modulusBits` bits. Deterministic in (seed, length, modulusBits); a prefix of
 * a longer expansion equals a shorter expansion. Never reuse a seed for two different masks.
 *
 * Throws CIPHERML_E_INVALID_ARGUMENT naming `seed` (not 32 bytes), `length` (not an integer in
 * [0, 2^28]) or `modulusBits` (not an integer in [1, 32]).
 *
 * @example
 * ```ts
 * const mask = expandMask(seed, 1000, 24); // Uint32Array(1000), every value < 2^24
 * ```
 */
export function expandMask(seed: Uint8Array, length: number, modulusBits: number): Uint32Array {
  assertBytes(seed, 'seed', 32);
  assertIntegerInRange(length, 'length', 0, MAX_MASK_LENGTH);
  assertIntegerInRange(modulusBits, 'modulusBits', 1, 32);
  const out = new Uint32Array(length);
  const view = new Uint8Array(out.buffer);
  fillKeystream(seed, new Uint8Array(16), view);
  if (!LITTLE_ENDIAN) {
    // The wire meaning is little-endian words; swap on big-endian hosts so results agree.
    for (let i = 0; i < view.length; i += 4) {
      const b0 = view[i]!;
      const b1 = view[i + 1]!;
      view[i] = view[i + 3]!;
      view[i + 1] = view[i + 2]!;
      view[i + 2] = b1;
      view[i + 3] = b0;
    }
  }
  if (modulusBits < 32) {
    const mask = maskFor(modulusBits);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! & mask;
  }
  return out;
}

/**
 * Element-wise (a + b) mod 2^modulusBits into a new array. Inputs are interpreted mod
 * 2^modulusBits (higher bits are ignored). Throws CIPHERML_E_SHAPE_MISMATCH when the lengths
 * differ and CIPHERML_E_INVALID_ARGUMENT for non-Uint32Array inputs or modulusBits ∉ [1, 32].
 *
 * @example
 * ```ts
 * addMod(Uint32Array.of(0xffffffff), Uint32Array.of(2), 32); // Uint32Array [1]
 * ```
 */
export function addMod(a: Uint32Array, b: Uint32Array, modulusBits: number): Uint32Array {
  checkOperands(a, b, modulusBits, 'a');
  const out = new Uint32Array(a.length);
  const mask = maskFor(modulusBits);
  // a[i] + b[i] < 2^33 is exact in a double; `&` takes it mod 2^32 (ToInt32) then keeps k bits,
  // valid because 2^k divides 2^32; `>>> 0` returns the unsigned value.
  for (let i = 0; i < a.length; i++) out[i] = ((a[i]! + b[i]!) & mask) >>> 0;
  return out;
}

/**
 * Element-wise (a − b) mod 2^modulusBits into a new array; same rules as {@link addMod}.
 *
 * @example
 * ```ts
 * subMod(Uint32Array.of(1), Uint32Array.of(2), 8); // Uint32Array [255]
 * ```
 */
export function subMod(a: Uint32Array, b: Uint32Array, modulusBits: number): Uint32Array {
  checkOperands(a, b, modulusBits, 'a');
  const out = new Uint32Array(a.length);
  const mask = maskFor(modulusBits);
  // −2^32 < a[i] − b[i] < 2^32; ToInt32 in `&` is reduction mod 2^32 for negatives too.
  for (let i = 0; i < a.length; i++) out[i] = ((a[i]! - b[i]!) & mask) >>> 0;
  return out;
}

/**
 * acc ← (acc + b) mod 2^modulusBits element-wise, in place; returns `acc`. Same rules as
 * {@link addMod}.
 *
 * @example
 * ```ts
 * const acc = new Uint32Array(3);
 * addModInPlace(acc, expandMask(seed, 3, 16), 16);
 * ```
 */
export function addModInPlace(acc: Uint32Array, b: Uint32Array, modulusBits: number): Uint32Array {
  checkOperands(acc, b, modulusBits, 'acc');
  const mask = maskFor(modulusBits);
  for (let i = 0; i < acc.length; i++) acc[i] = ((acc[i]! + b[i]!) & mask) >>> 0;
  return acc;
}

/**
 * acc ← (acc − b) mod 2^modulusBits element-wise, in place; returns `acc`. Same rules as
 * {@link addMod}.
 *
 * @example
 * ```ts
 * subModInPlace(acc, expandMask(seed, acc.length, 16), 16); // removes that mask again
 * ```
 */
export function subModInPlace(acc: Uint32Array, b: Uint32Array, modulusBits: number): Uint32Array {
  checkOperands(acc, b, modulusBits, 'acc');
  const mask = maskFor(modulusBits);
  for (let i = 0; i < acc.length; i++) acc[i] = ((acc[i]! - b[i]!) & mask) >>> 0;
  return acc;
}

/**
 * acc ← acc + sign·PRG(seed) (mod 2^32), without materialising the mask: the keystream of
 * {@link expandMask} is added segment by segment. Reducing mod 2^k can wait until the end
 * ({@link reduceModInPlace}) because 2^k divides 2^32, so Σ ± (PRG(s) mod 2^k) and
 * (Σ ± PRG(s)) mod 2^k agree. One mask of {@link accumulateMasks}.
 *
 * @example
 * ```ts
 * accumulateMask(y, seed, +1);      // y + PRG(seed)
 * reduceModInPlace(y, 24);          // now in Z_{2^24}, equal to addModInPlace(y, expandMask(seed, n, 24), 24)
 * ```
 */
export function accumulateMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): Uint32Array {
  return accumulateMasks(acc, [{ seed, sign }]);
}

/**
 * acc ← acc + Σ sign_i·PRG(seed_i) (mod 2^32) over many masks at once: per segment of
 * {@link MASK_SEGMENT_WORDS} words, the accumulator is copied once into WebAssembly memory, each
 * seed's AES-256-CTR keystream for that segment is made in one OpenSSL call (the counter block of
 * word w is w/4, SP 800-38A §6.5, so a segment starts at IV = its first block) and added with
 * SIMD (simd.ts), and the accumulator is copied back. Without WebAssembly SIMD, or on a
 * big-endian host, the same sum is computed with scalar loops.
 *
 * @example
 * ```ts
 * accumulateMasks(y, [{ seed: b, sign: 1 }, { seed: s_uv, sign: -1 }]);
 * reduceModInPlace(y, 24);
 * ```
 */
export function accumulateMasks(acc: Uint32Array, masks: readonly { readonly seed: Uint8Array; readonly sign: 1 | -1 }[]): Uint32Array {
  if (!(acc instanceof Uint32Array)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint32Array, got ${describe(acc)}`, { param: 'acc' });
  masks.forEach((m, i) => assertBytes(m.seed, `masks[${i}].seed`, 32));
  if (masks.length === 0 || acc.length === 0) return acc;
  const arena = LITTLE_ENDIAN ? sharedArena() : null;
  if (arena === null) {
    for (const { seed, sign } of masks) {
      const mask = expandMask(seed, acc.length, 32);
      for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + sign * mask[i]!;
    }
    return acc;
  }
  const segment = Math.min(MASK_SEGMENT_WORDS, acc.length + 3) & ~3;
  const segBytes = 4 * segment;
  arena.reserve(2 * segBytes);
  if (zeros.length < Math.min(segBytes, KEYSTREAM_CALL_BYTES)) zeros = new Uint8Array(Math.min(segBytes, KEYSTREAM_CALL_BYTES));
  for (let off = 0; off < acc.length; off += segment) {
    const n = Math.min(segment, acc.length - off);
    // Padded to whole 16-byte lanes; the padding words are computed and never copied back.
    const bytes = 4 * ((n + 3) & ~3);
    const words = new Uint32Array(arena.buffer(), 0, n);
    words.set(acc.subarray(off, off + n));
    const ksView = new Uint8Array(arena.buffer(), segBytes, bytes);
    const iv = counterBlock(off / 4);
    for (const { seed, sign } of masks) {
      const cipher = createCipheriv('aes-256-ctr', seed, iv);
      for (let at = 0; at < bytes; at += KEYSTREAM_CALL_BYTES) {
        const m = Math.min(KEYSTREAM_CALL_BYTES, bytes - at);
        ksView.set(cipher.update(m === zeros.length ? zeros : zeros.subarray(0, m)), at);
      }
      cipher.final();
      if (sign > 0) arena.add(0, segBytes, bytes);
      else arena.sub(0, segBytes, bytes);
    }
    acc.set(words, off);
  }
  return acc;
}

/**
 * Words per segment of {@link accumulateMasks} (1 MiB of keystream per OpenSSL call): large
 * enough that the per-call cost vanishes, small enough to stay in cache-friendly memory.
 *
 * @example
 * ```ts
 * const segments = Math.ceil(length / MASK_SEGMENT_WORDS);
 * ```
 */
export const MASK_SEGMENT_WORDS: number = 1 << 18;

/**
 * Keystream bytes per OpenSSL call: each call returns a fresh buffer, and buffers of this size
 * are reused by the allocator, where larger ones are mapped and faulted in page by page (measured:
 * system time ≈ 0 at 128 KiB, 50–200 µs per 400 KB mask at other sizes).
 */
const KEYSTREAM_CALL_BYTES = 1 << 17;
let zeros = new Uint8Array(0);
let arenaOfThread: SimdArena | null | undefined;

function sharedArena(): SimdArena | null {
  if (arenaOfThread === undefined) arenaOfThread = simdArena();
  return arenaOfThread;
}

/** The 16-byte big-endian counter block number `block` (block < 2^53). */
function counterBlock(block: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(8, BigInt(block), false);
  return iv;
}

/**
 * acc ← acc mod 2^k.
 *
 * @example
 * ```ts
 * reduceModInPlace(Uint32Array.of(0x1ff), 8); // Uint32Array [255]
 * ```
 */
export function reduceModInPlace(acc: Uint32Array, modulusBits: number): Uint32Array {
  assertIntegerInRange(modulusBits, 'modulusBits', 1, 32);
  if (modulusBits === 32) return acc;
  const mask = maskFor(modulusBits);
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! & mask;
  return acc;
}

/** 2^k − 1 as an int32 bit pattern usable with `&` (k = 32 gives −1, i.e. all ones). */
function maskFor(k: number): number {
  return k === 32 ? -1 : 2 ** k - 1;
}

function fillKeystream(key: Uint8Array, iv: Uint8Array, out: Uint8Array): void {
  if (out.length === 0) return;
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  // Encrypting zeros yields the keystream. Chunked so the zero buffer stays small.
  const CHUNK = 1 << 16;
  const zeros = new Uint8Array(Math.min(CHUNK, out.length));
  for (let off = 0; off < out.length; off += CHUNK) {
    const n = Math.min(CHUNK, out.length - off);
    out.set(cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n)), off);
  }
  cipher.final();
}

function checkOperands(a: unknown, b: unknown, modulusBits: number, firstParam: string): asserts a is Uint32Array {
  if (!(a instanceof Uint32Array)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint32Array, got ${describe(a)}`, { param: firstParam });
  }
  if (!(b instanceof Uint32Array)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint32Array, got ${describe(b)}`, { param: 'b' });
  }
  assertIntegerInRange(modulusBits, 'modulusBits', 1, 32);
  if (a.length !== b.length) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `vectors have lengths ${a.length} and ${b.length}`, {
      param: 'b',
      details: { expected: a.length, actual: b.length },
    });
  }
}

function assertBytes(value: unknown, param: string, length: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint8Array of ${length} bytes, got ${describe(value)}`, { param });
  }
}
