// Writes the files the README's `cipherml he` commands name, from the bundled MNIST test set
// (examples/data/mnist): examples/he/calibration.npz (100 digits, 9900–9999, as [100,1,28,28]
// float32 in [0,1]) and examples/he/input.npy (digit 0 as [1,1,28,28]). Deterministic: rerun
// it and the files are byte-identical. Run: node scripts/make-he-examples.ts
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readIdx } from '../src/inference/idx.ts';
import { writeNpy, writeZip } from '../src/inference/npy.ts';

const root = join(import.meta.dirname, '..');
const images = readIdx(await readFile(join(root, 'examples/data/mnist/t10k-images-idx3-ubyte.gz')));
const digits = (from: number, count: number): Float64Array => Float64Array.from(images.data.subarray(from * 784, (from + count) * 784), (v) => v / 255);
await writeFile(join(root, 'examples/he/calibration.npz'), writeZip(new Map([['x.npy', writeNpy({ dims: [100, 1, 28, 28], data: digits(9900, 100) })]])));
await writeFile(join(root, 'examples/he/input.npy'), writeNpy({ dims: [1, 1, 28, 28], data: digits(0, 1) }));
process.stdout.write('wrote examples/he/calibration.npz and examples/he/input.npy\n');
