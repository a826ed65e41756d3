// Trains the bundled HE-friendly MNIST classifier (CryptoNets-style square activations):
//   Conv 1→4, 7×7, stride 3 → x² → Gemm 256→64 → x² → Gemm 64→10
// with Adam on softmax cross-entropy, a fixed seed, and writes examples/he/mnist_square.onnx.
// Run: node scripts/train-mnist-he.ts [--data /work/shared/data/mnist] [--epochs 2] (the bundled model: 2 epochs, 96.75 % test accuracy)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from '../src/inference/builder.ts';
import { readIdx } from '../src/inference/idx.ts';

const args = process.argv.slice(2);
const arg = (k: string, d: string): string => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const dataDir = arg('--data', '/work/shared/data/mnist');
const epochs = Number(arg('--epochs', '2'));
const out = arg('--out', new URL('../examples/he/mnist_square.onnx', import.meta.url).pathname);

let s = 0x2545f491;
const rand = (): number => {
  s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const gauss = (): number => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());

const load = (name: string) => readIdx(readFileSync(join(dataDir, name)));
const trainX = load('train-images-idx3-ubyte.gz');
const trainY = load('train-labels-idx1-ubyte.gz');
const testX = load('t10k-images-idx3-ubyte.gz');
const testY = load('t10k-labels-idx1-ubyte.gz');

const C = 4, K = 7, S = 3, O = 8, H1 = C * O * O, H2 = 64, NC = 10;
const params = {
  w1: Float64Array.from({ length: C * K * K }, () => gauss() * Math.sqrt(1 / (K * K))),
  b1: new Float64Array(C),
  w2: Float64Array.from({ length: H2 * H1 }, () => gauss() * Math.sqrt(1 / H1)),
  b2: new Float64Array(H2),
  w3: Float64Array.from({ length: NC * H2 }, () => gauss() * Math.sqrt(1 / H2)),
  b3: new Float64Array(NC),
};
type P = typeof params;
const grads = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new Float64Array(v.length)])) as P;
const m1 = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new Float64Array(v.length)])) as P;
const m2 = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new Float64Array(v.length)])) as P;

const c1 = new Float64Array(H1), a1 = new Float64Array(H1), h2 = new Float64Array(H2), a2 = new Float64Array(H2), z = new Float64Array(NC);
function forward(img: Uint8Array, off: number): void {
  for (let c = 0; c < C; c++) for (let y = 0; y < O; y++) for (let x = 0; x < O; x++) {
    let acc = params.b1[c]!;
    for (let u = 0; u < K; u++) for (let v = 0; v < K; v++) acc += params.w1[(c * K + u) * K + v]! * (img[off + (y * S + u) * 28 + x * S + v]! / 255);
    const i = (c * O + y) * O + x;
    c1[i] = acc;
    a1[i] = acc * acc;
  }
  for (let j = 0; j < H2; j++) {
    let acc = params.b2[j]!;
    for (let i = 0; i < H1; i++) acc += params.w2[j * H1 + i]! * a1[i]!;
    h2[j] = acc;
    a2[j] = acc * acc;
  }
  for (let k = 0; k < NC; k++) {
    let acc = params.b3[k]!;
    for (let j = 0; j < H2; j++) acc += params.w3[k * H2 + j]! * a2[j]!;
    z[k] = acc;
  }
}

const dz = new Float64Array(NC), da2 = new Float64Array(H2), da1 = new Float64Array(H1);
function backward(img: Uint8Array, off: number, label: number): number {
  const mx = Math.max(...z);
  let sum = 0;
  for (let k = 0; k < NC; k++) sum += Math.exp(z[k]! - mx);
  for (let k = 0; k < NC; k++) dz[k] = Math.exp(z[k]! - mx) / sum - (k === label ? 1 : 0);
  da2.fill(0);
  for (let k = 0; k < NC; k++) {
    grads.b3[k]! += dz[k]!;
    for (let j = 0; j < H2; j++) {
      grads.w3[k * H2 + j]! += dz[k]! * a2[j]!;
      da2[j]! += dz[k]! * params.w3[k * H2 + j]!;
    }
  }
  da1.fill(0);
  for (let j = 0; j < H2; j++) {
    const dh = da2[j]! * 2 * h2[j]!;
    grads.b2[j]! += dh;
    for (let i = 0; i < H1; i++) {
      grads.w2[j * H1 + i]! += dh * a1[i]!;
      da1[i]! += dh * params.w2[j * H1 + i]!;
    }
  }
  for (let c = 0; c < C; c++) for (let y = 0; y < O; y++) for (let x = 0; x < O; x++) {
    const i = (c * O + y) * O + x;
    const dc = da1[i]! * 2 * c1[i]!;
    grads.b1[c]! += dc;
    for (let u = 0; u < K; u++) for (let v = 0; v < K; v++) grads.w1[(c * K + u) * K + v]! += dc * (img[off + (y * S + u) * 28 + x * S + v]! / 255);
  }
  return -(z[label]! - mx - Math.log(sum));
}

const lr = 1e-3, B = 64, b1 = 0.9, b2 = 0.999;
let step = 0;
const n = trainY.dims[0]!;
const order = Array.from({ length: n }, (_, i) => i);
for (let e = 0; e < epochs; e++) {
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let loss = 0;
  for (let start = 0; start < n; start += B) {
    for (const g of Object.values(grads)) g.fill(0);
    const end = Math.min(n, start + B);
    for (let t = start; t < end; t++) {
      const idx = order[t]!;
      forward(trainX.data, idx * 784);
      loss += backward(trainX.data, idx * 784, trainY.data[idx]!);
    }
    step++;
    for (const k of Object.keys(params) as (keyof P)[]) {
      const p = params[k], g = grads[k], m = m1[k], v = m2[k];
      for (let i = 0; i < p.length; i++) {
        const gi = Math.max(-5, Math.min(5, g[i]! / (end - start)));
        m[i] = b1 * m[i]! + (1 - b1) * gi;
        v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
        p[i]! -= (lr * (m[i]! / (1 - b1 ** step))) / (Math.sqrt(v[i]! / (1 - b2 ** step)) + 1e-8);
      }
    }
  }
  let correct = 0;
  for (let t = 0; t < testY.dims[0]!; t++) {
    forward(testX.data, t * 784);
    if (z.indexOf(Math.max(...z)) === testY.data[t]) correct++;
  }
  process.stderr.write(`epoch ${e + 1}/${epochs}: train loss ${(loss / n).toFixed(4)}, test accuracy ${(correct / testY.dims[0]!).toFixed(4)}\n`);
}

// Export: the input is pixels/255 in [0, 1], shape [N, 1, 28, 28].
const g = new GraphBuilder(13);
const x = g.input('input', [null, 1, 28, 28]);
const conv = g.node('Conv', [x, g.init('conv.weight', { dims: [C, 1, K, K], data: params.w1 }), g.init('conv.bias', { dims: [C], data: params.b1 })], { kernel_shape: [K, K], strides: [S, S] }, 'conv');
const sq1 = g.node('Mul', [conv, conv], {}, 'square1');
const flat = g.node('Flatten', [sq1], { axis: 1 }, 'flatten');
const fc1 = g.node('Gemm', [flat, g.init('fc1.weight', { dims: [H2, H1], data: params.w2 }), g.init('fc1.bias', { dims: [H2], data: params.b2 })], { transB: 1 }, 'fc1');
const sq2 = g.node('Mul', [fc1, fc1], {}, 'square2');
g.output(g.node('Gemm', [sq2, g.init('fc2.weight', { dims: [NC, H2], data: params.w3 }), g.init('fc2.bias', { dims: [NC], data: params.b3 })], { transB: 1 }, 'fc2'));
writeFileSync(out, g.toBytes());
process.stderr.write(`wrote ${out}\n`);
