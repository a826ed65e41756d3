import type * as S from 'node-seal';
import { funcBody, section, str, vec, WASM_PREAMBLE, type WasmMemory } from '../core/wasm.ts';
import type { Seal } from './seal.ts';
import { sealMemory, WebAssemblyApi } from './seal.ts';

/**
 * RNS kernels that run on SEAL's own ciphertext buffers (no serialization, no plaintext), for the
 * plaintext-scalar linear combinations of the batch plan.
 *
 * A CKKS ciphertext in NTT form is `size` polynomials × L primes × N words, each word a residue
 * mod its prime q_j (SEAL 4.1 `Ciphertext::data_`, polynomial-major). Multiplying by the constant
 * plaintext m (an integer; SEAL's encoding of a scalar) is, in NTT form, the word-wise product by
 * m mod q_j; so Σ_i m_i·x_i needs one pass over each x_i and no encoding at all. SEAL's
 * `multiply_plain` does the same product through a 128-bit Barrett reduction that compiles to a
 * library call in WebAssembly (≈ 30 ns a word here); this kernel uses Shoup's precomputed
 * quotient with a floating-point estimate instead (one f64 multiply, two i64 multiplies):
 *
 *   h = trunc(f64(x) · f64(w/q)),  r = x·w − h·q  (wrapping i64 arithmetic)
 *
 * For q < 2^50 and x, w < q, f64(x)·f64(w/q) < 2^50 is within 1/4 of x·w/q, so h is ⌊x·w/q⌋ or
 * one off and r ∈ [−q, 2q) is exact in i64. Accumulating r without reduction stays below
 * 2^63 for {@link MAX_LAZY_TERMS} terms; `reduce` then brings each word to [0, q) once.
 */

/** Primes must be below this for the kernel (the f64 quotient estimate's bound). */
export const KERNEL_PRIME_LIMIT: number = 2 ** 50;
/** Terms accumulated before a reduction: 2^62 / 2^50 = 4096, halved for margin. */
export const MAX_LAZY_TERMS = 2048;

/** @internal The two kernels, bound to SEAL's memory. */
export interface RnsKernel {
  /** dst[j] += x_j·w − h_j·q over `n` words at byte addresses dst, src (signed, unreduced). */
  mac(dst: number, src: number, n: number, q: bigint, w: bigint, wq: number): void;
  /** dst[j] ← dst[j] mod q ∈ [0, q) over `n` signed words; `qinv` = 1/q. */
  reduce(dst: number, n: number, q: bigint, qinv: number): void;
  /**
   * dst[j] += x_j·w_j − h_j·q over `n` words at byte addresses dst, src, w (signed, unreduced):
   * the word-wise product by a plaintext polynomial (NTT form) instead of a constant. The quotient
   * estimate h_j = trunc(f64(x_j)·f64(w_j)·f64(1/q)) carries three roundings of relative error
   * 2^-53 on x_j·w_j/q < q < 2^50, so it is within 3/8 of the true quotient and r ∈ [−q, 2q) as
   * for `mac`; no per-word precomputation is stored.
   */
  macv(dst: number, src: number, w: number, n: number, q: bigint, qinv: number): void;
  readonly memory: WasmMemory;
}

const I32 = 0x7f;
const I64 = 0x7e;
const F64 = 0x7c;


// Opcodes (WebAssembly core spec §5.4).
const OP = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, get: 0x20, set: 0x21, tee: 0x22,
  i32const: 0x41, i64const: 0x42, i64load: 0x29, i64store: 0x37,
  i32add: 0x6a, i32shl: 0x74, i32geU: 0x4f, i32ltU: 0x49,
  i64add: 0x7c, i64sub: 0x7d, i64mul: 0x7e, i64geS: 0x59, i64ltS: 0x53,
  f64mul: 0xa2, f64floor: 0x9c, f64fromI64S: 0xb9, f64fromI64U: 0xba,
} as const;
const VOID = 0x40;
const MEM = [0x03, 0x00]; // align 2^3, offset 0
const truncSatS = [0xfc, 0x06];
const truncSatU = [0xfc, 0x07];

/** The module's bytes: imports env.memory, exports mac and reduce. */
function moduleBytes(): Uint8Array {
  // mac(dst i32, src i32, n i32, q i64, w i64, wq f64); locals: end i32 (6), x i64 (7)
  const mac = [
    ...vec([[1, I32], [1, I64]]),
    OP.get, 0, OP.get, 2, OP.i32const, 3, OP.i32shl, OP.i32add, OP.set, 6,
    OP.block, VOID,
    OP.get, 0, OP.get, 6, OP.i32geU, OP.brIf, 0,
    OP.loop, VOID,
    OP.get, 1, OP.i64load, ...MEM, OP.set, 7,
    OP.get, 0,
    OP.get, 0, OP.i64load, ...MEM,
    OP.get, 7, OP.get, 4, OP.i64mul,
    OP.get, 7, OP.f64fromI64U, OP.get, 5, OP.f64mul, ...truncSatU, OP.get, 3, OP.i64mul,
    OP.i64sub, OP.i64add, OP.i64store, ...MEM,
    OP.get, 1, OP.i32const, 8, OP.i32add, OP.set, 1,
    OP.get, 0, OP.i32const, 8, OP.i32add, OP.tee, 0,
    OP.get, 6, OP.i32ltU, OP.brIf, 0,
    OP.end, OP.end, OP.end,
  ];
  // reduce(dst i32, n i32, q i64, qinv f64); locals: end i32 (4), r i64 (5)
  const reduce = [
    ...vec([[1, I32], [1, I64]]),
    OP.get, 0, OP.get, 1, OP.i32const, 3, OP.i32shl, OP.i32add, OP.set, 4,
    OP.block, VOID,
    OP.get, 0, OP.get, 4, OP.i32geU, OP.brIf, 0,
    OP.loop, VOID,
    OP.get, 0, OP.i64load, ...MEM, OP.set, 5,
    OP.get, 5,
    OP.get, 5, OP.f64fromI64S, OP.get, 3, OP.f64mul, OP.f64floor, ...truncSatS, OP.get, 2, OP.i64mul,
    OP.i64sub, OP.set, 5,
    // while r < 0: r += q
    OP.block, VOID, OP.loop, VOID,
    OP.get, 5, OP.i64const, 0, OP.i64geS, OP.brIf, 1,
    OP.get, 5, OP.get, 2, OP.i64add, OP.set, 5, OP.br, 0,
    OP.end, OP.end,
    // while r ≥ q: r −= q
    OP.block, VOID, OP.loop, VOID,
    OP.get, 5, OP.get, 2, OP.i64ltS, OP.brIf, 1,
    OP.get, 5, OP.get, 2, OP.i64sub, OP.set, 5, OP.br, 0,
    OP.end, OP.end,
    OP.get, 0, OP.get, 5, OP.i64store, ...MEM,
    OP.get, 0, OP.i32const, 8, OP.i32add, OP.tee, 0,
    OP.get, 4, OP.i32ltU, OP.brIf, 0,
    OP.end, OP.end, OP.end,
  ];
  // macv(dst i32, src i32, w i32, n i32, q i64, qinv f64); locals: end i32 (6), x i64 (7), y i64 (8)
  const macv = [
    ...vec([[1, I32], [2, I64]]),
    OP.get, 0, OP.get, 3, OP.i32const, 3, OP.i32shl, OP.i32add, OP.set, 6,
    OP.block, VOID,
    OP.get, 0, OP.get, 6, OP.i32geU, OP.brIf, 0,
    OP.loop, VOID,
    OP.get, 1, OP.i64load, ...MEM, OP.set, 7,
    OP.get, 2, OP.i64load, ...MEM, OP.set, 8,
    OP.get, 0,
    OP.get, 0, OP.i64load, ...MEM,
    OP.get, 7, OP.get, 8, OP.i64mul,
    OP.get, 7, OP.f64fromI64U, OP.get, 8, OP.f64fromI64U, OP.f64mul, OP.get, 5, OP.f64mul, ...truncSatU, OP.get, 4, OP.i64mul,
    OP.i64sub, OP.i64add, OP.i64store, ...MEM,
    OP.get, 1, OP.i32const, 8, OP.i32add, OP.set, 1,
    OP.get, 2, OP.i32const, 8, OP.i32add, OP.set, 2,
    OP.get, 0, OP.i32const, 8, OP.i32add, OP.tee, 0,
    OP.get, 6, OP.i32ltU, OP.brIf, 0,
    OP.end, OP.end, OP.end,
  ];
  return Uint8Array.from([
    ...WASM_PREAMBLE,
    ...section(1, vec([
      [0x60, ...vec([[I32], [I32], [I32], [I64], [I64], [F64]]), 0],
      [0x60, ...vec([[I32], [I32], [I64], [F64]]), 0],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I64], [F64]]), 0],
    ])),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vec([[0], [1], [2]])),
    ...section(7, vec([[...str('mac'), 0x00, 0], [...str('reduce'), 0x00, 1], [...str('macv'), 0x00, 2]])),
    ...section(10, vec([funcBody(mac), funcBody(reduce), funcBody(macv)])),
  ]);
}

let kernel: RnsKernel | null | undefined;
let enabled = true;

/**
 * @internal Turns the kernels off (true: on again) for this thread, so that tests can compare
 * against SEAL's own path. Returns the previous setting.
 */
export function setKernelEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** @internal The kernels over SEAL's memory, or undefined when SEAL's memory is not reachable. */
export function rnsKernel(): RnsKernel | undefined {
  if (!enabled) return undefined;
  if (kernel !== undefined) return kernel ?? undefined;
  const memory = sealMemory();
  if (memory === undefined) {
    kernel = null;
    return undefined;
  }
  const mod = new WebAssemblyApi.Module(moduleBytes());
  const inst = new WebAssemblyApi.Instance(mod, { env: { memory } });
  const e = inst.exports as { mac: RnsKernel['mac']; reduce: RnsKernel['reduce']; macv: RnsKernel['macv'] };
  kernel = { mac: e.mac, reduce: e.reduce, macv: e.macv, memory };
  return kernel;
}

/** Byte offset, inside a SEAL Ciphertext object, of its data pointer (found once, by probing). */
let dataPointerOffset: number | null | undefined;
/** The same for a SEAL Plaintext. */
let plainPointerOffset: number | null | undefined;

/** The C++ object address of an embind handle (Emscripten's `$$.ptr`). */
function objectAddress(o: object): number | undefined {
  const p = (o as { $$?: { ptr?: unknown } }).$$?.ptr;
  return typeof p === 'number' ? p : undefined;
}

/**
 * @internal Finds where a SEAL Ciphertext keeps its data pointer: among the object's first 128
 * bytes, the aligned word that points at the coefficients `saveToArray` writes (compared at the
 * first, middle and last words). Undefined when no offset matches (then the kernels are not used).
 */
export function probeDataPointer(seal: Seal, ct: S.Ciphertext, memory: WasmMemory): number | undefined {
  if (dataPointerOffset !== undefined) return dataPointerOffset ?? undefined;
  dataPointerOffset = findPointer(seal, ct, ct.size() * ct.coeffModulusSize() * ct.polyModulusDegree(), memory) ?? null;
  return dataPointerOffset ?? undefined;
}

/**
 * @internal {@link probeDataPointer} for a SEAL Plaintext (its coefficient words, prime-major in
 * NTT form, are what `saveToArray` writes last).
 */
export function probePlainPointer(seal: Seal, pt: S.Plaintext, memory: WasmMemory): number | undefined {
  if (plainPointerOffset !== undefined) return plainPointerOffset ?? undefined;
  plainPointerOffset = findPointer(seal, pt, pt.coeffCount(), memory) ?? null;
  return plainPointerOffset ?? undefined;
}

function findPointer(seal: Seal, o: S.Ciphertext | S.Plaintext, words: number, memory: WasmMemory): number | undefined {
  const addr = objectAddress(o);
  if (addr === undefined || words === 0) return undefined;
  const saved = o.saveToArray(seal.ComprModeType.none) as Uint8Array;
  const tail = new BigUint64Array(saved.slice(saved.length - 8 * words).buffer);
  const heap32 = new Uint32Array(memory.buffer);
  const heapBytes = memory.buffer.byteLength;
  for (let off = 0; off < 128; off += 4) {
    const p = heap32[(addr + off) >>> 2]!;
    if (p % 8 !== 0 || p === 0 || p + 8 * words > heapBytes) continue;
    const view = new BigUint64Array(memory.buffer, p, words);
    if (view[0] === tail[0] && view[words >> 1] === tail[words >> 1] && view[words - 1] === tail[words - 1]) return off;
  }
  return undefined;
}

/** @internal Byte address of a ciphertext's coefficient words (after {@link probeDataPointer} succeeded). */
export function ciphertextData(ct: S.Ciphertext, memory: WasmMemory): number {
  const addr = objectAddress(ct)!;
  return new Uint32Array(memory.buffer)[(addr + dataPointerOffset!) >>> 2]!;
}

/** @internal Byte address of a plaintext's coefficient words (after {@link probePlainPointer} succeeded). */
export function plaintextData(pt: S.Plaintext, memory: WasmMemory): number {
  const addr = objectAddress(pt)!;
  return new Uint32Array(memory.buffer)[(addr + plainPointerOffset!) >>> 2]!;
}
