import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadEngine } from '../ml/nn/engine.ts';
import { MODELS, initParameters, type ModelSpec } from '../ml/nn/models.ts';
import { Network } from '../ml/nn/network.ts';
import { SeededRng } from '../ml/rng.ts';
import type { ImageDataset } from '../ml/idx.ts';
import { exportOnnx } from './export-nn.ts';

function images(count: number, seed: number): ImageDataset {
  const r = new SeededRng(seed);
  return { images: Uint8Array.from({ length: count * 784 }, () => r.nextInt(256)), labels: Uint8Array.from({ length: count }, () => r.nextInt(10)), count, rows: 28, cols: 28, classes: 10 };
}

describe('ONNX export of trained networks', () => {
  for (const name of ['lenet5', 'lenet5-he', 'cnn', 'mlp'] as const) {
    it(`${name}: onnxruntime on the export equals the engine's logits (max |Δ| ≤ 1e-5)`, async () => {
      const { tf } = await loadEngine('wasm');
      const spec = MODELS[name];
      const net = new Network(tf, spec, initParameters(spec, 3));
      const data = images(64, 1);
      // A few training steps so that biases are non-zero and the layout of every tensor matters.
      net.train(data, { epochs: 1, batchSize: 32, learningRate: name === 'lenet5-he' ? 0.001 : 0.05, seed: 2 });
      const expected = net.predict(data);
      const bytes = exportOnnx(spec, new Map(net.getParameters().map((p) => [p.name, p])));
      const session = await ort.InferenceSession.create(bytes);
      const input = Float32Array.from(data.images, (v) => v / 255);
      const out = await session.run({ input: new ort.Tensor('float32', input, [64, 1, 28, 28]) });
      const got = out[session.outputNames[0]!]!.data as Float32Array;
      expect(got.length).toBe(expected.length);
      let max = 0;
      for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - expected[i]!));
      expect(max).toBeLessThanOrEqual(1e-5);
      net.dispose();
    }, 60_000);
  }

  it('refuses a layer it does not know and parameters of the wrong shape, with typed errors', () => {
    const spec = { ...MODELS.mlp, layers: [...MODELS.mlp.layers, { op: 'dropout' }] } as unknown as ModelSpec;
    const params = new Map(initParameters(MODELS.mlp, 1).map((p) => [p.name, p]));
    expect(() => exportOnnx(spec, params)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_ONNX_EXPORT_UNSUPPORTED', message: expect.stringContaining('"dropout"') }));
    params.set('fc2.weight', { ...params.get('fc2.weight')!, shape: [128, 9] });
    expect(() => exportOnnx(MODELS.mlp, params)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_MODEL_MISMATCH', message: expect.stringContaining('fc2.weight') }));
  });
});
