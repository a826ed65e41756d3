import { CipherMLError } from '../../core/errors.ts';
import { loadCsvDataset, type CsvDataset } from '../../ml/csv.ts';
import { LogisticRegression } from '../../ml/logistic-regression.ts';
import type { NamedTensor } from '../protocol.ts';
import type { EvalMetrics } from '../server.ts';
import type { FlClient } from '../worker.ts';

/**
 * Homogeneous logistic regression (Intel's HE LR example): every worker holds rows with the same
 * features; the model is [weights (d), bias (1)].
 */

function toTensors(model: LogisticRegression): NamedTensor[] {
  const [w, b] = model.getParameters();
  return [
    { name: 'weights', shape: [model.featureCount], values: w! },
    { name: 'bias', shape: [1], values: b! },
  ];
}

function fromTensors(model: LogisticRegression, tensors: readonly NamedTensor[]): void {
  model.setParameters(tensors.map((t) => t.values));
}

function num(config: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const raw = config[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `fit config "${key}" is ${JSON.stringify(raw)}, not a number`, { param: key });
  return v;
}

/** Hyper-parameter defaults of a worker (the server's fit config overrides them per round). */
export interface LogRegDefaults {
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly l2: number;
  readonly seed: number;
}

/**
 * A federated client training logistic regression on one CSV dataset.
 *
 * @example
 * ```ts
 * const client = logRegClient(await loadCsvDataset('breast_homo_guest.csv'), { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 });
 * await runWorker({ workerId: '1', token, client, transport });
 * ```
 */
export function logRegClient(data: CsvDataset, defaults: LogRegDefaults): FlClient {
  const model = new LogisticRegression(data.featureNames.length);
  return {
    numExamples: () => data.features.length,
    getParameters: () => toTensors(model),
    fit: async (params, config) => {
      fromTensors(model, params);
      const round = num(config, 'round', 1);
      const { loss } = model.fit(data.features, data.labels, {
        epochs: num(config, 'local-epochs', defaults.localEpochs),
        batchSize: num(config, 'batch-size', defaults.batchSize),
        learningRate: num(config, 'learning-rate', defaults.learningRate),
        l2: num(config, 'l2', defaults.l2),
        seed: defaults.seed * 1000 + round,
      });
      return { parameters: toTensors(model), numExamples: data.features.length, metrics: { loss } };
    },
    evaluate: async (params) => {
      fromTensors(model, params);
      const e = model.evaluate(data.features, data.labels);
      return { loss: e.loss, numExamples: e.count, metrics: { accuracy: e.accuracy, auc: e.auc } };
    },
  };
}

/**
 * Loads a worker's training CSV and builds its client.
 *
 * @example
 * ```ts
 * const client = await loadLogRegClient('examples/data/breast_homo_guest.csv', 'y', defaults);
 * ```
 */
export async function loadLogRegClient(trainSet: string, label: string, defaults: LogRegDefaults): Promise<FlClient> {
  return logRegClient(await loadCsvDataset(trainSet, { label }), defaults);
}

/**
 * Server-side validation of a logistic-regression global model on a held-out CSV.
 *
 * @example
 * ```ts
 * const evaluate = await logRegEvaluator('examples/data/breast_homo_test.csv', 'y');
 * ```
 */
export async function logRegEvaluator(validateSet: string, label: string): Promise<(tensors: readonly NamedTensor[]) => EvalMetrics> {
  const data = await loadCsvDataset(validateSet, { label });
  const model = new LogisticRegression(data.featureNames.length);
  return (tensors) => {
    fromTensors(model, tensors);
    const e = model.evaluate(data.features, data.labels);
    return { loss: e.loss, accuracy: e.accuracy, auc: e.auc, count: e.count };
  };
}
