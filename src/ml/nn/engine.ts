import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import type * as Tfjs from '@tensorflow/tfjs';
import { CipherMLError } from '../../core/errors.ts';

/**
 * The neural-network engine: TensorFlow.js core with its WebAssembly backend (XNNPACK kernels,
 * SIMD; the .wasm binaries ship inside the npm package, nothing is downloaded). The wasm backend
 * of tfjs 4.22 has no Conv2DBackpropFilter and no ReluGrad kernel, so conv nets could not train
 * on it; both are registered here through kernels it has (see {@link registerMissingWasmKernels}).
 * The pure-JS CPU backend is the baseline of `cipherml bench fl-cnn` and a fallback.
 *
 * Loaded lazily: nothing here imports tfjs at module load; {@link loadEngine} does, once.
 */

/** The tfjs module (core ops, gradients, optimizers; its Node bundle registers every gradient). */
export type Tf = typeof Tfjs;

/** Backends the engine can run on. */
export type EngineBackend = 'wasm' | 'cpu';

/** What {@link loadEngine} returns. */
export interface Engine {
  readonly tf: Tf;
  readonly backend: EngineBackend;
}

let core: Promise<Tf> | undefined;
const patched = new WeakSet<object>();
const ready = new Map<EngineBackend, Promise<void>>();

async function loadCore(): Promise<Tf> {
  core ??= (async () => {
    const tf = await import('@tensorflow/tfjs');
    // tfjs prints a hint to install tfjs-node on load in Node; that package downloads native
    // libraries at install time, which this project does not allow.
    // PROD drops tfjs's debug checks and that hint.
    tf.env().set('PROD', true);
    return tf;
  })();
  return core;
}

interface TensorInfoLike {
  readonly dataId: object;
  readonly shape: number[];
  readonly dtype: string;
}
interface KernelBackend {
  disposeData(dataId: object): boolean;
}
type KernelFn = (args: { inputs: Record<string, TensorInfoLike>; backend: KernelBackend; attrs?: Record<string, unknown> }) => TensorInfoLike;

/**
 * Registers on the wasm backend the two gradient kernels it lacks, each through kernels it has:
 *
 * - Conv2DBackpropFilter: dW[kh,kw,ci,co] = Σ_{b,y,x} x[b, y·s+kh−pt, x·s+kw−pl, ci]·dy[b,y,x,co],
 *   which is a Conv2D of xᵀ = x transposed to [ci, H, W, b] with the filter dyᵀ = dy transposed to
 *   [oh, ow, b, co], stride 1, dilation s and the forward padding: its output [ci, kh, kw, co]
 *   (sliced to the filter size when the padding rounds up) transposed back to [kh, kw, ci, co].
 * - ReluGrad: dy·step(x).
 *
 * Idempotent. Exported for the tests, which compare both against the CPU backend.
 */
export function registerMissingWasmKernels(tf: Tf): void {
  const k = (name: string): KernelFn => {
    const cfg = tf.getKernel(name, 'wasm');
    if (cfg === undefined) throw new CipherMLError('CIPHERML_E_NN_ENGINE', `the wasm backend has no ${name} kernel`, { param: 'engine' });
    return cfg.kernelFunc as unknown as KernelFn;
  };
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') === undefined) {
    const transpose = k('Transpose');
    const conv = k('Conv2D');
    const slice = k('Slice');
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ((args: { inputs: Record<string, TensorInfoLike>; backend: KernelBackend; attrs: Record<string, unknown> }) => {
        const { inputs, backend, attrs } = args;
        const x = inputs['x']!;
        const dy = inputs['dy']!;
        const filterShape = attrs['filterShape'] as [number, number, number, number];
        const dataFormat = (attrs['dataFormat'] as string | undefined) ?? 'NHWC';
        if (dataFormat !== 'NHWC') throw new CipherMLError('CIPHERML_E_NN_ENGINE', `Conv2DBackpropFilter on wasm supports NHWC only, got ${dataFormat}`, { param: 'engine' });
        const info = tf.backend_util.computeConv2DInfo(
          x.shape as [number, number, number, number],
          filterShape,
          attrs['strides'] as [number, number],
          1,
          attrs['pad'] as 'same' | 'valid',
          attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
        );
        const p = info.padInfo;
        const xt = transpose({ inputs: { x }, backend, attrs: { perm: [3, 1, 2, 0] } });
        const dyt = transpose({ inputs: { x: dy }, backend, attrs: { perm: [1, 2, 0, 3] } });
        const full = conv({
          inputs: { x: xt, filter: dyt },
          backend,
          attrs: { strides: [1, 1], dilations: [info.strideHeight, info.strideWidth], pad: [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]], dataFormat: 'NHWC' },
        });
        backend.disposeData(xt.dataId);
        backend.disposeData(dyt.dataId);
        const [ci, kh, kw, co] = [filterShape[2], filterShape[0], filterShape[1], filterShape[3]];
        let cut = full;
        if (full.shape[1] !== kh || full.shape[2] !== kw) {
          cut = slice({ inputs: { x: full }, backend, attrs: { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] } });
          backend.disposeData(full.dataId);
        }
        const out = transpose({ inputs: { x: cut }, backend, attrs: { perm: [1, 2, 0, 3] } });
        backend.disposeData(cut.dataId);
        return out;
      }) as never,
    });
  }
  if (!patched.has(tf)) {
    patched.add(tf);
    // Conv2DBackpropInput for stride 1 as a Conv2D of dy with the filter rotated by 180° and its
    // channels swapped ([kh, kw, out, in]), padded by k − 1 − p ("full" correlation); the wasm
    // backend's own kernel is several times slower. Other strides keep the original kernel.
    const original = k('Conv2DBackpropInput');
    const transpose = k('Transpose');
    const reverse = k('Reverse');
    const conv = k('Conv2D');
    const inputSetup = tf.getKernel('Conv2DBackpropInput', 'wasm')!.setupFunc;
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel({
      kernelName: 'Conv2DBackpropInput',
      backendName: 'wasm',
      ...(inputSetup === undefined ? {} : { setupFunc: inputSetup }),
      kernelFunc: ((args: { inputs: Record<string, TensorInfoLike>; backend: KernelBackend; attrs: Record<string, unknown> }) => {
        const { inputs, backend, attrs } = args;
        const filter = inputs['filter']!;
        const inputShape = attrs['inputShape'] as [number, number, number, number];
        const strides = attrs['strides'] as number | [number, number];
        const unit = typeof strides === 'number' ? strides === 1 : strides[0] === 1 && strides[1] === 1;
        if (!unit || ((attrs['dataFormat'] as string | undefined) ?? 'NHWC') !== 'NHWC') return original(args);
        const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], 1, 1, attrs['pad'] as 'same' | 'valid', attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined);
        const [kh, kw] = [filter.shape[0]!, filter.shape[1]!];
        const p = info.padInfo;
        const flipped = reverse({ inputs: { x: filter }, backend, attrs: { dims: [0, 1] } });
        const swapped = transpose({ inputs: { x: flipped }, backend, attrs: { perm: [0, 1, 3, 2] } });
        backend.disposeData(flipped.dataId);
        const out = conv({
          inputs: { x: inputs['dy']!, filter: swapped },
          backend,
          attrs: { strides: [1, 1], dilations: [1, 1], pad: [[0, 0], [kh - 1 - p.top, kh - 1 - p.bottom], [kw - 1 - p.left, kw - 1 - p.right], [0, 0]], dataFormat: 'NHWC' },
        });
        backend.disposeData(swapped.dataId);
        return out;
      }) as never,
    });
    // BatchMatMul with transposeA/transposeB takes a slow path on wasm: transpose explicitly.
    const matmul = k('BatchMatMul');
    const matmulSetup = tf.getKernel('BatchMatMul', 'wasm')!.setupFunc;
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({
      kernelName: 'BatchMatMul',
      backendName: 'wasm',
      ...(matmulSetup === undefined ? {} : { setupFunc: matmulSetup }),
      kernelFunc: ((args: { inputs: Record<string, TensorInfoLike>; backend: KernelBackend; attrs: Record<string, unknown> }) => {
        const { inputs, backend, attrs } = args;
        const t = (x: TensorInfoLike): TensorInfoLike => {
          const r = x.shape.length;
          return transpose({ inputs: { x }, backend, attrs: { perm: [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2] } });
        };
        const a = attrs['transposeA'] === true ? t(inputs['a']!) : inputs['a']!;
        const b = attrs['transposeB'] === true ? t(inputs['b']!) : inputs['b']!;
        const out = matmul({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
        if (a !== inputs['a']) backend.disposeData(a.dataId);
        if (b !== inputs['b']) backend.disposeData(b.dataId);
        return out;
      }) as never,
    });
  }
  if (tf.getKernel('ReluGrad', 'wasm') === undefined) {
    const step = k('Step');
    const mul = k('Multiply');
    tf.registerKernel({
      kernelName: 'ReluGrad',
      backendName: 'wasm',
      kernelFunc: ((args: { inputs: Record<string, TensorInfoLike>; backend: KernelBackend }) => {
        const { inputs, backend } = args;
        const s = step({ inputs: { x: inputs['x']! }, backend, attrs: { alpha: 0 } });
        const out = mul({ inputs: { a: inputs['dy']!, b: s }, backend });
        backend.disposeData(s.dataId);
        return out;
      }) as never,
    });
  }
}

/**
 * Loads tfjs and makes `backend` the active one: "wasm" (default; the fast path) or "cpu" (pure
 * JavaScript). Switching later is allowed; tensors do not survive a switch, so callers keep their
 * parameters as Float32Arrays between runs.
 *
 * @example
 * ```ts
 * const { tf } = await loadEngine();
 * tf.tidy(() => tf.conv2d(tf.zeros([1, 28, 28, 1]), tf.zeros([5, 5, 1, 6]), 1, 'same'));
 * ```
 */
export async function loadEngine(backend: EngineBackend = 'wasm'): Promise<Engine> {
  const tf = await loadCore();
  let p = ready.get(backend);
  if (p === undefined) {
    p = (async () => {
      if (backend === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        // The binaries sit beside the package's Node entry point, which Emscripten reads from
        // disk (no fetch). Threads need a Worker built from a Blob URL, which Node lacks: one
        // thread, SIMD where the runtime has it.
        const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
        wasm.setWasmPaths(join(dirname(entry), sep), false);
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        registerMissingWasmKernels(tf);
      }
    })();
    ready.set(backend, p);
  }
  await p;
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new CipherMLError('CIPHERML_E_NN_ENGINE', `the tfjs ${backend} backend failed to initialise`, { param: 'engine' });
  }
  await tf.ready();
  return { tf, backend };
}
