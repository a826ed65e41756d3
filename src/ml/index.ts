/**
 * cipherml/ml — datasets and models used by the federated capabilities.
 *
 * @example
 * ```ts
 * import { loadCsvDataset } from 'cipherml/ml';
 * const ds = await loadCsvDataset('examples/data/breast_homo_test.csv', { label: 'y' });
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { loadCsvDataset, parseCsvDataset, shardDataset } from './csv.ts';
export type { CsvDataset, CsvOptions } from './csv.ts';
export { LogisticRegression, MAX_FEATURE_COUNT, sigmoid } from './logistic-regression.ts';
export type { Evaluation, FitOptions } from './logistic-regression.ts';
export { LOG_LOSS_EPS, accuracy, auc, logLoss } from './metrics.ts';
export { SeededRng, shuffleInPlace } from './rng.ts';
export type { MutableIndexable, Rng } from './rng.ts';
export { MAX_IDX_ITEMS, imageDataset, loadIdxDataset, parseIdxImages, parseIdxLabels, subset } from './idx.ts';
export type { ImageDataset, Split } from './idx.ts';
export { describePartition, parsePartition, partitionDataset, partitionName } from './partition.ts';
export type { ClientPart, Partition, PartitionOptions, PartitionScheme } from './partition.ts';
export { loadEngine, registerMissingWasmKernels } from './nn/engine.ts';
export type { Engine, EngineBackend, Tf } from './nn/engine.ts';
export { MODELS, activationShapes, initParameters, modelByName, paramSpecs } from './nn/models.ts';
export type { LayerSpec, ModelName, ModelSpec, ParamTensor } from './nn/models.ts';
export { Network } from './nn/network.ts';
export type { Evaluation as NetworkEvaluation, TrainOptions } from './nn/network.ts';
