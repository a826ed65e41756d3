// Trains the bundled LeNet-5 models for encrypted inference with the project's own engine
// (src/ml/nn, tfjs wasm backend, one thread) on MNIST and exports them to ONNX (opset 13,
// src/inference/export-nn.ts):
//   relu:   Conv 1→6 5×5 same → Relu → AvgPool 2 → Conv 6→16 5×5 → Relu → AvgPool 2 → Flatten
//           → Gemm 400→120 → Relu → Gemm 120→84 → Relu → Gemm 84→10   (examples/he/lenet5_relu.onnx)
//   square: the same with x² instead of Relu and no activation between the dense layers
//           (MODELS['lenet5-he'], CryptoNets-style)                     (examples/he/lenet5_square.onnx)
// HE-MAN's LeNet-5 class: average pooling (CKKS has no max), Relu approximated by `he keyparams`.
// Seeded initialisation and shuffling (SGD, momentum 0.9, batch 32); the bundled files were made
// with the defaults (2 epochs, seed 5) and their figures are in docs/inference.md ("The bundled
// models"). tfjs wasm runs one thread here; a different CPU may round differently in the last bits.
// Run: node scripts/train-lenet5.ts [--model relu|square] [--data examples/fl-mnist/mnist] [--epochs 2] [--seed 5] [--out FILE]
import { writeFileSync } from 'node:fs';
import { exportOnnx } from '../src/inference/export-nn.ts';
import { loadIdxDataset } from '../src/ml/idx.ts';
import { loadEngine } from '../src/ml/nn/engine.ts';
import { initParameters, MODELS, type ModelSpec } from '../src/ml/nn/models.ts';
import { Network } from '../src/ml/nn/network.ts';

const args = process.argv.slice(2);
const arg = (k: string, d: string): string => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const which = arg('--model', 'relu');
if (which !== 'relu' && which !== 'square') throw new Error(`--model ${which}: expected relu or square`);
const dataDir = arg('--data', new URL('../examples/fl-mnist/mnist', import.meta.url).pathname);
const epochs = Number(arg('--epochs', '2'));
const seed = Number(arg('--seed', '5'));
const out = arg('--out', new URL(`../examples/he/lenet5_${which}.onnx`, import.meta.url).pathname);

/** LeNet-5 with average pooling and Relu (HE-MAN's evaluation model class). */
const LENET5_RELU_AVG: ModelSpec = {
  name: 'lenet5-relu-avgpool',
  input: [28, 28, 1],
  classes: 10,
  layers: MODELS.lenet5.layers.map((l) => (l.op === 'maxpool' ? { op: 'avgpool', size: l.size } : l)),
};
const spec = which === 'relu' ? LENET5_RELU_AVG : MODELS['lenet5-he'];
// x² layers square the gradient scale: a smaller step keeps them from diverging.
const learningRate = which === 'relu' ? 0.02 : 0.002;

const { tf } = await loadEngine('wasm');
const train = await loadIdxDataset(dataDir, 'train');
const test = await loadIdxDataset(dataDir, 't10k');
const net = new Network(tf, spec, initParameters(spec, seed));
const t0 = performance.now();
for (let e = 0; e < epochs; e++) {
  const { loss } = net.train(train, { epochs: 1, batchSize: 32, learningRate, momentum: 0.9, seed: seed + e });
  const ev = net.evaluate(test);
  console.log(`epoch ${e + 1}/${epochs}: train loss ${loss.toFixed(4)}, test accuracy ${(100 * ev.accuracy).toFixed(2)} % (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
const bytes = exportOnnx(spec, new Map(net.getParameters().map((p) => [p.name, p])));
writeFileSync(out, bytes);
console.log(`wrote ${out} (${bytes.length} bytes)`);
net.dispose();
