import { join } from 'node:path';
import { packageRoot } from '../core/paths.ts';
import { loadCsvDataset, type CsvDataset } from '../ml/csv.ts';
import {
  PackedCiphertext,
  PackingLayout,
  decryptVector,
  deserializePacked,
  encryptVector,
  generatePaillierKeyPair,
  serializePacked,
} from '../paillier/index.ts';

/**
 * The main demo: two hospitals hold halves of the breast cancer data; a key holder publishes a
 * Paillier key; each hospital encrypts its per-class feature sums and counts; an aggregator adds
 * the ciphertexts without seeing any hospital's numbers; the key holder decrypts only the total and
 * obtains the class centroids of all the data, a nearest-centroid classifier scored on the
 * held-out test set. Every ciphertext crosses a party boundary as bytes (serialize → deserialize),
 * as it would on a network.
 */

/** A progress event of the demo, for live output. */
export interface DemoProgress {
  readonly step: 'keygen' | 'encrypt' | 'aggregate' | 'decrypt' | 'evaluate';
  readonly party: string;
  readonly detail: string;
}

/** Options of {@link runPaillierCentroidDemo}. */
export interface CentroidDemoOptions {
  readonly keyBits?: number;
  /** Folder with breast_homo_{guest,host,test}.csv; default: the bundled examples/data. */
  readonly dataDir?: string;
  readonly onProgress?: (e: DemoProgress) => void;
}

/** What one hospital sent. */
export interface PartyReport {
  readonly name: string;
  readonly rows: number;
  readonly values: number;
  readonly ciphertexts: number;
  readonly bytes: number;
  readonly encryptMs: number;
}

/** Outcome of the demo, printed as a table or as `--json`. */
export interface CentroidDemoResult {
  readonly keyBits: number;
  readonly backend: string;
  readonly fingerprint: string;
  readonly packing: ReturnType<PackingLayout['toJSON']>;
  readonly keygenMs: number;
  readonly parties: readonly PartyReport[];
  readonly aggregateMs: number;
  readonly decryptMs: number;
  /** The first aggregated values (Σ of the first features over class-0 patients), both ways. */
  readonly sample: readonly { readonly name: string; readonly decrypted: number; readonly plaintext: number }[];
  /** Largest |decrypted − plaintext| over the aggregated vector. */
  readonly maxAbsError: number;
  readonly testRows: number;
  /** Nearest-centroid accuracy on the test set with centroids from the decrypted aggregate. */
  readonly accuracyEncrypted: number;
  /** The same classifier computed on pooled plaintext data (what a trusted party would get). */
  readonly accuracyPlaintext: number;
}

/** [Σx | y=0, n0, Σx | y=1, n1]: the sufficient statistics of a two-class centroid model. */
function classSums(ds: CsvDataset): Float64Array {
  const d = ds.featureNames.length;
  const out = new Float64Array(2 * (d + 1));
  ds.features.forEach((x, i) => {
    const off = ds.labels[i] === 1 ? d + 1 : 0;
    for (let j = 0; j < d; j++) out[off + j]! += x[j]!;
    out[off + d]! += 1;
  });
  return out;
}

function centroidAccuracy(stats: Float64Array, test: CsvDataset): number {
  const d = test.featureNames.length;
  const c0 = Array.from({ length: d }, (_, j) => stats[j]! / stats[d]!);
  const c1 = Array.from({ length: d }, (_, j) => stats[d + 1 + j]! / stats[2 * d + 1]!);
  let correct = 0;
  test.features.forEach((x, i) => {
    let d0 = 0;
    let d1 = 0;
    for (let j = 0; j < d; j++) {
      d0 += (x[j]! - c0[j]!) ** 2;
      d1 += (x[j]! - c1[j]!) ** 2;
    }
    if ((d1 < d0 ? 1 : 0) === test.labels[i]) correct++;
  });
  return correct / test.features.length;
}

/**
 * Runs the demo end to end.
 *
 * @example
 * ```ts
 * const r = await runPaillierCentroidDemo({ keyBits: 2048 });
 * console.log(r.accuracyEncrypted, r.maxAbsError);
 * ```
 */
export async function runPaillierCentroidDemo(options: CentroidDemoOptions = {}): Promise<CentroidDemoResult> {
  const dir = options.dataDir ?? join(packageRoot(), 'examples', 'data');
  const progress = options.onProgress ?? (() => undefined);
  const [guest, host, test] = await Promise.all(['guest', 'host', 'test'].map((p) => loadCsvDataset(join(dir, `breast_homo_${p}.csv`), { label: 'y' })));

  let t = performance.now();
  const { publicKey, privateKey } = await generatePaillierKeyPair({ bits: options.keyBits ?? 2048 });
  const keygenMs = performance.now() - t;
  progress({ step: 'keygen', party: 'key holder', detail: `${publicKey.bits}-bit key ${publicKey.fingerprint} (${publicKey.backend.name} backend)` });

  const parties: PartyReport[] = [];
  const wire: Uint8Array[] = [];
  const plainTotal = new Float64Array(2 * (guest!.featureNames.length + 1));
  for (const [name, ds] of [['hospital A', guest!], ['hospital B', host!]] as const) {
    const stats = classSums(ds);
    stats.forEach((v, i) => (plainTotal[i]! += v));
    t = performance.now();
    const enc = await encryptVector(publicKey, stats);
    const bytes = serializePacked(enc);
    const encryptMs = performance.now() - t;
    wire.push(bytes);
    parties.push({ name, rows: ds.features.length, values: stats.length, ciphertexts: enc.values.length, bytes: bytes.length, encryptMs });
    progress({ step: 'encrypt', party: name, detail: `${stats.length} values → ${enc.values.length} ciphertexts, ${bytes.length} bytes` });
  }

  t = performance.now();
  const layout = PackingLayout.forKey(publicKey);
  const received = wire.map((b) => deserializePacked(publicKey, b, { length: plainTotal.length, layout }));
  const aggregateBytes = serializePacked(PackedCiphertext.sum(received));
  const aggregateMs = performance.now() - t;
  progress({ step: 'aggregate', party: 'aggregator', detail: `summed ${received.length} encrypted vectors without the secret key` });

  t = performance.now();
  const total = await decryptVector(privateKey, deserializePacked(publicKey, aggregateBytes));
  const decryptMs = performance.now() - t;
  progress({ step: 'decrypt', party: 'key holder', detail: `decrypted the aggregate only (${total.length} values)` });

  let maxAbsError = 0;
  total.forEach((v, i) => (maxAbsError = Math.max(maxAbsError, Math.abs(v - plainTotal[i]!))));
  const result: CentroidDemoResult = {
    keyBits: publicKey.bits,
    backend: publicKey.backend.name,
    fingerprint: publicKey.fingerprint,
    packing: layout.toJSON(),
    keygenMs,
    parties,
    aggregateMs,
    decryptMs,
    sample: [0, 1, 2].map((i) => ({ name: `sum(${guest!.featureNames[i]} | y=0)`, decrypted: total[i]!, plaintext: plainTotal[i]! })),
    maxAbsError,
    testRows: test!.features.length,
    accuracyEncrypted: centroidAccuracy(total, test!),
    accuracyPlaintext: centroidAccuracy(plainTotal, test!),
  };
  progress({ step: 'evaluate', party: 'key holder', detail: `nearest-centroid accuracy on ${result.testRows} test rows: ${result.accuracyEncrypted.toFixed(4)}` });
  return result;
}
