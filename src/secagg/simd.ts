import { funcBody, section, str, vec, WASM_PREAMBLE, wasmApi } from '../core/wasm.ts';

/**
 * Word-wise addition and subtraction mod 2^32 of uint32 vectors with WebAssembly SIMD (i32x4.add /
 * i32x4.sub: four lanes per instruction, wrapping mod 2^32 like Uint32Array stores). The mask
 * accumulation of secure aggregation (prg.ts) spends as long adding keystream words as AES-CTR
 * takes to make them when the addition is a scalar JavaScript loop (≈ 2 ns per word against
 * ≈ 0.5 ns of AES-NI keystream); the SIMD loop removes most of that.
 *
 * The module, in WebAssembly text form (two functions of the same shape, `sub` with i32x4.sub):
 *
 *   (module
 *     (import "e" "m" (memory 1))
 *     (func (export "add") (param $dst i32) (param $src i32) (param $bytes i32) (local $end i32)
 *       (local.set $end (i32.add (local.get $dst) (local.get $bytes)))
 *       (block (loop
 *         (br_if 1 (i32.ge_u (local.get $dst) (local.get $end)))
 *         (v128.store (local.get $dst) (i32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
 *         (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
 *         (local.set $src (i32.add (local.get $src) (i32.const 16)))
 *         (br 0)))))
 *
 * `bytes` is a multiple of 16 (callers pad the vectors); WebAssembly memory is little-endian, so a
 * word is the little-endian uint32 of its four bytes, the wire meaning of the keystream.
 */

/** One function body of the module: `op` is the i32x4 opcode after the 0xfd prefix (LEB128). */
function body(op: readonly number[]): number[] {
  const code = [
    0x01, 0x01, 0x7f, // one local i32 ($end)
    0x20, 0x00, 0x20, 0x02, 0x6a, 0x21, 0x03, // end = dst + bytes
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0x00, 0x20, 0x03, 0x4f, 0x0d, 0x01, // br_if 1 (dst >= end)
    0x20, 0x00, // address for the store
    0x20, 0x00, 0xfd, 0x00, 0x00, 0x00, // v128.load dst
    0x20, 0x01, 0xfd, 0x00, 0x00, 0x00, // v128.load src
    0xfd, ...op, // i32x4.add / i32x4.sub
    0xfd, 0x0b, 0x00, 0x00, // v128.store
    0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, // dst += 16
    0x20, 0x01, 0x41, 0x10, 0x6a, 0x21, 0x01, // src += 16
    0x0c, 0x00, 0x0b, 0x0b, 0x0b, // br 0, end loop, end block, end func
  ];
  return code;
}

function moduleBytes(): Uint8Array {
  const add = body([0xae, 0x01]);
  const sub = body([0xb1, 0x01]);
  return Uint8Array.from([
    ...WASM_PREAMBLE,
    ...section(1, vec([[0x60, ...vec([[0x7f], [0x7f], [0x7f]]), 0x00]])), // type: (i32, i32, i32) -> ()
    ...section(2, vec([[...str('e'), ...str('m'), 0x02, 0x00, 0x01]])), // import memory "e" "m", min 1 page
    ...section(3, vec([[0x00], [0x00]])), // two functions of type 0
    ...section(7, vec([[...str('add'), 0x00, 0x00], [...str('sub'), 0x00, 0x01]])), // export "add", "sub"
    ...section(10, vec([funcBody(add), funcBody(sub)])),
  ]);
}

/** A WebAssembly memory with the add/sub kernels bound to it. */
export interface SimdArena {
  /** The memory's current buffer (re-read after {@link SimdArena.reserve}: growing detaches it). */
  readonly buffer: () => ArrayBuffer;
  /** Grows the memory to at least `bytes` bytes. */
  readonly reserve: (bytes: number) => void;
  /** words[dst..dst+bytes) ← words[dst..) ± words[src..) mod 2^32; offsets and `bytes` multiples of 16. */
  readonly add: (dst: number, src: number, bytes: number) => void;
  readonly sub: (dst: number, src: number, bytes: number) => void;
}

const Wasm = wasmApi;

const PAGE = 65536;
let compiled: object | null | undefined;

/**
 * A fresh arena, or null when this runtime has no WebAssembly SIMD (callers fall back to scalar
 * loops; the results are identical).
 *
 * @example
 * ```ts
 * const arena = simdArena();
 * if (arena !== null) { arena.reserve(32); arena.add(0, 16, 16); }
 * ```
 */
export function simdArena(): SimdArena | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = Wasm !== undefined && Wasm.validate(bytes) ? new Wasm.Module(bytes) : null;
  }
  if (compiled === null || Wasm === undefined) return null;
  const memory = new Wasm.Memory({ initial: 1 });
  const exports = new Wasm.Instance(compiled, { e: { m: memory } }).exports as Record<'add' | 'sub', (d: number, s: number, b: number) => void>;
  return {
    buffer: () => memory.buffer,
    reserve: (bytes) => {
      const need = Math.ceil(bytes / PAGE) - memory.buffer.byteLength / PAGE;
      if (need > 0) memory.grow(need);
    },
    add: exports.add,
    sub: exports.sub,
  };
}
