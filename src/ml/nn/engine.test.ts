import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng.ts';
import { loadEngine } from './engine.ts';
import { MODELS, initParameters, paramSpecs } from './models.ts';
import { Network } from './network.ts';
import type { ImageDataset } from '../idx.ts';

const rand = (n: number, seed: number): Float32Array => {
  const r = new SeededRng(seed);
  return Float32Array.from({ length: n }, () => r.nextFloat() * 2 - 1);
};

/** Runs `f` on a backend and returns its output values. */
async function on(backend: 'wasm' | 'cpu', f: (tf: Awaited<ReturnType<typeof loadEngine>>['tf']) => Float32Array): Promise<Float32Array> {
  const { tf } = await loadEngine(backend);
  return f(tf);
}

function synthetic(count: number, seed: number): ImageDataset {
  const r = new SeededRng(seed);
  const labels = Uint8Array.from({ length: count }, () => r.nextInt(10));
  // Each class lights a different band of rows, with noise: learnable in a few steps.
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.floor(p / 78.4) === labels[i] ? 200 + r.nextInt(56) : r.nextInt(60);
  return { images, labels, count, rows: 28, cols: 28, classes: 10 };
}

describe('tfjs engine (wasm backend with the registered kernels)', () => {
  it('Conv2DBackpropFilter, Conv2DBackpropInput and BatchMatMul agree with the pure-JS CPU backend', async () => {
    const cases = [
      { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' as const },
      { x: [2, 10, 10, 2], f: [5, 5, 2, 3], strides: 1, pad: 'valid' as const },
      { x: [1, 11, 11, 2], f: [3, 3, 2, 2], strides: 2, pad: 'same' as const },
    ];
    for (const c of cases) {
      const run = (tf: Awaited<ReturnType<typeof loadEngine>>['tf']): Float32Array =>
        tf.tidy(() => {
          const x = tf.tensor4d(rand(c.x.reduce((a, b) => a * b), 1), c.x as [number, number, number, number]);
          const w = tf.tensor4d(rand(c.f.reduce((a, b) => a * b), 2), c.f as [number, number, number, number]);
          const g = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a as never, b as never, c.strides, c.pad))))([x, w]);
          return Float32Array.from([...(g[0]!.dataSync() as Float32Array), ...(g[1]!.dataSync() as Float32Array)]);
        });
      const wasm = await on('wasm', run);
      const cpu = await on('cpu', run);
      expect(wasm.length).toBe(cpu.length);
      for (let i = 0; i < cpu.length; i++) expect(wasm[i]).toBeCloseTo(cpu[i]!, 3);
    }
    const mm = (tf: Awaited<ReturnType<typeof loadEngine>>['tf']): Float32Array =>
      tf.tidy(() => {
        const a = tf.tensor2d(rand(12, 3), [3, 4]);
        const b = tf.tensor2d(rand(20, 4), [5, 4]);
        return Float32Array.from([...(tf.matMul(a, b, false, true).dataSync() as Float32Array), ...(tf.matMul(a, a, true, false).dataSync() as Float32Array)]);
      });
    const [mw, mc] = [await on('wasm', mm), await on('cpu', mm)];
    for (let i = 0; i < mc.length; i++) expect(mw[i]).toBeCloseTo(mc[i]!, 5);
  });

  it('LeNet-5 has 61,706 parameters and learns a synthetic task; FedProx μ pulls towards the start', async () => {
    expect(paramSpecs(MODELS.lenet5).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)).toBe(61706);
    const { tf } = await loadEngine('wasm');
    const data = synthetic(256, 5);
    const start = initParameters(MODELS.lenet5, 9);
    const net = new Network(tf, MODELS.lenet5, start);
    const before = net.evaluate(data);
    net.train(data, { epochs: 2, batchSize: 32, learningRate: 0.1, seed: 1 });
    const after = net.evaluate(data);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.accuracy).toBeGreaterThan(0.5);
    const drift = (mu: number): number => {
      net.setParameters(start);
      net.train(data, { epochs: 1, batchSize: 32, learningRate: 0.1, seed: 1, proximalMu: mu });
      return net.getParameters().reduce((s, p, k) => s + p.values.reduce((t, v, i) => t + (v - start[k]!.values[i]!) ** 2, 0), 0);
    };
    expect(drift(5)).toBeLessThan(drift(0));
    net.dispose();
  });

  it('refuses parameters whose shapes differ from the model, naming the tensor', async () => {
    const { tf } = await loadEngine('wasm');
    const net = new Network(tf, MODELS.mlp, initParameters(MODELS.mlp, 1));
    const wrong = initParameters(MODELS.mlp, 1).map((p) => (p.name === 'fc1.weight' ? { ...p, shape: [783, 128] } : p));
    expect(() => net.setParameters(wrong, 'model from worker 3')).toThrow(expect.objectContaining({ code: 'CIPHERML_E_MODEL_MISMATCH', param: 'model from worker 3', message: expect.stringContaining('fc1.weight') }));
    expect(() => net.setParameters(initParameters(MODELS.lenet5, 1))).toThrow(expect.objectContaining({ code: 'CIPHERML_E_MODEL_MISMATCH' }));
    net.dispose();
  });
});
