import { readFile } from 'node:fs/promises';
import { CkksContext, deserializePublicContext, loadSeal, serializePublicContext } from '../ckks/index.ts';
import { packageRoot } from '../core/paths.ts';
import { join } from 'node:path';
import { calibrate } from './calibrate.ts';
import { runPlain } from './execute.ts';
import { choosePacking, decryptOutput, encryptBatch, encryptSingle, inferBytes } from './he.ts';
import { readIdx } from './idx.ts';
import { parseOnnx } from './onnx.ts';

/** Result of {@link runHeDemo}. */
export interface HeDemoResult {
  readonly digit: number;
  readonly label: number;
  readonly plaintextScores: readonly number[];
  readonly decryptedScores: readonly number[];
  readonly plaintextClass: number;
  readonly decryptedClass: number;
  readonly maxAbsError: number;
  /** Execution plan the client's packing chose (single for one digit with default keyparams). */
  readonly packing: 'batch' | 'single';
  readonly ms: { readonly keyparams: number; readonly keygen: number; readonly encrypt: number; readonly inference: number; readonly decrypt: number };
}

/**
 * The whole HE-MAN flow in one process on the bundled MNIST model (examples/he/mnist_square.onnx)
 * and a bundled test digit: keyparams (calibrated on 200 other test digits), keygen, encrypt
 * (client), inference on the public keys only (server), decrypt (client).
 *
 * @example
 * ```ts
 * const r = await runHeDemo({ digit: 0 });
 * console.log(r.decryptedScores, r.plaintextScores);
 * ```
 */
export async function runHeDemo(o: { digit?: number; onProgress?: (line: string) => void } = {}): Promise<HeDemoResult> {
  const log = o.onProgress ?? (() => undefined);
  const root = packageRoot();
  const digit = o.digit ?? 0;
  const graph = parseOnnx(await readFile(join(root, 'examples/he/mnist_square.onnx')));
  const images = readIdx(await readFile(join(root, 'examples/data/mnist/t10k-images-idx3-ubyte.gz')));
  const labels = readIdx(await readFile(join(root, 'examples/data/mnist/t10k-labels-idx1-ubyte.gz')));
  const pixels = (i: number): Float64Array => Float64Array.from(images.data.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
  let t = performance.now();
  const calib = new Float64Array(200 * 784);
  for (let i = 0; i < 200; i++) calib.set(pixels(9800 + i), i * 784);
  const { graph: calibrated, keyParams } = calibrate(await loadSeal(), graph, { dims: [200, 1, 28, 28], data: calib });
  const tKp = performance.now() - t;
  log(`keyparams: depth ${keyParams.depth}, N = ${keyParams.params.polyModulusDegree}, moduli [${keyParams.params.coeffModulusBits.join(', ')}], scale 2^${keyParams.params.scaleBits}`);
  t = performance.now();
  const client = await CkksContext.create(keyParams.params, { galoisSteps: keyParams.galoisSteps });
  client.metadata = { packing: keyParams.packing, singleUpTo: keyParams.singleUpTo };
  const pub = serializePublicContext(client);
  const server = await deserializePublicContext(pub);
  const tKg = performance.now() - t;
  log(`keygen: public evaluation keys ${pub.length} bytes`);
  try {
    const x = pixels(digit);
    t = performance.now();
    const packing = choosePacking(client, 1);
    const enc = (packing === 'single' ? encryptSingle : encryptBatch)(client, [x], [1, 28, 28]);
    const tEnc = performance.now() - t;
    log(`client: encrypted digit #${digit} with the ${packing} packing (${enc.length} bytes)`);
    t = performance.now();
    const out = inferBytes(server, calibrated, enc);
    const tInf = performance.now() - t;
    log(`server: encrypted inference on public keys only (${(tInf / 1000).toFixed(2)} s)`);
    t = performance.now();
    const dec = decryptOutput(client, out);
    const tDec = performance.now() - t;
    const plain = runPlain(graph, { dims: [1, 1, 28, 28], data: x });
    const argmax = (a: ArrayLike<number>): number => Array.prototype.indexOf.call(a, Math.max(...Array.from(a))) as number;
    const decryptedScores = Array.from(dec.data);
    const plaintextScores = Array.from(plain.data);
    return {
      digit,
      label: labels.data[digit]!,
      plaintextScores,
      decryptedScores,
      plaintextClass: argmax(plaintextScores),
      decryptedClass: argmax(decryptedScores),
      maxAbsError: Math.max(...decryptedScores.map((v, i) => Math.abs(v - plaintextScores[i]!))),
      packing,
      ms: { keyparams: tKp, keygen: tKg, encrypt: tEnc, inference: tInf, decrypt: tDec },
    };
  } finally {
    server.delete();
    client.delete();
  }
}
