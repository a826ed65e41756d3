/**
 * The WebAssembly globals cipherml uses (the project's lib settings do not declare them) and the
 * binary-format encoders of its hand-assembled kernels (WebAssembly core spec §5: LEB128 integers
 * §5.2.2, vectors §5.1.3, names §5.2.4, sections §5.5.2). One home for both, so the CKKS kernel
 * (src/ckks/kernel.ts) and the secure-aggregation SIMD kernel (src/secagg/simd.ts) build their
 * modules the same way.
 */

/** A WebAssembly.Memory, as far as cipherml reads it. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** The WebAssembly namespace, as far as cipherml calls it. */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<object>;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}

/**
 * This runtime's WebAssembly namespace, undefined where there is none.
 *
 * @example
 * ```ts
 * const ok = wasmApi?.validate(bytes) === true;
 * ```
 */
export const wasmApi: WasmApi | undefined = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Unsigned LEB128 (§5.2.2). */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** A vector: its length, then its items (§5.1.3). */
export const vec = (items: readonly (readonly number[])[]): number[] => [...leb(items.length), ...items.flat()];
/** A section: its id and byte length, then its body (§5.5.2). */
export const section = (id: number, body: readonly number[]): number[] => [id, ...leb(body.length), ...body];
/** A name (ASCII here) (§5.2.4). */
export const str = (s: string): number[] => [...leb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
/** A function body: its byte length, then the locals and code (§5.5.13). */
export const funcBody = (code: readonly number[]): number[] => [...leb(code.length), ...code];
/** The module preamble: magic and version 1 (§5.5.16). */
export const WASM_PREAMBLE: readonly number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
