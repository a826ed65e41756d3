import { loadIdxDataset, subset, type ImageDataset } from '../../ml/idx.ts';
import { loadEngine, type Tf } from '../../ml/nn/engine.ts';
import { modelByName, type ModelSpec } from '../../ml/nn/models.ts';
import { describePartition, partitionDataset, partitionName, type Partition } from '../../ml/partition.ts';
import type { RunConfig } from '../config.ts';
import { simulate, type SimulationResult } from '../simulate.ts';
import type { ServerEvent } from '../server.ts';
import { ServerOptStrategy } from '../strategies-opt.ts';
import type { Strategy } from '../strategy.ts';
import { datasetDir, type NnAppConfig } from './nn-config.ts';
import { initialModel, nnClient, nnEvaluator, type NnDefaults } from './nn.ts';

/** Wiring of a federated image-classification run, shared by `simulate`, the worker and server commands and the demo. */

/** The partitioned training data of a run (the same in every process for the same seed). */
export interface NnData {
  readonly train: ImageDataset;
  readonly partition: Partition;
  readonly spec: ModelSpec;
}

/**
 * Loads the training set and partitions it among `app.numClients` clients.
 *
 * @example
 * ```ts
 * const { partition } = await loadNnData(app, config.seed);
 * ```
 */
export async function loadNnData(app: NnAppConfig, seed: number): Promise<NnData> {
  const train = await loadIdxDataset(datasetDir(app), 'train', app.trainLimit === 0 ? undefined : app.trainLimit);
  const partition = partitionDataset(train.labels, app.partition, { clients: app.numClients, seed, classes: 10, param: 'partition' });
  return { train, partition, spec: modelByName(app.model, 'model') };
}

/** The test set of a run. */
export async function loadNnTest(app: NnAppConfig): Promise<ImageDataset> {
  return loadIdxDataset(datasetDir(app), 't10k', app.testLimit === 0 ? undefined : app.testLimit);
}

/** Client `k` (1-based) of a partition. */
export function clientData(data: NnData, k: number): ImageDataset {
  return subset(data.train, data.partition.clients[k - 1]!.indices);
}

/** Local defaults of a worker from the run and app configs. */
export function nnDefaults(config: RunConfig, app: NnAppConfig, k: number): NnDefaults {
  return { localEpochs: config.localEpochs, batchSize: config.batchSize, learningRate: config.learningRate, momentum: app.momentum, proximalMu: app.proximalMu, seed: config.seed * 100 + k };
}

/** The server optimizer wrapper of `app` (identity for FedAvg). */
export function wrapForApp(app: NnAppConfig): (s: Strategy) => Strategy {
  return (s) => (app.serverOptimizer === 'fedavg' ? s : new ServerOptStrategy(s, { optimizer: app.serverOptimizer, eta: app.serverLearningRate }));
}

/**
 * Server settings of a neural-network run: a worker trains and encrypts (or masks) tens of
 * thousands of parameters between two contacts, which takes longer than the runtime's default
 * 15 s liveness window on a slow machine; it is dropped only after the round timeout.
 */
export function nnServerSettings(config: RunConfig): { staleAfterMs: number } {
  return { staleAfterMs: Math.max(15_000, config.roundTimeout * 1000) };
}

/**
 * The run config of a neural-network run: unless `packing-max-contributions` is set, the Paillier
 * slot headroom is 2^⌈log₂ num-clients⌉ contributions (at least min-available-clients) instead
 * of the runtime's 1,000. Every worker of such a run trains one of the num-clients partitions, so
 * a round sums at most that many updates; the headroom costs ⌈log₂ num-clients⌉ bits per slot
 * (4 for 10 clients: 56 values per 2048-bit ciphertext instead of 48). A sum of more updates is
 * refused (CIPHERML_E_SLOT_OVERFLOW), never wrapped into the neighbouring slot.
 *
 * @example
 * ```ts
 * nnRunConfig(config, app).packingMaxContributions; // 16 for 10 clients
 * ```
 */
export function nnRunConfig(config: RunConfig, app: NnAppConfig): RunConfig {
  if (config.packingMaxContributions !== 0) return config;
  const headroom = 2 ** Math.ceil(Math.log2(Math.max(2, app.numClients)));
  return { ...config, packingMaxContributions: Math.max(headroom, config.minAvailableClients) };
}

/** One line describing the run's data. */
export function describeNnRun(app: NnAppConfig, data: NnData): string[] {
  return [`${app.dataset}: ${data.train.count} training images in ${app.numClients} clients by ${partitionName(app.partition)}, model ${app.model}, label histograms:`, ...describePartition(data.partition)];
}

/**
 * The whole run in one process (`cipherml simulate --config examples/fl-mnist/run.toml`).
 *
 * @example
 * ```ts
 * const { server } = await simulateNn(config, app, { onLine: console.error });
 * ```
 */
export async function simulateNn(config: RunConfig, app: NnAppConfig, options: { onLine?: (l: string) => void; onServerEvent?: (e: ServerEvent) => void } = {}): Promise<SimulationResult & { tf: Tf }> {
  const { tf } = await loadEngine(app.engine);
  const data = await loadNnData(app, config.seed);
  for (const l of describeNnRun(app, data)) options.onLine?.(l);
  const test = await loadNnTest(app);
  const clients = data.partition.clients.map((_, i) => ({ id: String(i + 1), client: nnClient(tf, data.spec, clientData(data, i + 1), nnDefaults(config, app, i + 1)) }));
  const result = await simulate({
    config: nnRunConfig(config, app),
    clients,
    evaluate: nnEvaluator(tf, data.spec, test),
    initialModel: initialModel(data.spec, config.seed),
    wrapStrategy: wrapForApp(app),
    settings: nnServerSettings(config),
    ...(options.onServerEvent === undefined ? {} : { onServerEvent: options.onServerEvent }),
  });
  return { ...result, tf };
}
