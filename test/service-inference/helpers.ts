import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { openStorage } from '../../src/service/index.ts';
import { readArrays, writeNpy, writeZip } from '../../src/inference/npy.ts';
import type { Tensor } from '../../src/inference/onnx.ts';

/** The bundled MNIST model of `bench he` and `he demo`. */
export const MNIST_ONNX: Uint8Array = readFileSync(new URL('../../examples/he/mnist_square.onnx', import.meta.url));

/** The first `n` samples of the bundled calibration set, as an .npz. */
export function calibrationNpz(n: number): Uint8Array {
  const all = readArrays(readFileSync(new URL('../../examples/he/calibration.npz', import.meta.url)), 'calibration')[0]!;
  const per = all.data.length / all.dims[0]!;
  return writeZip(new Map([['x.npy', writeNpy({ dims: [n, ...all.dims.slice(1)], data: all.data.slice(0, n * per) })]]));
}

/** MNIST test digits `from`..`from + n - 1` (pixels / 255) as a [n, 1, 28, 28] tensor; the calibration set is disjoint. */
export function mnistDigits(from: number, n: number): Tensor {
  const raw = gunzipSync(readFileSync(new URL('../../examples/data/mnist/t10k-images-idx3-ubyte.gz', import.meta.url)));
  const pixels = raw.subarray(16 + from * 784, 16 + (from + n) * 784);
  return { dims: [n, 1, 28, 28], data: Float64Array.from(pixels, (v) => v / 255) };
}

/** Tokens for an owner, two users and a second owner, made in the service's storage. */
export async function makeTokens(dataDir: string): Promise<{ owner: string; owner2: string; alice: string; bob: string }> {
  const s = await openStorage({ dataDir });
  try {
    const make = async (name: string, role: 'owner' | 'user'): Promise<string> => s.createToken((await s.ensureUser(name, role)).id);
    return { owner: await make('owner', 'owner'), owner2: await make('owner2', 'owner'), alice: await make('alice', 'user'), bob: await make('bob', 'user') };
  } finally {
    await s.close();
  }
}
