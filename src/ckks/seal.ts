import { readFile } from 'node:fs/promises';
import { CipherMLError } from '../core/errors.ts';
import { wasmApi, type WasmApi, type WasmMemory } from '../core/wasm.ts';
import type { MainModule } from 'node-seal';

/**
 * Lazy loader of the node-seal WebAssembly module. Nothing in cipherml imports node-seal
 * statically: the module (≈1.3 MB of wasm) is compiled on the first call, so that importing
 * `cipherml/paillier` or `cipherml/core` never loads it. Each thread gets its own instance.
 */

/** The node-seal runtime (Microsoft SEAL 4.1 bindings). */
export type Seal = MainModule;

const Wasm: WasmApi = wasmApi!;

interface Loaded {
  readonly seal: Seal;
  readonly memory: WasmMemory | undefined;
}

let loading: Promise<Loaded> | undefined;
let loadedMemory: WasmMemory | undefined;

/**
 * @internal SEAL's linear memory once {@link loadSeal} has resolved (undefined before, or when
 * the module exports none): the ciphertext kernels (kernel.ts) read and write SEAL's buffers in it.
 */
export function sealMemory(): WasmMemory | undefined {
  return loadedMemory;
}

/** @internal The WebAssembly namespace, typed for the few calls made here. */
export const WebAssemblyApi: WasmApi = Wasm;

/**
 * Returns the process-wide (per-thread) SEAL instance, compiling the wasm on the first call.
 *
 * @example
 * ```ts
 * const seal = await loadSeal();
 * seal.CoeffModulus.MaxBitCount(8192, seal.SecLevelType.tc128); // 218
 * ```
 */
export function loadSeal(): Promise<Seal> {
  loading ??= instantiate();
  return loading.then((l) => l.seal);
}

/**
 * Bytes of linear memory the SEAL wasm instance has reserved. Wasm memory only grows, so a leak
 * of SEAL objects shows as growth of this number across repeated work.
 *
 * @example
 * ```ts
 * const before = await sealHeapBytes();
 * ```
 */
export async function sealHeapBytes(): Promise<number> {
  loading ??= instantiate();
  const { memory } = await loading;
  return memory?.buffer.byteLength ?? 0;
}

async function instantiate(): Promise<Loaded> {
  let mod: { default: (options?: Record<string, unknown>) => Promise<Seal> };
  try {
    mod = (await import('node-seal')) as unknown as typeof mod;
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', `cannot load node-seal: ${(e as Error).message}`, { param: 'node-seal', cause: e });
  }
  let memory: WasmMemory | undefined;
  const wasm = await Wasm.compile(await readFile(new URL('seal_throws.wasm', import.meta.resolve('node-seal'))));
  // Emscripten's documented `instantiateWasm` hook: we instantiate the module ourselves only to
  // keep a handle on its exported Memory (for heap accounting); the imports are Emscripten's.
  const seal = await mod.default({
    instantiateWasm: (imports: object, done: (instance: object, module: object) => void) => {
      const instance = new Wasm.Instance(wasm, imports);
      memory = Object.values(instance.exports).find((x): x is WasmMemory => x instanceof Wasm.Memory);
      done(instance, wasm);
      return instance.exports;
    },
  });
  loadedMemory = memory;
  return { seal, memory };
}

/**
 * Runs a SEAL call and turns the C++ exception it may raise (a WebAssembly.Exception whose
 * message is `[type, what]`) into a typed error.
 *
 * @example
 * ```ts
 * sealCall('rescale', () => evaluator.rescaleToNextInplace(ct));
 * ```
 */
export function sealCall<T>(what: string, f: () => T, code: 'CIPHERML_E_SEAL_FAILURE' | 'CIPHERML_E_CKKS_CIPHERTEXT_INVALID' = 'CIPHERML_E_SEAL_FAILURE', param: string = what): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CipherMLError) throw e;
    throw new CipherMLError(code, `${what} failed: ${sealMessage(e)}`, { param, cause: e });
  }
}

/** The human-readable part of a SEAL exception. */
export function sealMessage(e: unknown): string {
  const m = (e as { message?: unknown } | undefined)?.message;
  if (Array.isArray(m)) return m.map(String).join(': ');
  return typeof m === 'string' ? m : String(e);
}
