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
import { projectRatio, runRoundBench, type Cost, type RoundBenchResult } from './fl-cnn-round.ts';

/**
 * `cipherml bench fl-cnn`: (1) local training throughput of LeNet-5 (batch 32, SGD, real MNIST
 * images) on the engine's wasm backend against tfjs's pure-JavaScript CPU backend, in the same
 * process and run; (2) one federated round of LeNet-5 per aggregation strategy against plain
 * FedAvg in the same run, each party charged only its own work (bench/fl-cnn-round.ts): the
 * slowest client's training and encryption or masking, plus the server's aggregation and
 * decryption or unmasking; (3) optionally (`inProcessImages`), the old measure: the server's
 * wall-clock round with every client in this process, sharing its cores.
 */

export interface FlCnnBenchOptions {
  /** Images trained on the wasm backend (the CPU baseline trains `cpuImages`). */
  readonly images?: number;
  readonly cpuImages?: number;
  readonly clients?: number;
  /** Images a client trains in the round, at most (0: its whole partition, the issue's one epoch). */
  readonly roundImages?: number;
  /** Training images partitioned among the clients (0: all 60,000). */
  readonly trainLimit?: number;
  readonly partition?: string;
  /** Images per client of the in-process wall-clock rounds (0: skip them). */
  readonly inProcessImages?: number;
  readonly keyBits?: 1024 | 2048 | 3072 | 4096;
  readonly onProgress?: (line: string) => void;
}

export interface FlCnnBenchResult {
  readonly throughput: { readonly backend: EngineBackend; readonly images: number; readonly ms: number; readonly imagesPerSecond: number }[];
  readonly speedup: number;
  /** Per-party accounting (the figure the targets are about). */
  readonly perParty: RoundBenchResult;
  /** Projected ratio vs plain at other images per client, from the measured parts. */
  readonly projection: { readonly imagesPerClient: number; readonly ratios: Record<string, number> }[];
  /** All clients in this process on the same cores: the server's wall-clock round (the earlier measure). */
  readonly inProcess: { readonly strategy: string; readonly roundMs: number; readonly bytesIn: number; readonly vsPlain: number }[];
  readonly settings: { readonly clients: number; readonly roundImages: number; readonly trainLimit: number; readonly partition: string; readonly inProcessImages: number; readonly keyBits: number; readonly loadAverage: readonly number[] };
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

async function inProcessRounds(clients: number, images: number, keyBits: 1024 | 2048 | 3072 | 4096, log: (l: string) => void): Promise<FlCnnBenchResult['inProcess']> {
  const rounds: { strategy: string; roundMs: number; bytesIn: number; vsPlain: number }[] = [];
  for (const strategy of ['plain', 'paillier', 'secagg'] as const) {
    log(`in-process round, ${strategy} …`);
    const runDir = await mkdtemp(join(tmpdir(), 'bench-fl-cnn-'));
    try {
      const config = resolveRunConfig({
        flags: { strategy, numServerRounds: 1, minFitClients: clients, minAvailableClients: clients, minEvaluateClients: 0, fractionEvaluate: 0, keyBits, runDir, roundTimeout: 3600, ...(strategy === 'secagg' ? { cipherTimeWindow: 600_000 } : {}) },
      });
      const app = resolveNnApp({ partition: 'iid', 'num-clients': clients, 'train-limit': clients * images, 'test-limit': 100 });
      const { server } = await simulateNn(config, app);
      const rec = server.history[0]!;
      rounds.push({ strategy, roundMs: rec.durationMs, bytesIn: rec.bytesIn, vsPlain: 0 });
      log(`  ${rec.durationMs.toFixed(0)} ms`);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }
  return rounds.map((r) => ({ ...r, vsPlain: r.roundMs / rounds[0]!.roundMs }));
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * console.log(formatFlCnnBench(await runFlCnnBench({ roundImages: 1000 })));
 * ```
 */
export async function runFlCnnBench(options: FlCnnBenchOptions): Promise<FlCnnBenchResult> {
  const log = options.onProgress ?? (() => undefined);
  const clients = options.clients ?? 10;
  const roundImages = options.roundImages ?? 0;
  const trainLimit = options.trainLimit ?? 0;
  const partition = options.partition ?? 'dirichlet:0.5';
  const inProcessImages = options.inProcessImages ?? 0;
  const keyBits = options.keyBits ?? 2048;
  const { loadavg } = await import('node:os');
  const load0 = loadavg()[0]!;
  log('training throughput: wasm backend …');
  const wasm = await throughput('wasm', options.images ?? 1024);
  log(`  ${wasm.imagesPerSecond.toFixed(0)} images/s; CPU backend …`);
  const cpu = await throughput('cpu', options.cpuImages ?? 128);
  log(`  ${cpu.imagesPerSecond.toFixed(1)} images/s`);
  log(`one round per strategy, each party measured alone (${clients} clients, ${partition}, ${roundImages === 0 ? 'whole partitions' : `at most ${roundImages} images each`}) …`);
  const perParty = await runRoundBench({ clients, trainLimit, roundImages, partition, keyBits, log });
  const sizes = [64, 600, 1000, 3000, Math.max(...perParty.partitionSizes)];
  const projection = [...new Set(sizes)].sort((a, b) => a - b).map((n) => ({ imagesPerClient: n, ratios: Object.fromEntries(perParty.rounds.slice(1).map((r, i) => [r.strategy, projectRatio(perParty, i + 1, n)])) }));
  const inProcess = inProcessImages > 0 ? await inProcessRounds(clients, inProcessImages, keyBits, log) : [];
  return {
    throughput: [wasm, cpu],
    speedup: wasm.imagesPerSecond / cpu.imagesPerSecond,
    perParty,
    projection,
    inProcess,
    settings: { clients, roundImages, trainLimit, partition, inProcessImages, keyBits, loadAverage: [load0, loadavg()[0]!] },
  };
}

const s1 = (ms: number): string => (ms / 1000).toFixed(2);

/** The result as tables. */
export function formatFlCnnBench(r: FlCnnBenchResult): string {
  const p = r.perParty;
  const lines = [
    'LeNet-5 local training, batch 32 (real MNIST images)',
    '| engine | images | ms | images/s |',
    '|---|---:|---:|---:|',
    ...r.throughput.map((t) => `| tfjs ${t.backend}${t.backend === 'cpu' ? ' (baseline)' : ''} | ${t.images} | ${t.ms.toFixed(0)} | ${t.imagesPerSecond.toFixed(1)} |`),
    `speed-up of wasm over the CPU backend: ${r.speedup.toFixed(1)}×`,
    '',
    `One federated round, LeNet-5 (${p.parameters} parameters), ${r.settings.clients} clients, ${r.settings.partition}; partition sizes ${p.partitionSizes.join(', ')}; images trained ${p.trainedImages.join(', ')}; Paillier ${r.settings.keyBits}-bit, key holder server`,
    'Each party measured alone: round = slowest (training + own step) + server; CPU s (one core per party) / wall s alone;',
    `"server on ${p.partyCores} cores": the server's main-thread CPU + its worker threads' CPU / ${p.partyCores} (clients still one core each)`,
    `| strategy | slowest client | its crypto | server | server on ${p.partyCores} cores | round | vs plain (CPU) | vs plain (wall) | vs plain (server on ${p.partyCores} cores) | precomputed off path | bytes/client | max abs err | note |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...p.rounds.map(
      (x) =>
        `| ${x.strategy} | ${s1(x.clientPath.cpuMs)} / ${s1(x.clientPath.wallMs)} | ${s1(x.clientCryptoMax.cpuMs)} / ${s1(x.clientCryptoMax.wallMs)} | ${s1(x.server.cpuMs)} / ${s1(x.server.wallMs)} | ${s1(x.serverOnCoresMs)} | ${s1(x.round.cpuMs)} / ${s1(x.round.wallMs)} | ${x.vsPlainCpu.toFixed(2)}× | ${x.vsPlainWall.toFixed(2)}× | ${x.vsPlainServerCores.toFixed(2)}× | ${s1(x.offPath.cpuMs)} | ${x.bytesPerClient.toFixed(0)} | ${x.maxAbsError.toExponential(1)} | ${x.note} |`,
    ),
    ...p.rounds.flatMap((x) => {
      const q = x.serverParts;
      if (q === undefined) return [];
      const c = (v: Cost): string => `${s1(v.cpuMs)} s CPU (${s1(v.mainCpuMs)} main thread, ${s1(v.wallMs)} wall)`;
      return [`server parts (${x.strategy}): decode ${c(q.decode)}; sum ${c(q.sum)}; decryption ${c(q.decrypt)}, on one thread ${c(q.decryptOneThread)}`];
    }),
    `packing before: ${p.packing.before.slotsPerCiphertext} values per ciphertext (${p.packing.before.slotBits}-bit slots), ${p.packing.before.ciphertexts} ciphertexts; after: ${p.packing.after.slotsPerCiphertext} (${p.packing.after.slotBits}-bit), ${p.packing.after.ciphertexts}`,
    `training: ${p.trainCpuMsPerImage.toFixed(2)} ms CPU per image (slowest client); largest |w·θ| encrypted: ${p.maxAbsWeightedValue.toFixed(3)}`,
    '',
    'Projected ratio vs plain (CPU) at other images per client: measured training CPU per image × images + the measured fixed costs',
    `| images per client | ${p.rounds.slice(1).map((x) => x.strategy).join(' | ')} |`,
    `|---:|${p.rounds.slice(1).map(() => '---:').join('|')}|`,
    ...r.projection.map((x) => `| ${x.imagesPerClient} | ${Object.values(x.ratios).map((v) => `${v.toFixed(2)}×`).join(' | ')} |`),
  ];
  if (r.inProcess.length > 0) {
    lines.push('', `All clients in one process on the same cores (server wall clock, ${r.settings.inProcessImages} images per client, iid): not a deployment's round time`, '| strategy | round ms | bytes in | vs plain |', '|---|---:|---:|---:|', ...r.inProcess.map((x) => `| ${x.strategy} | ${x.roundMs.toFixed(0)} | ${x.bytesIn} | ${x.vsPlain.toFixed(2)}× |`));
  }
  lines.push(`load average (1 min) at start / end: ${r.settings.loadAverage.map((x) => x.toFixed(1)).join(' / ')}`);
  return lines.join('\n');
}
