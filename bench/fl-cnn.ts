import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveNnApp } from '../src/fl/apps/nn-config.ts';
import { simulateNn } from '../src/fl/apps/nn-run.ts';
import { resolveRunConfig } from '../src/fl/config.ts';
import { loadIdxDataset, subset } from '../src/ml/idx.ts';
import { loadEngine, type EngineBackend } from '../src/ml/nn/engine.ts';
import { MODELS, initParameters } from '../src/ml/nn/models.ts';
import { Network } from '../src/ml/nn/network.ts';
import { packageRoot } from '../src/core/paths.ts';
import { PackedCiphertext, PackingLayout, decryptVector, encryptVector, generatePaillierKeyPair, type PaillierKeyBits } from '../src/paillier/index.ts';
import { packingFor } from '../src/fl/run.ts';

/**
 * `cipherml bench fl-cnn`: (1) local training throughput of LeNet-5 (batch 32, SGD, real MNIST
 * images) on the engine's wasm backend against tfjs's pure-JavaScript CPU backend, in the same
 * process and run; (2) one federated round of LeNet-5 with 10 in-process clients per aggregation
 * strategy against plain FedAvg in the same run (the server's own round time: fit tasks sent →
 * aggregate done, so it includes the clients' training of a few images, encryption or masking,
 * and the aggregation). Wall-clock on this machine; one warm-up batch per backend is not timed.
 */

export interface FlCnnBenchOptions {
  /** Images trained on the wasm backend (the CPU baseline trains `cpuImages`). */
  readonly images?: number;
  readonly cpuImages?: number;
  readonly clients?: number;
  /** Training images per client in the round measurement. */
  readonly roundImages?: number;
  readonly keyBits?: 1024 | 2048 | 3072 | 4096;
  readonly onProgress?: (line: string) => void;
}

export interface FlCnnBenchResult {
  readonly throughput: { readonly backend: EngineBackend; readonly images: number; readonly ms: number; readonly imagesPerSecond: number }[];
  readonly speedup: number;
  readonly rounds: { readonly strategy: string; readonly roundMs: number; readonly bytesIn: number; readonly vsPlain: number }[];
  readonly settings: { readonly clients: number; readonly roundImages: number; readonly keyBits: number; readonly parameters: number };
  /**
   * Where the Paillier round's time goes, measured separately in the same run with the round's
   * packing: one client's update encrypted (all cores), and the server's decryption of the sum
   * of `clients` updates (all cores).
   */
  readonly paillierParts: { readonly ciphertextsPerUpdate: number; readonly slotsPerCiphertext: number; readonly encryptOneUpdateMs: number; readonly decryptSumMs: number };
}

async function paillierParts(keyBits: PaillierKeyBits, clients: number, parameters: number): Promise<FlCnnBenchResult['paillierParts']> {
  const { publicKey, privateKey } = await generatePaillierKeyPair({ bits: keyBits });
  const packing = packingFor(resolveRunConfig({ flags: { minAvailableClients: clients, minFitClients: clients, keyBits } }));
  const values = Float64Array.from({ length: parameters }, (_, i) => Math.sin(i) * 32);
  await encryptVector(publicKey, values.subarray(0, 1000), { packing });
  let t = performance.now();
  const one = await encryptVector(publicKey, values, { packing });
  const encryptOneUpdateMs = performance.now() - t;
  const sum = PackedCiphertext.sum(Array.from({ length: clients }, () => one));
  t = performance.now();
  await decryptVector(privateKey, sum);
  const decryptSumMs = performance.now() - t;
  const layout = PackingLayout.forKey(publicKey, packing);
  return { ciphertextsPerUpdate: layout.ciphertextsFor(parameters), slotsPerCiphertext: layout.slotsPerCiphertext, encryptOneUpdateMs, decryptSumMs };
}

async function throughput(backend: EngineBackend, images: number): Promise<{ backend: EngineBackend; images: number; ms: number; imagesPerSecond: number }> {
  const { tf } = await loadEngine(backend);
  const train = await loadIdxDataset(join(packageRoot(), 'examples', 'fl-mnist', 'mnist'), 'train', images + 32);
  const net = new Network(tf, MODELS.lenet5, initParameters(MODELS.lenet5, 1));
  net.train(subset(train, Array.from({ length: 32 }, (_, i) => images + i)), { epochs: 1, batchSize: 32, learningRate: 0.01, seed: 1 });
  const data = subset(train, Array.from({ length: images }, (_, i) => i));
  const t = performance.now();
  net.train(data, { epochs: 1, batchSize: 32, learningRate: 0.01, seed: 2 });
  const ms = performance.now() - t;
  net.dispose();
  return { backend, images, ms, imagesPerSecond: (images / ms) * 1000 };
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * console.log(formatFlCnnBench(await runFlCnnBench({})));
 * ```
 */
export async function runFlCnnBench(options: FlCnnBenchOptions): Promise<FlCnnBenchResult> {
  const log = options.onProgress ?? (() => undefined);
  const clients = options.clients ?? 10;
  const roundImages = options.roundImages ?? 64;
  const keyBits = options.keyBits ?? 2048;
  log('training throughput: wasm backend …');
  const wasm = await throughput('wasm', options.images ?? 1024);
  log(`  ${wasm.imagesPerSecond.toFixed(0)} images/s; CPU backend …`);
  const cpu = await throughput('cpu', options.cpuImages ?? 128);
  log(`  ${cpu.imagesPerSecond.toFixed(1)} images/s`);
  const rounds: { strategy: string; roundMs: number; bytesIn: number; vsPlain: number }[] = [];
  for (const strategy of ['plain', 'paillier', 'secagg'] as const) {
    log(`one federated round, ${strategy} …`);
    const runDir = await mkdtemp(join(tmpdir(), 'bench-fl-cnn-'));
    try {
      const config = resolveRunConfig({
        flags: { strategy, numServerRounds: 1, minFitClients: clients, minAvailableClients: clients, minEvaluateClients: 0, fractionEvaluate: 0, keyBits, runDir, roundTimeout: 3600, ...(strategy === 'secagg' ? { cipherTimeWindow: 600_000 } : {}) },
      });
      const app = resolveNnApp({ partition: 'iid', 'num-clients': clients, 'train-limit': clients * roundImages, 'test-limit': 100 });
      const { server } = await simulateNn(config, app);
      const rec = server.history[0]!;
      rounds.push({ strategy, roundMs: rec.durationMs, bytesIn: rec.bytesIn, vsPlain: 0 });
      log(`  ${rec.durationMs.toFixed(0)} ms`);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }
  log('Paillier parts: one update encrypted, the sum decrypted …');
  const parts = await paillierParts(keyBits, clients, 61706);
  const plain = rounds[0]!.roundMs;
  return {
    paillierParts: parts,
    throughput: [wasm, cpu],
    speedup: wasm.imagesPerSecond / cpu.imagesPerSecond,
    rounds: rounds.map((r) => ({ ...r, vsPlain: r.roundMs / plain })),
    settings: { clients, roundImages, keyBits, parameters: 61706 },
  };
}

/** The result as a table. */
export function formatFlCnnBench(r: FlCnnBenchResult): string {
  return [
    'LeNet-5 local training, batch 32 (real MNIST images)',
    '| engine | images | ms | images/s |',
    '|---|---:|---:|---:|',
    ...r.throughput.map((t) => `| tfjs ${t.backend}${t.backend === 'cpu' ? ' (baseline)' : ''} | ${t.images} | ${t.ms.toFixed(0)} | ${t.imagesPerSecond.toFixed(1)} |`),
    `speed-up of wasm over the CPU backend: ${r.speedup.toFixed(1)}×`,
    '',
    `One federated round, LeNet-5 (${r.settings.parameters} parameters), ${r.settings.clients} in-process clients × ${r.settings.roundImages} images, Paillier ${r.settings.keyBits}-bit`,
    '| strategy | round ms | bytes in | vs plain |',
    '|---|---:|---:|---:|',
    ...r.rounds.map((x) => `| ${x.strategy}${x.strategy === 'plain' ? ' (baseline)' : ''} | ${x.roundMs.toFixed(0)} | ${x.bytesIn} | ${x.vsPlain.toFixed(2)}× |`),
    '',
    `Paillier parts (same run, all cores): an update is ${r.paillierParts.ciphertextsPerUpdate} ciphertexts of ${r.paillierParts.slotsPerCiphertext} values; encrypting one takes ${r.paillierParts.encryptOneUpdateMs.toFixed(0)} ms (× ${r.settings.clients} clients in one process), decrypting the sum ${r.paillierParts.decryptSumMs.toFixed(0)} ms`,
  ].join('\n');
}
